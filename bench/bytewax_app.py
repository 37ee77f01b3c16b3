"""Bytewax doing what faustapp's sensor-stats-1m does: 1-minute tumbling windows per sensor by
event time (the reading's ``ts``), count, sum, min and max, final results to an output topic.

Run as its own process (``python -m bench.bytewax_app ...``), one Bytewax worker. The Kafka input
reads the pre-filled topic to its end offsets and stops there (``tail=False``): the dataflow ends
once every record was read and every window emitted. Prints one JSON line with the monotonic
times (shared by every process on the machine) of the first record processed and of the last
window result handed to the sink, and with how many records were processed.

Bytewax's event clock is kept per key (each sensor's windows close when that sensor's own
watermark passes their end, grace = ``wait_for_system_duration``), and every window still open
at the end of the input closes then: the closer readings' own windows are emitted too (the
bench does not judge them).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timedelta, timezone

import bytewax.operators as op
import orjson
from bytewax.connectors.kafka import KafkaSink, KafkaSinkMessage, KafkaSource
from bytewax.dataflow import Dataflow
from bytewax.operators.windowing import EventClock, TumblingWindower, fold_window
from bytewax.run import cli_main

from bench.own_rss import own_peak_rss_mib

MINUTE = 60_000
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def build_flow(
    options: argparse.Namespace, progress: dict[str, object]
) -> tuple[Dataflow, list[int]]:
    """Input, decode, window, encode, output: the whole job; and the count of records decoded."""
    loads = orjson.loads
    monotonic = time.monotonic
    counter = [0]

    def decode(message: object) -> tuple[str, tuple[int, float]]:
        reading = loads(message.value)  # type: ignore[attr-defined]
        if not counter[0]:
            progress["first_event"] = monotonic()
        counter[0] += 1
        return message.key.decode(), (reading["ts"], reading["value"])  # type: ignore[attr-defined]

    def event_time(point: tuple[int, float]) -> datetime:
        return EPOCH + timedelta(milliseconds=point[0])

    def new_figures() -> list[float]:
        return [0, 0.0, float("inf"), float("-inf")]

    def fold(acc: list[float], point: tuple[int, float]) -> list[float]:
        value = point[1]
        acc[0] += 1
        acc[1] += value
        if value < acc[2]:
            acc[2] = value
        if value > acc[3]:
            acc[3] = value
        return acc

    def merge(a: list[float], b: list[float]) -> list[float]:  # session windows only
        return [a[0] + b[0], a[1] + b[1], min(a[2], b[2]), max(a[3], b[3])]

    def encode(item: tuple[str, tuple[int, list[float]]]) -> KafkaSinkMessage:
        sensor, (window_id, (count, total, low, high)) = item
        start = window_id * MINUTE  # windows aligned to the epoch, one minute each
        progress["results"] = int(progress["results"]) + 1  # type: ignore[arg-type]
        progress["last_result"] = monotonic()
        value = {"start": start, "end": start + MINUTE, "count": count, "sum": total}
        value.update(min=low, max=high)
        return KafkaSinkMessage(sensor.encode(), orjson.dumps(value))

    def count_late(item: object) -> None:
        progress["late"] = int(progress["late"]) + 1  # type: ignore[arg-type]

    flow = Dataflow("bench_bytewax_1m")
    source = KafkaSource(
        [options.bootstrap], [options.input], tail=False, batch_size=options.batch_size
    )
    readings = op.map("decode", op.input("in", flow, source), decode)
    windows = fold_window(
        "stats_1m",
        readings,
        EventClock(event_time, wait_for_system_duration=timedelta(milliseconds=options.grace_ms)),
        TumblingWindower(length=timedelta(minutes=1), align_to=EPOCH),
        new_figures,
        fold,
        merge,
    )
    op.inspect("late", windows.late, lambda _step, item: count_late(item))
    sink = KafkaSink([options.bootstrap], options.output)
    op.output("out", op.map("encode", windows.down, encode), sink)
    return flow, counter


def run(options: argparse.Namespace) -> dict[str, object]:
    progress: dict[str, object] = {
        "first_event": None,
        "last_result": None,
        "results": 0,
        "late": 0,
    }
    flow, counter = build_flow(options, progress)
    cli_main(flow, workers_per_process=1)
    progress["count"] = counter[0]
    progress["returned"] = time.monotonic()
    # The last observation: every record processed (the input had ended: the last windows close
    # at its end) and every window handed to the sink.
    progress["last_event"] = progress["last_result"]
    return progress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--grace-ms", type=int, required=True)
    parser.add_argument("--expect", type=int, required=True, help="records in the input topic")
    parser.add_argument("--batch-size", type=int, default=1000, help="KafkaSource batch size")
    options = parser.parse_args()
    result = run(options)
    result["peak_rss_mib"] = own_peak_rss_mib()
    print(orjson.dumps(result).decode(), flush=True)
    sys.exit(0 if int(result["count"]) >= options.expect else 1)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
