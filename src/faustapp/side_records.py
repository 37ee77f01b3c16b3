"""Records a batch sends besides its results: dead letters and rekeyed events."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import orjson

from faustapp.fastpath import SourceRecord

DLQ_RAW_LIMIT = 256 * 1024


@dataclass(frozen=True, slots=True)
class SideRecord:
    """A record a batch sends besides its results (dead letter, rekeyed event): held until the
    flush, so it commits with the mark that covers its source offset, never before it."""

    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None = None


def dead_letter(dlq_topic: str, pipeline: str, message: SourceRecord, error: str) -> SideRecord:
    """A record that cannot be processed, for the DLQ, with its raw bytes (up to
    ``DLQ_RAW_LIMIT``: base64 grows them by a third, beyond Kafka's message size)."""
    record = {
        "pipeline": pipeline,
        "source_topic": message.topic,
        "source_partition": message.partition,
        "source_offset": message.offset,
        "error": error,
        "key_b64": _b64(message.key),
        "value_b64": _b64(message.value[:DLQ_RAW_LIMIT] if message.value else message.value),
    }
    if message.value is not None and len(message.value) > DLQ_RAW_LIMIT:
        record["value_truncated"] = True
        record["value_size"] = len(message.value)
    return SideRecord(dlq_topic, message.key, orjson.dumps(record))


def _b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode()
