"""One windowed pipeline: its spec, its state per partition, and the crash-safe order in which
a batch (or a write-behind flush of several) is persisted and emitted."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import faust
import msgspec
import orjson
from aiokafka.partitioner import murmur2
from aiokafka.structs import RecordMetadata

from faustapp import metrics
from faustapp.producing import PartitionProducer
from faustapp.tables.engine import PartitionWindows
from faustapp.tables.panes import PanedWindows, paned
from faustapp.tables.sliding import SlidingPartition
from faustapp.tables.state import MARK_KEY, BatchOutcome, LateEvent, WindowSpec, encoded
from faustapp.tables.store import TableStore
from faustapp.tables.windows import SlidingWindows
from faustapp.topics import LATE

if TYPE_CHECKING:
    from faustapp.history import ResultHistory

log = logging.getLogger(__name__)

Partition = PartitionWindows | PanedWindows | SlidingPartition


class Relay(Protocol):
    """Hands a stage's final results, and its clock as a watermark, to the next stage."""

    async def forward(
        self,
        producer: PartitionProducer,
        partition: int,
        results: list[dict[str, Any]],
        stream_time: int,
    ) -> list[Awaitable[RecordMetadata]]:
        """Queue the results and the watermark; the futures of what was sent."""


class PartitionNotReady(Exception):
    """The key's partition is not active on this worker right now (rebalance or recovery)."""


@dataclass(frozen=True, slots=True)
class PipelineSpec:
    """Everything that distinguishes one windowed pipeline from another."""

    name: str
    output_topic: str
    key_field: str
    window: WindowSpec
    late_topic: str = LATE
    select: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None
    """Optional last step: reshape a result, or drop it by returning None (alerts)."""
    emit: bool = True
    """Whether results go to ``output_topic`` (False: only derived outputs are selected)."""
    derived: tuple[tuple[str, Callable[[dict[str, Any]], dict[str, Any] | None]], ...] = ()
    """Further outputs computed from each final result: (topic, select)."""
    enrich: Callable[[Any], Any] | None = None
    """Optional first step: each record enriched (a stream-table join) before windowing."""

    def new_partition(self, records: Iterable[tuple[bytes, bytes]]) -> Partition:
        """Window state of one partition, rebuilt from its table records."""
        if isinstance(self.window.windows, SlidingWindows):
            return SlidingPartition.restore(self.window, records)
        if paned(self.window):
            return PanedWindows.restore(self.window, records)
        return PartitionWindows.restore(self.window, records)


class PendingOutcome:
    """Outcomes of several batches folded into one flush: the write-behind cache.

    Keeps the latest value of every key written (windows closed later in the same flush are
    still written first, so a crash after the mark can re-emit them), the latest mark, every
    result and late event, and the keys whose last operation was a delete.
    """

    def __init__(self) -> None:
        self.values: dict[bytes, Any] = {}
        self.mark = b""
        self.results: list[Any] = []
        self.after: dict[bytes, bytes] = {}
        self.deleted: dict[bytes, None] = {}
        self.late: list[LateEvent] = []
        self.accepted = 0

    def add(self, outcome: BatchOutcome) -> None:
        """Fold one batch's outcome in, in order."""
        for key, value in outcome.updates:
            if value is None:
                self.deleted[key] = None
            else:
                self.values[key] = value
                self.deleted.pop(key, None)
        self.mark = outcome.mark or self.mark
        self.results.extend(outcome.results)
        self.after.update(outcome.after_results)
        for key in outcome.deletes:
            self.deleted[key] = None
        self.late.extend(outcome.late)
        self.accepted += outcome.accepted

    def outcome(self) -> BatchOutcome:
        """One outcome that applies everything folded in."""
        return BatchOutcome(
            updates=list(self.values.items()),
            mark=self.mark,
            results=self.results,
            after_results=list(self.after.items()),
            deletes=list(self.deleted),
            late=self.late,
            accepted=self.accepted,
        )


def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2) puts ``key`` in."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


class WindowedPipeline:
    """One windowed aggregation over the partitions of its source that this worker owns."""

    def __init__(
        self,
        app: faust.App,
        spec: PipelineSpec,
        table: faust.Table,
        producer: PartitionProducer,
    ) -> None:
        self.app = app
        self.spec = spec
        self.producer = producer
        self.store = TableStore(app, table, producer)
        self._parts: dict[int, Partition] = {}
        self.relay: Relay | None = None
        """Where final results also go for a stage fed by this one (a ranking), if any."""
        self.history: ResultHistory | None = None
        """The last final results of each key, written with the results (for the views)."""
        self.accepted = metrics.EVENTS_ACCEPTED.labels(self.metric_label)
        # Counters exist at 0 from the start, so the first increase is visible to rate().
        self.windows_closed = metrics.WINDOWS_CLOSED.labels(spec.name)
        self.late_events = metrics.LATE_EVENTS.labels(spec.name)

    @property
    def metric_label(self) -> str:
        """The ``pipeline`` label of its accepted-events, open-window and stream-time series."""
        return self.spec.name

    @property
    def feeds_a_stage(self) -> bool:
        """Whether another stage reads its watermarks (a ranking over its results)."""
        return self.relay is not None

    def loaded(self, partition: int) -> Partition | None:
        """In-memory state of a partition, if it was restored since it was assigned."""
        return self._parts.get(partition)

    def new_partition(self, records: Iterable[tuple[bytes, bytes]]) -> Partition:
        """The partition's state rebuilt from its table records."""
        return self.spec.new_partition(records)

    def restore(self, partition: int) -> Partition:
        """Rebuild a partition's state from its table (after assignment or recovery)."""
        part = self.new_partition(self.store.records(partition))
        self._parts[partition] = part
        name, label = self.metric_label, str(partition)
        metrics.OPEN_WINDOWS.labels(name, label).set(len(part.open))
        metrics.STREAM_TIME.labels(name, label).set(max(part.stream_time, 0) / 1000)
        log.info(
            "%s: partition %d restored: %d keys in state, stream time %d, applied offset %d",
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
            for gauge in (metrics.OPEN_WINDOWS, metrics.STREAM_TIME):
                with contextlib.suppress(KeyError):  # never set for this partition
                    gauge.remove(self.metric_label, str(partition))

    async def partition(self, partition: int) -> Partition:
        """The partition's state, restored on first use, with restart leftovers emitted."""
        part = self._parts.get(partition)
        if part is None:
            part = self.restore(partition)
            leftovers = part.close_due()
            if leftovers.results:
                log.info(
                    "%s: emitting %d results final before the restart",
                    self.spec.name,
                    len(leftovers.results),
                )
            await self.apply(partition, leftovers, [])
        return part

    async def apply(
        self,
        partition: int,
        outcome: BatchOutcome,
        side_sends: list[Awaitable[RecordMetadata]],
    ) -> None:
        """Persist and emit in the order that makes any crash replay into the same results."""
        store, producer = self.store, self.producer
        for late in outcome.late:
            side_sends.append(await self._send_late(partition, late))
        # 1. Window updates and side outputs are durable before the mark says their source
        #    offsets were applied.
        updates = [
            (key, None if value is None else encoded(value)) for key, value in outcome.updates
        ]
        delivered = await producer.delivered(side_sends + await store.write(partition, updates))
        # 2. The mark, then the results: a crash in between re-emits identical results.
        second = await store.write(partition, [(MARK_KEY, outcome.mark)] if outcome.mark else [])
        emitted = 0
        relayed: list[dict[str, Any]] = []
        history = self.history
        kept: dict[bytes, list[dict[str, Any]]] = {}
        for result in outcome.results:
            published, routes = self._route(result.as_dict(self.spec.key_field))
            for topic, record in routes:
                emitted += 1
                second.append(
                    await producer.send(
                        topic, result.key.encode(), orjson.dumps(record), source_partition=partition
                    )
                )
            if published is not None:
                if history is not None:
                    history.collect(kept, result.key, published, routes)
                if self.relay is not None:
                    relayed.append(published)
        if kept:
            # With the results, before the windows that made them leave the table: a crash
            # in between replays them into the history, which keeps each window once.
            second += await history.write(partition, kept)  # type: ignore[union-attr]
        if self.relay is not None:
            part = self.loaded(partition)
            clock = part.stream_time if part is not None else -1
            second += await self.relay.forward(producer, partition, relayed, clock)
        delivered += await producer.delivered(second)
        # 3. Only now may state that produced those results leave the table.
        third = await store.write(
            partition, [*outcome.after_results, *((key, None) for key in outcome.deletes)]
        )
        delivered += await producer.delivered(third)
        store.mark_persisted(partition, delivered)
        if history is not None:
            history.mark_persisted(partition, delivered)
        if emitted:
            self.windows_closed.inc(emitted)
        if outcome.late:
            self.late_events.inc(len(outcome.late))

    def _route(
        self, result: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, list[tuple[str, dict[str, Any]]]]:
        """What the pipeline publishes of a final result (``select``, None to publish nothing),
        and where it goes: its own topic and every derived output's (through their select)."""
        spec = self.spec
        published = result if spec.select is None else spec.select(result)
        if published is None:
            return None, []
        routes = []
        for topic, select in spec.derived:
            derived = select(dict(published))
            if derived is not None:
                routes.append((topic, derived))
        if spec.emit:
            routes.append((spec.output_topic, published))
        return published, routes

    async def _send_late(self, partition: int, late: LateEvent) -> Awaitable[RecordMetadata]:
        event = late.event
        record = {
            **_fields(event.record),
            "pipeline": self.spec.name,
            "source_topic": self.producer.source_topic,
            "source_partition": partition,
            "source_offset": event.offset,
            self.spec.key_field: event.key,
            "ts": event.ts,
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


def _fields(record: Any) -> dict[str, Any]:
    """A decoded record's fields, for the late topic (a bare value is ``value``)."""
    if isinstance(record, msgspec.Struct):
        return msgspec.structs.asdict(record)
    return {"value": record}
