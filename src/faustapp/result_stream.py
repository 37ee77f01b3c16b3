"""The Kafka side of the results stream: positions (the event ids), Server-Sent Events framing,
and one read_committed reader per client (its ``FAUSTAPP_SSE_*`` settings are in ``Settings``).

A position names, for every partition of the output topic a stream reads, the offset of the next
record to read there (``partition:next_offset``, comma-separated, partitions ascending). An event
carries the position right after its own record, so a client that resumes from it starts exactly
after that event: nothing is missed, nothing seen twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Mapping
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from faustapp.kafka_client import client_options
from faustapp.pipeline import partition_for
from faustapp.settings import Settings

CLIENT_ID = "faustapp-sse"
HEARTBEAT = b": heartbeat\n\n"
MAX_POSITION_LENGTH = 8192
"""A Last-Event-ID longer than this is refused (far more than any real topic needs)."""
_POSITION = re.compile(r"[0-9]{1,9}:[0-9]{1,19}(,[0-9]{1,9}:[0-9]{1,19})*")
FROM_CHOICES = ("latest", "earliest")
START_TIMEOUT_S = 10.0
"""How long a new stream waits for the broker before it ends with ``event: close``."""
FETCH_MAX_BYTES = 1 << 20
TOPIC_RECHECK_S = 2.0
"""How often a stream whose topic does not exist yet looks for it."""
PARTITION_FETCH_BYTES = 256 << 10
"""What one client's reader may hold fetched from Kafka: a bound on its memory."""

Positions = dict[int, int]


class BadPosition(ValueError):
    """A Last-Event-ID that is malformed or does not fit the topic (a 400, with the reason)."""


class StreamUnavailable(Exception):
    """The broker did not answer or the topic is missing: the stream ends with the reason."""


def parse_position(text: str) -> Positions:
    """``"0:15,1:3"`` -> ``{0: 15, 1: 3}``; :class:`BadPosition` unless well formed."""
    text = text.strip()
    if len(text) > MAX_POSITION_LENGTH or not _POSITION.fullmatch(text):
        raise BadPosition(
            "Last-Event-ID must be comma-separated partition:next_offset pairs, e.g. 0:15,1:3"
        )
    positions: Positions = {}
    for pair in text.split(","):
        partition, _, offset = pair.partition(":")
        if int(partition) in positions:
            raise BadPosition(f"Last-Event-ID names partition {int(partition)} twice")
        positions[int(partition)] = int(offset)
    return positions


def format_position(positions: Mapping[int, int]) -> str:
    """``{1: 3, 0: 15}`` -> ``"0:15,1:3"`` (partitions ascending)."""
    return ",".join(f"{p}:{positions[p]}" for p in sorted(positions))


def check_position(positions: Positions, partitions: set[int]) -> None:
    """:class:`BadPosition` when the id names a partition the topic does not have."""
    unknown = sorted(set(positions) - partitions)
    if unknown:
        raise BadPosition(
            f"Last-Event-ID names partition(s) {unknown[:10]} the output topic does not have "
            f"(it has {len(partitions)})"
        )


def result_event(position: str, value: bytes | None) -> bytes:
    """One ``event: result`` frame; a value spanning lines becomes several ``data:`` lines."""
    lines = (value if value is not None else b"null").splitlines() or [b""]
    data = b"".join(b"data: " + line + b"\n" for line in lines)
    return b"id: " + position.encode() + b"\nevent: result\n" + data + b"\n"


def close_event(reason: str) -> bytes:
    """The ``event: close`` frame sent before the worker ends a stream."""
    return b"event: close\ndata: " + orjson.dumps({"reason": reason}) + b"\n\n"


def comment(text: str) -> bytes:
    """A comment line (clients ignore it; it keeps proxies from closing an idle stream)."""
    return b": " + text.replace("\n", " ").replace("\r", " ").encode() + b"\n\n"


def frames_of(
    records: Mapping[int, list[Any]],
    positions: Positions,
    key: bytes | None,
    skip: Mapping[int, int] | None = None,
) -> list[bytes]:
    """Frames of ``records`` (by partition) for a stream at ``positions``, which move past
    each record; records of other keys are passed over, as are those below ``skip``."""
    frames = []
    for partition, batch in records.items():
        if partition not in positions:
            continue  # a partition this stream does not read
        below = skip.get(partition, 0) if skip else 0
        for record in batch:
            if record.offset < below:
                continue
            positions[partition] = record.offset + 1
            if key is not None and record.key != key:
                continue
            frames.append(result_event(format_position(positions), record.value))
    return frames


class ResultReader:
    """Committed records of one output topic (or of one key's partition), from a position."""

    def __init__(self, settings: Settings, topic: str, key: str | None) -> None:
        self.topic = topic
        self.key = key.encode() if key is not None else None
        self._key_text = key
        self.positions: Positions = {}
        self.all_partitions: set[int] = set()
        self.read: list[int] = []
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            client_id=CLIENT_ID,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            fetch_max_bytes=FETCH_MAX_BYTES,
            max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
            **client_options(settings),
        )
        self._started = False
        self._looked = 0.0

    async def open(self) -> set[int]:
        """Connect and return the topic's partitions (none while the topic does not exist);
        StreamUnavailable when Kafka does not answer."""
        try:
            await asyncio.wait_for(self._start(), START_TIMEOUT_S)
            return await asyncio.wait_for(self._find_topic(), START_TIMEOUT_S)
        except (TimeoutError, asyncio.TimeoutError) as exc:
            raise StreamUnavailable(f"Kafka did not answer within {START_TIMEOUT_S:.0f} s") from exc
        except Exception as exc:  # noqa: BLE001 - any client failure ends the stream with it
            raise StreamUnavailable(f"Kafka is not reachable: {exc.__class__.__name__}") from exc

    async def _find_topic(self) -> set[int]:
        self._looked = time.monotonic()
        cluster = await self._consumer._client.fetch_all_metadata()
        partitions = cluster.partitions_for_topic(self.topic) or set()
        self.all_partitions = set(partitions)
        if not partitions:
            self.read = []
        elif self._key_text is not None:
            self.read = [partition_for(self._key_text, len(partitions))]
        else:
            self.read = sorted(partitions)
        return self.all_partitions

    async def _start(self) -> None:
        try:
            await self._consumer.start()
        except BaseException:
            with contextlib.suppress(Exception):  # closes what a failed start left open
                await self._consumer.stop()
            raise
        self._started = True
        await asyncio.sleep(0)  # lets the client's tasks start: stopping one never started fails

    async def seek(self, start: str, resume: Positions | None) -> Positions:
        """Place the reader: after ``resume`` (partitions it does not name from their
        beginning), else at the end (``latest``) or the beginning (``earliest``)."""
        tps = [TopicPartition(self.topic, p) for p in self.read]
        consumer = self._consumer
        try:
            consumer.assign(tps)
            if resume is not None:
                await self._check_in_range(tps, resume)
                for tp in tps:
                    if tp.partition in resume:
                        consumer.seek(tp, resume[tp.partition])
                    else:
                        await consumer.seek_to_beginning(tp)
            elif start == "earliest":
                await consumer.seek_to_beginning(*tps)
            else:
                await consumer.seek_to_end(*tps)
            self.positions = {tp.partition: await consumer.position(tp) for tp in tps}
        except BadPosition:
            raise
        except Exception as exc:  # noqa: BLE001 - any client failure ends the stream with it
            raise StreamUnavailable(
                f"Kafka did not give positions: {exc.__class__.__name__}"
            ) from exc
        return self.positions

    async def _check_in_range(self, tps: list[TopicPartition], resume: Positions) -> None:
        ends = await self._consumer.end_offsets(tps)
        for tp in tps:
            if tp.partition in resume and resume[tp.partition] > ends[tp]:
                raise BadPosition(
                    f"Last-Event-ID offset {resume[tp.partition]} of partition {tp.partition} "
                    f"is past the end of the output topic ({ends[tp]})"
                )

    async def fetch(self, timeout_ms: int, max_records: int = 500) -> dict[int, list[Any]]:
        """Records read within ``timeout_ms``, by partition, in offset order."""
        try:
            batch = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        except Exception as exc:  # noqa: BLE001 - any client failure ends the stream with it
            raise StreamUnavailable(f"reading Kafka failed: {exc.__class__.__name__}") from exc
        return {tp.partition: records for tp, records in batch.items() if records}

    async def fetch_positions(self) -> Positions:
        """Where the consumer reads next in each partition (past transaction markers)."""
        consumer = self._consumer
        return {p: await consumer.position(TopicPartition(self.topic, p)) for p in self.read}

    async def next_events(self, timeout_ms: int) -> list[bytes]:
        """The frames of the records read within ``timeout_ms`` (matching the key, if any)."""
        if not self.read:
            await self._await_topic(timeout_ms)
            return []
        return frames_of(await self.fetch(timeout_ms), self.positions, self.key)

    async def _await_topic(self, timeout_ms: int) -> None:
        """A topic missing when the stream began: look again now and then; once it exists,
        all of it came after the client connected, so it is read from its beginning."""
        await asyncio.sleep(timeout_ms / 1000)
        if time.monotonic() - self._looked < TOPIC_RECHECK_S:
            return
        try:
            if await asyncio.wait_for(self._find_topic(), START_TIMEOUT_S):
                await self.seek("earliest", None)
        except (TimeoutError, asyncio.TimeoutError) as exc:
            raise StreamUnavailable(f"Kafka did not answer within {START_TIMEOUT_S:.0f} s") from exc
        except StreamUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - any client failure ends the stream with it
            raise StreamUnavailable(f"Kafka is not reachable: {exc.__class__.__name__}") from exc

    async def close(self) -> None:
        """Stop the consumer (safe to call more than once)."""
        if self._started:
            self._started = False
            with contextlib.suppress(Exception):  # a failed stop leaves nothing to clean
                await self._consumer.stop()
