"""One shared reader per output topic for the streams that have caught up with it.

A stream starts on a consumer of its own (at its Last-Event-ID, the beginning or the end) and,
once that consumer has read as far as the topic's hub, joins the hub and stops its consumer: a
hundred clients then cost one consumer, and the frames of a batch are built once for every
stream that reads the whole topic. A stream whose queue of hub batches is full (it does not
take what it is sent) is cut off and ended as too slow; the hub never waits for anyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from faustapp.result_stream import (
    Positions,
    ResultReader,
    StreamUnavailable,
    format_position,
    frames_of,
    result_event,
)
from faustapp.settings import Settings

log = logging.getLogger(__name__)

POLL_MS = 500
RETRY_S = 2.0
"""How long after a hub failed the next one may start."""
QUEUE_BATCHES = 256
"""Hub batches a stream may have waiting; one more and it is dropped as too slow."""
LINGER_S = 0.05
"""After a batch, how long the hub lets results gather: at most 20 writes a second to each
stream, however busy the topic, for at most this much more latency."""
HUB_MAX_RECORDS = 5000


@dataclass
class Batch:
    """Records the hub read in one fetch, by partition, and the hub's positions around them."""

    before: Positions
    after: Positions
    records: dict[int, list[Any]]
    _frames: bytes | None = field(default=None, repr=False)

    def shared_frames(self) -> bytes:
        """The frames of every record for a stream that was at ``before`` (built once)."""
        if self._frames is None:
            positions = dict(self.before)
            frames = []
            for partition, records in self.records.items():
                for record in records:
                    positions[partition] = record.offset + 1
                    frames.append(result_event(format_position(positions), record.value))
            self._frames = b"".join(frames)
        return self._frames


class Subscription:
    """A stream's place at the hub: its queue of batches and why it must end, if it must."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Batch] = asyncio.Queue(QUEUE_BATCHES)
        self.ended: str | None = None


class Hub:
    """The shared reader of one output topic, from its end when the hub started."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.topic = topic
        self.reader = ResultReader(settings, topic, None)
        self.positions: Positions = {}
        self.subscribers: set[Subscription] = set()
        self.ready = asyncio.Event()
        self.failure: str | None = None
        self._ended_at = 0.0
        self._task = asyncio.ensure_future(self._run())

    def failed_for(self) -> float:
        """Seconds since the hub stopped reading."""
        return time.monotonic() - self._ended_at

    @property
    def usable(self) -> bool:
        """Placed and reading."""
        return self.ready.is_set() and self.failure is None

    def subscribe(self) -> Subscription:
        """Batches from the next fetch on (call in the same step as reading ``positions``)."""
        subscription = Subscription()
        self.subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """The stream ended."""
        self.subscribers.discard(subscription)

    async def stop(self) -> None:
        """Stop reading; streams still subscribed end with the reason."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task

    async def _run(self) -> None:
        try:
            if not await self.reader.open():
                raise StreamUnavailable(f"output topic {self.topic!r} does not exist (yet)")
            self.positions = dict(await self.reader.seek("latest", None))
            self.ready.set()
            while True:
                records = await self.reader.fetch(POLL_MS, HUB_MAX_RECORDS)
                if records:
                    self._publish(records)
                    if sum(map(len, records.values())) < HUB_MAX_RECORDS:
                        await asyncio.sleep(LINGER_S)  # let the next batch gather
        except StreamUnavailable as exc:
            self.failure = str(exc)
        except asyncio.CancelledError:
            self.failure = "worker stopping"
            raise
        except Exception as exc:  # noqa: BLE001 - the streams end with the reason, not the worker
            log.exception("reading %s for the streams failed", self.topic)
            self.failure = f"reading Kafka failed: {exc.__class__.__name__}"
        finally:
            self._ended_at = time.monotonic()
            self.ready.set()
            for subscription in self.subscribers:
                subscription.ended = self.failure or "stream reader ended"
            self.subscribers.clear()
            await self.reader.close()

    def _publish(self, records: dict[int, list[Any]]) -> None:
        before = dict(self.positions)
        for partition, batch in records.items():
            self.positions[partition] = batch[-1].offset + 1
        batch_of = Batch(before, dict(self.positions), records)
        for subscription in list(self.subscribers):
            try:
                subscription.queue.put_nowait(batch_of)
            except asyncio.QueueFull:
                subscription.ended = (
                    f"client too slow: more than {QUEUE_BATCHES} batches of results waiting"
                )
                self.subscribers.discard(subscription)


class Hubs:
    """The hubs of a worker, one per output topic, started by the first stream that needs one."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.by_topic: dict[str, Hub] = {}

    def hub(self, topic: str) -> Hub:
        """The topic's hub (a new one a while after the last one failed)."""
        hub = self.by_topic.get(topic)
        if hub is None or (hub.failure is not None and hub.failed_for() > RETRY_S):
            hub = self.by_topic[topic] = Hub(self.settings, topic)
        return hub

    async def stop(self) -> None:
        """Stop every hub."""
        hubs, self.by_topic = list(self.by_topic.values()), {}
        await asyncio.gather(*(hub.stop() for hub in hubs))


def frames_from_hub(
    batch: Batch, positions: Positions, key: bytes | None, skip: Positions
) -> bytes:
    """A stream's frames of a hub batch: the shared ones when it reads the whole topic and is
    exactly where the hub was, else its own (its key only, past ``skip``)."""
    if key is None and positions == batch.before:
        positions.update(batch.after)
        return batch.shared_frames()
    return b"".join(frames_of(batch.records, positions, key, skip))
