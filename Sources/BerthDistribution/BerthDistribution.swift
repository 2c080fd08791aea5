/// BerthDistribution: the OCI distribution (Docker registry v2) client.
///
/// It owns talking to registries: reference → endpoints (HTTPS, plain HTTP for loopback and
/// insecure registries, mirrors for docker.io), authentication (anonymous, Basic, Bearer tokens
/// from the `WWW-Authenticate` challenge), manifests and indexes with platform selection, and
/// pull and push of images between a registry and the local `ImageStore`: blobs streamed into
/// the content store while hashed, several at once, each layer decompressed and unpacked while
/// it downloads (LayerStream), with no second pass over the stored blob.
/// Progress is reported as plain `TransferProgress` values. It knows nothing of the engine,
/// containers or the Docker API; errors are `RegistryError` (or `ImageError` from the store).
public enum BerthDistribution {}
