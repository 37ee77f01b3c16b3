"""Sensor test data and the figures a test expects, computed independently of faustapp's engine."""

from __future__ import annotations

import asyncio
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

    def __init__(self) -> None:
        now = int(time.time() * 1000)
        self._next = now - now % (60 * MINUTE) - 48 * 60 * MINUTE

    def allocate(self, minutes: int) -> int:
        """Start (aligned to the minute) of a fresh range of ``minutes`` minutes."""
        start = self._next
        self._next += (minutes + 60) * MINUTE
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


def expected_windows(readings: Iterable[Reading], size_ms: int = MINUTE) -> dict[tuple, dict]:
    """Figures of every (sensor, window start) in the ``sensor-stats-1m`` shape."""
    groups: dict[tuple[str, int], list[float]] = defaultdict(list)
    for r in readings:
        groups[(r.sensor_id, r.ts - r.ts % size_ms)].append(r.value)
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
        }
        for (sensor, start), values in groups.items()
    }


def assert_same_figures(got: dict, want: dict) -> None:
    """Exact for counts and extremes, float-rounding tolerance for sums and moments."""
    assert set(got) == set(want), (sorted(got), sorted(want))
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
