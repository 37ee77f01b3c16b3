"""Data flowing and faults injected into it: the paced producer, the gate that lets it write one
segment per fault, the fault injector that waits for each recovery, and the broker it bounces."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from chaos.cluster import Cluster, now_iso
from chaos.report import Log
from chaos.scenario import Fault, Size

from support.kafka_broker import BrokerError, LocalBroker, free_port
from support.sensors import Reading

RECOVERY_TIMEOUT_S = 180.0


class Gate:
    """Lets the producer write segment ``j`` once ``j`` faults have been injected."""

    def __init__(self) -> None:
        self.opened = 0
        self.cond = asyncio.Condition()

    async def open(self, count: int = 1) -> None:
        async with self.cond:
            self.opened += count
            self.cond.notify_all()

    async def wait(self, segment: int) -> None:
        async with self.cond:
            await self.cond.wait_for(lambda: self.opened >= segment)


class Producer:
    """Writes the readings in acknowledged chunks, paced, gated by the faults."""

    def __init__(self, bootstrap: str, topic: str, log: Log) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.log = log
        self.sent = 0
        self.failed_sends = 0  # records re-sent after an error (the oracle reads the topic)
        self.lock = asyncio.Lock()  # held by a chunk in flight, and by a broker bounce

    async def _send(self, producer: AIOKafkaProducer, chunk: list[Reading]) -> list[Reading]:
        """Send and wait for acks; returns the readings that failed."""
        futures = []
        failed: list[Reading] = []
        for r in chunk:
            try:
                futures.append(
                    (r, await producer.send(self.topic, r.encode(), key=r.sensor_id.encode()))
                )
            except KafkaError:
                failed.append(r)
        results = await asyncio.gather(*(f for _, f in futures), return_exceptions=True)
        failed += [
            r
            for (r, _), res in zip(futures, results, strict=True)
            if isinstance(res, BaseException)
        ]
        return failed

    async def run(self, segments: list[list[Reading]], gate: Gate, size: Size) -> None:
        """Write each segment once the gate lets it through, pacing chunks to ``size.rate``."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            request_timeout_ms=20_000,
        )
        await producer.start()
        try:
            for j, segment in enumerate(segments):
                await gate.wait(j)
                for i in range(0, len(segment), size.chunk):
                    began = time.monotonic()
                    pending = segment[i : i + size.chunk]
                    for attempt in range(10):
                        async with self.lock:
                            failed = await self._send(producer, pending)
                        self.sent += len(pending) - len(failed)
                        if not failed:
                            break
                        self.failed_sends += len(failed)
                        self.log(f"  producer: {len(failed)} sends failed (attempt {attempt + 1})")
                        pending = failed
                        await asyncio.sleep(1.0)
                    else:
                        raise RuntimeError(f"producer: {len(pending)} readings never acknowledged")
                    left = len(segment[i : i + size.chunk]) / size.rate - (time.monotonic() - began)
                    if left > 0:
                        await asyncio.sleep(left)
        finally:
            await producer.stop()


async def inject_faults(
    plan: list[Fault],
    cluster: Cluster,
    broker: LocalBroker,
    producer: Producer,
    gate: Gate,
    log: Log,
) -> list[dict]:
    """Inject the faults one after the other, each after the group recovered from the last."""
    done: list[dict] = []
    t0 = time.monotonic()
    try:
        for n, fault in enumerate(plan, 1):
            await asyncio.sleep(fault.gap_s)
            began = time.monotonic()
            record: dict = {
                "n": n,
                "kind": fault.kind,
                "victim": None if fault.victim is None else f"worker-{fault.victim}",
                "at": now_iso(),
                "at_s": round(began - t0, 1),
                "readings_sent_before": producer.sent,
                "down_s": fault.down_s,
            }
            if fault.kind in ("kill", "wipe"):
                slot = fault.victim
                record["owned_partitions"] = await asyncio.to_thread(cluster.kill, slot)
                if fault.kind == "wipe":
                    record["deleted"] = await asyncio.to_thread(cluster.wipe, slot)
                await asyncio.sleep(fault.down_s)
                why = "restart after kill -9" + (" and wipe" if fault.kind == "wipe" else "")
                await asyncio.to_thread(cluster.restart, slot, why)
            else:
                async with producer.lock:  # no chunk in flight while the broker is down
                    for slot in range(len(cluster.workers)):
                        cluster.mark(slot, "broker stop")
                    await asyncio.to_thread(broker.stop)
                    await asyncio.sleep(fault.down_s)
                    await asyncio.to_thread(broker.start)
                    for slot in range(len(cluster.workers)):
                        cluster.mark(slot, "broker started again")
            await gate.open()
            recovery = await asyncio.to_thread(
                cluster.wait_recovered, began, timeout=RECOVERY_TIMEOUT_S
            )
            record.update(
                healthy_s=recovery.healthy_s,
                resumed_s=recovery.resumed_s,
                recovery_s=recovery.recovery_s,
                assignment_after={f"worker-{k}": v for k, v in recovery.assignment.items()},
                unexpected_exits=recovery.unexpected_exits,
            )
            if recovery.healthy_s is None:
                record["not_recovered"] = recovery.last_health
            done.append(record)
            what = record["victim"] or "broker"
            owned = f" owned {record.get('owned_partitions')}" if fault.victim is not None else ""
            log(
                f"fault {n}/{len(plan)}: {fault.kind} {what}{owned}, down {fault.down_s}s, "
                f"healthy after {recovery.healthy_s}s, processing after {recovery.resumed_s}s"
                f" ({producer.sent} readings sent)"
            )
    finally:
        await gate.open(len(plan) + 1)  # never leave the producer waiting
    return done


def start_broker(root: Path, log: Log) -> LocalBroker:
    """A broker on free loopback ports (another pair if a port was taken meanwhile)."""
    last: BrokerError | None = None
    for attempt in range(3):
        broker = LocalBroker(free_port(), free_port(), root / "broker")
        try:
            began = time.monotonic()
            broker.start()
            log(f"broker {broker.bootstrap} up after {time.monotonic() - began:.1f}s")
            return broker
        except BrokerError as exc:
            last = exc
            with contextlib.suppress(BrokerError):
                broker.stop()
            if "already in use" not in str(exc):
                break
            log(f"broker port clash (attempt {attempt + 1}), trying other ports")
    raise last or BrokerError("broker did not start")
