"""Corrections to faust-streaming behaviour that breaks faustapp's guarantees, in one place.

Each fix names the symptom, so it can be dropped once Faust itself is fixed.
"""

from __future__ import annotations

from collections.abc import Mapping

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP


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


def apply() -> None:
    """Install the fixes (idempotent)."""
    AIOKafkaConsumerThread._highwaters = _highwaters_from_broker
