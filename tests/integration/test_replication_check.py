"""The start-up check that names existing topics with fewer replicas than configured, against
the real broker."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from faustapp import kafka_client
from faustapp.settings import Settings

from support.kafka_broker import create_topics

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
