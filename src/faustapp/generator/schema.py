"""What the trades and logs generators share: the slot loop and the malformed records.

Both datasets follow the same record rules: a string id (the Kafka key), an event time ``ts``
(epoch ms or ISO-8601), finite numbers within +-1e15, optional fields that count as absent when
null. A :class:`Schema` names which fields play which part, and :func:`keyed_records` turns a
:class:`RecordSource` into the records of a run, malformed ones included.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Protocol

import orjson

from faustapp.generator.config import GeneratorConfig
from faustapp.generator.records import (
    VALID,
    GeneratedRecord,
    draw_bad_kind,
    shift_back,
    slot_times,
)

MAX_ID_LENGTH = 256
MAX_ABS_NUMBER = 1e15
#: Share of valid records whose ``ts`` is an ISO-8601 string instead of epoch milliseconds.
ISO_TS_SHARE = 0.02

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: Stands in for a field's value in the JSON text until raw bytes are spliced in its place.
_SPLICE = "\ue000splice\ue000"
_SPLICE_JSON = orjson.dumps(_SPLICE)

Record = dict[str, object]
BadPayload = Callable[["Schema", random.Random, Record], bytes]


class RecordSource(Protocol):
    """The dataset-specific part of a run: who sends the next record, and what it says."""

    ids: Sequence[str]
    """Key of each source, also the record's id field."""

    def pick(self) -> int:
        """Index into :attr:`ids` of the next record's source."""

    def record(self, index: int, nominal_ts: int, ts: object) -> Record:
        """The next valid record of source ``index``; ``ts`` goes into the record as given.

        ``nominal_ts`` never decreases from one call to the next, so state can evolve with it.
        """


@dataclass(frozen=True)
class Schema:
    """Field roles of one record type, and the malformations that break its rules."""

    id_field: str
    required: tuple[str, ...]
    numbers: tuple[str, ...]
    """Numeric fields, each a target for wrong types, NaN, infinities and huge values."""
    specific: Mapping[str, BadPayload] = field(default_factory=dict)
    """Malformations of this schema's own rules, on top of :data:`COMMON_BAD_PAYLOADS`."""
    has_ts: bool = True
    """Whether records carry an event time ``ts``; without one, no malformation targets it."""

    @property
    def bad_payloads(self) -> dict[str, BadPayload]:
        common = {
            kind: payload
            for kind, payload in COMMON_BAD_PAYLOADS.items()
            if self.has_ts or kind not in TS_BAD_KINDS
        }
        return {**common, **self.specific}

    @property
    def bad_kinds(self) -> tuple[str, ...]:
        """Every way a record of this schema is generated malformed; all must be rejected."""
        return tuple(self.bad_payloads)


def keyed_records(
    config: GeneratorConfig, schema: Schema, source: RecordSource, rng: random.Random
) -> Iterator[GeneratedRecord]:
    """Yield a run's records the way :func:`~faustapp.generator.records.sensor_records` does.

    Same slot clock, disorder bound and bad ratio; each record is keyed by its source's id, the
    malformed ones too, so partitioning does not depend on whether a record is readable.
    """
    config = config.resolved()
    payloads = schema.bad_payloads
    kinds = tuple(payloads)
    keys = [source_id.encode() for source_id in source.ids]
    disorder_ms = config.disorder_ms
    bad_ratio = config.bad_ratio
    for nominal_ts in slot_times(config):
        index = source.pick()
        ts = shift_back(rng, nominal_ts, disorder_ms)
        stamp: object = iso_ms(ts) if rng.random() < ISO_TS_SHARE else ts
        record = source.record(index, nominal_ts, stamp)
        kind = draw_bad_kind(rng, bad_ratio, kinds)
        if kind is None:
            yield GeneratedRecord(keys[index], orjson.dumps(record), ts, VALID, nominal_ts)
        else:
            record["ts"] = ts
            payload = payloads[kind](schema, rng, record)
            yield GeneratedRecord(keys[index], payload, None, kind, nominal_ts)


def iso_ms(ts: int) -> str:
    """``ts`` (epoch ms) as ISO-8601 UTC with milliseconds, e.g. ``2024-11-24T08:00:00.123Z``."""
    moment = _EPOCH + timedelta(milliseconds=ts)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Popularity:
    """Skewed choice of a source: index 0 is the busiest, then a long, quieter tail."""

    def __init__(self, count: int, rng: random.Random, skew: float = 0.8) -> None:
        weights = [1.0 / (rank + 1) ** skew for rank in range(count)]
        self._cumulative = list(itertools.accumulate(weights))
        self._total = self._cumulative[-1]
        self._rng = rng
        self._last = count - 1

    def pick(self) -> int:
        index = bisect.bisect_right(self._cumulative, self._rng.random() * self._total)
        return min(index, self._last)


def with_raw(record: Record, name: str, raw: bytes) -> bytes:
    """The record as JSON with the value of ``name`` replaced by ``raw``, which may be invalid."""
    marked = dict(record)
    marked[name] = _SPLICE
    return orjson.dumps(marked).replace(_SPLICE_JSON, raw, 1)


def with_value(record: Record, name: str, value: object) -> bytes:
    """The record as JSON with ``name`` set to ``value``."""
    changed = dict(record)
    changed[name] = value
    return orjson.dumps(changed)


def bad_id(rng: random.Random, good: str, kind: str) -> str:
    """An id breaking one id rule: ``empty``, ``long``, ``control`` (character) or ``slash``."""
    if kind == "empty":
        return ""
    if kind == "long":
        length = rng.randint(MAX_ID_LENGTH + 1, MAX_ID_LENGTH + 200)
        return ((good + "-") * (length // (len(good) + 1) + 1))[:length]
    at = rng.randint(0, len(good))
    if kind == "control":
        char = rng.choice(("\x00", "\t", "\n", "\x1b", "\x7f", "\x85", "\x9f"))
    else:
        char = "/"
    return good[:at] + char + good[at:]


# --- malformations every schema shares ---------------------------------------------------


def _not_json(schema: Schema, rng: random.Random, record: Record) -> bytes:
    text = orjson.dumps(record).decode()
    templates = (
        text[: rng.randint(1, len(text) - 1)],
        repr(record),
        " ".join(f"{name}={value}" for name, value in record.items()),
        f"<{schema.id_field}>{record[schema.id_field]}</{schema.id_field}>",
    )
    return rng.choice(templates).encode()


def _invalid_utf8(schema: Schema, rng: random.Random, record: Record) -> bytes:
    garbage = rng.choice((b"\xff\xfe", b"\xc3\x28", b"\xe2\x82", b"\x80"))
    good = str(record[schema.id_field]).encode()
    return with_raw(record, schema.id_field, b'"' + good + garbage + b'"')


def _empty_value(schema: Schema, rng: random.Random, record: Record) -> bytes:
    return b""


def _not_object(schema: Schema, rng: random.Random, record: Record) -> bytes:
    shapes: tuple[object, ...] = (
        list(record.values()),
        [record],
        orjson.dumps(record).decode(),
        record["ts"] if "ts" in record else record[schema.id_field],
        None,
    )
    return orjson.dumps(rng.choice(shapes))


def _missing_field(schema: Schema, rng: random.Random, record: Record) -> bytes:
    name = rng.choice(schema.required)
    if rng.random() < 0.3:
        return with_value(record, name, None)
    trimmed = dict(record)
    del trimmed[name]
    return orjson.dumps(trimmed)


def _wrong_type(schema: Schema, rng: random.Random, record: Record) -> bytes:
    name = rng.choice((schema.id_field, *schema.numbers))
    current = record.get(name)
    if name == schema.id_field:
        wrong: object = rng.choice((42, 3.5, True, [current], {"name": current}))
    else:
        number = current if current is not None else 1
        wrong = rng.choice((str(number), True, False, [number], {"value": number}))
    return with_value(record, name, wrong)


def _bad_id(kind: str) -> BadPayload:
    def payload(schema: Schema, rng: random.Random, record: Record) -> bytes:
        good = str(record[schema.id_field])
        return with_value(record, schema.id_field, bad_id(rng, good, kind))

    return payload


def _nan_number(schema: Schema, rng: random.Random, record: Record) -> bytes:
    return with_raw(record, rng.choice(schema.numbers), b"NaN")


def _infinite_number(schema: Schema, rng: random.Random, record: Record) -> bytes:
    return with_raw(record, rng.choice(schema.numbers), rng.choice((b"Infinity", b"-Infinity")))


def _huge_number(schema: Schema, rng: random.Random, record: Record) -> bytes:
    huge = rng.choice((1e16, -1e16, 2.5e15, 1e300, -1e300, 10**16))
    return with_value(record, rng.choice(schema.numbers), huge)


def _bad_ts_type(schema: Schema, rng: random.Random, record: Record) -> bytes:
    ts = record["ts"]
    return with_value(record, "ts", rng.choice((True, False, {"ms": ts}, [ts])))


def _bad_ts_text(schema: Schema, rng: random.Random, record: Record) -> bytes:
    texts = (
        "",
        "yesterday",
        "2024-13-45T25:61:00Z",
        "Sun, 24 Nov 2024 08:00:00 GMT",
        "24/11/2024 08:00:00",
        f"{record['ts']}ms",
    )
    return with_value(record, "ts", rng.choice(texts))


def _ts_out_of_range(schema: Schema, rng: random.Random, record: Record) -> bytes:
    ts = record["ts"]
    assert isinstance(ts, int)
    choices = (-1, -ts - 1, -rng.randint(1, 10**12), 10**16, 9 * 10**15, "1969-12-31T23:59:59.999Z")
    return with_value(record, "ts", rng.choice(choices))


def _fractional_ts(schema: Schema, rng: random.Random, record: Record) -> bytes:
    ts = record["ts"]
    assert isinstance(ts, int)
    return with_value(record, "ts", ts + rng.choice((0.5, 0.25, 0.001)))


#: Malformations of the rules every schema shares (JSON shape, id, ts, numbers).
COMMON_BAD_PAYLOADS: dict[str, BadPayload] = {
    "not_json": _not_json,
    "invalid_utf8": _invalid_utf8,
    "empty_value": _empty_value,
    "not_object": _not_object,
    "missing_field": _missing_field,
    "wrong_type": _wrong_type,
    "empty_id": _bad_id("empty"),
    "long_id": _bad_id("long"),
    "control_char_id": _bad_id("control"),
    "slash_id": _bad_id("slash"),
    "nan_number": _nan_number,
    "infinite_number": _infinite_number,
    "huge_number": _huge_number,
    "bad_ts_type": _bad_ts_type,
    "bad_ts_text": _bad_ts_text,
    "ts_out_of_range": _ts_out_of_range,
    "fractional_ts": _fractional_ts,
}
#: The common malformations of ``ts``, left out for records without an event time.
TS_BAD_KINDS = frozenset({"bad_ts_type", "bad_ts_text", "ts_out_of_range", "fractional_ts"})
