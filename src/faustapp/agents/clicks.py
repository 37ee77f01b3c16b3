"""User behaviour on ``clicks``: sessions per user, page statistics per minute (regrouped by page,
so the same page's events from every user partition meet in one window), trending items (a
ranking across every item of a 5-minute window) and sales per category (purchases joined with
the ``products`` catalogue)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from faustapp.api import (
    MINUTE,
    Count,
    CountBy,
    DistinctCount,
    DistinctList,
    EventTime,
    Explode,
    First,
    Id,
    Last,
    Number,
    Record,
    Schema,
    Sum,
    Text,
    forever,
    hopping,
    reference,
    session,
    source,
    tumbling,
)

CLICKS = "clicks"
PRODUCTS = "products"
UNKNOWN_CATEGORY = "unknown"
SESSION_GAP_MS = 30 * MINUTE
MAX_ITEMS_VIEWED = 50


class Click(Record):
    """One click-stream event of a user: what happened, on which page, to which item."""

    user_id: Id
    ts: EventTime
    event: Literal["view", "click", "add_to_cart", "purchase"]
    page: Annotated[str, Text(2048, min_length=1)]
    item_id: Id | None = None
    amount: Annotated[float, Number(ge=0)] | None = None


class Product(Record):
    """An item of the catalogue (the ``products`` topic, compacted, keyed by item id)."""

    item_id: Id
    category: Annotated[str, Text(256, min_length=1)]
    name: Annotated[str, Text(1024)] = ""
    price: Annotated[float, Number(ge=0)] | None = None


def is_view(click: Click) -> bool:
    """A page or product view."""
    return click.event == "view"


def is_add_to_cart(click: Click) -> bool:
    """An item put in the cart."""
    return click.event == "add_to_cart"


def is_purchase(click: Click) -> bool:
    """A purchase (it carries its amount)."""
    return click.event == "purchase"


def has_item(click: Click) -> bool:
    """An event about an item (views of the home page are not)."""
    return click.item_id is not None


def with_score(activity: dict[str, Any]) -> dict[str, Any]:
    """An item's activity in a window, with its trend score: views + 3 carts + 5 purchases."""
    views, carts, purchases = activity["views"], activity["add_to_carts"], activity["purchases"]
    return {**activity, "score": views + 3 * carts + 5 * purchases}


def purchase_has_amount(click: Click) -> bool:
    """The cross-field rule of a click: a purchase says how much."""
    return click.event != "purchase" or click.amount is not None


def session_record(result: dict[str, Any]) -> dict[str, Any]:
    """A user's session in its published order, with its duration."""
    return {
        "user_id": result["user_id"],
        "window_start": result["window_start"],
        "window_end": result["window_end"],
        "duration_ms": result["window_end"] - result["window_start"],
        "events": result["events"],
        "views": result["views"],
        "add_to_carts": result["add_to_carts"],
        "purchases": result["purchases"],
        "revenue": result["revenue"],
        "entry_page": result["entry_page"],
        "exit_page": result["exit_page"],
        "items_viewed": result["items_viewed"],
    }


clicks = source(
    "clicks",
    topic=CLICKS,
    schema=Schema(
        Click,
        key="user_id",
        rules=[(purchase_has_amount, "field 'amount' is required for a purchase")],
    ),
)

user_sessions = clicks.window(
    "user-sessions",
    session(SESSION_GAP_MS),
    description="a user's visits: events less than 30 minutes apart",
    events=Count(),
    views=Count(where=is_view),
    add_to_carts=Count(where=is_add_to_cart),
    purchases=Count(where=is_purchase),
    revenue=Sum("amount", where=is_purchase),
    entry_page=First("page"),
    exit_page=Last("page"),
    items_viewed=DistinctList("item_id", MAX_ITEMS_VIEWED, where=is_view),
    select=session_record,
)
page_stats = clicks.window(
    "page-stats-1m",
    tumbling(MINUTE),
    by="page",
    description="events, views and unique users per page and minute",
    events=Count(),
    views=Count(where=is_view),
    unique_users=DistinctCount("user_id"),
)
item_activity = clicks.window(
    "item-activity-5m",
    hopping(5 * MINUTE, MINUTE),
    by="item_id",
    where=has_item,
    description="views, add-to-carts, purchases and trend score per item, 5 minutes every minute",
    views=Count(where=is_view),
    add_to_carts=Count(where=is_add_to_cart),
    purchases=Count(where=is_purchase),
    select=with_score,
)
trending_items = clicks.rank(
    "trending-items",
    item_activity,
    k=10,
    score="score",
    fields=("views", "add_to_carts", "purchases"),
    key="trending",
    above=0,
    description="the 10 items with the highest trend score of each 5-minute window",
)

products = reference("products", topic=PRODUCTS, schema=Schema(Product, key="item_id", ts=None))
clicks_with_product = clicks.join(
    products, on="item_id", fields={"category": "category"}, missing={"category": UNKNOWN_CATEGORY}
)
category_sales = clicks_with_product.window(
    "category-sales-1m",
    tumbling(MINUTE),
    by="category",
    where=is_purchase,
    description="purchases, revenue and distinct items per product category and minute",
    purchases=Count(),
    revenue=Sum("amount"),
    items=DistinctCount("item_id"),
)


class Session(Record):
    """A final session, as ``user-sessions`` publishes it (the fields co-views read)."""

    user_id: Id
    window_start: int
    window_end: int
    ts: int = 0  # set from window_end when decoded: a session's time is its end
    items_viewed: list[str] = []

    def __post_init__(self) -> None:
        self.ts = self.window_end


class CoView(Record):
    """One ordered pair of different items viewed in one session."""

    item_a: str
    item_b: str
    ts: int


def co_view_pairs(session: Session) -> list[CoView]:
    """Every ordered pair (a, b) of different items of the session's views."""
    items = list(dict.fromkeys(session.items_viewed))
    return [CoView(a, b, session.ts) for a in items for b in items if a != b]


sessions = source("sessions", topic="user-sessions", schema=Schema(Session, key="user_id"))
co_views = sessions.window(
    "co-views",
    forever(),
    by="item_a",
    explode=Explode(CoView, co_view_pairs),
    needs=("user-sessions", "user-last-session"),
    description="how many final sessions viewed both a and b, per item a (a running table)",
    co=CountBy("item_b"),
)
last_session = sessions.window(
    "user-last-session",
    forever(),
    description="the items of each user's most recent final session (a running table)",
    based_on=Last("items_viewed"),
)
