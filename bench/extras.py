"""Extra measurements, run after the main table (``python -m bench.run``; ``--no-extras`` skips
them, ``--only-extras`` runs only them):

1. latency: end-to-end delay of sensor-stats-1m results beyond window end + grace, with a
   producer pacing readings at half the maximum rate and event time = wall clock;
2. keys: RSS with N distinct keys open in one still-open 1-minute window (N = 1,000,000 full);
3. restart: SIGTERM that worker and start it again on the same local RocksDB;
4. restore: delete the local state and start again (same app id): restore from the changelog;
5. two workers vs one on the main pre-filled topic (1m, at_least_once).

Every worker is a ``faustapp worker`` process on loopback, stopped in a ``finally``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.broker import end_offsets, read_records
from bench.checks import check_windows, faustapp_window
from bench.common import (
    PROJECT_ROOT,
    free_port,
    http_text,
    load_average,
    metric,
    parse_metrics,
    partition_of,
    samples,
    terminate,
)
from bench.data import MINUTE, create_topic

FAUSTAPP = Path(sys.executable).with_name("faustapp")
PIPELINE = "sensor-stats-1m"
POLL_S = 0.1

EXTRA_SIZES = {
    "full": {"keys": 1_000_000, "latency_s": 15.0, "latency": True},
    # A 1-minute window cannot close in a quick run: the latency extra is skipped there.
    "quick": {"keys": 20_000, "latency_s": 0.0, "latency": False},
}
DEFAULT_MAX_RATE = 20_000.0  # events/s assumed as the 1m maximum when the main table has none


# --- worker processes ------------------------------------------------------------------------


class Worker:
    """One ``faustapp worker`` process with its own port and data dir."""

    def __init__(
        self,
        ctx: object,
        app_id: str,
        data_dir: Path,
        prefix: str,
        name: str,
        *,
        guarantee: str = "at_least_once",
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.ctx, self.app_id, self.data_dir, self.prefix, self.name = (
            ctx,
            app_id,
            data_dir,
            prefix,
            name,
        )
        self.port = free_port()
        self.guarantee = guarantee
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None
        self.spawn = 0.0
        self.log_path = ctx.logs / f"{name}.log"  # type: ignore[attr-defined]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        ctx = self.ctx
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAUSTAPP_")}
        env.update(
            FAUSTAPP_BROKER=f"kafka://{ctx.bootstrap}",  # type: ignore[attr-defined]
            FAUSTAPP_DATA_DIR=str(self.data_dir),
            FAUSTAPP_WEB_PORT=str(self.port),
            FAUSTAPP_WEB_HOST="127.0.0.1",
            FAUSTAPP_APP_ID=self.app_id,
            FAUSTAPP_TOPIC_PREFIX=self.prefix,
            FAUSTAPP_PIPELINES=PIPELINE,
            FAUSTAPP_PROCESSING_GUARANTEE=self.guarantee,
            FAUSTAPP_GRACE_MS=str(ctx.dataset.spec.grace_ms),  # type: ignore[attr-defined]
            FAUSTAPP_PARTITIONS=str(ctx.dataset.spec.partitions),  # type: ignore[attr-defined]
            FAUSTAPP_MAX_FUTURE_SKEW_MS=str(86_400_000),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.spawn = time.monotonic()
            self.proc = subprocess.Popen(
                [str(FAUSTAPP), "worker", "-l", "warn"],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> dict:
        if self.proc is None:
            return {}
        code, took = terminate(self.proc, timeout)
        return {"returncode": code, "shutdown_s": round(took, 2)}

    def metrics(self) -> dict | None:
        text = http_text(f"{self.base}/metrics", timeout=5)
        return parse_metrics(text) if text is not None else None

    def status(self, path: str) -> tuple[int | None, bytes]:
        try:
            with urllib.request.urlopen(f"{self.base}{path}", timeout=5) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            return None, b""

    def wait_for(self, check, timeout: float, what: str) -> float:  # noqa: ANN001
        """Poll ``check()`` until true; seconds since spawn. Raises on timeout or exit."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return time.monotonic() - self.spawn
            if not self.alive():
                raise RuntimeError(f"{self.name}: worker exited ({self.proc.returncode}) {what}")
            time.sleep(POLL_S)
        raise TimeoutError(f"{self.name}: not {what} within {timeout:.0f}s")

    def healthy(self) -> bool:
        return self.status("/api/health")[0] == 200

    def rss(self) -> dict:
        out: dict[str, float] = {}
        with contextlib.suppress(OSError, ValueError, IndexError, AttributeError):
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0].lower() + "_mib"] = round(int(line.split()[1]) / 1024, 1)
        return out


# --- data ------------------------------------------------------------------------------------


async def _produce_keys(bootstrap: str, topic: str, n: int, partitions: int, ts0: int) -> float:
    """``n`` readings with distinct sensor ids, all in [ts0, ts0 + 50 s) (one open window)."""
    await create_topic(bootstrap, topic, partitions)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=20,
        max_batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
        request_timeout_ms=60_000,
    )
    await producer.start()
    started = time.monotonic()
    try:
        batches = {p: producer.create_batch() for p in range(partitions)}
        futures = []
        for i in range(n):
            key = key_name(i)
            p = partition_of(key, partitions)
            ts = ts0 + (i * 50_000) // n
            value = orjson.dumps({"sensor_id": key, "ts": ts, "value": float(i % 1000)})
            if batches[p].append(key=key.encode(), value=value, timestamp=ts) is None:
                futures.append(await producer.send_batch(batches[p], topic, partition=p))
                batches[p] = producer.create_batch()
                batches[p].append(key=key.encode(), value=value, timestamp=ts)
        for p, batch in batches.items():
            if batch.record_count():
                futures.append(await producer.send_batch(batch, topic, partition=p))
        await asyncio.wait_for(asyncio.gather(*futures), 300)
    finally:
        await producer.stop()
    return time.monotonic() - started


def key_name(i: int) -> str:
    return f"k-{i:07d}"


async def _changelog(bootstrap: str, app_id: str) -> tuple[str | None, int]:
    """The 1m table's changelog topic of ``app_id`` and its record count (end offsets; the topic
    is compacted, but not yet at this age)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        names = [
            t
            for t in cluster.topics()
            if t.startswith(app_id) and "windows-1m" in t and t.endswith("changelog")
        ]
        if not names:
            return None, 0
        topic = sorted(names)[0]
    finally:
        await consumer.stop()
    ends = await end_offsets(bootstrap, topic)
    return topic, sum(ends.values())


# --- 2-4: keys, restart, restore -------------------------------------------------------------


def run_state(ctx, n_keys: int, say) -> dict:  # noqa: ANN001
    """RSS with ``n_keys`` open keys, then restart on local state, then restore from changelog."""
    prefix = f"{ctx.prefix}keys-"
    topic = f"{prefix}sensor-readings"
    partitions = ctx.dataset.spec.partitions
    now = int(time.time() * 1000)
    ts0 = now - now % MINUTE - 60 * MINUTE  # an hour ago; nothing later ever arrives
    out: dict[str, object] = {"keys": n_keys, "topic": topic}
    say(f"extras: producing {n_keys:,} distinct keys to {topic} ...")
    produce_s = asyncio.run(_produce_keys(ctx.bootstrap, topic, n_keys, partitions, ts0))
    out["produce_s"] = round(produce_s, 1)
    app_id = f"bench-extras-keys-{uuid.uuid4().hex[:6]}"
    data_dir = ctx.work / app_id
    probe = key_name(n_keys // 2)
    out["probe_sensor"] = probe
    timeout = 120 + n_keys / 2000

    def open_total(w: Worker) -> float:
        m = w.metrics()
        return metric(m, "faustapp_open_windows", pipeline=PIPELINE) if m else -1

    def answers(w: Worker) -> bool:
        code, body = w.status(f"/api/sensors/{probe}")
        if code != 200:
            return False
        with contextlib.suppress(orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            return orjson.loads(body)["windows"][0]["count"] == 1
        return False

    # 2. fill
    worker = Worker(ctx, app_id, data_dir, prefix, f"{app_id}-fill")
    try:
        worker.start()
        consumed = {}

        def all_in() -> bool:
            m = worker.metrics()
            if not m:
                return False
            consumed["events"] = metric(m, "faustapp_events_in_total", pipeline="sensors")
            consumed["open"] = metric(m, "faustapp_open_windows", pipeline=PIPELINE)
            return consumed["events"] >= n_keys and consumed["open"] >= n_keys

        try:
            out["fill_s"] = round(worker.wait_for(all_in, timeout, "done consuming"), 1)
        except (TimeoutError, RuntimeError) as exc:
            out["error"] = str(exc)
        out["events_in"] = consumed.get("events")
        out["open_windows"] = consumed.get("open")
        out["open_windows_ok"] = consumed.get("open") == n_keys
        time.sleep(1.0)  # let the write-behind settle before reading memory
        out.update(worker.rss())
        out["first_stop"] = worker.stop()
    finally:
        worker.stop()
    if "error" in out:
        return out

    # 3. restart on local RocksDB
    worker = Worker(ctx, app_id, data_dir, prefix, f"{app_id}-restart")
    try:
        worker.start()
        restart: dict[str, object] = {}
        try:
            restart["health_s"] = round(worker.wait_for(worker.healthy, timeout, "healthy"), 2)
            restart["query_s"] = round(
                worker.wait_for(lambda: answers(worker), timeout, "answering"), 2
            )
            restart["open_windows"] = open_total(worker)
        except (TimeoutError, RuntimeError) as exc:
            restart["error"] = str(exc)
        restart["stop"] = worker.stop()
        out["restart"] = restart
    finally:
        worker.stop()

    # 4. restore from the changelog
    topic_name, records = asyncio.run(_changelog(ctx.bootstrap, app_id))
    shutil.rmtree(data_dir, ignore_errors=True)
    worker = Worker(ctx, app_id, data_dir, prefix, f"{app_id}-restore")
    restore: dict[str, object] = {"changelog_topic": topic_name, "changelog_records": records}
    try:
        worker.start()
        try:
            health_s = worker.wait_for(worker.healthy, timeout, "healthy")
            restore["health_s"] = round(health_s, 2)
            restore["records_per_s"] = round(records / health_s) if health_s else None
            restore["query_s"] = round(
                worker.wait_for(lambda: answers(worker), timeout, "answering"), 2
            )
            restore["open_windows"] = open_total(worker)
        except (TimeoutError, RuntimeError) as exc:
            restore["error"] = str(exc)
        restore.update(worker.rss())
    finally:
        restore["stop"] = worker.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    out["restore"] = restore
    return out


# --- 5: two workers --------------------------------------------------------------------------


def run_two_workers(ctx, one_worker_eps: float | None, say) -> dict:  # noqa: ANN001
    """The 1m at_least_once pipeline on the main topic with two workers of one app id."""
    dataset = ctx.dataset
    total, partitions = dataset.total, dataset.spec.partitions
    closer_s = dataset.closer_ts / 1000
    out_topic = f"{ctx.prefix}{PIPELINE}"
    start_offsets = asyncio.run(end_offsets(ctx.bootstrap, out_topic))
    app_id = f"bench-extras-two-{uuid.uuid4().hex[:6]}"
    workers = [
        Worker(ctx, app_id, ctx.work / f"{app_id}-{i}", ctx.prefix, f"{app_id}-{i}") for i in (1, 2)
    ]
    out: dict[str, object] = {"app_id": app_id, "one_worker_events_per_s": one_worker_eps}
    first = last = None
    events = 0.0
    try:
        for w in workers:
            w.start()
        spawn = min(w.spawn for w in workers)
        deadline = spawn + ctx.run_timeout
        stall_at, progress = time.monotonic(), None
        while time.monotonic() < deadline:
            if not all(w.alive() for w in workers):
                out["error"] = "a worker exited"
                break
            now = time.monotonic()
            got = [w.metrics() for w in workers]
            events = sum(
                metric(m, "faustapp_events_in_total", pipeline="sensors") for m in got if m
            )
            times: dict[str, float] = {}
            per_worker = []
            for m in got:
                mine = []
                for labels, value in samples(
                    m or {}, "faustapp_stream_time_seconds", pipeline=PIPELINE
                ):
                    times[labels.get("partition")] = value
                    mine.append(labels.get("partition"))
                per_worker.append(sorted(mine))
            if first is None and events > 0:
                first = now
            if "both_assigned_s" not in out and all(per_worker):
                out["both_assigned_s"] = round(now - spawn, 2)
                out["events_before_both_assigned"] = events
            if (events, tuple(sorted(times.items()))) != progress:
                progress, stall_at = (events, tuple(sorted(times.items()))), now
            if (
                events >= total
                and len(times) == partitions
                and all(abs(v - closer_s) < 1e-3 for v in times.values())
            ):
                last = now
                out["partitions_per_worker"] = per_worker
                break
            if first is not None and now - stall_at > ctx.stall_s:
                out["error"] = f"stalled for {ctx.stall_s:.0f}s"
                break
            time.sleep(POLL_S)
        else:
            out["error"] = "not finished in time"
    finally:
        out["stops"] = [w.stop() for w in workers]
        for w in workers:
            shutil.rmtree(w.data_dir, ignore_errors=True)
    out["events_in_sum"] = events
    out["reprocessed"] = max(0, int(events - total))
    if first is not None and last is not None and last > first:
        out["processing_s"] = round(last - first, 2)
        out["events_per_s"] = round(total / (last - first))
        if one_worker_eps:
            out["speedup"] = round(out["events_per_s"] / one_worker_eps, 2)
    if last is not None:
        expected = ctx.expect.tumbling_1m
        records, _ = asyncio.run(
            read_records(
                ctx.bootstrap, out_topic, start=start_offsets, expected=len(expected), timeout=60
            )
        )
        checks = check_windows(records, expected, faustapp_window)
        checks.pop("examples", None)
        out["checks"] = checks
    return out


# --- 1: latency ------------------------------------------------------------------------------


async def _latency_load(
    bootstrap: str,
    topic: str,
    out_topic: str,
    partitions: int,
    rate: float,
    warmup_s: float,
    sensors: int,
    grace_ms: int,
) -> dict:
    """Produce at ``rate`` with ts = now until the first minute window that ends after
    ``warmup_s`` of load is final; consume its results meanwhile (earlier windows are warm-up)."""
    start_ms = time.time() * 1000
    measured_end = int(-(-(start_ms + warmup_s * 1000) // MINUTE) * MINUTE)
    seconds = (measured_end + grace_ms + 1000 - start_ms) / 1000
    keys = [f"lat-{i:05d}" for i in range(sensors)]
    part = {k: partition_of(k, partitions) for k in keys}
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks=1, linger_ms=5, max_batch_size=256 * 1024
    )
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
    )
    await producer.start()
    await consumer.start()
    lat_consume: list[float] = []
    lat_create: list[float] = []
    sent = 0
    stop = asyncio.Event()

    async def consume() -> None:
        tps: list[TopicPartition] = []
        while not tps and not stop.is_set():
            cluster = await consumer._client.fetch_all_metadata()
            tps = [
                TopicPartition(out_topic, p) for p in cluster.partitions_for_topic(out_topic) or []
            ]
            if not tps:
                await asyncio.sleep(0.5)
        if not tps:
            return
        consumer.assign(tps)
        for tp in tps:
            await consumer.seek_to_beginning(tp)
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=10_000)
            got = time.time() * 1000
            for messages in batch.values():
                for m in messages:
                    with contextlib.suppress(orjson.JSONDecodeError, KeyError, TypeError):
                        window_end = orjson.loads(m.value)["window_end"]
                        if window_end != measured_end:
                            continue
                        due = window_end + grace_ms
                        lat_consume.append(got - due)
                        lat_create.append(m.timestamp - due)

    reader = asyncio.create_task(consume())
    try:
        started = time.monotonic()
        i = 0
        tick = 0.01
        next_at = started
        while time.monotonic() - started < seconds:
            due = int((time.monotonic() - started) * rate)
            batches: dict[int, object] = {}
            futures = []
            while sent < due:
                key = keys[i % sensors]
                i += 1
                p = part[key]
                now_ms = int(time.time() * 1000)
                value = orjson.dumps({"sensor_id": key, "ts": now_ms, "value": float(i % 97)})
                batch = batches.get(p) or batches.setdefault(p, producer.create_batch())
                if batch.append(key=key.encode(), value=value, timestamp=now_ms) is None:
                    futures.append(await producer.send_batch(batch, topic, partition=p))
                    batch = batches[p] = producer.create_batch()
                    batch.append(key=key.encode(), value=value, timestamp=now_ms)
                sent += 1
            for p, batch in batches.items():
                futures.append(await producer.send_batch(batch, topic, partition=p))
            next_at += tick
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        elapsed = time.monotonic() - started
        await asyncio.sleep(3.0)  # results of windows closed by the last readings
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(reader, 5)
        await producer.stop()
        await consumer.stop()
    return {
        "sent": sent,
        "seconds": round(elapsed, 1),
        "window_end": measured_end,
        "achieved_rate": round(sent / elapsed),
        "lat_consume": lat_consume,
        "lat_create": lat_create,
    }


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def run_latency(ctx, max_rate: float | None, warmup_s: float, say) -> dict:  # noqa: ANN001
    rate = (max_rate or DEFAULT_MAX_RATE) / 2
    prefix = f"{ctx.prefix}lat-"
    topic = f"{prefix}sensor-readings"
    out_topic = f"{prefix}{PIPELINE}"
    partitions = ctx.dataset.spec.partitions
    grace_ms = ctx.dataset.spec.grace_ms
    sensors = ctx.dataset.spec.sensors
    asyncio.run(create_topic(ctx.bootstrap, topic, partitions))
    asyncio.run(create_topic(ctx.bootstrap, out_topic, partitions))
    app_id = f"bench-extras-lat-{uuid.uuid4().hex[:6]}"
    worker = Worker(ctx, app_id, ctx.work / app_id, prefix, app_id)
    out: dict[str, object] = {
        "target_rate": round(rate),
        "max_rate_used": round(max_rate or DEFAULT_MAX_RATE),
        "max_rate_source": "main table faustapp-1m-alo" if max_rate else "default 20,000/s",
        "warmup_s": warmup_s,
        "sensors": sensors,
        "grace_ms": grace_ms,
        "flush_interval_ms": 500,
    }
    try:
        worker.start()
        worker.wait_for(worker.healthy, 120, "healthy")
        say(f"extras: latency, {rate:,.0f} readings/s until a minute window closes ...")
        got = asyncio.run(
            _latency_load(
                ctx.bootstrap, topic, out_topic, partitions, rate, warmup_s, sensors, grace_ms
            )
        )
        m = worker.metrics() or {}
        out["events_in"] = metric(m, "faustapp_events_in_total", pipeline="sensors")
        out["late_events"] = metric(m, "faustapp_late_events_total", pipeline=PIPELINE)
        out["windows_closed"] = metric(m, "faustapp_windows_closed_total", pipeline=PIPELINE)
        out["sent"], out["achieved_rate"] = got["sent"], got["achieved_rate"]
        out["seconds"], out["window_end"] = got["seconds"], got["window_end"]
        lc, lt = got["lat_consume"], got["lat_create"]
        out["results"] = len(lc)
        out["p50_ms"], out["p99_ms"], out["max_ms"] = _pct(lc, 0.5), _pct(lc, 0.99), _pct(lc, 1)
        out["create_ts_p50_ms"], out["create_ts_p99_ms"] = _pct(lt, 0.5), _pct(lt, 0.99)
        out["mean_ms"] = round(statistics.fmean(lc), 1) if lc else None
    except (TimeoutError, RuntimeError) as exc:
        out["error"] = str(exc)
    finally:
        out["stop"] = worker.stop()
        shutil.rmtree(worker.data_dir, ignore_errors=True)
    return out


# --- driver and table ------------------------------------------------------------------------


def run_extras(ctx, size_name: str, rows: list[dict], say) -> dict:  # noqa: ANN001
    size = EXTRA_SIZES[size_name]
    one = next((r for r in rows if r["id"] == "faustapp-1m-alo"), None)
    one_eps = one["events_per_s_median"] if one else None
    report: dict[str, object] = {"size": size_name, "load_average_before": load_average()}
    steps = [
        ("state", lambda: run_state(ctx, size["keys"], say)),
        ("two_workers", lambda: run_two_workers(ctx, one_eps, say)),
    ]
    if size["latency"]:
        steps.append(("latency", lambda: run_latency(ctx, one_eps, size["latency_s"], say)))
    else:
        report["latency"] = {"skipped": "quick mode: a 1-minute window cannot close in time"}
    for name, step in steps:
        say(f"extras: {name} ...")
        before = load_average()
        try:
            result = step()
        except Exception as exc:  # keep the other extras going
            result = {"error": f"{type(exc).__name__}: {exc}"}
        result["load_average_before"], result["load_average_after"] = before, load_average()
        report[name] = result
        flat = {k: v for k, v in result.items() if not isinstance(v, dict | list)}
        say(f"  {orjson.dumps(flat).decode()}")
    report["load_average_after"] = load_average()
    return report


def format_extras(report: dict) -> str:
    def num(value: object, fmt: str = ",.0f") -> str:
        return "-" if value is None else format(value, fmt)  # type: ignore[arg-type]

    state = report.get("state", {})
    restart, restore = state.get("restart", {}), state.get("restore", {})
    two, lat = report.get("two_workers", {}), report.get("latency", {})
    lines = [
        f"extras ({report['size']}); load average {report.get('load_average_before')} before, "
        f"{report.get('load_average_after')} after",
        "",
        "| measurement | value | notes |",
        "|---|---:|---|",
    ]
    if "skipped" in lat:
        lines.append(f"| 1m end-to-end latency | - | skipped: {lat['skipped']} |")
    else:
        lines += [
            f"| 1m latency beyond window end + grace, p50 ms | {num(lat.get('p50_ms'))} | "
            f"{num(lat.get('results'))} results at {num(lat.get('achieved_rate'))}/s "
            f"(target {num(lat.get('target_rate'))}/s, from {lat.get('max_rate_source')}) for "
            f"{num(lat.get('seconds'))}s (the first window closing after "
            f"{num(lat.get('warmup_s'))}s of load); consume time; flush interval 500 ms |",
            f"| 1m latency, p99 ms | {num(lat.get('p99_ms'))} | max {num(lat.get('max_ms'))} "
            f"ms; by result CreateTime p50/p99 {num(lat.get('create_ts_p50_ms'))}/"
            f"{num(lat.get('create_ts_p99_ms'))} ms"
            + (f"; ERROR {lat['error']}" if lat.get("error") else "")
            + " |",
        ]
    keys = state.get("keys")
    lines += [
        f"| RSS with {num(keys)} open keys, VmRSS MiB | {num(state.get('vmrss_mib'))} | "
        f"VmHWM {num(state.get('vmhwm_mib'))} MiB; open windows {num(state.get('open_windows'))}"
        f" ({'ok' if state.get('open_windows_ok') else 'NOT ' + str(keys)}); consumed in "
        f"{num(state.get('fill_s'), '.1f')}s"
        + (f"; ERROR {state['error']}" if state.get("error") else "")
        + " |",
        f"| restart on local RocksDB, s to health 200 | {num(restart.get('health_s'), '.2f')} | "
        f"to answering /api/sensors/<id> with count 1: {num(restart.get('query_s'), '.2f')}s; "
        f"SIGTERM stop took {num(state.get('first_stop', {}).get('shutdown_s'), '.1f')}s"
        + (f"; ERROR {restart['error']}" if restart.get("error") else "")
        + " |",
        f"| restore from changelog, s to health 200 | {num(restore.get('health_s'), '.2f')} | "
        f"{num(restore.get('changelog_records'))} changelog records, "
        f"{num(restore.get('records_per_s'))} records/s; answering after "
        f"{num(restore.get('query_s'), '.2f')}s; open windows "
        f"{num(restore.get('open_windows'))}"
        + (f"; ERROR {restore['error']}" if restore.get("error") else "")
        + " |",
        f"| two workers, 1m at_least_once, events/s | {num(two.get('events_per_s'))} | "
        f"one worker {num(two.get('one_worker_events_per_s'))}/s (main table), speedup "
        f"{num(two.get('speedup'), '.2f')}; partitions {two.get('partitions_per_worker')}; "
        f"reprocessed {num(two.get('reprocessed'))}; output ok "
        f"{two.get('checks', {}).get('ok')}"
        + (f"; ERROR {two['error']}" if two.get("error") else "")
        + " |",
    ]
    return "\n".join(lines)
