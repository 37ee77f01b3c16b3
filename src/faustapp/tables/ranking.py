"""An exact ranking of the rows of a window: the second stage of a global top-K.

The first stage aggregates per key (an item's views and purchases in a window); its final rows
meet in one window of the ranking stage, which keeps every row of the window (its state is bounded
by the keys of open windows) and ranks them when the window closes. A row seen again (a replay)
replaces itself, so the ranking is exact whatever was replayed.
"""

from __future__ import annotations

from typing import Any

from faustapp.tables.aggregates import Aggregator, Where
from faustapp.tables.events import Event


class Ranked(Aggregator):
    """The ``k`` rows with the highest ``score``, score descending then id ascending; rows with
    a score at or below ``above`` are left out."""

    def __init__(
        self,
        k: int,
        *,
        id_field: str,
        score: str,
        fields: tuple[str, ...] = (),
        above: float | None = None,
        where: Where = None,
    ) -> None:
        if k < 1:
            raise ValueError("a ranking keeps at least one row")
        self.k = k
        self.id_field = id_field
        self.score = score
        self.fields = fields
        self.above = above
        self.bind(None, where)

    def params(self) -> tuple[Any, ...]:
        return (self.k, self.id_field, self.score, self.fields, self.above)

    def create(self) -> dict[str, list[Any]]:
        return {}  # id -> [score, *fields]

    def add(self, state: dict[str, list[Any]], event: Event) -> None:
        record = event.record
        if self.where is not None and not self.where(record):
            return
        row = [getattr(record, self.score), *(getattr(record, name) for name in self.fields)]
        state[str(getattr(record, self.id_field))] = row

    def merge(self, into: dict[str, list[Any]], other: dict[str, list[Any]]) -> dict:
        into.update(other)
        return into

    def dump(self, state: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return state

    def load(self, data: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return data

    def result(self, state: dict[str, list[Any]]) -> dict[str, Any]:
        return {"items": self.ranking(state)}

    def ranking(self, state: dict[str, list[Any]]) -> list[dict[str, Any]]:
        """The top rows, each ``{id_field, score, *fields}``."""
        above = self.above
        rows = [
            (-row[0], key, row)
            for key, row in state.items()
            if row[0] is not None and (above is None or row[0] > above)
        ]
        rows.sort(key=lambda item: (item[0], item[1]))
        names = (self.score, *self.fields)
        return [
            {self.id_field: key, **dict(zip(names, row, strict=True))}
            for _, key, row in rows[: self.k]
        ]
