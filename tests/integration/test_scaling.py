"""Scale 1 -> 3 -> 2 workers while events flow, querying every worker all along; and fail-over
to a standby after a crash."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.sensors import (
    MINUTE,
    Reading,
    assert_same_figures,
    disordered_readings,
    expected_windows,
    key_per_partition,
    send_readings,
    wait_for_records,
)
from support.workers import http_get

pytestmark = pytest.mark.integration

PARTITIONS = 4
GRACE_MS = 4_000


class Prober(threading.Thread):
    """Asks every live worker about a few sensors, over and over, and keeps every answer."""

    def __init__(self, workers: list, sensors: list[str]) -> None:
        super().__init__(daemon=True)
        self.workers = workers
        self.sensors = sensors
        self.answers: list[tuple[int, dict, dict]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            for worker in list(self.workers):
                if not worker.alive():
                    continue
                for sensor in self.sensors:
                    # a worker may stop between alive() and the request
                    with contextlib.suppress(OSError):
                        self.answers.append(http_get(f"{worker.url}/api/sensors/{sensor}", 5))
            time.sleep(0.1)


def test_scale_1_3_2_while_events_flow_keeps_results_exact_and_queries_answering(
    kafka_bootstrap, make_worker, event_clock
):
    prefix = f"scale-{uuid.uuid4().hex[:6]}."
    env = {
        "FAUSTAPP_TOPIC_PREFIX": prefix,
        "FAUSTAPP_GRACE_MS": str(GRACE_MS),
        "FAUSTAPP_PARTITIONS": str(PARTITIONS),
        "FAUSTAPP_PROCESSING_GUARANTEE": "exactly_once",
        "FAUSTAPP_PIPELINES": "sensor-stats-1m",
    }
    topic = f"{prefix}sensor-readings"
    first = make_worker(**env).start()
    first.wait_ready(partitions=PARTITIONS)
    app_id = first.app_id
    start = event_clock.allocate(minutes=8)
    sensors = [f"sc-s-{i}" for i in range(24)]
    readings = disordered_readings(
        sensors, start, minutes=6, every_ms=1000, disorder_ms=GRACE_MS - 1000, seed=9
    )
    step = len(readings) // 6
    chunks = [readings[i : i + step] for i in range(0, len(readings), step)]
    produced: collections.Counter = collections.Counter()

    live = [first]
    prober = Prober(live, sensors[:6])
    prober.start()
    try:

        def send(chunk: list[Reading]) -> None:
            for r in chunk:  # counted before sending: a view may never show more than this
                produced[(r.sensor_id, r.ts - r.ts % MINUTE)] += 1
            asyncio.run(send_readings(kafka_bootstrap, chunk, topic))

        send(chunks[0])
        second = make_worker(app_id=app_id, **env).start()
        live.append(second)
        send(chunks[1])
        third = make_worker(app_id=app_id, **env).start()
        live.append(third)
        send(chunks[2])
        second.wait_ready(timeout=120)
        third.wait_ready(timeout=120)
        send(chunks[3])
        assert third.stop() == 0, third.log_tail()  # 3 -> 2, cleanly, while data flows
        live.remove(third)
        for chunk in chunks[4:]:
            send(chunk)
        first.wait_ready(timeout=120)
        second.wait_ready(timeout=120)
        end = start + 7 * MINUTE + GRACE_MS
        closers = [Reading(k, end, 0.0) for k in key_per_partition("sc-close", PARTITIONS).values()]
        send(closers)

        want = expected_windows(readings)
        got = asyncio.run(
            wait_for_records(
                kafka_bootstrap,
                f"{prefix}sensor-stats-1m",
                lambda r: r["sensor_id"] in sensors,
                expected=len(want),
                timeout=180,
            )
        )
    finally:
        prober.stop_event.set()
        prober.join(10)

    keys = [(r["sensor_id"], r["window_start"]) for r in got]
    assert sorted(keys) == sorted(want), "missing or repeated windows across the rescaling"
    for r in got:
        assert_same_figures(r, want[(r["sensor_id"], r["window_start"])])

    statuses = collections.Counter(status for status, _, _ in prober.answers)
    assert statuses[200] > 0, statuses
    assert set(statuses) <= {200, 404, 503}, statuses  # never a 500
    for status, body, headers in prober.answers:
        assert "error" in body if status != 200 else "windows" in body
        if status == 503:
            assert headers.get("Retry-After"), headers
        if status == 200:
            for window in body["windows"]:
                # never a wrong value: a live count can lag, but never exceed what was produced
                produced_so_far = produced[(body["sensor_id"], window["window_start"])]
                assert window["count"] <= produced_so_far, (body, produced_so_far)


def test_standby_takes_over_after_kill_9(kafka_bootstrap, make_worker, event_clock):
    prefix = f"sb-{uuid.uuid4().hex[:6]}."
    env = {
        "FAUSTAPP_TOPIC_PREFIX": prefix,
        "FAUSTAPP_GRACE_MS": str(GRACE_MS),
        "FAUSTAPP_PARTITIONS": str(PARTITIONS),
        "FAUSTAPP_PIPELINES": "sensor-stats-1m",
        "FAUSTAPP_SESSION_TIMEOUT_MS": "6000",
    }
    first = make_worker(**env).start()
    second = make_worker(app_id=first.app_id, **env).start()
    first.wait_ready(timeout=120)
    second.wait_ready(timeout=120)
    start = event_clock.allocate(minutes=2)
    sensors = [f"sb-s-{i}" for i in range(16)]
    readings = [Reading(s, start + i * 1000, float(i)) for i in range(20) for s in sensors]
    asyncio.run(send_readings(kafka_bootstrap, readings, f"{prefix}sensor-readings"))

    def owner_counts(worker) -> dict[str, int]:
        counts = {}
        for sensor in sensors:
            status, body, headers = http_get(f"{worker.url}/api/sensors/{sensor}")
            served_by = headers.get("X-Faustapp-Served-By", "").rstrip("/")
            if status == 200 and served_by == worker.url.rstrip("/"):  # its own keys
                counts[sensor] = body["windows"][0]["count"]
        return counts

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        mine = owner_counts(second)
        if mine and all(c == 20 for c in mine.values()):
            break
        time.sleep(0.5)
    assert mine and all(c == 20 for c in mine.values()), mine
    killed_at = time.monotonic()
    second.kill()
    # The survivor takes the partitions over (from its standby copy) and answers with the same
    # figures, itself.
    took_over = None
    while time.monotonic() - killed_at < 180:  # a bound for "it takes over", not a speed check
        survivor = owner_counts(first)
        if all(survivor.get(sensor) == 20 for sensor in mine):
            took_over = time.monotonic() - killed_at
            break
        time.sleep(0.25)
    assert took_over is not None, first.log_tail()
    print(f"\nfail-over after kill -9: {took_over:.1f} s (session timeout 6 s)")


def _offset_gauges(worker, topic: str) -> dict[str, dict[int, float]]:
    """Faust's end-offset and committed-offset gauges of ``topic``, by partition."""
    with urllib.request.urlopen(f"{worker.url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    gauges: dict[str, dict[int, float]] = {"end": {}, "committed": {}}
    names = {
        "faustapp_topic_partition_end_offset": "end",
        "faustapp_topic_partition_offset_commited": "committed",
    }
    for family in text_string_to_metric_families(text):
        if family.name in names:
            for sample in family.samples:
                if sample.labels.get("topic") == topic:
                    gauges[names[family.name]][int(sample.labels["partition"])] = sample.value
    return gauges


def test_lag_gauges_come_back_after_a_rebalance_without_new_records(
    kafka_bootstrap, make_worker, event_clock
):
    """Faust clears its offset gauges at every rebalance and sets them again only on records and
    commits: a caught-up worker lost its lag panel after a scale-down until traffic resumed."""
    prefix = f"lag-{uuid.uuid4().hex[:6]}."
    env = {
        "FAUSTAPP_TOPIC_PREFIX": prefix,
        "FAUSTAPP_PARTITIONS": str(PARTITIONS),
        "FAUSTAPP_PIPELINES": "sensor-stats-1m",
    }
    topic = f"{prefix}sensor-readings"
    first = make_worker(**env).start()
    first.wait_ready(partitions=PARTITIONS)
    start = event_clock.allocate(minutes=2)
    readings = [Reading(f"lag-s-{s}", start + i * 1000, 1.0) for i in range(50) for s in range(8)]
    placed = asyncio.run(send_readings(kafka_bootstrap, readings, topic))
    ends = collections.Counter(partition for partition, _ in placed)
    caught_up = {p: float(ends[p]) for p in range(PARTITIONS)}

    def wait_caught_up(deadline_s: float) -> dict[str, dict[int, float]]:
        deadline = time.monotonic() + deadline_s
        gauges = _offset_gauges(first, topic)
        while time.monotonic() < deadline:
            if gauges["end"] == caught_up and gauges["committed"] == caught_up:
                break
            time.sleep(0.5)
            gauges = _offset_gauges(first, topic)
        return gauges

    gauges = wait_caught_up(60)
    assert gauges == {"end": caught_up, "committed": caught_up}, gauges

    second = make_worker(app_id=first.app_id, **env).start()
    second.wait_ready(timeout=120)
    first.wait_ready(partitions=PARTITIONS // 2, timeout=120)
    assert second.stop() == 0
    first.wait_ready(partitions=PARTITIONS, timeout=120)
    # No record arrives after the rebalance: the gauges must come back on their own.
    gauges = wait_caught_up(15)
    assert gauges == {"end": caught_up, "committed": caught_up}, (gauges, first.log_tail())
