"""Changelog records applied to the tables a fetched batch at a time, for recovery and standbys.

Faust sends each changelog record through a task, the conductor, a queue and a timed ``get`` before
its recovery loop buffers it (about 70 us a record: 14,000 records/s, so a million open windows
took 71 s to restore, almost all of it asyncio bookkeeping). With the batch drain, a fetched batch
of a changelog partition comes here in one call instead, and does exactly what Faust's recovery
loop does with each record: skip what is already applied, buffer it, write the buffer to the
store (one RocksDB write batch per fetch) and advance the recovery offset. Recovery ends the way
Faust's loop ends it, checked after each batch instead of each record.

Under ``exactly_once`` a changelog ends with a transaction marker, never a record, so the last
record's offset stays below the end offset and Faust only notices the end after two 5 s timeouts
of its queue. A fetch that consumed the partition up to its end offset (the consumer's position
is past the highwater) means every offset left is a marker, so recovery is told at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from time import monotonic
from typing import Any

from faust.types import TP
from faust.utils.tracing import finish_span

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ChangelogMessage:
    """What Faust's stores read of a changelog record (``apply_changelog_batch``)."""

    tp: TP
    offset: int
    partition: int
    key: bytes | None
    value: bytes | None


@dataclass(slots=True)
class ChangelogEvent:
    """The event wrapper Faust's recovery buffers hold."""

    message: ChangelogMessage


def changelog_handlers(
    app: Any, positions: Callable[[], Mapping[TP, int]]
) -> dict[str, Callable[[TP, Sequence[Any]], Any]]:
    """A batch handler per table changelog topic; ``positions`` gives each partition's fetch
    position right after the fetch whose records are being handled."""
    recovery = app.tables.recovery

    async def handle(tp: TP, records: Sequence[Any]) -> None:
        await apply_batch(recovery, tp, records, positions().get(tp))

    return {table.changelog_topic.get_topic_name(): handle for table in app.tables.values()}


async def apply_batch(
    recovery: Any, tp: TP, records: Sequence[Any], position_after_fetch: int | None
) -> None:
    """Faust's per-record recovery step for a whole fetched batch of changelog partition ``tp``."""
    if tp in recovery.active_tps:
        offsets, highwaters = recovery.active_offsets, recovery.active_highwaters
    elif tp in recovery.standby_tps:
        offsets, highwaters = recovery.standby_offsets, recovery.standby_highwaters
    else:
        # Faust would apply it to whichever table it handled last (its own XXX note).
        log.debug("changelog records of %s, neither active nor standby here: skipped", tp)
        return
    table = recovery.tp_to_table[tp]
    seen = offsets.get(tp)
    buffer = recovery.buffers[table]
    fresh = [
        ChangelogEvent(ChangelogMessage(tp, r.offset, r.partition, r.key, r.value))
        for r in records
        if seen is None or r.offset > seen
    ]
    if fresh:
        offsets[tp] = seen = fresh[-1].message.offset
        buffer.extend(fresh)
        if table._on_changelog_event:
            for event in fresh:
                await table.on_changelog_event(event)
        table.apply_changelog_batch(buffer)
        buffer.clear()
        recovery._last_flush_at = monotonic()
    highwater = highwaters.get(tp)
    if None not in (highwater, seen, position_after_fetch) and (
        seen < highwater < position_after_fetch
    ):
        offsets[tp] = highwater  # only transaction markers are left
    _signal_progress(recovery)


def _signal_progress(recovery: Any) -> None:
    """What Faust's recovery loop does after each record: end recovery once every active
    partition is caught up, and report standbys ready once they are."""
    if recovery.in_recovery and not recovery.need_recovery():
        recovery.flush_buffers()
        recovery._set_recovery_ended()
        if recovery._actives_span is not None:
            recovery._actives_span.set_tag("Actives-Ready", True)
        recovery.signal_recovery_end.set()
    standby_ready = recovery._standbys_span is None and recovery.tables.standbys_ready
    if not standby_ready and not recovery.standby_remaining_total():
        if recovery._standbys_span is not None:
            finish_span(recovery._standbys_span)
            recovery._standbys_span = None
        recovery.tables.on_standbys_ready()
