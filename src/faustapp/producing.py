"""Sends that belong to the processing of a source partition, and so to its transaction."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Iterable
from contextlib import asynccontextmanager

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


class CommitGate:
    """Keeps transaction commits out of the middle of a flush.

    A flush sends in steps (side records and window updates, then the mark, then results);
    Faust commits on its own clock, and a commit between two steps would make the first ones
    visible without the mark that says their source offsets were applied: a crash then
    replays them. Flushes pass freely among themselves; a commit waits until none is in
    progress, and flushes that start after it wait until it is done.
    """

    def __init__(self) -> None:
        self._flushing = 0
        self._committing = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._open = asyncio.Event()
        self._open.set()

    @asynccontextmanager
    async def flushing(self) -> AsyncIterator[None]:
        """Hold off commits while state and outputs are written (never nest these)."""
        await self._open.wait()
        self._flushing += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._flushing -= 1
            if not self._flushing:
                self._idle.set()

    @asynccontextmanager
    async def committing(self) -> AsyncIterator[None]:
        """Wait for flushes in progress, keep new ones out until the commit is done."""
        self._committing += 1
        self._open.clear()
        try:
            await self._idle.wait()
            yield
        finally:
            self._committing -= 1
            if not self._committing:
                self._open.set()


_gates: weakref.WeakKeyDictionary[object, CommitGate] = weakref.WeakKeyDictionary()


def commit_gate(app: object) -> CommitGate:
    """The app's one gate, shared by every router and by the producer's commit."""
    gate = _gates.get(app)
    if gate is None:
        gate = _gates[app] = CommitGate()
    return gate
