"""A batch path below Faust's ``Stream`` for the input topics faustapp windows.

Faust hands every message through its consumer's drain loop (a task per message), the conductor,
a channel queue, an event and the stream machinery: about 75 us per event before any work is done.
For a topic registered here, the drain loop instead passes each fetched batch of a partition to a
handler in one call, as the client's own records (no Faust ``Message`` per record), and the
handler acknowledges them by offset (:func:`ack_offsets`) exactly as Faust's streams would.
Offsets, gaps (transaction markers), commits, transactions, rebalances and recovery stay Faust's
own; table changelogs go to :mod:`faustapp.restore` the same way; other topics keep Faust's usual
path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from aiokafka.structs import TopicPartition
from faust.transport.consumer import Consumer
from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from faustapp.faust_fixes import positions_after_fetch, rewind_unprocessed
from faustapp.restore import changelog_handlers

log = logging.getLogger(__name__)


class SourceRecord(Protocol):
    """What handlers read of a record: both aiokafka's records and Faust's messages have it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] | None


BatchHandler = Callable[[TP, Sequence[SourceRecord]], Awaitable[None]]

_handlers: dict[str, BatchHandler] = {}


def register(topic: str, handler: BatchHandler) -> None:
    """Route ``topic``'s messages to ``handler`` in batches; it must ack nothing itself."""
    _handlers[topic] = handler
    Consumer._drain_messages = _drain_in_batches  # type: ignore[method-assign]


async def _drain_in_batches(self: Consumer, fetcher: object) -> None:  # noqa: C901
    """Faust's ``Consumer._drain_messages``, batch-wise for registered topics."""
    app = self.app
    callback = self.callback
    # Table changelogs too: recovery and standbys apply a fetched batch at a time.
    handlers = {**changelog_handlers(app, lambda: positions_after_fetch(self)), **_handlers}
    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    acks_enabled_for = app.topics.acks_enabled_for
    to_message = self._to_message
    # Not ``track_message``: Faust's rebalance and shutdown wait for tracked messages to be
    # acked, while these are acked by the write-behind flush, which the revoke handler and the
    # app's stop run themselves (under the partition lock, so an in-flight batch finishes).
    commit_every = app.conf.broker_commit_every
    flow_control = app.flow_control
    try:
        while not fetcher.should_stop:  # type: ignore[attr-defined]
            records, active = await self._wait_next_records(1.0)
            await asyncio.sleep(0)
            if not records or self.should_stop:
                continue
            if not self.flow_active:
                # Faust's own answer is the seek alone, which loses the records of a partition
                # without a committed offset; rewind first (see faust_fixes).
                await rewind_unprocessed(self, records)
                await self.perform_seek()
                continue
            generation = app.consumer_generation_id
            pending = dict(records)
            for tp, raw_records in records.items():
                if not self.flow_active or app.consumer_generation_id != generation:
                    await rewind_unprocessed(self, pending)
                    break
                del pending[tp]
                if active is not None and tp not in active and tp not in self._buffered_partitions:
                    await rewind_unprocessed(self, {tp: raw_records})  # paused meanwhile
                    continue
                app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                handler = handlers.get(tp.topic)
                r_offset = get_read_offset(tp)
                batch: list[SourceRecord] = []
                for record in raw_records:
                    offset = record.offset
                    if r_offset is not None and offset < r_offset:
                        continue  # already seen (a re-fetch after a seek)
                    if r_offset and offset - r_offset > 1 and acks_enabled_for(tp.topic):
                        await self._add_gap(tp, r_offset + 1, offset)
                    if handler is None:
                        message = to_message(tp, record)
                        await self.wait_first(callback(message), self.suspend_flow.wait())
                        set_read_offset(tp, offset)
                    else:
                        batch.append(record)
                    r_offset = offset
                if batch:
                    _record_batch_in(app, tp, batch)
                    await flow_control.acquire()
                    await handler(tp, batch)
                    set_read_offset(tp, batch[-1].offset)
                if commit_every is not None and self._n_acked >= commit_every:
                    self._n_acked = 0
                    await self.commit()
    except self.consumer_stopped_errors:
        if app.should_stop:
            log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if app.should_stop:
            return
        raise


def ack_offsets(consumer: Consumer, tp: TP, processed: Sequence[int]) -> None:
    """``Consumer.ack`` for a run of one partition's records at once, by offset."""
    if not processed or not consumer.app.topics.acks_enabled_for(tp.topic):
        return
    # The client's own type: the keys of the acked offsets become the keys of the offsets an
    # exactly-once commit hands to aiokafka, which refuses any other.
    tp = TopicPartition(tp.topic, tp.partition)
    with ack_lock:
        committed = consumer._committed_offset[tp]
        index = consumer._acked_index[tp]
        offsets = [
            offset
            for offset in processed
            if (committed is None or offset >= committed) and offset not in index
        ]
        index.update(offsets)
        consumer._acked[tp].extend(offsets)
        consumer._n_acked += len(offsets)
        notify(consumer._waiting_for_ack)


def _record_batch_in(app: object, tp: TP, batch: Sequence[SourceRecord]) -> None:
    """Faust's message-in sensor figures, counted once per batch instead of once per message."""
    monitor = getattr(app, "monitor", None)
    last = batch[-1].offset
    try:
        monitor.messages_received_total += len(batch)  # type: ignore[union-attr]
        monitor.messages_received_by_topic[tp.topic] += len(batch)  # type: ignore[union-attr]
        monitor.tp_read_offsets[tp] = last  # type: ignore[union-attr]
        prometheus = getattr(monitor, "_metrics", None)
        if prometheus is not None:
            prometheus.messages_received.inc(len(batch))
            prometheus.messages_received_per_topics.labels(topic=tp.topic).inc(len(batch))
            prometheus.messages_received_per_topics_partition.labels(
                topic=tp.topic, partition=tp.partition
            ).set(last)
    except AttributeError:  # another monitor: fall back to the per-message sensor call
        for message in batch:
            app.sensors.on_message_in(tp, message.offset, message)  # type: ignore[attr-defined]
