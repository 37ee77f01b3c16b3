"""The benchmark's Kafka: $KAFKA_BOOTSTRAP, or a throwaway broker from ops/kafka/kafka.sh."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.common import PROJECT_ROOT, free_port

KAFKA_SH = PROJECT_ROOT / "ops" / "kafka" / "kafka.sh"
START_TIMEOUT_S = 300.0  # includes the one-time jar download
STOP_TIMEOUT_S = 60.0


class BrokerError(RuntimeError):
    """The local broker could not be started."""


def _kafka_sh(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KAFKA_SH), *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def kafka_broker(quiet: bool = False) -> Iterator[tuple[str, str, int | None]]:
    """Yield (bootstrap, description, broker pid if started here); a broker started here is
    always stopped and its data deleted."""
    external = os.environ.get("KAFKA_BOOTSTRAP", "").strip()
    if external:
        yield external, f"external broker {external} (KAFKA_BOOTSTRAP)", None
        return
    data_root = Path(tempfile.mkdtemp(prefix="faustapp-bench-kafka-"))
    data_dir = data_root / "broker"
    started = False
    try:
        last_error = ""
        for _attempt in range(3):
            port, cport = free_port(), free_port()
            began = time.monotonic()
            try:
                proc = _kafka_sh(
                    "start",
                    "--port",
                    str(port),
                    "--controller-port",
                    str(cport),
                    "--data-dir",
                    str(data_dir),
                    # kafka.sh's watchdog stops the broker if this process dies without cleanup.
                    "--owner-pid",
                    str(os.getpid()),
                    timeout=START_TIMEOUT_S,
                )
            except subprocess.TimeoutExpired:
                started = True  # it may be half up: stop it below
                raise BrokerError("kafka.sh start timed out") from None
            started = True
            if proc.returncode == 0:
                bootstrap = proc.stdout.strip().splitlines()[-1].strip()
                if not quiet:
                    print(
                        f"started Kafka on {bootstrap} in {time.monotonic() - began:.1f}s",
                        flush=True,
                    )
                pid = None
                with contextlib.suppress(OSError, ValueError):
                    pid = int((data_dir / "kafka.pid").read_text().strip())
                description = f"local Kafka 3.9.1 (KRaft) on {bootstrap}, started by the bench"
                yield bootstrap, description, pid
                return
            last_error = proc.stderr.strip()[-3000:]
            if "already in use" not in last_error:
                break
        raise BrokerError(f"kafka.sh start failed:\n{last_error}")
    finally:
        if started:
            try:
                _kafka_sh("stop", "--data-dir", str(data_dir), timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                print("warning: kafka.sh stop timed out", flush=True)
        shutil.rmtree(data_root, ignore_errors=True)


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """Current end offsets (high watermarks) of a topic; empty if it does not exist."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        partitions = cluster.partitions_for_topic(topic) or set()
        if not partitions:
            return {}
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends = await consumer.end_offsets(tps)
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def read_records(
    bootstrap: str,
    topic: str,
    *,
    start: dict[int, int] | None = None,
    expected: int | None = None,
    timeout: float = 60.0,
) -> tuple[list[tuple[bytes | None, bytes | None]], bool]:
    """Committed records of ``topic`` from ``start`` offsets.

    With ``expected``, keeps reading until that many records arrived (results of an
    exactly-once worker appear when its transaction commits) or ``timeout``; then reads on up to
    the end offsets seen at that moment, so duplicates are seen too. Returns (records, whether
    the expected number was reached).
    """
    deadline = time.monotonic() + timeout
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    out: list[tuple[bytes | None, bytes | None]] = []
    try:
        partitions: set[int] = set()
        while not partitions:
            cluster = await consumer._client.fetch_all_metadata()
            partitions = cluster.partitions_for_topic(topic) or set()
            if partitions:
                break
            if time.monotonic() > deadline or not expected:
                return out, not expected
            await asyncio.sleep(0.5)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, (start or {}).get(tp.partition, 0))

        async def behind(ends: dict[TopicPartition, int]) -> bool:
            for tp in tps:
                if await consumer.position(tp) < ends[tp]:
                    return True
            return False

        async def drain_to(ends: dict[TopicPartition, int]) -> None:
            while await behind(ends):
                if time.monotonic() > deadline:
                    return
                batch = await consumer.getmany(timeout_ms=200, max_records=50_000)
                for messages in batch.values():
                    out.extend((m.key, m.value) for m in messages)

        if expected:
            while len(out) < expected and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=200, max_records=50_000)
                for messages in batch.values():
                    out.extend((m.key, m.value) for m in messages)
        await drain_to(await consumer.end_offsets(tps))
        return out, expected is None or len(out) >= expected
    finally:
        await consumer.stop()
