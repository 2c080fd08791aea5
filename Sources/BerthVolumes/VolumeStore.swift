/// Named volumes with the local driver: `<root>/<name>/_data` plus atomically written metadata.
public enum BerthVolumes {}
