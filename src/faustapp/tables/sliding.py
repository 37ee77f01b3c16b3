"""Sliding windows: for every event at ``t``, the moments of its key's events in [t - size, t].

An event's result is final once stream time >= t + grace; until then later events within the
grace can still fall into its window. Events are kept in per-key buckets of ``BUCKET_MS`` so the
state writes of a batch scale with the buckets it touched, not with its events; a bucket is deleted
once no pending event can reach it. Results are computed incrementally with two pointers over each
key's sorted events, so a result costs O(1) amortised whatever the window size.

Moments only: count, sum, mean and population stddev, from exact running sums (so a result does
not depend on the order events arrived or on a restart).
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from faustapp.tables.events import Event
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

    def as_dict(self, key_field: str) -> dict[str, object]:
        """JSON shape: the event, its window and the window's moments."""
        return {
            key_field: self.key,
            "ts": self.event.ts,
            "value": self.event.value,
            "window_start": self.window.start,
            "window_end": self.window.end,
            **self.figures,
        }


class ExactSum:
    """A running sum kept exact (Shewchuk's non-overlapping partials, as ``math.fsum``): adding
    and removing values gives the correctly rounded sum of what is in, whatever the history, so a
    window recomputed after a restart has bit-identical figures."""

    __slots__ = ("partials",)

    def __init__(self) -> None:
        self.partials: list[float] = []

    def add(self, x: float) -> None:
        """Add ``x`` (add ``-x`` to remove it)."""
        partials = self.partials
        i = 0
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo:
                partials[i] = lo
                i += 1
            x = hi
        partials[i:] = [x]

    def value(self) -> float:
        """The correctly rounded sum."""
        return math.fsum(self.partials)


@dataclass(slots=True)
class _KeyEvents:
    """One key's retained events, sorted by (ts, offset), and the running window over them."""

    points: list[tuple[int, int, float]] = field(default_factory=list)
    buckets: dict[int, int] = field(default_factory=dict)  # bucket -> max offset in it
    lo: int = 0
    hi: int = 0
    n: int = 0
    s1: ExactSum = field(default_factory=ExactSum)
    s2: ExactSum = field(default_factory=ExactSum)
    # Values are summed relative to the key's first value (stored with its buckets), so large
    # values with small spread keep an accurate variance.
    shift: float | None = None

    def _add(self, value: float) -> None:
        d = value - self.shift  # type: ignore[operator]
        self.n += 1
        self.s1.add(d)
        self.s2.add(d * d)

    def _remove(self, value: float) -> None:
        d = value - self.shift  # type: ignore[operator]
        self.n -= 1
        self.s1.add(-d)
        self.s2.add(-(d * d))

    def window_for(self, ts: int, size: int) -> dict[str, Any]:
        """Moments of the events in [ts - size, ts]; calls must come in increasing ``ts``."""
        points = self.points
        while self.hi < len(points) and points[self.hi][0] <= ts:
            self._add(points[self.hi][2])
            self.hi += 1
        while self.lo < self.hi and points[self.lo][0] < ts - size:
            self._remove(points[self.lo][2])
            self.lo += 1
        n = self.n
        if not n:
            return {"count": 0, "sum": 0.0, "mean": 0.0, "stddev": 0.0}
        shift = self.shift or 0.0
        shifted = self.s1.value()
        mean_shifted = shifted / n
        variance = max(self.s2.value() / n - mean_shifted * mean_shifted, 0.0)
        return {
            "count": n,
            "sum": shifted + n * shift,
            "mean": mean_shifted + shift,
            "stddev": math.sqrt(variance),
        }

    def compact(self) -> None:
        """Forget events no pending window can reach any more."""
        if self.lo > 256 and self.lo * 2 > len(self.points):
            del self.points[: self.lo]
            self.hi -= self.lo
            self.lo = 0


class SlidingPartition:
    """Sliding-window state of one input partition (see module docstring)."""

    def __init__(self, spec: WindowSpec) -> None:
        if not isinstance(spec.windows, SlidingWindows):
            raise TypeError("SlidingPartition needs SlidingWindows")
        self.spec = spec
        self.size = spec.windows.size_ms
        self.stream_time = -1
        self.applied_offset = -1
        self.emitted_through = _NOTHING_EMITTED  # results of events with ts <= this are out
        self.keys: dict[str, _KeyEvents] = {}
        self._pending: list[tuple[int, int, str, float]] = []
        self._expiry: list[tuple[int, str]] = []  # (bucket, key): when buckets can go

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
                if raw_value:  # an empty mark (never written since) means nothing applied
                    part.stream_time, part.applied_offset = orjson.loads(raw_value)[:2]
            elif raw_key == FRONTIER_KEY:
                part.emitted_through = orjson.loads(raw_value)
            elif raw_key.startswith(BUCKET_PREFIX):
                key, bucket = _parse_bucket_key(raw_key)
                max_offset, points, shift = orjson.loads(raw_value)
                entry = part.keys.setdefault(key, _KeyEvents())
                entry.shift = shift
                entry.buckets[bucket] = max_offset
                part._expiry.append((bucket, key))
                entry.points.extend((ts, off, val) for ts, off, val in points)
        heapq.heapify(part._expiry)
        for key, entry in part.keys.items():
            entry.points.sort()
            for ts, off, val in entry.points:
                if ts > part.emitted_through:
                    heapq.heappush(part._pending, (ts, off, key, val))
        return part

    def windows_of(self, key: str) -> list[tuple[int, int, float]]:
        """The key's retained events (ts, offset, value), oldest first."""
        entry = self.keys.get(key)
        return [] if entry is None else entry.points[entry.lo :]

    @property
    def open(self) -> dict[str, _KeyEvents]:
        """Keys with retained events (for gauges)."""
        return self.keys

    def process(self, events: Iterable[Event], through_offset: int = -1) -> BatchOutcome:
        """Fold a batch in; emit the results of events that became final."""
        outcome = BatchOutcome()
        dirty: dict[tuple[str, int], _KeyEvents] = {}
        grace = self.spec.grace_ms
        for event in events:
            if event.offset <= self.applied_offset:
                outcome.replayed += 1
                continue
            self.applied_offset = event.offset
            if self.stream_time >= event.ts + grace:
                window = Window(event.ts - self.size, event.ts)
                outcome.late.append(
                    LateEvent(
                        event,
                        window,
                        self.stream_time,
                        f"sliding window ending {event.ts} was final at stream time "
                        f"{self.stream_time} (grace {grace} ms)",
                    )
                )
                continue
            entry = self.keys.get(event.key)
            if entry is None:
                entry = self.keys[event.key] = _KeyEvents(shift=event.value)
            bucket = event.ts - event.ts % BUCKET_MS
            outcome.accepted += 1
            if event.ts > self.stream_time:
                self.stream_time = event.ts
            if event.offset <= entry.buckets.get(bucket, -1):
                continue  # replayed into a bucket that already holds it
            if bucket not in entry.buckets:
                heapq.heappush(self._expiry, (bucket, event.key))
            point = (event.ts, event.offset, event.value)
            bisect.insort(entry.points, point, lo=entry.hi)
            entry.buckets[bucket] = event.offset
            dirty[(event.key, bucket)] = entry
            heapq.heappush(self._pending, (event.ts, event.offset, event.key, event.value))
        self.applied_offset = max(self.applied_offset, through_offset)
        # Encoded now, not at flush: closing below may retire or compact these buckets.
        outcome.updates = [
            (bucket_key(key, bucket), self._encode_bucket(entry, bucket))
            for (key, bucket), entry in dirty.items()
        ]
        outcome.mark = orjson.dumps([self.stream_time, self.applied_offset])
        self._close_due(outcome)
        return outcome

    def _encode_bucket(self, entry: _KeyEvents, bucket: int) -> bytes:
        lo = bisect.bisect_left(entry.points, (bucket, -1, -math.inf))
        hi = bisect.bisect_left(entry.points, (bucket + BUCKET_MS, -1, -math.inf))
        return orjson.dumps([entry.buckets[bucket], entry.points[lo:hi], entry.shift])

    def _close_due(self, outcome: BatchOutcome) -> None:
        frontier = self.frontier
        pending = self._pending
        touched: set[str] = set()
        while pending and pending[0][0] <= frontier:
            ts, offset, key, value = heapq.heappop(pending)
            entry = self.keys[key]
            figures = entry.window_for(ts, self.size)
            event = Event(key, ts, value, offset)
            outcome.results.append(SlidingResult(key, event, Window(ts - self.size, ts), figures))
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
        outcome = BatchOutcome(mark=orjson.dumps([self.stream_time, self.applied_offset]))
        self._close_due(outcome)
        return outcome
