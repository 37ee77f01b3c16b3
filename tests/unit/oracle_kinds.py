"""Naive references for session windows, sliding windows and the mergeable aggregates.

Independent of the engine: nothing is imported from ``faustapp``. Everything is brute force over
plain lists, recomputed from scratch at every step: stream time is the maximum of every clock input
so far, sessions are the connected components of a key's events (sorted, split wherever two
neighbours are ``gap`` or more apart), and every figure comes from the full list of values
(``math.fsum``, ``statistics.pstdev``).

A run is driven by *calls*, the way a caller drives a partition: ``("process", end)`` hands over
the events up to index ``end`` (exclusive) as one batch, ``("advance", to)`` moves an idle
partition's clock to ``to`` (never back). Results are emitted at the end of each call.

Session contract modelled:

* per key, events closer than ``gap`` form one session; bounds are the first and last event time;
* a session is final once stream time >= end + gap + grace; a final session is never revised, so an
  event only ever joins (and bridges) sessions that are not final under the stream time before it;
* an event is late iff the session it would form with the non-final sessions it touches is itself
  final under the stream time before it (touching: start - gap < ts < end + gap). Since a final
  session ends at least gap + grace before stream time, leaving final sessions out never changes
  that decision, it only keeps them from being revived;
* every final session is emitted exactly once, at the end of the call in which it became final.

Sliding contract modelled:

* an event at ``t`` is late iff stream time before it >= t + grace;
* every accepted event gets one result over its key's accepted events with ts in [t - size, t],
  emitted at the end of the first call after which stream time >= t + grace, in (ts, offset) order.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

Call = tuple[str, int]  # ("process", end index) or ("advance", stream time)


# --------------------------------------------------------------------------------------------
# Figures of a plain list of values


@dataclass(frozen=True)
class Moments:
    """count, sum, mean, min, max and population stddev of a list of values."""

    count: int
    total: float
    mean: float
    minimum: float
    maximum: float
    stddev: float


def moments(values: Sequence[float]) -> Moments:
    """Figures of a non-empty list, as accurately as the stdlib computes them."""
    if not values:
        raise ValueError("no values")
    total = math.fsum(values)
    return Moments(
        count=len(values),
        total=total,
        mean=total / len(values),
        minimum=min(values),
        maximum=max(values),
        stddev=statistics.pstdev(values) if len(values) > 1 else 0.0,
    )


def calls_from_batches(count: int, batch_ends: Sequence[int] | None) -> list[Call]:
    """One ``process`` call per batch: ends sorted, unique, the last at ``count``."""
    ends = sorted({end for end in batch_ends or () if 0 <= end <= count})
    if not ends or ends[-1] != count:
        ends.append(count)
    return [("process", end) for end in ends]


def _clock(events: Sequence[tuple[str, int, float]], upto: int, advances: Sequence[int]) -> int:
    """Stream time after the first ``upto`` events and the given clock moves, from scratch."""
    return max([-1, *(ts for _, ts, _ in events[:upto]), *advances])


# --------------------------------------------------------------------------------------------
# Sessions


@dataclass(frozen=True)
class SessionResult:
    """One final session of one key."""

    key: str
    start: int
    end: int
    figures: Moments
    indices: tuple[int, ...]  # the events in it

    @property
    def slot(self) -> tuple[str, int, int]:
        return (self.key, self.start, self.end)


@dataclass(frozen=True)
class SessionEventView:
    """What the oracle decided for one event."""

    index: int
    key: str
    ts: int
    stream_before: int
    late: bool
    session: tuple[int, int]  # the session it joined, or the final one it would have formed
    touched_final: bool  # it lies within gap of a final session of its key


@dataclass
class SessionRun:
    """Per-event decisions, per-call emissions and what is still open at the end."""

    events: list[SessionEventView] = field(default_factory=list)
    emissions: list[list[SessionResult]] = field(default_factory=list)
    open_after: list[dict[tuple[str, int, int], int]] = field(default_factory=list)
    still_open: dict[tuple[str, int, int], int] = field(default_factory=dict)
    final_stream_time: int = -1

    @property
    def results(self) -> dict[tuple[str, int, int], SessionResult]:
        return {result.slot: result for batch in self.emissions for result in batch}

    @property
    def late_indices(self) -> list[int]:
        return [view.index for view in self.events if view.late]

    @property
    def joins_near_final(self) -> bool:
        """Whether an accepted event lies within gap of a final session of its key: the one case
        where leaving final sessions out of a merge decides the result."""
        return any(view.touched_final and not view.late for view in self.events)


def session_components(points: Sequence[tuple[int, int]], gap: int) -> list[list[tuple[int, int]]]:
    """Split ``(ts, index)`` points into sessions: sorted, cut where neighbours are >= gap apart.

    Joining an event to every session with start - gap < ts < end + gap and merging them is the
    same as taking connected components of "closer than gap": a session's sorted events are a
    chain with neighbours less than gap apart, and an event touches a session exactly when it is
    closer than gap to one of its events.
    """
    ordered = sorted(points)
    groups: list[list[tuple[int, int]]] = []
    for point in ordered:
        if groups and point[0] - groups[-1][-1][0] < gap:
            groups[-1].append(point)
        else:
            groups.append([point])
    return groups


def run_session_oracle(
    events: Sequence[tuple[str, int, float]],
    gap: int,
    grace: int,
    calls: Sequence[Call] | None = None,
) -> SessionRun:
    """Run the session contract over ``events`` (arrival order) driven by ``calls``."""
    calls = list(calls) if calls is not None else calls_from_batches(len(events), None)
    run = SessionRun()
    live: dict[str, list[tuple[int, int]]] = {}  # accepted events not in a final session
    final: list[tuple[str, list[tuple[int, int]]]] = []  # final sessions, in order of finality
    emitted = 0
    advances: list[int] = []
    position = 0

    def close_of(group: Sequence[tuple[int, int]]) -> int:
        return group[-1][0] + gap + grace

    def freeze(key: str, stream: int) -> None:
        keep = []
        for group in session_components(live.get(key, []), gap):
            if close_of(group) <= stream:
                final.append((key, group))
            else:
                keep.extend(group)
        live[key] = keep

    for kind, argument in calls:
        if kind == "process":
            for index in range(position, argument):
                key, ts, _ = events[index]
                stream_before = _clock(events, index, advances)
                freeze(key, stream_before)
                touched_final = any(
                    group[0][0] - gap < ts < group[-1][0] + gap
                    for owner, group in final
                    if owner == key
                )
                candidate = [*live[key], (ts, index)]
                (group,) = [g for g in session_components(candidate, gap) if (ts, index) in g]
                late = close_of(group) <= stream_before
                if not late:
                    live[key] = candidate
                run.events.append(
                    SessionEventView(
                        index,
                        key,
                        ts,
                        stream_before,
                        late,
                        (group[0][0], group[-1][0]),
                        touched_final,
                    )
                )
            position = max(position, argument)
        elif kind == "advance":
            advances.append(argument)
        else:
            raise ValueError(kind)
        stream_now = _clock(events, position, advances)
        for key in list(live):
            freeze(key, stream_now)
        batch = []
        for key, group in sorted(final[emitted:], key=lambda kg: (close_of(kg[1]), kg[0])):
            indices = tuple(index for _, index in group)
            batch.append(
                SessionResult(
                    key,
                    group[0][0],
                    group[-1][0],
                    moments([events[i][2] for i in indices]),
                    indices,
                )
            )
        emitted = len(final)
        run.emissions.append(batch)
        run.open_after.append(
            {
                (key, group[0][0], group[-1][0]): len(group)
                for key, points in live.items()
                for group in session_components(points, gap)
            }
        )
    run.final_stream_time = _clock(events, position, advances)
    run.still_open = run.open_after[-1] if run.open_after else {}
    return run


# --------------------------------------------------------------------------------------------
# Sliding windows


@dataclass(frozen=True)
class SlidingResult:
    """The window [ts - size, ts] of one accepted event."""

    index: int
    key: str
    ts: int
    count: int
    total: float
    mean: float
    stddev: float
    members: tuple[int, ...]  # indices of the events in the window


@dataclass
class SlidingRun:
    """Late events, per-call emissions, and the accepted events never emitted."""

    late_indices: list[int] = field(default_factory=list)
    stream_before: dict[int, int] = field(default_factory=dict)
    emissions: list[list[SlidingResult]] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)
    final_stream_time: int = -1

    @property
    def results(self) -> dict[int, SlidingResult]:
        return {result.index: result for batch in self.emissions for result in batch}


def run_sliding_oracle(
    events: Sequence[tuple[str, int, float]],
    size: int,
    grace: int,
    calls: Sequence[Call] | None = None,
) -> SlidingRun:
    """Run the sliding contract over ``events`` (arrival order, offsets increasing) by ``calls``."""
    calls = list(calls) if calls is not None else calls_from_batches(len(events), None)
    run = SlidingRun()
    accepted: list[int] = []
    emitted: set[int] = set()
    advances: list[int] = []
    position = 0
    for kind, argument in calls:
        if kind == "process":
            for index in range(position, argument):
                ts = events[index][1]
                stream_before = _clock(events, index, advances)
                run.stream_before[index] = stream_before
                if stream_before >= ts + grace:
                    run.late_indices.append(index)
                else:
                    accepted.append(index)
            position = max(position, argument)
        elif kind == "advance":
            advances.append(argument)
        else:
            raise ValueError(kind)
        stream_now = _clock(events, position, advances)
        due = sorted(
            (events[i][1], i)
            for i in accepted
            if i not in emitted and events[i][1] + grace <= stream_now
        )
        batch = []
        for ts, index in due:
            key = events[index][0]
            members = tuple(
                i for i in accepted if events[i][0] == key and ts - size <= events[i][1] <= ts
            )
            values = [events[i][2] for i in members]
            figures = moments(values)
            batch.append(
                SlidingResult(
                    index,
                    key,
                    ts,
                    figures.count,
                    figures.total,
                    figures.mean,
                    figures.stddev,
                    members,
                )
            )
            emitted.add(index)
        run.emissions.append(batch)
    run.final_stream_time = _clock(events, position, advances)
    run.pending = [i for i in accepted if i not in emitted]
    return run


# --------------------------------------------------------------------------------------------
# Aggregates


def first_last(points: Sequence[tuple[int, int, float]]) -> dict[str, object]:
    """First and last value by (ts, offset) of ``(ts, offset, value)`` points."""
    if not points:
        return {"first": None, "first_ts": None, "last": None, "last_ts": None}
    first = min(points, key=lambda p: (p[0], p[1]))
    last = max(points, key=lambda p: (p[0], p[1]))
    return {"first": first[2], "first_ts": first[0], "last": last[2], "last_ts": last[0]}


def rank_interval(values: Sequence[float], quantile: float) -> tuple[float, float]:
    """Normalised ranks of ``quantile`` among ``values``: (share below it, share at or below)."""
    below = sum(1 for v in values if v < quantile)
    at_or_below = sum(1 for v in values if v <= quantile)
    return below / len(values), at_or_below / len(values)


def exact_quantile(values: Sequence[float], rank: float) -> float:
    """The smallest value whose share of values at or below it exceeds ``rank``."""
    ordered = sorted(values)
    return ordered[min(int(math.floor(rank * len(ordered))), len(ordered) - 1)]


def distinct(items: Sequence[Hashable]) -> int:
    return len(set(items))


def frequencies(items: Sequence[Hashable]) -> list[tuple[Hashable, int]]:
    """Items by decreasing count (ties: first seen first)."""
    return Counter(items).most_common()
