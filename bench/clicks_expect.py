"""Expected user-sessions, page-stats-1m and trending-items results, computed from the clicks the
bench produced (independently of faustapp's engine), and the checks of a worker's output.

The contract (README, "User behaviour and recommendations"): a session is a user's events less
than 30 minutes apart, [first ts, last ts], its entry/exit page that of the first/last event by
(ts, log order) and ``items_viewed`` the distinct items of its views in order of first view, the
first 50; page statistics count every click per (page, minute), ``unique_users`` a HyperLogLog
estimate; trending items are, per 5-minute window starting every minute, the 10 items with the
highest views + 3 add-to-carts + 5 purchases (positive only), score descending then id ascending.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import orjson

from bench.clicks_data import SESSION_GAP_MS, ClicksDataset
from bench.data import MINUTE

SESSIONS = "user-sessions"
PAGE_STATS = "page-stats-1m"
TRENDING = "trending-items"
ITEM_ACTIVITY = "item-activity-5m"
MAX_ITEMS_VIEWED = 50
ACTIVITY_SIZE_MS = 5 * MINUTE
TOP = 10
DISTINCT_REL_ERROR = 0.03
REL_TOL = 1e-9
ABS_TOL = 1e-6


class Expected(dict):
    """Expected results by slot, with ``facts``: other figures the counters must show."""

    facts: dict[str, int]


@dataclass(frozen=True, slots=True)
class SessionFigures:
    end: int
    events: int
    views: int
    add_to_carts: int
    purchases: int
    revenue: float
    entry_page: str
    exit_page: str
    items_viewed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PageFigures:
    end: int
    events: int
    views: int
    unique_users: int


@dataclass(frozen=True, slots=True)
class Trending:
    end: int
    items: tuple[tuple[str, int, int, int, int], ...]  # (item_id, score, views, carts, purchases)


def expected_sessions(dataset: ClicksDataset) -> Expected:
    """Every (user, session start): the user's events sorted by (ts, log order), cut where two
    neighbours are 30 minutes or more apart."""
    out = Expected()
    for user, clicks in dataset.events_by_key.items():
        ordered = sorted(range(len(clicks)), key=lambda i: (clicks[i][0], i))
        session: list[tuple] = []
        for i in ordered:
            click = clicks[i]
            if session and click[0] - session[-1][0] >= SESSION_GAP_MS:
                out[(user, session[0][0])] = _session(session)
                session = []
            session.append(click)
        if session:
            out[(user, session[0][0])] = _session(session)
    out.facts = {"events": sum(len(c) for c in dataset.events_by_key.values())}
    return out


def _session(clicks: list[tuple]) -> SessionFigures:
    viewed: dict[str, None] = {}
    for _ts, event, _page, item, _amount in clicks:
        if event == "view" and item is not None:
            viewed.setdefault(item, None)
    return SessionFigures(
        end=clicks[-1][0],
        events=len(clicks),
        views=sum(1 for c in clicks if c[1] == "view"),
        add_to_carts=sum(1 for c in clicks if c[1] == "add_to_cart"),
        purchases=sum(1 for c in clicks if c[1] == "purchase"),
        revenue=math.fsum(c[4] for c in clicks if c[1] == "purchase"),
        entry_page=clicks[0][2],
        exit_page=clicks[-1][2],
        items_viewed=tuple(list(viewed)[:MAX_ITEMS_VIEWED]),
    )


def expected_page_stats(dataset: ClicksDataset) -> Expected:
    """Every (page, minute): events, views and the exact number of distinct users."""
    counts: dict[tuple[str, int], list] = {}
    for user, clicks in dataset.events_by_key.items():
        for ts, event, page, _item, _amount in clicks:
            slot = (page, ts - ts % MINUTE)
            entry = counts.get(slot)
            if entry is None:
                entry = counts[slot] = [0, 0, set()]
            entry[0] += 1
            entry[1] += event == "view"
            entry[2].add(user)
    out = Expected(
        {
            slot: PageFigures(slot[1] + MINUTE, events, views, len(users))
            for slot, (events, views, users) in counts.items()
        }
    )
    out.facts = {"events": sum(len(c) for c in dataset.events_by_key.values())}
    return out


def expected_trending(dataset: ClicksDataset) -> Expected:
    """Every 5-minute window (every minute) with an item of positive score: its top 10.

    Built from per-minute counts per item; ``facts`` holds the events with an item (what the
    first stage takes) and the (item, window) rows the first stage closes (every one is relayed
    to the ranking, positive or not)."""
    minutes: dict[int, dict[str, list[int]]] = defaultdict(dict)
    with_item = 0
    column = {"view": 0, "add_to_cart": 1, "purchase": 2}
    for clicks in dataset.events_by_key.values():
        for ts, event, _page, item, _amount in clicks:
            if item is None:
                continue
            with_item += 1
            row = minutes[ts - ts % MINUTE].setdefault(item, [0, 0, 0])
            if event in column:
                row[column[event]] += 1
    out = Expected()
    rows = 0
    starts = {m - k * MINUTE for m in minutes for k in range(ACTIVITY_SIZE_MS // MINUTE)}
    for start in sorted(starts):
        window: dict[str, list[int]] = {}
        for k in range(ACTIVITY_SIZE_MS // MINUTE):
            for item, (views, carts, purchases) in minutes.get(start + k * MINUTE, {}).items():
                total = window.setdefault(item, [0, 0, 0])
                total[0] += views
                total[1] += carts
                total[2] += purchases
        rows += len(window)
        scored = [(v + 3 * c + 5 * p, item, v, c, p) for item, (v, c, p) in window.items()]
        top = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))[:TOP]
        if top:
            items = tuple((item, score, v, c, p) for score, item, v, c, p in top)
            out[start] = Trending(start + ACTIVITY_SIZE_MS, items)
    out.facts = {"events_with_item": with_item, "item_windows": rows}
    return out


def expected_clicks(pipeline: str, dataset: ClicksDataset) -> Expected:
    """The expected results of ``pipeline`` on the clicks data set."""
    return {
        SESSIONS: expected_sessions,
        PAGE_STATS: expected_page_stats,
        TRENDING: expected_trending,
    }[pipeline](dataset)


# --- checks ----------------------------------------------------------------------------------


def _close(got: object, want: float) -> bool:
    return isinstance(got, int | float) and math.isclose(
        got, want, rel_tol=REL_TOL, abs_tol=ABS_TOL
    )


def session_problems(got: dict, want: SessionFigures) -> list[str]:
    """Fields of a user-sessions record that differ from the expected session."""
    exact = ("events", "views", "add_to_carts", "purchases", "entry_page", "exit_page")
    bad = [name for name in exact if got.get(name) != getattr(want, name)]
    if got.get("window_end") != want.end:
        bad.append("window_end")
    if got.get("duration_ms") != want.end - got.get("window_start", 0):
        bad.append("duration_ms")
    if not _close(got.get("revenue"), want.revenue):
        bad.append("revenue")
    if not isinstance(got.get("items_viewed"), list) or tuple(got["items_viewed"]) != (
        want.items_viewed
    ):
        bad.append("items_viewed")
    return bad


def distinct_ok(got: object, want: int) -> bool:
    """A HyperLogLog distinct count: within 3 % or 1 of the exact one."""
    if isinstance(got, bool) or not isinstance(got, int | float):
        return False
    return abs(got - want) <= max(1.0, DISTINCT_REL_ERROR * want)


def page_problems(got: dict, want: PageFigures) -> list[str]:
    """Fields of a page-stats-1m record that differ from the expected figures."""
    bad = [name for name in ("events", "views") if got.get(name) != getattr(want, name)]
    if got.get("window_end") != want.end:
        bad.append("window_end")
    if not distinct_ok(got.get("unique_users"), want.unique_users):
        bad.append("unique_users")
    return bad


def trending_problems(got: dict, want: Trending) -> list[str]:
    """Fields of a trending-items record that differ from the expected ranking."""
    bad = [] if got.get("window_end") == want.end else ["window_end"]
    items = got.get("items")
    names = ("item_id", "score", "views", "add_to_carts", "purchases")
    if not isinstance(items, list) or [
        tuple(item.get(name) for name in names) for item in items if isinstance(item, dict)
    ] != list(want.items):
        bad.append("items")
    return bad


SLOTS: dict[str, Callable[[dict], object]] = {
    SESSIONS: lambda r: (r["user_id"], r["window_start"]),
    PAGE_STATS: lambda r: (r["page"], r["window_start"]),
    TRENDING: lambda r: r["window_start"],
}
PROBLEMS: dict[str, Callable] = {
    SESSIONS: session_problems,
    PAGE_STATS: page_problems,
    TRENDING: trending_problems,
}
WHAT = {
    SESSIONS: "output holds exactly the expected sessions (gap 30 min, [first ts, last ts]) per "
    "user, each once: window_end, duration, events, views, add-to-carts, purchases, entry/exit "
    "page and items_viewed (order of first view) exact; revenue within 1e-9 relative",
    PAGE_STATS: "output holds exactly the expected (page, 1-minute window) results, each once: "
    f"events and views exact, unique_users within {DISTINCT_REL_ERROR:.0%} or 1 (HyperLogLog)",
    TRENDING: "output holds exactly one ranking per expected 5-minute window (every minute) "
    "with a positive score, each once: the top 10 (item, score, views, add-to-carts, "
    "purchases), score descending then item id ascending, exact",
}


def check_clicks(
    pipeline: str, records: Iterable[tuple[bytes | None, bytes | None]], expected: Expected
) -> dict[str, object]:
    """Exactly the expected results, each once, with the expected figures."""
    slot_of, problems = SLOTS[pipeline], PROBLEMS[pipeline]
    seen: Counter = Counter()
    wrong_fields: Counter[str] = Counter()
    mismatched = unparsable = 0
    examples: list[str] = []
    for _key, value in records:
        try:
            record = orjson.loads(value or b"null")
            slot = slot_of(record)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            unparsable += 1
            continue
        seen[slot] += 1
        want = expected.get(slot)
        bad = problems(record, want) if want is not None else []
        if bad:
            mismatched += 1
            wrong_fields.update(bad)
            if len(examples) < 5:
                examples.append(f"{slot}: {', '.join(bad)} differ: got {record}, want {want}")
    missing = [slot for slot in expected if slot not in seen]
    unexpected = [slot for slot in seen if slot not in expected]
    duplicates = sum(n - 1 for n in seen.values() if n > 1)
    return {
        "ok": not (missing or unexpected or duplicates or mismatched or unparsable),
        "what": WHAT[pipeline],
        "expected_windows": len(expected),
        "received": sum(seen.values()),
        "missing": len(missing),
        "unexpected": len(unexpected),
        "duplicates": duplicates,
        "mismatched": mismatched,
        "mismatched_fields": dict(wrong_fields),
        "unparsable": unparsable,
        "examples": [e[:600] for e in examples]
        + [f"missing {s}" for s in missing[:3]]
        + [f"unexpected {s}" for s in unexpected[:3]],
    }
