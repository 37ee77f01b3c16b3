"""Running statistics: exact merging, population stddev, stable for large offsets."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faustapp.tables.aggregates import RunningStats

PROPERTY = settings(max_examples=200, deadline=None)
values_st = st.lists(
    st.one_of(
        st.integers(-1000, 1000).map(float),
        st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    ),
    max_size=40,
)


def stats_of(values: Sequence[float]) -> RunningStats:
    stats = RunningStats()
    for value in values:
        stats.add(value)
    return stats


def close(a: float, b: float, scale: float = 1.0) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9 * max(scale, 1.0))


def assert_describes(stats: RunningStats, values: Sequence[float]) -> None:
    """``stats`` equals the figures of the plain list ``values``."""
    assert stats.count == len(values)
    if not values:
        assert (stats.total, stats.mean, stats.variance, stats.stddev) == (0.0, 0.0, 0.0, 0.0)
        return
    scale = max(abs(v) for v in values)
    assert stats.minimum == min(values)
    assert stats.maximum == max(values)
    assert close(stats.total, math.fsum(values), scale * len(values))
    assert close(stats.mean, math.fsum(values) / len(values), scale)
    assert close(stats.stddev, statistics.pstdev(values), scale)


@PROPERTY
@given(values_st)
def test_add_matches_the_plain_list(values: list[float]) -> None:
    assert_describes(stats_of(values), values)


@PROPERTY
@given(values_st, values_st)
def test_merge_equals_aggregating_the_concatenation(left: list[float], right: list[float]) -> None:
    merged = stats_of(left)
    merged.merge(stats_of(right))
    whole = stats_of(left + right)
    assert_describes(merged, left + right)
    assert merged.count == whole.count
    assert (merged.minimum, merged.maximum) == (whole.minimum, whole.maximum)
    scale = max([abs(v) for v in left + right] + [1.0])
    assert close(merged.mean, whole.mean, scale)
    assert close(merged.stddev, whole.stddev, scale)


@PROPERTY
@given(st.lists(values_st, max_size=6))
def test_merge_of_many_parts_in_any_grouping(parts: list[list[float]]) -> None:
    left_fold = RunningStats()
    for part in parts:
        left_fold.merge(stats_of(part))
    right_fold = RunningStats()
    for part in reversed(parts):
        partial = stats_of(part)
        partial.merge(right_fold)
        right_fold = partial
    flat = [value for part in parts for value in part]
    assert_describes(left_fold, flat)
    assert_describes(right_fold, flat)


def test_merge_with_empty_on_either_side_is_identity() -> None:
    filled = stats_of([1.0, 2.0, 4.0])
    copy = RunningStats.from_list(filled.to_list())
    copy.merge(RunningStats())
    assert copy == filled
    empty = RunningStats()
    empty.merge(filled)
    assert empty == filled
    both = RunningStats()
    both.merge(RunningStats())
    assert both == RunningStats()


def test_merge_does_not_alias_the_other_aggregate() -> None:
    other = stats_of([1.0, 3.0])
    target = RunningStats()
    target.merge(other)
    target.add(100.0)
    assert other.count == 2 and other.maximum == 3.0


@PROPERTY
@given(values_st.filter(bool))
def test_to_list_from_list_round_trip(values: list[float]) -> None:
    stats = stats_of(values)
    assert RunningStats.from_list(stats.to_list()) == stats
    # ... also through the state store's JSON encoding, bit for bit.
    assert RunningStats.from_list(orjson.loads(orjson.dumps(stats.to_list()))) == stats


def test_from_list_normalises_types() -> None:
    stats = RunningStats.from_list([2, 3, 1.5, 0.5, 1, 2])
    assert isinstance(stats.count, int)
    assert all(
        isinstance(x, float)
        for x in (stats.total, stats.mean, stats.m2, stats.minimum, stats.maximum)
    )
    assert stats.summary() == {
        "count": 2,
        "sum": 3.0,
        "mean": 1.5,
        "min": 1.0,
        "max": 2.0,
        "stddev": 0.5,
    }


def test_stddev_is_the_population_stddev() -> None:
    stats = stats_of([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert stats.stddev == 2.0  # the sample stddev would be about 2.138
    assert stats.variance == 4.0


@pytest.mark.parametrize("value", [0.0, -3.5, 1e-300, 1e12])
def test_single_value_has_zero_stddev(value: float) -> None:
    stats = stats_of([value])
    assert (stats.count, stats.total, stats.mean, stats.minimum, stats.maximum) == (
        1,
        value,
        value,
        value,
        value,
    )
    assert stats.variance == 0.0 and stats.stddev == 0.0


def test_empty_stats() -> None:
    stats = RunningStats()
    assert (stats.count, stats.variance, stats.stddev) == (0, 0.0, 0.0)
    assert stats.minimum == math.inf and stats.maximum == -math.inf


def test_identical_values_have_exactly_zero_stddev() -> None:
    stats = stats_of([0.1] * 1000)
    assert stats.stddev == 0.0
    assert stats.mean == 0.1


@PROPERTY
@given(st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=2, max_size=200))
def test_numerically_stable_for_large_offsets(noise: list[float]) -> None:
    """Naive sum-of-squares loses all precision at 1e9 + noise; Welford must not."""
    values = [1e9 + x for x in noise]
    stats = stats_of(values)
    expected = statistics.pstdev(values)
    assert math.isclose(stats.stddev, expected, rel_tol=1e-6, abs_tol=1e-6)
    assert stats.variance >= 0.0
    # Merged from halves too.
    half = len(values) // 2
    merged = stats_of(values[:half])
    merged.merge(stats_of(values[half:]))
    assert math.isclose(merged.stddev, expected, rel_tol=1e-6, abs_tol=1e-6)


def test_large_offset_example() -> None:
    values = [1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16]
    stats = stats_of(values)
    assert stats.mean == 1e9 + 10
    assert stats.variance == 22.5
    naive = sum(v * v for v in values) / 4 - (sum(values) / 4) ** 2
    assert naive != 22.5  # the textbook formula really does lose it here
