"""Producing a pre-filled topic as fast as aiokafka can: one batch per partition, sent when full."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaProducer


class TopicWriter:
    """Appends records to per-partition batches of one topic and sends each batch once full.

    ``async with TopicWriter(...) as writer``: ``append`` each record, then ``flush`` to send the
    partly filled batches and wait for every send. ``started`` is the monotonic time the producer
    was ready and ``counts`` the records appended per partition.
    """

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self.topic = topic
        self.partitions = partitions
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            client_id="faustapp-bench",
            acks="all",
            linger_ms=20,
            max_batch_size=512 * 1024,
            max_request_size=4 * 1024 * 1024,
            compression_type=None,  # lz4 is not installed; loopback does not need it
            request_timeout_ms=60_000,
        )
        self.started = 0.0
        self.counts = dict.fromkeys(range(partitions), 0)
        self.value_bytes = 0
        self._batches: dict = {}
        self._in_batch = dict.fromkeys(range(partitions), 0)
        self._futures: list[asyncio.Future] = []

    async def __aenter__(self) -> TopicWriter:
        await self.producer.start()
        self.started = time.monotonic()
        self._batches = {p: self.producer.create_batch() for p in range(self.partitions)}
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.producer.stop()

    async def append(self, p: int, key: bytes, value: bytes, ts: int) -> None:
        """Add one record to partition ``p``'s batch (the timestamp is in epoch milliseconds)."""
        batches = self._batches
        if batches[p].append(key=key, value=value, timestamp=ts) is None:
            self._futures.append(
                await self.producer.send_batch(batches[p], self.topic, partition=p)
            )
            batches[p], self._in_batch[p] = self.producer.create_batch(), 0
            if batches[p].append(key=key, value=value, timestamp=ts) is None:
                raise RuntimeError("a single record does not fit in an empty batch")
        self._in_batch[p] += 1
        self.counts[p] += 1
        self.value_bytes += len(value)

    async def flush(self, timeout: float = 120) -> float:
        """Send what is left and wait for every batch; seconds since the producer was ready."""
        for p in range(self.partitions):
            if self._in_batch[p]:
                self._futures.append(
                    await self.producer.send_batch(self._batches[p], self.topic, partition=p)
                )
                self._in_batch[p] = 0
        await asyncio.wait_for(asyncio.gather(*self._futures), timeout)
        return time.monotonic() - self.started
