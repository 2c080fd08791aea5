// OpenSSL's SHA-256 (libcrypto from Debian's libssl-dev): its assembly uses the CPU's SHA
// extensions where present, several times faster than portable code. The one-shot-free
// SHA256_CTX API is deprecated in OpenSSL 3 in favour of EVP, but it is a plain struct, so a
// hasher stays a copyable value; it is not going away in 3.x.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>
