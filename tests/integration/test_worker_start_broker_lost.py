"""A worker started just after a broker of its cluster died waits for the cluster and then works.

Until the cluster fences a killed broker (about 9 s), the broker is still in every client's
metadata. Faust then asked that broker, or a controller it named, to create the worker's topics,
and the worker exited on ``NodeNotReadyError`` (a restart after a crash during a broker outage
failed this way in the cluster chaos run). A 3-broker cluster, replication factor 3, min in-sync
replicas 2: node 1 is killed, a worker with a fresh application id (every topic to create) starts
at once, comes up, computes exact windows, and every topic it created has 3 replicas.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from support.kafka_broker import create_topics, free_port
from support.kafka_cluster import KafkaCluster, describe
from support.sensors import (
    MINUTE,
    Reading,
    assert_same_figures,
    expected_windows,
    key_per_partition,
    read_topic,
    send_readings,
)
from support.workers import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

PARTITIONS = 2


@pytest.fixture
def cluster(tmp_path):
    kafka = KafkaCluster(tmp_path / "kafka", brokers=3, replicas=3, min_insync=2).start()
    try:
        yield kafka
    finally:
        kafka.stop()


def test_a_worker_started_while_a_broker_is_lost_waits_and_works(cluster, tmp_path):
    prefix, app_id = f"wsl-{uuid.uuid4().hex[:6]}.", f"wsl-{uuid.uuid4().hex[:6]}"
    topic = f"{prefix}sensor-readings"
    asyncio.run(
        create_topics(
            cluster.bootstrap,
            [topic],
            PARTITIONS,
            replication_factor=3,
            config={"min.insync.replicas": "2"},
        )
    )
    cluster.kill(1)
    killed_at = time.monotonic()
    worker = WorkerProcess(
        cluster.bootstrap,
        tmp_path / "worker",
        free_port(),
        app_id=app_id,
        extra_env={
            "FAUSTAPP_BROKER": cluster.broker_url,
            "FAUSTAPP_TOPIC_PREFIX": prefix,
            "FAUSTAPP_PIPELINES": "sensor-stats-1m",
            "FAUSTAPP_PARTITIONS": str(PARTITIONS),
            "FAUSTAPP_PROCESSING_GUARANTEE": "exactly_once",
            "FAUSTAPP_REPLICATION_FACTOR": "3",
            "FAUSTAPP_MIN_INSYNC_REPLICAS": "2",
        },
    ).start()
    try:
        worker.wait_ready(timeout=150, partitions=PARTITIONS)
        started_s = time.monotonic() - killed_at
        start = int(time.time() * 1000) - 2 * 60 * MINUTE
        start -= start % MINUTE
        sensors = ["wsl-a", "wsl-b", "wsl-c"]
        readings = [
            Reading(s, start + i * 997, round((i * 7.3 + n) % 50, 3))
            for i in range(180)
            for n, s in enumerate(sensors)
        ]
        # One reading per partition past the last window and its grace closes every window.
        closers = [
            Reading(key, start + 10 * MINUTE, 0.0)
            for key in key_per_partition("wsl-closer", PARTITIONS).values()
        ]
        # Closers after the readings are acknowledged: a produce retried while a broker is
        # down may otherwise land after them and be late.
        asyncio.run(send_readings(cluster.bootstrap, readings, topic))
        asyncio.run(send_readings(cluster.bootstrap, closers, topic))
        want = expected_windows(readings)
        deadline = time.monotonic() + 90
        got: dict = {}
        while time.monotonic() < deadline and len(got) < len(want):
            records = asyncio.run(read_topic(cluster.bootstrap, f"{prefix}sensor-stats-1m"))
            got = {
                (r["sensor_id"], r["window_start"]): r for r in records if r["sensor_id"] in sensors
            }
            time.sleep(1.0)
        assert worker.alive(), worker.log_tail()
        assert set(got) == set(want), (len(got), len(want), worker.log_tail())
        for key, expected in want.items():
            assert_same_figures(got[key], expected)
        topics = asyncio.run(describe(cluster.bootstrap, (prefix, app_id)))
        made = {name: t["replicas"] for name, t in topics.items() if name != topic}
        assert made and set(made.values()) == {3}, made
        print(f"worker ready {started_s:.1f}s after the broker kill; {len(made)} topics made")
    finally:
        worker.kill()
