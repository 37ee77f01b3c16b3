"""The start-up checks of existing topics, against the real broker: fewer replicas than
configured are named, another partition count than FAUSTAPP_PARTITIONS stops the worker."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from faustapp import kafka_client
from faustapp.settings import Settings

from support.kafka_broker import create_topics
from support.sensors import MINUTE, Reading, key_per_partition, read_topic, send_readings

pytestmark = pytest.mark.integration


def test_existing_topics_with_fewer_replicas_are_named(kafka_bootstrap):
    prefix = f"rc-{uuid.uuid4().hex[:6]}."
    existing, missing = f"{prefix}sensor-readings", f"{prefix}not-created-yet"
    asyncio.run(create_topics(kafka_bootstrap, [existing], 2, replication_factor=1))
    wanted = Settings.from_env(
        {"FAUSTAPP_BROKER": f"kafka://{kafka_bootstrap}", "FAUSTAPP_REPLICATION_FACTOR": "3"}
    )
    found = asyncio.run(kafka_client.under_replicated(wanted, [existing, missing]))
    assert found == {existing: 1}  # a missing topic is not created by the check, nor named
    topics = asyncio.run(kafka_client.under_replicated(wanted, [missing]))
    assert topics == {}
    single = Settings.from_env({"FAUSTAPP_BROKER": f"kafka://{kafka_bootstrap}"})
    assert asyncio.run(kafka_client.under_replicated(single, [existing])) == {}


def test_a_worker_names_its_under_replicated_topics_at_start(kafka_bootstrap, make_worker):
    """One broker cannot hold 2 replicas: the worker's existing input topic has 1, and the
    worker says so, naming it (what happens after is the broker refusing new topics)."""
    prefix = f"rcw-{uuid.uuid4().hex[:6]}."
    topic = f"{prefix}sensor-readings"
    asyncio.run(create_topics(kafka_bootstrap, [topic], 2, replication_factor=1))
    worker = make_worker(
        FAUSTAPP_TOPIC_PREFIX=prefix,
        FAUSTAPP_PIPELINES="sensor-stats-1m",
        FAUSTAPP_REPLICATION_FACTOR="2",
    ).start()
    expected = f"topic {topic!r} has 1 replica(s), fewer than FAUSTAPP_REPLICATION_FACTOR=2"
    deadline = time.monotonic() + 60
    log = ""
    while time.monotonic() < deadline and expected not in log:
        log = worker.log_path.read_text(errors="replace") if worker.log_path.exists() else ""
        time.sleep(0.25)
    assert expected in log, log[-3000:]
    # Topics the worker has not created yet are not named (they get the configured factor).
    assert f"topic '{prefix}sensor-stats-1m' has" not in log


def test_a_worker_stops_on_an_input_topic_with_other_partitions(kafka_bootstrap, make_worker):
    """An existing input topic with 2 partitions, FAUSTAPP_PARTITIONS 4: keys would be routed to
    partitions that do not exist. The worker stops at start with a message naming the topic and
    the fix, before reading anything: a worker run as the message says counts every reading."""
    prefix = f"pm-{uuid.uuid4().hex[:6]}."
    topic = f"{prefix}sensor-readings"
    asyncio.run(create_topics(kafka_bootstrap, [topic], 2))
    start = int(time.time() * 1000) - 3_600_000
    start -= start % MINUTE
    readings = [Reading(f"pm-{n}", start + n * 1000, float(n)) for n in range(8)]
    closers = [Reading(k, start + 3 * MINUTE, 0.0) for k in key_per_partition("pmc", 2).values()]
    asyncio.run(send_readings(kafka_bootstrap, readings + closers, topic))
    app_id = f"pm-{uuid.uuid4().hex[:6]}"
    env = {"FAUSTAPP_TOPIC_PREFIX": prefix, "FAUSTAPP_PIPELINES": "sensor-stats-1m"}
    worker = make_worker(app_id, **env).start()
    assert worker.proc is not None
    worker.proc.wait(90)
    log = worker.log_path.read_text(errors="replace")
    assert worker.proc.returncode != 0, log[-3000:]
    expected = (
        f"topic {topic!r} has 2 partition(s), but FAUSTAPP_PARTITIONS=4: every input, "
        "repartition topic and changelog must have that many"
    )
    assert expected in log and "set FAUSTAPP_PARTITIONS=2" in log, log[-3000:]

    make_worker(app_id, FAUSTAPP_PARTITIONS="2", **env).start().wait_ready(partitions=2)
    deadline, counted = time.monotonic() + 60, {}
    while time.monotonic() < deadline and sum(counted.values()) < len(readings):
        records = asyncio.run(read_topic(kafka_bootstrap, f"{prefix}sensor-stats-1m"))
        counted = {r["sensor_id"]: r["count"] for r in records if r["sensor_id"].startswith("pm-")}
        time.sleep(0.5)
    assert counted == {r.sensor_id: 1 for r in readings}
