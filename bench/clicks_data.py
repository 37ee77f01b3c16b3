"""The benchmark's clicks topic: seeded click-stream events of the same size as the other topics
(as many records and keys: users), produced to ``clicks``, every event kept per user for the
expected figures.

The events are made here, not by faustapp's generator, so the expected figures depend on nothing
in faustapp. Each user's events fall in sessions: a landing view (home, search, a category or a
product page), then product views, clicks, add-to-carts, cart views and purchases (with their
amount), a few seconds apart; the next session starts more than 31 minutes after the last event
of the previous one, so a 30-minute session gap separates them even after the disorder. Items
(``sku-0`` .. ``sku-999``) are drawn from a Zipf-like popularity, so a few are viewed far more
than the rest. The topic holds every user's events merged in order of their nominal time; each
event's time is that nominal time shifted back by 0..``disorder_ms`` (< grace, so nothing is
late): about 0.5 % of a user's events come in the log after an event with a later time, and
about 2.5 % share the time of the user's previous event (ties go by log order). Optional fields
are sometimes absent and sometimes ``null``.

Since users click far less often than sensors report, the event time spans hours (about 11 at
--quick size, about 42 in full); it ends where the sensor readings begin, in the past. After
the events, each partition gets one "closer" (a home-page view without item) far enough ahead
that every session, page minute and 5-minute item window of the data is final, also after the
regrouping (whose windows close at the minimum stream time of every input partition); the
closers' own windows never close and are not expected.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson

from bench.common import key_per_partition, partition_of
from bench.data import CLOSER_PREFIX, MINUTE, DataSpec, create_topic
from bench.topic_writer import TopicWriter

CLICKS = "clicks"
SESSION_GAP_MS = 30 * MINUTE
ITEMS = 1_000
ZIPF_S = 1.1
MIN_BREAK_MS = 31 * MINUTE
EXTRA_BREAK_MS = 10 * MINUTE
PAUSE_MS = (1_000, 30_000)
TIE_SHARE = 0.03
MEAN_SESSION_EVENTS = 24
MAX_SESSION_EVENTS = 90
CATEGORIES = ("books", "garden", "kitchen", "music", "outdoor", "shoes", "toys", "video")
SEARCHES = ("lamp", "tent", "kettle", "boots", "vinyl", "lego", "drill", "novel")

# One event as kept for the expectations, in the user's log order:
# (ts, event, page, item_id or None, amount or None).
Click = tuple


@dataclass
class ClicksDataset:
    """The filled clicks topic and the events behind it (the interface of the trades and logs
    data sets: ``total``, ``sum_field``, ``field_sum``, ``closer_ts``, ``describe``)."""

    use: str
    spec: DataSpec
    topic: str
    end_ms: int
    min_ts: int = 0
    max_ts: int = 0
    closer_ts: int = 0
    closer_keys: dict[int, str] = field(default_factory=dict)
    per_partition: dict[int, int] = field(default_factory=dict)
    produce_seconds: float = 0.0
    value_bytes: int = 0
    field_sum: float = 0.0
    sessions: int = 0
    events_by_key: dict[str, list[Click]] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Records in the topic: the events plus one closer per partition."""
        return sum(self.per_partition.values())

    @property
    def sum_field(self) -> str:
        return "ts"

    def describe(self) -> dict[str, object]:
        """The data set's facts for the JSON report."""
        return {
            "use": self.use,
            "topic": self.topic,
            "records": self.spec.readings,
            "keys": self.spec.sensors,
            "partitions": self.spec.partitions,
            "records_in_topic": self.total,
            "records_per_partition": {str(p): n for p, n in sorted(self.per_partition.items())},
            "mean_value_bytes": round(self.value_bytes / self.total, 1) if self.total else None,
            "sessions": self.sessions,
            "items": ITEMS,
            "events_by_kind": dict(sorted(self.kinds.items())),
            "event_rate_per_s": round(self.spec.readings / (self.max_ts - self.min_ts) * 1000, 3)
            if self.max_ts > self.min_ts
            else None,
            "event_time_start_ms": self.min_ts,
            "event_time_end_ms": self.max_ts,
            "event_time_span_s": round((self.max_ts - self.min_ts) / 1000, 3),
            "disorder_ms": self.spec.disorder_ms,
            "seed": self.spec.seed,
            "closer_keys": sorted(self.closer_keys.values()),
            "closer_ts": self.closer_ts,
            "produce_seconds": round(self.produce_seconds, 3),
            "produce_records_per_s": round(self.total / self.produce_seconds)
            if self.produce_seconds
            else None,
        }


class _Shop:
    """The catalogue: item ids, prices and a Zipf-like popularity in a seeded order."""

    def __init__(self, rng: random.Random) -> None:
        self.items = [f"sku-{n}" for n in range(ITEMS)]
        ranked = list(self.items)
        rng.shuffle(ranked)  # the most popular item is not sku-0: ranks do not follow ids
        self.ranked = ranked
        self.cum_weights = list(itertools.accumulate(1 / (r + 1) ** ZIPF_S for r in range(ITEMS)))
        self.price = {item: round(rng.uniform(2.5, 250.0), 2) for item in self.items}

    def popular(self, rng: random.Random) -> str:
        return rng.choices(self.ranked, cum_weights=self.cum_weights)[0]


def _session(rng: random.Random, shop: _Shop, n: int) -> Iterator[tuple[str, str, str | None]]:
    """(event, page, item or None) of a session of ``n`` events."""
    cart: list[str] = []
    last_item: str | None = None
    page = "/"
    for i in range(n):
        draw = rng.random()
        if i == 0:
            if draw < 0.35:
                page = "/"
            elif draw < 0.55:
                page = f"/search?q={rng.choice(SEARCHES)}"
            elif draw < 0.65:
                page = f"/category/{rng.choice(CATEGORIES)}"
            else:
                last_item = shop.popular(rng)
                page = f"/product/{last_item}"
                yield "view", page, last_item
                continue
            yield "view", page, None
        elif draw < 0.12 and cart:
            yield "purchase", "/checkout", cart.pop(0)
        elif draw < 0.24 and last_item is not None:
            cart.append(last_item)
            yield "add_to_cart", f"/product/{last_item}", last_item
        elif draw < 0.40:
            # a click on a listing or a product shelf; now and then on no item (a filter)
            yield "click", page, shop.popular(rng) if rng.random() < 0.85 else None
        elif draw < 0.45:
            page = "/cart"
            yield "view", page, None
        elif draw < 0.52:
            page = "/" if rng.random() < 0.5 else f"/search?q={rng.choice(SEARCHES)}"
            yield "view", page, None
        else:
            last_item = shop.popular(rng)
            page = f"/product/{last_item}"
            yield "view", page, last_item


def _sizes(rng: random.Random, budget: int) -> list[int]:
    """Session sizes adding up to ``budget`` (each at least 3 events unless the budget is less)."""
    sizes: list[int] = []
    while budget > 0:
        size = min(MAX_SESSION_EVENTS, 3 + int(rng.expovariate(1 / (MEAN_SESSION_EVENTS - 3))))
        if budget - size < 3:
            size = budget
        sizes.append(size)
        budget -= size
    return sizes


def _user(
    rng: random.Random, shop: _Shop, user: int, budget: int, disorder_ms: int
) -> Iterator[tuple[int, int, int, dict, Click]]:
    """(nominal time, user, seq, JSON value, kept click) of one user's events, nominal time
    relative to the start and non-decreasing."""
    user_id = f"u-{user:04d}"
    nominal = rng.randrange(0, 45 * MINUTE)
    prev_ts = None
    seq = 0
    for size in _sizes(rng, budget):
        for i, (event, page, item) in enumerate(_session(rng, shop, size)):
            if i and rng.random() < TIE_SHARE:
                nominal += rng.randint(0, 800)
                ts = prev_ts if nominal - prev_ts <= disorder_ms else nominal
            else:
                if i:
                    nominal += rng.randint(*PAUSE_MS)
                ts = nominal - rng.randint(0, disorder_ms)
            value: dict[str, object] = {"user_id": user_id, "ts": ts, "event": event, "page": page}
            if item is not None or rng.random() < 0.5:
                value["item_id"] = item
            amount = None
            if event == "purchase":
                amount = round(shop.price[item] * rng.choice((1, 1, 1, 2, 3)), 2)
                value["amount"] = amount
            elif event == "add_to_cart" and rng.random() < 0.5:
                value["amount"] = shop.price[item]  # a price shown, not revenue
            elif rng.random() < 0.1:
                value["amount"] = None
            yield nominal, user, seq, value, (ts, event, page, item, amount)
            prev_ts = ts
            seq += 1
        nominal += MIN_BREAK_MS + rng.randrange(EXTRA_BREAK_MS)


def click_events(spec: DataSpec) -> list[tuple[int, int, int, dict, Click]]:
    """Every event in log order: (nominal time, user, seq, JSON value, kept click), times
    relative to the start of the data."""
    rng = random.Random(spec.seed * 31 + 3)
    shop = _Shop(rng)
    budgets = [0] * spec.sensors
    for _ in range(spec.readings):
        budgets[rng.randrange(spec.sensors)] += 1
    users = [
        list(_user(random.Random(rng.getrandbits(64)), shop, user, n, spec.disorder_ms))
        for user, n in enumerate(budgets)
    ]
    return list(heapq.merge(*users, key=lambda e: (e[0], e[1], e[2])))


async def fill_clicks_topic(
    bootstrap: str, use: str, topic: str, spec: DataSpec, end_ms: int, quiet: bool = False
) -> ClicksDataset:
    """Create ``topic`` and produce the clicks, ending before ``end_ms``, then the closers."""
    partitions = spec.partitions
    dataset = ClicksDataset(use=use, spec=spec, topic=topic, end_ms=end_ms)
    await create_topic(bootstrap, topic, partitions)
    events = click_events(spec)
    span = max(e[0] for e in events) if events else 0
    base = end_ms - (span // MINUTE + 1) * MINUTE  # whole minutes: the last event before end_ms
    kept: dict[str, list[Click]] = {}
    kinds: dict[str, int] = {}
    partition_cache: dict[str, int] = {}
    min_ts = max_ts = None
    sums: list[int] = []
    async with TopicWriter(bootstrap, topic, partitions) as writer:
        for n, (_nominal, _user, _seq, value, click) in enumerate(events):
            key = value["user_id"]
            p = partition_cache.get(key)
            if p is None:
                p = partition_cache[key] = partition_of(key, partitions)
            ts = value["ts"] = click[0] + base
            await writer.append(p, key.encode(), orjson.dumps(value), ts)
            kept.setdefault(key, []).append((ts, *click[1:]))
            kinds[click[1]] = kinds.get(click[1], 0) + 1
            sums.append(ts)
            min_ts = ts if min_ts is None or ts < min_ts else min_ts
            max_ts = ts if max_ts is None or ts > max_ts else max_ts
            if not quiet and n and n % 200_000 == 0:
                print(f"  produced {n:,} clicks", flush=True)
        del events
        # Every session (final at last event + gap + grace), page minute and 5-minute item
        # window (+ grace) is final on every input partition, so also after the regrouping.
        closer_ts = max_ts + SESSION_GAP_MS + MINUTE + spec.grace_ms + 1000
        dataset.closer_keys = key_per_partition(f"{CLOSER_PREFIX}-{use}", partitions)
        for p, key in sorted(dataset.closer_keys.items()):
            closer = {"user_id": key, "ts": closer_ts, "event": "view", "page": "/"}
            sums.append(closer_ts)
            await writer.append(p, key.encode(), orjson.dumps(closer), closer_ts)
        dataset.produce_seconds = await writer.flush()
    dataset.field_sum = math.fsum(sums)
    dataset.value_bytes = writer.value_bytes
    dataset.min_ts, dataset.max_ts, dataset.closer_ts = min_ts, max_ts, closer_ts
    dataset.per_partition = writer.counts
    dataset.events_by_key = kept
    dataset.kinds = kinds
    dataset.sessions = count_sessions(kept)
    return dataset


def count_sessions(events_by_key: dict[str, list[Click]]) -> int:
    """Sessions in the data: a user's events cut where neighbours (by time) are a gap apart."""
    total = 0
    for clicks in events_by_key.values():
        times = sorted(c[0] for c in clicks)
        total += 1 + sum(1 for a, b in itertools.pairwise(times) if b - a >= SESSION_GAP_MS)
    return total
