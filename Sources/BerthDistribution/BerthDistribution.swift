/// OCI distribution client.
public enum BerthDistribution {}
