"""Sends that belong to the processing of a source partition, and so to its transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable

import faust
from aiokafka.structs import RecordMetadata


class PartitionProducer:
    """Produces records on behalf of one source topic's partitions.

    Under ``exactly_once`` every record goes through the transactional producer Faust opened for
    the source partition, so outputs, changelog records and the consumer offsets commit together.
    Faust's own topic send cannot do this for topics it does not consume (it looks up the
    destination topic's group and fails), hence this thin layer.
    """

    def __init__(self, app: faust.App, source_topic: str) -> None:
        self.app = app
        self.source_topic = source_topic

    def _transactional_id(self, source_partition: int) -> str | None:
        if not self.app.in_transaction:
            return None
        group = self.app.assignor.group_for_topic(self.source_topic)
        return f"{self.app.conf.id}-{group}-{source_partition}"

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        source_partition: int,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Awaitable[RecordMetadata]:
        """Queue one record; the returned future resolves when the broker has it."""
        return await self.app.producer.send(
            topic,
            key,
            value,
            partition,
            None,
            headers,
            transactional_id=self._transactional_id(source_partition),
        )

    @staticmethod
    async def delivered(futures: Iterable[Awaitable[RecordMetadata]]) -> list[RecordMetadata]:
        """Wait until every queued record is acknowledged, failing if any was not."""
        pending = list(futures)
        if not pending:
            return []
        return list(await asyncio.gather(*pending))
