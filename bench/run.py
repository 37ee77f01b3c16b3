"""Benchmark: faustapp vs a raw aiokafka consumer, Quix Streams, Bytewax and Pathway, on
pre-filled topics.

    python -m bench.run            # full: 1,000,000 readings, 1,000 sensors, 2 rounds
    python -m bench.run --quick    # smoke: 20,000 readings, 100 sensors, 1 round

Starts a local Kafka broker on free loopback ports (unless $KAFKA_BOOTSTRAP is set) and always
stops it, fills the sensor topic with seeded readings (and, for the trades, logs and clicks rows,
a trades, an app-logs and a clicks topic of the same size: as many records and keys), then runs
the consumers one after the other in alternating rounds. Each faustapp row runs one pipeline in
one worker, but for the default deployment row (FAUSTAPP_PIPELINES unset: every default pipeline
in one worker); each topic has its own raw client row, the ratio's denominator. The Bytewax and
Pathway rows run the Quix row's job in their own process; an engine that cannot run here (not
installed, no build for this Python or platform) keeps its row, marked n/a with the reason.
Prints a table and writes the same figures as JSON (--json, default
bench-results/latest.json). Exit status 0 only if every run of every consumer that could run
was correct.

Per run: events/s from the first to the last event processed, start-up time (process start to
first event processed), peak RSS and whether the output equals the expected figures.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import orjson

from bench.broker import BrokerError, kafka_broker
from bench.clicks_data import CLICKS, fill_clicks_topic
from bench.common import PROJECT_ROOT, git_head, load_average, machine_info, src_fingerprint
from bench.consumers import CONSUMERS, OPT_IN_CONSUMERS, Context, Expectations
from bench.data import DataSpec, create_topic, fill_topic
from bench.engines import ENGINES, cannot_run, run_bytewax, run_pathway
from bench.extras import format_extras, run_extras
from bench.faustapp_runner import POLL_S, run_faustapp
from bench.report import failed, format_notes, format_table, short_checks, summarize, with_ratios
from bench.runners import run_quix, run_raw
from bench.sse_clients import run_sse
from bench.uses_data import TOPICS, fill_use_topic

FAUSTAPP_OUTPUTS = (
    "sensor-stats-1m",
    "sensor-stats-5m",
    "sensor-alerts",
    "sensor-sessions",
    "trade-candles-1m",
    "log-stats-1m",
    "user-sessions",
    "page-stats-1m",
    "trending-items",
    "faustapp-late",
    "faustapp-dlq",
)

USE_TOPICS = {**TOPICS, CLICKS: "clicks"}

SIZES = {
    # Same density per sensor in both: one reading per sensor per second of event time.
    "full": {"readings": 1_000_000, "sensors": 1_000, "interval_ms": 1.0, "rounds": 2},
    "quick": {"readings": 20_000, "sensors": 100, "interval_ms": 10.0, "rounds": 1},
}


REGROUPED_NOTE = (
    "page-stats-1m and trending-items regroup the clicks (by page, by item): the worker reads "
    "each click from the clicks topic (lateness, then forward) and again from the pipeline's "
    "repartition topic (the windows), with watermark records besides; trending-items then "
    "relays every final (item, 5-minute window) row to a ranking stage through a third topic. "
    "Their events/s counts input clicks only (each once), those read between the first "
    "observation (a click processed) and the last (every input click read and every expected "
    "result emitted), so the time covers every stage and the last watermarks' round trip; the "
    "records read by all the worker's routers are in events_in_all_routers"
)


RUNNERS = {
    "raw": lambda ctx, consumer, round_no: run_raw(ctx, round_no, consumer),
    "quix": lambda ctx, consumer, round_no: run_quix(ctx, round_no),
    "bytewax": run_bytewax,
    "pathway": run_pathway,
    "sse": run_sse,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small smoke size (~1 minute)")
    parser.add_argument(
        "--json",
        type=Path,
        default=PROJECT_ROOT / "bench-results" / "latest.json",
        help="where to write the figures (default: bench-results/latest.json)",
    )
    parser.add_argument("--rounds", type=int, help="override the number of rounds")
    parser.add_argument("--readings", type=int, help="override the number of readings")
    parser.add_argument("--sensors", type=int, help="override the number of sensors")
    parser.add_argument(
        "--only",
        help="comma-separated consumer ids to run (default: all but the opt-in ones): "
        + ", ".join(c.id for c in CONSUMERS + OPT_IN_CONSUMERS),
    )
    parser.add_argument("--seed", type=int, default=DataSpec.seed)
    parser.add_argument(
        "--create-output-topics",
        action="store_true",
        help="create faustapp's output topics up front (a workaround for a faustapp that does "
        "not declare one of them; the report records it)",
    )
    parser.add_argument("--quiet", action="store_true", help="print the table only")
    extras = parser.add_mutually_exclusive_group()
    extras.add_argument(
        "--no-extras",
        action="store_true",
        help="skip the extra measurements (latency, 1M-key RSS, restart, restore, two workers)",
    )
    extras.add_argument(
        "--only-extras",
        action="store_true",
        help="run only the extras, plus one round of faustapp-1m-alo as their baseline",
    )
    return parser.parse_args(argv)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    size_name = "quick" if options.quick else "full"
    size = dict(SIZES[size_name])
    for name in ("rounds", "readings", "sensors"):
        if getattr(options, name):
            size[name] = getattr(options, name)
    consumers = list(CONSUMERS)
    if options.only:
        wanted = {item.strip() for item in options.only.split(",") if item.strip()}
        consumers += OPT_IN_CONSUMERS
        unknown = wanted - {c.id for c in consumers}
        if unknown:
            print(f"error: unknown consumer ids: {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        consumers = [c for c in consumers if c.id in wanted]
    if options.only_extras:
        consumers = [c for c in CONSUMERS if c.id == "faustapp-1m-alo"]
        size["rounds"] = 1
    signal.signal(signal.SIGTERM, _raise_interrupt)  # so every finally below runs

    def say(message: str) -> None:
        if not options.quiet:
            print(message, flush=True)

    json_path = options.json.resolve()
    logs = json_path.parent / f"logs-{json_path.stem}"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="faustapp-bench-work-"))
    began = time.monotonic()
    spec = DataSpec(
        readings=size["readings"],
        sensors=size["sensors"],
        interval_ms=size["interval_ms"],
        seed=options.seed,
    )
    rows: list[dict] = []
    code = {"git_head": git_head(), "src_sha256_at_start": src_fingerprint()}
    load_at_start = load_average()
    try:
        with kafka_broker(quiet=options.quiet) as (bootstrap, broker_description, broker_pid):
            prefix = f"bench-{uuid.uuid4().hex[:8]}-"
            topic = f"{prefix}sensor-readings"
            say(f"producing {spec.readings:,} readings to {topic} ...")
            dataset = asyncio.run(fill_topic(bootstrap, topic, spec, quiet=options.quiet))
            say(
                f"produced {dataset.total:,} records in {dataset.produce_seconds:.1f}s "
                f"({dataset.total / dataset.produce_seconds:,.0f}/s)"
            )
            uses = {}
            for use in sorted({c.dataset for c in consumers} & set(USE_TOPICS), reverse=True):
                say(f"producing {spec.readings:,} {use} records to {prefix}{USE_TOPICS[use]} ...")
                fill = fill_clicks_topic if use == CLICKS else fill_use_topic
                uses[use] = asyncio.run(
                    fill(
                        bootstrap,
                        use,
                        f"{prefix}{USE_TOPICS[use]}",
                        spec,
                        dataset.start_ms,
                        quiet=options.quiet,
                    )
                )
                say(
                    f"produced {uses[use].total:,} records in {uses[use].produce_seconds:.1f}s "
                    f"({uses[use].total / uses[use].produce_seconds:,.0f}/s)"
                )
            if options.create_output_topics:
                for name in FAUSTAPP_OUTPUTS:
                    asyncio.run(create_topic(bootstrap, f"{prefix}{name}", spec.partitions))
            run_timeout = 120 + dataset.total / 1000
            ctx = Context(
                bootstrap=bootstrap,
                prefix=prefix,
                dataset=dataset,
                expect=Expectations(dataset),
                work=work,
                logs=logs,
                run_timeout=run_timeout,
                startup_timeout=90.0,
                stall_s=10.0 if options.quick else 30.0,
                broker_pid=broker_pid,
                quiet=options.quiet,
                uses=uses,
            )
            runs: dict[str, list[dict]] = {c.id: [] for c in consumers}
            unable = {c.id: cannot_run(c.kind) for c in consumers if c.kind in ENGINES}
            for consumer in consumers:
                if unable.get(consumer.id):
                    say(f"{consumer.label}: cannot run here: {unable[consumer.id]}")
            for round_no in range(1, size["rounds"] + 1):
                for consumer in consumers:
                    if unable.get(consumer.id):
                        continue
                    say(f"round {round_no}/{size['rounds']}: {consumer.label} ...")
                    load_before, src_before = load_average(), src_fingerprint()
                    run = RUNNERS.get(consumer.kind, run_faustapp)(ctx, consumer, round_no)
                    run["round"] = round_no
                    run["load_average_before"] = load_before
                    run["load_average_after"] = load_average()
                    run["src_sha256"] = src_before
                    runs[consumer.id].append(run)
                    say(
                        f"  {run['events_per_s'] or 0:,.0f} events/s, start-up "
                        f"{run['startup_s']}s, peak RSS {run['peak_rss_mib']} MiB, "
                        f"correct {run['correct']}"
                        + ("" if run["correct"] else f": {short_checks(run['checks'])}")
                    )
            rows = with_ratios([summarize(c, runs[c.id], unable.get(c.id)) for c in consumers])
            report = {
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "size": size_name,
                "rounds": size["rounds"],
                "machine": {**machine_info(), "load_average_at_start": load_at_start},
                "code": code,
                "broker": broker_description,
                "data": dataset.describe(),
                "data_uses": {use: data.describe() for use, data in uses.items()},
                "method": {
                    "events_per_s": "(records processed between the first and the last "
                    "observation) / (time between them); faustapp: /metrics polled every "
                    f"{POLL_S * 1000:.0f} ms, first = events_in_total > 0, last = every "
                    "input record read and every partition's stream time at its closer "
                    "reading (its last record), for a regrouped pipeline every input record "
                    "read and windows_closed at the number of expected results (its stream "
                    "time gauges are shared by its two halves), for the default deployment "
                    "every pipeline's stream time at the closer; raw, quix, bytewax and "
                    "pathway: the process's own clock (pathway: from the first minibatch seen, "
                    "counting the records after it, to the results of the minibatch holding "
                    "the last record)",
                    "regrouped_rows": REGROUPED_NOTE,
                    "startup_s": "process start to first event processed",
                    "peak_rss_mib": "faustapp: VmHWM before stopping; raw, quix, bytewax and "
                    "pathway: their own VmHWM at the end (wait4's ru_maxrss would include the "
                    "bench's own RSS at the fork)",
                    "median_and_range": "over the rounds",
                    "ratio_to_raw": "a row's median events/s over the median of the raw client "
                    "row on the same topic in the same run (sensors, trades, app-logs or "
                    "clicks)",
                    "note": "at --quick size the raw row covers one or two fetches and its "
                    "events/s means little; worker start-up includes Python imports, joining "
                    "the consumer group and (empty) table recovery",
                },
                "workarounds": ["faustapp output topics created by the bench"]
                if options.create_output_topics
                else [],
                "rows": rows,
                "extras": None,
                "duration_s": None,
            }
            if not options.no_extras:
                report["extras"] = run_extras(ctx, size_name, rows, say)
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["duration_s"] = round(time.monotonic() - began, 1)
    code["src_sha256_at_end"] = src_fingerprint()
    code["src_changed_during_run"] = (
        len(
            {code["src_sha256_at_start"], code["src_sha256_at_end"]}
            | {run["src_sha256"] for row in rows for run in row["runs"]}
        )
        > 1
    )
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    print()
    print(format_table(report))
    for line in format_notes(report):
        print(line)
    if report["extras"]:
        print()
        print(format_extras(report["extras"]))
    print(f"\n{report['duration_s']:.0f}s in all; figures in {json_path}, logs in {logs}")
    return 1 if failed(rows) else 0


if __name__ == "__main__":
    sys.exit(main())
