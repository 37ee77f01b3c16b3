"""Sketch aggregates from Apache DataSketches: bounded memory, mergeable, serialisable."""

from __future__ import annotations

import base64
from typing import Any

import datasketches as ds
import numpy as np

from faustapp.tables.aggregates import Aggregator, Where
from faustapp.tables.events import Event, Field


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class Quantiles(Aggregator):
    """Value quantiles from a KLL sketch of doubles: every quantile is one of the values seen,
    exactly as given; rank error about 1.3% (k=200), see :attr:`rank_error`."""

    def __init__(
        self,
        ranks: dict[str, float] | None = None,
        k: int = 200,
        field: Field = None,
        where: Where = None,
    ) -> None:
        self.ranks = ranks or {"p50": 0.5, "p90": 0.9, "p99": 0.99}
        self.k = k
        self.bind(field, where)

    def params(self) -> tuple[int]:
        return (self.k,)

    @property
    def rank_error(self) -> float:
        """Normalised rank error of a single sketch (99% confidence), for any stream length."""
        return ds.kll_doubles_sketch(self.k).normalized_rank_error(False)

    def create(self) -> ds.kll_doubles_sketch:
        return ds.kll_doubles_sketch(self.k)

    def add(self, state: ds.kll_doubles_sketch, event: Event) -> None:
        value = self.value_of(event)
        if value is not None:
            state.update(value)

    def merge(
        self, into: ds.kll_doubles_sketch, other: ds.kll_doubles_sketch
    ) -> ds.kll_doubles_sketch:
        into.merge(other)
        return into

    def dump(self, state: ds.kll_doubles_sketch) -> str:
        return _DOUBLES + _b64(state.serialize())

    def load(self, data: str) -> ds.kll_doubles_sketch:
        if data.startswith(_DOUBLES):
            return ds.kll_doubles_sketch.deserialize(base64.b64decode(data[len(_DOUBLES) :]))
        return _from_floats(self.k, ds.kll_floats_sketch.deserialize(base64.b64decode(data)))

    def result(self, state: ds.kll_doubles_sketch) -> dict[str, Any]:
        if state.is_empty():
            return dict.fromkeys(self.ranks)
        return {name: state.get_quantile(rank) for name, rank in self.ranks.items()}


# Stored quantile states name their item type; a state without the tag was written by an
# earlier release with a sketch of single-precision floats.
_DOUBLES = "d:"


def _from_floats(k: int, old: ds.kll_floats_sketch) -> ds.kll_doubles_sketch:
    """A state of an earlier release as a sketch of doubles: each retained item with its weight,
    so the count and the ranks are kept (the values stay at single precision)."""
    sketch = ds.kll_doubles_sketch(k)
    for item, weight in old:
        sketch.update(np.full(weight, item, dtype=np.float64))
    return sketch


class DistinctCount(Aggregator):
    """Distinct values of a field from an HLL sketch; relative error about 1.04/sqrt(2**lg_k)."""

    def __init__(
        self, lg_k: int = 12, name: str = "distinct", field: Field = None, where: Where = None
    ) -> None:
        self.lg_k = lg_k
        self.name = name
        self.bind(field, where)

    def params(self) -> tuple[int]:
        return (self.lg_k,)

    def create(self) -> ds.hll_sketch:
        return ds.hll_sketch(self.lg_k)

    def add(self, state: ds.hll_sketch, event: Event) -> None:
        value = self.value_of(event)
        if value is None:
            return
        if type(value) is str:
            # Prefixed: the sketch ignores an empty string, which is a real item here.
            state.update("i" + value)
        else:
            # Equal numbers are one value: 1 and 1.0, 0.0 and -0.0.
            number = float(value) if isinstance(value, (int, float)) else value  # noqa: UP038
            state.update("v" + repr(number + 0.0 if number == 0 else number))

    def merge(self, into: ds.hll_sketch, other: ds.hll_sketch) -> ds.hll_sketch:
        union = ds.hll_union(self.lg_k)
        union.update(into)
        union.update(other)
        return union.get_result()

    def dump(self, state: ds.hll_sketch) -> str:
        return _b64(state.serialize_compact())

    def load(self, data: str) -> ds.hll_sketch:
        return ds.hll_sketch.deserialize(base64.b64decode(data))

    def result(self, state: ds.hll_sketch) -> dict[str, Any]:
        return {self.name: round(state.get_estimate())}


class TopK(Aggregator):
    """The most frequent values of a string field (Misra-Gries frequent-items sketch): exact
    while a window holds fewer than ``0.75 * 2**lg_max_size`` distinct values."""

    def __init__(
        self,
        k: int = 5,
        lg_max_size: int = 6,
        name: str = "top",
        field: Field = None,
        where: Where = None,
        labels: tuple[str, str] = ("item", "count"),
    ) -> None:
        self.k = k
        self.lg_max_size = lg_max_size
        self.name = name
        self.labels = labels
        self.bind(field, where)

    def params(self) -> tuple[int, int]:
        return (self.k, self.lg_max_size)

    @property
    def exact_below(self) -> int:
        """Distinct values a window may hold while the counts stay exact."""
        return 3 * (1 << self.lg_max_size) // 4

    def create(self) -> ds.frequent_strings_sketch:
        return ds.frequent_strings_sketch(self.lg_max_size)

    def add(self, state: ds.frequent_strings_sketch, event: Event) -> None:
        value = self.value_of(event)
        if value is not None:
            state.update(value if type(value) is str else str(value))

    def merge(
        self, into: ds.frequent_strings_sketch, other: ds.frequent_strings_sketch
    ) -> ds.frequent_strings_sketch:
        into.merge(other)
        return into

    def dump(self, state: ds.frequent_strings_sketch) -> str:
        return _b64(state.serialize())

    def load(self, data: str) -> ds.frequent_strings_sketch:
        return ds.frequent_strings_sketch.deserialize(base64.b64decode(data))

    def result(self, state: ds.frequent_strings_sketch) -> dict[str, Any]:
        items = state.get_frequent_items(ds.frequent_items_error_type.NO_FALSE_NEGATIVES)
        # Ties by item, so the answer does not depend on how the state was built or merged.
        ranked = sorted((-estimate, item) for item, estimate, _, _ in items)
        item_label, count_label = self.labels
        return {
            self.name: [{item_label: item, count_label: -neg} for neg, item in ranked[: self.k]]
        }
