"""One run of the raw aiokafka consumer and one of Quix Streams, each a separate process that
reports its own figures."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
import uuid

from bench.bookkeeping import child_result, cpu_seconds, finish_run, timings
from bench.broker import read_records
from bench.checks import check_windows, quix_window
from bench.common import PROJECT_ROOT, terminate, wait_with_rusage
from bench.consumers import SENSORS, Consumer, Context


def run_raw(ctx: Context, round_no: int, consumer: Consumer) -> dict:
    """The floor: read and JSON-decode every record of the consumer's topic, nothing else."""
    dataset = ctx.data_of(consumer)
    total = dataset.total
    if consumer.dataset == SENSORS:
        sum_field, expected_sum = "value", ctx.expect.value_sum
    else:
        sum_field, expected_sum = dataset.sum_field, dataset.field_sum
    out_path = ctx.logs / f"{consumer.id}-r{round_no}.out"
    log_path = ctx.logs / f"{consumer.id}-r{round_no}.log"
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
                dataset.topic,
                "--expect",
                str(total),
                "--timeout",
                str(ctx.run_timeout),
                "--sum-field",
                sum_field,
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
    result = child_result(out_path)
    run = timings(spawn, result.get("first_event"), result.get("last_event"), 1, total)
    value_ok = result.get("value_sum") is not None and abs(
        result["value_sum"] - expected_sum
    ) <= 1e-6 * max(1.0, abs(expected_sum))
    checks = {
        "ok": result.get("count") == total and result.get("decoded") == total and value_ok,
        "what": "every record read and JSON-decoded; sum of the decoded values equals the data's"
        + ("" if consumer.dataset == SENSORS else f" ({sum_field})"),
        "records": result.get("count"),
        "decoded": result.get("decoded"),
        "expected_records": total,
        "value_sum_matches": value_ok,
    }
    return finish_run(
        run,
        checks,
        result.get("peak_rss_mib"),
        exited.returncode,
        log_path,
        ctx,
        broker_cpu0,
        cpu=exited.cpu_seconds,
    )


def run_quix(ctx: Context, round_no: int) -> dict:
    """Quix Streams on the 1-minute tumbling window, the same job as faustapp-1m."""
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
    result = child_result(out_path)
    run = timings(spawn, result.get("first_event"), result.get("last_event"), 1, total)
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
    return finish_run(
        run,
        checks,
        result.get("peak_rss_mib"),
        exited.returncode,
        log_path,
        ctx,
        broker_cpu0,
        cpu=exited.cpu_seconds,
    )
