"""The built-in record schemas against an independent validator: every rule accepted and rejected,
each rejection naming its field; event times; malformed input; schema declarations."""

from __future__ import annotations

import calendar
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

import msgspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from faustapp.agents.logs import LogEvent
from faustapp.agents.sensors import Reading
from faustapp.agents.trades import Trade
from faustapp.records import InvalidRecord
from faustapp.schema import EventTime, Id, Number, Record, Schema

PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_TS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
BOUND = 1e15
FORBIDDEN_IN_IDS = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))] + ["/"]

SCHEMAS = {
    "sensors": Schema(Reading, key="sensor_id"),
    "trades": Schema(Trade, key="symbol"),
    "logs": Schema(LogEvent, key="service"),
}


# --------------------------------------------------------------------------------------------
# The rules, written down independently of the schemas


@dataclass(frozen=True)
class Rule:
    """What one field accepts."""

    kind: str  # id, time, number, integer, choice, text
    required: bool = True
    nullable: bool = False
    low: float | None = None  # inclusive unless low_open
    low_open: bool = False
    high: float | None = None
    choices: tuple[str, ...] = ()
    max_length: int = 0
    default: Any = None


ID = Rule("id")
TIME = Rule("time")
RULES: dict[str, dict[str, Rule]] = {
    "sensors": {"sensor_id": ID, "ts": TIME, "value": Rule("number", low=-BOUND, high=BOUND)},
    "trades": {
        "symbol": ID,
        "ts": TIME,
        "price": Rule("number", low=0, low_open=True, high=BOUND),
        "qty": Rule("number", low=0, low_open=True, high=BOUND),
        "side": Rule("choice", required=False, nullable=True, choices=("buy", "sell")),
    },
    "logs": {
        "service": ID,
        "ts": TIME,
        "level": Rule("choice", choices=("DEBUG", "INFO", "WARN", "ERROR", "FATAL")),
        "message": Rule("text", required=False, max_length=65_536, default=""),
        "latency_ms": Rule("number", required=False, nullable=True, low=0, high=BOUND),
        "status": Rule("integer", required=False, nullable=True, low=100, high=599),
        "host": Rule("id", required=False, nullable=True),
    },
}


@dataclass(frozen=True)
class IsoTime:
    """An ISO-8601 text and the epoch milliseconds it denotes (None: not a valid time)."""

    text: str
    ms: int | None


@dataclass(frozen=True)
class RawNumber:
    """A JSON number written as is (beyond what a float can hold)."""

    text: str


def _accepts(rule: Rule, value: Any) -> tuple[bool, Any]:
    """Whether ``rule`` accepts a present value, and the value the record holds then."""
    if value is None:
        return rule.nullable, rule.default
    if isinstance(value, RawNumber):
        value = float(value.text)
    kind = rule.kind
    if kind == "id":
        ok = isinstance(value, str) and 1 <= len(value) <= 256
        return ok and not any(c in FORBIDDEN_IN_IDS for c in value), value
    if kind == "time":
        if isinstance(value, IsoTime):
            ms = value.ms
        elif isinstance(value, bool) or not isinstance(value, int | float):
            ms = None
        elif isinstance(value, float):
            ms = int(value) if math.isfinite(value) and value == int(value) else None
        else:
            ms = value
        return ms is not None and 0 <= ms <= MAX_TS, ms
    if kind in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False, None
        if kind == "integer" and not isinstance(value, int):
            return False, None
        number = float(value) if kind == "number" else value
        if not math.isfinite(number):
            return False, None
        above = number > rule.low if rule.low_open else number >= rule.low
        return above and number <= rule.high, number
    if kind == "choice":
        return isinstance(value, str) and value in rule.choices, value
    assert kind == "text"
    return isinstance(value, str) and len(value) <= rule.max_length, value


def verdict(rules: dict[str, Rule], document: dict[str, Any]) -> tuple[str, Any]:
    """``("ok", fields of the record)`` or ``("bad", the field that breaks a rule)``; unknown
    fields are ignored. Assumes at most one field breaks a rule."""
    fields = {}
    for name, rule in rules.items():
        if name not in document:
            if rule.required:
                return "bad", name
            fields[name] = rule.default
            continue
        ok, value = _accepts(rule, document[name])
        if not ok:
            return "bad", name
        fields[name] = value
    return "ok", fields


def to_json(value: Any, ascii_only: bool = True) -> str:
    """JSON text of a document (IsoTime as its text, RawNumber as written)."""
    if isinstance(value, dict):
        items = (f"{to_json(k, ascii_only)}:{to_json(v, ascii_only)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(v, ascii_only) for v in value) + "]"
    if isinstance(value, IsoTime):
        return json.dumps(value.text, ensure_ascii=ascii_only)
    if isinstance(value, RawNumber):
        return value.text
    return json.dumps(value, ensure_ascii=ascii_only)


# --------------------------------------------------------------------------------------------
# Values that keep and that break each rule


id_chars = st.characters(codec="utf-8", exclude_characters="".join(FORBIDDEN_IN_IDS))
ids = st.one_of(
    st.text(id_chars, min_size=1, max_size=24),
    st.integers(250, 256).map(lambda n: "é" * n),
)


def bad_ids(nullable: bool) -> st.SearchStrategy[Any]:
    inserted = st.tuples(
        st.text(id_chars, max_size=8), st.sampled_from(FORBIDDEN_IN_IDS), st.text(id_chars)
    ).map("".join)
    options = [
        st.just(""),
        inserted,
        st.integers(257, 300).map(lambda n: "k" * n),
        st.integers(-5, 5),
        st.booleans(),
        st.just([]),
        st.just({"id": "a"}),
    ]
    return st.one_of(*options, *([] if nullable else [st.none()]))


@st.composite
def iso_times(draw: st.DrawFn) -> IsoTime:
    """A valid ISO-8601 text: seconds, milliseconds or microseconds, with Z, an offset or no
    zone (UTC), 'T' or a space between date and time, or a date alone."""
    moment = draw(st.datetimes(datetime(1970, 1, 2), datetime(9999, 12, 30, 23, 59, 59)))
    if draw(st.integers(0, 9)) == 0:
        day = moment.date()
        seconds = calendar.timegm(day.timetuple())
        return IsoTime(day.isoformat(), seconds * 1000)
    spec = draw(st.sampled_from(["seconds", "milliseconds", "microseconds"]))
    text = moment.isoformat(sep=draw(st.sampled_from("T ")), timespec=spec)
    minutes = draw(st.sampled_from([None, 0, 0, 60, -300, 330, 345, -720, 840]))
    zone = draw(st.sampled_from(["Z", "+00:00"])) if minutes == 0 else ""
    if minutes:
        sign, size = ("+" if minutes > 0 else "-"), abs(minutes)
        zone = f"{sign}{size // 60:02d}:{size % 60:02d}"
    seconds = calendar.timegm(moment.timetuple()) - (minutes or 0) * 60
    microseconds = moment.microsecond if spec == "microseconds" else 0
    if spec == "milliseconds":
        microseconds = moment.microsecond // 1000 * 1000
    return IsoTime(text + zone, seconds * 1000 + microseconds // 1000)


times = st.one_of(
    st.integers(0, MAX_TS),
    st.sampled_from([0, MAX_TS]),
    st.integers(0, MAX_TS).map(float),
    iso_times(),
)
bad_times = st.one_of(
    st.integers(-(10**20), -1),
    st.integers(MAX_TS + 1, 10**20),
    st.integers(0, 10**14).map(lambda n: n + 0.5),
    st.just(-1.0),
    st.just(float(MAX_TS + 1)),
    st.booleans(),
    st.none(),
    st.just([1]),
    st.just(RawNumber("1e400")),
    st.sampled_from(
        [
            IsoTime("", None),
            IsoTime("yesterday", None),
            IsoTime("2024-13-01T00:00:00", None),
            IsoTime("2024-02-30T00:00:00Z", None),
            IsoTime("2024-01-01T25:00:00", None),
            IsoTime("2024-01-01T00:00:00+25:00", None),
            IsoTime("1969-12-31T23:59:59.999Z", -1),
            IsoTime("1970-01-01T00:00:00+00:01", -60_000),
            IsoTime("0001-01-01T00:00:00", -62_135_596_800_000),
            IsoTime("9999-12-31T23:59:59-00:01", MAX_TS + 59_001),
        ]
    ),
)


def numbers(rule: Rule) -> st.SearchStrategy[Any]:
    if rule.kind == "integer":
        return st.integers(int(rule.low), int(rule.high))
    low = rule.low
    return st.one_of(
        st.floats(low, rule.high, exclude_min=rule.low_open),
        st.integers(math.floor(low) + 1 if rule.low_open else math.ceil(low), int(rule.high)),
        st.sampled_from([rule.high, float(int(rule.high))]),
    )


def bad_numbers(rule: Rule) -> st.SearchStrategy[Any]:
    low = rule.low
    below = [
        st.floats(
            max_value=low, exclude_max=not rule.low_open, allow_nan=False, allow_infinity=False
        )
    ]
    below += [st.just(low) if rule.low_open else st.just(low - 1)]
    options = [
        *below,
        st.floats(min_value=rule.high, exclude_min=True, allow_nan=False, allow_infinity=False),
        st.integers(int(rule.high) + 1, 10**30),
        st.sampled_from([RawNumber("1e400"), RawNumber("-1e400")]),
        st.booleans(),
        st.just("12"),
        st.just([]),
    ]
    if rule.kind == "integer":
        options += [st.just(200.0), st.just(200.5)]
    if not rule.nullable:
        options.append(st.none())
    return st.one_of(*options)


def good(rule: Rule) -> st.SearchStrategy[Any]:
    if rule.kind == "id":
        return ids
    if rule.kind == "time":
        return times
    if rule.kind in ("number", "integer"):
        return numbers(rule)
    if rule.kind == "choice":
        return st.sampled_from(rule.choices)
    return st.one_of(st.text(max_size=40), st.just("m" * rule.max_length))


def bad(rule: Rule) -> st.SearchStrategy[Any]:
    if rule.kind == "id":
        return bad_ids(rule.nullable)
    if rule.kind == "time":
        return bad_times
    if rule.kind in ("number", "integer"):
        return bad_numbers(rule)
    if rule.kind == "choice":
        wrong = st.text(max_size=8).filter(lambda text: text not in rule.choices)
        options = [wrong, st.sampled_from([c.swapcase() for c in rule.choices]), st.integers()]
        return st.one_of(*options, *([] if rule.nullable else [st.none()]))
    return st.one_of(st.just("m" * (rule.max_length + 1)), st.none(), st.integers(), st.just([]))


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(),
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)


@dataclass
class Case:
    document: dict[str, Any]
    broken: str | None  # the field made to break a rule, if any
    how: str = field(default="")


@st.composite
def cases(draw: st.DrawFn, name: str) -> Case:
    """A document that keeps every rule, or breaks exactly one (a bad value, or a required field
    left out), with unknown fields mixed in."""
    rules = RULES[name]
    document: dict[str, Any] = {}
    for field_name, rule in rules.items():
        if rule.required or draw(st.booleans()):
            null = rule.nullable and draw(st.booleans())
            document[field_name] = None if null else draw(good(rule))
    broken = draw(st.one_of(st.none(), st.sampled_from(sorted(rules))))
    how = ""
    if broken is not None:
        if rules[broken].required and draw(st.integers(0, 4)) == 0:
            document.pop(broken, None)
            how = "left out"
        else:
            document[broken] = draw(bad(rules[broken]))
            how = "bad value"
    extra = draw(
        st.dictionaries(
            st.text(max_size=12).filter(lambda k: k not in rules), json_values, max_size=3
        )
    )
    document.update(extra)
    order = draw(st.permutations(list(document)))
    return Case({k: document[k] for k in order}, broken, how)


# --------------------------------------------------------------------------------------------
# Every rule, accepted and rejected


def decode_as_validated(name: str, case: Case, ascii_only: bool) -> None:
    schema = SCHEMAS[name]
    raw = to_json(case.document, ascii_only).encode()
    outcome, detail = verdict(RULES[name], case.document)
    assert (outcome == "bad") == (case.broken is not None), (outcome, detail, case)
    if outcome == "bad":
        assert detail == case.broken
        with pytest.raises(InvalidRecord) as caught:
            schema.decode(raw)
        assert f"'{detail}'" in str(caught.value), (str(caught.value), raw[:300])
        event(f"{name}: {case.how} {detail}")
        return
    record = schema.decode(raw)
    assert isinstance(record, schema.record_type)
    got = msgspec.structs.asdict(record)
    assert got == detail, raw[:300]
    for key, value in detail.items():
        assert type(got[key]) is type(value), (key, got[key], value)
    event(f"{name}: valid")


@PROPERTY
@given(cases("sensors"), st.booleans())
def test_sensor_readings_follow_the_rules(case: Case, ascii_only: bool) -> None:
    decode_as_validated("sensors", case, ascii_only)


@PROPERTY
@given(cases("trades"), st.booleans())
def test_trades_follow_the_rules(case: Case, ascii_only: bool) -> None:
    decode_as_validated("trades", case, ascii_only)


@PROPERTY
@given(cases("logs"), st.booleans())
def test_log_events_follow_the_rules(case: Case, ascii_only: bool) -> None:
    decode_as_validated("logs", case, ascii_only)


def test_the_rules_cover_every_field_of_the_records() -> None:
    for name, schema in SCHEMAS.items():
        assert set(RULES[name]) == set(schema.fields), name
        assert schema.ts == "ts"


# --------------------------------------------------------------------------------------------
# Event times


READING = '{{"sensor_id": "s-1", "ts": {ts}, "value": 1.5}}'


def reading_ts(ts: str) -> int:
    return SCHEMAS["sensors"].decode(READING.format(ts=ts).encode()).ts


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ('"1970-01-01T00:00:00Z"', 0),
        ('"2024-03-01T12:30:45.123Z"', 1_709_296_245_123),
        ('"2024-03-01T12:30:45.123z"', 1_709_296_245_123),
        ('"2024-03-01T12:30:45.123"', 1_709_296_245_123),
        ('"2024-03-01T12:30:45.123+00:00"', 1_709_296_245_123),
        ('"2024-03-01T14:30:45.123+02:00"', 1_709_296_245_123),
        ('"2024-03-01T07:00:45.123-05:30"', 1_709_296_245_123),
        ('"2024-03-01 12:30:45.123999"', 1_709_296_245_123),
        ('"2024-03-01"', 1_709_251_200_000),
        ('"9999-12-31T23:59:59.999Z"', MAX_TS),
        ("1709296245123", 1_709_296_245_123),
        ("1709296245123.0", 1_709_296_245_123),
        ("1.709296245123e12", 1_709_296_245_123),
    ],
)
def test_event_times_are_decoded_to_epoch_milliseconds(text: str, ms: int) -> None:
    assert reading_ts(text) == ms


@pytest.mark.parametrize("text", ["1.5", "1709296245123.25", "-0.5"])
def test_fractional_milliseconds_are_refused(text: str) -> None:
    with pytest.raises(InvalidRecord, match="'ts' must be whole epoch milliseconds"):
        reading_ts(text)


@given(st.datetimes(datetime(1970, 1, 1), datetime(9999, 12, 31)), st.integers(-720, 840))
@settings(max_examples=200, deadline=None)
def test_an_offset_moves_the_time_by_exactly_that_much(moment: datetime, minutes: int) -> None:
    local = moment.isoformat(timespec="milliseconds")
    sign, size = ("+" if minutes >= 0 else "-"), abs(minutes)
    utc_ms = calendar.timegm(moment.timetuple()) * 1000 + moment.microsecond // 1000
    want = utc_ms - minutes * 60_000
    text = f'"{local}{sign}{size // 60:02d}:{size % 60:02d}"'
    if 0 <= want <= MAX_TS:
        assert reading_ts(text) == want
    else:
        with pytest.raises(InvalidRecord, match="'ts' out of range"):
            reading_ts(text)
    assert reading_ts(f'"{local}"') == utc_ms == reading_ts(f'"{local}Z"')


def test_an_event_time_field_of_another_name_is_named_in_rejections() -> None:
    class PageView(Record):
        visitor: Id
        at: EventTime

    schema = Schema(PageView, key="visitor", ts="at")
    assert schema.decode(b'{"visitor": "v", "at": "1970-01-01T00:00:01Z"}').at == 1000
    for bad_at in (b"1.5", b'"soon"', b"-3", b"true"):
        with pytest.raises(InvalidRecord) as caught:
            schema.decode(b'{"visitor": "v", "at": ' + bad_at + b"}")
        assert "'at'" in str(caught.value) and "'ts'" not in str(caught.value)


# --------------------------------------------------------------------------------------------
# Optional and unknown fields


def test_a_null_optional_field_is_the_same_as_one_left_out() -> None:
    trades, logs = SCHEMAS["trades"], SCHEMAS["logs"]
    trade = b'{"symbol": "ACME", "ts": 5, "price": 2.5, "qty": 3'
    assert trades.decode(trade + b', "side": null}') == trades.decode(trade + b"}")
    assert trades.decode(trade + b"}").side is None
    log = b'{"service": "api", "ts": 5, "level": "INFO"'
    nulls = b', "latency_ms": null, "status": null, "host": null}'
    assert logs.decode(log + nulls) == logs.decode(log + b"}")
    assert logs.decode(log + b"}") == LogEvent("api", 5, "INFO", "", None, None, None)


def test_a_null_required_or_defaulted_field_is_refused() -> None:
    with pytest.raises(InvalidRecord, match="'message'"):
        SCHEMAS["logs"].decode(b'{"service": "api", "ts": 5, "level": "INFO", "message": null}')
    with pytest.raises(InvalidRecord, match="'price'"):
        SCHEMAS["trades"].decode(b'{"symbol": "A", "ts": 5, "price": null, "qty": 1}')


def test_unknown_fields_are_ignored() -> None:
    raw = (
        b'{"sensor_id": "s", "unit": "C", "ts": 7, "nested": {"a": [1, null, "/"]},'
        b' "value": 2, "ts2": "bad", "": 1}'
    )
    assert SCHEMAS["sensors"].decode(raw) == Reading("s", 7, 2.0)


# --------------------------------------------------------------------------------------------
# Malformed input


VALID = {
    "sensors": b'{"sensor_id": "s", "ts": 1, "value": 1, "note": "X"}',
    "trades": b'{"symbol": "s", "ts": 1, "price": 1, "qty": 1, "note": "X"}',
    "logs": b'{"service": "s", "ts": 1, "level": "INFO", "note": "X"}',
}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@pytest.mark.parametrize("raw", [b"", None])
def test_an_empty_value_is_refused(name: str, raw: bytes | None) -> None:
    with pytest.raises(InvalidRecord, match="^empty value$"):
        SCHEMAS[name].decode(raw)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@pytest.mark.parametrize(
    "raw",
    [b"{", b"nope", b" trailing", b"NaN", b'{"ts": NaN}', b"{'a': 1}", b'{"a" 1}', b"\xff"],
)
def test_text_that_is_not_json_is_refused(name: str, raw: bytes) -> None:
    if raw == b" trailing":
        raw = VALID[name] + raw
    with pytest.raises(InvalidRecord, match="^not valid JSON: "):
        SCHEMAS[name].decode(raw)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@pytest.mark.parametrize("bad_bytes", [b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xe2\x82"])
@pytest.mark.parametrize("where", ["unknown field", "key", "field name"])
def test_invalid_utf8_is_refused_wherever_it_is(name: str, bad_bytes: bytes, where: str) -> None:
    raw = VALID[name]
    assert SCHEMAS[name].decode(raw)
    if where == "unknown field":
        raw = raw.replace(b'"X"', b'"X' + bad_bytes + b'"')
    elif where == "key":
        key = SCHEMAS[name].key.encode()
        raw = raw.replace(key + b'": "s"', key + b'": "s' + bad_bytes + b'"')
    else:
        raw = raw.replace(b'"note"', b'"no' + bad_bytes + b'te"')
    with pytest.raises(InvalidRecord, match="(?i)^not valid JSON: .*utf-8"):
        SCHEMAS[name].decode(raw)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b"[1, 2]", "array"),
        (b'"text"', "str"),
        (b"42", "int"),
        (b"null", "null"),
        (b"true", "bool"),
    ],
)
def test_json_that_is_not_an_object_is_refused(name: str, raw: bytes, kind: str) -> None:
    with pytest.raises(InvalidRecord, match=f"^expected a JSON object, got {kind}$"):
        SCHEMAS[name].decode(raw)


# --------------------------------------------------------------------------------------------
# Keys and ids


KEY_FIELDS = [("sensors", "sensor_id"), ("trades", "symbol"), ("logs", "service"), ("logs", "host")]


@pytest.mark.parametrize(("name", "id_field"), KEY_FIELDS)
@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "1 to 256 characters"),
        ("k" * 257, "1 to 256 characters"),
        ("a/b", "control characters or '/'"),
        ("/", "control characters or '/'"),
        ("tab\there", "control characters or '/'"),
        ("nul\x00", "control characters or '/'"),
        ("del\x7f", "control characters or '/'"),
        ("c1\x85", "control characters or '/'"),
        ("\x9f", "control characters or '/'"),
    ],
)
def test_bad_ids_are_refused_naming_the_field(
    name: str, id_field: str, value: str, reason: str
) -> None:
    document = json.loads(VALID[name])
    document[id_field] = value
    with pytest.raises(InvalidRecord) as caught:
        SCHEMAS[name].decode(json.dumps(document).encode())
    assert f"'{id_field}'" in str(caught.value) and reason in str(caught.value)


@pytest.mark.parametrize(("name", "id_field"), KEY_FIELDS)
@pytest.mark.parametrize("value", ["k" * 256, "é" * 256, "ключ-ü", "a.b:c-d_e", " ", "🙂"])
def test_good_ids_are_kept_as_sent(name: str, id_field: str, value: str) -> None:
    document = json.loads(VALID[name])
    document[id_field] = value
    for ascii_only in (True, False):
        raw = json.dumps(document, ensure_ascii=ascii_only).encode()
        assert getattr(SCHEMAS[name].decode(raw), id_field) == value


def test_an_id_refused_once_is_refused_again() -> None:
    """Ids that passed are remembered; one that failed must fail every time."""
    schema = Schema(Reading, key="sensor_id")
    for _ in range(3):
        with pytest.raises(InvalidRecord, match="'sensor_id'"):
            schema.decode(b'{"sensor_id": "a/b", "ts": 1, "value": 1}')
    assert schema.decode(b'{"sensor_id": "a-b", "ts": 1, "value": 1}').sensor_id == "a-b"
    assert schema.decode(b'{"sensor_id": "a-b", "ts": 1, "value": 1}').sensor_id == "a-b"


# --------------------------------------------------------------------------------------------
# Declaring a schema


class Visit(Record):
    visitor: Id
    page: str
    at: EventTime
    ts: int = 0
    dwell: Annotated[float, Number(ge=0)] = 0.0


def test_the_key_must_be_an_id() -> None:
    with pytest.raises(ValueError, match="key field 'side' of Trade must be an Id"):
        Schema(Trade, key="side")
    with pytest.raises(ValueError, match="key field 'level' of LogEvent must be an Id"):
        Schema(LogEvent, key="level")
    assert Schema(LogEvent, key="level", key_is_id=False).key == "level"


def test_the_key_and_time_fields_must_exist() -> None:
    with pytest.raises(ValueError, match="Trade has no field 'ticker' for the key") as caught:
        Schema(Trade, key="ticker")
    assert "symbol, ts, price, qty, side" in str(caught.value)
    with pytest.raises(ValueError, match="Reading has no field 'when' for the ts"):
        Schema(Reading, key="sensor_id", ts="when")


def test_the_event_time_field_must_be_the_one_named_ts() -> None:
    with pytest.raises(ValueError, match="Visit.at is an EventTime, not 'ts'"):
        Schema(Visit, key="visitor")
    schema = Schema(Visit, key="visitor", ts="at")
    assert schema.numeric == frozenset({"ts", "dwell"})
    assert schema.fields == ("visitor", "page", "at", "ts", "dwell")


def test_a_schema_is_a_record_class() -> None:
    for not_a_record in (dict, Reading("s", 1, 1.0), int):
        with pytest.raises(TypeError, match="a schema is a Record"):
            Schema(not_a_record, key="sensor_id")  # type: ignore[arg-type]


def test_rules_across_fields_refuse_with_their_reason() -> None:
    schema = Schema(
        Trade,
        key="symbol",
        rules=[(lambda t: t.side is not None or t.qty < 10, "field 'side' is required from 10")],
    )
    assert schema.decode(b'{"symbol": "A", "ts": 1, "price": 1, "qty": 9}').qty == 9.0
    with pytest.raises(InvalidRecord, match="^field 'side' is required from 10$"):
        schema.decode(b'{"symbol": "A", "ts": 1, "price": 1, "qty": 10}')


def test_the_built_in_sources_use_these_schemas() -> None:
    from faustapp.agents import logs, sensors, trades

    for declared, name in ((sensors.readings, "sensors"), (trades.trades, "trades")):
        assert declared.schema.record_type is SCHEMAS[name].record_type
        assert declared.schema.key == SCHEMAS[name].key
    assert logs.logs.schema.record_type is LogEvent and logs.logs.schema.key == "service"
