// libxcrypt (Debian's libcrypt): crypt_r checks htpasswd bcrypt hashes ($2y$, $2b$).
#include <crypt.h>
