"""Corrections to faust-streaming behaviour that breaks faustapp's guarantees, in one place
(topic creation on a cluster losing a broker: faust_admin_fixes, installed from here).

Each fix names the symptom, so it can be dropped once Faust itself is fixed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.producer.transaction_manager import TransactionManager, TransactionState
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer, TopicPartitionGroup
from faust.transport.consumer import TransactionManager as FaustTransactionManager
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Producer as FaustProducer
from faust.types import TP
from faust.worker import Worker

from faustapp import faust_admin_fixes
from faustapp.producing import commit_gate

log = logging.getLogger(__name__)


async def _highwaters_from_broker(
    self: AIOKafkaConsumerThread, partitions: list[TP]
) -> Mapping[TP, int]:
    """Ask the broker for end offsets; with ``read_committed`` it answers the last stable offset.

    Faust's own version, under ``exactly_once``, reads aiokafka's cached last stable offset,
    which is unknown for a partition this consumer has not fetched yet. Recovery then takes the
    highwater for -1 and a standby taking over crashes with ``ConsistencyError`` ("persisted
    offset ... is higher than the last offset"), or skips recovery altogether.
    """
    return await self._ensure_consumer().end_offsets(partitions)


# --- records fetched but never processed ----------------------------------------------
#
# Faust drops a fetched batch when the flow stopped meanwhile (a rebalance began while the
# fetch was waiting) and then "seeks back to committed offsets". aiokafka's
# ``seek_to_committed`` leaves a partition alone when its committed offset is unknown or 0, so a
# partition taken over from a worker that had not committed yet silently loses the batch: the
# fetch position is already past it and nothing reads it again. Faust does the same for
# records of a partition it paused during the fetch. The fix notes each partition's position
# right after a fetch; a drop then moves the position back to the first dropped record, unless
# something (a rebalance, recovery's own seek) moved it since.

_original_fetch_records = AIOKafkaConsumerThread._fetch_records
_POSITIONS_AFTER_FETCH = "_faustapp_positions_after_fetch"


def _current_assignment(consumer: Any) -> Any:
    """aiokafka's live ``Assignment`` (a new object after every rebalance), or None."""
    subscription = consumer._subscription.subscription
    return None if subscription is None else subscription.assignment


async def _fetch_records_noting_positions(
    self: AIOKafkaConsumerThread,
    consumer: Any,
    active_partitions: Any,
    timeout: float | None = None,
    max_records: int | None = None,
) -> Any:
    """Faust's fetch, plus where each returned partition's position stood right after it."""
    _pause_unread_partitions(self, consumer)
    records = await _original_fetch_records(
        self, consumer, active_partitions, timeout=timeout, max_records=max_records
    )
    noted: dict[TP, tuple[Any, int]] = {}
    if records:
        assignment = _current_assignment(consumer)
        for tp in records:
            state = None if assignment is None else assignment.state_value(tp)
            if state is not None and state.has_valid_position:
                noted[tp] = (assignment, state.position)
    setattr(self, _POSITIONS_AFTER_FETCH, noted)
    return records


# --- an empty partition holding up every fetch ---------------------------------------------
#
# Faust's leader topic (one partition, never written to) is assigned to one worker, and aiokafka
# fetches every assigned partition that is not paused in the client (Faust's own pause only
# filters what it hands out). aiokafka keeps one fetch in flight per broker and fetches no
# partition whose records are still buffered, so while a batch of the input was processed the
# next fetch held the leader partition alone, and the broker kept that empty fetch for Faust's
# ``fetch_max_wait_ms`` (1.5 s). The drained input partitions then waited for it to come back: a
# worker of the benchmark spent more than half its time waiting for records that were there.
# Leadership is the partition's assignment alone; nothing reads it, so the client pauses it.

_PAUSED_FOR = "_faustapp_unread_paused_for"


def _pause_unread_partitions(self: AIOKafkaConsumerThread, consumer: Any) -> None:
    """Pause the leader partition in the client, once per assignment (runs in its thread)."""
    assignment = _current_assignment(consumer)
    if assignment is None or getattr(self, _PAUSED_FOR, None) is assignment:
        return
    setattr(self, _PAUSED_FOR, assignment)
    if self.app.conf.topic_disable_leader:
        return
    leader = self.app._leader_assignor._leader_tp
    tp = TopicPartition(leader.topic, leader.partition)
    if tp in assignment.tps:
        consumer.pause(tp)


# The same rule makes any fetch of idle partitions alone (a standby's changelog between two
# flushes of its active, input partitions that are caught up) hold the next fetch of busy ones for
# as long as the broker may keep a fetch open: Faust fixes that at 1.5 s; faustapp sets it
# (``FAUSTAPP_FETCH_MAX_WAIT_MS``, 100 ms by default).

_original_create_worker_consumer = AIOKafkaConsumerThread._create_worker_consumer
FETCH_MAX_WAIT_MS = 100


def _create_worker_consumer_with_fetch_wait(self: AIOKafkaConsumerThread, *args: Any) -> Any:
    consumer = _original_create_worker_consumer(self, *args)
    consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the consumer starts its fetcher
    return consumer


def positions_after_fetch(consumer: Consumer) -> dict[TP, int]:
    """Each partition's fetch position right after the latest fetch (empty if unknown)."""
    thread = getattr(consumer, "_thread", None)
    noted: Mapping[TP, tuple[Any, int]] = getattr(thread, _POSITIONS_AFTER_FETCH, {})
    return {tp: position for tp, (_, position) in noted.items()}


async def _rewind_in_thread(thread: AIOKafkaConsumerThread, firsts: Mapping[TP, int]) -> list[TP]:
    """Seek each partition back to ``firsts[tp]`` if nothing moved it since the fetch."""
    consumer = thread._ensure_consumer()
    assignment = _current_assignment(consumer)
    noted: Mapping[TP, tuple[Any, int]] = getattr(thread, _POSITIONS_AFTER_FETCH, {})
    rewound = []
    for tp, first in firsts.items():
        fetched = noted.get(tp)
        state = None if assignment is None else assignment.state_value(tp)
        if fetched is None or state is None or not state.has_valid_position:
            continue
        fetched_under, position_after = fetched
        if fetched_under is not assignment or state.position != position_after:
            continue  # reassigned or sought since: the new position is the right one
        consumer.seek(TopicPartition(tp.topic, tp.partition), first)
        rewound.append(tp)
    return rewound


async def rewind_unprocessed(consumer: Consumer, dropped: Mapping[TP, Sequence[Any]]) -> None:
    """Make the consumer fetch ``dropped`` records again: they were fetched but not processed."""
    firsts = {tp: records[0].offset for tp, records in dropped.items() if records}
    thread = getattr(consumer, "_thread", None)
    if not firsts or not isinstance(thread, AIOKafkaConsumerThread):
        return
    rewound = await thread.call_thread(_rewind_in_thread, thread, firsts)
    if rewound:
        log.info(
            "fetched records not processed (rebalance or pause); reading again from: %s",
            ", ".join(f"{tp.topic}[{tp.partition}]@{firsts[tp]}" for tp in sorted(rewound)),
        )


# --- a transaction that lost a record must never commit --------------------------------
#
# Kafka's Java producer puts a transaction in an abortable-error state when any record of it
# fails to be delivered, so committing it is impossible. aiokafka does not: a record that fails
# (a broker answering MESSAGE_TOO_LARGE, a batch expiring while the partition has no leader) is
# reported on its future only, and a later ``commit_transaction`` commits the rest. A worker that
# crashed on such a failure still ran Faust's final commit on the way down, so half a flush
# (window updates without their mark, results without the state deleted after them) became
# visible: duplicated and wrong windows. The fix dooms the transaction on the first failed
# record and makes every commit of it fail; the next owner of the transactional id aborts it.


class TransactionAborted(Exception):
    """A transaction lost a record: it is aborted, never committed."""


def _doom_on_failure(txn: TransactionManager, future: asyncio.Future) -> None:
    if future.cancelled() or future.exception() is None:
        return
    if txn.state == TransactionState.IN_TRANSACTION:
        log.error(
            "transaction %s lost a record (%r): it will be aborted, not committed",
            txn.transactional_id,
            future.exception(),
        )
        txn.error_transaction(future.exception())
        txn.wait_for_transaction_end().exception()  # retrieved: raised again at commit


_original_producer_send = AIOKafkaProducer.send


@functools.wraps(_original_producer_send)
async def _send_dooming_transaction_on_failure(
    self: AIOKafkaProducer, *args: Any, **kw: Any
) -> Any:
    _track_topic(self, args[0] if args else kw["topic"])
    future = await _original_producer_send(self, *args, **kw)
    txn = self._txn_manager
    if txn is not None and txn.transactional_id is not None:
        future.add_done_callback(functools.partial(_doom_on_failure, txn))
    return future


# --- a producer forgetting the topics it sends to -------------------------------------
#
# A new aiokafka producer fetches metadata for all topics. The first send to a topic created
# after that adds the topic to the client's list, and from then on the client asks for the
# listed topics only, and replaces its metadata with the answer: every other topic it was
# sending to (changelogs, outputs) is forgotten. A record already queued for one of them has no
# leader and waits until its delivery timeout, and so does the transaction commit, or the
# revoke that flushes the producer: a worker hung for minutes in a rebalance after it created
# the output topics (found by the full chaos run). Every topic sent to is kept in the list.


def _track_topic(producer: AIOKafkaProducer, topic: str) -> None:
    client = producer.client
    if topic not in client._topics and client.cluster.partitions_for_topic(topic) is not None:
        client._topics.add(topic)  # known already: listed without a new metadata request


def doomed(producer: AIOKafkaProducer) -> bool:
    """True when ``producer``'s open transaction lost a record and can only be aborted."""
    txn = producer._txn_manager
    return txn is not None and txn.state in (
        TransactionState.ABORTABLE_ERROR,
        TransactionState.FATAL_ERROR,
    )


_original_commit_transactions = FaustProducer.commit_transactions


async def _commit_transactions_unless_doomed(
    self: FaustProducer,
    tid_to_offset_map: Mapping[str, Mapping[TP, int]],
    group_id: str,
    start_new_transaction: bool = True,
) -> None:
    """Faust's commit, refused as a whole when any transaction in it lost a record, and never
    made between the steps of a flush (see ``producing.CommitGate``)."""
    async with commit_gate(self.app).committing():
        lost = [
            tid
            for tid in tid_to_offset_map
            if (producer := self._transaction_producers.get(tid)) is not None and doomed(producer)
        ]
        if lost:
            raise TransactionAborted(
                f"transactions {', '.join(sorted(lost))} lost a record and cannot commit; "
                "the worker must restart from the last committed offsets"
            )
        await _original_commit_transactions(
            self, tid_to_offset_map, group_id, start_new_transaction=start_new_transaction
        )


# --- a delivery timeout apart from the request timeout ----------------------------------
#
# aiokafka uses its request timeout both for one request and for how long a record may wait for
# delivery. Faust sets it to 20 minutes, so a produce request that a restarting broker never
# answers blocks every later send to that broker (and Faust's revoke, which flushes the
# producer) for that long. faustapp keeps requests short and gives records Kafka's own
# delivery timeout (two minutes) to get through a broker restart.

DELIVERY_TIMEOUT_S = 120.0
_original_new_producer = FaustProducer._new_producer


def _new_producer_with_delivery_timeout(self: FaustProducer, *args: Any, **kw: Any) -> Any:
    producer = _original_new_producer(self, *args, **kw)
    accumulator = producer._message_accumulator
    accumulator._batch_ttl = max(accumulator._batch_ttl, DELIVERY_TIMEOUT_S)
    return producer


# --- recovery seeking to a negative offset ----------------------------------------------
#
# Faust starts reading a changelog partition with no local offset at "earliest offset - 1". Right
# after a broker restart the broker can answer the earliest offset as -1, so recovery seeks to
# -2 and crashes with ``ValueError: Offset must be a positive integer``. Any offset below 0 means
# "from the beginning".


async def _seek_offsets_from_zero(
    self: Recovery, consumer: Any, tps: Any, offsets: Any, title: str
) -> None:
    new_offsets = {}
    for tp in tps:
        offset = offsets[tp]
        if offset is None or offset < 0:
            if offset is not None and offset < -1:
                log.info(
                    "%s recovery: %s has no valid start offset (%d); reading from 0",
                    title,
                    tp,
                    offset,
                )
            offset = 0
        new_offsets[tp] = offset
    await consumer.seek_wait(new_offsets)


# --- debug logging paid for at every level -------------------------------------------
#
# At ``-l warn`` or above Faust's worker adds a progress spinner that turns on every log message:
# it puts the root logger at DEBUG, so every debug call of aiokafka and Faust (several per
# produced record) builds a log record that the handlers then drop. About 5% of a busy worker's
# time; the spinner is decoration, so the worker goes without it.


# --- a recovery that ends before it starts ----------------------------------------------
#
# Faust's recovery waits for ``signal_recovery_end``; its changelog loop sets it when the actives
# are caught up and clears it again on its next turn. Changelogs restored a batch at a time
# (``faustapp.restore``) set it without that loop turning, so the flag could still be set when
# the next rebalance's recovery began: that recovery "ended" at once without reading the
# changelog, and a partition moved from a stopping worker started from empty state. A recovery
# now clears the flag when it starts.

_original_set_recovery_started = Recovery._set_recovery_started


def _set_recovery_started_without_stale_end(self: Recovery) -> None:
    self.signal_recovery_end.clear()
    _original_set_recovery_started(self)


def _setup_root_logger_without_spinner(self: Worker, logger: logging.Logger, level: int) -> None:
    self.spinner = None


async def _on_rebalance_with_fresh_producers(
    self: FaustTransactionManager,
    assigned: set[TP],
    revoked: set[TP],
    newly_assigned: set[TP],
) -> None:
    """Faust's ``TransactionManager.on_rebalance``, with producers that cannot be fenced twice.

    Faust maps partitions to transactional ids only for partitions that are not standbys *in
    the new assignment*, so a partition revoked here and kept as a standby never has its
    producer stopped. When another worker then took the partition, its producer fenced that
    one; when the partition came back, Faust reused the fenced producer, and the first send
    crashed the worker (``ProducerFenced``). Here every revoked partition's producer is stopped
    unless a partition of the new assignment still needs it, and a partition newly assigned
    always starts on a new producer (whose ``init_transactions`` aborts what was left open).
    """
    keep = self._tps_to_transactional_ids(assigned)
    revoked_ids = {
        self.transactional_id_format.format(
            tpg=TopicPartitionGroup(
                tp.topic, tp.partition, self.app.assignor.group_for_topic(tp.topic)
            ),
            group_id=self.app.conf.id,
        )
        for tp in revoked
    }
    stale = (revoked_ids - keep) | self._tps_to_transactional_ids(newly_assigned)
    if stale:
        self.log.info("Stopping %d transactional producers before the new assignment", len(stale))
        await self._stop_transactions(sorted(stale))
    # A kept producer already in its transaction goes on with it: beginning again is refused
    # (Faust logs "Invalid state transition IN_TRANSACTION -> IN_TRANSACTION" for each).
    producers = self.producer._transaction_producers
    idle = sorted(
        tid
        for tid in keep
        if tid not in producers or not producers[tid]._txn_manager.is_in_transaction()
    )
    if idle:
        self.log.info("Starting %d transactional producers for the assignment", len(idle))
        await self._start_transactions(idle)


def apply(fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS) -> None:
    """Install the fixes (idempotent)."""
    global FETCH_MAX_WAIT_MS
    FETCH_MAX_WAIT_MS = fetch_max_wait_ms
    AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer_with_fetch_wait
    Worker.on_setup_root_logger = _setup_root_logger_without_spinner
    AIOKafkaConsumerThread._highwaters = _highwaters_from_broker
    AIOKafkaConsumerThread._fetch_records = _fetch_records_noting_positions
    AIOKafkaProducer.send = _send_dooming_transaction_on_failure
    FaustProducer.commit_transactions = _commit_transactions_unless_doomed
    FaustProducer._new_producer = _new_producer_with_delivery_timeout
    Recovery._seek_offsets = _seek_offsets_from_zero
    Recovery._set_recovery_started = _set_recovery_started_without_stale_end
    FaustTransactionManager.on_rebalance = _on_rebalance_with_fresh_producers
    faust_admin_fixes.apply()
