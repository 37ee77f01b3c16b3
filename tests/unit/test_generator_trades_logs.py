"""Trades and log lines from the generator must meet their record contracts exactly.

Records are checked by a small validator written here from the contracts, independent of the
generator's code: valid records must pass it, and each malformed kind must fail it for the
reason its name gives.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_generator import FakeAdmin, FakeProducer

from faustapp.generator import (
    APP_LOGS_TOPIC,
    BAD_KINDS,
    BAD_KINDS_BY_DATASET,
    LOG_BAD_KINDS,
    TRADE_BAD_KINDS,
    TRADES_TOPIC,
    VALID,
    GeneratedRecord,
    GeneratorConfig,
    produce,
    records_for,
)
from faustapp.generator import producer as producer_module

START_MS = 1_732_435_200_000
MINUTE_MS = 60_000
MAX_TS_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
LEVELS = {"DEBUG", "INFO", "WARN", "ERROR", "FATAL"}
ERROR_LEVELS = {"ERROR", "FATAL"}
DATASETS = ("trades", "logs")


def make_config(dataset: str, **overrides: Any) -> GeneratorConfig:
    options: dict[str, Any] = {
        "seed": 42,
        "start_ms": START_MS,
        "count": 2000,
        "bad_ratio": 0.0,
        "quiet": True,
    }
    options.update(overrides)
    return GeneratorConfig.for_dataset(dataset, **options)


def records(dataset: str, **overrides: Any) -> list[GeneratedRecord]:
    return list(records_for(make_config(dataset, **overrides)))


# --- an independent validator of the contracts -------------------------------------------


class Rejected(Exception):
    """Why a record breaks its contract: one word naming the rule."""


_ID_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f/]")


def _present(data: dict[str, Any], name: str) -> bool:
    return data.get(name) is not None


def _check_id(value: object, rule: str) -> str:
    if not isinstance(value, str):
        raise Rejected("type" if rule == "id" else rule)
    if not 1 <= len(value) <= 256 or _ID_FORBIDDEN.search(value):
        raise Rejected(rule)
    return value


def _check_number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Rejected("type")
    if not math.isfinite(value) or abs(value) > 1e15:
        raise Rejected("number")
    return float(value)


def _check_ts(value: object) -> int:
    if isinstance(value, bool):
        raise Rejected("ts")
    if isinstance(value, int):
        ts = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise Rejected("ts") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        ts = round(moment.timestamp() * 1000)
    else:
        raise Rejected("ts")
    if not 0 <= ts <= MAX_TS_MS:
        raise Rejected("ts")
    return ts


def _decode(payload: bytes, required: tuple[str, ...]) -> dict[str, Any]:
    if not payload:
        raise Rejected("empty")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected("utf8") from None
    try:
        data = json.loads(text)  # NaN and Infinity tokens parse here; the number rule refuses them
    except ValueError:
        raise Rejected("json") from None
    if not isinstance(data, dict):
        raise Rejected("not_object")
    for name in required:
        if not _present(data, name):
            raise Rejected("missing")
    return data


def check_trade(payload: bytes) -> dict[str, Any]:
    """The trade with ``ts`` in epoch ms, or :class:`Rejected`."""
    data = _decode(payload, ("symbol", "ts", "price", "qty"))
    _check_id(data["symbol"], "id")
    for name in ("price", "qty"):
        if _check_number(data[name]) <= 0:
            raise Rejected(name)
    if _present(data, "side") and data["side"] not in ("buy", "sell"):
        raise Rejected("side")
    return {**data, "ts": _check_ts(data["ts"])}


def check_log(payload: bytes) -> dict[str, Any]:
    """The log line with ``ts`` in epoch ms, or :class:`Rejected`."""
    data = _decode(payload, ("service", "ts", "level"))
    _check_id(data["service"], "id")
    for name in ("latency_ms", "status"):
        if _present(data, name):
            _check_number(data[name])
    if not isinstance(data["level"], str) or data["level"] not in LEVELS:
        raise Rejected("level")
    message = data.get("message")
    if message is not None and (not isinstance(message, str) or len(message) > 65536):
        raise Rejected("message")
    if _present(data, "latency_ms") and data["latency_ms"] < 0:
        raise Rejected("latency")
    if _present(data, "status"):
        status = data["status"]
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise Rejected("status")
    if _present(data, "host"):
        _check_id(data["host"], "host")
    return {**data, "ts": _check_ts(data["ts"])}


CHECKERS: dict[str, Callable[[bytes], dict[str, Any]]] = {"trades": check_trade, "logs": check_log}
ID_FIELDS = {"trades": "symbol", "logs": "service"}


def rejection(dataset: str, payload: bytes) -> str | None:
    try:
        CHECKERS[dataset](payload)
    except Rejected as reason:
        return str(reason)
    return None


#: The rule (or rules) each malformed kind must break, as named by the validator.
COMMON_REASONS = {
    "not_json": {"json"},
    "invalid_utf8": {"utf8"},
    "empty_value": {"empty"},
    "not_object": {"not_object"},
    "missing_field": {"missing"},
    "wrong_type": {"type"},
    "empty_id": {"id"},
    "long_id": {"id"},
    "control_char_id": {"id"},
    "slash_id": {"id"},
    "nan_number": {"number"},
    "infinite_number": {"number"},
    "huge_number": {"number"},
    "bad_ts_type": {"ts"},
    "bad_ts_text": {"ts"},
    "ts_out_of_range": {"ts"},
    "fractional_ts": {"ts"},
}
EXPECTED_REASONS = {
    "trades": {
        **COMMON_REASONS,
        "non_positive_price": {"price"},
        "non_positive_qty": {"qty"},
        "bad_side": {"side"},
    },
    "logs": {
        **COMMON_REASONS,
        "bad_level": {"level"},
        "long_message": {"message"},
        "message_not_string": {"message"},
        "negative_latency": {"latency"},
        "status_out_of_range": {"status"},
        "status_not_integer": {"status", "type"},
        "bad_host": {"host"},
    },
}


def test_the_validator_is_not_a_pushover() -> None:
    """The validator itself must accept the contracts' examples and refuse near misses."""
    trade = {"symbol": "ACME", "ts": 1732435200123, "price": 101.25, "qty": 300, "side": "buy"}
    assert check_trade(orjson.dumps(trade))["ts"] == 1732435200123
    assert (
        check_trade(orjson.dumps({**trade, "side": None, "ts": "2024-11-24T08:00:00.123Z"}))["ts"]
        == 1732435200123
    )
    log = {
        "service": "checkout",
        "ts": 1732435200123,
        "level": "ERROR",
        "message": "payment timeout",
        "latency_ms": 812.5,
        "status": 504,
        "host": "web-3",
    }
    assert check_log(orjson.dumps(log))["level"] == "ERROR"
    assert check_log(orjson.dumps({"service": "checkout", "ts": 0, "level": "INFO"}))
    for payload, reason in [
        ({**trade, "qty": 0}, "qty"),
        ({**trade, "side": "BUY"}, "side"),
        ({**trade, "symbol": "A/B"}, "id"),
        ({**trade, "price": True}, "type"),
        ({**trade, "ts": 1.5}, "ts"),
    ]:
        assert rejection("trades", orjson.dumps(payload)) == reason
    for payload, reason in [
        ({**log, "status": 200.0}, "status"),
        ({**log, "latency_ms": -0.1}, "latency"),
        ({**log, "level": "info"}, "level"),
        ({**log, "host": ""}, "host"),
        ({**log, "message": "x" * 65537}, "message"),
    ]:
        assert rejection("logs", orjson.dumps(payload)) == reason
    assert rejection("logs", b'{"service":"a","ts":1,"level":"INFO","latency_ms":NaN}') == "number"


# --- determinism and shape ---------------------------------------------------------------


@pytest.mark.parametrize("dataset", DATASETS)
def test_same_seed_gives_identical_records(dataset: str) -> None:
    config = make_config(dataset, bad_ratio=0.1)
    first = list(records_for(config))
    assert first == list(records_for(config))
    assert len({record.value for record in first}) > 1900


@pytest.mark.parametrize("dataset", DATASETS)
def test_different_seeds_give_different_records(dataset: str) -> None:
    first = [record.value for record in records(dataset, seed=1)]
    second = [record.value for record in records(dataset, seed=2)]
    assert first != second


@pytest.mark.parametrize("dataset", DATASETS)
def test_unseeded_config_resolves_to_a_replayable_one(dataset: str) -> None:
    resolved = GeneratorConfig.for_dataset(dataset, count=50).resolved()
    assert resolved.seed is not None and resolved.start_ms is not None
    assert list(records_for(resolved)) == list(records_for(resolved))


@pytest.mark.parametrize(("dataset", "count"), [("trades", 1), ("trades", 999), ("logs", 7)])
def test_count_is_respected(dataset: str, count: int) -> None:
    assert len(records(dataset, count=count, bad_ratio=0.3)) == count


@pytest.mark.parametrize("dataset", DATASETS)
def test_count_zero_is_unbounded(dataset: str) -> None:
    stream = records_for(make_config(dataset, count=0))
    assert len(list(itertools.islice(stream, 5000))) == 5000


@pytest.mark.parametrize(
    ("dataset", "topic", "keys"), [("trades", TRADES_TOPIC, 20), ("logs", APP_LOGS_TOPIC, 12)]
)
def test_dataset_defaults(dataset: str, topic: str, keys: int) -> None:
    config = GeneratorConfig.for_dataset(dataset)
    assert (config.topic, config.keys, config.dataset) == (topic, keys, dataset)
    assert (TRADES_TOPIC, APP_LOGS_TOPIC) == ("trades", "app-logs")
    assert set(BAD_KINDS_BY_DATASET[dataset]) == set(EXPECTED_REASONS[dataset])
    assert GeneratorConfig.for_dataset(dataset, keys=3, topic="t").keys == 3


def test_unknown_dataset_is_refused() -> None:
    with pytest.raises(ValueError, match="dataset"):
        GeneratorConfig(dataset="planets")
    with pytest.raises(ValueError, match="dataset"):
        GeneratorConfig.for_dataset("planets")
    with pytest.raises(ValueError, match="symbols must be >= 1"):
        GeneratorConfig.for_dataset("trades", keys=0)


# --- valid records -----------------------------------------------------------------------


@pytest.mark.parametrize("dataset", DATASETS)
def test_valid_records_meet_the_contract_and_are_keyed_by_their_id(dataset: str) -> None:
    generated = records(dataset, count=20_000, bad_ratio=0.0, keys=30)
    ids = set()
    for record in generated:
        assert record.kind == VALID and record.is_valid
        data = CHECKERS[dataset](record.value)
        assert record.key == data[ID_FIELDS[dataset]].encode()
        assert record.event_ts == data["ts"]
        ids.add(data[ID_FIELDS[dataset]])
    assert len(ids) == 30


@pytest.mark.parametrize("dataset", DATASETS)
def test_ts_is_mostly_epoch_ms_and_sometimes_iso(dataset: str) -> None:
    generated = records(dataset, count=10_000, bad_ratio=0.0)
    stamps = [orjson.loads(record.value)["ts"] for record in generated]
    iso = [stamp for stamp in stamps if isinstance(stamp, str)]
    assert 50 < len(iso) < 500
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp) for stamp in iso)


# --- event time and disorder -------------------------------------------------------------


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("disorder_ms", [0, 1, 3000])
def test_every_valid_ts_lies_in_the_disorder_window(dataset: str, disorder_ms: int) -> None:
    config = make_config(dataset, disorder_ms=disorder_ms, count=5000, bad_ratio=0.02)
    assert config.start_ms is not None
    shifts = []
    for slot, record in enumerate(records_for(config)):
        nominal = config.start_ms + math.floor(slot * config.effective_interval_ms)
        assert record.nominal_ts == nominal
        if record.is_valid:
            assert record.event_ts is not None
            assert CHECKERS[dataset](record.value)["ts"] == record.event_ts
            assert nominal - disorder_ms <= record.event_ts <= nominal
            shifts.append(nominal - record.event_ts)
    assert min(shifts) == 0
    assert max(shifts) >= disorder_ms * 0.98


@settings(max_examples=40, deadline=None)
@given(
    dataset=st.sampled_from(DATASETS),
    seed=st.integers(min_value=0, max_value=2**32),
    count=st.integers(min_value=1, max_value=300),
    disorder_ms=st.integers(min_value=0, max_value=10_000),
    interval_ms=st.one_of(st.none(), st.floats(min_value=0.0, max_value=50.0)),
    rate=st.sampled_from([0.0, 1.0, 333.0, 2000.0]),
)
def test_no_record_is_later_than_disorder_behind_the_stream(
    dataset: str, seed: int, count: int, disorder_ms: int, interval_ms: float | None, rate: float
) -> None:
    config = make_config(
        dataset,
        seed=seed,
        count=count,
        disorder_ms=disorder_ms,
        interval_ms=interval_ms,
        rate=rate,
        bad_ratio=0.0,
    )
    highest_seen: int | None = None
    for record in records_for(config):
        assert record.event_ts is not None and record.event_ts <= record.nominal_ts
        if highest_seen is not None:
            assert record.event_ts >= highest_seen - disorder_ms
        highest_seen = max(highest_seen or record.event_ts, record.event_ts)


# --- malformed records -------------------------------------------------------------------


@pytest.mark.parametrize("dataset", DATASETS)
def test_bad_ratio_one_produces_every_kind_each_for_its_reason(dataset: str) -> None:
    generated = records(dataset, bad_ratio=1.0, count=6000)
    kinds = Counter(record.kind for record in generated)
    assert set(kinds) == set(EXPECTED_REASONS[dataset])
    ids = set()
    for record in generated:
        assert not record.is_valid and record.event_ts is None
        reason = rejection(dataset, record.value)
        assert reason in EXPECTED_REASONS[dataset][record.kind], (record.kind, reason, record)
        ids.add(record.key)
    assert len(ids) > 10
    for key in ids:
        assert key is not None
        _check_id(key.decode(), "id")


@pytest.mark.parametrize("dataset", DATASETS)
def test_bad_ratio_is_roughly_honoured_and_covers_every_kind(dataset: str) -> None:
    generated = records(dataset, bad_ratio=0.2, count=20_000)
    bad = [record for record in generated if not record.is_valid]
    assert 3600 < len(bad) < 4400
    assert {record.kind for record in bad} == set(BAD_KINDS_BY_DATASET[dataset])
    for record in generated:
        assert (rejection(dataset, record.value) is None) == record.is_valid


@pytest.mark.parametrize("dataset", DATASETS)
def test_bad_records_keep_the_key_of_their_slot(dataset: str) -> None:
    valid_keys = {record.key for record in records(dataset, bad_ratio=0.0, count=3000, keys=5)}
    bad_keys = {record.key for record in records(dataset, bad_ratio=1.0, count=3000, keys=5)}
    assert bad_keys == valid_keys and len(valid_keys) == 5


def test_bad_kinds_differ_per_dataset_and_keep_the_sensor_ones() -> None:
    assert set(TRADE_BAD_KINDS) - set(LOG_BAD_KINDS) == {
        "non_positive_price",
        "non_positive_qty",
        "bad_side",
    }
    assert "bad_level" in LOG_BAD_KINDS and "bad_level" not in TRADE_BAD_KINDS
    assert BAD_KINDS_BY_DATASET["sensors"] == BAD_KINDS
    assert len(BAD_KINDS) == 8


def test_bad_kinds_look_like_their_names() -> None:
    examples: dict[str, list[bytes]] = defaultdict(list)
    for dataset in DATASETS:
        for record in records(dataset, bad_ratio=1.0, count=6000):
            examples[record.kind].append(record.value)
    assert all(value == b"" for value in examples["empty_value"])
    assert all(b"NaN" in value for value in examples["nan_number"])
    assert all(b"Infinity" in value for value in examples["infinite_number"])
    for value in examples["long_message"]:
        assert len(orjson.loads(value)["message"]) > 65536
    for value in examples["long_id"]:
        data = orjson.loads(value)
        assert len(data.get("symbol", data.get("service"))) > 256
    for value in examples["non_positive_price"]:
        assert orjson.loads(value)["price"] <= 0
    for value in examples["status_out_of_range"]:
        assert not 100 <= orjson.loads(value)["status"] <= 599
    for value in examples["ts_out_of_range"]:
        ts = orjson.loads(value)["ts"]
        assert (isinstance(ts, int) and (ts < 0 or ts > 1e15)) or ts.startswith("1969")
    for value in examples["invalid_utf8"]:
        with pytest.raises(UnicodeDecodeError):
            value.decode()
    for value in examples["not_json"]:
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(value)


# --- the producer loop, with the Kafka clients faked -------------------------------------


@pytest.fixture
def fake_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeProducer]]:
    FakeAdmin.existing, FakeAdmin.created, FakeAdmin.create_error = set(), [], 0
    FakeProducer.instances, FakeProducer.fail_every = [], 0
    monkeypatch.setattr(producer_module, "AIOKafkaAdminClient", FakeAdmin)
    monkeypatch.setattr(producer_module, "AIOKafkaProducer", FakeProducer)
    yield FakeProducer


@pytest.mark.parametrize(
    ("dataset", "topic", "describe"),
    [
        ("trades", "trades", "producing 1500 trades from 20 symbols to 'trades'"),
        ("logs", "app-logs", "producing 1500 log lines from 12 services to 'app-logs'"),
    ],
)
def test_produce_sends_the_dataset_keyed_by_id(
    fake_clients: type[FakeProducer], dataset: str, topic: str, describe: str
) -> None:
    config = make_config(dataset, rate=0, count=1500, bad_ratio=0.05, partitions=3, quiet=False)
    out = io.StringIO()
    report = asyncio.run(produce(config, "broker:9092", out=out))
    (producer,) = fake_clients.instances
    expected = list(records_for(config))
    assert [(value, key) for _, value, key, _ in producer.sent] == [
        (record.value, record.key) for record in expected
    ]
    assert [timestamp for *_, timestamp in producer.sent] == [
        record.event_ts if record.is_valid else record.nominal_ts for record in expected
    ]
    assert {sent_topic for sent_topic, *_ in producer.sent} == {topic}
    assert FakeAdmin.created == [(topic, 3, 1)]
    bad = Counter(record.kind for record in expected if not record.is_valid)
    assert (report.sent, report.acked, report.bad) == (1500, 1500, sum(bad.values()))
    assert report.bad_by_kind == dict(bad)
    assert out.getvalue().startswith(describe)
