"""IoT sensors on ``sensor-readings``: 1- and 5-minute statistics, anomaly alerts, sessions."""

from __future__ import annotations

from typing import Annotated, Any

from faustapp.api import (
    MINUTE,
    Count,
    EventTime,
    First,
    Id,
    Last,
    Mean,
    Number,
    Quantile,
    Record,
    Schema,
    StdDev,
    hopping,
    session,
    sliding,
    source,
    stats,
    tumbling,
)
from faustapp.topics import SENSOR_READINGS

ALERT_Z = 4.0
ALERT_MIN_READINGS = 20
SESSION_GAP_MS = MINUTE


class Reading(Record):
    """One IoT reading: which sensor, when (event time), what value."""

    sensor_id: Id
    ts: EventTime
    value: Annotated[float, Number()]


def anomaly(result: dict[str, Any]) -> dict[str, Any] | None:
    """An alert when the reading lies more than 4 stddev from its 5-minute mean, else None."""
    count, mean, stddev = result["count"], result["mean"], result["stddev"]
    if count < ALERT_MIN_READINGS or not stddev:
        return None
    zscore = (result["value"] - mean) / stddev
    if abs(zscore) <= ALERT_Z:
        return None
    return {
        "sensor_id": result["sensor_id"],
        "ts": result["ts"],
        "value": result["value"],
        "window_start": result["window_start"],
        "window_end": result["window_end"],
        "count": count,
        "mean": mean,
        "stddev": stddev,
        "zscore": zscore,
        "rule": f"|value - mean| > {ALERT_Z:g} stddev, >= {ALERT_MIN_READINGS} readings in 5 min",
    }


readings = source("sensors", topic=SENSOR_READINGS, schema=Schema(Reading, key="sensor_id"))

stats_1m = readings.window(
    "sensor-stats-1m",
    tumbling(MINUTE),
    table="sensor-windows-1m",
    description="count, sum, mean, min, max and stddev per sensor and minute",
    **stats("value"),
)
stats_5m = readings.window(
    "sensor-stats-5m",
    hopping(5 * MINUTE, MINUTE),
    table="sensor-windows-5m",
    description="5-minute statistics and p50/p95 every minute",
    **stats("value"),
    p50=Quantile("value", 0.5),
    p95=Quantile("value", 0.95),
)
alerts = readings.window(
    "sensor-alerts",
    sliding(5 * MINUTE, carry=("value",)),
    table="sensor-sliding-5m",
    description="readings more than 4 stddev from their sensor's mean of the last 5 minutes",
    count=Count("value"),
    mean=Mean("value"),
    stddev=StdDev("value"),
    select=anomaly,
)
sessions = readings.window(
    "sensor-sessions",
    session(SESSION_GAP_MS),
    table="sensor-sessions",
    description="bursts of readings with less than a minute between them",
    **stats("value"),
    first=First("value"),
    first_ts=First("ts"),
    last=Last("value"),
    last_ts=Last("ts"),
)
