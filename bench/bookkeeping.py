"""Turning what one run observed into its figures, the same way for every kind of consumer."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from bench.common import log_problems
from bench.consumers import Context


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a live process so far."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def child_result(path: Path) -> dict:
    """The figures a child process printed as its last line of JSON (empty if none)."""
    try:
        lines = path.read_text().strip().splitlines()
        return orjson.loads(lines[-1]) if lines else {}
    except (OSError, orjson.JSONDecodeError):
        return {}


def timings(
    spawn: float, first: float | None, last: float | None, first_n: float, last_n: float
) -> dict:
    """Start-up time and events/s from the spawn time and the first and last observations."""
    run: dict[str, object] = {"events_per_s": None, "startup_s": None, "processing_s": None}
    if first is not None:
        run["startup_s"] = round(first - spawn, 3)
    if first is not None and last is not None and last > first:
        run["processing_s"] = round(last - first, 3)
        run["events_per_s"] = round((last_n - first_n) / (last - first), 1)
        run["events_measured"] = int(last_n - first_n)
    return run


def finish_run(
    run: dict,
    checks: dict,
    peak: float | None,
    returncode: int | None,
    log_path: Path,
    ctx: Context,
    broker_cpu0: float | None,
    cpu: float | None = None,
) -> dict:
    """Add memory, CPU, exit status, log problems and checks, and decide whether it was correct."""
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
