"""Mergeable aggregates, so partial aggregates from batches, windows or workers combine exactly."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from faustapp.tables.events import Event, Field, getter


@dataclass(slots=True)
class RunningStats:
    """Count, sum, min, max and a numerically stable variance (Welford, merged with Chan et al.)."""

    count: int = 0
    total: float = 0.0
    mean: float = 0.0
    m2: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf

    def add(self, value: float) -> None:
        """Fold one observation in without keeping it."""
        self.count += 1
        self.total += value
        delta = value - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (value - self.mean)
        if value < self.minimum:
            self.minimum = value
        if value > self.maximum:
            self.maximum = value

    def merge(self, other: RunningStats) -> None:
        """Combine another partial aggregate into this one, as if its values were added here."""
        if other.count == 0:
            return
        if self.count == 0:
            self.count, self.total, self.mean = other.count, other.total, other.mean
            self.m2, self.minimum, self.maximum = other.m2, other.minimum, other.maximum
            return
        count = self.count + other.count
        delta = other.mean - self.mean
        self.mean += delta * other.count / count
        self.m2 += other.m2 + delta * delta * self.count * other.count / count
        self.count = count
        self.total += other.total
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)

    @property
    def variance(self) -> float:
        """Population variance; 0 for fewer than two values."""
        if self.count < 2:
            return 0.0
        return max(self.m2 / self.count, 0.0)

    @property
    def stddev(self) -> float:
        """Population standard deviation."""
        return math.sqrt(self.variance)

    def to_list(self) -> list[float | int | None]:
        """Compact form for the state store (JSON has no infinities: empty extremes are null)."""
        minimum = None if self.count == 0 else self.minimum
        maximum = None if self.count == 0 else self.maximum
        return [self.count, self.total, self.mean, self.m2, minimum, maximum]

    @classmethod
    def from_list(cls, data: list[float | int | None]) -> RunningStats:
        """Inverse of :meth:`to_list`."""
        count, total, mean, m2, minimum, maximum = data
        return cls(
            int(count),
            float(total),
            float(mean),
            float(m2),
            math.inf if minimum is None else float(minimum),
            -math.inf if maximum is None else float(maximum),
        )

    def summary(self) -> dict[str, float | int]:
        """The figures users see, in the output topics' field names."""
        return {
            "count": self.count,
            "sum": self.total,
            "mean": self.mean,
            "min": self.minimum,
            "max": self.maximum,
            "stddev": self.stddev,
        }


Where = Callable[[Any], bool] | None
"""A predicate on the record: only events it accepts are folded in (``count ... where``)."""


class Aggregator(ABC):
    """One family of figures a window computes: mergeable, serialisable, stateless itself.

    An aggregator reads one ``field`` of the record (a name, a function, or None for a bare
    value) from the events its ``where`` predicate accepts; events whose field is None (an
    optional field left out) are skipped, as SQL aggregates skip nulls.
    """

    field: Field = None
    where: Where = None

    def bind(self, field: Field, where: Where) -> None:
        """Set what the aggregator reads; picks the fastest ``add`` for it."""
        self.field, self.where = field, where
        self._get = getter(field)

    def value_of(self, event: Event) -> Any:
        """The field's value in ``event``, or None when the event is filtered out or lacks it."""
        record = event.record
        if self.where is not None and not self.where(record):
            return None
        return record if self._get is None else self._get(record)

    def params(self) -> tuple[Any, ...]:
        """What else distinguishes two aggregators of one class and field (sketch sizes)."""
        return ()

    @property
    def identity(self) -> tuple[Any, ...]:
        """Equal for aggregators that would hold the same state: they can share it."""
        return (type(self), self.field, self.where, self.params())

    @abstractmethod
    def create(self) -> Any:
        """A fresh, empty state."""

    @abstractmethod
    def add(self, state: Any, event: Event) -> None:
        """Fold one event into ``state`` in place."""

    @abstractmethod
    def merge(self, into: Any, other: Any) -> Any:
        """``into`` with ``other`` folded in, as if its events had been added there (may reuse
        ``into``; use the returned state)."""

    @abstractmethod
    def dump(self, state: Any) -> Any:
        """A JSON-serialisable form of the state."""

    @abstractmethod
    def load(self, data: Any) -> Any:
        """Inverse of :meth:`dump`."""

    @abstractmethod
    def result(self, state: Any) -> dict[str, Any]:
        """The output fields this aggregate contributes (when no names are declared)."""


class Stats(Aggregator):
    """count, sum, mean, min, max and population stddev of a numeric field."""

    def __init__(self, field: Field = None, where: Where = None) -> None:
        self.bind(field, where)
        if where is None:
            # The hot loop calls ``add`` once per event and window: no predicate, no branch.
            if self._get is None:
                self.add = self._add_bare  # type: ignore[method-assign]
            else:
                self.add = self._add_field  # type: ignore[method-assign]

    def create(self) -> RunningStats:
        return RunningStats()

    def add(self, state: RunningStats, event: Event) -> None:
        value = self.value_of(event)
        if value is not None:
            self._fold(state, value)

    def _add_bare(self, state: RunningStats, event: Event) -> None:
        self._fold(state, event.record)

    def _add_field(self, state: RunningStats, event: Event) -> None:
        # _fold inlined: a field's statistics are the hot loop of the numeric pipelines.
        value = self._get(event.record)
        if value is None:
            return
        count = state.count = state.count + 1
        state.total += value
        delta = value - state.mean
        state.mean += delta / count
        state.m2 += delta * (value - state.mean)
        if value < state.minimum:
            state.minimum = value
        if value > state.maximum:
            state.maximum = value

    @staticmethod
    def _fold(state: RunningStats, value: float) -> None:
        # RunningStats.add inlined: this runs once per event and window.
        count = state.count = state.count + 1
        state.total += value
        delta = value - state.mean
        state.mean += delta / count
        state.m2 += delta * (value - state.mean)
        if value < state.minimum:
            state.minimum = value
        if value > state.maximum:
            state.maximum = value

    def merge(self, into: RunningStats, other: RunningStats) -> RunningStats:
        into.merge(other)
        return into

    def dump(self, state: RunningStats) -> list[float | int]:
        return state.to_list()

    def load(self, data: list[float | int]) -> RunningStats:
        return RunningStats.from_list(data)

    def result(self, state: RunningStats) -> dict[str, Any]:
        return state.summary()


class Counter(Aggregator):
    """How many events the window holds (that ``where`` accepts, and that carry ``field`` when
    one is given)."""

    def __init__(self, where: Where = None, field: Field = None) -> None:
        self.bind(field, where)

    def create(self) -> list[int]:
        return [0]

    def add(self, state: list[int], event: Event) -> None:
        if self._get is None:
            if self.where is None or self.where(event.record):
                state[0] += 1
        elif self.value_of(event) is not None:
            state[0] += 1

    def merge(self, into: list[int], other: list[int]) -> list[int]:
        into[0] += other[0]
        return into

    def dump(self, state: list[int]) -> int:
        return state[0]

    def load(self, data: int) -> list[int]:
        return [int(data)]

    def result(self, state: list[int]) -> dict[str, Any]:
        return {"count": state[0]}


class FirstLast(Aggregator):
    """The first and last value of a field by event time (ties: the earlier offset is first)."""

    def __init__(self, field: Field = None, where: Where = None) -> None:
        self.bind(field, where)

    def create(self) -> list[Any]:
        return [None, None]  # each: [ts, offset, value]

    def add(self, state: list[Any], event: Event) -> None:
        value = self.value_of(event)
        if value is not None:
            self._fold(state, [event.ts, event.offset, value])

    @staticmethod
    def _fold(state: list[Any], point: list[Any]) -> None:
        if state[0] is None or point[:2] < state[0][:2]:
            state[0] = point
        if state[1] is None or point[:2] > state[1][:2]:
            state[1] = point

    def merge(self, into: list[Any], other: list[Any]) -> list[Any]:
        for point in other:
            if point is not None:
                self._fold(into, list(point))
        return into

    def dump(self, state: list[Any]) -> list[Any]:
        return state

    def load(self, data: list[Any]) -> list[Any]:
        return data

    def result(self, state: list[Any]) -> dict[str, Any]:
        first, last = state
        return {
            "first": None if first is None else first[2],
            "first_ts": None if first is None else first[0],
            "last": None if last is None else last[2],
            "last_ts": None if last is None else last[0],
        }


def compose_result(aggregates: tuple[Aggregator, ...], states: list[Any]) -> dict[str, Any]:
    """Every aggregate's fields in one mapping, in declaration order."""
    out: dict[str, Any] = {}
    for aggregate, state in zip(aggregates, states, strict=True):
        out.update(aggregate.result(state))
    return out
