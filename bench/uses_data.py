"""The benchmark's trades and logs topics: seeded records of the same size and shape of event time
as the sensor readings (same count, keys, event-time step, disorder and partitions), produced to
``trades`` and ``app-logs``, and every record kept per key for the expected figures.

The records are made here, not by faustapp's generator, so the expected figures depend on nothing
in faustapp: record ``i`` has nominal event time ``start + floor(i * interval_ms)``, a key drawn
uniformly, and an event time shifted back by a uniform 0..``disorder_ms`` (< grace, so nothing is
late). Every field of the schema appears, optional ones sometimes absent or ``null``. After the
records, each partition gets one valid "closer" record far enough ahead in event time that every
window of the data is final; the closers' own windows never close and are not expected.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson

from bench.common import key_per_partition, partition_of
from bench.data import CLOSER_PREFIX, MINUTE, DataSpec, create_topic
from bench.topic_writer import TopicWriter

TRADES = "trades"
LOGS = "logs"
TOPICS = {TRADES: "trades", LOGS: "app-logs"}
SUM_FIELDS = {TRADES: "price", LOGS: "ts"}
"""The field the raw client adds up (a field every record carries)."""

ERROR_MESSAGES = (
    "payment timeout",
    "connection reset by peer",
    "upstream 503",
    "deadlock detected",
    "card declined",
    "disk quota exceeded",
    "token expired",
    "null pointer in handler",
)
PATHS = ("/api/cart", "/api/checkout", "/api/search", "/api/login", "/health", "/api/items")

# One event as kept for the expectations, in the key's log order.
# trades: (ts, price, qty, side or None); logs: (ts, level, message, latency_ms or None).
Event = tuple


@dataclass
class UseDataset:
    """A filled trades or logs topic and the events behind it."""

    use: str
    spec: DataSpec
    topic: str
    start_ms: int
    min_ts: int = 0
    max_ts: int = 0
    closer_ts: int = 0
    closer_keys: dict[int, str] = field(default_factory=dict)
    per_partition: dict[int, int] = field(default_factory=dict)
    produce_seconds: float = 0.0
    value_bytes: int = 0
    field_sum: float = 0.0
    events_by_key: dict[str, list[Event]] = field(default_factory=lambda: defaultdict(list))

    @property
    def total(self) -> int:
        """Records in the topic: the events plus one closer per partition."""
        return sum(self.per_partition.values())

    @property
    def sum_field(self) -> str:
        return SUM_FIELDS[self.use]

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
            "event_rate_per_s": round(1000 / self.spec.interval_ms, 3),
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


def _slots(spec: DataSpec, start_ms: int, rng: random.Random) -> Iterator[tuple[int, int]]:
    """(key index, event time) of each record: nominal slot time shifted back by the disorder."""
    for i in range(spec.readings):
        nominal = start_ms + math.floor(i * spec.interval_ms)
        key = rng.randrange(spec.sensors)
        yield key, nominal - rng.randint(0, spec.disorder_ms)


def trade_events(spec: DataSpec, start_ms: int) -> Iterator[tuple[str, dict, Event]]:
    """(symbol, record, kept event) of every trade: a random walk of prices in cents per symbol,
    whole quantities (every fifth symbol fractional), a side that is sometimes absent or null."""
    rng = random.Random(spec.seed * 31 + 1)
    symbols = [f"SYM-{n:04d}" for n in range(spec.sensors)]
    prices = [round(rng.uniform(2.0, 900.0), 2) for _ in symbols]
    for k, ts in _slots(spec, start_ms, rng):
        price = prices[k] = max(0.01, round(prices[k] * (1.0 + rng.gauss(0.0, 0.002)), 2))
        if k % 5 == 0:
            qty: float = max(0.0001, round(rng.lognormvariate(0.0, 1.0), 4))
        else:
            qty = rng.randint(1, 500)
        record: dict[str, object] = {"symbol": symbols[k], "ts": ts, "price": price, "qty": qty}
        draw = rng.random()
        side = "buy" if draw < 0.45 else "sell" if draw < 0.9 else None
        if side is not None:
            record["side"] = side
        elif draw >= 0.95:
            record["side"] = None
        yield symbols[k], record, (ts, price, float(qty), side)


def log_events(spec: DataSpec, start_ms: int) -> Iterator[tuple[str, dict, Event]]:
    """(service, record, kept event) of every log line: each service has its own error rate,
    typical latency and few error messages (at most 8 distinct, so top errors are exact)."""
    rng = random.Random(spec.seed * 31 + 2)
    services = [f"svc-{n:04d}" for n in range(spec.sensors)]
    error_rate = [rng.uniform(0.02, 0.25) for _ in services]
    typical_ms = [rng.uniform(5.0, 400.0) for _ in services]
    messages = [rng.sample(ERROR_MESSAGES, rng.randint(2, 5)) for _ in services]
    for k, ts in _slots(spec, start_ms, rng):
        draw = rng.random()
        if draw < error_rate[k]:
            level = "FATAL" if rng.random() < 0.1 else "ERROR"
            message, status = rng.choice(messages[k]), rng.choice((500, 502, 503, 504))
        else:
            level = "WARN" if draw < error_rate[k] + 0.1 else rng.choice(("DEBUG", "INFO", "INFO"))
            status = 429 if level == "WARN" else 200
            message = f"GET {rng.choice(PATHS)} {status}"
        record: dict[str, object] = {"service": services[k], "ts": ts, "level": level}
        if rng.random() < 0.95:
            record["message"] = message
        else:
            message = ""  # absent: the schema's default
        latency = None
        if rng.random() < 0.85:
            latency = round(rng.lognormvariate(math.log(typical_ms[k]), 0.7), 1)
            record["latency_ms"] = latency
            record["status"] = status
        elif rng.random() < 0.5:
            record["latency_ms"] = None
        if rng.random() < 0.7:
            record["host"] = f"web-{rng.randrange(12)}"
        yield services[k], record, (ts, level, message, latency)


def _closer(use: str, key: str, ts: int) -> bytes:
    if use == TRADES:
        return orjson.dumps({"symbol": key, "ts": ts, "price": 1.0, "qty": 1.0})
    return orjson.dumps({"service": key, "ts": ts, "level": "INFO"})


async def fill_use_topic(
    bootstrap: str, use: str, topic: str, spec: DataSpec, start_ms: int, quiet: bool = False
) -> UseDataset:
    """Create ``topic`` and produce the use's records and closers as fast as aiokafka can."""
    partitions = spec.partitions
    dataset = UseDataset(use=use, spec=spec, topic=topic, start_ms=start_ms)
    await create_topic(bootstrap, topic, partitions)
    events = trade_events if use == TRADES else log_events
    sum_field = dataset.sum_field
    kept = dataset.events_by_key
    partition_cache: dict[str, int] = {}
    min_ts = max_ts = None
    sums: list[float] = []
    async with TopicWriter(bootstrap, topic, partitions) as writer:
        for n, (key, record, event) in enumerate(events(spec, start_ms)):
            p = partition_cache.get(key)
            if p is None:
                p = partition_cache[key] = partition_of(key, partitions)
            ts = event[0]
            await writer.append(p, key.encode(), orjson.dumps(record), ts)
            kept[key].append(event)
            sums.append(record[sum_field])
            min_ts = ts if min_ts is None or ts < min_ts else min_ts
            max_ts = ts if max_ts is None or ts > max_ts else max_ts
            if not quiet and n and n % 200_000 == 0:
                print(f"  produced {n:,} {use}", flush=True)
        # The same distance as the sensor closers': every window of the data is final.
        closer_ts = max_ts + 5 * MINUTE + MINUTE + spec.grace_ms + 1000
        dataset.closer_keys = key_per_partition(f"{CLOSER_PREFIX}-{use}", partitions)
        for p, key in sorted(dataset.closer_keys.items()):
            closer = _closer(use, key, closer_ts)
            sums.append(orjson.loads(closer)[sum_field])
            await writer.append(p, key.encode(), closer, closer_ts)
        dataset.produce_seconds = await writer.flush()
    dataset.field_sum = math.fsum(sums)
    dataset.value_bytes = writer.value_bytes
    dataset.min_ts, dataset.max_ts, dataset.closer_ts = min_ts, max_ts, closer_ts
    dataset.per_partition = writer.counts
    return dataset
