"""IoT sensor pipelines on ``sensor-readings``: 1-minute and 5-minute stats, anomaly alerts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Set
from typing import Any

from faust.types import TP

from faustapp import fastpath
from faustapp.app import app, settings
from faustapp.pipeline import Decoded, PipelineSpec, SourceRouter
from faustapp.records import decode_fields
from faustapp.tables.aggregates import FirstLast, Stats
from faustapp.tables.engine import WindowSpec
from faustapp.tables.sketches import Quantiles
from faustapp.tables.windows import hopping, session, sliding, tumbling
from faustapp.topics import (
    DLQ,
    LATE,
    SENSOR_ALERTS,
    SENSOR_READINGS,
    SENSOR_SESSIONS,
    SENSOR_STATS_1M,
    SENSOR_STATS_5M,
)

MINUTE = 60_000
ALERT_Z = 4.0
ALERT_MIN_READINGS = 20


# Key, event time and value of a reading, or InvalidRecord; no wrapper: it runs once per event.
decode_sensor: Callable[[bytes | None], Decoded] = decode_fields


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
    _topic(name)
    for name in (SENSOR_STATS_1M, SENSOR_STATS_5M, SENSOR_ALERTS, SENSOR_SESSIONS, LATE, DLQ)
]

router = SourceRouter(
    app,
    "sensors",
    settings.topic(SENSOR_READINGS),
    settings.partitions,
    decode_sensor,
    dlq_topic=settings.topic(DLQ),
    max_future_skew_ms=settings.max_future_skew_ms,
    flush_interval_ms=settings.flush_interval_ms,
    output_topics=output_topics,
)
SESSION_GAP_MS = MINUTE


def _specs() -> dict[str, tuple[PipelineSpec, str]]:
    """Every sensor pipeline faustapp offers, with the table that holds its state."""
    late = settings.topic(LATE)
    grace = settings.grace_ms
    return {
        "sensor-stats-1m": (
            PipelineSpec(
                name="sensor-stats-1m",
                output_topic=settings.topic(SENSOR_STATS_1M),
                key_field="sensor_id",
                window=WindowSpec(tumbling(MINUTE), grace, (Stats(),)),
                late_topic=late,
            ),
            "sensor-windows-1m",
        ),
        "sensor-stats-5m": (
            PipelineSpec(
                name="sensor-stats-5m",
                output_topic=settings.topic(SENSOR_STATS_5M),
                key_field="sensor_id",
                window=WindowSpec(
                    hopping(5 * MINUTE, MINUTE),
                    grace,
                    (Stats(), Quantiles({"p50": 0.5, "p95": 0.95})),
                ),
                late_topic=late,
            ),
            "sensor-windows-5m",
        ),
        "sensor-alerts": (
            PipelineSpec(
                name="sensor-alerts",
                output_topic=settings.topic(SENSOR_ALERTS),
                key_field="sensor_id",
                window=WindowSpec(sliding(5 * MINUTE), grace),
                late_topic=late,
                select=anomaly,
            ),
            "sensor-sliding-5m",
        ),
        "sensor-sessions": (
            PipelineSpec(
                name="sensor-sessions",
                output_topic=settings.topic(SENSOR_SESSIONS),
                key_field="sensor_id",
                window=WindowSpec(session(SESSION_GAP_MS), grace, (Stats(), FirstLast())),
                late_topic=late,
            ),
            "sensor-sessions",
        ),
    }


pipelines = {
    name: router.add(spec, _table(table_name))
    for name, (spec, table_name) in _specs().items()
    if name in settings.pipelines
}
windows_1m = router.pipelines[0].store.table  # routes sensor-id queries (any table would do)


if settings.batch_drain:
    # Fetched batches go straight to the router (faustapp.fastpath); the agent below still
    # subscribes the topic and declares the outputs, and receives nothing.
    fastpath.register(router.source_topic, router.handle_batch)

    @app.task
    async def _flush_write_behind() -> None:
        """Persist what the write-behind cache holds once its interval has passed."""
        interval = max(settings.flush_interval_ms / 1000, 0.05) / 2
        while not app.should_stop:
            await asyncio.sleep(interval)
            await router.flush_due()

    async def _flush_all() -> None:
        await router.flush_due(force=True)

    app.before_stop.append(_flush_all)


@app.agent(readings_topic)
async def sensor_pipelines(stream):  # noqa: ANN001 - Faust passes its Stream
    """Feed the readings to every sensor pipeline in per-partition batches (Stream path)."""
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
