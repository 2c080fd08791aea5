/// The registry server.
public enum BerthRegistry {}
