"""Every sensor output against an oracle on the real broker: two workers, a crash in the middle,
and the engine's edges (idle close, far-future timestamps)."""

from __future__ import annotations

import asyncio
import random
import time
import uuid

import pytest

from faustapp.tables.sketches import Quantiles

from support.sensors import (
    MINUTE,
    Reading,
    assert_same_figures,
    disordered_readings,
    expected_alerts,
    expected_windows,
    key_per_partition,
    rank_within,
    read_topic,
    send_readings,
    wait_for_records,
)
from support.workers import http_get

pytestmark = pytest.mark.integration

PARTITIONS = 4
GRACE_MS = 4_000


def _env(prefix: str, **extra: str) -> dict[str, str]:
    return {
        "FAUSTAPP_TOPIC_PREFIX": prefix,
        "FAUSTAPP_GRACE_MS": str(GRACE_MS),
        "FAUSTAPP_PARTITIONS": str(PARTITIONS),
        **extra,
    }


def test_all_outputs_equal_oracle_with_two_workers_and_a_crash(
    kafka_bootstrap, make_worker, event_clock
):
    prefix = f"ora-{uuid.uuid4().hex[:6]}."
    env = _env(
        prefix, FAUSTAPP_PROCESSING_GUARANTEE="exactly_once", FAUSTAPP_SESSION_TIMEOUT_MS="6000"
    )
    first = make_worker(**env).start()
    second = make_worker(app_id=first.app_id, **env).start()
    first.wait_ready(timeout=120)
    second.wait_ready(timeout=120)

    minutes = 10
    start = event_clock.allocate(minutes=minutes + 6)
    sensors = [f"ora-s-{i}" for i in range(50)]
    readings = disordered_readings(
        sensors, start, minutes=minutes, every_ms=600, disorder_ms=GRACE_MS - 1000, seed=3
    )
    # Spikes that the 5-minute sliding window flags (> 4 stddev from the mean, >= 20 readings).
    rng = random.Random(5)
    for i in rng.sample(range(len(readings) // 4, len(readings)), 12):
        r = readings[i]
        readings[i] = Reading(r.sensor_id, r.ts, r.value + 5000.0)
    assert len(readings) == 50_000
    readings_topic = f"{prefix}sensor-readings"

    half = len(readings) // 2
    asyncio.run(send_readings(kafka_bootstrap, readings[:half], readings_topic))
    time.sleep(1.0)
    second.kill()  # crash one worker in the middle; its partitions move, then it comes back
    data_dir, log_path = second.data_dir, second.log_path
    second = make_worker(app_id=first.app_id, **env)
    second.data_dir, second.log_path = data_dir, log_path
    second.start()
    asyncio.run(send_readings(kafka_bootstrap, readings[half:], readings_topic))
    second.wait_ready(timeout=120)
    end = start + (minutes + 5) * MINUTE + GRACE_MS
    closers = [Reading(k, end, 0.0) for k in key_per_partition("ora-closer", PARTITIONS).values()]
    asyncio.run(send_readings(kafka_bootstrap, closers, readings_topic))

    def ours(r: dict) -> bool:
        return r["sensor_id"] in sensors

    # 1-minute tumbling: exact.
    want_1m = expected_windows(readings)
    got_1m = asyncio.run(
        wait_for_records(kafka_bootstrap, f"{prefix}sensor-stats-1m", ours, len(want_1m), 180)
    )
    assert sorted((r["sensor_id"], r["window_start"]) for r in got_1m) == sorted(want_1m)
    for r in got_1m:
        assert_same_figures(r, want_1m[(r["sensor_id"], r["window_start"])])

    # 5-minute hopping by 1 minute: exact moments, quantiles within the sketch's rank error.
    want_5m = expected_windows(readings, size_ms=5 * MINUTE, step_ms=MINUTE)
    got_5m = asyncio.run(
        wait_for_records(kafka_bootstrap, f"{prefix}sensor-stats-5m", ours, len(want_5m), 120)
    )
    assert sorted((r["sensor_id"], r["window_start"]) for r in got_5m) == sorted(want_5m)
    error = Quantiles().rank_error
    for r in got_5m:
        want = want_5m[(r["sensor_id"], r["window_start"])]
        assert r["window_end"] - r["window_start"] == 5 * MINUTE
        assert_same_figures(r, want)
        assert rank_within(want["_values"], r["p50"], 0.5, error), (r, error)
        assert rank_within(want["_values"], r["p95"], 0.95, error), (r, error)

    # Sliding 5-minute anomaly alerts: exactly the oracle's.
    want_alerts = expected_alerts(readings, 5 * MINUTE, 4.0, 20)
    assert len(want_alerts) >= 6, "the spikes should trigger alerts"
    got_alerts = asyncio.run(
        wait_for_records(kafka_bootstrap, f"{prefix}sensor-alerts", ours, len(want_alerts), 60)
    )
    keyed = {(a["sensor_id"], a["ts"], a["value"]): a for a in got_alerts}
    assert len(keyed) == len(got_alerts), "an alert was emitted twice"
    assert sorted(keyed) == sorted(want_alerts)
    for key, alert in keyed.items():
        assert abs(alert["zscore"] - want_alerts[key]) < 1e-6

    # Nothing was late (disorder < grace) and both workers are healthy.
    late = asyncio.run(read_topic(kafka_bootstrap, f"{prefix}faustapp-late"))
    assert [r for r in late if ours(r)] == []
    first.wait_ready(timeout=30)  # both healthy (a busy worker may answer a probe late)
    second.wait_ready(timeout=30)


def test_idle_partition_closes_its_last_window(kafka_bootstrap, make_worker, event_clock):
    prefix = f"idle-{uuid.uuid4().hex[:6]}."
    worker = make_worker(**_env(prefix, FAUSTAPP_IDLE_CLOSE_MS="1500")).start()
    worker.wait_ready(partitions=PARTITIONS)
    start = event_clock.allocate(minutes=2)
    sensor = "idle-s-1"
    readings = [Reading(sensor, start + 58_000 + i * 100, float(i)) for i in range(10)]
    asyncio.run(send_readings(kafka_bootstrap, readings, f"{prefix}sensor-readings"))
    # No more data: stream time only moves by the idle rule (end + grace is ~5 s away).
    got = asyncio.run(
        wait_for_records(
            kafka_bootstrap,
            f"{prefix}sensor-stats-1m",
            lambda r: r["sensor_id"] == sensor,
            expected=1,
            timeout=45,
        )
    )
    assert len(got) == 1
    assert got[0]["count"] == 10 and got[0]["window_start"] == start


def test_far_future_event_is_dead_lettered_and_does_not_move_stream_time(
    kafka_bootstrap, make_worker, event_clock
):
    prefix = f"skew-{uuid.uuid4().hex[:6]}."
    worker = make_worker(**_env(prefix)).start()
    worker.wait_ready(partitions=PARTITIONS)
    start = event_clock.allocate(minutes=2)
    sensor = "skew-s-1"
    topic = f"{prefix}sensor-readings"
    future = Reading(sensor, int(time.time() * 1000) + 2 * 3_600_000, 1.0)
    asyncio.run(send_readings(kafka_bootstrap, [Reading(sensor, start, 1.0), future], topic))
    asyncio.run(send_readings(kafka_bootstrap, [Reading(sensor, start + 1000, 2.0)], topic))
    dead = asyncio.run(
        wait_for_records(kafka_bootstrap, f"{prefix}faustapp-dlq", lambda r: True, expected=1)
    )
    assert len(dead) == 1 and "ahead of the worker's clock" in dead[0]["error"]
    # Had the future event moved stream time, the reading after it would be late.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, body, _ = http_get(f"{worker.url}/api/sensors/{sensor}")
        if status == 200 and body["windows"][0]["count"] == 2:
            break
        time.sleep(0.3)
    assert status == 200 and body["windows"][0]["count"] == 2, body
    assert asyncio.run(read_topic(kafka_bootstrap, f"{prefix}faustapp-late")) == []
