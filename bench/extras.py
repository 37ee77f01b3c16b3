"""Extra measurements, run after the main table (``python -m bench.run``; ``--no-extras`` skips
them, ``--only-extras`` runs only them):

1. latency: end-to-end delay of sensor-stats-1m results beyond window end + grace, with a
   producer pacing readings at half the maximum rate and event time = wall clock;
2. keys: RSS with N distinct keys open in one still-open 1-minute window (N = 1,000,000 full);
3. restart: SIGTERM that worker and start it again on the same local RocksDB;
4. restore: delete the local state and start again (same app id): restore from the changelog;
5. two workers vs one on the main pre-filled topic (1m, at_least_once).

Every worker is a ``faustapp worker`` process on loopback, stopped in a ``finally``. The
measurements live in ``extras_latency``, ``extras_state`` and ``extras_two_workers``, their
table in ``extras_table``; this module runs them in turn.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from bench.common import load_average
from bench.consumers import Context
from bench.extras_latency import run_latency
from bench.extras_state import run_state
from bench.extras_table import format_extras
from bench.extras_two_workers import run_two_workers

__all__ = ["format_extras", "run_extras"]

EXTRA_SIZES = {
    "full": {"keys": 1_000_000, "latency_s": 15.0, "latency": True},
    # A 1-minute window cannot close in a quick run: the latency extra is skipped there.
    "quick": {"keys": 20_000, "latency_s": 0.0, "latency": False},
}


def run_extras(ctx: Context, size_name: str, rows: list[dict], say: Callable[[str], None]) -> dict:
    """Run each extra that fits the size on its own, so one failing keeps the others' figures."""
    size = EXTRA_SIZES[size_name]
    one = next((r for r in rows if r["id"] == "faustapp-1m-alo"), None)
    one_eps = one["events_per_s_median"] if one else None
    report: dict[str, object] = {"size": size_name, "load_average_before": load_average()}
    steps = [
        ("state", lambda: run_state(ctx, size["keys"], say)),
        ("two_workers", lambda: run_two_workers(ctx, one_eps, say)),
    ]
    if size["latency"]:
        steps.append(("latency", lambda: run_latency(ctx, one_eps, size["latency_s"], say)))
    else:
        report["latency"] = {"skipped": "quick mode: a 1-minute window cannot close in time"}
    for name, step in steps:
        say(f"extras: {name} ...")
        before = load_average()
        try:
            result = step()
        except Exception as exc:  # keep the other extras going
            result = {"error": f"{type(exc).__name__}: {exc}"}
        result["load_average_before"], result["load_average_after"] = before, load_average()
        report[name] = result
        flat = {k: v for k, v in result.items() if not isinstance(v, dict | list)}
        say(f"  {orjson.dumps(flat).decode()}")
    report["load_average_after"] = load_average()
    return report
