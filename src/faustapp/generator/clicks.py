"""Pure, seedable source of shop click events, kept free of I/O so it can be tested exactly.

Users browse in sessions: a landing page (the home page, a search, a category or a product),
then views of product pages, clicks on products (from a listing or a "related items" shelf),
add-to-carts, a look at the cart, the checkout and purchases, until they leave. Within a session
events are seconds to minutes apart; a user's next session starts more than 40 minutes of event
time after the last event of the previous one, so a 30-minute session gap separates them.

Items are the catalogue's (``sku-0`` .. ``sku-{items-1}``, see :mod:`.products`), drawn from a
Zipf-like popularity (``sku-0`` the most viewed), within the category of the page the user is on
(so items of one category are viewed together), plus a trending item that changes every 15 to
45 minutes of event time.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Iterator

import orjson

from faustapp.generator.config import GeneratorConfig
from faustapp.generator.products import CATEGORIES, catalogue_product, category_index, sku
from faustapp.generator.records import (
    VALID,
    GeneratedRecord,
    draw_bad_kind,
    shift_back,
    slot_times,
)
from faustapp.generator.schema import (
    ISO_TS_SHARE,
    Popularity,
    Record,
    Schema,
    bad_id,
    iso_ms,
    with_value,
)

EVENTS = ("view", "click", "add_to_cart", "purchase")
MAX_PAGE_LENGTH = 2048
#: The gap that sessionizes clicks (a consumer's session window); sessions here are further apart.
SESSION_GAP_MS = 30 * 60_000
#: Least event time between the last event of a user's session and the first of the next one.
MIN_BREAK_MS = 40 * 60_000
#: Mean of the random part of a break between two sessions, on top of :data:`MIN_BREAK_MS`.
MEAN_EXTRA_BREAK_MS = 10 * 60_000
#: Bounds of the pause between two events of a session, before pacing.
MIN_PAUSE_MS, MAX_PAUSE_MS = 1_000, 300_000
#: Median pause after each kind of step.
PAUSE_AFTER_LISTING_MS = 12_000
PAUSE_AFTER_PRODUCT_MS = 25_000
PAUSE_AFTER_CLICK_MS = 2_000
PAUSE_AFTER_ADD_MS = 6_000
PAUSE_AFTER_CART_MS = 10_000
PAUSE_AFTER_CHECKOUT_MS = 40_000
PAUSE_AFTER_PURCHASE_MS = 1_500
#: Steps of the journey after which a user leaves anyway.
MAX_STEPS = 40
#: Popularity skew of items: weight ``1 / (rank + 1) ** ITEM_SKEW``.
ITEM_SKEW = 1.0
#: Share of item picks, off a category page, that go to the trending item.
TREND_SHARE = 0.1
TREND_MINUTES = (15.0, 45.0)
#: Share of absent optional fields sent as null rather than left out.
NULL_SHARE = 0.2

Step = tuple[str, str, int | None, float | None, int]
"""(event, page, item index or None, amount or None, median pause after it in ms)."""


def _bad_event(schema: Schema, rng: random.Random, record: Record) -> bytes:
    event = rng.choice(("scroll", "", "VIEW", "Purchase", "add-to-cart", 3, True, ["view"]))
    return with_value(record, "event", event)


def _empty_page(schema: Schema, rng: random.Random, record: Record) -> bytes:
    return with_value(record, "page", "")


def _long_page(schema: Schema, rng: random.Random, record: Record) -> bytes:
    page = f"{record['page']}?ref="
    length = rng.randint(MAX_PAGE_LENGTH + 1, MAX_PAGE_LENGTH + 2000)
    return with_value(record, "page", page + "x" * (length - len(page)))


def _page_not_string(schema: Schema, rng: random.Random, record: Record) -> bytes:
    page = record["page"]
    return with_value(record, "page", rng.choice((404, 1.5, True, [page], {"path": page})))


def _bad_item_id(schema: Schema, rng: random.Random, record: Record) -> bytes:
    good = str(record.get("item_id") or "sku-1")
    kind = rng.choice(("empty", "long", "control", "slash", "number"))
    item: object = 17 if kind == "number" else bad_id(rng, good, kind)
    return with_value(record, "item_id", item)


def _negative_amount(schema: Schema, rng: random.Random, record: Record) -> bytes:
    return with_value(record, "amount", -round(rng.uniform(0.01, 500.0), 2))


def _purchase_without_amount(schema: Schema, rng: random.Random, record: Record) -> bytes:
    purchase = dict(record)
    purchase.update(event="purchase", page="/checkout", item_id=record.get("item_id") or "sku-0")
    if rng.random() < 0.5:
        purchase["amount"] = None
    else:
        purchase.pop("amount", None)
    return orjson.dumps(purchase)


CLICK_SCHEMA = Schema(
    id_field="user_id",
    required=("user_id", "ts", "event", "page"),
    numbers=("amount",),
    specific={
        "bad_event": _bad_event,
        "empty_page": _empty_page,
        "long_page": _long_page,
        "page_not_string": _page_not_string,
        "bad_item_id": _bad_item_id,
        "negative_amount": _negative_amount,
        "purchase_without_amount": _purchase_without_amount,
    },
)
#: Every way a generated click event can be malformed; each must be rejected by a consumer.
CLICK_BAD_KINDS: tuple[str, ...] = CLICK_SCHEMA.bad_kinds


class _Shop:
    """Who clicks next, and what: one journey per user in a session, the rest resting.

    The slot clock decides when the next event happens; the shop decides whose it is. A user
    whose next event is due goes first; else a resting user (rested for more than
    :data:`MIN_BREAK_MS` plus the disorder) starts a session; else the session with the earliest
    next event goes early, so its pauses shrink. Only when every user is resting does the user
    of the previous event go on, which keeps its session going rather than starting a new one
    too soon.
    """

    def __init__(self, config: GeneratorConfig, rng: random.Random) -> None:
        self._rng = rng
        self._users = config.keys
        self._break_ms = MIN_BREAK_MS + config.disorder_ms
        self._items = config.items
        self._popularity = Popularity(config.items, rng, skew=ITEM_SKEW)
        members: list[list[int]] = [[] for _ in CATEGORIES]
        for index in range(config.items):
            members[category_index(index)].append(index)
        self._shelves = [
            (shelf, Popularity(len(shelf), rng, ITEM_SKEW) if shelf else None) for shelf in members
        ]
        self._prices: dict[int, float] = {}
        self._trend = 0
        self._trend_until = -1
        self._now = 0
        self._sequence = itertools.count()
        self._due: list[tuple[int, int, int]] = []
        """Heap of (time of the next event, tie-breaker, user) of users in a session."""
        self._journeys: dict[int, tuple[Iterator[Step], Step]] = {}
        self._resting: list[tuple[int, int, int]] = []
        """Heap of (time the user may start a session, tie-breaker, user), lazily pruned."""
        self._rest_mark: dict[int, int] = {}
        self._ready: list[int] = []
        self._fresh = 0
        """Users ``u-{fresh}`` and up have not had a session yet."""
        self._last_user = 0

    def next_event(self, nominal_ts: int) -> tuple[int, Step]:
        """The user and step of the event at ``nominal_ts`` (never decreasing between calls)."""
        self._now = nominal_ts
        resting = self._resting
        while resting and resting[0][0] <= nominal_ts:
            _, mark, user = heapq.heappop(resting)
            if self._rest_mark.get(user) == mark:
                del self._rest_mark[user]
                self._ready.append(user)
        if self._due and (self._due[0][0] <= nominal_ts or not self._can_start()):
            _, _, user = heapq.heappop(self._due)
            journey, step = self._journeys.pop(user)
        else:
            user = self._starter()
            journey = self._journey()
            step = next(journey)
        self._continue(user, journey, step)
        self._last_user = user
        return user, step

    def _can_start(self) -> bool:
        return bool(self._ready) or self._fresh < self._users

    def _starter(self) -> int:
        """A user to start a session: a rested or new one at random, else the last user."""
        ready = self._ready
        waiting = len(ready) + self._users - self._fresh
        if not waiting:
            self._rest_mark.pop(self._last_user, None)
            return self._last_user
        draw = self._rng.randrange(waiting)
        if draw >= len(ready):
            self._fresh += 1
            return self._fresh - 1
        ready[draw], ready[-1] = ready[-1], ready[draw]
        return ready.pop()

    def _continue(self, user: int, journey: Iterator[Step], step: Step) -> None:
        """Schedule the user's step after ``step``, or rest the user if the journey is over."""
        following = next(journey, None)
        if following is None:
            mark = next(self._sequence)
            rest = self._break_ms + round(self._rng.expovariate(1.0 / MEAN_EXTRA_BREAK_MS))
            self._rest_mark[user] = mark
            heapq.heappush(self._resting, (self._now + rest, mark, user))
            return
        pause = self._rng.lognormvariate(math.log(step[4]), 0.7)
        pause_ms = round(min(max(pause, MIN_PAUSE_MS), MAX_PAUSE_MS))
        self._journeys[user] = (journey, following)
        heapq.heappush(self._due, (self._now + pause_ms, next(self._sequence), user))

    def price(self, item: int) -> float:
        price = self._prices.get(item)
        if price is None:
            price = catalogue_product(item)["price"]
            assert isinstance(price, float)
            self._prices[item] = price
        return price

    def pick_item(self, category: int | None) -> int:
        """An item by popularity: within ``category``, else overall or the trending one."""
        rng = self._rng
        if category is not None:
            shelf, popularity = self._shelves[category]
            if popularity is not None:
                return shelf[popularity.pick()]
        if self._now >= self._trend_until:
            self._trend = rng.randrange(self._items)
            self._trend_until = self._now + round(rng.uniform(*TREND_MINUTES) * 60_000)
        if rng.random() < TREND_SHARE:
            return self._trend
        return self._popularity.pick()

    def _related(self, item: int) -> int:
        """Another item of ``item``'s category, by popularity: the "related items" shelf."""
        category = category_index(item)
        for _ in range(3):
            other = self.pick_item(category)
            if other != item:
                return other
        return self.pick_item(None)

    def _search_page(self) -> tuple[str, int]:
        """A search for what a popular item is (``/search?q=desk+lamp``), and its category."""
        category = category_index(self.pick_item(None))
        noun = self._rng.choice(CATEGORIES[category].nouns)
        return f"/search?q={noun.lower().replace(' ', '+')}", category

    def _journey(self) -> Iterator[Step]:
        """The steps of one session, drawn as they happen."""
        rng = self._rng
        cart: list[tuple[int, float]] = []
        draw = rng.random()
        state = "home" if draw < 0.3 else "search" if draw < 0.55 else "category"
        item = 0
        if draw >= 0.65:
            state, item = "product", self.pick_item(None)
        for _ in range(MAX_STEPS):
            if state in ("home", "search", "category"):
                category: int | None = None
                if state == "home":
                    page = "/"
                elif state == "search":
                    page, category = self._search_page()
                else:
                    category = category_index(self.pick_item(None))
                    page = f"/category/{CATEGORIES[category].name}"
                yield ("view", page, None, None, PAUSE_AFTER_LISTING_MS)
                draw = rng.random()
                if draw < 0.72:
                    item = self.pick_item(category)
                    yield ("click", page, item, None, PAUSE_AFTER_CLICK_MS)
                    state = "product"
                elif draw < 0.84:
                    state = "search"
                elif draw < 0.9 and cart:
                    state = "cart"
                else:
                    return
            elif state == "product":
                page = f"/product/{sku(item)}"
                yield ("view", page, item, None, PAUSE_AFTER_PRODUCT_MS)
                draw = rng.random()
                if draw < 0.14:
                    quantity = 1 if rng.random() < 0.85 else rng.randint(2, 3)
                    amount = round(self.price(item) * quantity, 2)
                    cart.append((item, amount))
                    sent = amount if rng.random() < 0.9 else None
                    yield ("add_to_cart", page, item, sent, PAUSE_AFTER_ADD_MS)
                    draw = rng.random()
                    if draw < 0.45:
                        state = "cart"
                    elif draw < 0.6:
                        state = "search"
                    elif draw < 0.85:
                        item = self._related(item)
                        yield ("click", page, item, None, PAUSE_AFTER_CLICK_MS)
                    else:
                        return
                elif draw < 0.55:
                    item = self._related(item)
                    yield ("click", page, item, None, PAUSE_AFTER_CLICK_MS)
                elif draw < 0.73:
                    state = rng.choice(("home", "search", "category"))
                elif draw < 0.8 and cart:
                    state = "cart"
                else:
                    return
            elif state == "cart":
                yield ("view", "/cart", None, None, PAUSE_AFTER_CART_MS)
                draw = rng.random()
                if draw < 0.6:
                    state = "checkout"
                elif draw < 0.8:
                    state = rng.choice(("home", "search"))
                else:
                    return
            else:
                yield ("view", "/checkout", None, None, PAUSE_AFTER_CHECKOUT_MS)
                if rng.random() >= 0.75:
                    return
                for bought, amount in cart:
                    yield ("purchase", "/checkout", bought, amount, PAUSE_AFTER_PURCHASE_MS)
                cart = []
                if rng.random() < 0.75:
                    return
                state = "home"

    def record(self, user: int, step: Step, ts: object) -> Record:
        event, page, item, amount, _ = step
        click: Record = {"user_id": f"u-{user}", "ts": ts, "event": event, "page": page}
        self._optional(click, "item_id", sku(item) if item is not None else None)
        self._optional(click, "amount", amount)
        return click

    def _optional(self, click: Record, name: str, value: object) -> None:
        """Set an optional field, or leave it out or null (both mean absent) when ``None``."""
        if value is not None:
            click[name] = value
        elif self._rng.random() < NULL_SHARE:
            click[name] = None


def click_records(config: GeneratorConfig) -> Iterator[GeneratedRecord]:
    """Yield the click events of one run; the same resolved config always yields the same records.

    Slots, disorder and malformed records follow
    :func:`~faustapp.generator.records.sensor_records`: a valid event's ``ts`` lies in
    ``[nominal - disorder_ms, nominal]``, and each record is malformed with probability
    ``bad_ratio`` (kind picked uniformly from :data:`CLICK_BAD_KINDS`), keyed by its user.

    A valid event is ``{"user_id", "ts", "event", "page"}`` plus ``"item_id"`` (on product
    pages, clicks, add-to-carts and purchases; else absent or null) and ``"amount"`` (on every
    purchase, on most add-to-carts: the item's catalogue price times a quantity of 1 to 3; else
    absent or null). ``ts`` is epoch ms, or now and then an ISO-8601 string. Keys are the user id
    (``u-0`` .. ``u-{keys-1}``). Sessions keep their pace of seconds to minutes between events
    while there are enough users for the event rate: about 500 per event per second of event
    time (the defaults: 50,000 users, 100 events/s). With fewer, the pauses within a session
    shrink, never the breaks between sessions.
    """
    config = config.resolved()
    rng = random.Random(config.seed)
    shop = _Shop(config, rng)
    payloads = CLICK_SCHEMA.bad_payloads
    kinds = tuple(payloads)
    disorder_ms = config.disorder_ms
    bad_ratio = config.bad_ratio
    for nominal_ts in slot_times(config):
        user, step = shop.next_event(nominal_ts)
        ts = shift_back(rng, nominal_ts, disorder_ms)
        stamp: object = iso_ms(ts) if rng.random() < ISO_TS_SHARE else ts
        record = shop.record(user, step, stamp)
        key = f"u-{user}".encode()
        kind = draw_bad_kind(rng, bad_ratio, kinds)
        if kind is None:
            yield GeneratedRecord(key, orjson.dumps(record), ts, VALID, nominal_ts)
        else:
            record["ts"] = ts
            yield GeneratedRecord(
                key, payloads[kind](CLICK_SCHEMA, rng, record), None, kind, nominal_ts
            )
