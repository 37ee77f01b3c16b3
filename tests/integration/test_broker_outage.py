"""The broker goes away: a worker must wait for it and carry on, losing and changing nothing.

These tests run their OWN broker (not the session one), so they can stop and start it.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
import urllib.request
import uuid
from collections import defaultdict

import pytest

from support.kafka_broker import LocalBroker, free_port
from support.sensors import (
    MINUTE,
    Reading,
    assert_same_figures,
    disordered_readings,
    expected_windows,
    key_per_partition,
    read_topic,
    send_readings,
    wait_for_records,
)
from support.workers import WorkerProcess

pytestmark = pytest.mark.integration

PARTITIONS = 4
GRACE_MS = 5_000
DOWN_AT_START_S = 15.0
OUTAGE_S = 12.0
# What a worker that waits for its broker should say about it (Faust/aiokafka wording varies).
WAITING = re.compile(r"(retry|retrying|waiting|reconnect|unable to (bootstrap|connect))", re.I)


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory):
    """A broker these tests may stop; created stopped, always stopped and deleted at the end."""
    data = tmp_path_factory.mktemp("outage-broker")
    broker = LocalBroker(free_port(), free_port(), data / "kafka")
    try:
        yield broker
    finally:
        try:
            broker.stop()
        finally:
            shutil.rmtree(data, ignore_errors=True)


def _worker(broker: LocalBroker, tmp_path, tag: str) -> tuple[WorkerProcess, dict[str, str]]:
    prefix = f"{tag}-{uuid.uuid4().hex[:6]}."
    topics = {
        "readings": f"{prefix}sensor-readings",
        "stats": f"{prefix}sensor-stats-1m",
        "late": f"{prefix}faustapp-late",
        "dlq": f"{prefix}faustapp-dlq",
    }
    worker = WorkerProcess(
        broker.bootstrap,
        tmp_path / f"worker-{tag}",
        free_port(),
        app_id=f"faustapp-it-{prefix[:-1]}",
        extra_env={
            "FAUSTAPP_TOPIC_PREFIX": prefix,
            "FAUSTAPP_PIPELINES": "sensor-stats-1m",
            "FAUSTAPP_GRACE_MS": str(GRACE_MS),
            "FAUSTAPP_PARTITIONS": str(PARTITIONS),
        },
    )
    return worker, topics


def _log(worker: WorkerProcess) -> str:
    try:
        return worker.log_path.read_text(errors="replace")
    except OSError:
        return ""


def _state(worker: WorkerProcess, lines: int = 25) -> str:
    errors = [ln for ln in _log(worker).splitlines() if "[ERROR]" in ln or "[CRITICAL]" in ln]
    return (
        f"worker alive={worker.alive()} exit={worker.proc.poll() if worker.proc else None}\n"
        f"--- worker log, errors ---\n" + "\n".join(errors[-20:]) + "\n"
        f"--- worker log, tail ---\n{worker.log_tail(lines)}"
    )


def _events_in(worker: WorkerProcess) -> float:
    try:
        with urllib.request.urlopen(f"{worker.url}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return -1.0
    match = re.search(r'^faustapp_events_in_total\{pipeline="sensors"\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def _wait_events_in(worker: WorkerProcess, at_least: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.alive(), _state(worker)
        if _events_in(worker) >= at_least:
            return
        time.sleep(0.3)
    raise AssertionError(f"events_in never reached {at_least}: {_state(worker)}")


def _closers(ts: int) -> list[Reading]:
    return [Reading(k, ts, 0.0) for k in key_per_partition("outage-closer", PARTITIONS).values()]


def _assert_outputs_equal_oracle(bootstrap, topics, readings, worker, *, repeats_allowed):
    """Every window of the oracle, figures exact; repeats (at_least_once) identical."""
    want = expected_windows(readings)
    sensors = {r.sensor_id for r in readings}
    try:
        got = asyncio.run(
            wait_for_records(
                bootstrap, topics["stats"], lambda r: r["sensor_id"] in sensors, len(want)
            )
        )
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{_state(worker)}") from None
    by_key: dict[tuple, list[dict]] = defaultdict(list)
    for record in got:
        by_key[(record["sensor_id"], record["window_start"])].append(record)
    assert set(by_key) == set(want), (
        f"missing {sorted(set(want) - set(by_key))[:10]}, extra {sorted(set(by_key) - set(want))}"
    )
    for key, records in by_key.items():
        for record in records:
            assert_same_figures(record, want[key])  # a repeat never changes a value
        figures = {
            tuple(sorted((k, v) for k, v in r.items() if not k.startswith("_"))) for r in records
        }
        assert len(figures) == 1, f"window {key} emitted with different figures: {records}"
    repeated = {k: len(v) for k, v in by_key.items() if len(v) > 1}
    if not repeats_allowed:
        assert not repeated, f"windows emitted more than once: {repeated}"
    late = asyncio.run(read_topic(bootstrap, topics["late"]))
    dead = asyncio.run(read_topic(bootstrap, topics["dlq"]))
    assert late == [] and dead == [], (late[:5], dead[:5])
    return repeated


def test_worker_started_while_broker_is_down_waits_then_processes_exactly(
    own_broker, tmp_path, event_clock
):
    if own_broker.is_running():
        own_broker.stop()
    worker, topics = _worker(own_broker, tmp_path, "down")
    worker.start()
    try:
        deadline = time.monotonic() + DOWN_AT_START_S
        while time.monotonic() < deadline and worker.alive():
            time.sleep(0.5)
        waiting = [ln for ln in _log(worker).splitlines() if WAITING.search(ln)]
        print("worker log lines about the missing broker:", *waiting[:10], sep="\n  ")
        assert worker.alive(), (
            f"the worker gave up instead of waiting for the broker "
            f"(it was down for {DOWN_AT_START_S:.0f}s at most):\n{_state(worker, 12)}"
        )
        assert waiting, f"nothing in the log says it is waiting: {_state(worker, 12)}"
        status, _ = worker.health()
        assert status != 200, "healthy without a broker"

        own_broker.start()
        worker.wait_ready(timeout=120, partitions=PARTITIONS)
        start = event_clock.allocate(minutes=3)
        sensors = [f"down-s-{i}" for i in range(4)]
        readings = disordered_readings(sensors, start, 2, every_ms=1000, disorder_ms=2000, seed=3)
        asyncio.run(send_readings(own_broker.bootstrap, readings, topics["readings"]))
        closing = _closers(start + 2 * MINUTE + GRACE_MS)
        asyncio.run(send_readings(own_broker.bootstrap, closing, topics["readings"]))
        _assert_outputs_equal_oracle(
            own_broker.bootstrap, topics, readings, worker, repeats_allowed=False
        )
        assert worker.alive(), _state(worker)
    finally:
        worker.kill()


def test_broker_stopped_mid_stream_worker_recovers_without_restart(
    own_broker, tmp_path, event_clock
):
    own_broker.start()  # a no-op when the test above left it running
    worker, topics = _worker(own_broker, tmp_path, "mid")
    worker.start()
    try:
        worker.wait_ready(timeout=90, partitions=PARTITIONS)
        pid = worker.proc.pid
        start = event_clock.allocate(minutes=4)
        sensors = [f"mid-s-{i}" for i in range(6)]
        readings = disordered_readings(sensors, start, 4, every_ms=200, disorder_ms=2000, seed=9)
        half = len(readings) // 2
        first, second = readings[:half], readings[half:]
        asyncio.run(send_readings(own_broker.bootstrap, first, topics["readings"]))
        # Pull the broker while the worker is busy with the first half: batches, side outputs
        # and write-behind flushes in flight.
        _wait_events_in(worker, 1)
        processed_before = _events_in(worker)

        own_broker.stop()
        down_since = time.monotonic()
        health_while_down = set()
        while time.monotonic() - down_since < OUTAGE_S:
            assert worker.alive(), f"worker died while the broker was down:\n{_state(worker)}"
            health_while_down.add(worker.health()[0])
            time.sleep(1.0)
        own_broker.start()
        print(
            f"broker stopped with {processed_before:.0f} of {len(first)} records read; "
            f"health statuses while it was down: {sorted(health_while_down)}"
        )

        try:
            worker.wait_ready(timeout=120, partitions=PARTITIONS)
        except (TimeoutError, RuntimeError) as exc:
            raise AssertionError(f"no recovery after the broker came back: {exc}") from None
        asyncio.run(send_readings(own_broker.bootstrap, second, topics["readings"]))
        closing = _closers(start + 4 * MINUTE + GRACE_MS)
        asyncio.run(send_readings(own_broker.bootstrap, closing, topics["readings"]))
        repeated = _assert_outputs_equal_oracle(
            own_broker.bootstrap, topics, readings, worker, repeats_allowed=True
        )
        print("windows repeated (at_least_once, identical):", repeated)
        assert worker.alive() and worker.proc.pid == pid, _state(worker)
        assert worker.health()[0] == 200
        # The client's retries are logged once per 10 s per message with a count, not the ~10
        # a second per client aiokafka logs (hundreds of lines over this outage).
        log = worker.log_path.read_text(errors="replace").splitlines()
        refused = [line for line in log if "Unable connect to node" in line]
        assert refused and len(refused) <= 4 * (OUTAGE_S / 10 + 2), len(refused)
        assert any("repeated" in line for line in refused), refused[:5]
    finally:
        worker.kill()
