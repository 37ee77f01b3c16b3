"""IoT sensor pipeline: readings -> 1-minute tumbling stats per sensor, final once by event time."""

from __future__ import annotations

from collections.abc import Set

from faust.types import TP

from faustapp.app import app, settings
from faustapp.pipeline import Decoded, PipelineSpec, WindowedPipeline
from faustapp.records import decode_reading
from faustapp.tables.engine import WindowSpec
from faustapp.tables.windows import tumbling
from faustapp.topics import DLQ, LATE, SENSOR_READINGS, SENSOR_STATS_1M


def decode_sensor(raw: bytes | None) -> Decoded:
    """Key, event time and value of a reading, or :class:`InvalidRecord`."""
    reading = decode_reading(raw)
    return reading.sensor_id, reading.ts, reading.value


readings_topic = app.topic(
    settings.topic(SENSOR_READINGS),
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.partitions,
    internal=True,  # faustapp creates it with the configured partitions, like Faust's own topics
)
output_topics = [
    app.topic(
        settings.topic(name),
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
    )
    for name in (SENSOR_STATS_1M, LATE, DLQ)
]

windows_1m = app.Table(
    "sensor-windows-1m",
    partitions=settings.partitions,
    key_type=bytes,
    value_type=bytes,
)

STATS_1M = PipelineSpec(
    name="sensor-stats-1m",
    source_topic=settings.topic(SENSOR_READINGS),
    output_topic=settings.topic(SENSOR_STATS_1M),
    key_field="sensor_id",
    window=WindowSpec(tumbling(60_000), grace_ms=settings.grace_ms),
    decode=decode_sensor,
    late_topic=settings.topic(LATE),
    dlq_topic=settings.topic(DLQ),
)
stats_1m = WindowedPipeline(app, STATS_1M, windows_1m, settings.partitions)


@app.agent(readings_topic)
async def sensor_stats_1m(stream):  # noqa: ANN001 - Faust passes its Stream
    """Feed the readings to the 1-minute pipeline in per-partition batches."""
    for topic in output_topics:
        await topic.maybe_declare()
    async for events in stream.take_events(settings.batch_size, settings.batch_within_ms / 1000):
        await stats_1m.process([event.message for event in events])


@app.on_partitions_revoked.connect
async def _forget_revoked(sender: object, revoked: Set[TP], **kwargs: object) -> None:
    stats_1m.forget(tp.partition for tp in revoked if tp.topic == STATS_1M.source_topic)
