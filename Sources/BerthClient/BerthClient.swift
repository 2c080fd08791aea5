/// A Docker Engine API client: HTTP/1.1 over a unix socket (or TCP), streams and hijacked
/// connections. Used by the `berth` CLI; knows nothing of the engine.
public enum BerthClient {}
