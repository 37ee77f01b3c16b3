"""The IoT pipeline end to end on the real broker: readings in, final 1-minute stats out, once."""

from __future__ import annotations

import asyncio
import base64
import urllib.request
import uuid

import pytest

from faustapp.windowed import partition_for

from support.kafka_broker import free_port
from support.sensors import (
    MINUTE,
    Reading,
    assert_same_figures,
    disordered_readings,
    expected_windows,
    key_per_partition,
    read_topic,
    send,
    send_readings,
    wait_for_records,
)
from support.workers import WorkerProcess, http_get

pytestmark = pytest.mark.integration

PARTITIONS = 4
GRACE_MS = 5_000
PREFIX = f"it-{uuid.uuid4().hex[:6]}."  # this module's own topics, even on a shared broker
READINGS, STATS = f"{PREFIX}sensor-readings", f"{PREFIX}sensor-stats-1m"
LATE, DLQ = f"{PREFIX}faustapp-late", f"{PREFIX}faustapp-dlq"


def _advance_all_partitions(prefix: str, ts: int) -> list[Reading]:
    """One reading per partition at ``ts``: moves every partition's stream time there."""
    return [Reading(key, ts, 0.0) for key in key_per_partition(prefix, PARTITIONS).values()]


@pytest.fixture(scope="module")
def module_worker(kafka_bootstrap, tmp_path_factory):
    """One worker for the module's tests (each test uses its own sensors and event times)."""
    worker = WorkerProcess(
        kafka_bootstrap,
        tmp_path_factory.mktemp("pipeline-worker"),
        free_port(),
        app_id=f"faustapp-it-{PREFIX[3:-1]}",
        extra_env={
            "FAUSTAPP_GRACE_MS": str(GRACE_MS),
            "FAUSTAPP_PARTITIONS": str(PARTITIONS),
            "FAUSTAPP_TOPIC_PREFIX": PREFIX,
        },
    ).start()
    try:
        worker.wait_ready(partitions=PARTITIONS)
        yield worker
    finally:
        worker.kill()


def test_final_results_once_per_window_with_exact_figures(
    kafka_bootstrap, module_worker, event_clock
):
    start = event_clock.allocate(minutes=6)
    sensors = [f"fin-s-{i}" for i in range(12)]
    readings = disordered_readings(
        sensors, start, minutes=4, every_ms=700, disorder_ms=GRACE_MS - 1000, seed=7
    )
    asyncio.run(send_readings(kafka_bootstrap, readings, READINGS))
    # Move every partition past the last window's end + grace, so all four minutes are final.
    closing = start + 4 * MINUTE + GRACE_MS
    asyncio.run(
        send_readings(kafka_bootstrap, _advance_all_partitions("fin-clock", closing), READINGS)
    )

    want = expected_windows(readings)
    got = asyncio.run(
        wait_for_records(
            kafka_bootstrap,
            STATS,
            lambda r: r["sensor_id"] in sensors,
            expected=len(want),
        )
    )
    keys = [(r["sensor_id"], r["window_start"]) for r in got]
    assert len(keys) == len(set(keys)), "a window was emitted more than once"
    assert set(keys) == set(want)
    for record in got:
        assert record["_key"] == record["sensor_id"].encode()
        figures = {k: v for k, v in record.items() if not k.startswith("_")}
        assert set(figures) == {
            "sensor_id",
            "window_start",
            "window_end",
            "count",
            "sum",
            "mean",
            "min",
            "max",
            "stddev",
        }
        assert_same_figures(figures, want[(record["sensor_id"], record["window_start"])])
    assert sum(r["count"] for r in got) == len(readings)


def test_late_event_goes_to_late_topic_not_into_result(kafka_bootstrap, module_worker, event_clock):
    start = event_clock.allocate(minutes=3)
    sensor = "late-s-1"
    on_time = [Reading(sensor, start + i * 1000, float(i)) for i in range(30)]
    asyncio.run(send_readings(kafka_bootstrap, on_time, READINGS))
    # Close the first minute on the sensor's partition with a reading of the sensor itself.
    closer = Reading(sensor, start + MINUTE + GRACE_MS, 1000.0)
    late = Reading(sensor, start + 45_000, -999.0)
    asyncio.run(send_readings(kafka_bootstrap, [closer], READINGS))
    asyncio.run(send_readings(kafka_bootstrap, [late], READINGS))

    late_records = asyncio.run(
        wait_for_records(kafka_bootstrap, LATE, lambda r: r.get("sensor_id") == sensor, expected=2)
    )
    # Late for the 1-minute windows and the 5-minute sliding alert window; the 5-minute hopping
    # windows that contain it are still open, so it counts there and is not late for them.
    by_pipeline = {r["pipeline"]: r for r in late_records}
    assert sorted(by_pipeline) == ["sensor-alerts", "sensor-stats-1m"], late_records
    record = by_pipeline["sensor-stats-1m"]
    assert record["ts"] == late.ts and record["value"] == late.value
    assert record["window_start"] == start and record["window_end"] == start + MINUTE
    assert record["stream_time"] >= start + MINUTE + GRACE_MS
    assert "final" in record["reason"]

    results = [
        r for r in asyncio.run(read_topic(kafka_bootstrap, STATS)) if r["sensor_id"] == sensor
    ]
    assert len(results) == 1
    assert results[0]["count"] == 30 and results[0]["min"] == 0.0  # the late -999 is not in it


def test_malformed_records_land_in_dlq_with_reason_and_raw_bytes(
    kafka_bootstrap, module_worker, event_clock
):
    start = event_clock.allocate(minutes=1)
    bad = [
        (b"dlq-s-1", b"not json at all"),
        (b"dlq-s-1", b"\xff\xfe\x00garbage"),
        (b"dlq-s-1", b'{"sensor_id": "dlq-s-1", "ts": 1}'),
        (b"dlq-s-1", b'{"sensor_id": "dlq-s-1", "ts": "yesterday", "value": 1}'),
        (b"dlq-s-1", b'{"sensor_id": "dlq-s-1", "ts": 1, "value": NaN}'),
        (b"dlq-s-1", b'{"sensor_id": "dlq-s-1", "ts": 1, "value": "12"}'),
        (b"dlq-s-1", b"[1, 2, 3]"),
        (None, b""),
    ]
    good = Reading("dlq-s-1", start + 1000, 5.0)
    positions = asyncio.run(send(kafka_bootstrap, READINGS, bad))
    asyncio.run(send_readings(kafka_bootstrap, [good], READINGS))
    wanted = set(positions)
    dead = asyncio.run(
        wait_for_records(
            kafka_bootstrap,
            DLQ,
            lambda r: (r["source_partition"], r["source_offset"]) in wanted,
            expected=len(bad),
        )
    )
    assert len(dead) == len(bad)
    by_position = {(r["source_partition"], r["source_offset"]): r for r in dead}
    for (key, value), position in zip(bad, positions, strict=True):
        record = by_position[position]
        assert record["source_topic"] == READINGS
        assert base64.b64decode(record["value_b64"]) == value
        assert record["key_b64"] == (None if key is None else base64.b64encode(key).decode())
        assert record["error"]
    reasons = [by_position[p]["error"] for p in positions]
    assert "JSON" in reasons[0] and "missing field 'value'" in reasons[2]
    assert "'ts'" in reasons[3]
    assert "JSON" in reasons[4]  # a bare NaN token is not JSON
    assert "must be a number" in reasons[5] and "object" in reasons[6] and "empty" in reasons[7]
    # The worker is still up and still counts the valid reading next to the bad ones.
    status, body, _ = http_get(f"{module_worker.url}/api/sensors/dlq-s-1")
    assert status == 200, body
    assert body["windows"][0]["count"] == 1


def test_web_view_serves_open_window_and_clear_errors(kafka_bootstrap, module_worker, event_clock):
    start = event_clock.allocate(minutes=2)
    sensor = "web-s-1"
    values = [3.0, 5.0, 10.0]
    asyncio.run(
        send_readings(
            kafka_bootstrap,
            [Reading(sensor, start + i * 1000, v) for i, v in enumerate(values)],
            READINGS,
        )
    )
    deadline_body = None
    for _ in range(60):
        status, body, _ = http_get(f"{module_worker.url}/api/sensors/{sensor}")
        if status == 200 and body["windows"][0]["count"] == len(values):
            deadline_body = body
            break
        asyncio.run(asyncio.sleep(0.5))
    assert deadline_body is not None, "the view never showed the three readings"
    window = deadline_body["windows"][0]
    assert deadline_body["sensor_id"] == sensor
    assert (window["window_start"], window["window_end"]) == (start, start + MINUTE)
    assert window["count"] == 3 and window["sum"] == 18.0 and window["mean"] == 6.0
    assert window["min"] == 3.0 and window["max"] == 10.0
    assert abs(window["stddev"] - 2.943920288775949) < 1e-12

    status, body, headers = http_get(f"{module_worker.url}/api/sensors/never-seen-sensor")
    assert status == 404 and "unknown sensor" in body["error"]
    assert headers["Content-Type"].startswith("application/json")
    status, body, _ = http_get(f"{module_worker.url}/api/sensors/bad%01id")
    assert status == 400 and "invalid sensor id" in body["error"]


def test_record_keyed_wrongly_is_counted_under_its_value_key(
    kafka_bootstrap, module_worker, event_clock
):
    start = event_clock.allocate(minutes=1)
    sensor = "rekey-s-1"
    # Same sensor under a misleading key and under no key at all: the value decides.
    records = [
        (b"some-other-key", Reading(sensor, start + 1000, 1.0).encode()),
        (None, Reading(sensor, start + 2000, 2.0).encode()),
        (sensor.encode(), Reading(sensor, start + 3000, 3.0).encode()),
    ]
    rekeyed_before = _rekeyed_total(module_worker)
    placed = asyncio.run(send(kafka_bootstrap, READINGS, records))
    body = None
    for _ in range(60):
        status, body, _ = http_get(f"{module_worker.url}/api/sensors/{sensor}")
        if status == 200 and body["windows"][0]["count"] == 3:
            break
        asyncio.run(asyncio.sleep(0.5))
    assert body is not None and body["windows"][0]["count"] == 3, body
    assert body["windows"][0]["sum"] == 6.0
    # Only a record that landed outside the sensor's home partition is forwarded (and counted);
    # the keyless one lands on a random partition, so the expected count comes from where they went.
    home = partition_for(sensor, PARTITIONS)
    assert placed[2][0] == home
    off_home = sum(1 for partition, _ in placed if partition != home)
    assert _rekeyed_total(module_worker) - rekeyed_before == off_home, placed


def _rekeyed_total(worker: WorkerProcess) -> float:
    """The worker's rekeyed-events counter for the sensors input, from its /metrics page."""
    with urllib.request.urlopen(f"{worker.url}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith('faustapp_rekeyed_events_total{pipeline="sensors"}'):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError("faustapp_rekeyed_events_total is missing from /metrics")


def test_metrics_expose_faust_and_pipeline_counters(module_worker):
    with urllib.request.urlopen(f"{module_worker.url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name_labels, value = line.rsplit(" ", 1)
            samples[name_labels] = float(value)

    def total(prefix: str) -> float:
        return sum(v for k, v in samples.items() if k.startswith(prefix))

    # Faust's own sensor.
    assert total("faustapp_messages_received_total") > 0 or total("faustapp_messages_received") > 0
    assert any(k.startswith("faustapp_topic_partition_end_offset") for k in samples)
    # The pipeline's counters, after the tests above ran through this worker.
    # Input-level counters are labelled with the input's pipeline group, "sensors".
    assert total('faustapp_events_in_total{pipeline="sensors"}') > 0
    assert total('faustapp_dead_letters_total{pipeline="sensors"}') >= 8
    # Exact counts of forwarded records are checked where they are sent; here: the series exists.
    assert 'faustapp_rekeyed_events_total{pipeline="sensors"}' in samples
    assert total('faustapp_windows_closed_total{pipeline="sensor-stats-1m"}') > 0
    assert total('faustapp_late_events_total{pipeline="sensor-stats-1m"}') >= 1
    assert any(k.startswith("faustapp_open_windows{") for k in samples)
