/// Placeholder until the HTTP server moves here from BerthAPI.
public enum BerthHTTP {}
