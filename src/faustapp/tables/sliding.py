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
import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import orjson

from faustapp.tables.aggregates import Counter, Stats
from faustapp.tables.clock import PartitionClock
from faustapp.tables.events import Event
from faustapp.tables.measures import NUMERIC_KINDS
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


@dataclass(frozen=True, slots=True)
class _Input:
    """One value the window sums over: a field, expression or predicate of each event."""

    value: Callable[[Event], Any]
    sums: bool  # False for counts: only how many events carry it matters
    extremes: bool  # min or max asked for


class _Moments:
    """Running figures of one input over a key's current window (exact sums, so a result does
    not depend on the order values came in or went out)."""

    __slots__ = ("n", "s1", "s2", "shift", "low", "high")

    def __init__(self, shift: float | None) -> None:
        self.n = 0
        self.s1 = ExactSum()
        self.s2 = ExactSum()
        # Values are summed relative to the key's first value (stored with its buckets), so
        # large values with small spread keep an accurate variance.
        self.shift = shift
        self.low: deque[tuple[int, int, float]] = deque()  # increasing values: window minimum
        self.high: deque[tuple[int, int, float]] = deque()  # decreasing: window maximum

    def add(self, point: tuple[int, int, float], sums: bool, extremes: bool) -> None:
        value = point[2]
        self.n += 1
        if sums:
            d = value - self.shift  # type: ignore[operator]
            self.s1.add(d)
            self.s2.add(d * d)
        if extremes:
            low, high = self.low, self.high
            while low and low[-1][2] >= value:
                low.pop()
            low.append(point)
            while high and high[-1][2] <= value:
                high.pop()
            high.append(point)

    def remove(self, point: tuple[int, int, float], sums: bool, extremes: bool) -> None:
        value = point[2]
        self.n -= 1
        if sums:
            d = value - self.shift  # type: ignore[operator]
            self.s1.add(-d)
            self.s2.add(-(d * d))
        if extremes:
            if self.low and self.low[0][:2] == point[:2]:
                self.low.popleft()
            if self.high and self.high[0][:2] == point[:2]:
                self.high.popleft()

    def figure(self, kind: str) -> Any:
        n = self.n
        if kind == "count":
            return n
        if not n:
            return 0.0 if kind == "sum" else None
        shift = self.shift or 0.0
        shifted = self.s1.value()
        if kind == "sum":
            return shifted + n * shift
        mean_shifted = shifted / n
        if kind == "mean":
            return mean_shifted + shift
        if kind == "stddev":
            return math.sqrt(max(self.s2.value() / n - mean_shifted * mean_shifted, 0.0))
        if kind == "min":
            return self.low[0][2]
        return self.high[0][2]  # max


@dataclass(slots=True)
class _KeyEvents:
    """One key's retained events, sorted by (ts, offset), and the running window over them.

    A point is ``(ts, offset, values, carried)``: ``values[i]`` is input ``i`` of the event
    (None when the event does not carry it), ``carried`` what its result repeats.
    """

    moments: list[_Moments]
    points: list[tuple[int, int, tuple[Any, ...], Any]] = field(default_factory=list)
    buckets: dict[int, int] = field(default_factory=dict)  # bucket -> max offset in it
    lo: int = 0
    hi: int = 0

    def window_for(
        self, ts: int, size: int, inputs: Sequence[_Input], outputs: Sequence[tuple[str, str, int]]
    ) -> dict[str, Any]:
        """Figures of the events in [ts - size, ts]; calls must come in increasing ``ts``."""
        points = self.points
        moments = self.moments
        while self.hi < len(points) and points[self.hi][0] <= ts:
            ts_, offset, values, _ = points[self.hi]
            for i, value in enumerate(values):
                if value is not None:
                    moments[i].add((ts_, offset, value), inputs[i].sums, inputs[i].extremes)
            self.hi += 1
        while self.lo < self.hi and points[self.lo][0] < ts - size:
            ts_, offset, values, _ = points[self.lo]
            for i, value in enumerate(values):
                if value is not None:
                    moments[i].remove((ts_, offset, value), inputs[i].sums, inputs[i].extremes)
            self.lo += 1
        return {name: moments[index].figure(kind) for name, kind, index in outputs}

    def compact(self) -> None:
        """Forget events no pending window can reach any more."""
        if self.lo > 256 and self.lo * 2 > len(self.points):
            del self.points[: self.lo]
            self.hi -= self.lo
            self.lo = 0


def _plan(spec: WindowSpec) -> tuple[tuple[_Input, ...], tuple[tuple[str, str, int], ...]]:
    """The inputs a sliding spec sums over and its outputs on them (legacy: the bare value's
    count, sum, mean and stddev)."""
    if not spec.outputs:
        bare = _Input(_bare_value, sums=True, extremes=False)
        return (bare,), tuple((kind, kind, 0) for kind in ("count", "sum", "mean", "stddev"))
    inputs = []
    for index, aggregate in enumerate(spec.aggregates):
        kinds = {out.kind for out in spec.outputs if out.index == index}
        if not kinds <= set(NUMERIC_KINDS):
            raise TypeError(
                f"sliding windows compute {', '.join(NUMERIC_KINDS)}; not {sorted(kinds)}"
            )
        if isinstance(aggregate, Counter):
            inputs.append(_Input(_counted(aggregate), sums=False, extremes=False))
        elif isinstance(aggregate, Stats):
            extremes = bool(kinds & {"min", "max"})
            sums = bool(kinds & {"sum", "mean", "stddev"})
            inputs.append(_Input(aggregate.value_of, sums=sums, extremes=extremes))
        else:
            raise TypeError(f"sliding windows cannot compute {type(aggregate).__name__}")
    outputs = tuple((out.name, out.kind, out.index) for out in spec.outputs)
    return tuple(inputs), outputs


def _bare_value(event: Event) -> Any:
    return event.record


def _counted(counter: Counter) -> Callable[[Event], Any]:
    if counter.where is None and counter.field is None:
        return lambda event: 1
    return lambda event: None if counter.value_of(event) is None else 1


class SlidingPartition(PartitionClock):
    """Sliding-window state of one input partition (see module docstring)."""

    def __init__(self, spec: WindowSpec) -> None:
        if not isinstance(spec.windows, SlidingWindows):
            raise TypeError("SlidingPartition needs SlidingWindows")
        super().__init__()
        self.spec = spec
        self.size = spec.windows.size_ms
        self.inputs, self.outputs = _plan(spec)
        carry = spec.windows.carry
        self.carry_names = carry
        self._carry = attrgetter(*carry) if carry else None
        self.emitted_through = _NOTHING_EMITTED  # results of events with ts <= this are out
        self.keys: dict[str, _KeyEvents] = {}
        self._pending: list[tuple[int, int, str]] = []
        self._expiry: list[tuple[int, str]] = []  # (bucket, key): when buckets can go

    def _new_key(self, shifts: Sequence[float | None] | None = None) -> _KeyEvents:
        shifts = shifts or [None] * len(self.inputs)
        return _KeyEvents([_Moments(shift) for shift in shifts])

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
                max_offset, points, shifts = orjson.loads(raw_value)
                entry = part.keys.get(key)
                if entry is None:
                    entry = part.keys[key] = part._new_key()
                for moment, shift in zip(entry.moments, shifts, strict=True):
                    if shift is not None:  # buckets written before an input's first value: None
                        moment.shift = shift
                entry.buckets[bucket] = max_offset
                part._expiry.append((bucket, key))
                entry.points.extend(
                    (ts, off, tuple(values), tuple(carried) if type(carried) is list else carried)
                    for ts, off, values, carried in points
                )
        heapq.heapify(part._expiry)
        for key, entry in part.keys.items():
            entry.points.sort(key=_position)
            for ts, off, _, carried in entry.points:
                if ts > part.emitted_through:
                    heapq.heappush(part._pending, (ts, off, key, carried))
        return part

    def windows_of(self, key: str) -> list[tuple[int, int, tuple[Any, ...], Any]]:
        """The key's retained events ``(ts, offset, values, carried)``, oldest first."""
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
        value_fns = [source.value for source in self.inputs]
        where = self.spec.where
        for event in events:
            if event.offset <= self.applied_offset:
                outcome.replayed += 1
                continue
            self.applied_offset = event.offset
            if where is not None and not where(event.record):
                if event.ts > self.stream_time and not self.spec.watermarked:
                    self.stream_time = event.ts  # filtered out, but the partition's clock moves
                continue
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
            key = event.key
            entry = self.keys.get(key)
            if entry is None:
                entry = self.keys[key] = self._new_key()
            bucket = event.ts - event.ts % BUCKET_MS
            outcome.accepted += 1
            if event.ts > self.stream_time and not self.spec.watermarked:
                self.stream_time = event.ts
            if event.offset <= entry.buckets.get(bucket, -1):
                continue  # replayed into a bucket that already holds it
            if bucket not in entry.buckets:
                heapq.heappush(self._expiry, (bucket, key))
            values = tuple(value(event) for value in value_fns)
            for moment, value in zip(entry.moments, values):  # noqa: B905 - same length
                if moment.shift is None and value is not None:
                    moment.shift = value
            carried = self._carried(event)
            point = (event.ts, event.offset, values, carried)
            bisect.insort(entry.points, point, lo=entry.hi, key=_position)
            entry.buckets[bucket] = event.offset
            dirty[(key, bucket)] = entry
            heapq.heappush(self._pending, (event.ts, event.offset, key, carried))
        self.applied_offset = max(self.applied_offset, through_offset)
        # Encoded now, not at flush: closing below may retire or compact these buckets.
        outcome.updates = [
            (bucket_key(key, bucket), self._encode_bucket(entry, bucket))
            for (key, bucket), entry in dirty.items()
        ]
        outcome.mark = self.mark()
        self._close_due(outcome)
        return outcome

    def _encode_bucket(self, entry: _KeyEvents, bucket: int) -> bytes:
        lo = bisect.bisect_left(entry.points, (bucket, -1), key=_position)
        hi = bisect.bisect_left(entry.points, (bucket + BUCKET_MS, -1), key=_position)
        shifts = [moment.shift for moment in entry.moments]
        return orjson.dumps([entry.buckets[bucket], entry.points[lo:hi], shifts])

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


def _position(point: tuple[Any, ...]) -> tuple[int, int]:
    return point[0], point[1]
