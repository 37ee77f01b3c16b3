"""Quix Streams doing what faustapp's sensor-stats-1m does: 1-minute tumbling windows per key by
event time (the reading's ``ts``), with grace, final results only, to an output topic.

Run as its own process (``python -m bench.quix_app ...``). It stops by itself once it has
processed ``--expect`` records and prints one JSON line with the monotonic times (shared by every
process on the machine) of the first and last record processed.

Windows close per partition (``closing_strategy="partition"``), like faustapp's stream time:
a partition's largest event time closes every key's windows on it, so the closer reading at the
end of each partition makes every window of the data final.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

import orjson
from quixstreams import Application
from quixstreams.dataframe.windows import Count, Max, Min, Sum

from bench.own_rss import own_peak_rss_mib

MINUTE = 60_000


def reading_ts(value: object, headers: object, timestamp: int, timestamp_type: object) -> int:
    """Event time of a reading: its ``ts`` field (epoch ms), not the Kafka timestamp."""
    return int(value["ts"])  # type: ignore[index]


def run(options: argparse.Namespace) -> dict[str, object]:
    progress: dict[str, object] = {"count": 0, "first_event": None, "last_event": None}
    app: Application | None = None

    def on_processed(topic: str, partition: int, offset: int) -> None:
        count = progress["count"] = int(progress["count"]) + 1  # type: ignore[arg-type]
        if progress["first_event"] is None:
            progress["first_event"] = time.monotonic()
        if count >= options.expect:
            progress["last_event"] = time.monotonic()
            app.stop()  # type: ignore[union-attr]

    app = Application(
        broker_address=options.bootstrap,
        consumer_group=options.group,
        auto_offset_reset="earliest",
        state_dir=options.state_dir,
        processing_guarantee=options.guarantee,
        on_message_processed=on_processed,
        loglevel="WARNING",
    )
    readings = app.topic(
        options.input,
        value_deserializer="json",
        key_deserializer="str",
        timestamp_extractor=reading_ts,
    )
    stats = app.topic(options.output, value_serializer="json", key_serializer="str")
    sdf = app.dataframe(readings)
    sdf = (
        sdf.tumbling_window(duration_ms=MINUTE, grace_ms=options.grace_ms)
        .agg(
            count=Count(),
            sum=Sum(column="value"),
            min=Min(column="value"),
            max=Max(column="value"),
        )
        .final(closing_strategy="partition")
    )
    sdf.to_topic(stats)

    def watchdog() -> None:
        time.sleep(options.timeout)
        progress["timed_out"] = True
        app.stop()

    threading.Thread(target=watchdog, daemon=True).start()
    app.run()
    progress.setdefault("timed_out", False)
    return progress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--grace-ms", type=int, required=True)
    parser.add_argument("--expect", type=int, required=True, help="records in the input topic")
    parser.add_argument(
        "--guarantee", choices=("at-least-once", "exactly-once"), default="at-least-once"
    )
    parser.add_argument("--timeout", type=float, default=600.0)
    options = parser.parse_args()
    result = run(options)
    result["peak_rss_mib"] = own_peak_rss_mib()
    print(orjson.dumps(result).decode(), flush=True)
    sys.exit(0 if int(result["count"]) >= options.expect else 1)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
