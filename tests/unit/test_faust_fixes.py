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


class _Txn:
    def __init__(self, open_: bool) -> None:
        self.open = open_

    def is_in_transaction(self) -> bool:
        return self.open


class _RebalanceRecorder:
    """What the rebalance fix reads of Faust's TransactionManager, recording its calls."""

    transactional_id_format = "{group_id}-{tpg.group}-{tpg.partition}"

    def __init__(self, producers: dict[str, bool]) -> None:
        from types import SimpleNamespace

        self.app = SimpleNamespace(
            conf=SimpleNamespace(id="app"),
            assignor=SimpleNamespace(group_for_topic=lambda topic: 0),
        )
        self.producer = SimpleNamespace(
            _transaction_producers={
                tid: SimpleNamespace(_txn_manager=_Txn(open_)) for tid, open_ in producers.items()
            }
        )
        self.log = SimpleNamespace(info=lambda *args: None)
        self.stopped: list[str] = []
        self.started: list[str] = []

    def _tps_to_transactional_ids(self, tps: set[TP]) -> set[str]:
        return {f"app-0-{tp.partition}" for tp in tps}

    async def _stop_transactions(self, tids: list[str]) -> None:
        self.stopped += tids
        for tid in tids:
            self.producer._transaction_producers.pop(tid, None)

    async def _start_transactions(self, tids: list[str]) -> None:
        self.started += tids


def test_a_rebalance_begins_transactions_only_where_none_is_open():
    """Kept partition 0's producer is mid-transaction (beginning again is refused, with a
    warning per producer); kept 1's is idle; 2 is newly assigned (its old producer, mid-
    transaction, is stopped and a new one begun); 3 is revoked."""
    manager = _RebalanceRecorder(
        {"app-0-0": True, "app-0-1": False, "app-0-2": True, "app-0-3": True}
    )
    assigned = {TP("in", 0), TP("in", 1), TP("in", 2)}
    rebalance = faust_fixes._on_rebalance_with_fresh_producers
    asyncio.run(rebalance(manager, assigned, {TP("in", 3)}, {TP("in", 2)}))
    assert manager.stopped == ["app-0-2", "app-0-3"]
    assert manager.started == ["app-0-1", "app-0-2"]
