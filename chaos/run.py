"""Chaos run: sensor data flows into a group of exactly-once (or at-least-once) workers while
workers are killed with SIGKILL, the broker is bounced and one worker loses its local state; then
every output is compared with an oracle computed from the readings in the input topic.

    python -m chaos.run [--short] [--guarantee exactly_once|at_least_once|both] [--seed N]
                        [--json PATH] [--keep]

Full form: 200,000 readings, 3 workers, 10 kills; short form: 20,000 readings, 2 workers, 2
kills. Both add one broker stop/start and one worker whose local state (``<data_dir>/v1``) is
deleted while it is down. A seeded RNG picks the data, the order of the faults, the victims and
the delays (timing still depends on the machine); the seed is printed.

Prints a table and writes it as JSON (``--json``, default chaos-results/latest.json) and markdown
(same path, ``.md``). Exit status 0 only if nothing was lost or wrong and, under exactly_once,
nothing was emitted twice.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from chaos import PROJECT_ROOT
from chaos.cluster import Cluster, now_iso
from chaos.oracle import (
    check_alerts,
    check_windows,
    decode_readings,
    expected_outputs,
    input_anomalies,
)

from support.kafka_broker import BrokerError, LocalBroker, consume_all, create_topics, free_port
from support.sensors import (
    MINUTE,
    Reading,
    disordered_readings,
    key_per_partition,
    read_topic,
    send_readings,
)

DISORDER_MS = 4_000
GRACE_MS = 8_000  # above the disorder: nothing may be late
SPIKE = 5_000.0  # added to a few readings so that the anomaly rule fires
RECOVERY_TIMEOUT_S = 180.0
GUARANTEES = ("exactly_once", "at_least_once")
OUTPUTS = ("sensor-stats-1m", "sensor-stats-5m", "sensor-alerts")
PIPELINES = ",".join(OUTPUTS)  # FAUSTAPP_PIPELINES: each of these pipelines writes its topic


@dataclass(frozen=True)
class Size:
    """Shape of a run."""

    sensors: int
    minutes: int
    every_ms: int
    workers: int
    partitions: int
    kills: int
    spikes: int
    rate: float  # readings per second the producer aims at
    chunk: int  # readings per acknowledged send
    gap_s: tuple[float, float]  # pause after a recovery before the next fault
    settle_timeout_s: float  # how long the outputs may take after the last reading

    @property
    def readings(self) -> int:
        return self.sensors * self.minutes * MINUTE // self.every_ms


SIZES = {
    "full": Size(125, 40, 1500, 3, 6, 10, 30, 1000.0, 500, (1.0, 6.0), 300.0),
    "short": Size(50, 10, 1500, 2, 4, 2, 8, 450.0, 250, (0.5, 2.5), 120.0),
}


@dataclass(frozen=True)
class Fault:
    """One planned fault."""

    kind: str  # kill | wipe | broker
    victim: int | None  # worker slot (kill, wipe)
    gap_s: float  # wait before injecting it
    down_s: float  # how long the victim (or the broker) stays down


class Log:
    """Timestamped progress lines on stdout."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:7.1f}s] {text}", flush=True)


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


def plan_faults(rng: random.Random, size: Size) -> list[Fault]:
    """Kinds in random order (the broker bounce and the wipe anywhere), victims and delays."""
    kinds = ["kill"] * size.kills + ["broker", "wipe"]
    rng.shuffle(kinds)
    plan = []
    for kind in kinds:
        victim = None if kind == "broker" else rng.randrange(size.workers)
        down = rng.uniform(1.0, 4.0) if kind == "broker" else rng.uniform(0.3, 3.0)
        plan.append(Fault(kind, victim, round(rng.uniform(*size.gap_s), 2), round(down, 2)))
    return plan


def make_readings(size: Size, seed: int, start: int) -> list[Reading]:
    """Disordered readings (within the grace), a few of them spiked to trigger alerts."""
    sensors = [f"cs-{i}" for i in range(size.sensors)]
    readings = disordered_readings(
        sensors, start, size.minutes, size.every_ms, DISORDER_MS, seed=seed
    )
    rng = random.Random(seed + 1)
    for i in rng.sample(range(len(readings) // 4, len(readings)), size.spikes):
        r = readings[i]
        readings[i] = Reading(r.sensor_id, r.ts, r.value + SPIKE)
    return readings


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


async def wait_outputs(
    bootstrap: str,
    prefix: str,
    sensors: set[str],
    want: dict[str, dict],
    cluster: Cluster,
    timeout: float,
    log: Log,
) -> dict[str, list[dict]]:
    outputs = list(want)
    """Poll the outputs until every expected result is there (or ``timeout``), let late
    duplicates arrive, and read them once more (read_committed)."""

    async def read_all() -> dict[str, list[dict]]:
        out = {}
        for name in outputs:
            records = await read_topic(bootstrap, prefix + name, timeout=60.0)
            out[name] = [r for r in records if r.get("sensor_id") in sensors]
        return out

    def keys(name: str, records: list[dict]) -> set:
        if name == "sensor-alerts":
            return {(r["sensor_id"], r["ts"], r["value"]) for r in records}
        return {(r["sensor_id"], r["window_start"]) for r in records}

    deadline = time.monotonic() + timeout
    got = await read_all()
    while time.monotonic() < deadline:
        await asyncio.to_thread(cluster.reap)
        missing = {n: len(set(want[n]) - keys(n, got[n])) for n in outputs}
        if not any(missing.values()):
            break
        await asyncio.sleep(2.0)
        got = await read_all()
    else:
        log(f"  outputs still missing results after {timeout:.0f}s: {missing}")
    await asyncio.sleep(5.0)  # a repeat or a straggling transaction shows up too
    return await read_all()


def check_output(name: str, got: list[dict], want: dict, size: Size):  # noqa: ANN201
    """The comparison that fits the output topic."""
    if name == "sensor-alerts":
        return check_alerts(got, want, size.partitions)
    return check_windows(name, got, want, size.partitions, quantiles=name == "sensor-stats-5m")


def scan_logs(cluster: Cluster) -> dict:
    """Tracebacks and error lines per worker log (distinct messages, counted)."""
    out = {}
    stamp = re.compile(r"^\[[^\]]*\]\s*")
    for slot, worker in enumerate(cluster.workers):
        try:
            lines = worker.log_path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        errors = Counter(
            stamp.sub("", line)[:200]
            for line in lines
            if "ERROR" in line or "CRITICAL" in line or "Traceback" in line
        )
        crashes = [
            line[:300] for line in lines if "Crashed reason=" in line or "Error in flush" in line
        ]
        out[f"worker-{slot}"] = {
            "log": str(worker.log_path),
            "crashes": len(crashes),
            "first_crashes": crashes[:5],
            "lines": len(lines),
            "error_lines": sum(errors.values()),
            "distinct_errors": [[n, text] for text, n in errors.most_common(15)],
        }
    return out


async def run_guarantee(
    broker: LocalBroker,
    root: Path,
    guarantee: str,
    size: Size,
    seed: int,
    log: Log,
    outputs: tuple[str, ...] = OUTPUTS,
) -> dict:
    """One chaos run under ``guarantee`` on the shared broker; returns its results."""
    token = uuid.uuid4().hex[:6]
    prefix = f"chaos-{guarantee[:3]}-{token}."
    topic = prefix + "sensor-readings"
    rng = random.Random(seed)
    plan = plan_faults(rng, size)
    now = int(time.time() * 1000)
    start = now - 3 * 60 * MINUTE
    start -= start % MINUTE
    readings = make_readings(size, seed, start)
    sensors = {r.sensor_id for r in readings}
    log(
        f"== {guarantee}: {len(readings)} readings of {len(sensors)} sensors, "
        f"{size.workers} workers, {size.partitions} partitions, prefix {prefix!r}"
    )
    planned = (f.kind + ("" if f.victim is None else f"@worker-{f.victim}") for f in plan)
    log("   faults: " + ", ".join(planned))
    await create_topics(broker.bootstrap, [topic], size.partitions)
    cluster = Cluster(
        broker,
        root / guarantee,
        workers=size.workers,
        partitions=size.partitions,
        guarantee=guarantee,
        app_id=f"chaos-{guarantee}-{token}",
        prefix=prefix,
        grace_ms=GRACE_MS,
        pipelines=",".join(outputs),
        log=log,
    )
    result: dict = {
        "guarantee": guarantee,
        "seed": seed,
        "prefix": prefix,
        "app_id": f"chaos-{guarantee}-{token}",
        "workers": size.workers,
        "partitions": size.partitions,
        "pipelines": list(outputs),
        "data_dirs": [str(w.data_dir) for w in cluster.workers],
        "event_time_start": start,
    }
    try:
        result["startup_s"] = round(await asyncio.to_thread(cluster.start_all), 1)
        log(f"   workers ready after {result['startup_s']}s")
        producer = Producer(broker.bootstrap, topic, log)
        gate = Gate()
        per = -(-len(readings) // (len(plan) + 1))
        segments = [readings[i : i + per] for i in range(0, len(readings), per)]
        began = time.monotonic()
        produce_task = asyncio.create_task(producer.run(segments, gate, size))
        faults_task = asyncio.create_task(inject_faults(plan, cluster, broker, producer, gate, log))
        faults, _ = await asyncio.gather(faults_task, produce_task)
        result["faults"] = faults
        result["produce_s"] = round(time.monotonic() - began, 1)
        result["producer_resends"] = producer.failed_sends
        log(f"   produced {producer.sent} readings in {result['produce_s']}s; closing windows")

        closers = [
            Reading(key, start + (size.minutes + 6) * MINUTE + GRACE_MS, 0.0)
            for key in key_per_partition("chaos-closer", size.partitions).values()
        ]
        await send_readings(broker.bootstrap, closers, topic)
        stored = [
            r
            for r in decode_readings(
                v for _, v, _, _ in await consume_all(broker.bootstrap, topic, timeout=120.0)
            )
            if r.sensor_id in sensors
        ]
        result["input"] = input_anomalies(readings, stored)
        want = {k: v for k, v in expected_outputs(stored).items() if k in outputs}
        settle_began = time.monotonic()
        got = await wait_outputs(
            broker.bootstrap, prefix, sensors, want, cluster, size.settle_timeout_s, log
        )
        result["settle_s"] = round(time.monotonic() - settle_began, 1)
        checks = {name: check_output(name, got[name], want[name], size) for name in want}
        late = [
            r
            for r in await read_topic(broker.bootstrap, prefix + "faustapp-late", timeout=60.0)
            if r.get("sensor_id") in sensors
        ]
        dlq = await read_topic(broker.bootstrap, prefix + "faustapp-dlq", timeout=60.0)
        snap = await asyncio.to_thread(cluster.snapshot)
        result.update(
            events=len(stored),
            windows=sum(len(want.get(n, ())) for n in ("sensor-stats-1m", "sensor-stats-5m")),
            alerts=len(want.get("sensor-alerts", ())),
            outputs={name: check.as_dict() for name, check in checks.items()},
            late=len(late),
            late_examples=[{k: v for k, v in r.items() if k != "_key"} for r in late[:10]],
            dlq=len(dlq),
            final_health={f"worker-{s}": [st, body] for s, (st, body) in snap.items()},
            unexpected_exits=cluster.exits,
        )
        for field in ("lost", "duplicated", "wrong", "repeats"):
            result[field] = sum(getattr(c, field) for c in checks.values())
    except BaseException as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc()
        log(f"   run failed: {result['error']}")
        if not isinstance(exc, Exception):
            raise
    finally:
        await asyncio.to_thread(cluster.stop_all)
        result["worker_logs"] = scan_logs(cluster)
    result["passed"] = passed(result)
    return result


def passed(result: dict) -> bool:
    """The pass rule: no loss, nothing wrong, no duplicate under exactly_once, faults injected."""
    if "error" in result or "lost" not in result:
        return False
    ok = result["lost"] == 0 and result["wrong"] == 0
    if result["guarantee"] == "exactly_once":
        ok = ok and result["duplicated"] == 0
    return ok and len(result.get("faults", [])) > 0


def fault_summary(faults: list[dict]) -> str:
    """'12 (10 kill -9, 1 broker bounce, 1 wipe)'."""
    kinds = Counter(f["kind"] for f in faults)
    parts = [
        f"{kinds[k]} {label}"
        for k, label in (("kill", "kill -9"), ("broker", "broker restart"), ("wipe", "wipe"))
        if kinds[k]
    ]
    return f"{len(faults)} ({', '.join(parts)})"


def recovery_stats(faults: list[dict]) -> dict:
    """Median and max recovery over the faults (None where a fault never recovered)."""
    times = [f["recovery_s"] for f in faults if f.get("recovery_s") is not None]
    return {
        "median_s": round(statistics.median(times), 1) if times else None,
        "max_s": round(max(times), 1) if times else None,
        "unrecovered": sum(1 for f in faults if f.get("recovery_s") is None),
    }


def table(results: list[dict]) -> str:
    """The markdown summary table."""
    lines = [
        "| guarantee | faults injected | events | windows | lost | duplicated | wrong | repeats "
        "| recovery time per fault (median / max s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        faults = r.get("faults", [])
        rec = recovery_stats(faults)
        recovery = f"{rec['median_s']} / {rec['max_s']}"
        if rec["unrecovered"]:
            recovery += f" ({rec['unrecovered']} not recovered)"
        windows = r.get("windows")
        row = [
            r["guarantee"],
            fault_summary(faults),
            f"{r['events']:,}" if "events" in r else "-",
            f"{windows:,} (+{r.get('alerts', 0)} alerts)" if windows is not None else "-",
            *(str(r.get(k, "-")) for k in ("lost", "duplicated", "wrong", "repeats")),
            recovery,
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def details(result: dict) -> str:
    """Per-fault lines and any problem, for the console and the markdown file."""
    out = [f"\n{result['guarantee']} (seed {result['seed']}, prefix {result['prefix']}):"]
    for f in result.get("faults", []):
        who = f["victim"] or "broker"
        owned = f" owned {f['owned_partitions']}" if "owned_partitions" in f else ""
        out.append(
            f"  {f['n']:>2}. +{f['at_s']:>6}s {f['kind']:<6} {who}{owned}: down {f['down_s']}s, "
            f"healthy {f['healthy_s']}s, processing {f['resumed_s']}s"
            + (f", unexpected exits {len(f['unexpected_exits'])}" if f["unexpected_exits"] else "")
        )
    for name, check in result.get("outputs", {}).items():
        problems = {k: v for k, v in check["examples"].items() if v}
        out.append(
            f"  {name}: expected {check['expected']}, records {check['records']}, "
            f"lost {check['lost']}, duplicated {check['duplicated']}, wrong {check['wrong']}"
        )
        for kind, examples in problems.items():
            for example in examples[:5]:
                out.append(f"    {kind}: {json.dumps(example)[:400]}")
    if result.get("late"):
        out.append(f"  late records of our sensors: {result['late']}")
    if result.get("input", {}).get("missing") or result.get("input", {}).get("extra"):
        out.append(f"  input topic differs from what was meant: {result['input']}")
    if result.get("unexpected_exits"):
        out.append(f"  workers that exited by themselves: {len(result['unexpected_exits'])}")
    for name, scan in result.get("worker_logs", {}).items():
        if scan.get("crashes"):
            out.append(f"  {name}: {scan['crashes']} crash(es) in {scan['log']}, first:")
            out += [f"    {line}" for line in scan["first_crashes"][:2]]
    if result.get("error"):
        out.append(f"  ERROR: {result['error']}")
    return "\n".join(out)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.run", description=__doc__.split("\n")[0])
    parser.add_argument("--short", action="store_true", help="~20,000 readings, 2 kills")
    parser.add_argument("--guarantee", choices=[*GUARANTEES, "both"], default="both")
    parser.add_argument("--seed", type=int, default=None, help="seed of the RNG (random if unset)")
    parser.add_argument("--json", type=Path, default=PROJECT_ROOT / "chaos-results" / "latest.json")
    parser.add_argument("--keep", action="store_true", help="keep worker and broker data dirs")
    parser.add_argument(
        "--pipelines",
        default=PIPELINES,
        help=f"FAUSTAPP_PIPELINES of the workers, to isolate a problem (default {PIPELINES})",
    )
    args = parser.parse_args(argv)

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1 << 31)
    size_name = "short" if args.short else "full"
    size = SIZES[size_name]
    guarantees = GUARANTEES if args.guarantee == "both" else (args.guarantee,)
    outputs = tuple(p.strip() for p in args.pipelines.split(",") if p.strip())
    if not outputs or set(outputs) - set(OUTPUTS):
        parser.error(f"--pipelines: a subset of {PIPELINES}")
    log = Log()
    flags = " --short" if args.short else ""
    if args.guarantee != "both":
        flags += f" --guarantee {args.guarantee}"
    if outputs != OUTPUTS:
        flags += f" --pipelines {','.join(outputs)}"
    log(f"chaos seed: {seed} (repeat: python -m chaos.run{flags} --seed {seed})")

    def on_sigterm(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_sigterm)
    root = Path(tempfile.mkdtemp(prefix="faustapp-chaos-"))
    results: list[dict] = []
    broker: LocalBroker | None = None
    started = now_iso()
    try:
        broker = start_broker(root, log)
        for guarantee in guarantees:
            results.append(
                asyncio.run(run_guarantee(broker, root, guarantee, size, seed, log, outputs))
            )
    except BrokerError as exc:
        log(f"broker failed: {exc}")
        results.append({"guarantee": "-", "seed": seed, "error": str(exc), "passed": False})
    finally:
        if broker is not None:
            try:
                broker.stop()
            except BrokerError as exc:
                log(f"broker stop failed: {exc}")
    ok = bool(results) and all(r["passed"] for r in results) and len(results) == len(guarantees)
    md = table(results)
    text = "\n".join(details(r) for r in results if "prefix" in r)
    print("\n" + md + "\n" + text, flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "started": started,
        "finished": now_iso(),
        "size": size_name,
        "seed": seed,
        "readings": size.readings,
        "pipelines": list(outputs),
        "passed": ok,
        "run_dir": str(root),
        "table": md,
        "runs": results,
    }
    args.json.write_text(json.dumps(document, indent=2, default=str) + "\n")
    md_path = args.json.with_suffix(".md")
    md_path.write_text(
        f"# Chaos run ({size_name}, seed {seed}, {started})\n\n{md}\n\n```{text}\n```\n"
    )
    if ok and not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        log(f"data dirs and worker logs kept in {root}")
    log(f"{'PASSED' if ok else 'FAILED'}; results in {args.json} and {md_path}")
    return 0 if ok else 1


if __name__ == "__main__":
    os.chdir(PROJECT_ROOT)
    sys.exit(main())
