"""Fixes to Faust that need no broker: producer timeouts and recovery's start offsets."""

from __future__ import annotations

import asyncio

from faust.types import TP

from faustapp import faust_fixes


class _SeekRecorder:
    def __init__(self) -> None:
        self.sought: dict[TP, int] = {}

    async def seek_wait(self, offsets: dict[TP, int]) -> None:
        self.sought.update(offsets)


def test_recovery_reads_from_zero_when_the_start_offset_is_negative_or_unknown():
    tps = [TP("changelog", p) for p in range(5)]
    offsets = {tps[0]: -2, tps[1]: -1, tps[2]: None, tps[3]: 0, tps[4]: 41}
    consumer = _SeekRecorder()
    asyncio.run(faust_fixes._seek_offsets_from_zero(None, consumer, set(tps), offsets, "standby"))
    assert consumer.sought == {tps[0]: 0, tps[1]: 0, tps[2]: 0, tps[3]: 0, tps[4]: 41}


def test_producers_time_out_requests_in_30_s_and_deliveries_in_two_minutes():
    from faustapp.app import app

    async def build() -> tuple[int, float]:
        producer = app.producer._new_producer()
        return producer._request_timeout_ms, producer._message_accumulator._batch_ttl

    request_timeout_ms, delivery_timeout_s = asyncio.run(build())
    assert request_timeout_ms == 30_000
    assert delivery_timeout_s == faust_fixes.DELIVERY_TIMEOUT_S == 120.0


def test_the_leader_partition_is_paused_in_the_client_after_every_assignment():
    """An empty, never-read partition alone in a fetch holds the broker connection for the
    fetch's maximum wait; paused, it is never fetched, while the input partitions are."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from faustapp.app import app

    leader = app._leader_assignor._leader_tp
    leader_tp = TopicPartition(leader.topic, leader.partition)
    inputs = [TopicPartition("sensor-readings", p) for p in range(2)]

    class _Thread:  # what the fix reads of Faust's consumer thread
        pass

    async def check() -> list[set[TopicPartition]]:
        consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9")  # never started
        thread = _Thread()
        thread.app = app
        paused = []
        for assignment in ([leader_tp, *inputs], inputs, [leader_tp, *inputs]):
            consumer._subscription.assign_from_user(assignment)  # a new Assignment each time
            faust_fixes._pause_unread_partitions(thread, consumer)
            faust_fixes._pause_unread_partitions(thread, consumer)  # same assignment: no-op
            paused.append(set(consumer.paused()))
        await consumer.stop()
        return paused

    assert asyncio.run(check()) == [{leader_tp}, set(), {leader_tp}]


def test_worker_consumers_wait_at_most_the_configured_time_for_a_fetch():
    from faustapp.app import app

    async def build() -> int:
        return app.consumer._thread._create_worker_consumer(app.transport)._fetch_max_wait_ms

    assert asyncio.run(build()) == faust_fixes.FETCH_MAX_WAIT_MS == 100  # Faust's own: 1500
