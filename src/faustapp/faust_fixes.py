"""Corrections to faust-streaming behaviour that breaks faustapp's guarantees, in one place.

Each fix names the symptom, so it can be dropped once Faust itself is fixed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import TopicPartition
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

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


def apply() -> None:
    """Install the fixes (idempotent)."""
    AIOKafkaConsumerThread._highwaters = _highwaters_from_broker
    AIOKafkaConsumerThread._fetch_records = _fetch_records_noting_positions
