"""The broker-loss chaos scenario's short form: a 3-broker cluster (replication factor 3,
min.insync.replicas 2), two exactly-once workers, readings streaming; the broker leading the most
partitions is killed with SIGKILL and restarted, then again with a worker killed while it is
down. Every output must equal the oracle (see ``chaos/broker_loss.py``).

Runs ``python -m chaos.broker_loss --short`` as a subprocess (it starts its own cluster on free
loopback ports) and checks the JSON it writes. ``CHAOS_SEED`` replays a run.
In ``make test``; alone with ``make test-cluster``; ``make chaos`` runs the full form.
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

pytestmark = [pytest.mark.integration, pytest.mark.cluster_chaos, pytest.mark.timeout(1300)]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 1100  # a bound, not a speed check (usually 3-5 minutes)


def test_broker_loss_short_form(tmp_path):
    seed = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(1, 1 << 31))
    print(f"broker-loss chaos seed {seed}")
    out = tmp_path / "broker-loss.json"
    command = [sys.executable, "-m", "chaos.broker_loss", "--short", "--seed", str(seed)]
    command += ["--json", str(out)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAUSTAPP_")}
    proc = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, start_new_session=True)
    try:
        proc.wait(RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # it stops its workers and brokers on SIGTERM
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        pytest.fail(f"broker-loss run (seed {seed}) did not finish within {RUN_TIMEOUT_S}s")

    run = json.loads(out.read_text())
    report = f"seed {seed}\n{run.get('table')}\n{run.get('error')}\n{run.get('traceback', '')}"
    assert "error" not in run, report
    faults = run["faults"]
    assert [f["scenario"] for f in faults] == ["broker", "broker+worker"], report
    for fault in faults:
        # The killed broker led the most partitions of the run's topics.
        led = fault["leaders_before"]
        assert led[fault["broker"]] == max(led.values()) > 0, report
        assert fault["degraded_healthy_s"] is not None, report  # served with a broker down
        assert fault["restarted_healthy_s"] is not None, report
    assert "worker" in faults[1], report
    assert run["input"]["missing"] == 0 and run["events"] > 10_000, run["input"]
    assert set(run["outputs"]) == {"sensor-stats-1m", "sensor-stats-5m", "sensor-alerts"}
    assert all(check["expected"] > 0 for check in run["outputs"].values()), report
    assert (run["lost"], run["duplicated"], run["wrong"]) == (0, 0, 0), report
    # Every topic of the run (input, outputs, DLQ, late, changelogs, the assignor's) has 3
    # replicas and min.insync.replicas 2.
    assert run["topics"] and run["under_replicated"] == [], run["topics"]
    # No worker exited on its own: one restarted while a broker is down waits for the cluster.
    assert run["unexpected_exits"] == [], (run["unexpected_exits"], report)
    assert proc.returncode == 0 and run["passed"], report
