"""Strict decoding of ``sensor-readings`` values: good input parsed exactly, bad input named."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faustapp.records import (
    MAX_ABS_VALUE,
    MAX_KEY_LENGTH,
    MAX_TS_MS,
    InvalidRecord,
    SensorReading,
    decode_fields,
    decode_reading,
    parse_event_time,
)

PROPERTY = settings(max_examples=200, deadline=None)
JAN_1_2024_MS = 1_704_067_200_000


def encode(**fields: Any) -> bytes:
    return orjson.dumps(fields)


def reading(**overrides: Any) -> bytes:
    fields: dict[str, Any] = {"sensor_id": "sensor-1", "ts": JAN_1_2024_MS, "value": 21.5}
    fields.update(overrides)
    return encode(**fields)


def rejects(raw: bytes | None, *fragments: str) -> str:
    """Assert ``raw`` is rejected and the reason contains every fragment; return the reason."""
    with pytest.raises(InvalidRecord) as caught:
        decode_reading(raw)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


# --------------------------------------------------------------------------------------------
# Accepted input


def test_int_timestamp() -> None:
    assert decode_reading(reading()) == SensorReading("sensor-1", JAN_1_2024_MS, 21.5)


def test_integer_value_becomes_float() -> None:
    decoded = decode_reading(reading(value=3))
    assert decoded.value == 3.0 and isinstance(decoded.value, float)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01T00:00:00Z", JAN_1_2024_MS),
        ("2024-01-01T00:00:00z", JAN_1_2024_MS),
        ("2024-01-01T00:00:00.123Z", JAN_1_2024_MS + 123),
        ("2024-01-01T00:00:00.123456Z", JAN_1_2024_MS + 123),
        ("2024-01-01T00:00:00+00:00", JAN_1_2024_MS),
        ("2024-01-01T02:00:00+02:00", JAN_1_2024_MS),
        ("2023-12-31T19:00:00.250-05:00", JAN_1_2024_MS + 250),
        ("2024-01-01T00:00:00", JAN_1_2024_MS),  # naive means UTC
        ("2024-01-01T00:00:00.007", JAN_1_2024_MS + 7),
        ("2024-01-01 00:00:00", JAN_1_2024_MS),
        (" 2024-01-01T00:00:00Z ", JAN_1_2024_MS),
        ("1970-01-01T00:00:00Z", 0),
        ("9999-12-31T23:59:59.999Z", MAX_TS_MS),
    ],
)
def test_iso_8601_timestamps(text: str, expected: int) -> None:
    assert decode_reading(reading(ts=text)).ts == expected


def test_whole_float_timestamp_is_accepted() -> None:
    assert decode_reading(b'{"sensor_id":"s","ts":1.7e12,"value":1}').ts == 1_700_000_000_000
    assert decode_reading(b'{"sensor_id":"s","ts":5.0,"value":1}').ts == 5


def test_timestamp_bounds_are_inclusive() -> None:
    assert decode_reading(reading(ts=0)).ts == 0
    assert decode_reading(reading(ts=MAX_TS_MS)).ts == MAX_TS_MS


def test_extra_fields_and_unicode_ids_are_fine() -> None:
    raw = encode(sensor_id="ключ-ü", ts=1, value=-0.5, unit="C")
    assert decode_reading(raw) == SensorReading("ключ-ü", 1, -0.5)
    assert decode_reading(reading(sensor_id="x" * MAX_KEY_LENGTH)).sensor_id == "x" * 256


@PROPERTY
@given(
    moment=st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from(
            [
                None,
                timezone.utc,
                timezone(timedelta(hours=5, minutes=30)),
                timezone(-timedelta(hours=8)),
            ]
        ),
    )
)
def test_iso_strings_agree_with_datetime(moment: datetime) -> None:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    expected = (aware - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)
    assert decode_reading(reading(ts=moment.isoformat())).ts == expected
    assert parse_event_time(moment.isoformat()) == expected


@PROPERTY
@given(
    sensor_id=st.text(
        st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="/"),
        min_size=1,
        max_size=MAX_KEY_LENGTH,
    ),
    ts=st.integers(0, MAX_TS_MS),
    value=st.floats(-MAX_ABS_VALUE, MAX_ABS_VALUE, allow_nan=False, allow_infinity=False),
)
def test_valid_readings_round_trip(sensor_id: str, ts: int, value: float) -> None:
    assert decode_reading(encode(sensor_id=sensor_id, ts=ts, value=value)) == SensorReading(
        sensor_id, ts, value
    )


# --------------------------------------------------------------------------------------------
# Rejected input: whole-record problems


@pytest.mark.parametrize("raw", [None, b""])
def test_empty(raw: bytes | None) -> None:
    rejects(raw, "empty")


@pytest.mark.parametrize(
    "raw", [b"not json", b"{", b"{'sensor_id': 'a'}", b"  ", b"\xef\xbb\xbf{}"]
)
def test_not_json(raw: bytes) -> None:
    rejects(raw, "not valid JSON")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"sensor_id":"\xff","ts":1,"value":1}',
        b'{"sensor_id":"\xc3","ts":1,"value":1}',
        b'{"sensor_id":"\xed\xa0\x80","ts":1,"value":1}',  # an encoded surrogate
    ],
)
def test_invalid_utf8(raw: bytes) -> None:
    rejects(raw, "not valid JSON")


@pytest.mark.parametrize(
    ("raw", "kind"),
    [(b"[]", "list"), (b"[1, 2]", "list"), (b'"x"', "str"), (b"1", "int"), (b"null", "None")],
)
def test_not_an_object(raw: bytes, kind: str) -> None:
    rejects(raw, "expected a JSON object", kind)


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity", b"nan", b"inf"])
@pytest.mark.parametrize("field", ["ts", "value"])
def test_nan_and_infinity_tokens(token: bytes, field: str) -> None:
    fields = {"sensor_id": b'"s"', "ts": b"1", "value": b"1"}
    fields[field] = token
    raw = b"{" + b",".join(b'"%s":%s' % (k.encode(), v) for k, v in fields.items()) + b"}"
    rejects(raw, "not valid JSON")


@pytest.mark.parametrize("field", ["ts", "value"])
@pytest.mark.parametrize("number", [b"1e400", b"-1e400"])
def test_huge_numbers(field: str, number: bytes) -> None:
    fields = {"sensor_id": b'"s"', "ts": b"1", "value": b"1"}
    fields[field] = number
    raw = b"{" + b",".join(b'"%s":%s' % (k.encode(), v) for k, v in fields.items()) + b"}"
    message = rejects(raw)
    # Either the JSON parser refuses the overflow or the field is named as not finite.
    assert "not valid JSON" in message or f"'{field}'" in message, message


def test_huge_integer_timestamp_is_out_of_range() -> None:
    rejects(b'{"sensor_id":"s","ts":123456789012345678901234567890,"value":1}', "'ts'", "range")
    rejects(b'{"sensor_id":"s","ts":18446744073709551615,"value":1}', "'ts'", "range")


# --------------------------------------------------------------------------------------------
# Rejected input: each field


@pytest.mark.parametrize("field", ["sensor_id", "ts", "value"])
def test_missing_field(field: str) -> None:
    fields: dict[str, Any] = {"sensor_id": "s", "ts": 1, "value": 1.0}
    del fields[field]
    rejects(encode(**fields), "missing", f"'{field}'")


def test_empty_object_names_a_missing_field() -> None:
    rejects(b"{}", "missing field")


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("value", True),
        ("value", False),
        ("value", "21.5"),
        ("value", None),
        ("value", [1]),
        ("value", {"v": 1}),
        ("ts", True),
        ("ts", None),
        ("ts", [1]),
        ("ts", {"ms": 1}),
        ("sensor_id", 1),
        ("sensor_id", None),
        ("sensor_id", True),
        ("sensor_id", ["a"]),
    ],
)
def test_wrong_types(field: str, bad: object) -> None:
    rejects(reading(**{field: bad}), f"'{field}'")


@pytest.mark.parametrize("ts", [1.5, 0.1, 1_700_000_000_000.5, -0.5])
def test_float_timestamp_with_fraction(ts: float) -> None:
    rejects(reading(ts=ts), "'ts'", "whole")


@pytest.mark.parametrize("ts", [-1, -1_700_000_000_000, MAX_TS_MS + 1, 2**63])
def test_timestamp_out_of_range(ts: int) -> None:
    rejects(reading(ts=ts), "'ts'", "range")


@pytest.mark.parametrize(
    "text",
    ["", "   ", "yesterday", "1700000000000", "2024-13-01T00:00:00Z", "12:00", "2024-01-01T25:00"],
)
def test_unparseable_iso_strings(text: str) -> None:
    rejects(reading(ts=text), "'ts'", "ISO-8601")


@pytest.mark.parametrize(
    "text", ["1969-12-31T23:59:59.999Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999-01:00"]
)
def test_iso_strings_outside_the_range(text: str) -> None:
    rejects(reading(ts=text), "'ts'", "range")


def test_long_iso_string_is_truncated_in_the_reason() -> None:
    message = rejects(reading(ts="x" * 10_000), "'ts'")
    assert len(message) < 200


@pytest.mark.parametrize("sensor_id", ["", "x" * (MAX_KEY_LENGTH + 1), "ü" * (MAX_KEY_LENGTH + 1)])
def test_sensor_id_length(sensor_id: str) -> None:
    rejects(reading(sensor_id=sensor_id), "'sensor_id'", str(MAX_KEY_LENGTH))


@pytest.mark.parametrize(
    "sensor_id",
    ["a/b", "/", "a\x00b", "a\nb", "\tab", "ab\r", "a\x1fb", "a\x1bb"],
)
def test_sensor_id_with_control_characters_or_slash(sensor_id: str) -> None:
    rejects(reading(sensor_id=sensor_id), "'sensor_id'")


@pytest.mark.parametrize("sensor_id", ["a\x7fb", "a\x85b", "a\x9fb"])
def test_sensor_id_with_del_or_c1_control_characters(sensor_id: str) -> None:
    """DEL (U+007F) and the C1 controls (U+0080..U+009F) are control characters too."""
    rejects(reading(sensor_id=sensor_id), "'sensor_id'")


@PROPERTY
@given(st.binary(max_size=64))
def test_arbitrary_bytes_are_decoded_or_rejected_never_crash(raw: bytes) -> None:
    try:
        decoded = decode_reading(raw)
    except InvalidRecord as exc:
        assert str(exc)
    else:
        assert isinstance(decoded, SensorReading)


@pytest.mark.parametrize("value", ["1e200", "-1.7e308", "1e16", "-1000000000000001"])
def test_values_beyond_the_bound_are_refused_before_they_overflow_a_window(value: str) -> None:
    raw = b'{"sensor_id": "s-1", "ts": 1, "value": ' + value.encode() + b"}"
    with pytest.raises(InvalidRecord, match="'value' out of range"):
        decode_reading(raw)


# --------------------------------------------------------------------------------------------
# The hot path's decoder agrees with the strict one on every input


def _outcome(decode, raw: bytes | None) -> tuple:
    try:
        result = decode(raw)
    except InvalidRecord as exc:
        return ("rejected", str(exc))
    if isinstance(result, SensorReading):
        result = (result.sensor_id, result.ts, result.value)
    return ("accepted", result, tuple(type(v) for v in result))


_ids = st.one_of(
    st.sampled_from(["s-1", "sensor/1", "", "tab\there", "x" * (MAX_KEY_LENGTH + 1)]),
    st.text(max_size=8),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.none(),
)
_times = st.one_of(
    st.integers(min_value=-10, max_value=MAX_TS_MS + 10),
    st.sampled_from([0, MAX_TS_MS, JAN_1_2024_MS, True, 1.7e12, 1.5, "2024-01-01T00:00:00Z"]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.none(),
)
_values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(10**17), max_value=10**17),
    st.sampled_from([MAX_ABS_VALUE, -MAX_ABS_VALUE, MAX_ABS_VALUE * 1.0001, True, 0, -0.0]),
    st.text(max_size=4),
    st.none(),
)


@PROPERTY
@given(
    sensor_id=_ids,
    ts=_times,
    value=_values,
    drop=st.sampled_from([None, "sensor_id", "ts", "value"]),
)
def test_hot_path_decoder_matches_the_strict_decoder(sensor_id, ts, value, drop):
    fields = {"sensor_id": sensor_id, "ts": ts, "value": value}
    if drop:
        del fields[drop]
    raw = orjson.dumps(fields)
    assert _outcome(decode_fields, raw) == _outcome(decode_reading, raw)


@pytest.mark.parametrize(
    "raw",
    [None, b"", b"[]", b"null", b"{", b"\xff\xfe", b'"text"', b'{"sensor_id": "s"}', b"1e400"],
)
def test_hot_path_decoder_rejects_non_objects_like_the_strict_decoder(raw):
    assert _outcome(decode_fields, raw) == _outcome(decode_reading, raw)
