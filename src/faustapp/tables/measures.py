"""Named figures of a window, each read off a mergeable aggregate bound to a field.

A pipeline names its outputs (``volume=Sum("qty")``, ``errors=Count(where=is_error)``); figures
over the same field share one aggregate state (``Sum``, ``Mean`` and ``StdDev`` of ``price`` fold
each event once), so naming more outputs costs little.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from faustapp.tables.aggregates import Aggregator, Counter, FirstLast, Stats, Where
from faustapp.tables.collect import CountBy as _CountBy
from faustapp.tables.collect import FirstSeen
from faustapp.tables.events import Field
from faustapp.tables.sketches import DistinctCount as _Distinct
from faustapp.tables.sketches import Quantiles
from faustapp.tables.sketches import TopK as _TopK

NUMERIC_KINDS = ("count", "sum", "mean", "min", "max", "stddev")
"""Figures sliding windows compute (from running sums over each key's retained events)."""
NEEDS_NUMBERS = ("sum", "mean", "min", "max", "stddev", "quantile")
"""Figures that fold the field's values as numbers."""


@dataclass(frozen=True, slots=True)
class Measure:
    """One named figure: which aggregate state it needs and how it is read off that state."""

    kind: str
    state: Aggregator
    read: Callable[[Any], Any]


def Count(field: Field = None, *, where: Where = None) -> Measure:  # noqa: N802 - a DSL word
    """Events in the window (those ``where`` accepts); with a field, those that carry it."""
    return Measure("count", Counter(where, field), _count_of_counter)


def Sum(field: Field, *, where: Where = None) -> Measure:  # noqa: N802
    """Sum of a numeric field or expression (0 when no event carries it)."""
    return Measure("sum", Stats(field, where), _sum)


def Mean(field: Field, *, where: Where = None) -> Measure:  # noqa: N802
    """Arithmetic mean (null when no event carries the field)."""
    return Measure("mean", Stats(field, where), _mean)


def Min(field: Field, *, where: Where = None) -> Measure:  # noqa: N802
    """Smallest value (null when none)."""
    return Measure("min", Stats(field, where), _min)


def Max(field: Field, *, where: Where = None) -> Measure:  # noqa: N802
    """Largest value (null when none)."""
    return Measure("max", Stats(field, where), _max)


def StdDev(field: Field, *, where: Where = None) -> Measure:  # noqa: N802
    """Population standard deviation (null when none)."""
    return Measure("stddev", Stats(field, where), _stddev)


def First(field: Field, *, where: Where = None) -> Measure:  # noqa: N802
    """Value of the event with the smallest event time (ties: the earliest in the log)."""
    return Measure("first", FirstLast(field, where), _first)


def Last(field: Field, *, where: Where = None) -> Measure:  # noqa: N802
    """Value of the event with the largest event time (ties: the latest in the log)."""
    return Measure("last", FirstLast(field, where), _last)


def DistinctList(  # noqa: N802
    field: Field, limit: int = 50, *, where: Where = None
) -> Measure:
    """Distinct values in order of first appearance (event time, then log order), the first
    ``limit`` of them: exact."""
    state = FirstSeen(limit, field, where)
    return Measure("distinct_list", state, state.ordered)


def CountBy(field: Field, *, where: Where = None) -> Measure:  # noqa: N802
    """How many events carried each value of ``field``: ``{value: count}``, exact."""
    state = _CountBy(field, where)
    return Measure("count_by", state, dict)


def DistinctCount(  # noqa: N802
    field: Field, *, where: Where = None, lg_k: int = 12
) -> Measure:
    """Distinct values (HyperLogLog: relative error about 1.04 / sqrt(2**lg_k))."""
    return Measure("distinct", _Distinct(lg_k, "distinct", field, where), _distinct)


def TopK(  # noqa: N802
    field: Field,
    k: int = 5,
    *,
    where: Where = None,
    label: str | None = None,
    lg_max_size: int = 6,
) -> Measure:
    """The ``k`` most frequent values, ``[{label: value, "count": n}]``, count descending then
    value ascending; exact while the window holds fewer than 0.75 * 2**lg_max_size values."""
    name = label or (field if isinstance(field, str) else "item")
    state = _TopK(k, lg_max_size, "top", field, where, labels=(name, "count"))
    return Measure("top", state, lambda sketch: state.result(sketch)["top"])


def Quantile(  # noqa: N802
    field: Field, q: float, *, where: Where = None, k: int = 200
) -> Measure:
    """The ``q`` quantile (KLL sketch, normalised rank error about 1.3% at k=200; null when
    no event carries the field). Quantiles of one field share one sketch."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"a quantile is between 0 and 1, got {q}")
    return Measure("quantile", Quantiles({"q": q}, k, field, where), _quantile(q))


def stats(field: Field = None, *, where: Where = None) -> dict[str, Measure]:
    """count, sum, mean, min, max and stddev of one field, under those names."""
    return {
        "count": Measure("count", Stats(field, where), _count),
        "sum": Sum(field, where=where),
        "mean": Mean(field, where=where),
        "min": Min(field, where=where),
        "max": Max(field, where=where),
        "stddev": StdDev(field, where=where),
    }


@dataclass(frozen=True, slots=True)
class Output:
    """A named figure bound to the index of its (shared) state in a window's aggregates."""

    name: str
    kind: str
    index: int
    read: Callable[[Any], Any]


def plan(measures: Mapping[str, Measure]) -> tuple[tuple[Aggregator, ...], tuple[Output, ...]]:
    """The distinct aggregate states the measures need, and each measure's output on them."""
    states: list[Aggregator] = []
    index_of: dict[tuple[Any, ...], int] = {}
    outputs = []
    for name, measure in measures.items():
        if not isinstance(measure, Measure):
            raise TypeError(f"output {name!r} must be an aggregate like Sum('x'), got {measure!r}")
        identity = measure.state.identity
        if identity not in index_of:
            index_of[identity] = len(states)
            states.append(measure.state)
        outputs.append(Output(name, measure.kind, index_of[identity], measure.read))
    return tuple(states), tuple(outputs)


def _count_of_counter(state: list[int]) -> int:
    return state[0]


def _count(state: Any) -> int:
    return state.count


def _sum(state: Any) -> float:
    return state.total


def _mean(state: Any) -> float | None:
    return state.mean if state.count else None


def _min(state: Any) -> float | None:
    return state.minimum if state.count else None


def _max(state: Any) -> float | None:
    return state.maximum if state.count else None


def _stddev(state: Any) -> float | None:
    return state.stddev if state.count else None


def _first(state: list[Any]) -> Any:
    return None if state[0] is None else state[0][2]


def _last(state: list[Any]) -> Any:
    return None if state[1] is None else state[1][2]


def _distinct(state: Any) -> int:
    return round(state.get_estimate())


def _quantile(q: float) -> Callable[[Any], float | None]:
    def read(state: Any) -> float | None:
        return None if state.is_empty() else float(state.get_quantile(q))

    return read
