"""Input records: strict decoding from raw Kafka bytes, so bad input is named, never guessed at."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone

import orjson

MAX_KEY_LENGTH = 256
# Beyond this, squares of differences overflow a float in a window's variance.
MAX_ABS_VALUE = 1e15
# Event times before 1970 or after year 9999 cannot be windowed meaningfully.
MAX_TS_MS = 253_402_300_799_999
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_FORBIDDEN_IN_ID = re.compile(r"[\x00-\x1f\x7f-\x9f/]")


class InvalidRecord(ValueError):
    """A record that cannot be processed; its message is the reason stored with it in the DLQ."""


@dataclass(frozen=True, slots=True)
class SensorReading:
    """One IoT reading: which sensor, when (event time, epoch ms), what value."""

    sensor_id: str
    ts: int
    value: float


def decode_reading(raw: bytes | None) -> SensorReading:
    """Parse a ``sensor-readings`` value, raising :class:`InvalidRecord` with the exact reason."""
    if raw is None or len(raw) == 0:
        raise InvalidRecord("empty value")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecord(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRecord(f"expected a JSON object, got {type(data).__name__}")
    return SensorReading(
        sensor_id=_sensor_id(data.get("sensor_id", _MISSING)),
        ts=parse_event_time(data.get("ts", _MISSING)),
        value=_finite(data.get("value", _MISSING), "value"),
    )


_MISSING = object()
_KNOWN_IDS: set[str] = set()  # ids that passed the checks once; bounded below


def decode_fields(raw: bytes | None) -> tuple[str, int, float]:
    """``(sensor_id, ts, value)`` of a reading: the hot path's decoder.

    The common shape (string id, integer ts, number value, all in range) is checked with a few
    type tests; anything else goes through :func:`decode_reading`, which accepts the same records
    and names the reason for the rest.
    """
    try:
        data = orjson.loads(raw)  # type: ignore[arg-type]
        sensor_id, ts, value = data["sensor_id"], data["ts"], data["value"]
    except (orjson.JSONDecodeError, TypeError, KeyError):
        sensor_id = ts = value = None
    if (
        type(ts) is int
        and 0 <= ts <= MAX_TS_MS
        and (type(value) is float or type(value) is int)
        and -MAX_ABS_VALUE <= value <= MAX_ABS_VALUE
        and type(sensor_id) is str
        and (sensor_id in _KNOWN_IDS or _remember_id(sensor_id))
    ):
        return sensor_id, ts, float(value)
    reading = decode_reading(raw)
    return reading.sensor_id, reading.ts, reading.value


def _remember_id(sensor_id: str) -> bool:
    _sensor_id(sensor_id)  # raises InvalidRecord for a bad id
    if len(_KNOWN_IDS) >= 1_000_000:
        _KNOWN_IDS.clear()
    _KNOWN_IDS.add(sensor_id)
    return True


def _sensor_id(raw: object) -> str:
    if raw is _MISSING:
        raise InvalidRecord("missing field 'sensor_id'")
    if not isinstance(raw, str):
        raise InvalidRecord(f"field 'sensor_id' must be a string, got {type(raw).__name__}")
    if not raw or len(raw) > MAX_KEY_LENGTH:
        raise InvalidRecord(f"field 'sensor_id' must be 1 to {MAX_KEY_LENGTH} characters")
    if _FORBIDDEN_IN_ID.search(raw):
        raise InvalidRecord("field 'sensor_id' must not contain control characters or '/'")
    return raw


def _finite(raw: object, name: str) -> float:
    if raw is _MISSING:
        raise InvalidRecord(f"missing field '{name}'")
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):  # noqa: UP038 - faster
        raise InvalidRecord(f"field '{name}' must be a number, got {type(raw).__name__}")
    value = float(raw)
    if not math.isfinite(value):
        raise InvalidRecord(f"field '{name}' must be finite, got {raw!r}")
    if abs(value) > MAX_ABS_VALUE:
        raise InvalidRecord(f"field '{name}' out of range: |{raw!r}| > {MAX_ABS_VALUE:g}")
    return value


def parse_event_time(raw: object) -> int:
    """Event time in epoch ms from an integer or an ISO-8601 string (UTC when no zone is given)."""
    if raw is _MISSING:
        raise InvalidRecord("missing field 'ts'")
    if isinstance(raw, bool):
        raise InvalidRecord("field 'ts' must be epoch milliseconds or an ISO-8601 string, got bool")
    if isinstance(raw, int):
        ts = raw
    elif isinstance(raw, float):
        if not math.isfinite(raw) or raw != int(raw):
            raise InvalidRecord(f"field 'ts' must be whole epoch milliseconds, got {raw!r}")
        ts = int(raw)
    elif isinstance(raw, str):
        ts = _iso_to_ms(raw)
    else:
        raise InvalidRecord(
            f"field 'ts' must be epoch milliseconds or an ISO-8601 string, got {type(raw).__name__}"
        )
    if not 0 <= ts <= MAX_TS_MS:
        raise InvalidRecord(f"field 'ts' out of range: {ts}")
    return ts


def _iso_to_ms(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidRecord(f"field 'ts' is not an ISO-8601 time: {text[:64]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    elapsed = moment - _EPOCH
    return elapsed.days * 86_400_000 + elapsed.seconds * 1000 + elapsed.microseconds // 1000
