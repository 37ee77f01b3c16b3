"""A transaction that lost a record never commits (a real broker, no mocks).

aiokafka reports a failed record on its future only and would commit the rest of the
transaction; faustapp's fix dooms the transaction instead, as Kafka's Java producer does. The
broker refuses a record here because the topic's ``max.message.bytes`` is below its size.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from faustapp import faust_fixes

from support.kafka_broker import consume_all, create_topics
from support.sensors import (
    MINUTE,
    Reading,
    assert_same_figures,
    expected_windows,
    key_per_partition,
    read_topic,
    send_readings,
    wait_for_records,
)

pytestmark = pytest.mark.integration

SMALL_TOPIC_LIMIT = 1024


async def _producer(bootstrap: str) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        transactional_id=f"txn-test-{uuid.uuid4().hex[:8]}",
        enable_idempotence=True,
        acks="all",
        linger_ms=0,
    )
    await producer.start()
    return producer


async def _topics(bootstrap: str) -> tuple[str, str]:
    name = uuid.uuid4().hex[:8]
    fine, small = f"txn-fine-{name}", f"txn-small-{name}"
    await create_topics(bootstrap, [fine], partitions=1)
    await create_topics(
        bootstrap, [small], partitions=1, config={"max.message.bytes": str(SMALL_TOPIC_LIMIT)}
    )
    return fine, small


def test_a_transaction_that_lost_a_record_cannot_commit_and_shows_nothing(kafka_bootstrap):
    faust_fixes.apply()

    async def run() -> tuple[BaseException | None, BaseException | None, list, list]:
        fine, small = await _topics(kafka_bootstrap)
        producer = await _producer(kafka_bootstrap)
        try:
            await producer.begin_transaction()
            delivered = await producer.send(fine, b"kept-only-if-committed", key=b"k")
            await delivered  # the first record of the transaction is on the broker
            refused = await producer.send(small, b"x" * (4 * SMALL_TOPIC_LIMIT), key=b"k")
            send_error = None
            try:
                await refused
            except KafkaError as exc:
                send_error = exc
            commit_error = None
            try:
                await producer.commit_transaction()
            except Exception as exc:  # noqa: BLE001 - the error is the result under test
                commit_error = exc
            if commit_error is not None:
                await producer.abort_transaction()
        finally:
            await producer.stop()
        return (
            send_error,
            commit_error,
            await consume_all(kafka_bootstrap, fine),
            await consume_all(kafka_bootstrap, small),
        )

    send_error, commit_error, fine_records, small_records = asyncio.run(run())
    assert send_error is not None, "the broker accepted a record above max.message.bytes"
    assert commit_error is not None, "a transaction that lost a record was committed"
    assert fine_records == [], "records of the doomed transaction became visible"
    assert small_records == []


def test_faust_commit_is_refused_for_a_doomed_transaction(kafka_bootstrap):
    faust_fixes.apply()

    async def run() -> tuple[bool, BaseException | None, list]:
        fine, small = await _topics(kafka_bootstrap)
        producer = await _producer(kafka_bootstrap)
        try:
            await producer.begin_transaction()
            await (await producer.send(fine, b"half a flush", key=b"k"))
            with pytest.raises(KafkaError):
                await (await producer.send(small, b"x" * (4 * SMALL_TOPIC_LIMIT), key=b"k"))
            was_doomed = faust_fixes.doomed(producer)
            faust_producer = SimpleNamespace(
                app=type("App", (), {})(), _transaction_producers={"app-0-0": producer}
            )
            refused = None
            try:
                await faust_fixes._commit_transactions_unless_doomed(
                    faust_producer, {"app-0-0": {}}, "group"
                )
            except faust_fixes.TransactionAborted as exc:
                refused = exc
            await producer.abort_transaction()
        finally:
            await producer.stop()
        return was_doomed, refused, await consume_all(kafka_bootstrap, fine)

    was_doomed, refused, fine_records = asyncio.run(run())
    assert was_doomed
    assert refused is not None and "app-0-0" in str(refused)
    assert fine_records == []


async def _committed(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list:
    """Committed records of ``topic`` once ``expected`` are visible: the broker answers a commit
    before it has written the commit markers, so the records become readable a moment later."""
    deadline = time.monotonic() + timeout
    while True:
        records = await consume_all(bootstrap, topic)
        if len(records) >= expected or time.monotonic() > deadline:
            return records
        await asyncio.sleep(0.2)


def test_a_healthy_transaction_still_commits(kafka_bootstrap):
    faust_fixes.apply()

    async def run() -> tuple[bool, list]:
        fine, _ = await _topics(kafka_bootstrap)
        producer = await _producer(kafka_bootstrap)
        try:
            await producer.begin_transaction()
            for i in range(3):
                await (await producer.send(fine, str(i).encode(), key=b"k"))
            was_doomed = faust_fixes.doomed(producer)
            await producer.commit_transaction()
        finally:
            await producer.stop()
        return was_doomed, await _committed(kafka_bootstrap, fine, expected=3)

    was_doomed, records = asyncio.run(run())
    assert not was_doomed
    assert [r[1] for r in records] == [b"0", b"1", b"2"]


def _wait_exit(worker, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and worker.alive():
        time.sleep(0.5)
    return None if worker.alive() else worker.proc.returncode


async def _set_max_message_bytes(bootstrap: str, topic: str, limit: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": str(limit)})]
        )
    finally:
        await admin.close()


async def _committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


def test_worker_whose_results_are_refused_commits_nothing_then_recovers_exactly_once(
    kafka_bootstrap, make_worker, event_clock
):
    """Every result send fails: the worker must stop without committing (no result, no offset),
    and once the topic accepts results again a restarted worker emits every window once."""
    partitions = 2
    prefix = f"tx-{uuid.uuid4().hex[:6]}."
    readings_topic, stats_topic = f"{prefix}sensor-readings", f"{prefix}sensor-stats-1m"
    asyncio.run(
        create_topics(
            kafka_bootstrap,
            [stats_topic],
            partitions=partitions,
            config={"max.message.bytes": "100"},
        )
    )
    env = {
        "FAUSTAPP_TOPIC_PREFIX": prefix,
        "FAUSTAPP_GRACE_MS": "2000",
        "FAUSTAPP_PARTITIONS": str(partitions),
        "FAUSTAPP_PROCESSING_GUARANTEE": "exactly_once",
        "FAUSTAPP_SESSION_TIMEOUT_MS": "6000",
    }
    worker = make_worker(**env).start()
    worker.wait_ready(partitions=partitions)
    start = event_clock.allocate(minutes=3)
    sensors = [f"refused-{i}" for i in range(4)]
    readings = [
        Reading(s, start + t, float(i + t // 1000))
        for t in range(0, MINUTE, 5000)
        for i, s in enumerate(sensors)
    ]
    closers = [
        Reading(k, start + 2 * MINUTE, 0.0)
        for k in key_per_partition("refused-closer", partitions).values()
    ]
    asyncio.run(send_readings(kafka_bootstrap, readings + closers, readings_topic))

    code = _wait_exit(worker, timeout=120)
    assert code is not None, f"worker kept running after a refused result:\n{worker.log_tail()}"
    assert code != 0
    log = worker.log_path.read_text(errors="replace")
    assert "lost a record" in log, worker.log_tail()
    assert asyncio.run(read_topic(kafka_bootstrap, stats_topic)) == []
    committed = asyncio.run(_committed_offsets(kafka_bootstrap, worker.app_id, readings_topic))
    assert all(offset <= 0 for offset in committed.values()), committed

    asyncio.run(_set_max_message_bytes(kafka_bootstrap, stats_topic, 1_000_000))
    restarted = make_worker(app_id=worker.app_id, **env)
    restarted.data_dir, restarted.log_path = worker.data_dir, worker.log_path
    restarted.start().wait_ready(partitions=partitions, timeout=120)
    want = expected_windows(readings)
    got = asyncio.run(
        wait_for_records(
            kafka_bootstrap, stats_topic, lambda r: r["sensor_id"] in sensors, expected=len(want)
        )
    )
    assert sorted((r["sensor_id"], r["window_start"]) for r in got) == sorted(want)
    for record in got:
        figures = {k: v for k, v in record.items() if not k.startswith("_")}
        assert_same_figures(figures, want[(record["sensor_id"], record["window_start"])])


def test_a_producer_keeps_every_topic_it_sends_to_in_its_metadata(kafka_bootstrap):
    """Sending to a topic created after the producer started must not make it forget the
    topics it was already sending to (their queued records would have no leader)."""
    faust_fixes.apply()

    async def run() -> tuple[set[int] | None, set[int] | None]:
        name = uuid.uuid4().hex[:8]
        early, late = f"meta-early-{name}", f"meta-late-{name}"
        await create_topics(kafka_bootstrap, [early], partitions=2)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=0)
        await producer.start()
        try:
            # A refresh before the first send fetches every topic (as happens to Faust's
            # producers): ``early`` is known without being listed.
            await producer.client.force_metadata_update()
            assert producer.client.cluster.partitions_for_topic(early) == {0, 1}
            await (await producer.send(early, b"1", partition=0))
            await create_topics(kafka_bootstrap, [late], partitions=2)
            await (await producer.send(late, b"2", partition=0))  # lists ``late`` for metadata
            await producer.client.force_metadata_update()
            cluster = producer.client.cluster
            return cluster.partitions_for_topic(early), cluster.partitions_for_topic(late)
        finally:
            await producer.stop()

    early_partitions, late_partitions = asyncio.run(run())
    assert late_partitions == {0, 1}
    assert early_partitions == {0, 1}, "the producer forgot a topic it was sending to"
