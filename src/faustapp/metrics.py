"""Prometheus metrics of the pipelines, beside the ones Faust's own sensor exports."""

from __future__ import annotations

import faust
from aiokafka.errors import IllegalStateError
from faust.exceptions import ConsumerNotStarted
from prometheus_client import Counter, Gauge, Histogram

EVENTS_IN = Counter(
    "faustapp_events_in", "Records read from a pipeline's input topic.", ["pipeline"]
)
EVENTS_ACCEPTED = Counter(
    "faustapp_events_accepted", "Valid events folded into at least one window.", ["pipeline"]
)
WINDOWS_CLOSED = Counter("faustapp_windows_closed", "Final window results emitted.", ["pipeline"])
LATE_EVENTS = Counter(
    "faustapp_late_events", "Events that arrived after their windows were final.", ["pipeline"]
)
DEAD_LETTERS = Counter(
    "faustapp_dead_letters", "Malformed records sent to the dead-letter topic.", ["pipeline"]
)
REKEYED = Counter(
    "faustapp_rekeyed_events",
    "Records forwarded to the partition their value's key belongs to.",
    ["pipeline"],
)
REPLAYED = Counter(
    "faustapp_replayed_events",
    "Records re-read after a restart that the window state already held (skipped).",
    ["pipeline"],
)
OPEN_WINDOWS = Gauge(
    "faustapp_open_windows", "Windows held in state, not yet final.", ["pipeline", "partition"]
)
STREAM_TIME = Gauge(
    "faustapp_stream_time_seconds",
    "Largest event time seen on an input partition (the watermark before grace).",
    ["pipeline", "partition"],
)
BATCH_SECONDS = Histogram(
    "faustapp_batch_seconds",
    "Time to process one batch of one partition, from decode to durable writes.",
    ["pipeline"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


def refresh_partition_offsets(app: faust.App) -> int:
    """Keep Faust's lag gauges current: it sets them only on a fetch with records and on a
    commit, and clears them at every rebalance, so a caught-up worker showed no lag at all.

    Sets the end offset and the committed offset of every assigned partition that has them;
    returns how many partitions were refreshed.
    """
    consumer = app.consumer
    monitor = app.monitor
    if monitor is None:
        return 0
    try:
        assignment = consumer.assignment()
    except ConsumerNotStarted:
        return 0
    refreshed = 0
    for tp in assignment:
        try:
            end_offset = consumer.highwater(tp)
        except (AssertionError, IllegalStateError):  # revoked since assignment() (other thread)
            continue
        committed = consumer._committed_offset.get(tp)
        if end_offset is None or end_offset < 0 or committed is None:
            continue
        monitor.track_tp_end_offset(tp, end_offset)
        monitor.on_tp_commit({tp: committed})
        refreshed += 1
    return refreshed
