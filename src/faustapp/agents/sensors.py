"""IoT sensor pipelines on ``sensor-readings``: 1-minute and 5-minute stats, anomaly alerts."""

from __future__ import annotations

from collections.abc import Set
from typing import Any

from faust.types import TP

from faustapp.app import app, settings
from faustapp.pipeline import Decoded, PipelineSpec, SourceRouter
from faustapp.records import decode_reading
from faustapp.tables.aggregates import Stats
from faustapp.tables.engine import WindowSpec
from faustapp.tables.sketches import Quantiles
from faustapp.tables.windows import hopping, sliding, tumbling
from faustapp.topics import (
    DLQ,
    LATE,
    SENSOR_ALERTS,
    SENSOR_READINGS,
    SENSOR_STATS_1M,
    SENSOR_STATS_5M,
)

MINUTE = 60_000
ALERT_Z = 4.0
ALERT_MIN_READINGS = 20


def decode_sensor(raw: bytes | None) -> Decoded:
    """Key, event time and value of a reading, or :class:`InvalidRecord`."""
    reading = decode_reading(raw)
    return reading.sensor_id, reading.ts, reading.value


def anomaly(result: dict[str, Any]) -> dict[str, Any] | None:
    """An alert when the reading lies more than 4 stddev from its 5-minute mean, else None."""
    count, mean, stddev = result["count"], result["mean"], result["stddev"]
    if count < ALERT_MIN_READINGS or stddev <= 0:
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


def _topic(name: str, *, internal: bool = False):  # noqa: ANN202 - faust.Topic
    return app.topic(
        settings.topic(name),
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
        internal=internal,
    )


def _table(name: str):  # noqa: ANN202 - faust.Table
    return app.Table(name, partitions=settings.partitions, key_type=bytes, value_type=bytes)


# faustapp creates its input topic with the configured partitions, like Faust's own topics.
readings_topic = _topic(SENSOR_READINGS, internal=True)
output_topics = [
    _topic(name) for name in (SENSOR_STATS_1M, SENSOR_STATS_5M, SENSOR_ALERTS, LATE, DLQ)
]

router = SourceRouter(
    app,
    "sensors",
    settings.topic(SENSOR_READINGS),
    settings.partitions,
    decode_sensor,
    dlq_topic=settings.topic(DLQ),
    max_future_skew_ms=settings.max_future_skew_ms,
)
windows_1m = _table("sensor-windows-1m")
stats_1m = router.add(
    PipelineSpec(
        name="sensor-stats-1m",
        output_topic=settings.topic(SENSOR_STATS_1M),
        key_field="sensor_id",
        window=WindowSpec(tumbling(MINUTE), settings.grace_ms, (Stats(),)),
        late_topic=settings.topic(LATE),
    ),
    windows_1m,
)
stats_5m = router.add(
    PipelineSpec(
        name="sensor-stats-5m",
        output_topic=settings.topic(SENSOR_STATS_5M),
        key_field="sensor_id",
        window=WindowSpec(
            hopping(5 * MINUTE, MINUTE),
            settings.grace_ms,
            (Stats(), Quantiles({"p50": 0.5, "p95": 0.95})),
        ),
        late_topic=settings.topic(LATE),
    ),
    _table("sensor-windows-5m"),
)
alerts = router.add(
    PipelineSpec(
        name="sensor-alerts",
        output_topic=settings.topic(SENSOR_ALERTS),
        key_field="sensor_id",
        window=WindowSpec(sliding(5 * MINUTE), settings.grace_ms),
        late_topic=settings.topic(LATE),
        select=anomaly,
    ),
    _table("sensor-sliding-5m"),
)


@app.agent(readings_topic)
async def sensor_pipelines(stream):  # noqa: ANN001 - Faust passes its Stream
    """Feed the readings to every sensor pipeline in per-partition batches."""
    for topic in output_topics:
        await topic.maybe_declare()
    async for events in stream.take_events(settings.batch_size, settings.batch_within_ms / 1000):
        await router.process([event.message for event in events])


if settings.idle_close_ms:

    @app.timer(interval=min(1.0, settings.idle_close_ms / 2000))
    async def _close_idle_partitions() -> None:
        await router.close_idle(settings.idle_close_ms)


@app.on_partitions_revoked.connect
async def _forget_revoked(sender: object, revoked: Set[TP], **kwargs: object) -> None:
    partitions = [tp.partition for tp in revoked if tp.topic == router.source_topic]
    await router.commit_revoked(partitions)
    router.forget(partitions)
