"""``faustapp tail`` as a real process against the real broker: committed records only, exact
lines, key filtering, starting at the end, Ctrl-C and a missing topic; and the compacted topic of
``faustapp generate products`` read back through it."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from support.kafka_broker import create_topics

pytestmark = pytest.mark.integration

FAUSTAPP = Path(sys.executable).with_name("faustapp")
TS = 1_732_435_200_000
#: A prefix the tail must not add: topics are taken as given.
PREFIX = "tail-prefix-not-added."

Sent = tuple[bytes | None, bytes | None, int]
"""(key, value, Kafka timestamp) of a record to produce."""


def tail_env(bootstrap: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("FAUSTAPP_")}
    env.update(FAUSTAPP_BROKER=f"kafka://{bootstrap}", FAUSTAPP_TOPIC_PREFIX=PREFIX)
    return env


def run_tail(bootstrap: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(FAUSTAPP), "tail", *args],
        env=tail_env(bootstrap),
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def start_tail(bootstrap: str, stderr_path: Path, *args: str) -> subprocess.Popen:
    with stderr_path.open("wb") as stderr:
        return subprocess.Popen(
            [str(FAUSTAPP), "tail", *args],
            env=tail_env(bootstrap),
            stdout=subprocess.PIPE,
            stderr=stderr,
        )


def wait_until_tailing(process: subprocess.Popen, stderr_path: Path, timeout: float = 30.0) -> str:
    """The tail's notice that it is positioned, so records sent from now on are seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = stderr_path.read_text()
        if "tailing " in text:
            return text
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"tail never became ready: {stderr_path.read_text()!r}")


async def send(bootstrap: str, topic: str, records: list[Sent], partition: int | None = None):
    """Produce records in order; returns each one's (partition, offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        sent = []
        for key, value, timestamp in records:
            metadata = await producer.send_and_wait(
                topic, value, key=key, timestamp_ms=timestamp, partition=partition
            )
            sent.append((metadata.partition, metadata.offset))
        return sent
    finally:
        await producer.stop()


async def send_transaction(bootstrap: str, topic: str, records: list[Sent], *, commit: bool):
    """Produce records in one transaction, then commit or abort it."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, transactional_id=f"tail-it-{uuid.uuid4().hex}"
    )
    await producer.start()
    try:
        await producer.begin_transaction()
        sent = []
        for key, value, timestamp in records:
            metadata = await producer.send_and_wait(topic, value, key=key, timestamp_ms=timestamp)
            sent.append((metadata.partition, metadata.offset))
        if commit:
            await producer.commit_transaction()
        else:
            await producer.abort_transaction()
        return sent
    finally:
        await producer.stop()


def line(where: tuple[int, int], timestamp: int, value: object, key: str | None, **extra: str):
    partition, offset = where
    fields = {"key": key, **extra, "partition": partition, "offset": offset}
    return orjson.dumps({**fields, "timestamp": timestamp, "value": value})


@pytest.fixture
def topic(kafka_bootstrap: str) -> str:
    name = f"tail-it-{uuid.uuid4().hex[:10]}"
    asyncio.run(create_topics(kafka_bootstrap, [name], 1))
    return name


@pytest.fixture
def filled(kafka_bootstrap: str, topic: str) -> dict[str, bytes]:
    """A topic with plain, non-JSON, tombstone and binary-keyed records, an aborted and a
    committed transaction; the expected line of every committed record, by name."""

    async def fill() -> dict[str, bytes]:
        first = await send(
            kafka_bootstrap,
            topic,
            [
                (b"u-1", b'{"user_id": "u-1", "n": 1}', TS),
                (b"u-2", b"not json, just text", TS + 1),
                (b"u-1", None, TS + 2),
                (b"\xff\x00bin", b'{"n": 4}', TS + 3),
            ],
        )
        aborted = await send_transaction(
            kafka_bootstrap,
            topic,
            [(b"u-1", b'{"aborted": 1}', TS + 4), (b"u-3", b'{"aborted": 2}', TS + 5)],
            commit=False,
        )
        committed = await send_transaction(
            kafka_bootstrap, topic, [(b"u-3", b'{"committed": true}', TS + 6)], commit=True
        )
        last = await send(kafka_bootstrap, topic, [(b"u-1", b"[1, 2.5, null]", TS + 7)])
        assert aborted[0][1] > first[-1][1] and committed[0][1] > aborted[-1][1]
        binary = base64.b64encode(b"\xff\x00bin").decode()
        return {
            "json": line(first[0], TS, {"user_id": "u-1", "n": 1}, "u-1"),
            "text": line(first[1], TS + 1, "not json, just text", "u-2"),
            "tombstone": line(first[2], TS + 2, None, "u-1"),
            "binary_key": line(first[3], TS + 3, {"n": 4}, None, key_b64=binary),
            "committed": line(committed[0], TS + 6, {"committed": True}, "u-3"),
            "array": line(last[0], TS + 7, [1, 2.5, None], "u-1"),
        }

    return asyncio.run(fill())


def test_from_beginning_prints_committed_records_exactly(
    kafka_bootstrap: str, topic: str, filled: dict[str, bytes]
) -> None:
    done = run_tail(kafka_bootstrap, topic, "--from-beginning", "--count", "6")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == list(filled.values())
    assert b"aborted" not in done.stdout
    assert b"Traceback" not in done.stderr
    assert f"tailing '{topic}' (1 partition) from the beginning".encode() in done.stderr


def test_key_filters_the_records(
    kafka_bootstrap: str, topic: str, filled: dict[str, bytes]
) -> None:
    done = run_tail(kafka_bootstrap, topic, "--from-beginning", "--key", "u-1", "--count", "3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [filled["json"], filled["tombstone"], filled["array"]]
    done = run_tail(kafka_bootstrap, topic, "--from-beginning", "--key", "u-3", "--count", "1")
    assert done.stdout.splitlines() == [filled["committed"]]


def test_by_default_only_records_sent_after_the_start_are_printed(
    kafka_bootstrap: str, topic: str, filled: dict[str, bytes], tmp_path: Path
) -> None:
    stderr_path = tmp_path / "tail.err"
    process = start_tail(kafka_bootstrap, stderr_path, topic, "--count", "2")
    try:
        notice = wait_until_tailing(process, stderr_path)
        assert f"tailing '{topic}' (1 partition) from the end" in notice
        new = asyncio.run(
            send(kafka_bootstrap, topic, [(b"u-9", b'{"n": 9}', TS + 9), (b"u-8", b"x", TS + 10)])
        )
        stdout, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, stderr_path.read_text()
    assert stdout.splitlines() == [
        line(new[0], TS + 9, {"n": 9}, "u-9"),
        line(new[1], TS + 10, "x", "u-8"),
    ]


def test_ctrl_c_stops_cleanly_with_status_130(
    kafka_bootstrap: str, topic: str, filled: dict[str, bytes], tmp_path: Path
) -> None:
    stderr_path = tmp_path / "tail.err"
    process = start_tail(kafka_bootstrap, stderr_path, topic, "--from-beginning")
    try:
        wait_until_tailing(process, stderr_path)
        assert process.stdout is not None
        for expected in filled.values():
            assert process.stdout.readline() == expected + b"\n"
        process.send_signal(signal.SIGINT)
        stdout, _ = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130
    assert stdout == b""
    assert "Traceback" not in stderr_path.read_text()


def test_a_missing_topic_fails_fast_with_a_clear_message(kafka_bootstrap: str) -> None:
    missing = f"tail-missing-{uuid.uuid4().hex[:10]}"
    for _ in range(2):  # looking does not create it
        done = run_tail(kafka_bootstrap, missing, "--from-beginning", timeout=30)
        assert done.returncode == 1
        assert done.stdout == b""
        assert done.stderr.decode() == (
            f"error: topic '{missing}' does not exist at {kafka_bootstrap} (the name is taken "
            f"as given; with FAUSTAPP_TOPIC_PREFIX: '{PREFIX}{missing}')\n"
        )


def test_every_partition_is_read(kafka_bootstrap: str) -> None:
    name = f"tail-it-{uuid.uuid4().hex[:10]}"

    async def fill() -> list[bytes]:
        await create_topics(kafka_bootstrap, [name], 3)
        expected = []
        for partition in range(3):
            records = [(f"k{partition}".encode(), b'{"i": %d}' % i, TS + i) for i in range(4)]
            sent = await send(kafka_bootstrap, name, records, partition=partition)
            expected += [
                line(where, TS + i, {"i": i}, f"k{partition}") for i, where in enumerate(sent)
            ]
        return expected

    expected = asyncio.run(fill())
    done = run_tail(kafka_bootstrap, name, "--from-beginning", "--count", "12")
    assert done.returncode == 0, done.stderr
    printed = done.stdout.splitlines()
    assert sorted(printed) == sorted(expected)
    for partition in range(3):
        marker = f'"partition":{partition},'.encode()
        in_partition = [entry for entry in printed if marker in entry]
        assert in_partition == [entry for entry in expected if marker in entry]


async def topic_config(bootstrap: str, topic: str, name: str) -> str | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {name: None})]
        )
    finally:
        await admin.close()
    (resource,) = response.resources
    return next((entry[1] for entry in resource[4] if entry[0] == name), None)


def test_generated_products_land_on_a_compacted_topic_with_tombstones(
    kafka_bootstrap: str,
) -> None:
    """``generate products`` creates its topic compacted; tail shows the catalogue, then updates
    and tombstones (null values)."""
    prefix = f"tail-it-{uuid.uuid4().hex[:8]}."
    env = {**tail_env(kafka_bootstrap), "FAUSTAPP_TOPIC_PREFIX": prefix}
    generate = [str(FAUSTAPP), "generate", "products", "--items", "20", "--count", "120"]
    options = ["--rate", "0", "--delete-ratio", "0.3", "--bad-ratio", "0", "--seed", "5"]
    done = subprocess.run(
        [*generate, *options, "--quiet", "--partitions", "2"],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    topic = f"{prefix}products"
    assert asyncio.run(topic_config(kafka_bootstrap, topic, "cleanup.policy")) == "compact"
    done = run_tail(kafka_bootstrap, topic, "--from-beginning", "--count", "120")
    assert done.returncode == 0, done.stderr
    assert "(2 partitions)" in done.stderr.decode()
    lines = [orjson.loads(text) for text in done.stdout.splitlines()]
    assert len(lines) == 120
    by_item: dict[str, list[object]] = {}
    for entry in sorted(lines, key=lambda entry: (entry["partition"], entry["offset"])):
        by_item.setdefault(entry["key"], []).append(entry["value"])
    assert sorted(by_item) == sorted(f"sku-{index}" for index in range(20))
    for item, values in by_item.items():
        first = values[0]
        assert isinstance(first, dict) and first["item_id"] == item, "the catalogue comes first"
    assert any(value is None for values in by_item.values() for value in values)
