"""Topic names: the public contract between faustapp, its producers and its consumers.

Each is prefixed with ``FAUSTAPP_TOPIC_PREFIX`` (empty by default) at run time.
"""

SENSOR_READINGS = "sensor-readings"
SENSOR_STATS_1M = "sensor-stats-1m"
SENSOR_STATS_5M = "sensor-stats-5m"
SENSOR_ALERTS = "sensor-alerts"
SENSOR_SESSIONS = "sensor-sessions"
LATE = "faustapp-late"
DLQ = "faustapp-dlq"
