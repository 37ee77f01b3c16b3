"""A deterministic corpus of malformed (and a few tricky but valid) ``sensor-readings`` records.

Every record carries its ``kind``, whether it is ``valid``, and for invalid ones the words its
dead-letter reason must contain (taken from README's list of what is rejected and why). Valid
records carry the :class:`Reading` an oracle must count, or ``late=True`` when they fall in a
window that is certainly final by the time they arrive (event times in 1970/2001 on a partition
whose stream time is already in the recent past).

Nothing here depends on faustapp's code: the expectations come from the documented contract.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import orjson

from support.sensors import MINUTE, Reading, partition_of

MAX_ID_LENGTH = 256
MAX_ABS_VALUE = 1e15
SKEW_MS = 3_600_000  # FAUSTAPP_MAX_FUTURE_SKEW_MS default
# The broker's message.max.bytes default is 1048588 (a whole record batch): a value of 1,000,000
# bytes plus key and batch overhead fits, and is still "a 1 MB value".
HUGE_VALUE_BYTES = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
YEAR_3000_MS = 32_503_680_000_000  # 3000-01-01T00:00:00Z


@dataclass(frozen=True)
class CorpusRecord:
    """One record to produce, with what faustapp must do with it."""

    kind: str
    key: bytes | None
    value: bytes | None
    valid: bool
    reason: tuple[str, ...] = ()
    """Invalid: lower-case words the DLQ ``error`` must all contain."""
    reading: Reading | None = None
    """Valid: what an oracle counts (or what is late)."""
    late: bool = False
    """Valid, but its window is final when it arrives: it belongs in ``faustapp-late``."""
    key_kind: str = "sensor"

    @property
    def rekeyed(self) -> bool:
        """Valid, but its key is not its sensor id: the worker forwards it to its partition."""
        return self.valid and (self.key is None or self.key != self.reading.sensor_id.encode())


def iso(ts_ms: int, *, zone: str = "Z") -> str:
    """ISO-8601 text of an epoch-ms time, exact to the millisecond ("Z", "+02:00" or "")."""
    moment = _EPOCH + timedelta(milliseconds=ts_ms)
    if zone == "Z":
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"
    if zone == "":
        return moment.replace(tzinfo=None).isoformat(timespec="milliseconds")
    sign = 1 if zone[0] == "+" else -1
    hours, minutes = (int(x) for x in zone[1:].split(":"))
    offset = timezone(sign * timedelta(hours=hours, minutes=minutes))
    return moment.astimezone(offset).isoformat(timespec="milliseconds")


def _obj(sensor_id: object, ts: object, value: object, **extra: object) -> bytes:
    return orjson.dumps({"sensor_id": sensor_id, "ts": ts, "value": value, **extra})


# --- invalid values ------------------------------------------------------------------------

Builder = Callable[[random.Random, str, int, int], tuple[str, bytes | None, tuple[str, ...]]]
"""(rng, a sensor id, a sane event time, worker clock "now") -> (kind, value, reason words)."""

_BAD_JSON = [
    b'{"sensor_id": "s", "ts": 1, "value": 1',
    b'{"sensor_id": "s", "ts": 1, "value": 1,}',
    b"{'sensor_id': 's', 'ts': 1, 'value': 1}",
    b'{sensor_id: "s", ts: 1, value: 1}',
    b"not json at all",
    b"{",
    b"}",
    b"[",
    b'{"sensor_id": "s" "ts": 1}',
    b'{"sensor_id": "s", "ts": 1, "value": 1} trailing',
    b'{"sensor_id": "s", "ts": 1, "value": 1}{"sensor_id": "s"}',
    b'{"sensor_id": "s", /* c */ "ts": 1, "value": 1}',
    b'{"sensor_id": "s", "ts": 01, "value": 1}',
    b'{"sensor_id": "s", "ts": 1, "value": .5}',
    b'{"sensor_id": "s", "ts": 1, "value": +1}',
    b'{"sensor_id": "s", "ts": 1, "value": 0x10}',
    b'{"sensor_id": "s\\x41", "ts": 1, "value": 1}',
    b'{"sensor_id": "\\ud800", "ts": 1, "value": 1}',
    b'{"sensor_id": "s", "ts": 1, "value": 1e400}',
    b'{"sensor_id": "s", "ts": 1, "value": -1e400}',
    b"   ",
    b"\x00",
    b"\n\t",
    b'"unterminated',
    b"tru",
    b"nul",
]

_BAD_UTF8 = [
    b"\xff\xfe\x00garbage",
    b'{"sensor_id": "s\xff", "ts": 1, "value": 1}',
    b'{"sensor_id": "\xc0\xaf", "ts": 1, "value": 1}',
    b'{"sensor_id": "\x80", "ts": 1, "value": 1}',
    b'{"sensor_id": "\xed\xa0\x80", "ts": 1, "value": 1}',
    b'{"sensor_id": "\xf8\x88\x80\x80\x80", "ts": 1, "value": 1}',
    b'{"sensor_id": "s", "ts": 1, "value": 1, "note": "\xe2\x82"}',
    b"\xfe\xff\x00{\x00}",
]


def _invalid_json(rng: random.Random, sid: str, ts: int, now: int):
    return "invalid_json", rng.choice(_BAD_JSON), ("json",)


def _random_garbage(rng: random.Random, sid: str, ts: int, now: int):
    # Printable ASCII noise that never starts a JSON value by accident.
    text = "".join(rng.choice("abcxyz@#%&?!<>") for _ in range(rng.randint(1, 40)))
    return "invalid_json", text.encode(), ("json",)


def _truncated(rng: random.Random, sid: str, ts: int, now: int):
    whole = _obj(sid, ts, round(rng.uniform(-100, 100), 3))
    return "invalid_json", whole[: rng.randint(1, len(whole) - 1)], ("json",)


def _invalid_utf8(rng: random.Random, sid: str, ts: int, now: int):
    return "invalid_utf8", rng.choice(_BAD_UTF8), ("json",)


def _utf8_in_valid_record(rng: random.Random, sid: str, ts: int, now: int):
    # A record that would be valid but for one broken byte inside its sensor id.
    raw = _obj(sid, ts, 1.5)
    cut = raw.index(sid.encode()) + 1
    return (
        "invalid_utf8",
        raw[:cut] + rng.choice([b"\xff", b"\xc3", b"\x80"]) + raw[cut:],
        ("json",),
    )


def _bom(rng: random.Random, sid: str, ts: int, now: int):
    return "invalid_utf8", b"\xef\xbb\xbf" + _obj(sid, ts, 1.0), ("json",)


def _empty(rng: random.Random, sid: str, ts: int, now: int):
    return "empty_value", b"", ("empty",)


def _tombstone(rng: random.Random, sid: str, ts: int, now: int):
    return "null_value", None, ("empty",)


def _not_object(rng: random.Random, sid: str, ts: int, now: int):
    value = rng.choice(
        [
            [sid, ts, 1.0],
            [],
            "a string",
            "",
            42,
            -1.5,
            True,
            False,
            None,
            [{"sensor_id": sid, "ts": ts, "value": 1.0}],
        ]
    )
    return "not_object", orjson.dumps(value), ("object",)


def _missing(name: str) -> Builder:
    def build(rng: random.Random, sid: str, ts: int, now: int):
        data = {"sensor_id": sid, "ts": ts, "value": 1.0}
        del data[name]
        if rng.random() < 0.3:
            data["Value" if name == "value" else name.upper()] = 1  # a near miss is still missing
        return f"missing_{name}", orjson.dumps(data), ("missing", f"'{name}'")

    return build


def _missing_all(rng: random.Random, sid: str, ts: int, now: int):
    return "missing_sensor_id", b"{}", ("missing", "'sensor_id'")


_WRONG = {
    "string": lambda rng: rng.choice(["12", "21.5", "abc", "NaN", "1e3", " "]),
    "bool": lambda rng: rng.choice([True, False]),
    "null": lambda rng: None,
    "array": lambda rng: rng.choice([[], [1], [1.0, 2.0], ["x"]]),
    "object": lambda rng: rng.choice([{}, {"v": 1}, {"value": 21.5}]),
    "number": lambda rng: rng.choice([0, 17, -3.5, 1e3]),
}

# ts accepts ISO-8601 strings, so its "string" case is text that is not a time.
_NOT_A_TIME = ["yesterday", "", "12:00", "2024-13-45T00:00:00Z", "now", "1732435200000", "T"]


def _wrong_type(name: str, type_name: str) -> Builder:
    def build(rng: random.Random, sid: str, ts: int, now: int):
        data: dict[str, object] = {"sensor_id": sid, "ts": ts, "value": 1.0}
        if name == "ts" and type_name == "string":
            data[name] = rng.choice(_NOT_A_TIME)
        else:
            data[name] = _WRONG[type_name](rng)
        words = (f"'{name}'", "string") if name == "sensor_id" else (f"'{name}'",)
        if name == "value":
            words = ("'value'", "number")
        return f"wrong_type_{name}_{type_name}", orjson.dumps(data), words

    return build


def _fractional_ts(rng: random.Random, sid: str, ts: int, now: int):
    return "wrong_type_ts_fraction", _obj(sid, ts + 0.5, 1.0), ("'ts'", "whole")


def _non_finite(rng: random.Random, sid: str, ts: int, now: int):
    token = rng.choice(["NaN", "Infinity", "-Infinity", "nan", "inf", "-inf"])
    field_name = rng.choice(["value", "value", "ts"])
    sensor = orjson.dumps(sid).decode()
    if field_name == "value":
        text = f'{{"sensor_id": {sensor}, "ts": {ts}, "value": {token}}}'
    else:
        text = f'{{"sensor_id": {sensor}, "ts": {token}, "value": 1.0}}'
    return f"non_finite_{field_name}", text.encode(), ("json",)


def _raw(sid: str, ts: str, value: str) -> bytes:
    """JSON text with number tokens written as given (orjson cannot write ints beyond 64 bits)."""
    return f'{{"sensor_id": {orjson.dumps(sid).decode()}, "ts": {ts}, "value": {value}}}'.encode()


def _huge_value(rng: random.Random, sid: str, ts: int, now: int):
    value = rng.choice(
        ["1e300", "-1e300", "1e16", "-1e16", "1.0000001e15", str(2**64), str(-(2**70)), "9.9e307"]
    )
    return "huge_value", _raw(sid, str(ts), value), ("'value'", "range")


def _huge_ts(rng: random.Random, sid: str, ts: int, now: int):
    bad = rng.choice(["1e300", str(10**20), str(2**62), "253402300800000", str(10**19)])
    return "huge_ts", _raw(sid, bad, "1.0"), ("'ts'", "range")


def _ts_before_1970(rng: random.Random, sid: str, ts: int, now: int):
    bad = rng.choice(
        [
            -1,
            -86_400_000,
            -rng.randint(2, 10**12),
            "1969-12-31T23:59:59.999Z",
            "1900-01-01T00:00:00Z",
            "0001-01-01T00:00:00+00:00",
        ]
    )
    return "ts_before_1970", _obj(sid, bad, 1.0), ("'ts'", "range")


def _ts_after_9999(rng: random.Random, sid: str, ts: int, now: int):
    bad = rng.choice(["10000-01-01T00:00:00Z", "99999-12-31T00:00:00Z"])
    return "ts_after_9999", _obj(sid, bad, 1.0), ("'ts'",)


def _ts_far_future(rng: random.Random, sid: str, ts: int, now: int):
    bad = rng.choice(
        [
            YEAR_3000_MS,
            iso(YEAR_3000_MS),
            "9999-12-31T23:59:59.999Z",
            now + 2 * SKEW_MS,  # now + 2 hours
            iso(now + 2 * SKEW_MS),
            now + 30 * 86_400_000,
        ]
    )
    return "ts_far_future", _obj(sid, bad, 1.0), ("ahead",)


_CONTROL = ["\x00", "\x01", "\n", "\r", "\t", "\x1b", "\x1f", "\x7f", "\x85", "\x9f"]


def _id_control(rng: random.Random, sid: str, ts: int, now: int):
    ch = rng.choice(_CONTROL)
    where = rng.randint(0, len(sid))
    bad = sid[:where] + ch + sid[where:]
    return "sensor_id_control", _obj(bad, ts, 1.0), ("'sensor_id'", "control")


def _id_slash(rng: random.Random, sid: str, ts: int, now: int):
    bad = rng.choice([f"{sid}/x", "/", f"/{sid}", f"{sid}/", "a/../b"])
    return "sensor_id_slash", _obj(bad, ts, 1.0), ("'sensor_id'", "/")


def _id_too_long(rng: random.Random, sid: str, ts: int, now: int):
    bad = "x" * rng.choice([MAX_ID_LENGTH + 1, 1000, 10_000])
    return "sensor_id_too_long", _obj(bad, ts, 1.0), ("'sensor_id'", "256")


def _id_empty(rng: random.Random, sid: str, ts: int, now: int):
    return "sensor_id_empty", _obj("", ts, 1.0), ("'sensor_id'", "256")


BUILDERS: list[Builder] = [
    _invalid_json,
    _random_garbage,
    _truncated,
    _invalid_utf8,
    _utf8_in_valid_record,
    _bom,
    _empty,
    _tombstone,
    _not_object,
    *(_missing(name) for name in ("sensor_id", "ts", "value")),
    _missing_all,
    *(_wrong_type("sensor_id", t) for t in ("number", "bool", "null", "array", "object")),
    *(_wrong_type("ts", t) for t in ("string", "bool", "null", "array", "object")),
    _fractional_ts,
    *(_wrong_type("value", t) for t in ("string", "bool", "null", "array", "object")),
    _non_finite,
    _huge_value,
    _huge_ts,
    _ts_before_1970,
    _ts_after_9999,
    _ts_far_future,
    _id_control,
    _id_slash,
    _id_too_long,
    _id_empty,
]

KEY_KINDS = ("sensor", "null", "binary", "empty", "other")


def _key(kind: str, sid: str, rng: random.Random) -> bytes | None:
    if kind == "sensor":
        return sid.encode()
    if kind == "null":
        return None
    if kind == "binary":
        return rng.choice([b"\xff\xfe\x00\x01", b"\x80", b"\xc3\x28", bytes(range(256))[::7]])
    if kind == "empty":
        return b""
    return f"other-{rng.randint(0, 999)}".encode()


def malformed(
    count: int, *, start_ms: int, minutes: int, now_ms: int, seed: int = 0, prefix: str = "bad"
) -> list[CorpusRecord]:
    """``count`` invalid records cycling through every kind, with every kind of key.

    ``start_ms``/``minutes`` give sane event times for the fields that are not the broken one;
    ``now_ms`` is the worker's clock, for the "more than the skew ahead" kinds.
    """
    rng = random.Random(seed)
    out = []
    for i in range(count):
        build = BUILDERS[i % len(BUILDERS)]
        sid = f"{prefix}-{rng.randint(0, 49)}"
        ts = start_ms + rng.randrange(minutes * MINUTE)
        kind, value, reason = build(rng, sid, ts, now_ms)
        key_kind = KEY_KINDS[(i // len(BUILDERS)) % len(KEY_KINDS)]
        if value is None and key_kind == "null":
            key_kind = "binary"  # Kafka clients refuse a record with neither key nor value
        out.append(
            CorpusRecord(kind, _key(key_kind, sid, rng), value, False, reason, key_kind=key_kind)
        )
    return out


# --- valid but unusual ---------------------------------------------------------------------


def tricky_valid(*, start_ms: int, seed: int = 0, prefix: str = "edge") -> list[CorpusRecord]:
    """Valid records that look suspicious, all in the minute ``[start_ms, start_ms + 1 min)``.

    Put that minute last in a test's range and send them after the test's other readings: then
    they move no stream time past those readings, and nothing before the closing readings can
    make them late, even those the worker forwards to another partition first (null, binary or
    foreign keys).
    """
    rng = random.Random(seed)
    out: list[CorpusRecord] = []

    def add(kind: str, sid: str, value: float, encode: Callable[[int], bytes], key_kind="sensor"):
        ts = start_ms + rng.randrange(MINUTE - 1000)
        out.append(
            CorpusRecord(
                kind,
                _key(key_kind, sid, rng),
                encode(ts),
                True,
                reading=Reading(sid, ts, float(value)),
                key_kind=key_kind,
            )
        )

    for value in (-40.5, -273.15, -0.0, -1e-9, -MAX_ABS_VALUE / 1e3, -99.999):
        add(
            "negative_value",
            f"{prefix}-neg",
            value,
            lambda ts, v=value: _obj(f"{prefix}-neg", ts, v),
        )
    for value in (MAX_ABS_VALUE, -MAX_ABS_VALUE):
        add(
            "boundary_value",
            f"{prefix}-bound",
            value,
            lambda ts, v=value: _obj(f"{prefix}-bound", ts, v),
        )
    for value in (0, 21, -7, 10**12):
        add(
            "integer_value",
            f"{prefix}-int",
            value,
            lambda ts, v=value: _obj(f"{prefix}-int", ts, v),
        )
    for zone in ("Z", "+02:00", "-05:30", ""):
        sid = f"{prefix}-iso"
        add("iso_ts", sid, 3.25, lambda ts, z=zone, s=sid: _obj(s, iso(ts, zone=z), 3.25))
    add("float_ts", f"{prefix}-fts", 4.0, lambda ts: _obj(f"{prefix}-fts", float(ts), 4.0))
    add(
        "extra_fields",
        f"{prefix}-extra",
        5.0,
        lambda ts: _obj(f"{prefix}-extra", ts, 5.0, unit="C", value2="x", nested={"a": [1]}),
    )
    add(
        "whitespace",
        f"{prefix}-ws",
        6.0,
        lambda ts: b"\n  " + _obj(f"{prefix}-ws", ts, 6.0).replace(b",", b" ,\t") + b"  \n",
    )
    for sid in (
        f"{prefix}-\u00fcnicode-\u6e29\u5ea6-\U0001f321",
        f"{prefix} with spaces",
        f"{prefix}-" + "y" * (MAX_ID_LENGTH - len(prefix) - 1),
        f"{prefix}-" + "\u00e9" * (MAX_ID_LENGTH - len(prefix) - 1),
        f"{prefix}-%2F-looks-encoded",
        f"{prefix}-\\back",
    ):
        add("odd_sensor_id", sid, 7.0, lambda ts, s=sid: _obj(s, ts, 7.0))
    # Keys that are not the sensor id: the value decides (README), the worker forwards them.
    for n in range(12):
        kind = ("null", "binary", "empty", "other")[n % 4]
        sid = f"{prefix}-rekey-{n % 3}"
        value = round(rng.uniform(-50, 50), 3)
        add(f"{kind}_key", sid, value, lambda ts, s=sid, v=value: _obj(s, ts, v), key_kind=kind)
    return out


def late_valid(sensors: list[str]) -> list[CorpusRecord]:
    """Valid readings from long ago (1970, 2001): late once their partition has a recent reading.

    Keyed by their sensor id, so they are read on their own partition, never forwarded.
    """
    out = []
    for n, sid in enumerate(sensors):
        for ts in (0, 1000 + n, 978_307_200_000 + n):  # epoch start, 1970, 2001-01-01
            value = -40.5 - n
            for encode in ((lambda t: t), iso):
                out.append(
                    CorpusRecord(
                        "past_ts_late",
                        sid.encode(),
                        _obj(sid, encode(ts), value),
                        True,
                        reading=Reading(sid, ts, value),
                        late=True,
                    )
                )
    return out


def huge(*, ts: int, seed: int = 0, prefix: str = "huge") -> list[CorpusRecord]:
    """A few values of about 1 MB: garbage, a huge string field, a huge id, and a valid reading
    padded with whitespace (valid JSON, so it must be counted)."""
    rng = random.Random(seed)
    sid = f"{prefix}-s"

    def pad(raw: bytes, filler: bytes = b" ") -> bytes:
        return raw + filler * (HUGE_VALUE_BYTES - len(raw))

    big_string = "v" * (HUGE_VALUE_BYTES - 100)
    garbage = bytes(rng.randrange(256) for _ in range(4096)) * (HUGE_VALUE_BYTES // 4096)
    records = [
        CorpusRecord("huge_garbage", sid.encode(), garbage, False, ("json",)),
        CorpusRecord(
            "huge_string_value",
            sid.encode(),
            _obj(sid, ts, big_string)[:HUGE_VALUE_BYTES],
            False,
            ("'value'", "number"),
        ),
        CorpusRecord(
            "huge_sensor_id",
            sid.encode(),
            _obj(big_string, ts, 1.0),
            False,
            ("'sensor_id'", "256"),
        ),
        CorpusRecord(
            "huge_padded_valid",
            sid.encode(),
            pad(_obj(sid, ts + 1, 8.5)),
            True,
            reading=Reading(sid, ts + 1, 8.5),
        ),
    ]
    for record in records:
        assert record.value is not None and len(record.value) <= HUGE_VALUE_BYTES, record.kind
    return records


def interleave(
    first: list[CorpusRecord], second: list[CorpusRecord], seed: int = 0
) -> Iterator[CorpusRecord]:
    """Both lists merged at random positions, each keeping its own order."""
    rng = random.Random(seed)
    i = j = 0
    while i < len(first) or j < len(second):
        left_first = len(first) - i
        if j >= len(second) or (
            left_first and rng.random() < left_first / (left_first + len(second) - j)
        ):
            yield first[i]
            i += 1
        else:
            yield second[j]
            j += 1


def valid_record(reading: Reading) -> CorpusRecord:
    """A plain valid reading keyed by its sensor id."""
    return CorpusRecord(
        "valid", reading.sensor_id.encode(), reading.encode(), True, reading=reading
    )


def home_partition(record: CorpusRecord, partitions: int) -> int:
    """Partition a valid record is counted on (its sensor id's)."""
    assert record.reading is not None
    return partition_of(record.reading.sensor_id, partitions)
