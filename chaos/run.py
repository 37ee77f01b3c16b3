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
from chaos.faults import Gate, Producer, inject_faults, start_broker
from chaos.oracle import decode_readings, expected_outputs, input_anomalies
from chaos.report import Log, details, table
from chaos.scenario import (
    GRACE_MS,
    GUARANTEES,
    OUTPUTS,
    PIPELINES,
    SIZES,
    Size,
    make_readings,
    plan_faults,
)
from chaos.verdict import check_output, passed, scan_logs, wait_outputs

from support.kafka_broker import BrokerError, LocalBroker, consume_all, create_topics
from support.sensors import MINUTE, Reading, key_per_partition, read_topic, send_readings


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


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run each guarantee on one broker, report; 0 only if all passed."""
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
