"""Naive references for windows over typed records, independent of the engine.

Nothing is imported from ``faustapp``. Figures are computed from the full plain list of records
a window holds (``math.fsum``, ``statistics.pstdev``, ``collections.Counter``); which records a
window holds is decided by brute force, recomputing stream time from scratch for every event.

An arrival is ``(key, ts, offset, record)``, in the order the partition reads them. A run is driven
by calls, as a caller drives a partition: ``("process", end)`` hands over the arrivals up to index
``end`` (exclusive) as one batch; ``("advance", to)`` moves an idle partition's clock to ``to``
(never back); ``("restore", 0)`` rebuilds the partition from its table, which changes nothing:
such a call emits nothing.

Contract modelled (both window kinds):

* stream time is the largest of -1, the event times of every arrival handed over so far (filtered
  out or not) and every clock move;
* an arrival the pipeline's ``where`` rejects is neither windowed nor late; it only moves time;
* time windows: window [start, end) is final once stream time >= end + grace; an event is late when
  every window it belongs to is final under the stream time before it, otherwise it is held by
  each of its windows that is not; a final window is emitted once, at the end of the call in which
  it became final, in (end + grace, key, start) order;
* sliding windows: an event at ``t`` is late iff the stream time before it >= t + grace; every
  other event gets one result over its key's accepted events with ts in [t - size, t], emitted at
  the end of the first call after which stream time >= t + grace, in (ts, offset) order.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Arrival = tuple[str, int, int, Any]  # key, ts, offset, record
Point = tuple[int, int, Any]  # ts, offset, record
Call = tuple[str, int]
Read = Callable[[Any], Any]
Where = Callable[[Any], bool] | None


# --------------------------------------------------------------------------------------------
# Figures of a plain list of records


def carried(points: Sequence[Point], read: Read, where: Where = None) -> list[Any]:
    """The values ``read`` gives of the records ``where`` accepts, the missing (None) left out."""
    values = []
    for _, _, record in points:
        if where is not None and not where(record):
            continue
        value = read(record)
        if value is not None:
            values.append(value)
    return values


def count_of(points: Sequence[Point], read: Read | None = None, where: Where = None) -> int:
    """Records ``where`` accepts; with ``read``, only those carrying a value."""
    return len(carried(points, read or (lambda record: True), where))


def first_of(points: Sequence[Point], read: Read, where: Where = None) -> Any:
    """The value of the earliest record carrying one, by (ts, offset)."""
    return _extreme(points, read, where, min)


def last_of(points: Sequence[Point], read: Read, where: Where = None) -> Any:
    """The value of the latest record carrying one, by (ts, offset)."""
    return _extreme(points, read, where, max)


def _extreme(points: Sequence[Point], read: Read, where: Where, pick: Callable) -> Any:
    candidates = [
        (ts, offset, read(record))
        for ts, offset, record in points
        if (where is None or where(record)) and read(record) is not None
    ]
    if not candidates:
        return None
    return pick(candidates, key=lambda c: (c[0], c[1]))[2]


def top_of(
    points: Sequence[Point], read: Read, k: int, label: str, where: Where = None
) -> list[dict[str, Any]]:
    """The ``k`` most frequent values: count descending, then value ascending."""
    counts = Counter(carried(points, read, where))
    ranked = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))[:k]
    return [{label: value, "count": count} for value, count in ranked]


def distinct_of(points: Sequence[Point], read: Read, where: Where = None) -> int:
    return len(set(carried(points, read, where)))


# --------------------------------------------------------------------------------------------
# What a figure must equal


@dataclass(frozen=True)
class Exact:
    """Equal, and of the same type (a count is an int, a sum of nothing is 0.0)."""

    value: Any


@dataclass(frozen=True)
class Close:
    """A float equal up to rounding: ``scale`` is the magnitude its rounding errors grow with."""

    value: float
    scale: float


@dataclass(frozen=True)
class Spread:
    """A standard deviation: its square equal to ``value ** 2`` up to rounding of ``scale ** 2``
    (a variance near zero loses half its digits to the square root)."""

    value: float
    scale: float


@dataclass(frozen=True)
class Ranked:
    """A quantile of a sketch holding single-precision floats: one of the values, with ``q``
    within ``error`` of its normalised rank among them."""

    values: tuple[float, ...]
    q: float
    error: float


Expected = Exact | Close | Spread | Ranked


def total_of(values: Sequence[float]) -> Expected:
    if not values:
        return Exact(0.0)
    return Close(math.fsum(values), math.fsum(abs(v) for v in values))


def mean_of(values: Sequence[float]) -> Expected:
    if not values:
        return Exact(None)
    return Close(math.fsum(values) / len(values), max(abs(v) for v in values))


def stddev_of(values: Sequence[float]) -> Expected:
    if not values:
        return Exact(None)
    return Spread(statistics.pstdev(values), max(abs(v) for v in values))


def min_of(values: Sequence[float]) -> Expected:
    return Exact(min(values) if values else None)


def max_of(values: Sequence[float]) -> Expected:
    return Exact(max(values) if values else None)


def check(name: str, got: Any, want: Expected, context: str = "") -> None:
    """Assert that figure ``name`` is what the reference expects."""
    where = f"{name}: got {got!r}, want {want!r} {context}"
    if isinstance(want, Exact):
        assert got == want.value, where
        assert type(got) is type(want.value), where
        return
    assert isinstance(got, float), where
    if isinstance(want, Close):
        assert math.isclose(got, want.value, rel_tol=1e-9, abs_tol=1e-9 * want.scale), where
    elif isinstance(want, Spread):
        assert got >= 0.0, where
        assert abs(got * got - want.value * want.value) <= 1e-9 * want.scale**2, where
    else:
        assert got in want.values, where
        below = sum(1 for v in want.values if v < got) / len(want.values)
        at_or_below = sum(1 for v in want.values if v <= got) / len(want.values)
        assert below - want.error <= want.q <= at_or_below + want.error, where


# --------------------------------------------------------------------------------------------
# Which records each window holds


def _stream_time(arrivals: Sequence[Arrival], upto: int, moves: Sequence[int]) -> int:
    return max([-1, *(ts for _, ts, _, _ in arrivals[:upto]), *moves])


def _windows_of(ts: int, size: int, step: int) -> list[tuple[int, int]]:
    """Every window [start, start + size), start a multiple of ``step``, holding ``ts``."""
    found = []
    for multiple in range((ts - size) // step - 1, ts // step + 2):
        start = multiple * step
        if start <= ts < start + size:
            found.append((start, start + size))
    return found


@dataclass(frozen=True)
class WindowHeld:
    """A final time window and the arrivals (indices) it holds."""

    key: str
    start: int
    end: int
    members: tuple[int, ...]


@dataclass
class Run:
    """Per call: the arrivals found late in it and what it emitted."""

    late: list[list[int]]
    emitted: list[list[Any]]


def time_windows_run(
    arrivals: Sequence[Arrival],
    size: int,
    step: int,
    grace: int,
    calls: Sequence[Call],
    where: Where = None,
) -> Run:
    """Hopping (tumbling when ``step == size``) windows over ``arrivals``, driven by ``calls``."""
    run = Run([], [])
    held: dict[tuple[str, int, int], list[int]] = {}
    emitted: set[tuple[str, int, int]] = set()
    moves: list[int] = []
    position = 0
    for kind, argument in calls:
        late: list[int] = []
        if kind == "process":
            for index in range(position, argument):
                key, ts, _, record = arrivals[index]
                if where is not None and not where(record):
                    continue
                before = _stream_time(arrivals, index, moves)
                open_windows = [w for w in _windows_of(ts, size, step) if before < w[1] + grace]
                if not open_windows:
                    late.append(index)
                for start, end in open_windows:
                    held.setdefault((key, start, end), []).append(index)
            position = max(position, argument)
        elif kind == "advance":
            moves.append(argument)
        now = _stream_time(arrivals, position, moves)
        due = sorted(
            (slot for slot in held if slot not in emitted and slot[2] + grace <= now),
            key=lambda slot: (slot[2] + grace, slot[0], slot[1]),
        )
        emitted.update(due)
        run.late.append(late)
        run.emitted.append([WindowHeld(*slot, tuple(held[slot])) for slot in due])
    return run


@dataclass(frozen=True)
class SlidingHeld:
    """The result of one accepted arrival: the arrivals (indices) in its window."""

    index: int
    members: tuple[int, ...]


def sliding_run(
    arrivals: Sequence[Arrival],
    size: int,
    grace: int,
    calls: Sequence[Call],
    where: Where = None,
) -> Run:
    """Sliding windows over ``arrivals``, driven by ``calls``."""
    run = Run([], [])
    accepted: list[int] = []
    done: set[int] = set()
    moves: list[int] = []
    position = 0
    for kind, argument in calls:
        late: list[int] = []
        if kind == "process":
            for index in range(position, argument):
                _, ts, _, record = arrivals[index]
                if where is not None and not where(record):
                    continue
                if _stream_time(arrivals, index, moves) >= ts + grace:
                    late.append(index)
                else:
                    accepted.append(index)
            position = max(position, argument)
        elif kind == "advance":
            moves.append(argument)
        now = _stream_time(arrivals, position, moves)
        due = sorted(
            (i for i in accepted if i not in done and arrivals[i][1] + grace <= now),
            key=lambda i: (arrivals[i][1], arrivals[i][2]),
        )
        results = []
        for index in due:
            key, ts = arrivals[index][0], arrivals[index][1]
            members = tuple(
                i for i in accepted if arrivals[i][0] == key and ts - size <= arrivals[i][1] <= ts
            )
            results.append(SlidingHeld(index, members))
            done.add(index)
        run.late.append(late)
        run.emitted.append(results)
    return run


def points_of(arrivals: Sequence[Arrival], members: Sequence[int]) -> list[Point]:
    """The (ts, offset, record) points of the given arrivals."""
    return [(arrivals[i][1], arrivals[i][2], arrivals[i][3]) for i in members]


# --------------------------------------------------------------------------------------------
# A dict standing in for a partition's table


def persist(table: dict[bytes, bytes], outcome: Any, mark_key: bytes) -> list[Any]:
    """Apply a batch outcome in the contract's order (updates, mark under ``mark_key``, results,
    records written after the results, deletes); returns the results it emitted."""
    for key, value in outcome.updates:
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value if isinstance(value, bytes) else value()
    table[mark_key] = outcome.mark
    emitted = list(outcome.results)
    for key, value in outcome.after_results:
        table[key] = value
    for key in outcome.deletes:
        table.pop(key, None)
    return emitted
