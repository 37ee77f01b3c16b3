"""Typed input records: declared as msgspec ``Struct``s, decoded straight from JSON bytes, strictly.

A use declares its record once::

    class Trade(Record):
        symbol: Id
        ts: EventTime
        price: Annotated[float, Number(gt=0)]
        qty: Annotated[float, Number(gt=0)]
        side: Literal["buy", "sell"] | None = None

and :class:`Schema` decodes raw Kafka values into it. Types, bounds and allowed values are checked
by msgspec's validating decoder (no dict in between); ids and event times by the rules below. Every
rejection is an :class:`~faustapp.records.InvalidRecord` naming the field and the reason; an
optional field sent as ``null`` is the same as one left out.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Annotated, Any, Literal

import msgspec

from faustapp.records import (
    _FORBIDDEN_IN_ID,
    MAX_ABS_VALUE,
    MAX_KEY_LENGTH,
    MAX_TS_MS,
    InvalidRecord,
    parse_event_time,
)

__all__ = [
    "EventTime",
    "Id",
    "Integer",
    "Number",
    "Record",
    "Schema",
    "Text",
]


class Record(msgspec.Struct, gc=False):
    """Base of every input record: a typed, slotted struct without GC tracking (records hold
    scalars only, and there is one per event)."""


class _IdRule:
    """Marks a string field as an id: 1 to 256 characters, no control characters or '/'."""

    def __repr__(self) -> str:
        return "Id"


class _EventTimeRule:
    """Marks the event-time field: epoch ms, or an ISO-8601 string (UTC when no zone)."""

    def __repr__(self) -> str:
        return "EventTime"


ID_RULE = _IdRule()
EVENT_TIME_RULE = _EventTimeRule()

Id = Annotated[str, ID_RULE]
"""A key or id: a non-empty string of at most 256 characters without control characters or '/'."""

EventTime = Annotated[int | float | str, EVENT_TIME_RULE]
"""Event time: whole epoch milliseconds, or an ISO-8601 string; decoded to epoch ms."""


def Number(  # noqa: N802 - reads as a type in declarations
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
) -> msgspec.Meta:
    """Bounds of a finite number; always within +-1e15 (beyond, variances overflow)."""
    return msgspec.Meta(
        gt=gt,
        ge=ge if ge is not None else (None if gt is not None else -MAX_ABS_VALUE),
        lt=lt,
        le=le if le is not None else (None if lt is not None else MAX_ABS_VALUE),
    )


def Integer(*, ge: int | None = None, le: int | None = None) -> msgspec.Meta:  # noqa: N802
    """Bounds of an integer field."""
    return msgspec.Meta(ge=ge, le=le)


def Text(max_length: int, *, min_length: int = 0) -> msgspec.Meta:  # noqa: N802
    """Length bounds of a free-text field, in characters."""
    return msgspec.Meta(min_length=min_length or None, max_length=max_length)


Rule = tuple[Callable[[Any], bool], str]
"""A rule across fields: a predicate every valid record satisfies, and the reason when not."""


@dataclass(frozen=True)
class _FieldInfo:
    ids: tuple[str, ...]
    allowed: dict[str, tuple[Any, ...]]
    names: tuple[str, ...]
    numeric: frozenset[str]


def _inspect(record_type: type) -> tuple[_FieldInfo, str | None]:
    hints = typing.get_type_hints(record_type, include_extras=True)
    ids: list[str] = []
    allowed: dict[str, tuple[Any, ...]] = {}
    event_time: str | None = None
    numeric: set[str] = set()
    for name, hint in hints.items():
        bases = {_base(part) for part in _parts(hint)} - {type(None)}
        if bases and bases <= {int, float}:
            numeric.add(name)
        for part in _parts(hint):
            if typing.get_origin(part) is Annotated:
                extras = part.__metadata__
                if any(extra is ID_RULE for extra in extras):
                    ids.append(name)
                if any(extra is EVENT_TIME_RULE for extra in extras):
                    event_time = name
            if typing.get_origin(part) is Literal:
                allowed[name] = typing.get_args(part)
    return _FieldInfo(tuple(ids), allowed, tuple(hints), frozenset(numeric)), event_time


def _base(hint: Any) -> Any:
    return typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint


def _parts(hint: Any) -> list[Any]:
    origin = typing.get_origin(hint)
    if origin is typing.Union or type(hint).__name__ == "UnionType":
        return [p for arg in typing.get_args(hint) for p in _parts(arg)]
    return [hint]


class Schema:
    """Decodes a topic's raw values into ``record_type``: strict, fast, every rejection named.

    ``key`` names the field that keys the stream (its records are partitioned by it), ``ts`` the
    event time (None for reference data, which has none). ``rules`` are checks across fields
    (``amount`` required for a purchase).
    """

    def __init__(
        self,
        record_type: type[msgspec.Struct],
        *,
        key: str,
        ts: str | None = "ts",
        rules: Sequence[Rule] = (),
        key_is_id: bool = True,
    ) -> None:
        if not (isinstance(record_type, type) and issubclass(record_type, msgspec.Struct)):
            raise TypeError(f"a schema is a Record (msgspec Struct) class, got {record_type!r}")
        info, event_time = _inspect(record_type)
        for role, name in (("key", key), ("ts", ts)):
            if name is not None and name not in info.names:
                raise ValueError(
                    f"{record_type.__name__} has no field {name!r} for the {role}; "
                    f"fields: {', '.join(info.names)}"
                )
        if key_is_id and key not in info.ids:
            raise ValueError(f"the key field {key!r} of {record_type.__name__} must be an Id")
        if event_time is not None and event_time != ts:
            raise ValueError(f"{record_type.__name__}.{event_time} is an EventTime, not {ts!r}")
        self.record_type = record_type
        self.key = key
        self.ts = ts
        self.fields = info.names
        self.numeric = info.numeric
        """Fields whose values are numbers (what sums, means and quantiles can read)."""
        self.allowed = info.allowed
        self.rules = tuple(rules)
        self.key_of = attrgetter(key)
        self.ts_of = attrgetter(ts) if ts is not None else None
        self._decode = msgspec.json.Decoder(record_type).decode
        self._ids = info.ids
        self._known_ids: set[str] = set()

    def regrouped(self, key: str) -> Schema:
        """The same records keyed by another field (what a repartition topic carries)."""
        return Schema(self.record_type, key=key, ts=self.ts, key_is_id=False)

    @property
    def name(self) -> str:
        """The record type's name, for descriptions."""
        return self.record_type.__name__

    def decode(self, raw: bytes | None) -> Any:
        """The record in ``raw``, with its event time in epoch ms; :class:`InvalidRecord` else."""
        if not raw:
            raise InvalidRecord("empty value")
        try:
            record = self._decode(raw)
        except msgspec.ValidationError as exc:
            raise InvalidRecord(self._explain(str(exc))) from None
        except msgspec.DecodeError as exc:
            raise InvalidRecord(f"not valid JSON: {exc}") from None
        if not raw.isascii():
            # Fields the record does not declare are skipped unread: broken text in them would
            # otherwise pass unnoticed.
            try:
                raw.decode()
            except UnicodeDecodeError as exc:
                raise InvalidRecord(f"not valid JSON: invalid UTF-8 at byte {exc.start}") from None
        ts_name = self.ts
        if ts_name is not None:
            ts = getattr(record, ts_name)
            if type(ts) is not int or not 0 <= ts <= MAX_TS_MS:
                setattr(record, ts_name, _event_time(ts, ts_name))
        known = self._known_ids
        for name in self._ids:
            value = getattr(record, name)
            if value is not None and value not in known:
                check_id(name, value)
                if len(known) >= 1_000_000:
                    known.clear()
                known.add(value)
        for holds, reason in self.rules:
            if not holds(record):
                raise InvalidRecord(reason)
        return record

    def _explain(self, message: str) -> str:
        """msgspec's reason in this project's words: which field, what was expected."""
        text, _, where = message.partition(" - at `$.")
        field = where[:-1] if where.endswith("`") else where
        missing = re.fullmatch(r"Object missing required field `(.+)`", text)
        if missing:
            prefix = f"{field}." if field else ""
            return f"missing field '{prefix}{missing.group(1)}'"
        if not field:
            got = re.fullmatch(r"Expected `object`, got `(\w+)`", text)
            if got:
                return f"expected a JSON object, got {got.group(1)}"
            return text
        typed = re.fullmatch(r"Expected `([^`]+)`, got `(\w+)`", text)
        if typed:
            return f"field '{field}' must be {_describe(typed.group(1))}, got {typed.group(2)}"
        bounded = re.fullmatch(r"Expected `(\w+)` ((?:[<>]=?) ?\S+)", text)
        if bounded:
            return f"field '{field}' out of range: must be {bounded.group(2)}"
        length = re.fullmatch(r"Expected `str` of length ([<>]=? ?\d+)", text)
        if length:
            return f"field '{field}' too long or short: length must be {length.group(1)}"
        if text.startswith("Invalid enum value"):
            choices = ", ".join(repr(v) for v in self.allowed.get(field, ()))
            got = text.removeprefix("Invalid enum value").strip()
            return f"field '{field}' must be one of {choices}, got {got}"
        if text == "Number out of range":
            return f"field '{field}' out of range: not a finite JSON number"
        return f"field '{field}': {text}"


_DESCRIPTIONS = {
    "float": "a number",
    "int": "an integer",
    "str": "a string",
    "bool": "true or false",
    "int | float | str": "epoch milliseconds or an ISO-8601 string",
}


def _describe(expected: str) -> str:
    optional = expected.endswith(" | null")
    base = expected.removesuffix(" | null")
    text = _DESCRIPTIONS.get(base, base)
    if base.startswith("'") or "' | '" in base:
        text = f"one of {base.replace(' | ', ', ')}"
    return f"{text} or null" if optional else text


def _event_time(raw: Any, name: str) -> int:
    try:
        return parse_event_time(raw)
    except InvalidRecord as exc:
        if name == "ts":
            raise
        raise InvalidRecord(str(exc).replace("'ts'", f"'{name}'")) from None


def check_id(name: str, value: str) -> None:
    """Raise :class:`InvalidRecord` unless ``value`` is a valid id (named ``name``)."""
    if not value or len(value) > MAX_KEY_LENGTH:
        raise InvalidRecord(f"field '{name}' must be 1 to {MAX_KEY_LENGTH} characters")
    if _FORBIDDEN_IN_ID.search(value):
        raise InvalidRecord(f"field '{name}' must not contain control characters or '/'")
