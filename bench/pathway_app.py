"""Pathway doing what faustapp's sensor-stats-1m does: 1-minute tumbling windows per sensor by
event time (the reading's ``ts``), count, sum, min and max, to an output topic.

Run as its own process (``python -m bench.pathway_app ...``), one Pathway worker, its Kafka input
in streaming mode. ``windowby`` keeps one time for the whole table (the largest event time it has
seen, updated after each minibatch), not one per partition or per sensor. Hence, by default, no
cutoff: a window takes every reading of its minute, however late, and its result is an update
stream: each change of a window's figures is written as a retraction of the old row (``diff``
-1) and the new row (``diff`` +1), the Pathway way. (A behavior does not make that "once per
window" here: the table's one time runs ahead with the partition read furthest, so a delay
still releases windows of the other partitions early, and a cutoff or ``exactly_once_behavior``
would drop their readings.) The closer readings' windows are written too; the bench does not
judge them.

Pathway ends a streaming run only when stopped. This process stops itself (SIGTERM, which
Pathway turns into a graceful shutdown that flushes its outputs) once every input record was
counted and the results of the minibatch that held the last of them were computed, then prints
one JSON line with the monotonic times (shared by every process on the machine) of the first
minibatch seen and of that last result, and how many records it processed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time

import orjson
import pathway as pw

from bench.own_rss import own_peak_rss_mib

MINUTE = 60_000


class Reading(pw.Schema):
    sensor_id: str
    ts: int
    value: float


def build(options: argparse.Namespace, progress: dict[str, object]) -> None:
    """Input, window, output, and the two subscriptions that tell when the job is done."""
    rdkafka = {
        "bootstrap.servers": options.bootstrap,
        "group.id": options.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": "false",
    }
    readings = pw.io.kafka.read(
        rdkafka,
        options.input,
        schema=Reading,
        format="json",
        autocommit_duration_ms=options.commit_ms,
        name="sensor-readings",
    )
    stats = readings.windowby(
        pw.this.ts,
        window=pw.temporal.tumbling(duration=MINUTE),
        instance=pw.this.sensor_id,
    ).reduce(
        sensor_id=pw.this._pw_instance,
        start=pw.this._pw_window_start,
        end=pw.this._pw_window_end,
        count=pw.reducers.count(),
        sum=pw.reducers.sum(pw.this.value),
        min=pw.reducers.min(pw.this.value),
        max=pw.reducers.max(pw.this.value),
    )
    pw.io.kafka.write(
        stats, {"bootstrap.servers": options.bootstrap}, options.output, format="json"
    )

    lock = threading.Lock()
    state = {"all_read_at": None, "results_through": -1}

    def maybe_done() -> None:
        all_read_at = state["all_read_at"]
        done = all_read_at is not None and state["results_through"] >= all_read_at
        if done and progress["last_event"] is None:
            progress["last_event"] = time.monotonic()
            os.kill(os.getpid(), signal.SIGTERM)

    # Pathway calls these with keyword arguments: the names (time too) are its own.
    def on_count(key: object, row: dict, time: int, is_addition: bool) -> None:
        if not is_addition:
            return
        with lock:
            if progress["first_event"] is None:
                progress["first_event"], progress["first_count"] = _now(), row["n"]
            progress["count"] = row["n"]
            if row["n"] >= options.expect and state["all_read_at"] is None:
                state["all_read_at"] = time
            maybe_done()

    def on_change(key: object, row: dict, time: int, is_addition: bool) -> None:
        progress["changes" if is_addition else "retractions"] += 1  # type: ignore[operator]

    def on_time_end(time: int) -> None:
        with lock:
            state["results_through"] = max(int(state["results_through"]), time)
            maybe_done()

    pw.io.subscribe(readings.reduce(n=pw.reducers.count()), on_count, name="count")
    pw.io.subscribe(stats, on_change, on_time_end=on_time_end, name="results")


def _now() -> float:
    return time.monotonic()


def run(options: argparse.Namespace) -> dict[str, object]:
    progress: dict[str, object] = {
        "count": 0,
        "first_event": None,
        "first_count": 0,
        "last_event": None,
        "changes": 0,
        "retractions": 0,
        "timed_out": False,
    }
    build(options, progress)

    def watchdog() -> None:
        time.sleep(options.timeout)
        progress["timed_out"] = True
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watchdog, daemon=True).start()
    progress["run_started"] = time.monotonic()
    with contextlib.suppress(SystemExit, KeyboardInterrupt):
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    progress["returned"] = time.monotonic()
    return progress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--expect", type=int, required=True, help="records in the input topic")
    parser.add_argument("--commit-ms", type=int, default=1500, help="Pathway's minibatch timer")
    parser.add_argument("--timeout", type=float, default=600.0)
    options = parser.parse_args()
    result = run(options)
    result["peak_rss_mib"] = own_peak_rss_mib()
    print(orjson.dumps(result).decode(), flush=True)
    sys.exit(0 if int(result["count"]) >= options.expect else 1)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
