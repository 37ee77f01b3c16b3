"""The outputs read back once they settle, compared with the oracle, the worker logs scanned for
crashes, and the rule that decides whether a run passed."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter

from chaos.cluster import Cluster
from chaos.oracle import OutputCheck, check_alerts, check_windows
from chaos.report import Log
from chaos.scenario import Size

from support.sensors import read_topic


async def wait_outputs(
    bootstrap: str,
    prefix: str,
    sensors: set[str],
    want: dict[str, dict],
    cluster: Cluster,
    timeout: float,
    log: Log,
) -> dict[str, list[dict]]:
    """Poll the outputs until every expected result is there (or ``timeout``), let late
    duplicates arrive, and read them once more (read_committed)."""
    outputs = list(want)

    async def read_all() -> dict[str, list[dict]]:
        out = {}
        for name in outputs:
            records = await read_topic(bootstrap, prefix + name, timeout=60.0)
            out[name] = [r for r in records if r.get("sensor_id") in sensors]
        return out

    def keys(name: str, records: list[dict]) -> set:
        if name == "sensor-alerts":
            return {(r["sensor_id"], r["ts"], r["value"]) for r in records}
        return {(r["sensor_id"], r["window_start"]) for r in records}

    deadline = time.monotonic() + timeout
    got = await read_all()
    while time.monotonic() < deadline:
        await asyncio.to_thread(cluster.reap)
        missing = {n: len(set(want[n]) - keys(n, got[n])) for n in outputs}
        if not any(missing.values()):
            break
        await asyncio.sleep(2.0)
        got = await read_all()
    else:
        log(f"  outputs still missing results after {timeout:.0f}s: {missing}")
    await asyncio.sleep(5.0)  # a repeat or a straggling transaction shows up too
    return await read_all()


def check_output(name: str, got: list[dict], want: dict, size: Size) -> OutputCheck:
    """The comparison that fits the output topic."""
    if name == "sensor-alerts":
        return check_alerts(got, want, size.partitions)
    return check_windows(name, got, want, size.partitions, quantiles=name == "sensor-stats-5m")


def scan_logs(cluster: Cluster) -> dict:
    """Tracebacks and error lines per worker log (distinct messages, counted)."""
    out = {}
    stamp = re.compile(r"^\[[^\]]*\]\s*")
    for slot, worker in enumerate(cluster.workers):
        try:
            lines = worker.log_path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        errors = Counter(
            stamp.sub("", line)[:200]
            for line in lines
            if "ERROR" in line or "CRITICAL" in line or "Traceback" in line
        )
        crashes = [
            line[:300] for line in lines if "Crashed reason=" in line or "Error in flush" in line
        ]
        out[f"worker-{slot}"] = {
            "log": str(worker.log_path),
            "crashes": len(crashes),
            "first_crashes": crashes[:5],
            "lines": len(lines),
            "error_lines": sum(errors.values()),
            "distinct_errors": [[n, text] for text, n in errors.most_common(15)],
        }
    return out


def passed(result: dict) -> bool:
    """The pass rule: no loss, nothing wrong, no duplicate under exactly_once, faults injected."""
    if "error" in result or "lost" not in result:
        return False
    ok = result["lost"] == 0 and result["wrong"] == 0
    if result["guarantee"] == "exactly_once":
        ok = ok and result["duplicated"] == 0
    return ok and len(result.get("faults", [])) > 0
