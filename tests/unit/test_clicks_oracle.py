"""The click oracles against hand-computed cases, one contract rule at a time."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from support.clicks_oracle import (
    CATEGORY_SALES,
    ITEM_ACTIVITY,
    PAGE_STATS,
    SESSION_GAP_MS,
    SESSIONS,
    UNKNOWN_CATEGORY,
    Click,
    also_viewed,
    assert_same_category_sales,
    assert_same_page_stats,
    assert_same_session,
    assert_same_trending,
    co_view_matrix,
    decode_click,
    distinct_ok,
    expected_clicks,
    hopping_starts,
    parse_n,
    rank_items,
    recommendations,
)
from support.trades_oracle import MINUTE, Late, Produced, Reject, ms_to_iso

GRACE = 5_000
GAP = SESSION_GAP_MS
W = 1_732_435_200_000  # a minute boundary (2024-11-24T08:00:00Z)
FAR = W + 300 * MINUTE


def logged(*items: Click | tuple[bytes | None, bytes], partition: int = 0) -> list[Produced]:
    """Records at consecutive offsets of one partition, valid ones keyed by their own user."""
    out = []
    for offset, item in enumerate(items):
        if isinstance(item, Click):
            key, value = item.user_id.encode(), item.encode()
        else:
            key, value = item
        out.append(Produced(key, value, partition, offset))
    return out


def view(ts: int, item: str | None = None, user: str = "u", page: str | None = None) -> Click:
    return Click(user, ts, "view", page or (f"/p/{item}" if item else "/"), item)


def ev(kind: str, ts: int, item: str | None = None, amount: float | None = None, user="u"):
    return Click(user, ts, kind, f"/p/{item}" if item else "/", item, amount)


def closer(ts: int = FAR, user: str = "z") -> Click:
    return Click(user, ts, "view", "/closer")


def on_all(partitions: int, ts: int = FAR) -> list[Produced]:
    """A closer on each of ``partitions`` partitions (appended after a partition's own records
    by :func:`run`)."""
    return [
        Produced(b"z%d" % p, closer(ts, f"z{p}").encode(), p, 10_000) for p in range(partitions)
    ]


def run(*items: Click, partitions: int = 1, close_at: int | None = FAR, **kwargs):
    """Items on partition 0 in this order, then a closer on every partition."""
    records = logged(*items)
    if close_at is not None:
        records += on_all(partitions, close_at)
    return expected_clicks(records, GRACE, partitions, **kwargs)


def raw(**fields: object) -> tuple[bytes, bytes]:
    return (b"u", orjson.dumps(fields))


# --------------------------------------------------------------------------------------------
# Validation


def test_the_contract_example_and_optional_fields_sent_as_null() -> None:
    example = {
        "user_id": "u-42",
        "ts": 1732435200123,
        "event": "view",
        "page": "/product/sku-17",
        "item_id": "sku-17",
        "amount": None,
    }
    assert decode_click(orjson.dumps(example)) == Click(
        "u-42", 1732435200123, "view", "/product/sku-17", "sku-17", None
    )
    nulls = dict(example, item_id=None, extra="ignored")
    assert decode_click(orjson.dumps(nulls)).item_id is None
    iso = dict(example, ts=ms_to_iso(W + 123))
    assert decode_click(orjson.dumps(iso)).ts == W + 123
    assert decode_click(orjson.dumps(dict(example, ts=float(W)))).ts == W
    # Anything but a purchase may carry an amount; a purchase of 0 is fine.
    assert decode_click(orjson.dumps(dict(example, amount=2.5))).amount == 2.5
    assert decode_click(orjson.dumps(dict(example, event="purchase", amount=0))).amount == 0.0
    # page: any text of 1 to 2048 characters, control characters and '/' included.
    for page in ("x", "/" * 2_048, "/tab\there", "/\u00e9t\u00e9"):
        assert decode_click(orjson.dumps(dict(example, page=page))).page == page
    assert decode_click(orjson.dumps(dict(example, item_id="i" * 256))).item_id == "i" * 256
    for kind in ("view", "click", "add_to_cart"):
        assert decode_click(orjson.dumps(dict(example, event=kind))).event == kind


OK = {"user_id": "u", "ts": W, "event": "view", "page": "/"}


def bad(**changes: object) -> bytes:
    """The valid value ``OK`` with ``changes`` (``...`` removes a field)."""
    return orjson.dumps({k: v for k, v in dict(OK, **changes).items() if v is not ...})


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (b"", None),
        (b"not json{", None),
        (b"[1, 2]", None),
        (b'{"user_id": "u", "ts": 1, "event": "view", "page": "/", "amount": NaN}', None),
        (b'{"user_id": "\xff", "ts": 1, "event": "view", "page": "/"}', None),
        (bad(user_id=...), "user_id"),
        (bad(user_id=""), "user_id"),
        (bad(user_id="a/b"), "user_id"),
        (bad(user_id="a\nb"), "user_id"),
        (bad(user_id="u" * 257), "user_id"),
        (bad(user_id=42), "user_id"),
        (bad(ts=...), "ts"),
        (bad(ts="soon"), "ts"),
        (bad(ts=W + 0.5), "ts"),
        (bad(ts=-1), "ts"),
        (bad(ts=True), "ts"),
        (bad(event=...), "event"),
        (bad(event=None), "event"),
        (bad(event="hover"), "event"),
        (bad(event="VIEW"), "event"),
        (bad(page=...), "page"),
        (bad(page=None), "page"),
        (bad(page=""), "page"),
        (bad(page="/" * 2_049), "page"),
        (bad(page=7), "page"),
        (bad(item_id=""), "item_id"),
        (bad(item_id="a/b"), "item_id"),
        (bad(item_id=17), "item_id"),
        (bad(amount=-0.01), "amount"),
        (bad(amount="1"), "amount"),
        (bad(amount=1e16), "amount"),
        (bad(amount=True), "amount"),
        (bad(event="purchase"), "amount"),
        (bad(event="purchase", amount=None), "amount"),
    ],
)
def test_every_rejection_rule(value: bytes, field: str | None) -> None:
    with pytest.raises(Reject) as caught:
        decode_click(value)
    assert caught.value.field == field
    want = expected_clicks([Produced(b"u", value, 0, 0)], GRACE, 1)
    assert [r.field for r in want.rejected] == [field]
    assert want.sessions == {} and want.late == []


def test_hopping_starts_are_the_five_windows_holding_an_event() -> None:
    assert hopping_starts(W) == [W - 4 * MINUTE + i * MINUTE for i in range(5)]
    assert hopping_starts(W - 1) == [W - 5 * MINUTE + i * MINUTE for i in range(5)]
    assert hopping_starts(W + MINUTE - 1) == hopping_starts(W)


def test_distinct_counts_within_three_percent_or_one() -> None:
    assert distinct_ok(1, 1) and distinct_ok(2, 1) and distinct_ok(0, 1)
    assert not distinct_ok(3, 1)
    assert distinct_ok(103, 100) and distinct_ok(97, 100) and not distinct_ok(104, 100)
    assert distinct_ok(150.0, 150) and not distinct_ok(True, 1) and not distinct_ok(None, 1)


# --------------------------------------------------------------------------------------------
# user-sessions


def test_session_figures_entry_exit_revenue_and_items_viewed() -> None:
    items = [
        view(W + 10_000, "b"),  # logged first, but "a" at an earlier ts is viewed first
        view(W + 5_000, "a", page="/entry"),
        ev("click", W + 6_000, "z"),  # not a view: not in items_viewed
        view(W + 7_000, None, page="/home"),  # a view without an item
        ev("add_to_cart", W + 8_000, "b", amount=99.0),  # an amount off a purchase: no revenue
        view(W + 9_000, "c"),
        view(W + 11_000, "a"),  # viewed again: keeps its first place
        ev("purchase", W + 12_000, "b", amount=10.25),
        ev("purchase", W + 13_000, "c", amount=0.0),
        view(W + 14_000, "d", page="/exit"),
    ]
    want = run(*items)
    assert list(want.sessions) == [("u", W + 5_000, W + 14_000)]
    assert want.sessions[("u", W + 5_000, W + 14_000)] == {
        "user_id": "u",
        "window_start": W + 5_000,
        "window_end": W + 14_000,
        "duration_ms": 9_000,
        "events": 10,
        "views": 6,
        "add_to_carts": 1,
        "purchases": 2,
        "revenue": 10.25,
        "entry_page": "/entry",
        "exit_page": "/exit",
        "items_viewed": ["a", "c", "b", "d"],
    }
    assert want.late == [] and want.open_sessions == {("z0", FAR, FAR): 1}


def test_session_without_purchases_has_zero_revenue() -> None:
    (session,) = run(view(W, "a")).sessions.values()
    assert session["revenue"] == 0 and session["purchases"] == 0
    assert session["duration_ms"] == 0 and session["items_viewed"] == ["a"]


def test_equal_timestamps_go_by_log_order() -> None:
    items = [
        view(W, "x", page="/first"),
        view(W, "y", page="/second"),
        view(W + 1_000, "y", page="/third"),
        view(W + 1_000, "z", page="/last"),
    ]
    (session,) = run(*items).sessions.values()
    assert (session["entry_page"], session["exit_page"]) == ("/first", "/last")
    assert session["items_viewed"] == ["x", "y", "z"]
    swapped = [items[1], items[0], items[3], items[2]]
    (session,) = run(*swapped).sessions.values()
    assert (session["entry_page"], session["exit_page"]) == ("/second", "/third")
    assert session["items_viewed"] == ["y", "x", "z"]


def test_items_viewed_keeps_the_first_fifty_by_time() -> None:
    # 60 distinct items logged newest first: the 50 with the smallest ts are kept, oldest first.
    items = [view(W + 1_000 * (60 - i), f"i{60 - i:02d}") for i in range(60)]
    (session,) = run(*items).sessions.values()
    assert session["items_viewed"] == [f"i{n:02d}" for n in range(1, 51)]
    assert session["views"] == 60
    # A view of i55 earlier than all the others brings it in first and pushes i50 out.
    (session,) = run(*items, view(W, "i55")).sessions.values()
    assert session["items_viewed"] == ["i55", *(f"i{n:02d}" for n in range(1, 50))]


def test_session_gap_boundary() -> None:
    apart = run(view(W, "a"), view(W + GAP, "b"))
    assert sorted(apart.sessions) == [("u", W, W), ("u", W + GAP, W + GAP)]
    within = run(view(W, "a"), view(W + GAP - 1, "b"))
    assert list(within.sessions) == [("u", W, W + GAP - 1)]
    assert within.sessions[("u", W, W + GAP - 1)]["items_viewed"] == ["a", "b"]
    # A chain of events each less than the gap apart is one session, however long.
    chain = run(*(view(W + i * (GAP - 1), f"i{i}") for i in range(4)))
    assert list(chain.sessions) == [("u", W, W + 3 * (GAP - 1))]


def test_session_is_final_at_last_event_plus_gap_plus_grace_on_its_partition() -> None:
    last = W + 1_000
    assert run(view(W), view(last), close_at=last + GAP + GRACE - 1).sessions == {}
    done = run(view(W), view(last), close_at=last + GAP + GRACE)
    assert list(done.sessions) == [("u", W, last)]
    # Another partition's stream time closes nothing here.
    other = logged(closer(FAR), partition=1)
    assert expected_clicks(logged(view(W)) + other, GRACE, 2).sessions == {}
    assert expected_clicks(logged(view(W)) + other, GRACE, 2).open_sessions == {
        ("u", W, W): 1,
        ("z", FAR, FAR): 1,
    }


def test_late_for_a_session_is_the_event_alone_at_ts_plus_gap_plus_grace() -> None:
    stream = W + GAP + GRACE
    items = [closer(stream, user="v"), view(W, "a", page="/late"), view(W + 1, "b")]
    want = run(*items)
    # At the boundary: late for the session (the event alone, [ts, ts]) and for its minute.
    assert want.late_for(SESSIONS) == [Late(SESSIONS, "u", W, 0, 1, stream, W, W)]
    assert [(x.offset, x.window_start) for x in want.late_for(PAGE_STATS)] == [(1, W), (2, W)]
    # One millisecond later the event opens a session of its own.
    assert [(s["window_start"], s["items_viewed"]) for s in want.sessions_of("u")] == [
        (W + 1, ["b"])
    ]
    # Late events are late for item activity too (every window of theirs is final).
    assert [x.offset for x in want.late_for(ITEM_ACTIVITY)] == [1, 2]


def test_an_event_touching_an_open_session_joins_it_however_old() -> None:
    # The user's session [W + 20 min, W + 40 min] is open at stream time W + 40 min + disorder.
    # An event at W + 1 min is later than the grace for its minute, but lies within the gap of
    # the open session: it joins it (new start and entry page) and is late for page stats only.
    items = [
        view(W + 20 * MINUTE, "b", page="/b"),
        view(W + 40 * MINUTE, "c", page="/c"),
        view(W + MINUTE, "a", page="/a"),
    ]
    want = run(*items)
    assert list(want.sessions) == [("u", W + MINUTE, W + 40 * MINUTE)]
    session = want.sessions[("u", W + MINUTE, W + 40 * MINUTE)]
    assert session["entry_page"] == "/a" and session["items_viewed"] == ["a", "b", "c"]
    assert want.late_for(SESSIONS) == []
    assert [x.offset for x in want.late_for(PAGE_STATS)] == [2]
    assert [x.offset for x in want.late_for(ITEM_ACTIVITY)] == [2]


def test_an_event_within_the_grace_bridges_two_sessions() -> None:
    # Sessions [W] and [W + gap + 100] are both open at stream time W + gap + 100 (the first is
    # final only at W + gap + grace): an event between them merges them into one.
    items = [view(W, "a"), view(W + GAP + 100, "c"), view(W + GAP // 2, "b")]
    want = run(*items)
    assert list(want.sessions) == [("u", W, W + GAP + 100)]
    assert want.sessions[("u", W, W + GAP + 100)]["items_viewed"] == ["a", "b", "c"]
    # Without the bridge they stay two sessions.
    assert len(run(*items[:2]).sessions) == 2


def test_a_final_session_is_never_revised() -> None:
    # [W] is final at W + gap + grace; an event at W + 10 min arriving then is not late on its
    # own (final at W + 10 min + gap + grace) but cannot join the final session: a new one.
    stream = W + GAP + GRACE
    items = [view(W, "a"), closer(stream, user="v"), view(W + 10 * MINUTE, "b")]
    want = run(*items)
    assert [s["window_start"] for s in want.sessions_of("u")] == [W, W + 10 * MINUTE]
    assert want.late_for(SESSIONS) == []
    assert [seen.record.offset for seen in want.near_final] == [2]


# --------------------------------------------------------------------------------------------
# page-stats-1m


def test_page_stats_count_events_views_and_users_per_page_and_minute() -> None:
    items = [
        view(W + 1, "a", page="/home"),
        ev("click", W + 2, user="w"),
        view(W + 3, page="/home", user="w"),
        ev("purchase", W + 59_999, "a", amount=1.0),
        view(W + MINUTE, page="/home"),
    ]
    items[1] = Click("w", W + 2, "click", "/home")
    items[3] = Click("u", W + 59_999, "purchase", "/home", "a", 1.0)
    want = run(*items)
    assert want.page_stats[("/home", W)] == {
        "page": "/home",
        "window_start": W,
        "window_end": W + MINUTE,
        "events": 4,
        "views": 2,
        "unique_users": 2,
        "_users": {"u", "w"},
    }
    assert want.page_stats[("/home", W + MINUTE)]["events"] == 1
    assert_same_page_stats(
        {**want.page_stats[("/home", W)], "unique_users": 3}, want.page_stats[("/home", W)]
    )
    with pytest.raises(AssertionError):
        assert_same_page_stats(
            {**want.page_stats[("/home", W)], "unique_users": 4}, want.page_stats[("/home", W)]
        )


def test_page_window_is_final_once_every_partition_passed_its_end_plus_grace() -> None:
    end = W + MINUTE
    fast = logged(view(W + 1, page="/p"), closer(FAR))
    slow = logged(closer(end + GRACE - 1, user="s"), partition=1)
    assert expected_clicks(fast + slow, GRACE, 2).page_stats == {}
    slow = logged(closer(end + GRACE, user="s"), partition=1)
    assert list(expected_clicks(fast + slow, GRACE, 2).page_stats) == [("/p", W)]
    # A partition without any valid event holds every window open.
    assert expected_clicks(fast, GRACE, 2).page_stats == {}
    assert expected_clicks(fast, GRACE, 2).min_stream == -1


def test_page_event_is_late_by_its_own_partition_only() -> None:
    # Partition 0 is ten minutes ahead; partition 1 still counts in minute 0.
    ahead = logged(view(W + 1_000, page="/home", user="a"), view(W + 10 * MINUTE, user="a"))
    ahead.append(Produced(b"a", view(W + 5_000, page="/home", user="a").encode(), 0, 2))
    slow = logged(*(Click("b", W + 30_000, "click", "/home") for _ in range(3)), partition=1)
    records = ahead + slow + on_all(2)
    want = expected_clicks(records, GRACE, 2)
    stats = want.page_stats[("/home", W)]
    assert (stats["events"], stats["views"], stats["unique_users"]) == (4, 1, 2)
    assert want.late_for(PAGE_STATS) == [
        Late(PAGE_STATS, "a", W + 5_000, 0, 2, W + 10 * MINUTE, W, W + MINUTE)
    ]


def test_page_late_boundary_is_window_end_plus_grace() -> None:
    stream = W + GRACE  # exactly the end of [W - 1 min, W) plus the grace
    items = [closer(stream, user="v"), view(W - 1, page="/x"), view(W, page="/x")]
    want = run(*items)
    assert want.late_for(PAGE_STATS) == [Late(PAGE_STATS, "u", W - 1, 0, 1, stream, W - MINUTE, W)]
    assert ("/x", W) in want.page_stats and ("/x", W - MINUTE) not in want.page_stats


# --------------------------------------------------------------------------------------------
# item-activity-5m and trending-items


def test_item_rows_in_every_hopping_window_and_trending_order() -> None:
    t = W + 30_000
    items = [
        view(t, "b"),
        view(t, "b"),
        ev("add_to_cart", t, "a"),  # 3
        view(t, "c"),
        view(t, "c"),
        view(t, "c"),  # 3: a tie with "a", broken by item id
        ev("purchase", t, "d", 4.0),  # 5
        ev("click", t, "e"),  # score 0: left out
        view(t),  # no item: neither counted nor late
    ]
    want = run(*items)
    assert sorted(want.trending) == hopping_starts(t)
    for start in hopping_starts(t):
        record = want.trending[start]
        assert record["window_end"] == start + 5 * MINUTE
        assert record["items"] == [
            {"item_id": "d", "score": 5, "views": 0, "add_to_carts": 0, "purchases": 1},
            {"item_id": "a", "score": 3, "views": 0, "add_to_carts": 1, "purchases": 0},
            {"item_id": "c", "score": 3, "views": 3, "add_to_carts": 0, "purchases": 0},
            {"item_id": "b", "score": 2, "views": 2, "add_to_carts": 0, "purchases": 0},
        ]
        assert want.item_activity[("e", start)]["score"] == 0
        assert_same_trending({**record, "_key": b"trending"}, record)
    assert want.late == [] and want.partially_late == []


def test_trending_keeps_the_top_ten_with_ties_by_item_id() -> None:
    rows = [
        {"item_id": f"i{n:02d}", "views": 1, "add_to_carts": 0, "purchases": 0, "score": 1}
        for n in range(12)
    ]
    rows.append({"item_id": "z", "views": 0, "add_to_carts": 1, "purchases": 0, "score": 3})
    ranked = rank_items(rows)
    assert [r["item_id"] for r in ranked] == ["z", *(f"i{n:02d}" for n in range(9))]
    # The same through the windows.
    t = W + 10_000
    items = [view(t, f"i{n:02d}") for n in reversed(range(12))] + [ev("add_to_cart", t, "z")]
    want = run(*items)
    assert [r["item_id"] for r in want.trending[hopping_starts(t)[0]]["items"]] == [
        r["item_id"] for r in ranked
    ]


def test_a_window_with_no_positive_score_has_no_trending_record() -> None:
    t = W + 10_000
    want = run(ev("click", t, "a"), ev("click", t + 1, "b"))
    assert want.trending == {}
    assert len(want.item_activity) == 10  # two items, five windows each, all scored 0
    # Windows that share a positive item elsewhere in them do get one.
    later = run(ev("click", t, "a"), view(t + 2 * MINUTE, "b"))
    assert sorted(later.trending) == hopping_starts(t + 2 * MINUTE)


def test_item_late_only_when_every_window_is_final_on_its_partition() -> None:
    last_start = W - MINUTE  # the last window holding W - 1 is [W - 1 min, W + 4 min)
    stream = last_start + 5 * MINUTE + GRACE
    items = [closer(stream, user="v"), view(W - 1, "a"), view(W - 1), view(W + MINUTE - 1, "b")]
    want = run(*items)
    assert want.late_for(ITEM_ACTIVITY) == [
        Late(ITEM_ACTIVITY, "u", W - 1, 0, 1, stream, W - 5 * MINUTE, W)
    ]
    # The item "b" is not late (its last window still open) but its first four are final on
    # its partition: whether it counts there depends on the other partitions.
    assert [seen.record.offset for seen in want.partially_late] == [3]
    assert ("b", W) in want.item_activity and ("b", W - MINUTE) not in want.item_activity
    assert ("a", last_start) not in want.item_activity


def test_trending_windows_close_by_the_slowest_partition() -> None:
    t = W + 10_000
    end = hopping_starts(t)[0] + 5 * MINUTE  # the first window's end
    fast = logged(view(t, "a"), closer(FAR))
    slow = logged(closer(end + GRACE - 1, user="s"), partition=1)
    assert expected_clicks(fast + slow, GRACE, 2).trending == {}
    slow = logged(closer(end + GRACE, user="s"), partition=1)
    assert list(expected_clicks(fast + slow, GRACE, 2).trending) == [hopping_starts(t)[0]]


# --------------------------------------------------------------------------------------------
# category-sales-1m


def test_category_sales_by_the_category_decided_for_each_purchase() -> None:
    t = W + 1_000
    items = [
        ev("purchase", t, "a", 10.0),
        ev("purchase", t + 1, "a", 2.5),
        ev("purchase", t + 2, "b", 1.25),
        ev("purchase", t + 3, "c", 4.0),  # counts as unknown
        ev("purchase", t + 4, None, 3.0),  # no item: unknown, no item to count
        ev("add_to_cart", t + 5, "a", 99.0),  # not a purchase: not counted
    ]
    categories = {0: "books", 1: "books", 2: "books", 3: UNKNOWN_CATEGORY, 4: UNKNOWN_CATEGORY}
    want = run(*items, category_of=lambda seen: categories[seen.record.offset])
    assert want.category_sales == {
        ("books", W): {
            "category": "books",
            "window_start": W,
            "window_end": W + MINUTE,
            "purchases": 3,
            "revenue": 13.75,
            "items": 2,
            "_items": {"a", "b"},
        },
        (UNKNOWN_CATEGORY, W): {
            "category": UNKNOWN_CATEGORY,
            "window_start": W,
            "window_end": W + MINUTE,
            "purchases": 2,
            "revenue": 7.0,
            "items": 1,
            "_items": {"c"},
        },
    }
    assert_same_category_sales(
        {**want.category_sales[("books", W)], "items": 3}, want.category_sales[("books", W)]
    )
    # Without categories, nothing is computed for it.
    assert run(*items).category_sales == {}


def test_category_sales_late_purchases_only() -> None:
    stream = W + MINUTE + GRACE
    items = [closer(stream, user="v"), ev("purchase", W + 1, "a", 1.0), view(W + 2, "a")]
    want = run(*items, category_of=lambda seen: "books")
    assert want.late_for(CATEGORY_SALES) == [
        Late(CATEGORY_SALES, "u", W + 1, 0, 1, stream, W, W + MINUTE)
    ]
    assert want.category_sales == {}


# --------------------------------------------------------------------------------------------
# co-views and the two views


def session(user: str, end: int, items: list[str]) -> dict:
    return {"user_id": user, "window_start": end - 10, "window_end": end, "items_viewed": items}


def test_co_views_count_ordered_pairs_of_a_sessions_items() -> None:
    co = co_view_matrix([session("u", 1, ["a", "b", "c"]), session("v", 1, ["b", "a"])])
    assert co == {
        "a": Counter({"b": 2, "c": 1}),
        "b": Counter({"a": 2, "c": 1}),
        "c": Counter({"a": 1, "b": 1}),
    }
    assert co_view_matrix([session("u", 1, ["a"]), session("u", 2, [])]) == {}


def test_also_viewed_order_n_and_errors() -> None:
    sessions = [
        session("u1", 1, ["a", "b", "c"]),
        session("u2", 1, ["a", "c", "d"]),
        session("u3", 1, ["a", "e"]),
        session("u4", 1, ["a", "d"]),
        session("u5", 1, ["solo"]),
    ]
    co = co_view_matrix(sessions)
    status, body = also_viewed(co, "a")
    assert status == 200
    assert body == {
        "item_id": "a",
        "items": [
            {"item_id": "c", "sessions": 2},
            {"item_id": "d", "sessions": 2},
            {"item_id": "b", "sessions": 1},
            {"item_id": "e", "sessions": 1},
        ],
    }
    assert also_viewed(co, "a", "2")[1]["items"] == body["items"][:2]
    assert also_viewed(co, "a", 1)[1]["items"] == [{"item_id": "c", "sessions": 2}]
    assert also_viewed(co, "a", "100")[0] == 200
    for bad in ("0", "101", "-1", "x", "", "2.5"):
        assert also_viewed(co, "a", bad) == (400, None), bad
    assert also_viewed(co, "solo") == (404, None)  # viewed, never with another item
    assert also_viewed(co, "nothing") == (404, None)
    assert also_viewed(co, "nothing", "0") == (400, None)
    assert parse_n(None) == 5 and parse_n("7") == 7 and parse_n(True) is None


def test_recommendations_score_the_latest_sessions_items() -> None:
    sessions = [
        session("u", 100, ["old"]),  # an older session of u: not the basis
        session("u", 200, ["a", "b"]),
        session("v", 50, ["a", "x", "y"]),
        session("w", 60, ["b", "x"]),
        session("o", 70, ["a", "b", "z"]),
        session("p", 80, ["old", "q"]),
        session("e", 90, []),
    ]
    co = co_view_matrix(sessions)
    status, body = recommendations(sessions, co, "u")
    assert status == 200
    # x: co[a][x] + co[b][x] = 1 + 1; y: 1; z: 1 + 1; a and b themselves are left out.
    assert body == {
        "user_id": "u",
        "based_on": ["a", "b"],
        "items": [
            {"item_id": "x", "score": 2},
            {"item_id": "z", "score": 2},
            {"item_id": "y", "score": 1},
        ],
    }
    assert recommendations(sessions, co, "u", "1")[1]["items"] == [{"item_id": "x", "score": 2}]
    assert recommendations(sessions, co, "u", "101") == (400, None)
    assert recommendations(sessions, co, "nobody") == (404, None)
    # A latest session whose items were never viewed with others: no recommendation.
    assert recommendations(sessions, co, "e") == (
        200,
        {"user_id": "e", "based_on": [], "items": []},
    )
    lone = [*sessions, session("l", 10, ["lonely"])]
    assert recommendations(lone, co_view_matrix(lone), "l")[1]["items"] == []


def test_sessions_feed_the_co_views_end_to_end() -> None:
    t = W + 1_000
    items = [
        view(t, "a", user="u1"),
        view(t + 1, "b", user="u1"),
        view(t + 2, "a", user="u2"),
        view(t + 3, "c", user="u2"),
        view(t + GAP + 1, "a", user="u1"),  # u1's next session: only "a"
    ]
    want = run(*items)
    co = co_view_matrix(want.sessions.values())
    assert co == {
        "a": Counter({"b": 1, "c": 1}),
        "b": Counter({"a": 1}),
        "c": Counter({"a": 1}),
    }
    assert [s["items_viewed"] for s in want.sessions_of("u1")] == [["a", "b"], ["a"]]
    status, body = recommendations(want.sessions.values(), co, "u1")
    assert (status, body["based_on"], body["items"]) == (
        200,
        ["a"],
        [{"item_id": "b", "score": 1}, {"item_id": "c", "score": 1}],
    )


# --------------------------------------------------------------------------------------------
# Comparisons


def test_session_comparison_rounds_the_revenue_only() -> None:
    (want,) = run(ev("purchase", W, "a", 0.1), ev("purchase", W + 1, "a", 0.2)).sessions.values()
    assert_same_session({**want, "revenue": 0.1 + 0.2, "_key": b"u"}, want)
    with pytest.raises(AssertionError):
        assert_same_session({**want, "events": 3}, want)
    with pytest.raises(AssertionError):
        assert_same_session({**want, "extra": 1}, want)
    with pytest.raises(AssertionError):
        assert_same_session({**want, "items_viewed": ["a", "a"]}, want)
