"""Smoke run of the benchmark (``python -m bench.run --quick``) against the session's broker.

Checks that the benchmark runs end to end and that every consumer's output was correct; it never
asserts a speed. The Bytewax and Pathway rows need the ``bench`` extra: without it they must still
be listed, marked as unable to run with the reason, and not fail the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONSUMERS = [
    "raw",
    "faustapp-1m-alo",
    "faustapp-1m-eos",
    "faustapp-1m-sse100",
    "quix-1m",
    "bytewax-1m",
    "pathway-1m",
    "faustapp-5m",
    "faustapp-alerts",
    "faustapp-sessions",
    "faustapp-default",
    "raw-trades",
    "faustapp-candles",
    "raw-logs",
    "faustapp-log-stats",
    "raw-clicks",
    "faustapp-user-sessions",
    "faustapp-page-stats",
    "faustapp-trending",
]
OPTIONAL = {"bytewax-1m", "pathway-1m"}  # engines of the ``bench`` extra
REASONS = (
    "error",
    "first_log_error",
    "missing",
    "unexpected",
    "duplicates",
    "mismatched",
    "counters",
)


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_quick_benchmark_runs_and_every_row_is_correct(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    report_path = tmp_path / "quick.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAUSTAPP_")}
    env["KAFKA_BOOTSTRAP"] = kafka_bootstrap
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--quiet", "--json", str(report_path)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    output = f"--- stdout ---\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}"
    assert report_path.exists(), f"no report written (exit {proc.returncode})\n{output}"
    report = json.loads(report_path.read_text())
    rows = report["rows"]
    assert [row["id"] for row in rows] == CONSUMERS, output
    unable = {row["id"]: row["cannot_run"] for row in rows if row.get("cannot_run")}
    assert set(unable) <= OPTIONAL, f"only the other engines may be unable to run: {unable}"
    assert all(row["correct"] is None and not row["runs"] for row in rows if row["id"] in unable)
    assert all(reason.strip() for reason in unable.values()), unable
    failures = {
        row["id"]: [
            {key: run["checks"][key] for key in REASONS if key in run["checks"]}
            for run in row["runs"]
            if not run["correct"]
        ]
        for row in rows
        if row["id"] not in unable and not row["correct"]
    }
    assert not failures, f"incorrect rows: {json.dumps(failures, indent=1)}\n{output}"
    assert proc.returncode == 0, output
