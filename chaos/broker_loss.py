"""Chaos on a 3-broker cluster: replication factor 3, min.insync.replicas 2, two exactly-once
workers, sensor readings streaming; ``kill -9`` of the broker that leads the most input and
changelog partitions, later its restart; then the same with a worker killed while that broker is
down. Every output is compared with the oracle computed from the input topic.

    python -m chaos.broker_loss [--short] [--seed N] [--json PATH] [--keep]

Full form: 48,000 readings, 6 partitions; short form: 12,000 readings, 4 partitions. Readings
keep flowing while each broker is down (a third of them per phase). Exit status 0 only if nothing
was lost, repeated or wrong and every topic the run created has 3 replicas and
min.insync.replicas 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path

from chaos import PROJECT_ROOT
from chaos.cluster import Cluster, now_iso
from chaos.faults import Gate, Producer
from chaos.oracle import decode_readings, expected_outputs, input_anomalies
from chaos.report import Log
from chaos.scenario import GRACE_MS, Size, make_readings
from chaos.verdict import check_output, scan_logs, wait_outputs

from support.kafka_broker import BrokerError, consume_all, create_topics
from support.kafka_cluster import KafkaCluster, describe, leader_counts
from support.sensors import MINUTE, Reading, key_per_partition, send_readings

REPLICAS, MIN_INSYNC = 3, 2
RECOVERY_TIMEOUT_S = 180.0
DOWN_S = (8.0, 15.0)  # least time a killed broker stays down, readings flowing meanwhile
SIZES = {
    "full": Size(60, 20, 1500, 2, 6, 1, 12, 300.0, 300, (3.0, 6.0), 300.0),
    "short": Size(30, 10, 1500, 2, 4, 1, 6, 200.0, 200, (2.0, 4.0), 180.0),
}
SCENARIOS = {
    "broker": "kill -9 of the leading broker, restart",
    "broker+worker": "kill -9 of the leading broker, kill -9 of a worker while it is down",
}


class _Bootstrap:
    """What :class:`Cluster` reads of a broker: its bootstrap list."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap


async def _leading(kafka: KafkaCluster, prefixes: tuple[str, ...]) -> tuple[int, dict]:
    """The broker that leads the most partitions of the run's topics, and the counts."""
    counts = leader_counts(await describe(kafka.bootstrap, prefixes))
    node = max(range(1, kafka.brokers + 1), key=lambda n: (counts.get(n, 0), -n))
    return node, {f"broker-{n}": counts.get(n, 0) for n in range(1, kafka.brokers + 1)}


async def _recovered(cluster: Cluster, began: float, record: dict, key: str) -> None:
    recovery = await asyncio.to_thread(cluster.wait_recovered, began, timeout=RECOVERY_TIMEOUT_S)
    record[f"{key}_healthy_s"] = recovery.healthy_s
    record[f"{key}_processing_s"] = recovery.resumed_s
    record.setdefault("unexpected_exits", []).extend(recovery.unexpected_exits)
    if recovery.healthy_s is None:
        record[f"{key}_not_recovered"] = recovery.last_health


async def inject(
    kafka: KafkaCluster,
    cluster: Cluster,
    gate: Gate,
    prefixes: tuple[str, ...],
    rng: random.Random,
    size: Size,
    log: Log,
) -> list[dict]:
    """Phase 1: the leading broker killed, data flowing, restarted. Phase 2: the same, plus a
    worker killed and restarted while that broker is down."""
    faults = []
    t0 = time.monotonic()
    try:
        for n, scenario in enumerate(SCENARIOS, 1):
            await asyncio.sleep(rng.uniform(*size.gap_s))
            node, leaders = await _leading(kafka, prefixes)
            began = time.monotonic()
            record: dict = {
                "n": n,
                "scenario": scenario,
                "description": SCENARIOS[scenario],
                "broker": f"broker-{node}",
                "leaders_before": leaders,
                "at": now_iso(),
                "at_s": round(began - t0, 1),
            }
            for slot in range(len(cluster.workers)):
                cluster.mark(slot, f"kill -9 broker-{node}")
            await asyncio.to_thread(kafka.kill, node)
            await gate.open()  # the next third of the readings flows while the broker is down
            down_s = rng.uniform(*DOWN_S)
            log(f"fault {n}: broker-{node} killed (leaders {leaders})")
            if scenario == "broker+worker":
                await asyncio.sleep(rng.uniform(2.0, 5.0))
                victim = rng.randrange(len(cluster.workers))
                record["worker"] = f"worker-{victim}"
                record["owned_partitions"] = await asyncio.to_thread(cluster.kill, victim)
                log(f"fault {n}: worker-{victim} killed while broker-{node} is down")
                await asyncio.sleep(rng.uniform(1.0, 3.0))
                await asyncio.to_thread(cluster.restart, victim, "restart after kill -9")
            # The group must serve and process with one broker gone (2 of 3 replicas in sync).
            await _recovered(cluster, began, record, "degraded")
            await asyncio.sleep(max(0.0, down_s - (time.monotonic() - began)))
            record["broker_down_s"] = round(time.monotonic() - began, 1)
            await asyncio.to_thread(kafka.restart, node)
            for slot in range(len(cluster.workers)):
                cluster.mark(slot, f"broker-{node} started again")
            await _recovered(cluster, time.monotonic(), record, "restarted")
            log(
                f"fault {n}: broker-{node} back after {record['broker_down_s']}s; healthy "
                f"{record['degraded_healthy_s']}s after the kill, "
                f"{record['restarted_healthy_s']}s after the restart"
            )
            faults.append(record)
    finally:
        await gate.open(len(SCENARIOS) + 1)
    return faults


async def run(kafka: KafkaCluster, root: Path, size: Size, seed: int, log: Log) -> dict:
    """One run on the started cluster; returns its results."""
    token = uuid.uuid4().hex[:6]
    prefix, app_id = f"bl-{token}.", f"bl-{token}"
    topic = prefix + "sensor-readings"
    rng = random.Random(seed)
    start = int(time.time() * 1000) - 3 * 60 * MINUTE
    start -= start % MINUTE
    readings = make_readings(size, seed, start)
    sensors = {r.sensor_id for r in readings}
    log(f"== {len(readings)} readings, {size.workers} workers, {size.partitions} partitions")
    config = {"min.insync.replicas": str(MIN_INSYNC)}
    await create_topics(
        kafka.bootstrap, [topic], size.partitions, replication_factor=REPLICAS, config=config
    )
    cluster = Cluster(
        _Bootstrap(kafka.bootstrap),  # type: ignore[arg-type]
        root / "workers",
        workers=size.workers,
        partitions=size.partitions,
        guarantee="exactly_once",
        app_id=app_id,
        prefix=prefix,
        grace_ms=GRACE_MS,
        log=log,
    )
    for worker in cluster.workers:
        worker.extra_env.update(
            FAUSTAPP_BROKER=kafka.broker_url,
            FAUSTAPP_REPLICATION_FACTOR=str(REPLICAS),
            FAUSTAPP_MIN_INSYNC_REPLICAS=str(MIN_INSYNC),
        )
    result: dict = {"seed": seed, "prefix": prefix, "app_id": app_id, "guarantee": "exactly_once"}
    try:
        result["startup_s"] = round(await asyncio.to_thread(cluster.start_all), 1)
        producer = Producer(kafka.bootstrap, topic, log)
        gate = Gate()
        per = -(-len(readings) // (len(SCENARIOS) + 1))
        segments = [readings[i : i + per] for i in range(0, len(readings), per)]
        produce_task = asyncio.create_task(producer.run(segments, gate, size))
        faults_task = asyncio.create_task(
            inject(kafka, cluster, gate, (prefix, app_id), rng, size, log)
        )
        result["faults"], _ = await asyncio.gather(faults_task, produce_task)
        result["producer_resends"] = producer.failed_sends
        closers = [
            Reading(key, start + (size.minutes + 6) * MINUTE + GRACE_MS, 0.0)
            for key in key_per_partition("bl-closer", size.partitions).values()
        ]
        await send_readings(kafka.bootstrap, closers, topic)
        values = await consume_all(kafka.bootstrap, topic, timeout=120.0)
        stored = [r for r in decode_readings(v for _, v, _, _ in values) if r.sensor_id in sensors]
        result["input"] = input_anomalies(readings, stored)
        want = expected_outputs(stored)
        got = await wait_outputs(
            kafka.bootstrap, prefix, sensors, want, cluster, size.settle_timeout_s, log
        )
        checks = {name: check_output(name, got[name], want[name], size) for name in want}
        result["outputs"] = {name: check.as_dict() for name, check in checks.items()}
        for field in ("lost", "duplicated", "wrong", "repeats"):
            result[field] = sum(getattr(c, field) for c in checks.values())
        result["events"] = len(stored)
        topics = await describe(kafka.bootstrap, (prefix, app_id))
        result["topics"] = {
            name: {"replicas": t["replicas"], "min_insync": t.get("min_insync")}
            for name, t in sorted(topics.items())
        }
        result["under_replicated"] = sorted(
            name
            for name, t in topics.items()
            if t["replicas"] < REPLICAS or t.get("min_insync") != str(MIN_INSYNC)
        )
        result["unexpected_exits"] = cluster.exits
    except BaseException as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc()
        log(f"   run failed: {result['error']}")
        if not isinstance(exc, Exception):
            raise
    finally:
        await asyncio.to_thread(cluster.stop_all)
        result["worker_logs"] = scan_logs(cluster)
    result["passed"] = (
        "error" not in result
        and len(result.get("faults", [])) == len(SCENARIOS)
        and all(result.get(k) == 0 for k in ("lost", "duplicated", "wrong"))
        and not result.get("under_replicated")
        and bool(result.get("topics"))
    )
    return result


def table(result: dict) -> str:
    """The chaos table: one row per output topic, then the faults."""
    lines = [
        "| output | expected | records | lost | duplicated | wrong |",
        "|---|---|---|---|---|---|",
    ]
    for name, check in result.get("outputs", {}).items():
        row = [name, *(str(check[k]) for k in ("expected", "records", "lost", "duplicated"))]
        lines.append("| " + " | ".join([*row, str(check["wrong"])]) + " |")
    lines += [
        "",
        "| # | scenario | broker killed (leaders before) | worker killed | down s "
        "| healthy after kill s | healthy after restart s |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in result.get("faults", []):
        lines.append(
            f"| {f['n']} | {f['description']} | {f['broker']} ({f['leaders_before']}) | "
            f"{f.get('worker', '-')} | {f['broker_down_s']} | {f['degraded_healthy_s']} | "
            f"{f['restarted_healthy_s']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Start the cluster, run, report; 0 only if the run passed."""
    parser = argparse.ArgumentParser(prog="python -m chaos.broker_loss")
    parser.add_argument("--short", action="store_true", help="12,000 readings, 4 partitions")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--json", type=Path, default=PROJECT_ROOT / "chaos-results" / "broker-loss.json"
    )
    parser.add_argument("--keep", action="store_true", help="keep the data dirs")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1 << 31)
    size_name = "short" if args.short else "full"
    log = Log()
    log(f"broker-loss chaos seed {seed} (repeat: python -m chaos.broker_loss --seed {seed})")

    def on_sigterm(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_sigterm)
    root = Path(tempfile.mkdtemp(prefix="faustapp-broker-loss-"))
    kafka = KafkaCluster(root / "kafka", brokers=3, replicas=REPLICAS, min_insync=MIN_INSYNC)
    started = now_iso()
    try:
        began = time.monotonic()
        kafka.start()
        log(f"3 brokers {kafka.bootstrap} up after {time.monotonic() - began:.1f}s")
        result = asyncio.run(run(kafka, root, SIZES[size_name], seed, log))
    except BrokerError as exc:
        log(f"cluster failed: {exc}")
        result = {"seed": seed, "error": str(exc), "passed": False}
    finally:
        kafka.stop()
    md = table(result)
    print("\n" + md, flush=True)
    if result.get("error"):
        print(f"ERROR: {result['error']}", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "started": started,
        "finished": now_iso(),
        "size": size_name,
        **result,
        "table": md,
        "run_dir": str(root),
    }
    args.json.write_text(json.dumps(document, indent=2, default=str) + "\n")
    if result["passed"] and not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        log(f"data dirs and logs kept in {root}")
    log(f"{'PASSED' if result['passed'] else 'FAILED'}; results in {args.json}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    os.chdir(PROJECT_ROOT)
    sys.exit(main())
