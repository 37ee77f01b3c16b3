"""Named measures against references computed from the plain list of records: every figure, on its
own and with its state shared, after merging partial states (also through their stored form), and
end to end through the window engine (time windows with a restart, sessions)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from typing import Any

import datasketches as ds
import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from oracle_kinds import calls_from_batches, run_session_oracle
from record_oracle import (
    Arrival,
    Exact,
    Expected,
    Point,
    Ranked,
    carried,
    check,
    count_of,
    distinct_of,
    first_of,
    last_of,
    max_of,
    mean_of,
    min_of,
    persist,
    points_of,
    stddev_of,
    time_windows_run,
    top_of,
    total_of,
)

from faustapp.tables.aggregates import Counter, FirstLast, Stats
from faustapp.tables.engine import MARK_KEY, Event, PartitionWindows, WindowSpec
from faustapp.tables.measures import (
    Count,
    DistinctCount,
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
    plan,
    stats,
)
from faustapp.tables.sketches import Quantiles
from faustapp.tables.windows import hopping, session, tumbling

PROPERTY = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
KEYS = ("AAPL", "b", "ключ-ü")
VENUES = ("XNYS", "XNAS", "BATS", "", "Börse-ü", "IEX")
RANK_ERROR = ds.kll_doubles_sketch(200).normalized_rank_error(False)


class Fill(msgspec.Struct, frozen=True):
    """A trade fill: price and quantity always, side, fee and venue optional."""

    price: float
    qty: float
    side: str | None = None
    fee: float | None = None
    venue: str | None = None


def is_buy(fill: Fill) -> bool:
    return fill.side == "buy"


def notional(fill: Fill) -> float:
    return fill.price * fill.qty


def lot(fill: Fill) -> int:
    return int(fill.qty) % 5


def off_iex(fill: Fill) -> bool:
    return fill.venue != "IEX"


def price(fill: Fill) -> float:
    return fill.price


def qty(fill: Fill) -> float:
    return fill.qty


def fee(fill: Fill) -> float | None:
    return fill.fee


def venue(fill: Fill) -> str | None:
    return fill.venue


def side(fill: Fill) -> str | None:
    return fill.side


MEASURES: dict[str, Measure] = {
    "n": Count(),
    "buys": Count(where=is_buy),
    "fees": Count("fee"),
    "buy_fees": Count("fee", where=is_buy),
    "volume": Sum("qty"),
    "buy_volume": Sum("qty", where=is_buy),
    "notional": Sum(lambda f: f.price * f.qty),
    "fee_total": Sum("fee"),
    "mean_price": Mean("price"),
    "low": Min("price"),
    "high": Max("price"),
    "sd_price": StdDev("price"),
    "mean_fee": Mean("fee"),
    "min_fee": Min("fee"),
    "max_fee": Max("fee"),
    "sd_fee": StdDev("fee"),
    "buy_mean_fee": Mean("fee", where=is_buy),
    "mean_notional": Mean(notional),
    "min_notional": Min(notional),
    "max_notional": Max(notional),
    "sd_notional": StdDev(notional),
    "open": First("price"),
    "close": Last("price"),
    "first_fee": First("fee"),
    "last_fee": Last("fee"),
    "first_buy": First("price", where=is_buy),
    "last_venue": Last("venue"),
    "venues": TopK("venue", 3),
    "markets": TopK("venue", 2, where=is_buy, label="market"),
    "sides": TopK(lambda f: f.side, 2),
    "distinct_venues": DistinctCount("venue"),
    "distinct_lots": DistinctCount(lot),
    "p10": Quantile("price", 0.1),
    "median": Quantile("price", 0.5),
    "p90": Quantile("price", 0.9),
    "fee_p50": Quantile("fee", 0.5),
    **{f"qty_{name}": measure for name, measure in stats("qty").items()},
}


def quantile(points: Sequence[Point], read: Callable[[Any], Any], q: float) -> Expected:
    values = carried(points, read)
    if not values:
        return Exact(None)
    return Ranked(tuple(values), q, RANK_ERROR)


EXPECT: dict[str, Callable[[Sequence[Point]], Expected]] = {
    "n": lambda p: Exact(count_of(p)),
    "buys": lambda p: Exact(count_of(p, where=is_buy)),
    "fees": lambda p: Exact(count_of(p, fee)),
    "buy_fees": lambda p: Exact(count_of(p, fee, is_buy)),
    "volume": lambda p: total_of(carried(p, qty)),
    "buy_volume": lambda p: total_of(carried(p, qty, is_buy)),
    "notional": lambda p: total_of(carried(p, notional)),
    "fee_total": lambda p: total_of(carried(p, fee)),
    "mean_price": lambda p: mean_of(carried(p, price)),
    "low": lambda p: min_of(carried(p, price)),
    "high": lambda p: max_of(carried(p, price)),
    "sd_price": lambda p: stddev_of(carried(p, price)),
    "mean_fee": lambda p: mean_of(carried(p, fee)),
    "min_fee": lambda p: min_of(carried(p, fee)),
    "max_fee": lambda p: max_of(carried(p, fee)),
    "sd_fee": lambda p: stddev_of(carried(p, fee)),
    "buy_mean_fee": lambda p: mean_of(carried(p, fee, is_buy)),
    "mean_notional": lambda p: mean_of(carried(p, notional)),
    "min_notional": lambda p: min_of(carried(p, notional)),
    "max_notional": lambda p: max_of(carried(p, notional)),
    "sd_notional": lambda p: stddev_of(carried(p, notional)),
    "open": lambda p: Exact(first_of(p, price)),
    "close": lambda p: Exact(last_of(p, price)),
    "first_fee": lambda p: Exact(first_of(p, fee)),
    "last_fee": lambda p: Exact(last_of(p, fee)),
    "first_buy": lambda p: Exact(first_of(p, price, is_buy)),
    "last_venue": lambda p: Exact(last_of(p, venue)),
    "venues": lambda p: Exact(top_of(p, venue, 3, "venue")),
    "markets": lambda p: Exact(top_of(p, venue, 2, "market", is_buy)),
    "sides": lambda p: Exact(top_of(p, side, 2, "item")),
    "distinct_venues": lambda p: Exact(distinct_of(p, venue)),
    "distinct_lots": lambda p: Exact(distinct_of(p, lot)),
    "p10": lambda p: quantile(p, price, 0.1),
    "median": lambda p: quantile(p, price, 0.5),
    "p90": lambda p: quantile(p, price, 0.9),
    "fee_p50": lambda p: quantile(p, fee, 0.5),
    "qty_count": lambda p: Exact(count_of(p, qty)),
    "qty_sum": lambda p: total_of(carried(p, qty)),
    "qty_mean": lambda p: mean_of(carried(p, qty)),
    "qty_min": lambda p: min_of(carried(p, qty)),
    "qty_max": lambda p: max_of(carried(p, qty)),
    "qty_stddev": lambda p: stddev_of(carried(p, qty)),
}


def assert_figures(figures: dict[str, Any], points: Sequence[Point], context: str = "") -> None:
    """Every named figure equals the reference over ``points``."""
    assert set(figures) == set(EXPECT), context
    for name, expect in EXPECT.items():
        check(name, figures[name], expect(points), context)


# --------------------------------------------------------------------------------------------
# Records and states


fills = st.builds(
    Fill,
    price=st.one_of(
        st.integers(1, 40_000).map(lambda n: n / 4),
        st.floats(0.01, 1e5, allow_nan=False, allow_infinity=False),
    ),
    qty=st.one_of(
        st.integers(1, 500).map(float),
        st.floats(0.001, 1e3, allow_nan=False, allow_infinity=False),
    ),
    side=st.sampled_from([None, "buy", "sell"]),
    fee=st.one_of(
        st.none(),
        st.integers(-40, 40).map(lambda n: n / 8),
        # Magnitudes below ~1e-150 are left out: their squares underflow in any variance.
        st.sampled_from([0.0, -0.0]),
        st.floats(1e-150, 1e3),
        st.floats(-1e3, -1e-150),
    ),
    venue=st.one_of(st.none(), st.sampled_from(VENUES)),
)


@st.composite
def point_lists(draw: st.DrawFn, max_size: int = 50) -> list[Point]:
    """Points with few distinct times (ties by time are common) and distinct offsets that do
    not follow time, in the order they are added."""
    records = draw(st.lists(fills, max_size=max_size))
    offsets = draw(st.permutations(range(len(records))))
    return [
        (draw(st.integers(0, 5)), offset, record)
        for offset, record in zip(offsets, records, strict=True)
    ]


def spec_of(measures: dict[str, Measure]) -> WindowSpec:
    return WindowSpec.of(tumbling(1000), 0, measures)


SPEC = spec_of(MEASURES)


def states_of(spec: WindowSpec, points: Sequence[Point]) -> list[Any]:
    states = [aggregate.create() for aggregate in spec.aggregates]
    for ts, offset, record in points:
        event = Event("k", ts, record, offset)
        for aggregate, state in zip(spec.aggregates, states, strict=True):
            aggregate.add(state, event)
    return states


def stored(spec: WindowSpec, states: list[Any]) -> list[Any]:
    """States after a trip through their stored (JSON) form."""
    dumped = orjson.dumps([a.dump(s) for a, s in zip(spec.aggregates, states, strict=True)])
    return [a.load(d) for a, d in zip(spec.aggregates, orjson.loads(dumped), strict=True)]


def merge(spec: WindowSpec, into: list[Any], other: list[Any]) -> list[Any]:
    return [a.merge(i, o) for a, i, o in zip(spec.aggregates, into, other, strict=True)]


# --------------------------------------------------------------------------------------------
# Every measure against the plain list


@PROPERTY
@given(point_lists())
def test_every_measure_matches_the_plain_list(points: list[Point]) -> None:
    assert_figures(SPEC.result(states_of(SPEC, points)), points)


@PROPERTY
@given(point_lists(), st.data())
def test_merged_states_match_the_union(points: list[Point], data: st.DataObject) -> None:
    """Parts aggregated separately (as hopping windows, sessions and workers do), optionally
    stored and loaded, merged in any order into a fresh state or into one of them."""
    cuts = sorted(data.draw(st.lists(st.integers(0, len(points)), max_size=4), label="cuts"))
    bounds = [0, *cuts, len(points)]
    parts = [points[a:b] for a, b in itertools.pairwise(bounds)]
    parts = data.draw(st.permutations(parts), label="merge order")
    store = data.draw(st.booleans(), label="stored")
    partial = [states_of(SPEC, part) for part in parts]
    if store:
        partial = [stored(SPEC, states) for states in partial]
    if data.draw(st.booleans(), label="into a fresh state"):
        total = [aggregate.create() for aggregate in SPEC.aggregates]
    else:
        total, partial = partial[0], partial[1:]
    for states in partial:
        total = merge(SPEC, total, states)
    assert_figures(SPEC.result(total), points, "merged")
    assert_figures(SPEC.result(stored(SPEC, total)), points, "merged, then stored")


@settings(PROPERTY, max_examples=40)
@given(point_lists(max_size=30))
def test_sharing_states_does_not_change_any_figure(points: list[Point]) -> None:
    """Each figure computed on its own state equals the one read off the shared plan."""
    together = SPEC.result(states_of(SPEC, points))
    for name, measure in MEASURES.items():
        alone = spec_of({name: measure})
        assert alone.result(states_of(alone, points)) == {name: together[name]}, name


def test_figures_of_records_without_the_optional_field() -> None:
    """Records that never carry ``fee``: sums of nothing are 0.0, counts 0, the rest null."""
    points = [(t, t, Fill(10.0 + t, 2.0, "buy")) for t in range(4)]
    figures = SPEC.result(states_of(SPEC, points))
    assert figures["n"] == 4 and figures["buys"] == 4
    assert (figures["fees"], figures["buy_fees"]) == (0, 0)
    assert figures["fee_total"] == 0.0 and type(figures["fee_total"]) is float
    nulls = ("mean_fee", "min_fee", "max_fee", "sd_fee", "buy_mean_fee", "first_fee", "last_fee")
    assert [figures[name] for name in nulls] == [None] * len(nulls)
    assert figures["fee_p50"] is None
    assert figures["venues"] == [] and figures["distinct_venues"] == 0
    assert figures["last_venue"] is None
    assert (figures["open"], figures["close"]) == (10.0, 13.0)
    assert_figures(figures, points)


def test_figures_of_an_empty_state() -> None:
    figures = SPEC.result([aggregate.create() for aggregate in SPEC.aggregates])
    assert_figures(figures, [])
    assert figures["n"] == 0 and figures["volume"] == 0.0 and figures["mean_price"] is None


def test_first_and_last_go_by_time_then_offset_not_by_arrival() -> None:
    points = [
        (5, 7, Fill(2.0, 1.0)),
        (5, 3, Fill(1.0, 1.0, fee=0.5)),
        (9, 4, Fill(4.0, 1.0)),
        (9, 8, Fill(3.0, 1.0, side="buy")),
        (9, 6, Fill(5.0, 1.0, fee=0.25, side="buy")),
    ]
    figures = SPEC.result(states_of(SPEC, points))
    assert (figures["open"], figures["close"]) == (1.0, 3.0)
    assert (figures["first_fee"], figures["last_fee"]) == (0.5, 0.25)
    assert figures["first_buy"] == 5.0


def test_top_k_ranks_by_count_then_value_with_its_label() -> None:
    venues = ["XNAS", "BATS", "XNAS", "IEX", "BATS", "", "", "XNYS"]
    points = [(0, i, Fill(1.0, 1.0, "buy", venue=v)) for i, v in enumerate(venues)]
    figures = SPEC.result(states_of(SPEC, points))
    assert figures["venues"] == [
        {"venue": "", "count": 2},
        {"venue": "BATS", "count": 2},
        {"venue": "XNAS", "count": 2},
    ]
    assert figures["markets"] == [{"market": "", "count": 2}, {"market": "BATS", "count": 2}]
    assert figures["sides"] == [{"item": "buy", "count": 8}]
    assert figures["distinct_venues"] == 5


@pytest.mark.parametrize("seed", range(3))
def test_quantiles_of_many_values_stay_within_the_rank_error_after_merging(seed: int) -> None:
    """Thousands of values: the sketch compacts, and merged parts still keep the rank error."""
    rng = random.Random(seed)
    ranks = {"p05": 0.05, "p50": 0.5, "p95": 0.95}
    spec = spec_of({name: Quantile("price", q) for name, q in ranks.items()})
    assert len(spec.aggregates) == 1
    parts = [
        [(0, 0, Fill(rng.lognormvariate(3, 1), 1.0)) for _ in range(rng.randint(500, 3000))]
        for _ in range(rng.randint(2, 5))
    ]
    total = [aggregate.create() for aggregate in spec.aggregates]
    for part in parts:
        total = merge(spec, total, stored(spec, states_of(spec, part)))
    points = [point for part in parts for point in part]
    figures = spec.result(total)
    for name, q in ranks.items():
        check(name, figures[name], quantile(points, price, q))


def test_a_quantile_is_between_zero_and_one() -> None:
    for q in (-0.1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            Quantile("price", q)


# --------------------------------------------------------------------------------------------
# Shared states


def test_plan_shares_one_state_among_the_figures_of_one_field() -> None:
    measures = {
        "sum": Sum("price"),
        "mean": Mean("price"),
        "sd": StdDev("price"),
        "low": Min("price"),
        "high": Max("price"),
        "n": stats("price")["count"],
    }
    aggregates, outputs = plan(measures)
    assert len(aggregates) == 1 and isinstance(aggregates[0], Stats)
    assert [(out.name, out.index) for out in outputs] == [(name, 0) for name in measures]
    assert [out.kind for out in outputs] == ["sum", "mean", "stddev", "min", "max", "count"]


def test_plan_shares_states_only_for_the_same_field_and_where() -> None:
    def is_sell(fill: Fill) -> bool:
        return fill.side == "sell"

    measures = {
        "price": Sum("price"),
        "price_mean": Mean("price"),
        "qty": Sum("qty"),
        "buy_price": Sum("price", where=is_buy),
        "buy_price_sd": StdDev("price", where=is_buy),
        "sell_price": Sum("price", where=is_sell),
        "notional": Sum(notional),
        "notional_mean": Mean(notional),
        "lambda_notional": Sum(lambda f: f.price * f.qty),
    }
    aggregates, outputs = plan(measures)
    index = {out.name: out.index for out in outputs}
    assert len(aggregates) == 6
    assert index["price"] == index["price_mean"]
    assert index["buy_price"] == index["buy_price_sd"]
    assert index["notional"] == index["notional_mean"]
    groups = ["price", "qty", "buy_price", "sell_price", "notional", "lambda_notional"]
    assert sorted(index[name] for name in groups) == list(range(6))


def test_plan_shares_counts_first_last_and_sketches_of_the_same_parameters() -> None:
    measures = {
        "a": Count(),
        "b": Count(),
        "buys": Count(where=is_buy),
        "fees": Count("fee"),
        "open": First("price"),
        "close": Last("price"),
        "first_fee": First("fee"),
        "p50": Quantile("price", 0.5),
        "p99": Quantile("price", 0.99),
        "coarse": Quantile("price", 0.5, k=50),
        "top3": TopK("venue", 3),
        "top3_again": TopK("venue", 3, label="market"),
        "top5": TopK("venue", 5),
        "distinct": DistinctCount("venue"),
        "distinct_again": DistinctCount("venue"),
        "distinct_small": DistinctCount("venue", lg_k=6),
    }
    aggregates, outputs = plan(measures)
    index = {out.name: out.index for out in outputs}
    shared = [
        ("a", "b"),
        ("open", "close"),
        ("p50", "p99"),
        ("top3", "top3_again"),
        ("distinct", "distinct_again"),
    ]
    for one, other in shared:
        assert index[one] == index[other], (one, other)
    separate = ["a", "buys", "fees", "open", "first_fee", "p50", "coarse", "top3", "top5"]
    separate += ["distinct", "distinct_small"]
    assert len({index[name] for name in separate}) == len(separate)
    assert len(aggregates) == len(separate)
    assert isinstance(aggregates[index["a"]], Counter)
    assert isinstance(aggregates[index["open"]], FirstLast)
    assert isinstance(aggregates[index["p50"]], Quantiles)
    fill = Fill(3.0, 1.0, "buy", venue="IEX")
    spec = spec_of(measures)
    figures = spec.result(states_of(spec, [(0, 0, fill), (1, 1, fill)]))
    assert figures["top3"] == [{"venue": "IEX", "count": 2}]
    assert figures["top3_again"] == [{"market": "IEX", "count": 2}]
    assert figures["p50"] == figures["p99"] == figures["coarse"] == 3.0


def test_plan_refuses_what_is_not_a_measure() -> None:
    with pytest.raises(TypeError, match="'volume'"):
        plan({"volume": Stats("qty")})  # type: ignore[dict-item]


# --------------------------------------------------------------------------------------------
# End to end through the window engine


@st.composite
def arrivals(draw: st.DrawFn, max_events: int = 40) -> list[Arrival]:
    """Events of a few keys in offset order, their times wandering back and forth."""
    count = draw(st.integers(0, max_events))
    ts = draw(st.integers(0, 60))
    offset = draw(st.integers(0, 5))
    out = []
    for _ in range(count):
        move = draw(st.sampled_from(["same", "forward", "forward", "back", "jump"]))
        if move == "forward":
            ts += draw(st.integers(1, 10))
        elif move == "back":
            ts = max(ts - draw(st.integers(1, 20)), 0)
        elif move == "jump":
            ts += draw(st.integers(20, 100))
        out.append((draw(st.sampled_from(KEYS)), ts, offset, draw(fills)))
        offset += draw(st.integers(1, 3))
    return out


@st.composite
def calls_for(draw: st.DrawFn, count: int) -> list[tuple[str, int]]:
    """Batches, idle clock moves and restarts between them, then a move past every window."""
    ends = draw(st.lists(st.integers(0, count), max_size=5))
    calls: list[tuple[str, int]] = []
    for call in calls_from_batches(count, ends):
        calls.append(call)
        extra = draw(st.sampled_from(["none", "none", "restore", "advance"]))
        if extra == "restore":
            calls.append(("restore", 0))
        elif extra == "advance":
            calls.append(("advance", draw(st.integers(0, 300))))
    calls.append(("advance", 10**9))
    return calls


def drive(
    spec: WindowSpec, events: Sequence[Event], calls: Sequence[tuple[str, int]]
) -> list[tuple[list[Any], list[Event]]]:
    """Run the engine through ``calls`` with its table in a dict; per call, what it emitted and
    the events it found late."""
    table: dict[bytes, bytes] = {}
    part = PartitionWindows(spec)
    position = 0
    out = []
    for kind, argument in calls:
        if kind == "process":
            outcome = part.process(events[position:argument])
            position = argument
        elif kind == "advance":
            outcome = part.close_due(stream_time=argument)
        else:
            part = PartitionWindows.restore(spec, sorted(table.items()))
            outcome = part.close_due()
        out.append((persist(table, outcome, MARK_KEY), [late.event for late in outcome.late]))
    assert not part.open, "every window is final after the last clock move"
    return out


@PROPERTY
@given(arrivals(), st.data())
def test_time_windows_compute_every_measure_end_to_end(
    raw: list[Arrival], data: st.DataObject
) -> None:
    size = data.draw(st.integers(1, 30), label="size")
    step = size if data.draw(st.booleans(), label="tumbling") else data.draw(st.integers(1, size))
    grace = data.draw(st.integers(0, 30), label="grace")
    where = data.draw(st.sampled_from([None, off_iex]), label="where")
    calls = data.draw(calls_for(len(raw)), label="calls")
    windows = tumbling(size) if step == size else hopping(size, step)
    spec = WindowSpec.of(windows, grace, MEASURES, where=where)
    events = [Event(key, ts, record, offset) for key, ts, offset, record in raw]
    run = time_windows_run(raw, size, step, grace, calls, where)
    got = drive(spec, events, calls)
    event(f"windows: {min(sum(map(len, run.emitted)), 10)}+")
    event(f"late: {min(sum(map(len, run.late)), 3)}+")
    for call, (results, late), want, want_late in zip(
        calls, got, run.emitted, run.late, strict=True
    ):
        assert late == [events[i] for i in want_late], call
        slots = [(r.key, r.window.start, r.window.end) for r in results]
        assert slots == [(w.key, w.start, w.end) for w in want], call
        for result, held in zip(results, want, strict=True):
            shape = result.as_dict("symbol")
            assert shape["symbol"] == held.key
            assert (shape["window_start"], shape["window_end"]) == (held.start, held.end)
            assert_figures(result.figures, points_of(raw, held.members), str(slots))


@settings(PROPERTY, max_examples=80)
@given(arrivals(max_events=30), st.data())
def test_sessions_merge_every_measure_end_to_end(raw: list[Arrival], data: st.DataObject) -> None:
    """Sessions merge their states when an event bridges them: every figure survives merges."""
    gap = data.draw(st.integers(1, 25), label="gap")
    grace = data.draw(st.integers(0, 20), label="grace")
    ends = data.draw(st.lists(st.integers(0, len(raw)), max_size=5), label="ends")
    calls = [*calls_from_batches(len(raw), ends), ("advance", 10**9)]
    spec = WindowSpec.of(session(gap), grace, MEASURES)
    events = [Event(key, ts, record, offset) for key, ts, offset, record in raw]
    run = run_session_oracle([(key, ts, 0.0) for key, ts, _, _ in raw], gap, grace, calls)
    got = drive(spec, events, calls)
    event(f"sessions of 3+ events: {min(sum(len(s.indices) > 2 for s in run.results.values()), 3)}")
    for call, (results, _), want in zip(calls, got, run.emissions, strict=True):
        by_slot = {(r.key, r.window.start, r.window.end): r for r in results}
        assert set(by_slot) == {w.slot for w in want}, call
        for held in want:
            assert_figures(by_slot[held.slot].figures, points_of(raw, held.indices), str(held))
    late_offsets = [event.offset for _, late in got for event in late]
    assert late_offsets == [raw[i][2] for i in run.late_indices]


def test_a_final_session_is_emitted_when_a_new_session_starts_at_the_same_time() -> None:
    """Gap 11, grace 0, one batch: the session [1, 1] is final once stream time reaches 12 (at
    the event at 34); the last event, at 1 again, joins the live session [10, 34] (10 - 11 < 1),
    which then starts at 1 too. Both sessions must come out."""
    spec = WindowSpec.of(session(11), 0, {"n": Count(), "open": First("price")})
    times = [1, 34, 25, 15, 10, 1]
    part = PartitionWindows(spec)
    batch = part.process([Event("k", t, Fill(float(i), 1.0), i) for i, t in enumerate(times)])
    rest = part.close_due(stream_time=10**9)
    emitted = [(r.window.start, r.window.end, r.figures) for r in batch.results + rest.results]
    assert emitted == [(1, 1, {"n": 1, "open": 0.0}), (1, 34, {"n": 5, "open": 5.0})]
