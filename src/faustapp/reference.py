"""A compacted reference topic held whole by every worker: the table side of stream-table joins.

Like Kafka Streams' global tables, every worker reads every partition of the topic from the
beginning and keeps the latest record per key; the topic itself, compacted, is the changelog, so
a restarted worker rebuilds the table by reading it again. Lookups happen when an event is
processed (processing-time semantics): an event whose key is not in the table yet gets the join's
``missing`` values. Pipelines that join wait, once, until the table has read what the topic held
when the worker started.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition
from mode import Service

from faustapp import kafka_client, metrics
from faustapp.records import InvalidRecord
from faustapp.schema import Schema
from faustapp.settings import Settings

log = logging.getLogger(__name__)

BOOTSTRAP_WAIT_S = 60.0


class ReferenceTable(Service):
    """The latest valid record per key of one compacted topic (a null value deletes the key)."""

    def __init__(
        self,
        name: str,
        topic: str,
        schema: Schema,
        bootstrap: str,
        declare: Callable[[], Awaitable[Any]] | None = None,
        client_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.declare = declare
        self.client_options = client_options
        self.table_name = name
        self.topic = topic
        self.schema = schema
        self.bootstrap = bootstrap
        self.rows: dict[str, Any] = {}
        self.applied = 0
        self._loaded = asyncio.Event()
        self._rejected = metrics.DEAD_LETTERS.labels(name)

    def get(self, key: str) -> Any | None:
        """The current record of ``key``, or None."""
        return self.rows.get(key)

    async def loaded(self, timeout: float = BOOTSTRAP_WAIT_S) -> None:
        """Wait until the table has read the topic as it was at start (at most ``timeout``)."""
        if self._loaded.is_set():
            return
        try:
            await asyncio.wait_for(self._loaded.wait(), timeout)
        except TimeoutError:
            log.warning(
                "%s: not loaded after %.0f s; joining with what it has", self.topic, timeout
            )
            self._loaded.set()

    @Service.task
    async def _read(self) -> None:
        delay = 1.0
        while not self.should_stop:
            try:
                await self._follow()
            except KafkaError as exc:  # the broker went away: read it again
                log.warning("%s: %s; reading again in %.0f s", self.topic, exc, delay)
            except Exception:  # never take the worker down: log, wait, read again
                log.exception("%s: reading failed; reading again in %.0f s", self.topic, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def on_start(self) -> None:
        """Create the topic (compacted) when it does not exist yet."""
        if self.declare is not None:
            await self.declare()

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            **self._security(),
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            partitions = await self._partitions(consumer)
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            while not self.should_stop:
                batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
                for records in batches.values():
                    for record in records:
                        self._apply(record.key, record.value)
                if not self._loaded.is_set() and await self._caught_up(consumer, ends):
                    log.info("%s: %d keys loaded", self.topic, len(self.rows))
                    self._loaded.set()
        finally:
            await consumer.stop()

    def _security(self) -> dict[str, Any]:
        """TLS/SASL options: as given, else those of the worker's settings."""
        if self.client_options is None:
            self.client_options = kafka_client.client_options(Settings.from_env())
        return dict(self.client_options)

    @staticmethod
    async def _caught_up(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
        for tp, end in ends.items():
            if await consumer.position(tp) < end:
                return False
        return True

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        while not self.should_stop:
            found = consumer.partitions_for_topic(self.topic)
            if not found:
                await consumer._client.force_metadata_update()
                found = consumer.partitions_for_topic(self.topic)
            if found:
                return [TopicPartition(self.topic, p) for p in sorted(found)]
            await asyncio.sleep(1.0)
        return []

    def _apply(self, raw_key: bytes | None, raw_value: bytes | None) -> None:
        self.applied += 1
        try:
            key = raw_key.decode() if raw_key is not None else None
        except UnicodeDecodeError:
            key = None
        if raw_value is None:  # a tombstone deletes the key
            if key is not None:
                self.rows.pop(key, None)
            return
        try:
            row = self.schema.decode(raw_value)
        except InvalidRecord as exc:
            # Reference data is read by every worker: counted and logged here, never guessed.
            self._rejected.inc()
            log.warning("%s: record with key %r rejected: %s", self.topic, key, exc)
            return
        self.rows[self.schema.key_of(row)] = row
