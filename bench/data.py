"""The benchmark's input: seeded sensor readings produced to one topic, and what they should give.

Readings come from faustapp's own generator core (:func:`faustapp.generator.sensor_records`): keys
are sensor ids, event times lie in the recent past and are shuffled back by at most
``disorder_ms`` (< grace), no malformed records. After the readings, every partition gets one
"closer" reading far enough ahead in event time that every window of the data becomes final; the
closers' own windows never close and are not part of any expectation.

The expected figures are computed here, independently of faustapp's engine, from the readings kept
per sensor (event time and value).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from bench.common import key_per_partition, partition_of
from bench.topic_writer import TopicWriter
from faustapp.generator import GeneratorConfig, sensor_records

MINUTE = 60_000
CLOSER_PREFIX = "bench-closer"


@dataclass(frozen=True)
class DataSpec:
    """Size and shape of the data set."""

    readings: int
    sensors: int
    interval_ms: float
    """Event-time step between consecutive readings (1.0 = 1,000 readings per second)."""
    partitions: int = 4
    disorder_ms: int = 3000
    grace_ms: int = 5000
    seed: int = 20241124
    start_ms: int = 0
    """Nominal event time of the first reading; 0 = two hours ago, aligned to the minute."""

    def resolved_start(self) -> int:
        if self.start_ms:
            return self.start_ms
        now = int(time.time() * 1000)
        return now - now % MINUTE - 120 * MINUTE


@dataclass(frozen=True, slots=True)
class Figures:
    """Expected figures of one window."""

    end: int
    count: int
    sum: float
    min: float
    max: float


@dataclass
class Dataset:
    """A filled topic and the readings behind it."""

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
    ts_by_sensor: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    values_by_sensor: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    @property
    def total(self) -> int:
        """Records in the topic: readings plus one closer per partition."""
        return sum(self.per_partition.values())

    def describe(self) -> dict[str, object]:
        """The data set's facts for the JSON report."""
        return {
            "topic": self.topic,
            "readings": self.spec.readings,
            "sensors": self.spec.sensors,
            "partitions": self.spec.partitions,
            "records_in_topic": self.total,
            "records_per_partition": {str(p): n for p, n in sorted(self.per_partition.items())},
            "event_rate_per_s": round(1000 / self.spec.interval_ms, 3),
            "event_time_start_ms": self.min_ts,
            "event_time_end_ms": self.max_ts,
            "event_time_span_s": round((self.max_ts - self.min_ts) / 1000, 3),
            "disorder_ms": self.spec.disorder_ms,
            "grace_ms": self.spec.grace_ms,
            "seed": self.spec.seed,
            "bad_ratio": 0.0,
            "closer_keys": sorted(self.closer_keys.values()),
            "closer_ts": self.closer_ts,
            "mean_value_bytes": round(self.value_bytes / self.total, 1) if self.total else None,
            "produce_seconds": round(self.produce_seconds, 3),
            "produce_records_per_s": round(self.total / self.produce_seconds)
            if self.produce_seconds
            else None,
        }

    # --- expectations ------------------------------------------------------------------------

    def _sorted_sensor(self, sensor: str) -> list[tuple[int, float]]:
        return sorted(zip(self.ts_by_sensor[sensor], self.values_by_sensor[sensor], strict=True))

    def _buckets(self, size_ms: int) -> Iterator[tuple[str, int, list[float]]]:
        """(sensor, aligned start, values) of every non-empty ``size_ms`` bucket."""
        for sensor in self.ts_by_sensor:
            current, values = None, []
            for ts, value in self._sorted_sensor(sensor):
                start = ts - ts % size_ms
                if start != current:
                    if values:
                        yield sensor, current, values
                    current, values = start, []
                values.append(value)
            if values:
                yield sensor, current, values

    def expected_tumbling(self, size_ms: int = MINUTE) -> dict[tuple[str, int], Figures]:
        """Every (sensor, window start) of tumbling ``size_ms`` windows."""
        return {
            (sensor, start): Figures(
                start + size_ms, len(values), math.fsum(values), min(values), max(values)
            )
            for sensor, start, values in self._buckets(size_ms)
        }

    def expected_hopping(self, size_ms: int, step_ms: int) -> dict[tuple[str, int], Figures]:
        """Hopping windows built from the tumbling ``step_ms`` buckets they are made of."""
        steps = self.expected_tumbling(step_ms)
        per = size_ms // step_ms
        out: dict[tuple[str, int], Figures] = {}
        starts: set[tuple[str, int]] = set()
        for sensor, start in steps:
            for k in range(per):
                starts.add((sensor, start - k * step_ms))
        for sensor, start in starts:
            parts = [steps.get((sensor, start + k * step_ms)) for k in range(per)]
            parts = [p for p in parts if p is not None]
            out[(sensor, start)] = Figures(
                start + size_ms,
                sum(p.count for p in parts),
                math.fsum(p.sum for p in parts),
                min(p.min for p in parts),
                max(p.max for p in parts),
            )
        return out

    def expected_sessions(self, gap_ms: int) -> dict[tuple[str, int], Figures]:
        """Sessions per sensor: readings less than ``gap_ms`` apart, [first ts, last ts]."""
        out: dict[tuple[str, int], Figures] = {}

        def close(sensor: str, points: list[tuple[int, float]]) -> None:
            values = [v for _, v in points]
            out[(sensor, points[0][0])] = Figures(
                points[-1][0], len(values), math.fsum(values), min(values), max(values)
            )

        for sensor in self.ts_by_sensor:
            session: list[tuple[int, float]] = []
            for ts, value in self._sorted_sensor(sensor):
                if session and ts - session[-1][0] >= gap_ms:
                    close(sensor, session)
                    session = []
                session.append((ts, value))
            if session:
                close(sensor, session)
        return out

    def expected_alerts(
        self, size_ms: int, z: float, min_count: int
    ) -> tuple[set[tuple[str, int, float]], set[tuple[str, int, float]]]:
        """Readings more than ``z`` stddev from the mean of their sensor's [ts - size, ts].

        Returns (alerts, borderline): borderline readings have |z| within 1e-6 of the
        threshold, where float rounding may go either way; they are checked in neither
        direction.
        """
        alerts: set[tuple[str, int, float]] = set()
        borderline: set[tuple[str, int, float]] = set()
        for sensor in self.ts_by_sensor:
            points = self._sorted_sensor(sensor)
            if len(points) < min_count:
                continue
            shift = points[0][1]
            lo = hi = 0
            n, s1, s2 = 0, 0.0, 0.0
            for ts, value in points:
                while hi < len(points) and points[hi][0] <= ts:
                    d = points[hi][1] - shift
                    n, s1, s2 = n + 1, s1 + d, s2 + d * d
                    hi += 1
                while lo < hi and points[lo][0] < ts - size_ms:
                    d = points[lo][1] - shift
                    n, s1, s2 = n - 1, s1 - d, s2 - d * d
                    lo += 1
                if n < min_count:
                    continue
                mean = s1 / n
                sd = math.sqrt(max(s2 / n - mean * mean, 0.0))
                if sd <= 0:
                    continue
                score = abs((value - shift - mean) / sd)
                if abs(score - z) < 1e-6:
                    borderline.add((sensor, ts, value))
                elif score > z:
                    alerts.add((sensor, ts, value))
        return alerts, borderline


async def create_topic(bootstrap: str, topic: str, partitions: int, timeout: float = 30) -> None:
    """Create the topic and wait until every partition has a leader."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(topic, partitions, 1)], timeout_ms=int(timeout * 1000)
        )
        for topic_error in response.topic_errors:
            code = topic_error[1]
            if code and code != TopicAlreadyExistsError.errno:
                raise for_code(code)(f"creating topic {topic!r}")
        deadline = time.monotonic() + timeout
        while True:
            described = await admin.describe_topics([topic])
            parts = described[0]["partitions"] if described else []
            if (
                described
                and described[0]["error_code"] == 0
                and len(parts) == partitions
                and all(p["leader"] >= 0 for p in parts)
            ):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {topic} has no leaders after {timeout}s")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def fill_topic(bootstrap: str, topic: str, spec: DataSpec, quiet: bool = False) -> Dataset:
    """Create ``topic`` and produce the readings and the closers as fast as aiokafka can."""
    partitions = spec.partitions
    start_ms = spec.resolved_start()
    dataset = Dataset(spec=spec, topic=topic, start_ms=start_ms)
    await create_topic(bootstrap, topic, partitions)
    config = GeneratorConfig(
        topic=topic,
        rate=0,
        count=spec.readings,
        keys=spec.sensors,
        disorder_ms=spec.disorder_ms,
        bad_ratio=0.0,
        seed=spec.seed,
        start_ms=start_ms,
        interval_ms=spec.interval_ms,
        quiet=True,
        partitions=partitions,
    )
    async with TopicWriter(bootstrap, topic, partitions) as writer:
        append = writer.append
        partition_cache: dict[bytes, int] = {}
        min_ts, max_ts = None, None
        ts_by_sensor, values_by_sensor = dataset.ts_by_sensor, dataset.values_by_sensor
        for n, record in enumerate(sensor_records(config)):
            key = record.key
            p = partition_cache.get(key)
            if p is None:
                p = partition_cache[key] = partition_of(key.decode(), partitions)
            ts = record.event_ts
            await append(p, key, record.value, ts)
            sensor = key.decode()
            ts_by_sensor[sensor].append(ts)
            values_by_sensor[sensor].append(orjson.loads(record.value)["value"])
            min_ts = ts if min_ts is None or ts < min_ts else min_ts
            max_ts = ts if max_ts is None or ts > max_ts else max_ts
            if not quiet and n and n % 200_000 == 0:
                print(f"  produced {n:,} readings", flush=True)
        # Far enough ahead that tumbling, hopping (5 min), session (gap 1 min) and sliding
        # windows of the data are all final on every partition.
        closer_ts = max_ts + 5 * MINUTE + MINUTE + spec.grace_ms + 1000
        dataset.closer_keys = key_per_partition(CLOSER_PREFIX, partitions)
        for p, key in sorted(dataset.closer_keys.items()):
            value = orjson.dumps({"sensor_id": key, "ts": closer_ts, "value": 0.0})
            await append(p, key.encode(), value, closer_ts)
        dataset.produce_seconds = await writer.flush()
    dataset.value_bytes = writer.value_bytes
    dataset.min_ts, dataset.max_ts, dataset.closer_ts = min_ts, max_ts, closer_ts
    dataset.per_partition = writer.counts
    return dataset
