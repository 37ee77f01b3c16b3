"""Pure, seedable source of sensor readings, kept free of I/O so it can be tested exactly.

The slot clock, disorder and bad-record draw are shared with the trades and logs generators.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import orjson

from faustapp.generator.config import GeneratorConfig

VALID = "valid"

_TWO_PI = 2.0 * math.pi


@dataclass(frozen=True, slots=True)
class GeneratedRecord:
    """One Kafka record to send, plus the facts a test or report needs about it."""

    key: bytes | None
    value: bytes | None
    """The record's value; ``None`` is a tombstone (a deletion on a compacted topic)."""
    event_ts: int | None
    """Event time carried by a valid record; ``None`` for malformed records and for records
    without an event time (products)."""
    kind: str
    """``"valid"`` or one of :data:`BAD_KINDS`."""
    nominal_ts: int
    """Event time of this slot before disorder; the Kafka timestamp of malformed records."""

    @property
    def is_valid(self) -> bool:
        """Lets callers split counts without knowing the kind names."""
        return self.kind == VALID


def slot_times(config: GeneratorConfig) -> Iterator[int]:
    """Nominal event time of each slot of a resolved run: ``start_ms + floor(i * interval_ms)``.

    Never decreases; unbounded when ``count`` is 0. Every dataset spends one slot per record.
    """
    assert config.start_ms is not None
    start_ms = config.start_ms
    interval_ms = config.effective_interval_ms
    slots = range(config.count) if config.count else itertools.count()
    for slot in slots:
        yield start_ms + math.floor(slot * interval_ms)


def shift_back(rng: random.Random, nominal_ts: int, disorder_ms: int) -> int:
    """The emitted event time of a slot: ``nominal_ts`` minus a uniform jitter in 0..disorder_ms."""
    return nominal_ts - rng.randint(0, disorder_ms) if disorder_ms else nominal_ts


def draw_bad_kind(rng: random.Random, bad_ratio: float, kinds: Sequence[str]) -> str | None:
    """With probability ``bad_ratio``, the kind of malformation for this slot; else ``None``."""
    if bad_ratio and rng.random() < bad_ratio:
        return rng.choice(kinds)
    return None


def _not_json(rng: random.Random, sensor_id: str, ts: int, value: float) -> bytes:
    templates = (
        f"{sensor_id} {ts} {value}",
        f'{{"sensor_id": "{sensor_id}", "ts": {ts}, "value": {value}',
        f"sensor_id={sensor_id}&ts={ts}&value={value}",
        "<reading/>",
    )
    return rng.choice(templates).encode()


def _invalid_utf8(rng: random.Random, sensor_id: str, ts: int, value: float) -> bytes:
    garbage = rng.choice((b"\xff\xfe", b"\xc3\x28", b"\xe2\x82", b"\x80"))
    return b'{"sensor_id":"%s%s","ts":%d,"value":%s}' % (
        sensor_id.encode(),
        garbage,
        ts,
        repr(value).encode(),
    )


def _missing_field(rng: random.Random, sensor_id: str, ts: int, value: float) -> bytes:
    reading: dict[str, object] = {"sensor_id": sensor_id, "ts": ts, "value": value}
    del reading[rng.choice(("sensor_id", "ts", "value"))]
    return orjson.dumps(reading)


def _wrong_type(rng: random.Random, sensor_id: str, ts: int, value: float) -> bytes:
    return orjson.dumps({"sensor_id": sensor_id, "ts": ts, "value": "abc"})


def _nan_value(rng: random.Random, sensor_id: str, ts: int, value: float) -> bytes:
    return b'{"sensor_id":"%s","ts":%d,"value":NaN}' % (sensor_id.encode(), ts)


def _infinite_value(rng: random.Random, sensor_id: str, ts: int, value: float) -> bytes:
    token = rng.choice((b"Infinity", b"-Infinity"))
    return b'{"sensor_id":"%s","ts":%d,"value":%s}' % (sensor_id.encode(), ts, token)


def _empty_value(rng: random.Random, sensor_id: str, ts: int, value: float) -> bytes:
    return b""


def _json_array(rng: random.Random, sensor_id: str, ts: int, value: float) -> bytes:
    return orjson.dumps([sensor_id, ts, value])


_BAD_PAYLOADS: dict[str, Callable[[random.Random, str, int, float], bytes]] = {
    "not_json": _not_json,
    "invalid_utf8": _invalid_utf8,
    "missing_field": _missing_field,
    "wrong_type": _wrong_type,
    "nan_value": _nan_value,
    "infinite_value": _infinite_value,
    "empty_value": _empty_value,
    "json_array": _json_array,
}

#: Every way a generated record can be malformed; each must be rejected by a correct consumer.
BAD_KINDS: tuple[str, ...] = tuple(_BAD_PAYLOADS)


class _SensorBank:
    """Per-sensor signal state, so each sensor's readings form a believable series."""

    def __init__(self, sensors: int, rng: random.Random) -> None:
        self._rng = rng
        self.base = [rng.uniform(15.0, 30.0) for _ in range(sensors)]
        self.amplitude = [rng.uniform(0.5, 5.0) for _ in range(sensors)]
        self.period_ms = [rng.uniform(300_000.0, 3_600_000.0) for _ in range(sensors)]
        self.phase = [rng.uniform(0.0, _TWO_PI) for _ in range(sensors)]
        self.drift = [0.0] * sensors

    def read(self, sensor: int, ts: int) -> float:
        """A slow sine plus a mean-reverting random walk: trends and noise, yet bounded."""
        drift = self.drift[sensor] * 0.98 + self._rng.gauss(0.0, 0.1)
        self.drift[sensor] = drift
        wave = math.sin(_TWO_PI * ts / self.period_ms[sensor] + self.phase[sensor])
        return round(self.base[sensor] + self.amplitude[sensor] * wave + drift, 3)


def sensor_records(config: GeneratorConfig) -> Iterator[GeneratedRecord]:
    """Yield the records of one run; the same resolved config always yields the same records.

    Record ``i`` occupies the nominal event-time slot
    ``nominal_i = start_ms + floor(i * interval_ms)``, which never decreases with ``i``.

    Disorder: a valid reading's emitted ``ts`` is ``nominal_i - jitter`` with ``jitter`` drawn
    uniformly from the integers ``0 .. disorder_ms``, so ``nominal_i - disorder_ms <= ts <=
    nominal_i``. Readings are shuffled back in time by at most ``disorder_ms`` and never into
    the future. Because every earlier reading has ``ts <= nominal_j <= nominal_i``, a reading is
    at most ``disorder_ms`` behind the highest event time sent before it, on the whole topic and
    therefore on each partition too. A consumer whose grace period is ``>= disorder_ms`` (and
    that sees each partition in send order) never sees a late reading.

    Each record is malformed with probability ``bad_ratio`` (kind picked uniformly from
    :data:`BAD_KINDS`); malformed records still use a slot, so ``count`` includes them.
    Keys are the sensor id (``s-0`` .. ``s-{keys-1}``) for every record.
    """
    config = config.resolved()
    rng = random.Random(config.seed)
    bank = _SensorBank(config.keys, rng)
    sensor_ids = [f"s-{index}" for index in range(config.keys)]
    keys = [sensor_id.encode() for sensor_id in sensor_ids]
    disorder_ms = config.disorder_ms
    bad_ratio = config.bad_ratio
    for nominal_ts in slot_times(config):
        sensor = rng.randrange(config.keys)
        ts = shift_back(rng, nominal_ts, disorder_ms)
        value = bank.read(sensor, ts)
        sensor_id = sensor_ids[sensor]
        kind = draw_bad_kind(rng, bad_ratio, BAD_KINDS)
        if kind is not None:
            payload = _BAD_PAYLOADS[kind](rng, sensor_id, ts, value)
            yield GeneratedRecord(keys[sensor], payload, None, kind, nominal_ts)
        else:
            payload = orjson.dumps({"sensor_id": sensor_id, "ts": ts, "value": value})
            yield GeneratedRecord(keys[sensor], payload, ts, VALID, nominal_ts)
