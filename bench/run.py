"""Benchmark: faustapp vs a raw aiokafka consumer vs Quix Streams, on one pre-filled topic.

    python -m bench.run            # full: 1,000,000 readings, 1,000 sensors, 2 rounds
    python -m bench.run --quick    # smoke: 20,000 readings, 100 sensors, 1 round

Starts a local Kafka broker on free loopback ports (unless $KAFKA_BOOTSTRAP is set) and always
stops it, fills one topic with seeded readings, then runs the consumers one after the other in
alternating rounds. Prints a table and writes the same figures as JSON (--json, default
bench-results/latest.json). Exit status 0 only if every run of every consumer was correct.

Per run: events/s from the first to the last event processed, start-up time (process start to
first event processed), peak RSS and whether the output equals the expected figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import orjson

from bench.broker import BrokerError, end_offsets, kafka_broker, read_records
from bench.checks import check_alerts, check_windows, faustapp_window, quix_window
from bench.common import (
    PROJECT_ROOT,
    describe_machine,
    free_port,
    git_head,
    http_text,
    load_average,
    log_problems,
    machine_info,
    metric,
    parse_metrics,
    peak_rss_mib,
    samples,
    src_fingerprint,
    terminate,
    wait_with_rusage,
)
from bench.data import MINUTE, Dataset, DataSpec, Figures, create_topic, fill_topic
from bench.extras import format_extras, run_extras

POLL_S = 0.1
STOP_TIMEOUT_S = 15.0  # a clean stop takes ~1-2 s; SIGKILL after this
FAUSTAPP = Path(sys.executable).with_name("faustapp")
# faustapp's own constants for the sensor pipelines (src/faustapp/agents/sensors.py).
ALERT_Z = 4.0
ALERT_MIN_READINGS = 20
SESSION_GAP_MS = MINUTE
FAUSTAPP_OUTPUTS = (
    "sensor-stats-1m",
    "sensor-stats-5m",
    "sensor-alerts",
    "sensor-sessions",
    "faustapp-late",
    "faustapp-dlq",
)

SIZES = {
    # Same density per sensor in both: one reading per sensor per second of event time.
    "full": {"readings": 1_000_000, "sensors": 1_000, "interval_ms": 1.0, "rounds": 2},
    "quick": {"readings": 20_000, "sensors": 100, "interval_ms": 10.0, "rounds": 1},
}


@dataclass(frozen=True)
class Consumer:
    """One row of the table."""

    id: str
    label: str
    kind: str  # raw | faustapp | quix
    pipeline: str | None = None
    guarantee: str = "at_least_once"


CONSUMERS = (
    Consumer("raw", "raw aiokafka + orjson decode", "raw"),
    Consumer(
        "faustapp-1m-alo",
        "faustapp sensor-stats-1m (tumbling) at_least_once",
        "faustapp",
        "sensor-stats-1m",
    ),
    Consumer(
        "faustapp-1m-eos",
        "faustapp sensor-stats-1m (tumbling) exactly_once",
        "faustapp",
        "sensor-stats-1m",
        "exactly_once",
    ),
    Consumer("quix-1m", "quixstreams 1m tumbling .final() at-least-once", "quix"),
    Consumer(
        "faustapp-5m",
        "faustapp sensor-stats-5m (hopping) at_least_once",
        "faustapp",
        "sensor-stats-5m",
    ),
    Consumer(
        "faustapp-alerts",
        "faustapp sensor-alerts (sliding) at_least_once",
        "faustapp",
        "sensor-alerts",
    ),
    Consumer(
        "faustapp-sessions",
        "faustapp sensor-sessions (session) at_least_once",
        "faustapp",
        "sensor-sessions",
    ),
)


class Expectations:
    """What each consumer must output, computed once from the data set (lazily)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._cache: dict[str, object] = {}

    def _get(self, name: str, compute: Callable[[], object]) -> object:
        if name not in self._cache:
            self._cache[name] = compute()
        return self._cache[name]

    @property
    def tumbling_1m(self) -> dict[tuple[str, int], Figures]:
        return self._get("1m", lambda: self.dataset.expected_tumbling(MINUTE))  # type: ignore[return-value]

    @property
    def hopping_5m(self) -> dict[tuple[str, int], Figures]:
        return self._get("5m", lambda: self.dataset.expected_hopping(5 * MINUTE, MINUTE))  # type: ignore[return-value]

    @property
    def sessions(self) -> dict[tuple[str, int], Figures]:
        return self._get("sessions", lambda: self.dataset.expected_sessions(SESSION_GAP_MS))  # type: ignore[return-value]

    @property
    def alerts(self) -> tuple[set, set]:
        return self._get(  # type: ignore[return-value]
            "alerts",
            lambda: self.dataset.expected_alerts(5 * MINUTE, ALERT_Z, ALERT_MIN_READINGS),
        )

    @property
    def value_sum(self) -> float:
        return self._get(  # type: ignore[return-value]
            "sum", lambda: sum(sum(v) for v in self.dataset.values_by_sensor.values())
        )


@dataclass
class Context:
    bootstrap: str
    prefix: str
    dataset: Dataset
    expect: Expectations
    work: Path
    logs: Path
    run_timeout: float
    startup_timeout: float
    stall_s: float
    broker_pid: int | None
    quiet: bool


# --- CPU accounting --------------------------------------------------------------------------


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a live process so far."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


# --- one run of each kind --------------------------------------------------------------------


def run_raw(ctx: Context, round_no: int) -> dict:
    total = ctx.dataset.total
    out_path = ctx.logs / f"raw-r{round_no}.out"
    log_path = ctx.logs / f"raw-r{round_no}.log"
    broker_cpu0 = cpu_seconds(ctx.broker_pid)
    with open(out_path, "wb") as out, open(log_path, "wb") as err:
        spawn = time.monotonic()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.raw_consumer",
                "--bootstrap",
                ctx.bootstrap,
                "--topic",
                ctx.dataset.topic,
                "--expect",
                str(total),
                "--timeout",
                str(ctx.run_timeout),
            ],
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    try:
        exited = wait_with_rusage(proc, ctx.run_timeout + 30)
    finally:
        if proc.returncode is None:
            terminate(proc, 5)
    result = _child_result(out_path)
    run = _timings(spawn, result.get("first_event"), result.get("last_event"), 1, total)
    value_ok = result.get("value_sum") is not None and abs(
        result["value_sum"] - ctx.expect.value_sum
    ) <= 1e-6 * max(1.0, abs(ctx.expect.value_sum))
    checks = {
        "ok": result.get("count") == total and result.get("decoded") == total and value_ok,
        "what": "every record read and JSON-decoded; sum of the decoded values equals the data's",
        "records": result.get("count"),
        "decoded": result.get("decoded"),
        "expected_records": total,
        "value_sum_matches": value_ok,
    }
    return _finish(
        run,
        checks,
        exited.peak_rss_mib,
        exited.returncode,
        log_path,
        ctx,
        broker_cpu0,
        cpu=exited.cpu_seconds,
    )


def run_quix(ctx: Context, round_no: int) -> dict:
    total = ctx.dataset.total
    tag = f"r{round_no}-{uuid.uuid4().hex[:6]}"
    group = f"bench-quix-{tag}"
    output = f"{ctx.prefix}quix-stats-1m-{tag}"
    state_dir = ctx.work / group
    out_path = ctx.logs / f"quix-{tag}.out"
    log_path = ctx.logs / f"quix-{tag}.log"
    broker_cpu0 = cpu_seconds(ctx.broker_pid)
    with open(out_path, "wb") as out, open(log_path, "wb") as err:
        spawn = time.monotonic()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.quix_app",
                "--bootstrap",
                ctx.bootstrap,
                "--input",
                ctx.dataset.topic,
                "--output",
                output,
                "--group",
                group,
                "--state-dir",
                str(state_dir),
                "--grace-ms",
                str(ctx.dataset.spec.grace_ms),
                "--expect",
                str(total),
                "--timeout",
                str(ctx.run_timeout),
            ],
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    try:
        exited = wait_with_rusage(proc, ctx.run_timeout + 60)
    finally:
        if proc.returncode is None:
            terminate(proc, 5)
        shutil.rmtree(state_dir, ignore_errors=True)
    result = _child_result(out_path)
    run = _timings(spawn, result.get("first_event"), result.get("last_event"), 1, total)
    expected = ctx.expect.tumbling_1m
    finished = result.get("count") == total
    records, _ = asyncio.run(
        read_records(ctx.bootstrap, output, expected=len(expected), timeout=60 if finished else 5)
    )
    checks = check_windows(records, expected, quix_window)
    checks["what"] = (
        "output topic holds exactly the expected (sensor, 1-minute window) results, each once, "
        "count/min/max exact and sum within 1e-9 relative"
    )
    checks["processed"] = result.get("count")
    checks["ok"] = bool(checks["ok"]) and result.get("count") == total
    return _finish(
        run,
        checks,
        exited.peak_rss_mib,
        exited.returncode,
        log_path,
        ctx,
        broker_cpu0,
        cpu=exited.cpu_seconds,
    )


def run_faustapp(ctx: Context, consumer: Consumer, round_no: int) -> dict:
    dataset, pipeline = ctx.dataset, consumer.pipeline
    assert pipeline is not None
    total, partitions = dataset.total, dataset.spec.partitions
    out_topic = f"{ctx.prefix}{pipeline}"
    start_offsets = asyncio.run(end_offsets(ctx.bootstrap, out_topic))
    app_id = f"bench-{consumer.id}-r{round_no}-{uuid.uuid4().hex[:6]}"
    data_dir = ctx.work / app_id
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAUSTAPP_")}
    env.update(
        FAUSTAPP_BROKER=f"kafka://{ctx.bootstrap}",
        FAUSTAPP_DATA_DIR=str(data_dir),
        FAUSTAPP_WEB_PORT=str(port),
        FAUSTAPP_WEB_HOST="127.0.0.1",
        FAUSTAPP_APP_ID=app_id,
        FAUSTAPP_TOPIC_PREFIX=ctx.prefix,
        FAUSTAPP_PIPELINES=pipeline,
        FAUSTAPP_PROCESSING_GUARANTEE=consumer.guarantee,
        FAUSTAPP_GRACE_MS=str(dataset.spec.grace_ms),
        FAUSTAPP_PARTITIONS=str(partitions),
        # The data lies in the past; a day of allowed skew leaves nothing to refuse.
        FAUSTAPP_MAX_FUTURE_SKEW_MS=str(86_400_000),
        PYTHONUNBUFFERED="1",
    )
    log_path = ctx.logs / f"{app_id}.log"
    url = f"http://127.0.0.1:{port}/metrics"
    closer_s = dataset.closer_ts / 1000
    broker_cpu0 = cpu_seconds(ctx.broker_pid)
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        spawn = time.monotonic()
        proc = subprocess.Popen(
            [str(FAUSTAPP), "worker", "-l", "warn"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    first: tuple[float, float] | None = None
    last: tuple[float, float] | None = None
    run_info: dict[str, object] = {}
    final: dict = {}
    peak = cpu = None
    problem = None
    checks: dict[str, object] = {}
    try:
        deadline = spawn + ctx.run_timeout
        next_poll = progress_at = time.monotonic()
        progress: tuple = ()
        seen: dict[str, object] = {}
        run_info["progress_at_end"] = seen
        while True:
            now_mono = time.monotonic()
            if now_mono >= deadline:
                problem = f"not finished within {ctx.run_timeout:.0f}s"
                break
            if first is None and now_mono - spawn > ctx.startup_timeout:
                problem = f"no event processed within {ctx.startup_timeout:.0f}s of start"
                break
            if first is not None and now_mono - progress_at > ctx.stall_s:
                problem = f"stalled: no progress for {ctx.stall_s:.0f}s"
                break
            next_poll += POLL_S
            asked = time.monotonic()
            text = http_text(url, timeout=5)
            now = (asked + time.monotonic()) / 2
            if text is None:
                if proc.poll() is not None:
                    problem = f"worker exited with {proc.returncode} before finishing"
                    break
            else:
                metrics = parse_metrics(text)
                events = metric(metrics, "faustapp_events_in_total", pipeline="sensors")
                if first is None and events > 0:
                    first = (now, events)
                times = {
                    labels.get("partition"): value
                    for labels, value in samples(
                        metrics, "faustapp_stream_time_seconds", pipeline=pipeline
                    )
                }
                closed = metric(metrics, "faustapp_windows_closed_total", pipeline=pipeline)
                state = (events, closed, tuple(sorted(times.items())))
                if state != progress:
                    progress, progress_at = state, now
                    seen.update(
                        events_in=events,
                        windows_closed=closed,
                        stream_time_s=dict(sorted(times.items())),
                    )
                if (
                    events >= total
                    and len(times) == partitions
                    and all(abs(v - closer_s) < 1e-3 for v in times.values())
                ):
                    last, final = (now, events), metrics
                    break
            time.sleep(max(0.0, next_poll - time.monotonic()))
        peak, cpu = peak_rss_mib(proc.pid), cpu_seconds(proc.pid)
        if last is not None:
            checks = _faustapp_checks(ctx, consumer, out_topic, start_offsets, final)
    except Exception as exc:  # keep the other runs going; the row shows the failure
        problem = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    finally:
        returncode, shutdown_s = terminate(proc, STOP_TIMEOUT_S)
        shutil.rmtree(data_dir, ignore_errors=True)
    if final and not checks:
        checks = {"ok": False}
    if not final:
        checks = {"ok": False, "error": problem or "no metrics"}
    elif problem:
        checks = {**checks, "ok": False, "error": problem}
    if problem:
        found = log_problems(log_path, limit=1)["first_errors"]
        checks["first_log_error"] = found[0] if found else None
    run = _timings(
        spawn,
        first[0] if first else None,
        last[0] if last else None,
        first[1] if first else 0,
        last[1] if last else 0,
    )
    run["shutdown_s"] = round(shutdown_s, 2)
    run["app_id"] = app_id
    run.update(run_info)
    if final:
        batch_sum = metric(final, "faustapp_batch_seconds_sum", pipeline="sensors")
        batch_count = metric(final, "faustapp_batch_seconds_count", pipeline="sensors")
        run["batches"] = int(batch_count)
        run["batch_seconds_total"] = round(batch_sum, 3)
        run["mean_batch_ms"] = round(1000 * batch_sum / batch_count, 2) if batch_count else None
    return _finish(run, checks, peak, returncode, log_path, ctx, broker_cpu0, cpu=cpu)


def _faustapp_checks(
    ctx: Context, consumer: Consumer, out_topic: str, start: dict[int, int], final: dict
) -> dict[str, object]:
    pipeline = consumer.pipeline
    total = ctx.dataset.total
    counters = {
        "events_in": metric(final, "faustapp_events_in_total", pipeline="sensors"),
        "events_accepted": metric(final, "faustapp_events_accepted_total", pipeline=pipeline),
        "dead_letters": metric(final, "faustapp_dead_letters_total", pipeline="sensors"),
        "late_events": metric(final, "faustapp_late_events_total", pipeline=pipeline),
        "rekeyed": metric(final, "faustapp_rekeyed_events_total", pipeline="sensors"),
        "windows_closed": metric(final, "faustapp_windows_closed_total", pipeline=pipeline),
    }
    if pipeline == "sensor-alerts":
        alerts, borderline = ctx.expect.alerts
        records, reached = asyncio.run(
            read_records(
                ctx.bootstrap, out_topic, start=start, expected=len(alerts) or None, timeout=60
            )
        )
        checks = check_alerts(records, alerts, borderline)
        checks["what"] = (
            "alerts topic holds exactly the readings the oracle finds more than 4 stddev from "
            "their sensor's mean over [ts - 5 min, ts] (>= 20 readings), each once"
        )
        expected_closed = len(alerts)
    else:
        expected = {
            "sensor-stats-1m": lambda: ctx.expect.tumbling_1m,
            "sensor-stats-5m": lambda: ctx.expect.hopping_5m,
            "sensor-sessions": lambda: ctx.expect.sessions,
        }[pipeline]()
        records, reached = asyncio.run(
            read_records(ctx.bootstrap, out_topic, start=start, expected=len(expected), timeout=60)
        )
        checks = check_windows(records, expected, faustapp_window)
        checks["what"] = {
            "sensor-stats-1m": "output holds exactly the expected (sensor, 1-minute window) "
            "results, each once: count/min/max exact, sum within 1e-9 relative",
            "sensor-stats-5m": "output holds exactly the expected (sensor, 5-minute window "
            "every minute) results, each once: count/min/max exact, sum within 1e-9 relative "
            "(quantiles not checked)",
            "sensor-sessions": "output holds exactly the expected sessions (gap 1 min, "
            "[first ts, last ts]) per sensor, each once: count/min/max exact, sum within 1e-9",
        }[pipeline]
        expected_closed = len(expected)
    checks["read_committed"] = True
    checks["counters"] = counters
    counters_ok = (
        counters["events_in"] == total
        and counters["events_accepted"] == total
        and counters["dead_letters"] == 0
        and counters["late_events"] == 0
        and counters["rekeyed"] == 0
        and counters["windows_closed"] == expected_closed
    )
    checks["counters_ok"] = counters_ok
    checks["what"] = str(checks["what"]) + (
        "; metrics: every record read and accepted, no dead letters, no late events, "
        "no re-keying, windows_closed equals the expected results"
    )
    checks["ok"] = bool(checks["ok"]) and counters_ok and reached
    return checks


# --- shared bookkeeping ----------------------------------------------------------------------


def _child_result(path: Path) -> dict:
    try:
        lines = path.read_text().strip().splitlines()
        return orjson.loads(lines[-1]) if lines else {}
    except (OSError, orjson.JSONDecodeError):
        return {}


def _timings(
    spawn: float, first: float | None, last: float | None, first_n: float, last_n: float
) -> dict:
    run: dict[str, object] = {"events_per_s": None, "startup_s": None, "processing_s": None}
    if first is not None:
        run["startup_s"] = round(first - spawn, 3)
    if first is not None and last is not None and last > first:
        run["processing_s"] = round(last - first, 3)
        run["events_per_s"] = round((last_n - first_n) / (last - first), 1)
        run["events_measured"] = int(last_n - first_n)
    return run


def _finish(
    run: dict,
    checks: dict,
    peak: float | None,
    returncode: int | None,
    log_path: Path,
    ctx: Context,
    broker_cpu0: float | None,
    cpu: float | None = None,
) -> dict:
    run["peak_rss_mib"] = round(peak, 1) if peak is not None else None
    run["cpu_s"] = round(cpu, 2) if cpu is not None else None
    broker_cpu1 = cpu_seconds(ctx.broker_pid)
    if broker_cpu0 is not None and broker_cpu1 is not None:
        run["broker_cpu_s"] = round(broker_cpu1 - broker_cpu0, 2)
    run["returncode"] = returncode
    run["log"] = str(log_path)
    run["log_problems"] = log_problems(log_path)
    run["checks"] = checks
    run["correct"] = bool(checks.get("ok")) and run["events_per_s"] is not None
    return run


# --- driver ----------------------------------------------------------------------------------


def summarize(consumer: Consumer, runs: list[dict]) -> dict:
    rates = [r["events_per_s"] for r in runs if r["events_per_s"] is not None]
    startups = [r["startup_s"] for r in runs if r["startup_s"] is not None]
    peaks = [r["peak_rss_mib"] for r in runs if r["peak_rss_mib"] is not None]
    return {
        "id": consumer.id,
        "consumer": consumer.label,
        "kind": consumer.kind,
        "pipeline": consumer.pipeline,
        "guarantee": consumer.guarantee if consumer.kind != "raw" else None,
        "events_per_s_median": round(statistics.median(rates)) if rates else None,
        "events_per_s_min": round(min(rates)) if rates else None,
        "events_per_s_max": round(max(rates)) if rates else None,
        "startup_s_median": round(statistics.median(startups), 2) if startups else None,
        "peak_rss_mib_max": round(max(peaks), 1) if peaks else None,
        "correct": bool(runs) and all(r["correct"] for r in runs),
        "what_was_checked": runs[0]["checks"].get("what") if runs else None,
        "runs": runs,
    }


def format_table(report: dict) -> str:
    data = report["data"]
    lines = [
        describe_machine(report["machine"]),
        f"broker: {report['broker']}",
        f"data: {data['readings']:,} readings + {len(data['closer_keys'])} closers, "
        f"{data['sensors']:,} sensors, {data['partitions']} partitions, "
        f"{data['event_rate_per_s']:g} readings/s of event time over "
        f"{data['event_time_span_s']:.0f}s, disorder <= {data['disorder_ms']} ms, "
        f"grace {data['grace_ms']} ms; produced in {data['produce_seconds']:.1f}s "
        f"({data['produce_records_per_s']:,}/s)",
        f"rounds: {report['rounds']} (consumers alternate within each round); "
        f"code {report['code']['git_head']} src {report['code']['src_sha256_at_start']}"
        + (" (src/ CHANGED during the run)" if report["code"].get("src_changed_during_run") else "")
        + f"; load average at start {report['machine']['load_average_at_start']}",
        "",
        "| consumer | events/s (median) | min-max | start-up s | peak RSS MiB | correct |",
        "|---|---:|---:|---:|---:|---|",
    ]

    def num(value: float | None, fmt: str = ",.0f") -> str:
        return "-" if value is None else format(value, fmt)

    for row in report["rows"]:
        lines.append(
            f"| {row['consumer']} | {num(row['events_per_s_median'])} | "
            f"{num(row['events_per_s_min'])}-{num(row['events_per_s_max'])} | "
            f"{num(row['startup_s_median'], '.2f')} | {num(row['peak_rss_mib_max'], '.0f')} | "
            f"{'yes' if row['correct'] else 'NO'} |"
        )
    return "\n".join(lines)


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
        help="comma-separated consumer ids to run (default: all): "
        + ", ".join(c.id for c in CONSUMERS),
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
            )
            runs: dict[str, list[dict]] = {c.id: [] for c in consumers}
            for round_no in range(1, size["rounds"] + 1):
                for consumer in consumers:
                    say(f"round {round_no}/{size['rounds']}: {consumer.label} ...")
                    load_before, src_before = load_average(), src_fingerprint()
                    if consumer.kind == "raw":
                        run = run_raw(ctx, round_no)
                    elif consumer.kind == "quix":
                        run = run_quix(ctx, round_no)
                    else:
                        run = run_faustapp(ctx, consumer, round_no)
                    run["round"] = round_no
                    run["load_average_before"] = load_before
                    run["load_average_after"] = load_average()
                    run["src_sha256"] = src_before
                    runs[consumer.id].append(run)
                    say(
                        f"  {run['events_per_s'] or 0:,.0f} events/s, start-up "
                        f"{run['startup_s']}s, peak RSS {run['peak_rss_mib']} MiB, "
                        f"correct {run['correct']}"
                        + ("" if run["correct"] else f": {_short(run['checks'])}")
                    )
            rows = [summarize(c, runs[c.id]) for c in consumers]
            report = {
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "size": size_name,
                "rounds": size["rounds"],
                "machine": {**machine_info(), "load_average_at_start": load_at_start},
                "code": code,
                "broker": broker_description,
                "data": dataset.describe(),
                "method": {
                    "events_per_s": "(records processed between the first and the last "
                    "observation) / (time between them); faustapp: /metrics polled every "
                    f"{POLL_S * 1000:.0f} ms, first = events_in_total > 0, last = every "
                    "input record read and every partition's stream time at its closer "
                    "reading (its last record); raw and quix: the process's own clock",
                    "startup_s": "process start to first event processed",
                    "peak_rss_mib": "faustapp: VmHWM before stopping; raw and quix: ru_maxrss "
                    "from wait4",
                    "median_and_range": "over the rounds",
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
    if report["extras"]:
        print()
        print(format_extras(report["extras"]))
    print(f"\n{report['duration_s']:.0f}s in all; figures in {json_path}, logs in {logs}")
    return 0 if all(row["correct"] for row in rows) else 1


def _short(checks: dict) -> str:
    keys = (
        "error",
        "first_log_error",
        "missing",
        "unexpected",
        "duplicates",
        "mismatched",
        "counters_ok",
    )
    return ", ".join(f"{k}={checks[k]}" for k in keys if k in checks) or str(checks)[:300]


if __name__ == "__main__":
    sys.exit(main())
