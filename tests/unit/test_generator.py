"""The generator's data must be exactly what consumers and benchmarks are told to expect."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import math
from collections import Counter, defaultdict
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka.admin import NewTopic
from aiokafka.errors import KafkaTimeoutError, TopicAlreadyExistsError
from hypothesis import given, settings
from hypothesis import strategies as st

from faustapp.generator import (
    BAD_KINDS,
    UNPACED_INTERVAL_MS,
    VALID,
    GeneratedRecord,
    GeneratorConfig,
    ProduceReport,
    TokenBucket,
    batch_size_for,
    produce,
    sensor_records,
)
from faustapp.generator import producer as producer_module
from faustapp.topics import SENSOR_READINGS

START_MS = 1_732_435_200_000


def make_config(**overrides: Any) -> GeneratorConfig:
    options: dict[str, Any] = {
        "seed": 42,
        "start_ms": START_MS,
        "count": 2000,
        "keys": 50,
        "quiet": True,
    }
    options.update(overrides)
    return GeneratorConfig(**options)


def valid_reading(payload: bytes, *, lenient: bool = False) -> dict[str, object] | None:
    """Decode the way a strict consumer would; ``lenient`` also accepts NaN/Infinity tokens."""
    try:
        reading = json.loads(payload) if lenient else orjson.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(reading, dict):
        return None
    sensor_id, ts, value = reading.get("sensor_id"), reading.get("ts"), reading.get("value")
    if not isinstance(sensor_id, str):
        return None
    if not isinstance(ts, int) or isinstance(ts, bool):
        return None
    if not isinstance(value, float) or not math.isfinite(value):
        return None
    return reading


def nominal_ts(config: GeneratorConfig, slot: int) -> int:
    assert config.start_ms is not None
    return config.start_ms + math.floor(slot * config.effective_interval_ms)


# --- determinism and shape ---------------------------------------------------------------


def test_same_seed_gives_identical_records() -> None:
    config = make_config(bad_ratio=0.05)
    assert list(sensor_records(config)) == list(sensor_records(config))


def test_different_seeds_give_different_records() -> None:
    first = [record.value for record in sensor_records(make_config(seed=1))]
    second = [record.value for record in sensor_records(make_config(seed=2))]
    assert first != second


def test_unseeded_config_resolves_to_a_replayable_one() -> None:
    resolved = GeneratorConfig(count=10).resolved()
    assert resolved.seed is not None and resolved.start_ms is not None
    assert resolved.resolved() is resolved
    assert list(sensor_records(resolved)) == list(sensor_records(resolved))


@pytest.mark.parametrize("count", [1, 7, 1000])
def test_count_is_respected(count: int) -> None:
    assert sum(1 for _ in sensor_records(make_config(count=count, bad_ratio=0.3))) == count


def test_count_zero_is_unbounded() -> None:
    records = sensor_records(make_config(count=0))
    assert len(list(itertools.islice(records, 5000))) == 5000


def test_valid_records_are_keyed_by_their_sensor_id() -> None:
    config = make_config(keys=17, count=3000)
    seen = set()
    for record in sensor_records(config):
        assert record.kind == VALID and record.is_valid
        reading = valid_reading(record.value)
        assert reading is not None
        assert record.key == str(reading["sensor_id"]).encode()
        assert record.event_ts == reading["ts"]
        seen.add(reading["sensor_id"])
    assert seen == {f"s-{index}" for index in range(17)}


def test_bad_records_are_keyed_by_a_known_sensor() -> None:
    keys = {f"s-{index}".encode() for index in range(5)}
    for record in sensor_records(make_config(keys=5, bad_ratio=1.0)):
        assert record.key in keys
        assert record.event_ts is None


def test_values_are_finite_rounded_and_vary_per_sensor() -> None:
    config = make_config(keys=5, count=5000, bad_ratio=0.0)
    values_by_sensor: dict[bytes | None, list[float]] = defaultdict(list)
    for record in sensor_records(config):
        value = orjson.loads(record.value)["value"]
        assert isinstance(value, float) and math.isfinite(value)
        assert round(value, 3) == value
        assert -20.0 < value < 60.0
        values_by_sensor[record.key].append(value)
    for values in values_by_sensor.values():
        assert len(set(values)) > len(values) // 2
    means = [sum(values) / len(values) for values in values_by_sensor.values()]
    assert len({round(mean, 1) for mean in means}) > 1


# --- event time and disorder -------------------------------------------------------------


@pytest.mark.parametrize("disorder_ms", [0, 1, 3000])
def test_every_valid_ts_lies_in_the_disorder_window(disorder_ms: int) -> None:
    config = make_config(disorder_ms=disorder_ms, rate=2000, count=5000, bad_ratio=0.01)
    for slot, record in enumerate(sensor_records(config)):
        nominal = nominal_ts(config, slot)
        assert record.nominal_ts == nominal
        if record.is_valid:
            assert record.event_ts is not None
            assert nominal - disorder_ms <= record.event_ts <= nominal


def test_disorder_is_actually_used() -> None:
    config = make_config(disorder_ms=3000, count=5000, bad_ratio=0.0)
    shifts = [record.nominal_ts - (record.event_ts or 0) for record in sensor_records(config)]
    assert min(shifts) < 50
    assert max(shifts) > 2950


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    count=st.integers(min_value=1, max_value=400),
    disorder_ms=st.integers(min_value=0, max_value=10_000),
    interval_ms=st.one_of(st.none(), st.floats(min_value=0.0, max_value=50.0)),
    rate=st.sampled_from([0.0, 1.0, 333.0, 2000.0]),
)
def test_no_reading_is_later_than_disorder_behind_the_stream(
    seed: int, count: int, disorder_ms: int, interval_ms: float | None, rate: float
) -> None:
    """A consumer with grace >= disorder_ms must never have to drop a reading as late."""
    config = make_config(
        seed=seed,
        count=count,
        disorder_ms=disorder_ms,
        interval_ms=interval_ms,
        rate=rate,
        bad_ratio=0.0,
    )
    highest_seen: int | None = None
    previous_nominal = None
    for slot, record in enumerate(sensor_records(config)):
        assert record.nominal_ts == nominal_ts(config, slot)
        if previous_nominal is not None:
            assert record.nominal_ts >= previous_nominal
        previous_nominal = record.nominal_ts
        assert record.event_ts is not None
        assert record.event_ts <= record.nominal_ts
        if highest_seen is not None:
            assert record.event_ts >= highest_seen - disorder_ms
        highest_seen = max(highest_seen or record.event_ts, record.event_ts)


@pytest.mark.parametrize(
    ("rate", "interval_ms", "expected"),
    [(2000.0, None, 0.5), (1.0, None, 1000.0), (0.0, None, UNPACED_INTERVAL_MS), (0.0, 7.5, 7.5)],
)
def test_interval_tracks_the_rate_unless_given(
    rate: float, interval_ms: float | None, expected: float
) -> None:
    assert make_config(rate=rate, interval_ms=interval_ms).effective_interval_ms == expected


# --- malformed records -------------------------------------------------------------------


def test_bad_ratio_one_produces_every_kind_and_nothing_valid() -> None:
    records = list(sensor_records(make_config(bad_ratio=1.0, count=4000)))
    kinds = Counter(record.kind for record in records)
    assert set(kinds) == set(BAD_KINDS)
    for record in records:
        assert not record.is_valid
        assert valid_reading(record.value) is None, record
        assert valid_reading(record.value, lenient=True) is None, record


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_each_bad_kind_is_rejected(kind: str) -> None:
    samples = [
        record
        for record in sensor_records(make_config(bad_ratio=1.0, count=3000))
        if record.kind == kind
    ]
    assert samples, f"no {kind} record in 3000 bad records"
    for record in samples:
        assert valid_reading(record.value) is None
        assert valid_reading(record.value, lenient=True) is None


def test_bad_kinds_look_like_their_names() -> None:
    examples: dict[str, GeneratedRecord] = {}
    for record in sensor_records(make_config(bad_ratio=1.0, count=3000)):
        examples.setdefault(record.kind, record)
    assert examples["empty_value"].value == b""
    assert b"NaN" in examples["nan_value"].value
    assert b"Infinity" in examples["infinite_value"].value
    assert orjson.loads(examples["wrong_type"].value)["value"] == "abc"
    assert isinstance(orjson.loads(examples["json_array"].value), list)
    assert len(orjson.loads(examples["missing_field"].value)) == 2
    with pytest.raises(UnicodeDecodeError):
        examples["invalid_utf8"].value.decode()
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(examples["not_json"].value)


def test_bad_ratio_zero_gives_only_valid_records() -> None:
    for record in sensor_records(make_config(bad_ratio=0.0, count=5000)):
        assert record.kind == VALID
        assert valid_reading(record.value) is not None


def test_bad_ratio_is_roughly_honoured() -> None:
    records = list(sensor_records(make_config(bad_ratio=0.1, count=20_000)))
    bad = sum(1 for record in records if not record.is_valid)
    assert 1600 < bad < 2400


# --- options ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"rate": -1.0},
        {"rate": math.inf},
        {"count": -1},
        {"keys": 0},
        {"disorder_ms": -1},
        {"bad_ratio": 1.5},
        {"bad_ratio": -0.1},
        {"bad_ratio": math.nan},
        {"interval_ms": -1.0},
        {"partitions": 0},
        {"topic": ""},
    ],
)
def test_invalid_options_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        make_config(**overrides)


def test_defaults_target_the_sensor_readings_topic() -> None:
    assert GeneratorConfig().topic == SENSOR_READINGS


# --- pacing ------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_holds_the_average_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2000.0, capacity=20, clock=clock)
    for _ in range(1000):
        clock.now += bucket.reserve(20)
    elapsed = clock.now - 100.0
    assert elapsed == pytest.approx((1000 * 20 - 20) / 2000.0)


def test_token_bucket_caps_the_burst_after_a_stall() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=100.0, capacity=10, clock=clock)
    clock.now += 60.0
    assert bucket.reserve(10) == 0.0
    assert bucket.reserve(10) == pytest.approx(0.1)


@pytest.mark.parametrize(("rate", "expected"), [(0.0, 1000), (0.5, 1), (2000.0, 20), (1e7, 1000)])
def test_batch_size_follows_rate(rate: float, expected: int) -> None:
    assert batch_size_for(rate) == expected


# --- producer loop against fakes ---------------------------------------------------------


class FakeAdmin:
    existing: set[str] = set()
    created: list[tuple[str, int, int]] = []
    create_error: int = 0

    def __init__(self, **kwargs: object) -> None:
        pass

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def list_topics(self) -> list[str]:
        return sorted(self.existing)

    async def create_topics(self, topics: list[NewTopic]) -> SimpleNamespace:
        for topic in topics:
            FakeAdmin.created.append((topic.name, topic.num_partitions, topic.replication_factor))
        return SimpleNamespace(
            topic_errors=[(topic.name, self.create_error, None) for topic in topics]
        )


class FakeProducer:
    instances: list[FakeProducer] = []
    fail_every: int = 0

    def __init__(self, **kwargs: object) -> None:
        self.options = kwargs
        self.sent: list[tuple[str, bytes, bytes | None, int | None]] = []
        self.stopped = False
        FakeProducer.instances.append(self)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True

    async def send(
        self, topic: str, value: bytes, key: bytes | None = None, timestamp_ms: int | None = None
    ) -> asyncio.Future[object]:
        self.sent.append((topic, value, key, timestamp_ms))
        delivery: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if self.fail_every and len(self.sent) % self.fail_every == 0:
            delivery.set_exception(KafkaTimeoutError("no ack"))
        else:
            delivery.set_result(None)
        return delivery


@pytest.fixture
def fake_kafka(monkeypatch: pytest.MonkeyPatch) -> type[FakeProducer]:
    FakeAdmin.existing, FakeAdmin.created, FakeAdmin.create_error = set(), [], 0
    FakeProducer.instances, FakeProducer.fail_every = [], 0
    monkeypatch.setattr(producer_module, "AIOKafkaAdminClient", FakeAdmin)
    monkeypatch.setattr(producer_module, "AIOKafkaProducer", FakeProducer)
    return FakeProducer


def test_produce_sends_every_record_with_event_time(fake_kafka: type[FakeProducer]) -> None:
    config = make_config(rate=0, count=3000, bad_ratio=0.05, partitions=6)
    report = asyncio.run(produce(config, "broker:9092"))
    (producer,) = fake_kafka.instances
    expected = list(sensor_records(config))
    assert [(value, key) for _, value, key, _ in producer.sent] == [
        (record.value, record.key) for record in expected
    ]
    assert [timestamp for *_, timestamp in producer.sent] == [
        record.event_ts if record.is_valid else record.nominal_ts for record in expected
    ]
    assert {topic for topic, *_ in producer.sent} == {SENSOR_READINGS}
    assert producer.options["acks"] == "all"
    assert producer.options["enable_idempotence"] is True
    assert producer.options["linger_ms"] == 5
    assert producer.stopped
    assert FakeAdmin.created == [(SENSOR_READINGS, 6, 1)]
    bad = sum(1 for record in expected if not record.is_valid)
    assert (report.sent, report.acked, report.failed, report.bad) == (3000, 3000, 0, bad)
    assert sum(report.bad_by_kind.values()) == bad
    assert not report.interrupted
    assert (report.seed, report.start_ms) == (42, START_MS)


def test_produce_leaves_an_existing_topic_alone(fake_kafka: type[FakeProducer]) -> None:
    FakeAdmin.existing = {SENSOR_READINGS}
    asyncio.run(produce(make_config(rate=0, count=10), "broker:9092"))
    assert FakeAdmin.created == []


def test_produce_ignores_a_topic_created_concurrently(fake_kafka: type[FakeProducer]) -> None:
    FakeAdmin.create_error = TopicAlreadyExistsError.errno
    report = asyncio.run(produce(make_config(rate=0, count=10), "broker:9092"))
    assert report.acked == 10


def test_produce_counts_failed_deliveries(fake_kafka: type[FakeProducer]) -> None:
    fake_kafka.fail_every = 10
    report = asyncio.run(produce(make_config(rate=0, count=100), "broker:9092"))
    assert (report.sent, report.acked, report.failed) == (100, 90, 10)
    assert report.first_error is not None and "KafkaTimeoutError" in report.first_error


def test_produce_stops_cleanly_when_asked(fake_kafka: type[FakeProducer]) -> None:
    async def run() -> ProduceReport:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.3, stop.set)
        return await produce(
            make_config(rate=1000, count=0, quiet=False), "b:1", stop=stop, out=out
        )

    out = io.StringIO()
    report = asyncio.run(run())
    (producer,) = fake_kafka.instances
    assert report.interrupted
    assert 100 <= report.sent <= 600
    assert report.sent == report.acked == len(producer.sent)
    assert producer.stopped
    assert out.getvalue().splitlines()[-1].startswith("interrupted: sent ")


def test_produce_paces_to_the_rate(fake_kafka: type[FakeProducer]) -> None:
    out = io.StringIO()
    loop_time: list[float] = []

    async def run() -> ProduceReport:
        started = asyncio.get_running_loop().time()
        report = await produce(
            make_config(rate=2000, count=2400, bad_ratio=0.0, quiet=False), "b:1", out=out
        )
        loop_time.append(asyncio.get_running_loop().time() - started)
        return report

    report = asyncio.run(run())
    assert 1.0 <= loop_time[0] < 3.0
    assert report.acked == 2400
    lines = out.getvalue().splitlines()
    assert any(line.startswith("sent ") and line.endswith("bad 0") for line in lines)
    assert lines[-1].startswith("done: sent 2400/2400")
