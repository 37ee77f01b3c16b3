"""Sliding windows over typed records: several measures over fields and expressions, optional
fields, carried fields, against a brute-force reference, with out-of-order events, late events,
idle clock moves, restarts from the table and crashes; measures sliding windows cannot compute are
refused."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from oracle_kinds import calls_from_batches
from record_oracle import (
    Arrival,
    Close,
    Exact,
    Expected,
    Point,
    Spread,
    carried,
    check,
    count_of,
    max_of,
    mean_of,
    min_of,
    persist,
    points_of,
    sliding_run,
    stddev_of,
    total_of,
)

from faustapp.api import Catalog, EventTime, Id, Number, Record, Schema
from faustapp.tables.engine import MARK_KEY, Event, WindowSpec
from faustapp.tables.measures import (
    Count,
    DistinctCount,
    DistinctList,
    First,
    Last,
    Max,
    Mean,
    Measure,
    Min,
    Quantile,
    StdDev,
    Sum,
    TopK,
    stats,
)
from faustapp.tables.sliding import BUCKET_MS, BUCKET_PREFIX, SlidingPartition, SlidingResult
from faustapp.tables.windows import Window, sliding

PROPERTY = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
KEYS = ("AAPL", "b", "ключ-ü")


class Tick(msgspec.Struct, frozen=True):
    """A trade: price and quantity always; side and fee optional."""

    price: float
    qty: float
    side: str | None = None
    fee: float | None = None


def is_buy(tick: Tick) -> bool:
    return tick.side == "buy"


def small(tick: Tick) -> bool:
    return tick.qty < 400


def notional(tick: Tick) -> float:
    return tick.price * tick.qty


def price(tick: Tick) -> float:
    return tick.price


def qty(tick: Tick) -> float:
    return tick.qty


def fee(tick: Tick) -> float | None:
    return tick.fee


MEASURES: dict[str, Measure] = {
    "n": Count(),
    "buys": Count(where=is_buy),
    "fees": Count("fee"),
    "volume": Sum("qty"),
    "buy_volume": Sum("qty", where=is_buy),
    "largest_buy": Max("qty", where=is_buy),
    "notional": Sum(lambda t: t.price * t.qty),
    "mean_notional": Mean(notional),
    "max_notional": Max(notional),
    "mean_price": Mean("price"),
    "sd_price": StdDev("price"),
    "low": Min("price"),
    "high": Max("price"),
    "fee_total": Sum("fee"),
    "mean_fee": Mean("fee"),
    "sd_fee": StdDev("fee"),
    "min_fee": Min("fee"),
    "max_fee": Max("fee"),
    **{f"fee_{name}": measure for name, measure in stats("fee").items()},
}

Figure = tuple[str, Callable[[Tick], Any] | None, Callable[[Tick], bool] | None]
FIGURES: dict[str, Figure] = {
    "n": ("count", None, None),
    "buys": ("count", None, is_buy),
    "fees": ("count", fee, None),
    "volume": ("sum", qty, None),
    "buy_volume": ("sum", qty, is_buy),
    "largest_buy": ("max", qty, is_buy),
    "notional": ("sum", notional, None),
    "mean_notional": ("mean", notional, None),
    "max_notional": ("max", notional, None),
    "mean_price": ("mean", price, None),
    "sd_price": ("stddev", price, None),
    "low": ("min", price, None),
    "high": ("max", price, None),
    "fee_total": ("sum", fee, None),
    "mean_fee": ("mean", fee, None),
    "sd_fee": ("stddev", fee, None),
    "min_fee": ("min", fee, None),
    "max_fee": ("max", fee, None),
    "fee_count": ("count", fee, None),
    "fee_sum": ("sum", fee, None),
    "fee_mean": ("mean", fee, None),
    "fee_min": ("min", fee, None),
    "fee_max": ("max", fee, None),
    "fee_stddev": ("stddev", fee, None),
}
"""What each named figure is: its kind, what it reads of a record, which records it takes."""
OF_VALUES = {
    "sum": total_of,
    "mean": mean_of,
    "stddev": stddev_of,
    "min": min_of,
    "max": max_of,
}


def expected(figure: Figure, window: Sequence[Point], key_points: Sequence[Point]) -> Expected:
    """The figure over the window's points.

    Sliding windows sum each value's distance from a reference value of its key (so that large
    values with a small spread keep an accurate variance): rounding grows with the distance
    between the window's values and that reference, which can be any value the key carried.
    """
    kind, read, where = figure
    if kind == "count":
        return Exact(count_of(window, read, where))
    assert read is not None
    values = carried(window, read, where)
    want = OF_VALUES[kind](values)
    references = [*carried(key_points, read, where), *values]
    distance = max((abs(v - r) for v in values for r in references), default=0.0)
    if isinstance(want, Close):
        spread = distance * len(values) if kind == "sum" else distance
        return Close(want.value, max(want.scale, spread))
    if isinstance(want, Spread):
        return Spread(want.value, max(want.scale, distance))
    return want


CARRIES = [("price",), ("price", "side"), ("qty", "fee", "side")]


# --------------------------------------------------------------------------------------------
# Scenarios


ticks = st.builds(
    Tick,
    price=st.one_of(
        st.integers(1, 4000).map(lambda n: n / 4),
        st.floats(0.01, 1e4, allow_nan=False, allow_infinity=False),
        # Large values with a small spread: the variance must not cancel away.
        st.integers(0, 50).map(lambda n: 1e9 + n / 2),
    ),
    qty=st.one_of(st.integers(1, 500).map(float), st.floats(0.5, 1e3)),
    side=st.sampled_from([None, "buy", "sell"]),
    fee=st.one_of(
        st.none(),
        st.none(),
        st.integers(-40, 40).map(lambda n: n / 8),
        st.floats(1e-100, 1e3),
        st.floats(-1e3, -1e-100),
    ),
)


@st.composite
def scenarios(draw: st.DrawFn, max_events: int = 30) -> tuple[int, int, list[Arrival]]:
    """Window size, grace and events of a few keys in offset order, times wandering back and
    forth (on a window's edge too), spread over one or many state buckets."""
    scale = draw(st.sampled_from([1, 1, 700, BUCKET_MS // 4]))
    size = draw(st.integers(1, 40)) * scale
    grace = draw(st.one_of(st.just(0), st.integers(0, 40).map(lambda g: g * scale)))
    ts = draw(st.integers(0, 30)) * scale
    offset = draw(st.integers(0, 5))
    raw = []
    for _ in range(draw(st.integers(0, max_events))):
        move = draw(st.sampled_from(["same", "forward", "forward", "back", "size", "jump"]))
        if move == "forward":
            ts += draw(st.integers(1, 10)) * scale
        elif move == "back":
            ts -= draw(st.integers(1, 10)) * scale + draw(st.integers(0, 1))
        elif move == "size":
            ts += draw(st.sampled_from([size, -size]))
        elif move == "jump":
            ts += draw(st.integers(20, 150)) * scale
        raw.append((draw(st.sampled_from(KEYS)), ts, offset, draw(ticks)))
        offset += draw(st.integers(1, 3))
    return size, grace, raw


@st.composite
def calls_for(draw: st.DrawFn, count: int, size: int) -> list[tuple[str, int]]:
    """Batches, with idle clock moves and restarts between them, then a move past everything."""
    ends = draw(st.lists(st.integers(0, count), max_size=6))
    calls: list[tuple[str, int]] = []
    for call in calls_from_batches(count, ends):
        calls.append(call)
        extra = draw(st.sampled_from(["none", "restore", "restore", "advance"]))
        if extra == "restore":
            calls.append(("restore", 0))
        elif extra == "advance":
            calls.append(("advance", draw(st.integers(-40, 200)) * (size // 40 + 1)))
    calls.append(("advance", 10**12))
    return calls


def events_of(raw: Sequence[Arrival]) -> list[Event]:
    return [Event(key, ts, record, offset) for key, ts, offset, record in raw]


def spec_of(size: int, grace: int, carry: tuple[str, ...], where: Any = None) -> WindowSpec:
    return WindowSpec.of(sliding(size, carry=carry), grace, MEASURES, where=where)


def ident(result: SlidingResult) -> tuple[str, int]:
    return (result.key, result.event.offset)


def assert_result(
    result: SlidingResult,
    raw: Sequence[Arrival],
    members: Sequence[int],
    size: int,
    carry: tuple[str, ...],
) -> None:
    """The result of one event: its window, carried fields and every figure."""
    index = next(i for i, arrival in enumerate(raw) if arrival[2] == result.event.offset)
    key, ts, _, record = raw[index]
    context = f"key {key} ts {ts} members {list(members)}"
    assert (result.key, result.event.ts) == (key, ts), context
    assert result.window == Window(ts - size, ts), context
    shown = {name: getattr(record, name) for name in carry}
    assert result.carried == shown, context
    assert set(result.figures) == set(FIGURES), context
    window = points_of(raw, members)
    key_points = [(t, o, r) for k, t, o, r in raw if k == key]
    for name, figure in FIGURES.items():
        check(name, result.figures[name], expected(figure, window, key_points), context)
    assert result.as_dict("symbol") == {
        "symbol": key,
        "ts": ts,
        **shown,
        "window_start": ts - size,
        "window_end": ts,
        **result.figures,
    }


# --------------------------------------------------------------------------------------------
# Against the reference, with restarts in the middle


@PROPERTY
@given(scenarios(), st.sampled_from(CARRIES), st.sampled_from([None, small]), st.data())
def test_sliding_measures_match_the_reference_across_restarts(
    scenario: tuple[int, int, list[Arrival]],
    carry: tuple[str, ...],
    where: Any,
    data: st.DataObject,
) -> None:
    size, grace, raw = scenario
    calls = data.draw(calls_for(len(raw), size), label="calls")
    spec = spec_of(size, grace, carry, where)
    events = events_of(raw)
    run = sliding_run(raw, size, grace, calls, where)
    table: dict[bytes, bytes] = {}
    part = SlidingPartition(spec)
    position = 0
    restored_with_buckets = 0
    for (kind, argument), want, want_late in zip(calls, run.emitted, run.late, strict=True):
        if kind == "process":
            outcome = part.process(events[position:argument])
            position = argument
        elif kind == "advance":
            outcome = part.close_due(stream_time=argument)
        else:
            records = data.draw(st.permutations(sorted(table.items())), label="record order")
            restored_with_buckets += any(k.startswith(BUCKET_PREFIX) for k, _ in records)
            part = SlidingPartition.restore(spec, records)
            outcome = part.close_due()
        results = persist(table, outcome, MARK_KEY)
        assert [ident(r) for r in results] == [(raw[w.index][0], raw[w.index][2]) for w in want], (
            f"results differ after {kind} {argument}"
        )
        for result, held in zip(results, want, strict=True):
            assert_result(result, raw, held.members, size, carry)
        assert [late.event for late in outcome.late] == [events[i] for i in want_late]
    assert not any(key.startswith(BUCKET_PREFIX) for key in table), "state left behind"
    event(f"results: {min(sum(map(len, run.emitted)), 10)}+")
    event(f"restarts holding events: {min(restored_with_buckets, 2)}+")
    event(f"late: {min(sum(map(len, run.late)), 2)}+")


@PROPERTY
@given(scenarios(max_events=25), st.sampled_from(CARRIES), st.data())
def test_a_crash_and_replay_gives_the_same_figures(
    scenario: tuple[int, int, list[Arrival]], carry: tuple[str, ...], data: st.DataObject
) -> None:
    """A crash after the state updates (no mark) or after the results went out (no frontier):
    the restored partition replays the batch; repeated results are identical, none is lost."""
    size, grace, raw = scenario
    spec = spec_of(size, grace, carry)
    events = events_of(raw)
    ends = data.draw(st.lists(st.integers(0, len(raw)), max_size=5), label="ends")
    batches = calls_from_batches(len(raw), ends)
    crash = data.draw(st.integers(0, len(batches) - 1), label="crash batch")
    stage = data.draw(st.sampled_from(["updates", "results"]), label="stage")
    table: dict[bytes, bytes] = {}
    part = SlidingPartition(spec)
    emitted: list[SlidingResult] = []
    begin = 0
    for number, (_, end) in enumerate(batches):
        outcome = part.process(events[begin:end])
        if number == crash:
            for key, value in outcome.updates:
                if value is None:
                    table.pop(key, None)
                else:
                    table[key] = value if isinstance(value, bytes) else value()
            if stage == "results":
                table[MARK_KEY] = outcome.mark
                emitted += outcome.results
            part = SlidingPartition.restore(spec, sorted(table.items()))
            emitted += persist(table, part.close_due(), MARK_KEY)
            outcome = part.process(events[begin:end])
        emitted += persist(table, outcome, MARK_KEY)
        begin = end
    emitted += persist(table, part.close_due(stream_time=10**12), MARK_KEY)
    run = sliding_run(raw, size, grace, [("process", len(raw)), ("advance", 10**12)])
    members = {raw[held.index][2]: held.members for batch in run.emitted for held in batch}
    first: dict[tuple[str, int], SlidingResult] = {}
    for result in emitted:
        if ident(result) in first:
            assert result.figures == first[ident(result)].figures, "a repeat changed"
            assert result.carried == first[ident(result)].carried, "a repeat changed"
        first.setdefault(ident(result), result)
    assert sorted(offset for _, offset in first) == sorted(members)
    for result in first.values():
        assert_result(result, raw, members[result.event.offset], size, carry)


# --------------------------------------------------------------------------------------------
# Worked examples


def test_a_worked_example_with_optional_fields_and_carry() -> None:
    spec = spec_of(10, 0, ("price", "side"))
    part = SlidingPartition(spec)
    ticks_in = [
        Tick(10.0, 1.0, "buy", fee=0.5),
        Tick(12.0, 3.0, "sell"),
        Tick(11.0, 2.0, None, fee=-0.25),
        Tick(20.0, 4.0, "buy"),
    ]
    times = [0, 5, 10, 21]
    outcome = part.process(
        [Event("k", t, r, i) for i, (t, r) in enumerate(zip(times, ticks_in, strict=True))]
    )
    figures = [r.figures for r in outcome.results]
    assert [f["n"] for f in figures] == [1, 2, 3, 1]
    assert [f["fees"] for f in figures] == [1, 1, 2, 0]
    assert [f["volume"] for f in figures] == [1.0, 4.0, 6.0, 4.0]
    assert [f["notional"] for f in figures] == [10.0, 46.0, 68.0, 80.0]
    assert [f["low"] for f in figures] == [10.0, 10.0, 10.0, 20.0]
    assert [f["high"] for f in figures] == [10.0, 12.0, 12.0, 20.0]
    assert [f["min_fee"] for f in figures] == [0.5, 0.5, -0.25, None]
    assert [f["max_fee"] for f in figures] == [0.5, 0.5, 0.5, None]
    assert [f["fee_total"] for f in figures] == [0.5, 0.5, 0.25, 0.0]
    assert [f["mean_fee"] for f in figures] == [0.5, 0.5, 0.125, None]
    assert [f["sd_fee"] for f in figures] == [0.0, 0.0, 0.375, None]
    assert [f["largest_buy"] for f in figures] == [1.0, 1.0, 1.0, 4.0]
    assert [r.carried for r in outcome.results] == [
        {"price": 10.0, "side": "buy"},
        {"price": 12.0, "side": "sell"},
        {"price": 11.0, "side": None},
        {"price": 20.0, "side": "buy"},
    ]
    assert outcome.results[2].as_dict("symbol")["side"] is None


def test_min_and_max_follow_the_window_as_values_leave() -> None:
    spec = WindowSpec.of(
        sliding(10, carry=("qty",)), 0, {"low": Min("price"), "high": Max("price")}
    )
    part = SlidingPartition(spec)
    prices = [5.0, 9.0, 1.0, 7.0, 3.0, 8.0]
    outcome = part.process([Event("k", 4 * i, Tick(p, 1.0), i) for i, p in enumerate(prices)])
    windows = [prices[max(i - 2, 0) : i + 1] for i in range(len(prices))]
    assert [(r.figures["low"], r.figures["high"]) for r in outcome.results] == [
        (min(w), max(w)) for w in windows
    ]


# --------------------------------------------------------------------------------------------
# What sliding windows cannot compute


NOT_NUMERIC = {
    "first": First("price"),
    "last": Last("price"),
    "top": TopK("side"),
    "quantile": Quantile("price", 0.5),
    "distinct": DistinctCount("side"),
    "distinct_list": DistinctList("side"),
}


@pytest.mark.parametrize("kind", sorted(NOT_NUMERIC))
def test_a_measure_sliding_windows_cannot_compute_is_refused(kind: str) -> None:
    measures = {"n": Count(), "mean": Mean("price"), kind: NOT_NUMERIC[kind]}
    spec = WindowSpec.of(sliding(1000, carry=("price",)), 0, measures)
    with pytest.raises(TypeError, match="sliding windows"):
        SlidingPartition(spec)


class Trade(Record):
    symbol: Id
    ts: EventTime
    price: Annotated[float, Number(gt=0)]
    qty: Annotated[float, Number(gt=0)]
    side: Literal["buy", "sell"] | None = None


def trades_source() -> Any:
    return Catalog().source("trades", topic="trades", schema=Schema(Trade, key="symbol"))


@pytest.mark.parametrize("kind", sorted(NOT_NUMERIC))
def test_declaring_a_measure_sliding_windows_cannot_compute_fails(kind: str) -> None:
    """Refused at declaration, naming the pipeline, not when a worker creates a partition."""
    source = trades_source()
    with pytest.raises(TypeError, match="alerts"):
        source.window("alerts", sliding(1000, carry=("price",)), n=Count(), x=NOT_NUMERIC[kind])
    declared = source.window("alerts", sliding(1000, carry=("price",)), n=Count())
    assert declared.name == "alerts"


def test_a_sliding_window_without_carry_keeps_only_the_time_of_a_record() -> None:
    """A typed record without carried fields: its result repeats only its time, and its state
    is stored and restored like any other."""
    source = trades_source()
    declared = source.window("alerts", sliding(1000), n=Count(), volume=Sum("qty"))
    spec = WindowSpec.of(declared.windows, 100, declared.measures)
    trade = Schema(Trade, key="symbol").decode(b'{"symbol":"A","ts":5,"price":2,"qty":3}')
    table: dict[bytes, bytes] = {}
    assert persist(table, SlidingPartition(spec).process([Event("A", 5, trade, 0)]), MARK_KEY) == []
    restored = SlidingPartition.restore(spec, sorted(table.items()))
    results = restored.close_due(stream_time=10**6).results
    assert [r.figures for r in results] == [{"n": 1, "volume": 3.0}]
    assert orjson.loads(orjson.dumps(results[0].as_dict("symbol"))) == {
        "symbol": "A",
        "ts": 5,
        "window_start": -995,
        "window_end": 5,
        "n": 1,
        "volume": 3.0,
    }


def test_figures_are_accurate_for_the_window_whatever_the_key_held_before() -> None:
    measures = {"sd": StdDev("price"), "total": Sum("price")}
    part = SlidingPartition(WindowSpec.of(sliding(10, carry=("price",)), 0, measures))
    prices = [(0, 1e9), (100, 0.25), (101, 0.5), (200, 0.01)]
    outcome = part.process([Event("k", t, Tick(p, 1.0), i) for i, (t, p) in enumerate(prices)])
    assert [r.figures for r in outcome.results[1:]] == [
        {"sd": 0.0, "total": 0.25},
        {"sd": 0.125, "total": 0.75},
        {"sd": 0.0, "total": 0.01},
    ]
