"""Aggregates that collect values rather than fold numbers: the distinct values of a field in
order of first appearance, and how often each value occurred."""

from __future__ import annotations

from typing import Any

from faustapp.tables.aggregates import Aggregator, Where
from faustapp.tables.events import Event, Field


class FirstSeen(Aggregator):
    """Distinct values of a field in order of first appearance (by event time, then log order),
    the first ``limit`` of them. Exact: a value pushed out of the first ``limit`` never returns,
    since later sightings of it rank behind the ones that pushed it out."""

    def __init__(self, limit: int = 50, field: Field = None, where: Where = None) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.bind(field, where)

    def params(self) -> tuple[int]:
        return (self.limit,)

    def create(self) -> dict[Any, list[int]]:
        return {}  # value -> [ts, offset] of its first sighting

    def add(self, state: dict[Any, list[int]], event: Event) -> None:
        value = self.value_of(event)
        if value is None:
            return
        seen = state.get(value)
        if seen is None or [event.ts, event.offset] < seen:
            state[value] = [event.ts, event.offset]
            if len(state) > 2 * self.limit:
                self._prune(state)

    def _prune(self, state: dict[Any, list[int]]) -> None:
        keep = sorted(state.items(), key=lambda item: item[1])[: self.limit]
        state.clear()
        state.update(keep)

    def merge(self, into: dict[Any, list[int]], other: dict[Any, list[int]]) -> dict:
        for value, seen in other.items():
            mine = into.get(value)
            if mine is None or seen < mine:
                into[value] = list(seen)
        if len(into) > 2 * self.limit:
            self._prune(into)
        return into

    def dump(self, state: dict[Any, list[int]]) -> list[list[Any]]:
        return [[value, ts, offset] for value, (ts, offset) in state.items()]

    def load(self, data: list[list[Any]]) -> dict[Any, list[int]]:
        return {value: [ts, offset] for value, ts, offset in data}

    def result(self, state: dict[Any, list[int]]) -> dict[str, Any]:
        return {"first_seen": self.ordered(state)}

    def ordered(self, state: dict[Any, list[int]]) -> list[Any]:
        """The first ``limit`` values, earliest first."""
        ranked = sorted(state.items(), key=lambda item: item[1])
        return [value for value, _ in ranked[: self.limit]]


class CountBy(Aggregator):
    """How many events carried each value of a field: ``{value: count}`` (a co-occurrence
    matrix's row, a histogram). Exact; its size is the number of distinct values."""

    def __init__(self, field: Field = None, where: Where = None) -> None:
        self.bind(field, where)

    def create(self) -> dict[str, int]:
        return {}

    def add(self, state: dict[str, int], event: Event) -> None:
        value = self.value_of(event)
        if value is not None:
            value = value if type(value) is str else str(value)
            state[value] = state.get(value, 0) + 1

    def merge(self, into: dict[str, int], other: dict[str, int]) -> dict[str, int]:
        for value, count in other.items():
            into[value] = into.get(value, 0) + count
        return into

    def dump(self, state: dict[str, int]) -> dict[str, int]:
        return state

    def load(self, data: dict[str, int]) -> dict[str, int]:
        return data

    def result(self, state: dict[str, int]) -> dict[str, Any]:
        return {"counts": state}
