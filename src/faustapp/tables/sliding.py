"""Sliding windows: for every event at ``t``, the moments of its key's events in [t - size, t].

An event's result is final once stream time >= t + grace; until then later events within the
grace can still fall into its window. Events are kept in per-key buckets of ``BUCKET_MS`` so the
state writes of a batch scale with the buckets it touched, not with its events; a bucket is deleted
once no pending event can reach it. Results are computed incrementally with two pointers over each
key's sorted events, so a result costs O(1) amortised whatever the window size.

Figures: count, sum, mean, population stddev (from exact running sums, so a result does not depend
on the order events arrived or on a restart), min and max (monotonic queues), each over any field
or expression of the record.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import orjson

from faustapp.tables.clock import PartitionClock
from faustapp.tables.events import Event
from faustapp.tables.moments import KeyEvents, Moments, plan
from faustapp.tables.state import MARK_KEY, BatchOutcome, LateEvent, WindowSpec
from faustapp.tables.windows import SlidingWindows, Window

BUCKET_PREFIX = b"s"
FRONTIER_KEY = b"m\x00emitted"
BUCKET_MS = 10_000
_OFFSET = 1 << 63
_NOTHING_EMITTED = -(1 << 62)


def bucket_key(key: str, bucket: int) -> bytes:
    """State-store key of one key's bucket of events."""
    return BUCKET_PREFIX + key.encode() + b"\x00" + (bucket + _OFFSET).to_bytes(8, "big")


def _parse_bucket_key(raw: bytes) -> tuple[str, int]:
    return raw[1:-9].decode(), int.from_bytes(raw[-8:], "big") - _OFFSET


@dataclass(frozen=True, slots=True)
class SlidingResult:
    """The final window of one event."""

    key: str
    event: Event
    window: Window
    figures: dict[str, Any]
    carried: dict[str, Any] = field(default_factory=dict)

    def as_dict(self, key_field: str) -> dict[str, object]:
        """JSON shape: the event (time and carried fields), its window and the window's figures."""
        record = self.event.record
        carried = self.carried or ({} if record is None else {"value": record})
        return {
            key_field: self.key,
            "ts": self.event.ts,
            **carried,
            "window_start": self.window.start,
            "window_end": self.window.end,
            **self.figures,
        }


class SlidingPartition(PartitionClock):
    """Sliding-window state of one input partition (see module docstring)."""

    def __init__(self, spec: WindowSpec) -> None:
        if not isinstance(spec.windows, SlidingWindows):
            raise TypeError("SlidingPartition needs SlidingWindows")
        super().__init__()
        self.spec = spec
        self.size = spec.windows.size_ms
        self.inputs, self.outputs = plan(spec)
        carry = spec.windows.carry
        self.carry_names = carry
        self._carry = attrgetter(*carry) if carry else None
        self.emitted_through = _NOTHING_EMITTED  # results of events with ts <= this are out
        self.keys: dict[str, KeyEvents] = {}
        self._pending: list[tuple[int, int, str]] = []
        self._expiry: list[tuple[int, str]] = []  # (bucket, key): when buckets can go

    def _new_key(self) -> KeyEvents:
        return KeyEvents([Moments() for _ in self.inputs])

    def _carried(self, event: Event) -> Any:
        """What an event's result repeats of it: the carried fields, or a bare value (a typed
        record without carried fields repeats nothing: only its time)."""
        if self._carry is None:
            record = event.record
            return record if isinstance(record, (int, float)) else None  # noqa: UP038
        if len(self.carry_names) == 1:
            return (self._carry(event.record),)
        return self._carry(event.record)

    @property
    def frontier(self) -> int:
        """Events at or before this time are final."""
        return self.stream_time - self.spec.grace_ms

    @classmethod
    def restore(cls, spec: WindowSpec, records: Iterable[tuple[bytes, bytes]]) -> SlidingPartition:
        """Rebuild from the partition's table records."""
        part = cls(spec)
        for raw_key, raw_value in records:
            if raw_key == MARK_KEY:
                part.load_mark(raw_value)
            elif raw_key == FRONTIER_KEY:
                part.emitted_through = orjson.loads(raw_value)
            elif raw_key.startswith(BUCKET_PREFIX):
                key, bucket = _parse_bucket_key(raw_key)
                max_offset, points = orjson.loads(raw_value)[:2]
                entry = part.keys.get(key)
                if entry is None:
                    entry = part.keys[key] = part._new_key()
                entry.buckets[bucket] = max_offset
                part._expiry.append((bucket, key))
                entry.points.extend(
                    (ts, off, tuple(values), tuple(carried) if type(carried) is list else carried)
                    for ts, off, values, carried in points
                )
        heapq.heapify(part._expiry)
        for key, entry in part.keys.items():
            entry.points.sort()  # by (ts, offset): unique, so nothing further is compared
            for ts, off, _, carried in entry.points:
                if ts > part.emitted_through:
                    heapq.heappush(part._pending, (ts, off, key, carried))
        return part

    def windows_of(self, key: str) -> list[tuple[int, int, tuple[Any, ...], Any]]:
        """The key's retained events ``(ts, offset, values, carried)``, oldest first."""
        entry = self.keys.get(key)
        return [] if entry is None else entry.points[entry.lo :]

    @property
    def open(self) -> dict[str, KeyEvents]:
        """Keys with retained events (for gauges)."""
        return self.keys

    def process(self, events: Iterable[Event], through_offset: int = -1) -> BatchOutcome:
        """Fold a batch in; emit the results of events that became final."""
        # The hot loop of sliding pipelines: locals only.
        outcome = BatchOutcome()
        dirty: dict[tuple[str, int], KeyEvents] = {}
        grace = self.spec.grace_ms
        value_fns = [source.value for source in self.inputs]
        single = value_fns[0] if len(value_fns) == 1 else None
        carried_of = self._carried
        where = self.spec.where
        limit = -1 if self.spec.watermarked else 1 << 62  # a watermarked clock moves elsewhere
        keys, expiry, pending = self.keys, self._expiry, self._pending
        applied, stream_time = self.applied_offset, self.stream_time
        accepted = replayed = 0
        for event in events:
            offset, ts = event.offset, event.ts
            if offset <= applied:
                replayed += 1
                continue
            applied = offset
            if where is not None and not where(event.record):
                if stream_time < ts < limit:
                    stream_time = ts  # filtered out, but the partition's clock moves
                continue
            if stream_time >= ts + grace:
                self.stream_time = stream_time
                outcome.late.append(
                    LateEvent(
                        event,
                        Window(ts - self.size, ts),
                        stream_time,
                        f"sliding window ending {ts} was final at stream time "
                        f"{stream_time} (grace {grace} ms)",
                    )
                )
                continue
            key = event.key
            entry = keys.get(key)
            if entry is None:
                entry = keys[key] = self._new_key()
            bucket = ts - ts % BUCKET_MS
            accepted += 1
            if stream_time < ts < limit:
                stream_time = ts
            buckets = entry.buckets
            held = buckets.get(bucket)
            if held is None:
                heapq.heappush(expiry, (bucket, key))
            elif offset <= held:
                continue  # replayed into a bucket that already holds it
            if single is not None:
                values: tuple[Any, ...] = (single(event),)
            else:
                values = tuple([value(event) for value in value_fns])
            carried = carried_of(event)
            point = (ts, offset, values, carried)
            points = entry.points
            if not points or points[-1] < point:
                points.append(point)  # in order, the common case
            else:
                bisect.insort(points, point, lo=entry.hi)
            buckets[bucket] = offset
            dirty[(key, bucket)] = entry
            heapq.heappush(pending, (ts, offset, key, carried))
        self.applied_offset, self.stream_time = applied, stream_time
        outcome.accepted += accepted
        outcome.replayed += replayed
        self.applied_offset = max(self.applied_offset, through_offset)
        # Encoded now, not at flush: closing below may retire or compact these buckets, and a
        # crash after the mark re-emits from what this batch left in them.
        outcome.updates = [
            (bucket_key(key, bucket), self._encode_bucket(entry, bucket))
            for (key, bucket), entry in dirty.items()
        ]
        outcome.mark = self.mark()
        self._close_due(outcome)
        return outcome

    def _encode_bucket(self, entry: KeyEvents, bucket: int) -> bytes:
        lo = bisect.bisect_left(entry.points, (bucket, -1))
        hi = bisect.bisect_left(entry.points, (bucket + BUCKET_MS, -1))
        return orjson.dumps([entry.buckets[bucket], entry.points[lo:hi]])

    def _close_due(self, outcome: BatchOutcome) -> None:
        frontier = self.frontier
        pending = self._pending
        touched: set[str] = set()
        inputs, outputs, names = self.inputs, self.outputs, self.carry_names
        while pending and pending[0][0] <= frontier:
            ts, offset, key, carried = heapq.heappop(pending)
            entry = self.keys[key]
            figures = entry.window_for(ts, self.size, inputs, outputs)
            shown = dict(zip(names, carried, strict=True)) if names else {}
            event = Event(key, ts, carried, offset)
            outcome.results.append(
                SlidingResult(key, event, Window(ts - self.size, ts), figures, shown)
            )
            touched.add(key)
        if frontier > self.emitted_through:
            self.emitted_through = frontier
        outcome.after_results.append((FRONTIER_KEY, orjson.dumps(self.emitted_through)))
        # Buckets wholly before the earliest window a pending event can still have are done.
        horizon = self.emitted_through - self.size
        expiry = self._expiry
        while expiry and expiry[0][0] + BUCKET_MS <= horizon:
            bucket, key = heapq.heappop(expiry)
            entry = self.keys.get(key)
            if entry is None or entry.buckets.pop(bucket, None) is None:
                continue
            outcome.deletes.append(bucket_key(key, bucket))
            if not entry.buckets and entry.hi >= len(entry.points):
                del self.keys[key]
        for key in touched:
            entry = self.keys.get(key)
            if entry is not None:
                entry.compact()

    def close_due(self, stream_time: int | None = None) -> BatchOutcome:
        """Emit results final at the restored stream time, or at a moved-forward ``stream_time``."""
        if stream_time is not None and stream_time > self.stream_time:
            self.stream_time = stream_time
        outcome = BatchOutcome(mark=self.mark())
        self._close_due(outcome)
        return outcome
