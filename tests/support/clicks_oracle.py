"""What faustapp's click pipelines must produce, computed independently of faustapp's engine.

Given the records of the ``clicks`` topic as they sit in the log (key, value, partition, offset),
this module decides by brute force which records are rejected, replays every partition in offset
order to know its stream time before each event (see :mod:`support.trades_oracle`, which holds the
shared pieces), decides which events are late for which pipeline, and computes from plain lists
the final ``user-sessions``, ``page-stats-1m``, ``item-activity-5m`` rows, ``trending-items``,
``category-sales-1m`` (given the category each purchase must count under) and the answers of the
co-view views. Nothing is imported from ``faustapp``.

Contract modelled (all of it from the written contract, none from the implementation):

* stream time of an input partition = largest event time of the valid events it has processed
  (-1 before the first);
* ``user-sessions`` (keyed by user, so per input partition): a user's events closer than 30 min
  form one session; a session is final once stream time >= its last event + gap + grace, and a
  final session is never revised. An event joins (and bridges) the sessions of its user that are
  not final under the stream time before it; it is late when the session it would fall into is
  final, which for an event touching no open session is the event alone (ts + gap + grace). Late
  records name that session's bounds (for the event alone: [ts, ts]);
* regrouped pipelines (``page-stats-1m`` by page, ``item-activity-5m`` by item, and
  ``category-sales-1m`` by category): an event is late when it is late on its own input partition
  (that partition's stream time before it >= window end + grace; for the hopping windows of
  ``item-activity-5m``, every window holding it), and a window is final once the minimum of the
  stream times of every input partition >= its end + grace. A hopping event with some but not
  all of its windows final on its partition may or may not count in those (it depends on how far
  the other partitions are), so it is listed in :attr:`ClicksExpected.partially_late` and a test
  must avoid it;
* a pipeline's ``where`` (``item-activity-5m``: events with an item; ``category-sales-1m``:
  purchases) drops events before windowing: they are neither counted nor late;
* ``trending-items``: per ``item-activity-5m`` window, the rows with a positive score, score
  descending then item id ascending, the first 10; one record per window with at least one;
  its late events are recorded once, under ``item-activity-5m``;
* co-views: every final session adds 1 to co[a][b] for each ordered pair of different items of
  its ``items_viewed``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from support.trades_oracle import (
    MINUTE,
    Late,
    Produced,
    Reject,
    Rejected,
    Replay,
    Seen,
    close,
    event_time,
    identifier,
    load_object,
    ms_to_iso,
    number,
    replay,
    tumbling_start,
)

CLICKS_GROUP = "clicks"
CLICKS_TOPIC = "clicks"
PRODUCTS_TOPIC = "products"
SESSIONS = "user-sessions"
PAGE_STATS = "page-stats-1m"
ITEM_ACTIVITY = "item-activity-5m"
TRENDING = "trending-items"
CATEGORY_SALES = "category-sales-1m"
CO_VIEWS = "co-views"
TRENDING_KEY = "trending"
UNKNOWN_CATEGORY = "unknown"

EVENTS = ("view", "click", "add_to_cart", "purchase")
MAX_PAGE_CHARS = 2_048
SESSION_GAP_MS = 30 * MINUTE
MAX_ITEMS_VIEWED = 50
ACTIVITY_SIZE_MS = 5 * MINUTE
ACTIVITY_STEP_MS = MINUTE
TRENDING_TOP = 10
DISTINCT_REL_ERROR = 0.03  # HyperLogLog counts: within 3 % or 1
DEFAULT_N = 5
MAX_N = 100

SESSION_FIELDS = frozenset(
    {
        "user_id",
        "window_start",
        "window_end",
        "duration_ms",
        "events",
        "views",
        "add_to_carts",
        "purchases",
        "revenue",
        "entry_page",
        "exit_page",
        "items_viewed",
    }
)
PAGE_STATS_FIELDS = frozenset(
    {"page", "window_start", "window_end", "events", "views", "unique_users"}
)
TRENDING_FIELDS = frozenset({"window_start", "window_end", "items"})
TRENDING_ITEM_FIELDS = frozenset({"item_id", "score", "views", "add_to_carts", "purchases"})
CATEGORY_SALES_FIELDS = frozenset(
    {"category", "window_start", "window_end", "purchases", "revenue", "items"}
)


# --------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class Click:
    """One valid ``clicks`` value (optional fields None when absent)."""

    user_id: str
    ts: int
    event: str
    page: str
    item_id: str | None = None
    amount: float | None = None

    def encode(self, *, iso_ts: bool = False, nulls: bool = False, **extra: Any) -> bytes:
        """The JSON value; ``ts`` as ISO-8601 and absent optional fields as null when asked,
        plus any ``extra`` fields (which the contract ignores)."""
        value: dict[str, Any] = {
            "user_id": self.user_id,
            "ts": ms_to_iso(self.ts) if iso_ts else self.ts,
            "event": self.event,
            "page": self.page,
        }
        for name in ("item_id", "amount"):
            item = getattr(self, name)
            if item is not None or nulls:
                value[name] = item
        value.update(extra)
        return orjson.dumps(value)


def decode_click(raw: bytes | None) -> Click:
    """A ``clicks`` value by the contract, or :class:`Reject` naming the field."""
    data = load_object(raw)
    user_id = identifier(data, "user_id")
    ts = event_time(data)
    event = data.get("event")
    if event is None:
        raise Reject("event", "missing field 'event'")
    if not isinstance(event, str) or event not in EVENTS:
        raise Reject("event", f"field 'event' must be one of {', '.join(EVENTS)}")
    page = data.get("page")
    if page is None:
        raise Reject("page", "missing field 'page'")
    if not isinstance(page, str) or not 1 <= len(page) <= MAX_PAGE_CHARS:
        raise Reject("page", f"field 'page' must be a string of 1 to {MAX_PAGE_CHARS} characters")
    item_id = identifier(data, "item_id", required=False)
    amount = number(data, "amount", required=False, minimum=0.0)
    if event == "purchase" and amount is None:
        raise Reject("amount", "field 'amount' is required for a purchase")
    return Click(user_id, ts, event, page, item_id, amount)  # type: ignore[arg-type]


def hopping_starts(
    ts: int, size: int = ACTIVITY_SIZE_MS, step: int = ACTIVITY_STEP_MS
) -> list[int]:
    """Starts of every window of ``size`` starting at a multiple of ``step`` that holds ``ts``,
    oldest first."""
    lowest = ts - size + 1
    return list(range(lowest + (-lowest) % step, ts - ts % step + 1, step))


def distinct_ok(got: Any, want: int) -> bool:
    """A HyperLogLog distinct count: within 3 % or 1 of the exact one."""
    if isinstance(got, bool) or not isinstance(got, (int, float)):  # noqa: UP038
        return False
    return abs(got - want) <= max(1.0, DISTINCT_REL_ERROR * want)


# --------------------------------------------------------------------------------------------
# Sessions


@dataclass(frozen=True)
class Point:
    """An accepted event of a session: its time, its place in its partition's log, itself."""

    ts: int
    offset: int
    click: Click

    @property
    def order(self) -> tuple[int, int]:
        return (self.ts, self.offset)


def session_groups(points: Iterable[Point], gap: int = SESSION_GAP_MS) -> list[list[Point]]:
    """Split a user's events into sessions: sorted by (ts, log order), cut where neighbours are
    ``gap`` or more apart (events less than the gap apart share a session)."""
    groups: list[list[Point]] = []
    for point in sorted(points, key=lambda p: p.order):
        if groups and point.ts - groups[-1][-1].ts < gap:
            groups[-1].append(point)
        else:
            groups.append([point])
    return groups


def session_record(user_id: str, points: list[Point]) -> dict:
    """The ``user-sessions`` record of one session's events."""
    ordered = sorted(points, key=lambda p: p.order)
    clicks = [p.click for p in ordered]
    viewed: list[str] = []
    for click in clicks:
        if click.event == "view" and click.item_id is not None and click.item_id not in viewed:
            viewed.append(click.item_id)
    start, end = ordered[0].ts, ordered[-1].ts
    return {
        "user_id": user_id,
        "window_start": start,
        "window_end": end,
        "duration_ms": end - start,
        "events": len(clicks),
        "views": sum(1 for c in clicks if c.event == "view"),
        "add_to_carts": sum(1 for c in clicks if c.event == "add_to_cart"),
        "purchases": sum(1 for c in clicks if c.event == "purchase"),
        "revenue": math.fsum(c.amount for c in clicks if c.event == "purchase"),  # type: ignore[misc]
        "entry_page": clicks[0].page,
        "exit_page": clicks[-1].page,
        "items_viewed": viewed[:MAX_ITEMS_VIEWED],
    }


def session_slot(record: dict) -> tuple[str, int, int]:
    return (record["user_id"], record["window_start"], record["window_end"])


# --------------------------------------------------------------------------------------------
# Everything expected of one set of logged records


@dataclass
class ClicksExpected:
    """Everything the click pipelines must write for one set of logged records."""

    replay: Replay
    sessions: dict[tuple[str, int, int], dict] = field(default_factory=dict)
    open_sessions: dict[tuple[str, int, int], int] = field(default_factory=dict)
    page_stats: dict[tuple[str, int], dict] = field(default_factory=dict)
    item_activity: dict[tuple[str, int], dict] = field(default_factory=dict)
    trending: dict[int, dict] = field(default_factory=dict)
    category_sales: dict[tuple[str, int], dict] = field(default_factory=dict)
    late: list[Late] = field(default_factory=list)
    partially_late: list[Seen] = field(default_factory=list)
    near_final: list[Seen] = field(default_factory=list)
    """Accepted events within the gap of a final session of their user (which stays as it was:
    the event joins or forms an open session beside it)."""
    min_stream: int = -1

    @property
    def rejected(self) -> list[Rejected]:
        return self.replay.rejected

    @property
    def dlq_count(self) -> int:
        return len(self.replay.rejected)

    def late_for(self, pipeline: str) -> list[Late]:
        return [late for late in self.late if late.pipeline == pipeline]

    def sessions_of(self, user_id: str) -> list[dict]:
        """The user's final sessions, oldest first."""
        mine = [s for s in self.sessions.values() if s["user_id"] == user_id]
        return sorted(mine, key=lambda s: (s["window_end"], s["window_start"]))


def _late(pipeline: str, seen: Seen, start: int, end: int) -> Late:
    record = seen.record
    return Late(
        pipeline, seen.key, seen.ts, record.partition, record.offset, seen.stream_before, start, end
    )


def expected_clicks(
    records: Iterable[Produced],
    grace_ms: int,
    partitions: int,
    category_of: Callable[[Seen], str] | None = None,
) -> ClicksExpected:
    """Sessions, page statistics, item activity, trending items, late records and dead letters
    of ``clicks`` records as logged on an input topic of ``partitions`` partitions; with
    ``category_of`` (the category each accepted purchase must count under, as the test decided
    from what the catalogue held when it was processed), category sales too."""
    run = replay(records, decode_click, lambda c: c.user_id)
    out = ClicksExpected(run)
    out.min_stream = min(run.final_stream(p) for p in range(partitions))
    live: dict[str, list[Point]] = defaultdict(list)
    final: dict[str, list[list[Point]]] = defaultdict(list)
    home: dict[str, int] = {}
    pages: dict[tuple[str, int], list[Click]] = defaultdict(list)
    activity: dict[tuple[str, int], list[Click]] = defaultdict(list)
    sales: dict[tuple[str, int], list[Click]] = defaultdict(list)
    gap = SESSION_GAP_MS

    def freeze(user: str, stream: int) -> None:
        keep: list[Point] = []
        for group in session_groups(live[user]):
            if group[-1].ts + gap + grace_ms <= stream:
                final[user].append(group)
            else:
                keep.extend(group)
        live[user] = keep

    for seen in run.seen:
        click: Click = seen.event
        user, ts, stream = click.user_id, click.ts, seen.stream_before
        home[user] = seen.record.partition

        # user-sessions: per input partition
        freeze(user, stream)
        point = Point(ts, seen.record.offset, click)
        candidate = [*live[user], point]
        (group,) = [g for g in session_groups(candidate) if point in g]
        if group[-1].ts + gap + grace_ms <= stream:
            out.late.append(_late(SESSIONS, seen, group[0].ts, group[-1].ts))
        else:
            live[user] = candidate
            if any(g[0].ts - gap < ts < g[-1].ts + gap for g in final[user]):
                out.near_final.append(seen)

        # page-stats-1m: regrouped by page, lateness by the input partition's clock
        start = tumbling_start(ts)
        if stream >= start + MINUTE + grace_ms:
            out.late.append(_late(PAGE_STATS, seen, start, start + MINUTE))
        else:
            pages[(click.page, start)].append(click)

        # item-activity-5m (and trending-items): regrouped by item, events with an item only
        if click.item_id is not None:
            starts = hopping_starts(ts)
            closed = [s for s in starts if stream >= s + ACTIVITY_SIZE_MS + grace_ms]
            if len(closed) == len(starts):
                out.late.append(_late(ITEM_ACTIVITY, seen, starts[0], starts[0] + ACTIVITY_SIZE_MS))
            else:
                if closed:
                    out.partially_late.append(seen)
                for s in starts:
                    if s not in closed:
                        activity[(click.item_id, s)].append(click)

        # category-sales-1m: purchases regrouped by category
        if category_of is not None and click.event == "purchase":
            if stream >= start + MINUTE + grace_ms:
                out.late.append(_late(CATEGORY_SALES, seen, start, start + MINUTE))
            else:
                sales[(category_of(seen), start)].append(click)

    for user in list(live):
        freeze(user, run.final_stream(home[user]))
        for group in session_groups(live[user]):
            out.open_sessions[(user, group[0].ts, group[-1].ts)] = len(group)
    for user, groups in final.items():
        for group in groups:
            record = session_record(user, group)
            out.sessions[session_slot(record)] = record

    for (page, start), clicks in pages.items():
        if out.min_stream >= start + MINUTE + grace_ms:
            out.page_stats[(page, start)] = page_stats_record(page, start, clicks)

    by_window: dict[int, list[dict]] = defaultdict(list)
    for (item, start), clicks in activity.items():
        if out.min_stream >= start + ACTIVITY_SIZE_MS + grace_ms:
            row = activity_row(item, start, clicks)
            out.item_activity[(item, start)] = row
            by_window[start].append(row)
    for start, rows in by_window.items():
        ranked = rank_items(rows)
        if ranked:
            out.trending[start] = {
                "window_start": start,
                "window_end": start + ACTIVITY_SIZE_MS,
                "items": ranked,
            }

    for (category, start), clicks in sales.items():
        if out.min_stream >= start + MINUTE + grace_ms:
            out.category_sales[(category, start)] = category_sales_record(category, start, clicks)
    return out


def page_stats_record(page: str, start: int, clicks: list[Click]) -> dict:
    """The ``page-stats-1m`` record of one window, with the users under ``_users``."""
    users = {c.user_id for c in clicks}
    return {
        "page": page,
        "window_start": start,
        "window_end": start + MINUTE,
        "events": len(clicks),
        "views": sum(1 for c in clicks if c.event == "view"),
        "unique_users": len(users),
        "_users": users,
    }


def activity_row(item: str, start: int, clicks: list[Click]) -> dict:
    """An item's ``item-activity-5m`` row of one window, with its trend score."""
    views = sum(1 for c in clicks if c.event == "view")
    carts = sum(1 for c in clicks if c.event == "add_to_cart")
    purchases = sum(1 for c in clicks if c.event == "purchase")
    return {
        "item_id": item,
        "window_start": start,
        "window_end": start + ACTIVITY_SIZE_MS,
        "views": views,
        "add_to_carts": carts,
        "purchases": purchases,
        "score": views + 3 * carts + 5 * purchases,
    }


def rank_items(rows: Iterable[dict], top: int = TRENDING_TOP) -> list[dict]:
    """The ``items`` of a ``trending-items`` record: positive scores only, score descending then
    item id ascending, the first ``top``."""
    positive = [row for row in rows if row["score"] > 0]
    positive.sort(key=lambda row: (-row["score"], row["item_id"]))
    return [{name: row[name] for name in TRENDING_ITEM_FIELDS} for row in positive[:top]]


def category_sales_record(category: str, start: int, clicks: list[Click]) -> dict:
    """The ``category-sales-1m`` record of one window, with the item ids under ``_items``."""
    items = {c.item_id for c in clicks if c.item_id is not None}
    return {
        "category": category,
        "window_start": start,
        "window_end": start + MINUTE,
        "purchases": len(clicks),
        "revenue": math.fsum(c.amount for c in clicks),  # type: ignore[misc]
        "items": len(items),
        "_items": items,
    }


# --------------------------------------------------------------------------------------------
# Co-views and the two views


CoViews = dict[str, Counter]


def co_view_matrix(sessions: Iterable[dict]) -> CoViews:
    """co[a][b]: how many final sessions viewed both a and b (a != b), from their
    ``items_viewed``."""
    co: CoViews = defaultdict(Counter)
    for session in sessions:
        items = session["items_viewed"]
        for a in items:
            for b in items:
                if a != b:
                    co[a][b] += 1
    return dict(co)


def parse_n(n: str | int | None) -> int | None:
    """``n`` of a query (absent: 5), or None when it is not a whole number from 1 to 100."""
    if n is None:
        return DEFAULT_N
    if isinstance(n, bool):
        return None
    if isinstance(n, str):
        if not (n.isascii() and n.isdigit()):
            return None
        n = int(n)
    return n if 1 <= n <= MAX_N else None


def _top(scores: Mapping[str, int], n: int) -> list[tuple[str, int]]:
    ranked = sorted(((item, s) for item, s in scores.items() if s > 0), key=lambda r: (-r[1], r[0]))
    return ranked[:n]


def also_viewed(co: CoViews, item_id: str, n: str | int | None = None) -> tuple[int, dict | None]:
    """Status and body of ``GET /api/items/{item_id}/also-viewed?n=``: 400 for a bad ``n``,
    404 for an item never co-viewed (the body of an error is not modelled: None)."""
    count = parse_n(n)
    if count is None:
        return 400, None
    row = co.get(item_id, Counter())
    if not any(v > 0 for v in row.values()):
        return 404, None
    items = [{"item_id": b, "sessions": s} for b, s in _top(row, count)]
    return 200, {"item_id": item_id, "items": items}


def latest_session(sessions: Iterable[dict], user_id: str) -> dict | None:
    """The user's most recent final session (the one that ended last), or None."""
    mine = [s for s in sessions if s["user_id"] == user_id]
    return max(mine, key=lambda s: (s["window_end"], s["window_start"]), default=None)


def recommendations(
    sessions: Iterable[dict], co: CoViews, user_id: str, n: str | int | None = None
) -> tuple[int, dict | None]:
    """Status and body of ``GET /api/users/{user_id}/recommendations?n=``: items scored by the
    co-views of the items of the user's most recent final session; 400 for a bad ``n``, 404 for a
    user without a final session."""
    count = parse_n(n)
    if count is None:
        return 400, None
    latest = latest_session(sessions, user_id)
    if latest is None:
        return 404, None
    based_on = list(latest["items_viewed"])
    scores: Counter[str] = Counter()
    for a in based_on:
        for x, together in co.get(a, Counter()).items():
            if x not in based_on:
                scores[x] += together
    items = [{"item_id": x, "score": s} for x, s in _top(scores, count)]
    return 200, {"user_id": user_id, "based_on": based_on, "items": items}


# --------------------------------------------------------------------------------------------
# Comparisons


def _public(record: dict) -> dict:
    return {k: v for k, v in record.items() if not k.startswith("_")}


def assert_same_session(got: dict, want: dict) -> None:
    """Exact but for the revenue (a sum: rounding tolerance)."""
    got = _public(got)
    assert set(got) == SESSION_FIELDS, (sorted(set(got) ^ SESSION_FIELDS), got)
    for name in sorted(SESSION_FIELDS - {"revenue"}):
        assert got[name] == want[name], (name, got, want)
    assert close(got["revenue"], want["revenue"]), (got, want)


def assert_same_page_stats(got: dict, want: dict) -> None:
    """Exact counts; ``unique_users`` within the HyperLogLog's error."""
    got = _public(got)
    assert set(got) == PAGE_STATS_FIELDS, (sorted(set(got) ^ PAGE_STATS_FIELDS), got)
    for name in ("page", "window_start", "window_end", "events", "views"):
        assert got[name] == want[name], (name, got, want)
    assert distinct_ok(got["unique_users"], want["unique_users"]), (got, want["unique_users"])


def assert_same_trending(got: dict, want: dict) -> None:
    """Exact: the same items in the same order with the same figures."""
    got = _public(got)
    assert set(got) == TRENDING_FIELDS, (sorted(set(got) ^ TRENDING_FIELDS), got)
    assert (got["window_start"], got["window_end"]) == (want["window_start"], want["window_end"])
    for item in got["items"]:
        assert set(item) == TRENDING_ITEM_FIELDS, item
    assert got["items"] == want["items"], (got["window_start"], got["items"], want["items"])


def assert_same_category_sales(got: dict, want: dict) -> None:
    """Exact purchases, rounded revenue, ``items`` within the HyperLogLog's error."""
    got = _public(got)
    assert set(got) == CATEGORY_SALES_FIELDS, (sorted(set(got) ^ CATEGORY_SALES_FIELDS), got)
    for name in ("category", "window_start", "window_end", "purchases"):
        assert got[name] == want[name], (name, got, want)
    assert close(got["revenue"], want["revenue"]), (got, want)
    assert distinct_ok(got["items"], want["items"]), (got, want["items"])
