"""The test Kafka broker and its helpers work against a real broker (no mocks).

Everything else in the integration and end-to-end suites builds on these helpers, so they
are checked first: exact record round trips, empty topics, transactions and restarts.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from support.kafka_broker import LocalBroker, consume_all, create_topics, free_port, produce

pytestmark = pytest.mark.integration


def _topic(prefix: str) -> str:
    """Unique topic name, so tests also work against a long-lived shared broker."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_keyed_records_round_trip_exactly(kafka_bootstrap: str) -> None:
    """100 keyed records come back exactly once, keys spread over all 4 partitions."""
    topic = _topic("broker-roundtrip")
    records = [(f"key-{i:03d}".encode(), f"value-{i:03d}".encode(), None) for i in range(100)]

    async def scenario() -> tuple[list, list]:
        await create_topics(kafka_bootstrap, [topic], partitions=4)
        metadata = await produce(kafka_bootstrap, topic, records)
        return metadata, await consume_all(kafka_bootstrap, topic)

    metadata, consumed = asyncio.run(scenario())

    assert len(metadata) == 100
    assert len(consumed) == 100
    assert sorted((k, v) for k, v, _, _ in consumed) == sorted((k, v) for k, v, _ in records)
    # The helper reports where each record landed, matching what the producer was told.
    written = {(m.partition, m.offset) for m in metadata}
    assert {(p, o) for _, _, p, o in consumed} == written
    assert {p for _, _, p, _ in consumed} == {0, 1, 2, 3}
    # A key always maps to one partition, and offsets are dense per partition.
    for partition in range(4):
        offsets = [o for _, _, p, o in consumed if p == partition]
        assert offsets == list(range(len(offsets)))


def test_explicit_partitions_and_null_keys(kafka_bootstrap: str) -> None:
    """Records sent to an explicit partition (with null keys/values) land there."""
    topic = _topic("broker-explicit")
    records = [(None, b"a", 2), (b"k", None, 2), (None, b"c", 0)]

    async def scenario() -> list:
        await create_topics(kafka_bootstrap, [topic], partitions=4)
        await produce(kafka_bootstrap, topic, records)
        return await consume_all(kafka_bootstrap, topic)

    assert asyncio.run(scenario()) == [(None, b"c", 0, 0), (None, b"a", 2, 0), (b"k", None, 2, 1)]


def test_consume_all_of_empty_topic_returns_nothing(kafka_bootstrap: str) -> None:
    """An empty topic yields [] right away instead of waiting for the timeout."""
    topic = _topic("broker-empty")

    async def scenario() -> list:
        await create_topics(kafka_bootstrap, [topic], partitions=4)
        # Creating again is a no-op, as the helper promises.
        await create_topics(kafka_bootstrap, [topic], partitions=4)
        return await consume_all(kafka_bootstrap, topic, timeout=10)

    assert asyncio.run(scenario()) == []


def test_read_committed_skips_aborted_transactions(kafka_bootstrap: str) -> None:
    """consume_all hides aborted transactional writes and still terminates past the markers."""
    topic = _topic("broker-txn")

    async def scenario() -> tuple[list, list]:
        await create_topics(kafka_bootstrap, [topic], partitions=4)
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka_bootstrap, transactional_id=_topic("broker-txn-id")
        )
        await producer.start()
        try:
            async with producer.transaction():
                await producer.send(topic, b"committed", key=b"c", partition=1)
            await producer.begin_transaction()
            await producer.send(topic, b"aborted", key=b"a", partition=1)
            await producer.abort_transaction()
        finally:
            await producer.stop()
        committed = await consume_all(kafka_bootstrap, topic)
        everything = await consume_all(kafka_bootstrap, topic, isolation_level="read_uncommitted")
        return committed, everything

    committed, everything = asyncio.run(scenario())
    assert [(k, v) for k, v, _, _ in committed] == [(b"c", b"committed")]
    assert [(k, v) for k, v, _, _ in everything] == [(b"c", b"committed"), (b"a", b"aborted")]


def test_restart_keeps_data(tmp_path: Path) -> None:
    """A broker bounce (own ports and data dir) keeps acknowledged records and accepts more."""
    broker = LocalBroker(free_port(), free_port(), tmp_path / "kafka")
    topic = "broker-restart"
    before = [(f"k{i}".encode(), f"v{i}".encode(), None) for i in range(50)]
    after = [(f"k{i}".encode(), f"v{i}".encode(), None) for i in range(50, 60)]
    try:
        bootstrap = broker.start()
        asyncio.run(create_topics(bootstrap, [topic], partitions=4))
        asyncio.run(produce(bootstrap, topic, before))

        assert broker.restart() == bootstrap
        assert broker.is_running()

        async def after_restart() -> tuple[list, list]:
            survived = await consume_all(bootstrap, topic)
            await produce(bootstrap, topic, after)
            return survived, await consume_all(bootstrap, topic)

        survived, total = asyncio.run(after_restart())
    finally:
        broker.stop()

    assert not broker.is_running()
    assert sorted((k, v) for k, v, _, _ in survived) == sorted((k, v) for k, v, _ in before)
    assert sorted((k, v) for k, v, _, _ in total) == sorted((k, v) for k, v, _ in before + after)
