"""The chaos suite's short form: kill -9, a broker bounce and a wiped worker while data flows, under
exactly_once and at_least_once; every output is compared with an oracle (see ``chaos/run.py``).

Runs ``python -m chaos.run --short`` as a subprocess (it starts its own broker on free loopback
ports, so it can stop and restart it) and checks the JSON it writes. Set ``CHAOS_SEED`` to replay
a run; the seed is printed either way.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1100)]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Usually 100-260 s. A bound, not a speed check: after a broker restart a worker can hang in a
# rebalance until the group evicts it (see "Known limits" in the README), once per fault.
RUN_TIMEOUT_S = 900


def _summary(run: dict) -> str:
    """What a failure message shows: counts, faults, crashes, examples."""
    lines = [
        f"{run['guarantee']}: lost {run.get('lost')}, duplicated {run.get('duplicated')}, "
        f"wrong {run.get('wrong')}, repeats {run.get('repeats')}, error {run.get('error')}"
    ]
    for name, check in run.get("outputs", {}).items():
        for kind, examples in check.get("examples", {}).items():
            lines += [f"  {name} {kind}: {json.dumps(e)[:300]}" for e in examples[:3]]
    for name, scan in run.get("worker_logs", {}).items():
        lines += [f"  {name} crash: {c}" for c in scan.get("first_crashes", [])[:2]]
    return "\n".join(lines)


def test_chaos_short_form(tmp_path):
    seed = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(1, 1 << 31))
    print(f"chaos seed {seed}")
    out = tmp_path / "chaos.json"
    # exactly_once here; `make chaos` runs both guarantees at full size.
    command = [sys.executable, "-m", "chaos.run", "--short", "--guarantee", "exactly_once"]
    command += ["--seed", str(seed), "--json", str(out)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAUSTAPP_")}
    proc = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, start_new_session=True)
    try:
        proc.wait(RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # chaos.run stops its workers and broker on SIGTERM
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        pytest.fail(f"chaos run (seed {seed}) did not finish within {RUN_TIMEOUT_S}s")

    document = json.loads(out.read_text())
    runs = {run["guarantee"]: run for run in document["runs"]}
    assert set(runs) == {"exactly_once"}, document.get("runs")
    report = "\n".join(_summary(run) for run in runs.values())
    for guarantee, run in runs.items():
        assert "error" not in run, f"seed {seed}\n{report}\n{run.get('traceback')}"
        kinds = [fault["kind"] for fault in run["faults"]]
        assert kinds.count("kill") == 2 and "broker" in kinds and "wipe" in kinds, kinds
        assert run["events"] == 20_000 and run["input"]["missing"] == 0, run["input"]
        assert run["lost"] == 0, f"{guarantee}: seed {seed}\n{report}"
        assert run["wrong"] == 0, f"{guarantee}: seed {seed}\n{report}"
    assert runs["exactly_once"]["duplicated"] == 0, f"seed {seed}\n{report}"
    assert proc.returncode == 0 and document["passed"], f"seed {seed}\n{report}"
