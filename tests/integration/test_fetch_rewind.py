"""Records fetched but dropped around a rebalance are read again (a real broker, no mocks).

Faust drops a fetched batch when its flow stopped during the fetch and then seeks to the
committed offsets, which aiokafka skips for a partition without a commit: the batch was lost.
These tests drive the fix's fetch and rewind steps with a real aiokafka consumer.
"""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from faustapp.faust_fixes import _fetch_records_noting_positions, _rewind_in_thread

from support.kafka_broker import create_topics, produce

pytestmark = pytest.mark.integration

RECORDS = 10


class ConsumerThreadStandIn:
    """What the fixes use of Faust's consumer thread: its flow flag, its aiokafka consumer and
    whether its app has a leader topic (none here)."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = SimpleNamespace(flow_active=True)
        self.app = SimpleNamespace(conf=SimpleNamespace(topic_disable_leader=True))
        self._consumer = consumer

    def _ensure_consumer(self) -> AIOKafkaConsumer:
        return self._consumer


async def _fetch(thread: ConsumerThreadStandIn, tp: TopicPartition) -> list[int]:
    """Offsets of one fetch of ``tp`` through the fix's fetch step (waits for data)."""
    for _ in range(20):
        records = await _fetch_records_noting_positions(
            thread, thread._consumer, {tp}, timeout=0.5, max_records=1000
        )
        if records:
            return [record.offset for record in records[tp]]
    return []


def _scenario(bootstrap: str, between_fetches) -> tuple[list[int], list[TopicPartition], list[int]]:
    """Fetch all records of a fresh partition, run ``between_fetches``, rewind, fetch again."""
    topic = f"rewind-{uuid.uuid4().hex[:10]}"

    async def run() -> tuple[list[int], list[TopicPartition], list[int]]:
        await create_topics(bootstrap, [topic], partitions=1)
        await produce(bootstrap, topic, [(b"k", str(i).encode(), 0) for i in range(RECORDS)])
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=f"rewind-{uuid.uuid4().hex[:8]}",  # no committed offset: reset to earliest
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            thread = ConsumerThreadStandIn(consumer)
            first = await _fetch(thread, tp)
            await between_fetches(consumer, tp)
            rewound = await _rewind_in_thread(thread, {tp: first[0]} if first else {})
            again = await _fetch(thread, tp)
            return first, rewound, again
        finally:
            await consumer.stop()

    return asyncio.run(run())


def test_dropped_records_of_a_partition_without_commit_are_fetched_again(kafka_bootstrap):
    async def nothing(consumer, tp):
        # What Faust does after the drop: "seek to committed", a no-op without a commit.
        assert await consumer.seek_to_committed(tp) == {tp: None}

    first, rewound, again = _scenario(kafka_bootstrap, nothing)
    assert first == list(range(RECORDS))
    assert [(tp.topic.startswith("rewind-"), tp.partition) for tp in rewound] == [(True, 0)]
    assert again == list(range(RECORDS))


def test_no_rewind_when_something_sought_since_the_fetch(kafka_bootstrap):
    async def seek_elsewhere(consumer, tp):
        consumer.seek(tp, 7)  # recovery's own seek, say: it wins

    first, rewound, again = _scenario(kafka_bootstrap, seek_elsewhere)
    assert first == list(range(RECORDS))
    assert rewound == []
    assert again == [7, 8, 9]


def test_no_rewind_after_a_reassignment(kafka_bootstrap):
    async def reassign(consumer, tp):
        consumer.assign([tp])  # a new assignment starts from its own position
        consumer.seek(tp, 4)

    first, rewound, again = _scenario(kafka_bootstrap, reassign)
    assert first == list(range(RECORDS))
    assert rewound == []
    assert again == [4, 5, 6, 7, 8, 9]
