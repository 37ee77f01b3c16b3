"""A real cluster of N KRaft brokers on loopback, driven through ``ops/kafka/kafka.sh
cluster-start / cluster-stop / broker-kill / broker-start``, and what tests ask it: who leads
which partition, how many replicas each topic has."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from support.kafka_broker import KAFKA_SH, PROJECT_ROOT, BrokerError

START_TIMEOUT_S = 300.0


def _free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_run(count: int) -> int:
    """First of ``count`` consecutive free loopback ports, below the ephemeral range."""
    for _ in range(200):
        base = random.randrange(15000, 28000, 2)
        if all(_free(base + i) for i in range(count)):
            return base
    raise BrokerError(f"no {count} consecutive free ports found")


class KafkaCluster:
    """``brokers`` combined broker+controller nodes; node ``i`` (1-based) is broker id ``i``."""

    def __init__(
        self, data_dir: Path, *, brokers: int = 3, replicas: int = 3, min_insync: int = 2
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.brokers, self.replicas, self.min_insync = brokers, replicas, min_insync
        self.base_port = free_port_run(2 * brokers)

    def port(self, node: int) -> int:
        """Client port of ``node``."""
        return self.base_port + 2 * (node - 1)

    @property
    def bootstrap(self) -> str:
        """``host:port,...`` of every node, for raw Kafka clients."""
        return ",".join(f"127.0.0.1:{self.port(n)}" for n in range(1, self.brokers + 1))

    @property
    def broker_url(self) -> str:
        """FAUSTAPP_BROKER for the whole cluster."""
        return ";".join(f"kafka://127.0.0.1:{self.port(n)}" for n in range(1, self.brokers + 1))

    def _run(self, *args: str, timeout: float = START_TIMEOUT_S) -> str:
        try:
            proc = subprocess.run(
                [str(KAFKA_SH), *args, "--data-dir", str(self.data_dir)],
                cwd=PROJECT_ROOT,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(f"kafka.sh {args[0]} did not finish in {timeout:.0f}s") from exc
        if proc.returncode != 0:
            raise BrokerError(f"kafka.sh {' '.join(args)} failed: {proc.stderr.strip()[-3000:]}")
        return proc.stdout

    def start(self) -> KafkaCluster:
        """Start every node and wait until each serves clients."""
        self._run(
            "cluster-start",
            "--brokers",
            str(self.brokers),
            "--base-port",
            str(self.base_port),
            "--replication-factor",
            str(self.replicas),
            "--min-insync-replicas",
            str(self.min_insync),
            "--owner-pid",
            str(os.getpid()),
        )
        return self

    def stop(self) -> None:
        """Stop every node (never raises: used in cleanup)."""
        with contextlib.suppress(BrokerError):
            self._run("cluster-stop", timeout=120)

    def kill(self, node: int) -> None:
        """kill -9 one node: no clean shutdown, no leadership handed over."""
        self._run("broker-kill", "--node", str(node), timeout=60)

    def restart(self, node: int) -> None:
        """Start a killed node again on its data; returns once it serves clients."""
        self._run("broker-start", "--node", str(node), "--owner-pid", str(os.getpid()))


async def describe(bootstrap: str, prefixes: Iterable[str]) -> dict[str, dict]:
    """Topics whose name starts with one of ``prefixes``: leader and replica count of each
    partition, and the topic's ``min.insync.replicas``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        topics = [
            t for t in await admin.describe_topics() if t["topic"].startswith(tuple(prefixes))
        ]
        out = {
            t["topic"]: {
                "leaders": {p["partition"]: p["leader"] for p in t["partitions"]},
                "replicas": min((len(p["replicas"]) for p in t["partitions"]), default=0),
            }
            for t in topics
        }
        if out:
            resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in out]
            for response in await admin.describe_configs(resources):
                for resource in response.resources:
                    configs = {entry[0]: entry[1] for entry in resource[4]}
                    out[resource[3]]["min_insync"] = configs.get("min.insync.replicas")
        return out
    finally:
        await admin.close()


def leader_counts(topics: dict[str, dict]) -> Counter:
    """Partitions led per broker id, over ``topics`` (from :func:`describe`)."""
    return Counter(
        leader for t in topics.values() for leader in t["leaders"].values() if leader >= 0
    )
