"""The sliding windows' running moments against exact rational arithmetic: after any sequence
of additions and removals, sum, mean and stddev are the correctly rounded exact figures of the
values still in, whatever came before."""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from faustapp.tables.moments import Moments

values = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.floats(-1e-300, 1e-300, allow_nan=False, allow_infinity=False),
    st.integers(-1000, 1000).map(lambda n: 1e9 + n / 8),  # far from zero, small spread
    st.integers(-5, 5),
)


def exact(window: list[float]) -> dict[str, object]:
    n = len(window)
    total = sum(map(Fraction, window), Fraction(0))
    squares = sum((Fraction(v) ** 2 for v in window), Fraction(0))
    variance = (squares * n - total * total) / (n * n)
    return {"sum": float(total), "mean": float(total / n), "stddev": math.sqrt(float(variance))}


@settings(max_examples=300, deadline=None)
@given(st.lists(values, min_size=1, max_size=40), st.data())
def test_moments_are_the_exact_figures_of_the_values_in_the_window(
    history: list[float], data: st.DataObject
) -> None:
    moments = Moments()
    window: list[tuple[int, int, float]] = []
    for offset, value in enumerate(history):
        point = (offset, offset, value)
        moments.add(point, sums=True, extremes=True)
        window.append(point)
        drop = data.draw(st.integers(0, len(window) - 1))
        for gone in window[:drop]:
            moments.remove(gone, sums=True, extremes=True)
        window = window[drop:]
        kept = [v for _, _, v in window]
        want = exact(kept)
        assert moments.figure("count") == len(kept)
        assert moments.figure("sum") == want["sum"]
        assert moments.figure("mean") == want["mean"]
        assert moments.figure("stddev") == want["stddev"]
        assert moments.figure("min") == min(kept)
        assert moments.figure("max") == max(kept)


def test_an_emptied_window_forgets_the_scale_of_a_tiny_value() -> None:
    moments = Moments()
    tiny = (0, 0, 5e-324)
    moments.add(tiny, sums=True, extremes=False)
    assert moments.scale == 1074
    moments.remove(tiny, sums=True, extremes=False)
    assert (moments.n, moments.s1, moments.s2, moments.scale) == (0, 0, 0, 0)
    moments.add((1, 1, 2.5), sums=True, extremes=False)
    assert moments.figure("sum") == 2.5 and moments.scale == 1
