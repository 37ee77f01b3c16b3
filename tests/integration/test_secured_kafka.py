"""A broker with a SASL_SSL, a TLS-only and a SASL_PLAINTEXT listener (SCRAM-SHA-256 and
SCRAM-SHA-512 on the SASL ones): a worker, a generator and ``faustapp tail`` work through each;
a wrong password and an unknown CA fail fast and clearly."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from faustapp import kafka_client
from faustapp.settings import Settings

from support.kafka_broker import BrokerError
from support.secured_kafka import SecuredBroker, other_ca
from support.sensors import MINUTE, Reading, read_topic
from support.workers import http_get

pytestmark = pytest.mark.integration

FAUSTAPP = Path(sys.executable).with_name("faustapp")
LISTENERS = ("sasl_ssl", "ssl", "sasl_plaintext")
TLS_LISTENERS = ("sasl_ssl", "ssl")
#: Listener and SCRAM mechanism: each SASL listener takes either mechanism from the same user.
OTHER_MECHANISMS = (("sasl_ssl", "SCRAM-SHA-256"), ("sasl_plaintext", "SCRAM-SHA-512"))
#: A refused login or certificate must stop a command within this, never hang or retry.
CLI_BOUND_S = 15.0
WORKER_BOUND_S = 45.0


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredBroker]:
    broker = SecuredBroker(tmp_path_factory.mktemp("secured-kafka"))
    try:
        broker.start()
    except BrokerError as exc:
        pytest.fail(f"could not start the secured broker: {exc}", pytrace=False)
    yield broker
    broker.stop()


def cli(env: dict[str, str], *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FAUSTAPP_")}
    return subprocess.run(
        [str(FAUSTAPP), *args],
        env={**base, **env},
        capture_output=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize(
    ("listener", "mechanism"),
    [(listener, None) for listener in LISTENERS] + list(OTHER_MECHANISMS),
    ids=[*LISTENERS, *(f"{listener}-{m.lower()}" for listener, m in OTHER_MECHANISMS)],
)
def test_generator_and_tail_work_through_the_listener(secured, listener, mechanism):
    prefix = f"sec-{listener}-{uuid.uuid4().hex[:6]}."
    env = secured.env(listener, FAUSTAPP_TOPIC_PREFIX=prefix)
    if mechanism is not None:
        env["FAUSTAPP_SASL_MECHANISM"] = mechanism
    generate = ["generate", "sensors", "--count", "40", "--rate", "0", "--seed", "7"]
    done = cli(env, *generate, "--bad-ratio", "0", "--partitions", "2", "--quiet")
    assert done.returncode == 0, done.stderr.decode()
    topic = f"{prefix}sensor-readings"
    # The oracle: what the broker holds, read through its PLAINTEXT listener.
    stored = asyncio.run(read_topic(secured.bootstrap, topic))
    assert len(stored) == 40
    done = cli(env, "tail", topic, "--from-beginning", "--count", "40")
    assert done.returncode == 0, done.stderr.decode()
    tailed = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert sorted((r["partition"], r["offset"], r["value"]) for r in tailed) == sorted(
        (r.pop("_partition"), r.pop("_offset"), {k: v for k, v in r.items() if k != "_key"})
        for r in stored
    )


async def send_secured(settings: Settings, topic: str, readings: list[Reading]) -> None:
    """The test's own producer, through the secured listener with faustapp's client options."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, **kafka_client.producer_options(settings)
    )
    await producer.start()
    try:
        for reading in readings:
            await producer.send(topic, reading.encode(), key=reading.sensor_id.encode())
        await producer.flush()
    finally:
        await producer.stop()


@pytest.mark.parametrize("listener", LISTENERS)
def test_a_worker_computes_through_the_listener_and_shows_no_secret(
    secured, make_worker, event_clock, listener
):
    prefix = f"secw-{listener}-{uuid.uuid4().hex[:6]}."
    env = secured.env(
        listener,
        FAUSTAPP_TOPIC_PREFIX=prefix,
        FAUSTAPP_PARTITIONS="2",
        FAUSTAPP_PIPELINES="sensor-stats-1m",
        FAUSTAPP_PROCESSING_GUARANTEE="exactly_once",
    )
    worker = make_worker(**env).start()
    worker.wait_ready(timeout=120)
    start = event_clock.allocate(minutes=2)
    sensors = [f"sec-s-{i}" for i in range(6)]
    readings = [Reading(s, start + i * 2000, float(i % 7)) for i in range(12) for s in sensors]
    settings = Settings.from_env(env)
    asyncio.run(send_secured(settings, f"{prefix}sensor-readings", readings))
    want = Counter(r.sensor_id for r in readings)  # every sensor: one window (24 s < 1 min)
    assert all(r.ts - r.ts % MINUTE == start for r in readings)
    got: dict[str, int] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and got != want:
        for sensor in sensors:
            status, body, _ = http_get(f"{worker.url}/api/sensors/{sensor}")
            if status == 200 and body.get("windows"):
                got[sensor] = body["windows"][0]["count"]
        time.sleep(0.5)
    assert got == dict(want), worker.log_tail()
    status, body, _ = http_get(f"{worker.url}/api/health")
    assert status == 200
    if listener.startswith("sasl_"):
        assert env["FAUSTAPP_SASL_PASSWORD"] == secured.password
        assert secured.password not in orjson.dumps(body).decode()
        assert secured.password not in worker.log_path.read_text(errors="replace")


def assert_fails_fast(done: subprocess.CompletedProcess, took: float, *fragments: str) -> None:
    stderr = done.stderr.decode()
    assert done.returncode != 0, stderr
    assert took < CLI_BOUND_S, (took, stderr)
    for fragment in fragments:
        assert fragment in stderr, stderr


@pytest.mark.parametrize(
    ("listener", "mechanism"),
    [("sasl_ssl", "SCRAM-SHA-512"), ("sasl_plaintext", "SCRAM-SHA-256")],
    ids=["sasl_ssl", "sasl_plaintext"],
)
def test_a_wrong_password_fails_fast_with_a_clear_message(
    secured, make_worker, tmp_path, listener, mechanism
):
    env = secured.env(listener, FAUSTAPP_SASL_PASSWORD="not-the-password")
    assert env["FAUSTAPP_SASL_MECHANISM"] == mechanism
    protocol = listener.upper()
    refused = f"refused the login of FAUSTAPP_SASL_USERNAME='faustapp-it' with {mechanism}"
    for args in (
        ("tail", "sec-nothing", "--count", "1"),
        ("generate", "sensors", "--count", "5", "--rate", "0"),
    ):
        started = time.monotonic()
        done = cli(env, *args)
        assert_fails_fast(done, time.monotonic() - started, refused)
        assert "not-the-password" not in done.stderr.decode()
    worker = make_worker(**env)
    started = time.monotonic()
    worker.start()
    worker.proc.wait(WORKER_BOUND_S)  # raises TimeoutExpired if the worker hangs or retries
    assert worker.proc.returncode != 0
    log = worker.log_path.read_text(errors="replace")
    assert f"{refused} over {protocol}" in log and "; stopping" in log, log[-3000:]
    assert "not-the-password" not in log
    print(f"\nworker stopped {time.monotonic() - started:.1f} s after start (wrong password)")


@pytest.mark.parametrize("listener", TLS_LISTENERS)
def test_an_unknown_ca_fails_fast_with_a_clear_message(secured, make_worker, tmp_path, listener):
    ca = other_ca(tmp_path / "ca")
    env = secured.env(listener, FAUSTAPP_SSL_CAFILE=str(ca))
    untrusted = "the broker's TLS certificate is not trusted"
    started = time.monotonic()
    done = cli(env, "tail", "sec-nothing", "--count", "1")
    assert_fails_fast(done, time.monotonic() - started, untrusted, f"FAUSTAPP_SSL_CAFILE='{ca}'")
    started = time.monotonic()
    done = cli(env, "generate", "sensors", "--count", "5", "--rate", "0")
    assert_fails_fast(done, time.monotonic() - started, untrusted)
    worker = make_worker(**env).start()
    worker.proc.wait(WORKER_BOUND_S)
    assert worker.proc.returncode != 0
    log = worker.log_path.read_text(errors="replace")
    assert untrusted in log and "; stopping" in log, log[-3000:]


def test_mutual_tls_needs_the_client_certificate(tmp_path_factory):
    broker = SecuredBroker(tmp_path_factory.mktemp("mtls-kafka"), client_auth=True)
    try:
        broker.start()
    except BrokerError as exc:
        pytest.fail(f"could not start the mutual-TLS broker: {exc}", pytrace=False)
    try:
        prefix = f"mtls-{uuid.uuid4().hex[:6]}."
        env = broker.env("ssl", FAUSTAPP_TOPIC_PREFIX=prefix)
        generate = ["generate", "sensors", "--count", "25", "--rate", "0", "--seed", "3"]
        done = cli(env, *generate, "--bad-ratio", "0", "--partitions", "1", "--quiet")
        assert done.returncode == 0, done.stderr.decode()
        stored = asyncio.run(read_topic(broker.bootstrap, f"{prefix}sensor-readings"))
        done = cli(env, "tail", f"{prefix}sensor-readings", "--from-beginning", "--count", "25")
        assert done.returncode == 0, done.stderr.decode()
        tailed = [orjson.loads(line)["value"] for line in done.stdout.splitlines()]
        assert tailed == [{k: v for k, v in r.items() if not k.startswith("_")} for r in stored]
        # Without the client certificate the broker closes the connection: the command stops
        # and says a client certificate may be required.
        env = broker.env("ssl", FAUSTAPP_SSL_CERTFILE="", FAUSTAPP_SSL_KEYFILE="")
        started = time.monotonic()
        done = cli(env, "tail", f"{prefix}sensor-readings", "--count", "1")
        assert_fails_fast(done, time.monotonic() - started, "requires a client certificate")
    finally:
        broker.stop()
