"""A real single-node Kafka broker for tests, plus small async helpers around aiokafka.

The broker is started with ops/kafka/kafka.sh (KRaft, broker+controller in one JVM), so the
tests exercise exactly what developers run locally. Nothing here mocks Kafka.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code
from aiokafka.structs import RecordMetadata

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = PROJECT_ROOT / "ops" / "kafka" / "kafka.sh"

# kafka.sh waits up to 90 s for readiness; allow for the one-time jar download on top.
START_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 60.0
# Attempts when a randomly picked port turns out to be taken by the time Kafka binds it.
START_ATTEMPTS = 3

Record = tuple[bytes | None, bytes | None, int | None]
ConsumedRecord = tuple[bytes | None, bytes | None, int, int]

_handed_out_ports: set[int] = set()


class BrokerError(RuntimeError):
    """Raised when the local broker cannot be started or stopped; carries the log tail."""


def _ephemeral_low() -> int:
    """Lowest port the kernel hands out to outgoing connections (Linux), or 32768."""
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _port_is_free(port: int) -> bool:
    """True if nothing listens on 127.0.0.1:port and we could bind it ourselves."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same flag the JVM sets on listening sockets, so TIME_WAIT leftovers do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """Return a free loopback port outside the ephemeral range.

    Staying below the kernel's ephemeral range means an outgoing client connection can never
    grab the port while a broker is briefly down during a restart test.
    """
    high = max(_ephemeral_low() - 1, 20000)
    for _ in range(200):
        port = random.randint(15000, high)
        if port in _handed_out_ports or not _port_is_free(port):
            continue
        _handed_out_ports.add(port)
        return port
    # Extremely crowded machine: fall back to whatever the kernel picks.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _handed_out_ports.add(port)
    return port


def _tail(path: Path, lines: int = 80) -> str:
    """Last lines of a text file, or a note that it does not exist."""
    try:
        content = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(content[-lines:])


class LocalBroker:
    """One KRaft broker+controller JVM on 127.0.0.1, controlled through ops/kafka/kafka.sh."""

    def __init__(
        self,
        port: int,
        controller_port: int,
        data_dir: str | os.PathLike[str],
        *,
        owner_pid: int | None = None,
    ) -> None:
        """Describe the broker; nothing starts until start(). owner_pid defaults to us."""
        self.port = port
        self.controller_port = controller_port
        self.data_dir = Path(data_dir).resolve()
        self.owner_pid = os.getpid() if owner_pid is None else owner_pid

    @property
    def bootstrap(self) -> str:
        """Bootstrap address for clients."""
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        """Broker stdout/stderr of the current run."""
        return self.data_dir / "kafka.out"

    def log_tail(self, lines: int = 80) -> str:
        """Last broker log lines, for failure messages."""
        return _tail(self.log_file, lines)

    def _run(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        """Run kafka.sh with a hard timeout so a wedged JVM cannot hang the test session."""
        return subprocess.run(
            [str(KAFKA_SH), *args],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self) -> str:
        """Start the broker and block until it serves clients; returns the bootstrap address."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            "start",
            "--port",
            str(self.port),
            "--controller-port",
            str(self.controller_port),
            "--data-dir",
            str(self.data_dir),
            "--owner-pid",
            str(self.owner_pid),
        ]
        try:
            proc = self._run(*args, timeout=START_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            self.stop()
            raise BrokerError(
                f"kafka.sh start did not finish within {START_TIMEOUT_S:.0f}s\n"
                f"--- broker log ---\n{self.log_tail()}"
            ) from exc
        if proc.returncode != 0:
            details = proc.stderr.strip()
            log_tail = self.log_tail()
            if log_tail not in details:  # kafka.sh usually prints the tail itself
                details += f"\n--- broker log ({self.log_file}) ---\n{log_tail}"
            raise BrokerError(
                f"kafka.sh start failed (exit {proc.returncode}) for {self.bootstrap}:\n{details}"
            )
        lines = proc.stdout.strip().splitlines()
        if not lines or lines[-1].strip() != self.bootstrap:
            raise BrokerError(f"kafka.sh start printed {proc.stdout!r}, expected {self.bootstrap}")
        return self.bootstrap

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after 30 s); safe to call when stopped."""
        try:
            proc = self._run("stop", "--data-dir", str(self.data_dir), timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(f"kafka.sh stop hung for {self.data_dir}") from exc
        if proc.returncode != 0:
            raise BrokerError(f"kafka.sh stop failed: {proc.stderr.strip()}")

    def restart(self) -> str:
        """Stop and start again on the same ports and data, like a broker bounce in production."""
        self.stop()
        return self.start()

    def is_running(self) -> bool:
        """True while kafka.sh reports the broker process alive."""
        proc = self._run("status", "--data-dir", str(self.data_dir), timeout=30)
        return proc.returncode == 0

    def __enter__(self) -> LocalBroker:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _is_port_clash(error: BrokerError) -> bool:
    """True if a start failed only because someone else took our port meanwhile."""
    return "already in use" in str(error)  # kafka.sh pre-check and the JVM's bind error


@contextmanager
def session_broker() -> Iterator[LocalBroker]:
    """Start a throwaway broker in a fresh temp dir and always stop and delete it afterwards."""
    data_root = Path(tempfile.mkdtemp(prefix="faustapp-kafka-"))
    broker: LocalBroker | None = None
    last_error: BrokerError | None = None
    for attempt in range(START_ATTEMPTS):
        candidate = LocalBroker(free_port(), free_port(), data_root / f"broker-{attempt}")
        atexit.register(_stop_quietly, candidate)
        try:
            candidate.start()
        except BrokerError as exc:
            last_error = exc
            _stop_quietly(candidate)
            if _is_port_clash(exc):
                continue
            break
        broker = candidate
        break
    if broker is None:  # keep data_root: the error message points at its kafka.out
        raise last_error or BrokerError("broker did not start")
    try:
        yield broker
    finally:
        try:
            broker.stop()
        finally:
            shutil.rmtree(data_root, ignore_errors=True)


def _stop_quietly(broker: LocalBroker) -> None:
    """atexit safety net: stop the broker, ignoring errors (it is usually stopped already)."""
    with suppress(Exception):  # best effort at interpreter exit
        broker.stop()


# --- async client helpers --------------------------------------------------------------


def _remaining(deadline: float) -> float:
    """Seconds left until a monotonic deadline (never negative)."""
    return max(0.0, deadline - time.monotonic())


async def create_topics(
    bootstrap: str,
    names: Sequence[str],
    partitions: int,
    *,
    replication_factor: int = 1,
    config: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> None:
    """Create topics (existing ones are fine) and wait until every partition has a leader."""
    deadline = time.monotonic() + timeout
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await admin.start()
    try:
        new_topics = [
            NewTopic(name, partitions, replication_factor, topic_configs=dict(config or {}))
            for name in names
        ]
        response = await admin.create_topics(new_topics, timeout_ms=int(timeout * 1000))
        for topic_error in response.topic_errors:
            name, code = topic_error[0], topic_error[1]
            message = topic_error[2] if len(topic_error) > 2 else ""
            if code and code != TopicAlreadyExistsError.errno:
                raise for_code(code)(f"creating topic {name!r}: {message}")
        await _wait_for_leaders(admin, list(names), deadline)
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str], deadline: float) -> None:
    """Poll metadata until all partitions of the topics have an elected leader."""
    while True:
        topics = await admin.describe_topics(names)
        ready = {
            t["topic"]
            for t in topics
            if t["error_code"] == 0
            and t["partitions"]
            and all(p["error_code"] == 0 and p["leader"] >= 0 for p in t["partitions"])
        }
        if ready >= set(names):
            return
        if _remaining(deadline) <= 0:
            raise TimeoutError(f"topics without leaders: {sorted(set(names) - ready)}")
        await asyncio.sleep(0.1)


async def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[Record],
    *,
    timeout: float = 30.0,
) -> list[RecordMetadata]:
    """Write (key, value, partition) records with acks=all; returns their metadata in order."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=int(timeout * 1000),
    )
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value=value, key=key, partition=partition)
            for key, value, partition in records
        ]
        return list(await asyncio.wait_for(asyncio.gather(*futures), timeout))
    finally:
        await producer.stop()


async def consume_all(
    bootstrap: str,
    topic: str,
    *,
    isolation_level: str = "read_committed",
    timeout: float = 30.0,
) -> list[ConsumedRecord]:
    """Read a topic from the beginning up to the end offsets seen now.

    Returns (key, value, partition, offset) sorted by partition then offset. With
    read_committed the end offset is the last stable offset, so open transactions are not
    waited for and aborted records are skipped. Raises TimeoutError if the end offsets are
    not reached in time.
    """
    deadline = time.monotonic() + timeout
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level=isolation_level,
        request_timeout_ms=int(max(timeout, 10.0) * 1000),
    )
    await consumer.start()
    try:
        partitions = await _partitions_for(bootstrap, topic, deadline)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        begin = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, begin[tp])
        pending = {tp for tp in tps if end[tp] > begin[tp]}
        done = [tp for tp in tps if tp not in pending]
        if done:
            consumer.pause(*done)

        out: list[ConsumedRecord] = []
        while pending:
            left = _remaining(deadline)
            if left <= 0:
                progress = {
                    tp.partition: f"{await consumer.position(tp)}/{end[tp]}" for tp in pending
                }
                raise TimeoutError(
                    f"consume_all({topic!r}) read {len(out)} records but did not reach the end "
                    f"offsets within {timeout}s; position/end per partition: {progress}"
                )
            batch = await consumer.getmany(timeout_ms=int(min(left, 0.5) * 1000))
            for tp, messages in batch.items():
                out.extend(
                    (m.key, m.value, m.partition, m.offset) for m in messages if m.offset < end[tp]
                )
            for tp in list(pending):
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
                    consumer.pause(tp)
        out.sort(key=lambda r: (r[2], r[3]))
        return out
    finally:
        await consumer.stop()


async def _partitions_for(bootstrap: str, topic: str, deadline: float) -> set[int]:
    """Partition ids of a topic, waiting briefly for metadata of a just-created topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        while True:
            for described in await admin.describe_topics([topic]):
                if described["topic"] == topic and described["error_code"] == 0:
                    partitions = {p["partition"] for p in described["partitions"]}
                    if partitions:
                        return partitions
            if _remaining(deadline) <= 0:
                raise TimeoutError(f"topic {topic!r} not found in cluster metadata")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
