"""Running figures of sliding windows: each key's retained events, sorted, and the moments,
minimum and maximum of the events in its current window, kept exactly and updated in O(1)
amortised as the window slides forward."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from faustapp.tables.aggregates import Counter, Stats
from faustapp.tables.events import Event
from faustapp.tables.measures import NUMERIC_KINDS
from faustapp.tables.state import WindowSpec


@dataclass(frozen=True, slots=True)
class Input:
    """One value the window sums over: a field, expression or predicate of each event."""

    value: Callable[[Event], Any]
    sums: bool  # False for counts: only how many events carry it matters
    extremes: bool  # min or max asked for


class Moments:
    """Running figures of one input over a key's current window. The sums of the values and of
    their squares are kept exactly, as integers in units of 2**-scale (every float is a dyadic
    fraction), so every figure is a function of the values in the window alone: whatever came
    before, in whatever order, and after any restart; sum, mean and variance are then rounded
    once, correctly (integer true division rounds correctly)."""

    __slots__ = ("n", "s1", "s2", "scale", "low", "high")

    def __init__(self) -> None:
        self.n = 0
        self.s1 = 0  # sum of values * 2**scale
        self.s2 = 0  # sum of squares * 2**(2 * scale)
        self.scale = 0
        self.low: deque[tuple[int, int, float]] = deque()  # increasing values: window minimum
        self.high: deque[tuple[int, int, float]] = deque()  # decreasing: window maximum

    def add(self, point: tuple[int, int, float], sums: bool, extremes: bool) -> None:
        value = point[2]
        self.n += 1
        if sums:
            numerator, denominator = value.as_integer_ratio()
            bits = denominator.bit_length() - 1
            scale = self.scale
            if bits > scale:
                self.s1 <<= bits - scale
                self.s2 <<= 2 * (bits - scale)
                self.scale = scale = bits
            shift = scale - bits
            self.s1 += numerator << shift
            self.s2 += (numerator * numerator) << (2 * shift)
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
            if not self.n:  # empty: start afresh (a once-seen tiny value no longer widens sums)
                self.s1 = self.s2 = self.scale = 0
            else:
                numerator, denominator = value.as_integer_ratio()
                shift = self.scale - (denominator.bit_length() - 1)
                self.s1 -= numerator << shift
                self.s2 -= (numerator * numerator) << (2 * shift)
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
        if kind == "sum":
            return _divide(self.s1, 1 << self.scale)
        if kind == "mean":
            return _divide(self.s1, n << self.scale)
        if kind == "stddev":
            spread = self.s2 * n - self.s1 * self.s1  # n**2 * variance, in units of 2**-2scale
            return math.sqrt(_divide(spread, (n * n) << (2 * self.scale)))
        if kind == "min":
            return self.low[0][2]
        return self.high[0][2]  # max


def _divide(numerator: int, denominator: int) -> float:
    """``numerator / denominator`` correctly rounded; +-inf beyond the float range."""
    try:
        return numerator / denominator
    except OverflowError:
        return math.inf if numerator > 0 else -math.inf


@dataclass(slots=True)
class KeyEvents:
    """One key's retained events, sorted by (ts, offset), and the running window over them.

    A point is ``(ts, offset, values, carried)``: ``values[i]`` is input ``i`` of the event
    (None when the event does not carry it), ``carried`` what its result repeats.
    """

    moments: list[Moments]
    points: list[tuple[int, int, tuple[Any, ...], Any]] = field(default_factory=list)
    buckets: dict[int, int] = field(default_factory=dict)  # bucket -> max offset in it
    lo: int = 0
    hi: int = 0

    def window_for(
        self, ts: int, size: int, inputs: Sequence[Input], outputs: Sequence[tuple[str, str, int]]
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


def plan(spec: WindowSpec) -> tuple[tuple[Input, ...], tuple[tuple[str, str, int], ...]]:
    """The inputs a sliding spec sums over and its outputs on them (legacy: the bare value's
    count, sum, mean and stddev)."""
    if not spec.outputs:
        bare = Input(bare_value, sums=True, extremes=False)
        return (bare,), tuple((kind, kind, 0) for kind in ("count", "sum", "mean", "stddev"))
    stats_of = {
        (aggregate.field, aggregate.where): index
        for index, aggregate in enumerate(spec.aggregates)
        if isinstance(aggregate, Stats)
    }
    inputs: list[Input] = []
    input_of: dict[int, int] = {}  # aggregate index -> input index
    for index, aggregate in enumerate(spec.aggregates):
        kinds = {out.kind for out in spec.outputs if out.index == index}
        if not kinds <= set(NUMERIC_KINDS):
            raise TypeError(
                f"sliding windows compute {', '.join(NUMERIC_KINDS)}; not {sorted(kinds)}"
            )
        if isinstance(aggregate, Counter):
            twin = stats_of.get((aggregate.field, aggregate.where))
            if aggregate.field is not None and twin is not None:
                continue  # the count of a field's statistics: read off them, no input of its own
            input_of[index] = len(inputs)
            inputs.append(Input(counted(aggregate), sums=False, extremes=False))
        elif isinstance(aggregate, Stats):
            mine = {o.kind for o in spec.outputs if o.index == index}
            extremes = bool(mine & {"min", "max"})
            sums = bool(mine & {"sum", "mean", "stddev"})
            input_of[index] = len(inputs)
            inputs.append(Input(aggregate.value_of, sums=sums, extremes=extremes))
        else:
            raise TypeError(f"sliding windows cannot compute {type(aggregate).__name__}")
    outputs = []
    for out in spec.outputs:
        aggregate = spec.aggregates[out.index]
        index = out.index
        if index not in input_of:  # a field's count, read off its statistics
            index = stats_of[(aggregate.field, aggregate.where)]
        outputs.append((out.name, out.kind, input_of[index]))
    return tuple(inputs), tuple(outputs)


def bare_value(event: Event) -> Any:
    return event.record


def counted(counter: Counter) -> Callable[[Event], Any]:
    if counter.where is None and counter.field is None:
        return lambda event: 1
    return lambda event: None if counter.value_of(event) is None else 1
