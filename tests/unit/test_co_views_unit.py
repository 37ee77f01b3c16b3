"""Co-views and the session items they are built from, against brute force: the pairs of a
session, the co-occurrence matrix (alone and regrouped end to end, with replays), the dedup of
exploded forwards, and ``items_viewed`` (the first 50 distinct views by time, then log order)."""

from __future__ import annotations

import random
from collections import Counter
from operator import attrgetter
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_regroup import Schedule, home_of, run_regrouped

from faustapp.agents.clicks import (
    MAX_ITEMS_VIEWED,
    SESSION_GAP_MS,
    Click,
    CoView,
    Session,
    co_view_pairs,
    co_views,
    sessions,
    user_sessions,
)
from faustapp.tables.clock import PartitionClock
from faustapp.tables.collect import CountBy, FirstSeen
from faustapp.tables.engine import Event, PartitionWindows, WindowSpec
from faustapp.tables.regroup import RegroupSpec

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MINUTE = 60_000

items_st = st.lists(
    st.sampled_from(["sku-1", "sku-2", "sku-3", "sku-10", "книга", "a", "b", "c"]), max_size=9
)


@st.composite
def session_st(draw: st.DrawFn, user: str = "u") -> Session:
    start = draw(st.integers(0, 10**6))
    end = start + draw(st.integers(0, 10**5))
    return Session(user, start, end, items_viewed=draw(items_st))


def brute_force_matrix(all_items: list[list[str]]) -> dict[str, dict[str, int]]:
    """co[a][b]: sessions whose items include both a and b (a != b)."""
    co: dict[str, dict[str, int]] = {}
    for items in all_items:
        distinct = set(items)
        for a in distinct:
            for b in distinct:
                if a != b:
                    row = co.setdefault(a, {})
                    row[b] = row.get(b, 0) + 1
    return co


# --------------------------------------------------------------------------------------------
# Pairs and the matrix


@PROPERTY
@given(session_st())
def test_pairs_are_the_ordered_pairs_of_different_items_once_each(session: Session) -> None:
    pairs = co_view_pairs(session)
    distinct = set(session.items_viewed)
    want = Counter((a, b) for a in distinct for b in distinct if a != b)
    assert Counter((pair.item_a, pair.item_b) for pair in pairs) == want
    assert all(isinstance(pair, CoView) and pair.ts == session.window_end for pair in pairs)


def test_a_session_decoded_from_its_topic_takes_its_end_as_time() -> None:
    raw = orjson.dumps({"user_id": "u-1", "window_start": 5, "window_end": 90, "items_viewed": []})
    session = sessions.schema.decode(raw)
    assert session.ts == 90
    assert co_view_pairs(session) == []


@PROPERTY
@given(st.lists(items_st, max_size=12), st.data())
def test_count_by_rows_over_sessions_equal_the_brute_force_matrix(
    all_items: list[list[str]], data: st.DataObject
) -> None:
    """Each session's pairs folded into per-item CountBy rows, spread over partial states merged
    in any order through the stored form, give co[a][b] exactly."""
    agg = CountBy("item_b")
    parts = data.draw(st.integers(1, 3))
    partial: list[dict[str, Any]] = [{} for _ in range(parts)]
    for offset, items in enumerate(all_items):
        session = Session("u", offset, offset + 1, items_viewed=items)
        home = partial[data.draw(st.integers(0, parts - 1))]
        for pair in co_view_pairs(session):
            state = home.setdefault(pair.item_a, agg.create())
            agg.add(state, Event(pair.item_a, pair.ts, pair, offset))
    rows: dict[str, dict[str, int]] = {}
    for states in data.draw(st.permutations(partial)):
        for item, state in states.items():
            stored = agg.load(orjson.loads(orjson.dumps(agg.dump(state))))
            rows[item] = agg.merge(rows.get(item, agg.create()), stored)
    assert {a: agg.result(row)["counts"] for a, row in rows.items()} == brute_force_matrix(
        all_items
    )


def session_partition(number: int, items: list[list[str]], starts: list[int]) -> list[Event]:
    """Final sessions as a partition of the sessions topic holds them, read as the source reads
    them."""
    events = []
    for offset, (viewed, start) in enumerate(zip(items, starts, strict=True)):
        raw = orjson.dumps(
            {
                "user_id": f"u{number}-{offset % 3}",
                "window_start": start,
                "window_end": start + 1000,
                "items_viewed": viewed,
            }
        )
        record = sessions.schema.decode(raw)
        events.append(Event(record.user_id, record.ts, record, 2 * offset))
    return events


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.lists(items_st, max_size=10), min_size=1, max_size=3),
    st.integers(1, 3),
    st.randoms(use_true_random=False),
    st.data(),
)
def test_co_views_regrouped_by_item_equal_the_matrix_with_replays_and_restores(
    per_partition: list[list[list[str]]],
    partitions: int,
    rng: random.Random,
    data: st.DataObject,
) -> None:
    """The declared co-views pipeline end to end: sessions exploded into pairs upstream,
    forwarded by item with their indexes, replayed batches and restored stages skipped by source
    position; each item's running row equals the brute-force matrix's row."""
    inputs = [
        session_partition(
            n,
            items,
            data.draw(st.lists(st.integers(0, 10**7), min_size=len(items), max_size=len(items))),
        )
        for n, items in enumerate(per_partition)
    ]
    grace = 60_000
    regroup = RegroupSpec(
        co_views.windows,
        grace,
        attrgetter(co_views.by),
        where=co_views.where,
        explode=co_views.explode.records,
    )
    window_spec = WindowSpec.of(co_views.windows, grace, co_views.measures, watermarked=True)
    schema = co_views.schema.regrouped(co_views.by)
    ups, downs = run_regrouped(
        regroup,
        window_spec,
        inputs,
        partitions,
        Schedule(rng, replay_chance=0.4, restore_chance=0.15),
        schema.key_of,
        schema.ts_of,
        decode=lambda record: schema.decode(msgspec.json.encode(record)),
    )
    rows: dict[str, dict[str, int]] = {}
    for number, down in enumerate(downs):
        assert down.emitted == [] and down.late == []  # a running table never closes
        for state in down.part.open.values():
            assert home_of(state.key, partitions) == number
            assert state.key not in rows
            rows[state.key] = state.figures(window_spec)["co"]
    assert all(up.late == [] for up in ups)
    assert rows == brute_force_matrix([items for each in per_partition for items in each])
    event(f"replays: {min(sum(up.replays for up in ups), 2)}+")
    event(f"restores: {min(sum(down.restores for down in downs), 2)}+")


# --------------------------------------------------------------------------------------------
# Dedup of exploded forwards


@st.composite
def forwarded_positions(draw: st.DrawFn) -> dict[int, list[tuple[int, int]]]:
    """Per feeding partition, the (offset, index) of each record one downstream partition gets
    from it, in the order it was produced (an event's records that went elsewhere are missing)."""
    positions: dict[int, list[tuple[int, int]]] = {}
    for source in range(draw(st.integers(1, 3))):
        mine = []
        offset = draw(st.integers(0, 3))
        for _ in range(draw(st.integers(0, 8))):
            indexes = draw(st.sets(st.integers(0, 5), max_size=4))
            mine += [(offset, index) for index in sorted(indexes)]
            offset += draw(st.integers(1, 3))
        positions[source] = mine
    return positions


@PROPERTY
@given(forwarded_positions(), st.data())
def test_forwarded_before_skips_exactly_the_records_applied_already(
    positions: dict[int, list[tuple[int, int]]], data: st.DataObject
) -> None:
    """Each feeding partition sends its records in order and, after a crash, sends again from
    any earlier point; interleaved with the others. A record is skipped iff it was applied, also
    across a restore from the mark."""
    clock = PartitionClock()
    sent = {source: 0 for source in positions}  # how far each source has produced
    applied: set[tuple[int, int, int]] = set()
    restored = False
    while waiting := [s for s, mine in positions.items() if sent[s] < len(mine)]:
        source = data.draw(st.sampled_from(waiting), label="source")
        mine = positions[source]
        if sent[source] and data.draw(st.booleans(), label="replay"):
            begin = data.draw(st.integers(0, sent[source] - 1), label="replay from")
        else:
            begin = sent[source]
        end = data.draw(st.integers(begin + 1, len(mine)), label="through")
        for offset, index in mine[begin:end]:
            again = (source, offset, index) in applied
            assert clock.forwarded_before(source, offset, index) is again
            applied.add((source, offset, index))
        sent[source] = max(sent[source], end)
        if data.draw(st.booleans(), label="restore"):
            copy = PartitionClock()
            copy.load_mark(clock.mark())
            assert copy.sources == clock.sources
            clock, restored = copy, True
    assert len(applied) == sum(map(len, positions.values()))
    event(f"restored: {restored}")


def test_an_exploded_replay_is_skipped_pair_by_pair() -> None:
    clock = PartitionClock()
    assert [clock.forwarded_before(0, 7, i) for i in (0, 2, 5)] == [False, False, False]
    assert [clock.forwarded_before(0, 7, i) for i in (0, 2, 5)] == [True, True, True]
    assert clock.forwarded_before(0, 9, 0) is False  # the next event's first pair
    assert clock.forwarded_before(1, 7, 0) is False  # another feeding partition: its own place


# --------------------------------------------------------------------------------------------
# items_viewed: the first distinct values by time, then log order


def first_distinct(sightings: list[tuple[Any, int, int]], limit: int) -> list[Any]:
    """Values by their earliest (ts, offset), the first ``limit``."""
    first: dict[Any, tuple[int, int]] = {}
    for value, ts, offset in sightings:
        if value is not None and (value not in first or (ts, offset) < first[value]):
            first[value] = (ts, offset)
    return sorted(first, key=first.__getitem__)[:limit]


class Item(msgspec.Struct):
    item: str | None


@st.composite
def sightings_st(draw: st.DrawFn) -> list[tuple[Any, int, int]]:
    pool = draw(st.integers(1, 150))
    count = draw(st.integers(0, 260))
    values = st.one_of(st.integers(0, pool - 1).map(lambda i: f"sku-{i}"), st.none())
    offsets = draw(st.permutations(range(count)))  # any arrival order, any event times
    return [(draw(values), draw(st.integers(0, 40)), offset) for offset in offsets]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sightings_st(), st.sampled_from([1, 3, MAX_ITEMS_VIEWED]), st.data())
def test_first_seen_equals_the_brute_force_order_across_merges(
    sightings: list[tuple[Any, int, int]], limit: int, data: st.DataObject
) -> None:
    agg = FirstSeen(limit, "item")
    parts = data.draw(st.integers(1, 4), label="parts")
    states = [agg.create() for _ in range(parts)]
    for value, ts, offset in sightings:
        state = states[data.draw(st.integers(0, parts - 1), label="part")]
        agg.add(state, Event("u", ts, Item(value), offset))
    merged = agg.create()
    for state in data.draw(st.permutations(states), label="merge order"):
        stored = agg.load(orjson.loads(orjson.dumps(agg.dump(state))))
        merged = agg.merge(merged, stored)
    want = first_distinct(sightings, limit)
    assert agg.ordered(merged) == want
    assert agg.result(merged) == {"first_seen": want}
    assert len(merged) <= 2 * limit
    event(f"more distinct than the limit: {len({v for v, _, _ in sightings} - {None}) > limit}")


def test_first_seen_keeps_at_least_one_value() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        FirstSeen(0, "item")


@st.composite
def one_users_clicks(draw: st.DrawFn) -> list[Click]:
    """Clicks of one visit (consecutive times closer than the session gap), in the order they
    were produced: out of time order, so the engine sees several sessions and merges them."""
    count = draw(st.integers(1, 200))
    pool = draw(st.integers(1, 150))
    ts = draw(st.integers(0, 10)) * MINUTE
    times = []
    for _ in range(count):
        times.append(ts)
        ts += draw(st.sampled_from([0, 1, 1000, MINUTE, 20 * MINUTE, SESSION_GAP_MS - 1]))
    order = draw(st.permutations(times))
    clicks = []
    for at in order:
        kind = draw(st.sampled_from(["view", "view", "view", "click", "add_to_cart"]))
        pick = draw(st.integers(0, pool + pool // 8))
        item = f"sku-{pick}" if pick < pool else None
        clicks.append(Click("u-1", at, kind, f"/p/{item}", item))
    return clicks


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(one_users_clicks(), st.data())
def test_items_viewed_of_a_merged_session_equal_the_brute_force_order(
    clicks: list[Click], data: st.DataObject
) -> None:
    """The declared user-sessions measures: a visit whose clicks arrive out of order is built
    from sessions merged when a click bridges them; its items_viewed is still the first 50
    distinct viewed items by time, then log order."""
    times = [click.ts for click in clicks]
    grace = max(times) - min(times) + 1  # nothing late: only the merges are under test
    spec = WindowSpec.of(user_sessions.windows, grace, user_sessions.measures)
    closer = max(times) + SESSION_GAP_MS + grace
    events = [Event(c.user_id, c.ts, c, offset) for offset, c in enumerate(clicks)]
    events.append(Event("u-2", closer, Click("u-2", closer, "view", "/"), len(events)))
    part = PartitionWindows(spec)
    ends = sorted(data.draw(st.lists(st.integers(0, len(events)), max_size=6), label="ends"))
    results, most_open, begin = [], 0, 0
    for end in [*ends, len(events)]:
        outcome = part.process(events[begin:end])
        assert outcome.late == []
        results += outcome.results
        begin = max(begin, end)
        most_open = max(most_open, len(part.windows_of("u-1")))
    (result,) = results
    figures = result.figures
    views = [(c.item_id, c.ts, offset) for offset, c in enumerate(clicks) if c.event == "view"]
    assert figures["items_viewed"] == first_distinct(views, MAX_ITEMS_VIEWED)
    assert figures["events"] == len(clicks)
    assert figures["views"] == len(views)
    by_time = sorted(range(len(clicks)), key=lambda i: (clicks[i].ts, i))
    assert figures["entry_page"] == clicks[by_time[0]].page
    assert figures["exit_page"] == clicks[by_time[-1]].page
    assert (result.window.start, result.window.end) == (min(times), max(times))
    event(f"more than 50 distinct views: {len({v for v, _, _ in views} - {None}) > 50}")
    event(f"sessions merged: {most_open > 1}")
