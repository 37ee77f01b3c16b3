"""Window assignment: epoch-aligned tumbling and hopping windows, checked against brute force."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import windows_containing

from faustapp.tables.windows import HoppingWindows, Window, hopping, tumbling

PROPERTY = settings(max_examples=200, deadline=None)


def spans(windows: list[Window]) -> list[tuple[int, int]]:
    return [(window.start, window.end) for window in windows]


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (0, [(0, 10)]),
        (9, [(0, 10)]),
        (10, [(10, 20)]),
        (-1, [(-10, 0)]),
        (-10, [(-10, 0)]),
        (-11, [(-20, -10)]),
        (1_732_435_200_123, [(1_732_435_200_120, 1_732_435_200_130)]),
    ],
)
def test_tumbling(ts: int, expected: list[tuple[int, int]]) -> None:
    assert spans(tumbling(10).windows_for(ts)) == expected


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (0, [(-5, 5), (0, 10)]),
        (4, [(-5, 5), (0, 10)]),
        (5, [(0, 10), (5, 15)]),
        (-1, [(-10, 0), (-5, 5)]),
        (-5, [(-10, 0), (-5, 5)]),
        (-6, [(-15, -5), (-10, 0)]),
    ],
)
def test_hopping_step_dividing_size(ts: int, expected: list[tuple[int, int]]) -> None:
    assert spans(hopping(10, 5).windows_for(ts)) == expected


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        # size 5, step 3: starts at multiples of 3; an event is in one or two windows.
        (0, [(-3, 2), (0, 5)]),
        (2, [(0, 5)]),
        (7, [(3, 8), (6, 11)]),
        (8, [(6, 11)]),
        (-1, [(-3, 2)]),
        (-4, [(-6, -1)]),
        (-2, [(-6, -1), (-3, 2)]),
    ],
)
def test_hopping_step_not_dividing_size(ts: int, expected: list[tuple[int, int]]) -> None:
    assert spans(hopping(5, 3).windows_for(ts)) == expected


def test_step_one_gives_size_windows() -> None:
    assert spans(hopping(4, 1).windows_for(0)) == [(-3, 1), (-2, 2), (-1, 3), (0, 4)]


def test_tumbling_is_hopping_with_equal_step() -> None:
    assert tumbling(7) == HoppingWindows(7, 7) == hopping(7, 7)


@PROPERTY
@given(
    size=st.integers(1, 500),
    data=st.data(),
    ts=st.one_of(st.integers(-10_000, 10_000), st.integers(-(2**50), 2**50)),
)
def test_windows_for_matches_brute_force(size: int, data: st.DataObject, ts: int) -> None:
    step = data.draw(st.one_of(st.just(size), st.integers(1, size)))
    windows = HoppingWindows(size, step).windows_for(ts)
    assert spans(windows) == windows_containing(ts, size, step)
    for window in windows:
        assert window.start % step == 0
        assert window.end - window.start == size
        assert window.start <= ts < window.end
    assert [w.start for w in windows] == sorted({w.start for w in windows})
    # Every event belongs to floor or ceil of size / step windows, never to none.
    assert len(windows) in (size // step, -(-size // step))


@pytest.mark.parametrize(
    ("size", "step"),
    [(0, 0), (0, 1), (10, 0), (-10, 5), (10, -5), (-1, -1), (5, 6), (1, 2)],
)
def test_invalid_specs_raise(size: int, step: int) -> None:
    with pytest.raises(ValueError):
        HoppingWindows(size, step)


@pytest.mark.parametrize("size", [0, -1, -1000])
def test_invalid_tumbling_raises(size: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        tumbling(size)


def test_step_larger_than_size_is_rejected_with_reason() -> None:
    with pytest.raises(ValueError, match="step larger than the size"):
        hopping(5, 10)


def test_window_is_a_frozen_value() -> None:
    window = Window(0, 10)
    assert window == Window(0, 10)
    assert hash(window) == hash(Window(0, 10))
    with pytest.raises(AttributeError):
        window.start = 5  # type: ignore[misc]
