"""Smoke run of the benchmark (``python -m bench.run --quick``) against the session's broker.

Checks that the benchmark runs end to end and that every consumer's output was correct; it never
asserts a speed.
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
    "quix-1m",
    "faustapp-5m",
    "faustapp-alerts",
    "faustapp-sessions",
    "raw-trades",
    "faustapp-candles",
    "raw-logs",
    "faustapp-log-stats",
    "raw-clicks",
    "faustapp-user-sessions",
    "faustapp-page-stats",
    "faustapp-trending",
]
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
    failures = {
        row["id"]: [
            {key: run["checks"][key] for key in REASONS if key in run["checks"]}
            for run in row["runs"]
            if not run["correct"]
        ]
        for row in rows
        if not row["correct"]
    }
    assert not failures, f"incorrect rows: {json.dumps(failures, indent=1)}\n{output}"
    assert proc.returncode == 0, output
