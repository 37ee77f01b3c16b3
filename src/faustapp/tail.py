"""``faustapp tail TOPIC``: print a topic's committed records as JSON lines, as they arrive.

Each line is ``{"key", "partition", "offset", "timestamp", "value"}``: the key as UTF-8 text
(``null`` when absent; a key that is not UTF-8 is ``null`` with its bytes in base64 under
``"key_b64"``), the Kafka record time in epoch ms, and the value decoded from JSON, else as text,
else ``null`` with ``"value_b64"``; a tombstone's value is ``null``. Only committed records are
read (``read_committed``: aborted transactions never show), with no consumer group, so nothing
is committed and a tail never disturbs the topic's consumers.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, BinaryIO, TextIO

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

CLIENT_ID = "faustapp-tail"
#: Longest wait for records before checking whether to stop, in ms.
POLL_MS = 200


class TopicMissing(Exception):
    """The topic to tail does not exist on the broker."""


def build_parser() -> argparse.ArgumentParser:
    """The ``faustapp tail`` options."""
    parser = argparse.ArgumentParser(
        prog="faustapp tail",
        description="Print a topic's records as they arrive, one JSON line each: key, "
        "partition, offset, timestamp (Kafka record time, epoch ms) and value (decoded JSON, "
        "else text; null for a tombstone). Reads committed records only, without a consumer "
        "group. The broker comes from FAUSTAPP_BROKER, TLS and SASL from "
        "FAUSTAPP_SECURITY_PROTOCOL and the FAUSTAPP_SASL_* and FAUSTAPP_SSL_* settings.",
    )
    parser.add_argument(
        "topic", help="topic to read, taken as given: FAUSTAPP_TOPIC_PREFIX is not added"
    )
    parser.add_argument(
        "--from-beginning",
        action="store_true",
        help="start at the earliest offset of every partition (default: at the end, so only "
        "records that arrive from now on)",
    )
    parser.add_argument(
        "--key", default=None, help="print only the records with this key (UTF-8 text)"
    )
    parser.add_argument(
        "--count",
        type=_positive_int,
        default=None,
        metavar="N",
        help="stop after printing N records (default: run until interrupted)",
    )
    return parser


def format_record(
    key: bytes | None, value: bytes | None, partition: int, offset: int, timestamp: int
) -> bytes:
    """One output line (with its newline) for a record."""
    line: dict[str, Any] = {"key": None}
    if key is not None:
        text = _text(key)
        if text is None:
            line["key_b64"] = base64.b64encode(key).decode()
        line["key"] = text
    line.update(partition=partition, offset=offset, timestamp=timestamp, value=None)
    if value is not None:
        try:
            line["value"] = orjson.loads(value)
        except orjson.JSONDecodeError:
            line["value"] = _text(value)
            if line["value"] is None:
                line["value_b64"] = base64.b64encode(value).decode()
    return orjson.dumps(line) + b"\n"


def _line(record: Any) -> bytes:
    return format_record(
        record.key, record.value, record.partition, record.offset, record.timestamp
    )


def _text(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


async def tail(
    topic: str,
    bootstrap: str,
    *,
    from_beginning: bool = False,
    key: str | None = None,
    count: int | None = None,
    stop: asyncio.Event | None = None,
    out: BinaryIO | None = None,
    notice: TextIO | None = None,
    consumer_factory: Callable[..., Any] = AIOKafkaConsumer,
    client_options: Mapping[str, Any] | None = None,
) -> int:
    """Print ``topic``'s records to ``out`` until ``count`` are printed or ``stop`` is set.

    Every partition of the topic at start is read, from its end (its beginning with
    ``from_beginning``). Returns how many records were printed; raises :class:`TopicMissing`
    for a topic the broker does not have. A closed ``out`` (a pipe whose reader left) ends the
    tail like ``count`` does. ``client_options`` are the TLS/SASL keyword arguments of the
    consumer (``faustapp.kafka_client.client_options``).
    """
    stop = stop if stop is not None else asyncio.Event()
    out = out if out is not None else sys.stdout.buffer
    wanted = key.encode() if key is not None else None
    consumer = consumer_factory(
        bootstrap_servers=bootstrap,
        client_id=CLIENT_ID,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest" if from_beginning else "latest",
        **dict(client_options or {}),
    )
    try:
        await consumer.start()
        await asyncio.sleep(0)  # lets the client's tasks start: stopping one never started fails
        # Fresh metadata of every topic: the client's own cache holds only the topics it tracks.
        cluster = await consumer._client.fetch_all_metadata()
        partitions = cluster.partitions_for_topic(topic)
        if not partitions:
            raise TopicMissing(f"topic {topic!r} does not exist at {bootstrap}")
        assigned = [TopicPartition(topic, partition) for partition in sorted(partitions)]
        consumer.assign(assigned)
        if from_beginning:
            await consumer.seek_to_beginning(*assigned)
        else:
            await consumer.seek_to_end(*assigned)
        for partition in assigned:  # resolve the start now, so records sent from here are seen
            await consumer.position(partition)
        if notice is not None:
            where = "the beginning" if from_beginning else "the end"
            plural = "s" if len(assigned) != 1 else ""
            print(
                f"tailing {topic!r} ({len(assigned)} partition{plural}) from {where}; Ctrl-C stops",
                file=notice,
                flush=True,
            )
        printed = 0
        while not stop.is_set() and (count is None or printed < count):
            batch = await consumer.getmany(timeout_ms=POLL_MS)
            chosen: Iterable[Any] = (
                record
                for record in itertools.chain.from_iterable(batch.values())
                if wanted is None or record.key == wanted
            )
            if count is not None:
                chosen = itertools.islice(chosen, count - printed)
            lines = [_line(record) for record in chosen]
            if lines:
                try:
                    out.write(b"".join(lines))
                    out.flush()
                except BrokenPipeError:
                    _discard_output(out)
                    return printed
                printed += len(lines)
        return printed
    finally:
        await consumer.stop()


def _discard_output(out: BinaryIO) -> None:
    """Point a closed pipe at the null device, so the interpreter's last flush does not fail."""
    try:
        descriptor = out.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value
