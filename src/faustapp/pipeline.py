"""A windowed pipeline on Faust: decode, route, window, persist and emit, per partition batch."""

from __future__ import annotations

import base64
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import faust
import orjson
from aiokafka.partitioner import murmur2
from aiokafka.structs import RecordMetadata
from faust.types import TP, Message

from faustapp import metrics
from faustapp.producing import PartitionProducer
from faustapp.records import InvalidRecord
from faustapp.tables.engine import (
    MARK_KEY,
    BatchOutcome,
    LateEvent,
    PartitionWindows,
    WindowSpec,
    WindowState,
)
from faustapp.tables.events import Event
from faustapp.tables.store import TableStore
from faustapp.topics import DLQ, LATE

log = logging.getLogger(__name__)

Decoded = tuple[str, int, float]


class PartitionNotReady(Exception):
    """The key's partition is not active on this worker right now (rebalance or recovery)."""


@dataclass(frozen=True, slots=True)
class PipelineSpec:
    """Everything that distinguishes one windowed pipeline from another."""

    name: str
    source_topic: str
    output_topic: str
    key_field: str
    window: WindowSpec
    decode: Callable[[bytes | None], Decoded]
    late_topic: str = LATE
    dlq_topic: str = DLQ


def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2) puts ``key`` in."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


class WindowedPipeline:
    """Runs one :class:`PipelineSpec` over the partitions this worker owns."""

    def __init__(
        self, app: faust.App, spec: PipelineSpec, table: faust.Table, partitions: int
    ) -> None:
        self.app = app
        self.spec = spec
        self.partitions = partitions
        self.producer = PartitionProducer(app, spec.source_topic)
        self.store = TableStore(app, table, self.producer)
        self._parts: dict[int, PartitionWindows] = {}

    # -- state ------------------------------------------------------------------------------

    def loaded(self, partition: int) -> PartitionWindows | None:
        """In-memory state of a partition, if it was restored since it was assigned."""
        return self._parts.get(partition)

    def _restore(self, partition: int) -> PartitionWindows:
        part = PartitionWindows.restore(self.spec.window, self.store.records(partition))
        self._parts[partition] = part
        log.info(
            "%s: partition %d restored: %d open windows, stream time %d, applied offset %d",
            self.spec.name,
            partition,
            len(part.open),
            part.stream_time,
            part.applied_offset,
        )
        return part

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop in-memory state of partitions this worker no longer owns."""
        for partition in partitions:
            self._parts.pop(partition, None)

    def windows_of(self, key: str) -> list[WindowState]:
        """The key's open windows, served from the active partition's state."""
        partition = partition_for(key, self.partitions)
        tp = TP(self.spec.source_topic, partition)
        if tp not in self.app.assignor.assigned_actives():
            raise PartitionNotReady(f"partition {partition} is not active on this worker")
        part = self._parts.get(partition)
        if part is None:
            if not self.app.tables.actives_ready:
                raise PartitionNotReady(f"partition {partition} is still recovering")
            part = self._restore(partition)
        return part.windows_of(key)

    # -- processing -------------------------------------------------------------------------

    async def process(self, messages: Sequence[Message]) -> None:
        """Process a batch that may span partitions, keeping each partition's own order."""
        by_partition: dict[int, list[Message]] = defaultdict(list)
        for message in messages:
            by_partition[message.partition].append(message)
        for partition, batch in by_partition.items():
            await self._process_partition(partition, batch)

    async def _process_partition(self, partition: int, batch: list[Message]) -> None:
        started = time.perf_counter()
        name = self.spec.name
        part = self._parts.get(partition)
        if part is None:
            part = self._restore(partition)
            restored = part.close_due()
            if restored.results:
                log.info(
                    "%s: emitting %d windows final before restart", name, len(restored.results)
                )
                await self._apply(partition, restored, [])
        metrics.EVENTS_IN.labels(name).inc(len(batch))
        side_sends: list[Awaitable[RecordMetadata]] = []
        events: list[Event] = []
        last_offset = part.applied_offset
        replayed = 0
        for message in batch:
            if message.offset <= part.applied_offset:
                replayed += 1
                continue
            last_offset = message.offset
            try:
                key, ts, value = self.spec.decode(message.value)
            except InvalidRecord as exc:
                side_sends.append(await self._dead_letter(message, str(exc)))
                continue
            home = partition_for(key, self.partitions)
            if home != partition:
                side_sends.append(await self._forward(message, key, home))
                continue
            events.append(Event(key, ts, value, message.offset))
        if replayed:
            metrics.REPLAYED.labels(name).inc(replayed)
        outcome = part.process(events, through_offset=last_offset)
        for late in outcome.late:
            side_sends.append(await self._send_late(partition, late))
        await self._apply(partition, outcome, side_sends)
        metrics.EVENTS_ACCEPTED.labels(name).inc(outcome.accepted)
        metrics.OPEN_WINDOWS.labels(name, str(partition)).set(len(part.open))
        metrics.STREAM_TIME.labels(name, str(partition)).set(max(part.stream_time, 0) / 1000)
        metrics.BATCH_SECONDS.labels(name).observe(time.perf_counter() - started)

    async def _apply(
        self,
        partition: int,
        outcome: BatchOutcome,
        side_sends: list[Awaitable[RecordMetadata]],
    ) -> None:
        """Persist and emit in the order that makes any crash replay into the same results."""
        store, producer = self.store, self.producer
        # 1. Window updates and side outputs must be durable before the partition mark says
        #    their source offsets were applied.
        first = side_sends + await store.write(partition, outcome.updates)
        delivered = await producer.delivered(first)
        # 2. The mark, then the results: a crash in between re-emits identical results.
        second = await store.write(partition, [(MARK_KEY, outcome.mark)])
        for result in outcome.results:
            second.append(
                await producer.send(
                    self.spec.output_topic,
                    result.key.encode(),
                    orjson.dumps(result.as_dict(self.spec.key_field)),
                    source_partition=partition,
                )
            )
        delivered += await producer.delivered(second)
        # 3. Only now may the final windows leave the state.
        third = await store.write(partition, [(key, None) for key in outcome.deletes])
        delivered += await producer.delivered(third)
        store.mark_persisted(partition, delivered)
        name = self.spec.name
        if outcome.results:
            metrics.WINDOWS_CLOSED.labels(name).inc(len(outcome.results))
        if outcome.late:
            metrics.LATE_EVENTS.labels(name).inc(len(outcome.late))

    async def _dead_letter(self, message: Message, error: str) -> Awaitable[RecordMetadata]:
        metrics.DEAD_LETTERS.labels(self.spec.name).inc()
        record = {
            "pipeline": self.spec.name,
            "source_topic": message.topic,
            "source_partition": message.partition,
            "source_offset": message.offset,
            "error": error,
            "key_b64": _b64(message.key),
            "value_b64": _b64(message.value),
        }
        return await self.producer.send(
            self.spec.dlq_topic,
            message.key,
            orjson.dumps(record),
            source_partition=message.partition,
        )

    async def _forward(self, message: Message, key: str, home: int) -> Awaitable[RecordMetadata]:
        metrics.REKEYED.labels(self.spec.name).inc()
        return await self.producer.send(
            self.spec.source_topic,
            key.encode(),
            message.value,
            source_partition=message.partition,
            partition=home,
        )

    async def _send_late(self, partition: int, late: LateEvent) -> Awaitable[RecordMetadata]:
        event = late.event
        record = {
            "pipeline": self.spec.name,
            "source_topic": self.spec.source_topic,
            "source_partition": partition,
            "source_offset": event.offset,
            self.spec.key_field: event.key,
            "ts": event.ts,
            "value": event.value,
            "window_start": late.window.start,
            "window_end": late.window.end,
            "stream_time": late.stream_time,
            "reason": late.reason,
        }
        return await self.producer.send(
            self.spec.late_topic,
            event.key.encode(),
            orjson.dumps(record),
            source_partition=partition,
        )


def _b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode()
