"""The Bytewax and Pathway rows: one run of each, a separate process doing the Quix row's job
(1-minute tumbling windows per sensor) that reports its own figures, and whether the engine can
run here at all (checked once per benchmark, before the rounds)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from importlib import metadata

from bench.bookkeeping import child_result, cpu_seconds, finish_run, timings
from bench.broker import read_records
from bench.common import PROJECT_ROOT, terminate, wait_with_rusage
from bench.consumers import Consumer, Context
from bench.data import create_topic
from bench.engine_checks import check_bytewax, check_pathway

# kind: (distribution, what the app imports, its module)
ENGINES = {
    "bytewax": (
        "bytewax",
        "import bytewax.connectors.kafka, bytewax.operators.windowing",
        "bench.bytewax_app",
    ),
    "pathway": ("pathway", "import pathway, pathway.io.kafka", "bench.pathway_app"),
}
INSTALL_HINT = "make bench installs it, as does pip install -e '.[dev,bench]'"


def engine_version(kind: str) -> str | None:
    try:
        return metadata.version(ENGINES[kind][0])
    except metadata.PackageNotFoundError:
        return None


def cannot_run(kind: str) -> str | None:
    """Why the engine cannot run in this environment (not installed, no build for this Python
    or platform, fails to import), or None when its app's imports work."""
    distribution, imports, _module = ENGINES[kind]
    if engine_version(kind) is None:
        return f"{distribution} is not installed ({INSTALL_HINT})"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", imports],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"importing {distribution} took more than 120 s"
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return f"{distribution} {engine_version(kind)} does not import: " + (
            lines[-1][:300] if lines else f"exit status {proc.returncode}"
        )
    return None


def _run_engine(
    ctx: Context,
    consumer: Consumer,
    round_no: int,
    args: list[str],
    check: Callable[[list, dict], dict],
) -> dict:
    """Start the engine's app on the sensor topic, wait for it, then check its output topic."""
    total = ctx.dataset.total
    tag = f"r{round_no}-{uuid.uuid4().hex[:6]}"
    output = f"{ctx.prefix}{consumer.id}-{tag}"
    out_path = ctx.logs / f"{consumer.id}-{tag}.out"
    log_path = ctx.logs / f"{consumer.id}-{tag}.log"
    # Neither engine's Kafka sink creates its topic.
    asyncio.run(create_topic(ctx.bootstrap, output, ctx.dataset.spec.partitions))
    broker_cpu0 = cpu_seconds(ctx.broker_pid)
    command = [
        sys.executable,
        "-m",
        ENGINES[consumer.kind][2],
        "--bootstrap",
        ctx.bootstrap,
        "--input",
        ctx.dataset.topic,
        "--output",
        output,
        "--expect",
        str(total),
        *args,
    ]
    with open(out_path, "wb") as out, open(log_path, "wb") as err:
        spawn = time.monotonic()
        proc = subprocess.Popen(
            command, cwd=PROJECT_ROOT, stdout=out, stderr=err, start_new_session=True
        )
    try:
        exited = wait_with_rusage(proc, ctx.run_timeout + 60)
    finally:
        if proc.returncode is None:
            terminate(proc, 5)
    result = child_result(out_path)
    first, first_n = result.get("first_event"), result.get("first_count", 1)
    measured_from = "first record processed"
    if first is not None and first_n >= total and result.get("run_started") is not None:
        # One minibatch held every record: count from the start of the run instead.
        first, first_n = result["run_started"], 0
        measured_from = "start of the engine's run (one minibatch held every record)"
    run = timings(spawn, first, result.get("last_event"), first_n, total)
    if result.get("first_event") is not None:
        run["startup_s"] = round(result["first_event"] - spawn, 3)
    run["measured_from"] = measured_from
    run["engine_version"] = engine_version(consumer.kind)
    run["output_topic"] = output
    finished = result.get("count") == total and exited.returncode == 0
    expected = ctx.expect.tumbling_1m
    records, _ = asyncio.run(
        read_records(ctx.bootstrap, output, expected=len(expected), timeout=60 if finished else 5)
    )
    checks = check(records, expected)
    checks["processed"] = result.get("count")
    checks["returncode"] = exited.returncode
    for key in ("late", "results", "changes", "retractions", "timed_out"):
        if key in result:
            checks[f"engine_{key}"] = result[key]
    checks["ok"] = bool(checks["ok"]) and finished and not result.get("late")
    if not finished:
        checks["error"] = (
            f"processed {result.get('count')} of {total} records, exit status "
            f"{exited.returncode}" + (" (timed out)" if exited.timed_out else "")
        )
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


def run_bytewax(ctx: Context, consumer: Consumer, round_no: int) -> dict:
    """Bytewax, one worker: Kafka input to its end offsets, fold_window tumbling 1 minute."""
    args = ["--grace-ms", str(ctx.dataset.spec.grace_ms)]
    return _run_engine(ctx, consumer, round_no, args, check_bytewax)


def run_pathway(ctx: Context, consumer: Consumer, round_no: int) -> dict:
    """Pathway, one worker: streaming Kafka input, windowby tumbling 1 minute."""
    group = f"bench-pathway-r{round_no}-{uuid.uuid4().hex[:6]}"
    args = ["--group", group, "--timeout", str(ctx.run_timeout)]
    return _run_engine(ctx, consumer, round_no, args, check_pathway)
