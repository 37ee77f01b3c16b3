"""Regrouping through a repartition topic, with watermarks, as Kafka Streams' ``groupBy`` does.

Upstream, on every input partition, a :class:`RegroupPipeline` decides lateness by that
partition's own stream time and forwards the other events to ``<app>-<pipeline>-repartition``,
keyed by the field to group by, each with its source position in headers. After each flush it
sends its stream time as a watermark to every partition of that topic, also when it had no event
for it. Downstream, a :class:`WatermarkedRouter` windows the forwarded events with a clock that
is the minimum of the watermarks of all input partitions, skips an event it already applied
(a replay under at-least-once), and so gives the same results however fast each partition runs.
Both halves write inside the source partition's transaction under ``exactly_once``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any

import faust
import msgspec
import orjson
from aiokafka.structs import RecordMetadata

from faustapp.fastpath import SourceRecord
from faustapp.pipeline import SourceRouter
from faustapp.producing import PartitionProducer
from faustapp.records import InvalidRecord
from faustapp.tables.events import Event
from faustapp.tables.regroup import RegroupPartition, RegroupSpec
from faustapp.tables.state import MARK_KEY, BatchOutcome
from faustapp.windowed import PipelineSpec, WindowedPipeline, partition_for

SOURCE_HEADER = "faustapp-source-partition"
OFFSET_HEADER = "faustapp-source-offset"
WATERMARK_HEADER = "faustapp-watermark"
INDEX_HEADER = "faustapp-source-index"
SOURCE_TIME_HEADER = "faustapp-source-time"
WATERMARK_HEARTBEAT_S = 5.0
"""An unchanged watermark is sent again this often: one sent in a transaction that was then
aborted (a rebalance fencing the producer) must not hold the next stage's windows open."""


def watermark_due(sent: dict[int, tuple[int, float]], partition: int, stream_time: int) -> bool:
    """Whether ``partition``'s watermark should go out now (moved, or not repeated lately);
    records it as sent when so."""
    if stream_time < 0:
        return False
    now = time.monotonic()
    last = sent.get(partition)
    if last is not None and last[0] == stream_time and now - last[1] < WATERMARK_HEARTBEAT_S:
        return False
    sent[partition] = (stream_time, now)
    return True


def repartition_topic(app_id: str, pipeline: str) -> str:
    """Name of a regrouped pipeline's internal topic (before the topic prefix)."""
    return f"{app_id}-{pipeline}-repartition"


class RegroupPipeline(WindowedPipeline):
    """The upstream half: lateness by the input partition's clock, then forward and watermark."""

    def __init__(
        self,
        app: faust.App,
        spec: PipelineSpec,
        table: faust.Table,
        producer: PartitionProducer,
        regroup: RegroupSpec,
        partitions: int,
    ) -> None:
        super().__init__(app, spec, table, producer)
        self.regroup = regroup
        self.partitions = partitions
        self._encode = msgspec.json.Encoder().encode
        self._homes: dict[str, int] = {}
        self._sent: dict[int, tuple[int, float]] = {}  # input partition -> (watermark, when)

    @property
    def feeds_a_stage(self) -> bool:
        """The downstream half reads its watermarks."""
        return True

    @property
    def metric_label(self) -> str:
        """Its own series: the downstream half counts the pipeline's accepted events and
        windows, this half only forwards (and names the late ones, under the pipeline)."""
        return f"{self.spec.name}-regroup"

    def new_partition(self, records: Iterable[tuple[bytes, bytes]]) -> RegroupPartition:
        """The input partition's clock, from its mark."""
        return RegroupPartition.restore(self.regroup, records)

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop the state of revoked partitions, and what was sent for them."""
        partitions = list(partitions)
        for partition in partitions:
            self._sent.pop(partition, None)
        super().forget(partitions)

    async def apply(
        self,
        partition: int,
        outcome: BatchOutcome,
        side_sends: list[Awaitable[RecordMetadata]],
    ) -> None:
        """Forwards and watermarks first (durable before the mark that covers them), then the
        mark: a crash in between forwards again, and the downstream half skips the repeats."""
        producer, topic = self.producer, self.spec.output_topic
        for late in outcome.late:
            side_sends.append(await self._send_late(partition, late))
        homes = self._homes
        source = str(partition).encode()
        for forward in outcome.results:
            home = homes.get(forward.key)
            if home is None:
                if len(homes) > 1_000_000:
                    homes.clear()
                home = homes[forward.key] = partition_for(forward.key, self.partitions)
            event = forward.event
            side_sends.append(
                await producer.send(
                    topic,
                    forward.key.encode(),
                    self._encode(event.record),
                    source_partition=partition,
                    partition=home,
                    headers=[
                        (SOURCE_HEADER, source),
                        (OFFSET_HEADER, b"%d" % event.offset),
                        (INDEX_HEADER, b"%d" % forward.index),
                        (SOURCE_TIME_HEADER, b"%d" % forward.source_time),
                    ],
                )
            )
        part = self.loaded(partition)
        if part is not None and watermark_due(self._sent, partition, part.stream_time):
            watermark = b"%d" % part.stream_time
            readable = b'{"watermark":%d,"source_partition":%d}' % (part.stream_time, partition)
            for target in range(self.partitions):
                side_sends.append(
                    await producer.send(
                        topic,
                        None,
                        readable,
                        source_partition=partition,
                        partition=target,
                        headers=[(SOURCE_HEADER, source), (WATERMARK_HEADER, watermark)],
                    )
                )
        delivered = await producer.delivered(side_sends)
        marked = await self.store.write(
            partition, [(MARK_KEY, outcome.mark)] if outcome.mark else []
        )
        delivered += await producer.delivered(marked)
        self.store.mark_persisted(partition, delivered)
        if outcome.late:
            self.late_events.inc(len(outcome.late))


async def send_watermark(
    producer: PartitionProducer, topic: str, partition: int, stream_time: int, partitions: int
) -> list[Awaitable[RecordMetadata]]:
    """Tell every partition of ``topic`` how far ``partition``'s stream time has come."""
    headers = [(SOURCE_HEADER, b"%d" % partition), (WATERMARK_HEADER, b"%d" % stream_time)]
    readable = b'{"watermark":%d,"source_partition":%d}' % (stream_time, partition)
    return [
        await producer.send(
            topic, None, readable, source_partition=partition, partition=target, headers=headers
        )
        for target in range(partitions)
    ]


class ResultRelay:
    """Hands one stage's final results to the stage that ranks them, all under one key, with the
    stage's stream time as a watermark (:class:`faustapp.windowed.Relay`)."""

    def __init__(self, topic: str, key: str, partitions: int) -> None:
        self.topic = topic
        self.key = key
        self.partitions = partitions
        self.home = partition_for(key, partitions)
        self._sent: dict[int, tuple[int, float]] = {}

    async def forward(
        self,
        producer: PartitionProducer,
        partition: int,
        results: list[dict[str, Any]],
        stream_time: int,
    ) -> list[Awaitable[RecordMetadata]]:
        """Results first, then the watermark: the next stage sees them before it may close."""
        key = self.key.encode()
        source = [(SOURCE_HEADER, b"%d" % partition)]
        futures = []
        for result in results:
            # The row's time is its window's last millisecond: the ranking window that holds it
            # closes exactly when every feeding partition has closed this window.
            value = orjson.dumps({**result, "rank_key": self.key, "ts": result["window_end"] - 1})
            futures.append(
                await producer.send(
                    self.topic,
                    key,
                    value,
                    source_partition=partition,
                    partition=self.home,
                    headers=source,
                )
            )
        if watermark_due(self._sent, partition, stream_time):
            futures += await send_watermark(
                producer, self.topic, partition, stream_time, self.partitions
            )
        return futures


class WatermarkedRouter(SourceRouter):
    """The downstream half: reads a repartition topic for one pipeline, whose clock is the
    minimum watermark of the ``feeding`` input partitions."""

    def __init__(self, *args: Any, feeding: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.feeding = feeding

    async def close_idle(self, idle_ms: int) -> None:
        """Idle close happens upstream: an idle input partition's watermark moves instead."""

    async def _fold_batch(
        self, partition: int, batch: Sequence[SourceRecord], keep_messages: bool
    ) -> None:
        started = time.perf_counter()
        (pipeline,) = self.pipelines
        part = await pipeline.partition(partition)
        buffer = self._buffer_for(partition)
        (pending,) = buffer.outcomes
        floor = part.applied_offset
        self._events_in.inc(len(batch))
        decode, key_of, ts_of = self.schema.decode, self.schema.key_of, self.schema.ts_of
        events: list[Event] = []
        replayed = accepted = 0
        for message in batch:
            offset = message.offset
            if offset <= floor:
                replayed += 1
                continue
            headers = dict(message.headers or ())
            source = int(headers.get(SOURCE_HEADER, b"-1"))
            watermark = headers.get(WATERMARK_HEADER)
            if watermark is not None:
                if events:
                    segment = part.process(events, through_offset=offset - 1)
                    pending.add(segment)
                    accepted += segment.accepted
                    events = []
                moved = part.watermark(source, int(watermark), self.feeding)
                part.applied_offset = max(part.applied_offset, offset)
                pending.add(part.close_due(moved))
                continue
            position = headers.get(OFFSET_HEADER)
            index = int(headers.get(INDEX_HEADER, b"0"))
            if position is not None and part.forwarded_before(source, int(position), index):
                replayed += 1
                continue
            try:
                record = decode(message.value)
            except InvalidRecord as exc:  # not written by faustapp: kept, never dropped
                buffer.side_sends.append(self._dead_letter(message, str(exc)))
                continue
            source_time = int(headers.get(SOURCE_TIME_HEADER, b"-1"))
            events.append(Event(key_of(record), ts_of(record), record, offset, source_time))
        outcome = part.process(events, through_offset=batch[-1].offset if batch else -1)
        pending.add(outcome)
        accepted += outcome.accepted
        if accepted:
            pipeline.accepted.inc(accepted)
        if replayed:
            self._replayed.inc(replayed)
        buffer.events += len(batch)
        if keep_messages:
            buffer.offsets.extend([record.offset for record in batch])
        self._batch_seconds.observe(time.perf_counter() - started)
