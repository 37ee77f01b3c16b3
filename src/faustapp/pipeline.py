"""Windowed pipelines on Faust: decode, route, window, persist and emit, per partition batch.

A :class:`SourceRouter` reads one input topic: it decodes every record once, dead-letters the bad
ones, forwards records whose value belongs to another partition, and feeds the events to every
:class:`WindowedPipeline` declared on that topic. Each pipeline owns a table, a window engine per
partition and an output topic.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka.structs import TopicPartition
from faust.types import TP

from faustapp import metrics
from faustapp.fastpath import SourceRecord, ack_offsets
from faustapp.producing import PartitionProducer, commit_gate
from faustapp.records import InvalidRecord
from faustapp.schema import Schema
from faustapp.side_records import DLQ_RAW_LIMIT, SideRecord, dead_letter
from faustapp.tables.events import Event
from faustapp.tables.state import BatchOutcome
from faustapp.topics import DLQ
from faustapp.windowed import (
    Partition,
    PartitionNotReady,
    PendingOutcome,
    PipelineSpec,
    WindowedPipeline,
    partition_for,
)

__all__ = [
    "DLQ_RAW_LIMIT",
    "PartitionNotReady",
    "PipelineSpec",
    "SourceRouter",
    "WindowedPipeline",
    "partition_for",
]

log = logging.getLogger(__name__)


@dataclass
class _PartitionBuffer:
    """What a partition processed since its last flush."""

    outcomes: list[PendingOutcome]
    side_sends: list[SideRecord]
    offsets: list[int]  # to acknowledge once flushed (not the records: less for the GC)
    since: float
    events: int = 0


class SourceRouter:
    """Reads one input topic for several pipelines: decode once, dead-letter once, route once."""

    def __init__(
        self,
        app: faust.App,
        name: str,
        source_topic: str,
        partitions: int,
        schema: Schema,
        dlq_topic: str = DLQ,
        max_future_skew_ms: int = 3_600_000,
        flush_interval_ms: int = 500,
        max_pending_events: int = 100_000,
        output_topics: Sequence[Any] = (),
    ) -> None:
        self.app = app
        self.name = name
        self.max_future_skew_ms = max_future_skew_ms
        self.source_topic = source_topic
        self.partitions = partitions
        self.schema = schema
        self.dlq_topic = dlq_topic
        self.producer = PartitionProducer(app, source_topic)
        self.pipelines: list[WindowedPipeline] = []
        self._locks: dict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._gate = commit_gate(app)
        self._last_activity_ms: dict[int, float] = {}
        self._buffers: dict[int, _PartitionBuffer] = {}
        self._output_topics = list(output_topics)
        self.gates: list[Callable[[], Awaitable[None]]] = []
        """Awaited before each batch (a reference table's first load)."""
        self._outputs_declared = False
        self._homes: dict[str, int] = {}  # key -> partition, murmur2 is slow in Python
        self._events_in = metrics.EVENTS_IN.labels(name)
        self._batch_seconds = metrics.BATCH_SECONDS.labels(name)
        # Counters exist at 0 from the start, so the first increase is visible to rate().
        self._dead_letters = metrics.DEAD_LETTERS.labels(name)
        self._rekeyed = metrics.REKEYED.labels(name)
        self._replayed = metrics.REPLAYED.labels(name)
        self.flush_interval_s = flush_interval_ms / 1000
        self.max_pending_events = max_pending_events

    def add(self, spec: PipelineSpec, table: faust.Table) -> WindowedPipeline:
        """Declare one more pipeline on this topic."""
        return self.attach(WindowedPipeline(self.app, spec, table, self.producer))

    def attach(self, pipeline: WindowedPipeline) -> WindowedPipeline:
        """Feed this topic's events to ``pipeline`` too (built on :attr:`producer`)."""
        self.pipelines.append(pipeline)
        return pipeline

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop in-memory state of revoked partitions."""
        revoked = list(partitions)
        for pipeline in self.pipelines:
            pipeline.forget(revoked)

    async def commit_revoked(self, partitions: Iterable[int]) -> None:
        """Commit the open transactions of revoked partitions with the offsets processed so far.

        Under ``exactly_once`` Faust drops the pending acks of revoked partitions but leaves their
        transactions open; a partition that stays on this worker is then restored from the state
        before that transaction, and the transaction is committed later anyway: its results
        appear twice. Committing here, as Kafka Streams does, keeps state and outputs in step.
        """
        partitions = list(partitions)
        for partition in partitions:
            async with self._holding(partition):
                await self._flush(partition)
        if not self.app.in_transaction:
            return
        offsets: dict[TopicPartition, int] = {}
        for partition in partitions:
            parts = [pipeline.loaded(partition) for pipeline in self.pipelines]
            if any(part is None for part in parts) or not parts:
                continue
            processed = min(part.applied_offset for part in parts)
            if processed >= 0:
                offsets[TopicPartition(self.source_topic, partition)] = processed + 1
        if offsets:
            log.info("%s: committing %d revoked partitions: %s", self.name, len(offsets), offsets)
            await self.app.consumer.transactions.commit(offsets, start_new_transaction=True)

    def state_for(self, pipeline: WindowedPipeline, key: str) -> Partition:
        """Active partition state holding ``key``, for queries."""
        partition = partition_for(key, self.partitions)
        if TP(self.source_topic, partition) not in self.app.assignor.assigned_actives():
            raise PartitionNotReady(f"partition {partition} is not active on this worker")
        part = pipeline.loaded(partition)
        if part is None:
            if not self.app.tables.actives_ready:
                raise PartitionNotReady(f"partition {partition} is still recovering")
            part = pipeline.restore(partition)
        return part

    async def process(self, messages: Sequence[SourceRecord]) -> None:
        """Process a batch that may span partitions and persist it before returning (the
        Stream path: the stream acknowledges the batch as soon as this returns)."""
        by_partition: dict[int, list[SourceRecord]] = defaultdict(list)
        for message in messages:
            by_partition[message.partition].append(message)
        for partition, batch in by_partition.items():
            async with self._holding(partition):
                await self._ingest(partition, batch, keep_messages=False)
                await self._flush(partition)

    async def handle_batch(self, tp: TP, messages: Sequence[SourceRecord]) -> None:
        """Batch path: fold a partition's fetched batch in; persist and acknowledge it when the
        write-behind interval is due (see :meth:`flush_due`)."""
        partition = tp.partition
        async with self._holding(partition):
            await self._ingest(partition, messages, keep_messages=True)
            buffer = self._buffers[partition]
            if (
                time.monotonic() - buffer.since >= self.flush_interval_s
                or buffer.events >= self.max_pending_events
            ):
                await self._flush(partition)

    async def flush_due(self, force: bool = False) -> None:
        """Flush partitions whose write-behind interval has passed (or all, with ``force``)."""
        now = time.monotonic()
        for partition, buffer in list(self._buffers.items()):
            if force or now - buffer.since >= self.flush_interval_s:
                async with self._holding(partition):
                    if partition in self._buffers:
                        await self._flush(partition)

    async def repeat_watermarks(self) -> None:
        """Let pipelines that feed another stage repeat their partitions' watermarks when due,
        also for partitions that receive nothing (see ``repartition.WATERMARK_HEARTBEAT_S``)."""
        if self.app.rebalancing:
            return
        feeding = [pipeline for pipeline in self.pipelines if pipeline.feeds_a_stage]
        if not feeding:
            return
        for tp in self.app.assignor.assigned_actives():
            if tp.topic != self.source_topic:
                continue
            async with self._holding(tp.partition):
                if tp.partition in self._buffers:
                    continue  # its pending flush sends them
                for pipeline in feeding:
                    if pipeline.loaded(tp.partition) is not None:
                        await pipeline.apply(tp.partition, BatchOutcome(), [])

    async def close_idle(self, idle_ms: int) -> None:
        """Move the stream time of partitions quiet for ``idle_ms`` forward by their idle time,
        so the last windows of a quiet stream close too."""
        if self.app.rebalancing:
            return  # partitions may be moving; the next tick will see the new owner
        now_ms = time.time() * 1000
        actives = self.app.assignor.assigned_actives()
        for partition, last in list(self._last_activity_ms.items()):
            if now_ms - last < idle_ms:
                continue
            tp = TP(self.source_topic, partition)
            if tp not in actives:
                self._last_activity_ms.pop(partition, None)
                continue
            async with self._holding(partition):
                if self._last_activity_ms.get(partition) != last:
                    continue  # a batch arrived meanwhile
                await self._flush(partition)
                self._last_activity_ms[partition] = now_ms
                closed = 0
                for pipeline in self.pipelines:
                    part = pipeline.loaded(partition)
                    if part is None or part.stream_time < 0:
                        continue
                    outcome = part.close_due(part.stream_time + int(now_ms - last))
                    closed += len(outcome.results)
                    await pipeline.apply(partition, outcome, [])
                if closed:
                    log.info(
                        "%s: idle partition %d closed %d windows", self.name, partition, closed
                    )
            await self._commit_idle(tp)  # outside the region: a commit waits for regions

    @asynccontextmanager
    async def _holding(self, partition: int) -> AsyncIterator[None]:
        """The partition's lock, inside the app's commit gate: what happens here (fold, flush,
        idle close) is never cut in two by a transaction commit."""
        async with self._locks[partition], self._gate.flushing():
            yield

    async def _commit_idle(self, tp: TP) -> None:
        # Under exactly_once the results above sit in the partition's open transaction, and an
        # idle partition has no new offsets for Faust to commit: commit the same offset again.
        if not self.app.in_transaction:
            return
        consumer = self.app.consumer
        offset = consumer._committed_offset.get(tp)
        if offset is not None:
            await consumer.transactions.commit(
                {TopicPartition(tp.topic, tp.partition): offset}, start_new_transaction=True
            )

    def declare_outputs(self, topics: Iterable[Any]) -> None:
        """Topics this router's pipelines send to: created before the first send."""
        self._output_topics.extend(topics)

    async def _declare_outputs(self) -> None:
        # Before the first send: the broker does not create topics on demand, and a send to a
        # missing topic would wait on metadata instead of failing.
        for topic in self._output_topics:
            await topic.maybe_declare()
        self._outputs_declared = True

    async def _ingest(
        self, partition: int, batch: Sequence[SourceRecord], keep_messages: bool
    ) -> None:
        if not self._outputs_declared:
            await self._declare_outputs()
        for gate in self.gates:
            await gate()
        try:
            await self._fold_batch(partition, batch, keep_messages)
        except BaseException:
            # Half a batch must never be flushed (by the stop hook, for one): drop what this
            # partition holds in memory; a restart replays it from the table and the offsets.
            self._buffers.pop(partition, None)
            self.forget([partition])
            raise

    async def _fold_batch(
        self, partition: int, batch: Sequence[SourceRecord], keep_messages: bool
    ) -> None:
        started = time.perf_counter()
        parts = [await pipeline.partition(partition) for pipeline in self.pipelines]
        buffer = self._buffer_for(partition)
        floor = min(part.applied_offset for part in parts)
        self._events_in.inc(len(batch))
        side_sends = buffer.side_sends
        events: list[Event] = []
        last_offset, replayed = floor, 0
        # A clock far in the future would close every open window at once: such events are
        # refused before they can move stream time.
        latest_allowed = int(time.time() * 1000) + self.max_future_skew_ms
        decode = self.schema.decode
        key_of, ts_of = self.schema.key_of, self.schema.ts_of
        homes = self._homes
        for message in batch:
            if message.offset <= floor:
                replayed += 1
                continue
            last_offset = message.offset
            try:
                record = decode(message.value)
            except InvalidRecord as exc:
                side_sends.append(self._dead_letter(message, str(exc)))
                continue
            key, ts = key_of(record), ts_of(record)
            if ts > latest_allowed:
                error = (
                    f"event time {ts} is more than {self.max_future_skew_ms} ms ahead of "
                    f"the worker's clock"
                )
                side_sends.append(self._dead_letter(message, error))
                continue
            home = homes.get(key)
            if home is None:
                if len(homes) > 1_000_000:
                    homes.clear()
                home = homes[key] = partition_for(key, self.partitions)
            if home != partition:
                side_sends.append(self._forward(message, key, home))
                continue
            events.append(Event(key, ts, record, message.offset))
        if replayed:
            self._replayed.inc(replayed)
        for pipeline, pending, part in zip(self.pipelines, buffer.outcomes, parts, strict=True):
            enrich = pipeline.spec.enrich
            mine = (
                events
                if enrich is None
                else [Event(e.key, e.ts, enrich(e.record), e.offset) for e in events]
            )
            outcome = part.process(mine, through_offset=last_offset)
            pending.add(outcome)
            if outcome.accepted:
                pipeline.accepted.inc(outcome.accepted)
        buffer.events += len(batch)
        if keep_messages:
            buffer.offsets.extend([record.offset for record in batch])
        self._batch_seconds.observe(time.perf_counter() - started)

    def _buffer_for(self, partition: int) -> _PartitionBuffer:
        """The partition's write-behind buffer (a new one after a flush); notes activity."""
        buffer = self._buffers.get(partition)
        if buffer is None:
            buffer = self._buffers[partition] = _PartitionBuffer(
                [PendingOutcome() for _ in self.pipelines], [], [], time.monotonic()
            )
        self._last_activity_ms[partition] = time.time() * 1000
        return buffer

    async def _flush(self, partition: int) -> None:
        buffer = self._buffers.pop(partition, None)
        if buffer is None:
            return
        # Sent only now: a transaction committed between the fold and this flush (Faust commits
        # on its own clock) would otherwise hold a dead letter whose source offset is replayed.
        side_sends = [
            await self.producer.send(
                side.topic,
                side.key,
                side.value,
                source_partition=partition,
                partition=side.partition,
            )
            for side in buffer.side_sends
        ]
        for pipeline, pending in zip(self.pipelines, buffer.outcomes, strict=True):
            # Side outputs ride with the first pipeline: durable before any mark covers them.
            await pipeline.apply(partition, pending.outcome(), side_sends)
            side_sends = []
            part = pipeline.loaded(partition)
            if part is not None:
                name = pipeline.metric_label
                metrics.OPEN_WINDOWS.labels(name, str(partition)).set(len(part.open))
                metrics.STREAM_TIME.labels(name, str(partition)).set(
                    max(part.stream_time, 0) / 1000
                )
        if buffer.offsets:
            ack_offsets(self.app.consumer, TP(self.source_topic, partition), buffer.offsets)

    def _dead_letter(self, message: SourceRecord, error: str) -> SideRecord:
        self._dead_letters.inc()
        return dead_letter(self.dlq_topic, self.name, message, error)

    def _forward(self, message: SourceRecord, key: str, home: int) -> SideRecord:
        self._rekeyed.inc()
        return SideRecord(self.source_topic, key.encode(), message.value, home)
