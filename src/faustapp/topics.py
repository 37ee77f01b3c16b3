"""Topic names: the public contract between faustapp, its producers and its consumers."""

SENSOR_READINGS = "sensor-readings"
SENSOR_STATS_1M = "sensor-stats-1m"
LATE = "faustapp-late"
DLQ = "faustapp-dlq"
