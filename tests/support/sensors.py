"""Sensor test data and the figures a test expects, computed independently of faustapp's engine."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import murmur2
from aiokafka.structs import TopicPartition

MINUTE = 60_000


@dataclass(frozen=True)
class Reading:
    """One reading a test produced."""

    sensor_id: str
    ts: int
    value: float

    def encode(self) -> bytes:
        """The ``sensor-readings`` JSON value."""
        return orjson.dumps({"sensor_id": self.sensor_id, "ts": self.ts, "value": self.value})


class EventClock:
    """Hands out event-time ranges that only move forward, so tests sharing topics never make
    each other's events late (stream time is per partition and only grows). Ranges lie in the
    recent past, as real sensor data does."""

    # A week of ranges: the whole suite must fit before "now", since a worker dead-letters events
    # more than FAUSTAPP_MAX_FUTURE_SKEW_MS (1 h) ahead of its clock. Kafka's retention is by
    # record timestamp, which is the produce time here, so old event times are safe.
    SPAN_MS = 7 * 24 * 60 * MINUTE

    def __init__(self) -> None:
        now = int(time.time() * 1000)
        self._next = now - now % (60 * MINUTE) - self.SPAN_MS

    def allocate(self, minutes: int) -> int:
        """Start (aligned to the minute) of a fresh range of ``minutes`` minutes."""
        start = self._next
        self._next += (minutes + 60) * MINUTE
        if self._next > time.time() * 1000:
            raise RuntimeError(
                f"EventClock: the ranges handed out reach the present ({minutes} more minutes "
                "asked); widen SPAN_MS, or the workers would dead-letter these events"
            )
        return start


def partition_of(key: str, partitions: int) -> int:
    """Partition of ``key`` under Kafka's default partitioner."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def key_per_partition(prefix: str, partitions: int) -> dict[int, str]:
    """One key landing in each partition, for readings that advance every partition's clock."""
    found: dict[int, str] = {}
    for n in itertools.count():
        key = f"{prefix}-{n}"
        found.setdefault(partition_of(key, partitions), key)
        if len(found) == partitions:
            return found
    raise AssertionError("unreachable")


def disordered_readings(
    sensors: list[str],
    start: int,
    minutes: int,
    every_ms: int,
    disorder_ms: int,
    seed: int,
) -> list[Reading]:
    """Readings every ``every_ms`` per sensor, arriving shuffled back by at most ``disorder_ms``."""
    rng = random.Random(seed)
    nominal = [
        Reading(sensor, ts, round(rng.uniform(-50, 150), 3))
        for ts in range(start, start + minutes * MINUTE, every_ms)
        for sensor in sensors
    ]
    # Arrival order: sort by nominal time plus a random delay <= disorder. The largest event time
    # seen before any reading is then at most ``disorder_ms`` ahead of it.
    keyed = [(r.ts + rng.uniform(0, disorder_ms), i, r) for i, r in enumerate(nominal)]
    keyed.sort()
    return [r for _, _, r in keyed]


def expected_windows(
    readings: Iterable[Reading], size_ms: int = MINUTE, step_ms: int | None = None
) -> dict[tuple, dict]:
    """Figures of every (sensor, window start) in the ``sensor-stats-1m`` shape; hopping windows
    when ``step_ms`` is given (every window of ``size_ms`` starting at a multiple of it)."""
    step_ms = step_ms or size_ms
    groups: dict[tuple[str, int], list[float]] = defaultdict(list)
    for r in readings:
        start = r.ts - r.ts % step_ms
        while start > r.ts - size_ms:
            groups[(r.sensor_id, start)].append(r.value)
            start -= step_ms
    return {
        (sensor, start): {
            "sensor_id": sensor,
            "window_start": start,
            "window_end": start + size_ms,
            "count": len(values),
            "sum": math.fsum(values),
            "mean": statistics.fmean(values),
            "min": min(values),
            "max": max(values),
            "stddev": statistics.pstdev(values),
            "_values": sorted(values),
        }
        for (sensor, start), values in groups.items()
    }


def rank_within(values_sorted: list[float], estimate: float, rank: float, error: float) -> bool:
    """Whether ``estimate`` is a ``rank`` quantile of the values within normalised rank ``error``
    (the guarantee a KLL sketch gives)."""
    n = len(values_sorted)
    below = bisect.bisect_left(values_sorted, estimate)
    at_or_below = bisect.bisect_right(values_sorted, estimate)
    slack = error * n + 1
    return below - slack <= rank * n <= at_or_below + slack


def expected_alerts(
    readings: Iterable[Reading], size_ms: int, z: float, min_count: int
) -> dict[tuple[str, int, float], float]:
    """(sensor, ts, value) -> z-score of every reading more than ``z`` stddev from the mean of
    its sensor's readings in [ts - size, ts] (the reading itself included)."""
    by_sensor: dict[str, list[Reading]] = defaultdict(list)
    for r in readings:
        by_sensor[r.sensor_id].append(r)
    alerts = {}
    for sensor, items in by_sensor.items():
        items.sort(key=lambda r: r.ts)
        times = [r.ts for r in items]
        for r in items:
            lo = bisect.bisect_left(times, r.ts - size_ms)
            hi = bisect.bisect_right(times, r.ts)
            values = [x.value for x in items[lo:hi]]
            if len(values) < min_count:
                continue
            sd = statistics.pstdev(values)
            if sd > 0 and abs((r.value - statistics.fmean(values)) / sd) > z:
                alerts[(sensor, r.ts, r.value)] = (r.value - statistics.fmean(values)) / sd
    return alerts


def assert_same_figures(got: dict, want: dict) -> None:
    """Exact for counts and extremes, float-rounding tolerance for sums and moments."""
    want = {k: v for k, v in want.items() if not k.startswith("_")}
    got = {k: v for k, v in got.items() if k in want}
    for field in ("sensor_id", "window_start", "window_end", "count", "min", "max"):
        assert got[field] == want[field], (field, got, want)
    for field in ("sum", "mean", "stddev"):
        assert math.isclose(got[field], want[field], rel_tol=1e-9, abs_tol=1e-9), (
            field,
            got,
            want,
        )


async def send(
    bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes | None]]
) -> list[tuple[int, int]]:
    """Produce (key, value) records in order; returns each one's (partition, offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [(m.partition, m.offset) for m in metadata]


async def send_readings(
    bootstrap: str, readings: Iterable[Reading], topic: str = "sensor-readings"
) -> list[tuple[int, int]]:
    """Produce readings keyed by their sensor id."""
    return await send(bootstrap, topic, ((r.sensor_id.encode(), r.encode()) for r in readings))


async def read_topic(bootstrap: str, topic: str, timeout: float = 20.0) -> list[dict]:
    """Every committed record of ``topic`` now, decoded, with partition and offset added."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        partitions = cluster.partitions_for_topic(topic) or set()
        if not partitions:
            return []
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[dict] = []
        deadline = time.monotonic() + timeout
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} did not reach its end offsets {ends}")
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                for m in messages:
                    record = orjson.loads(m.value)
                    record["_partition"], record["_offset"] = tp.partition, m.offset
                    record["_key"] = m.key
                    out.append(record)
        return out
    finally:
        await consumer.stop()


async def wait_for_records(
    bootstrap: str,
    topic: str,
    match: callable,
    expected: int,
    timeout: float = 60.0,
    settle: float = 3.0,
) -> list[dict]:
    """Poll ``topic`` until ``expected`` matching records exist, then once more after ``settle``
    seconds so that a duplicate arriving late is seen too."""
    deadline = time.monotonic() + timeout
    found: list[dict] = []
    while time.monotonic() < deadline:
        found = [r for r in await read_topic(bootstrap, topic) if match(r)]
        if len(found) >= expected:
            await asyncio.sleep(settle)
            return [r for r in await read_topic(bootstrap, topic) if match(r)]
        await asyncio.sleep(1.0)
    raise TimeoutError(f"{topic}: {len(found)} of {expected} expected records after {timeout}s")
