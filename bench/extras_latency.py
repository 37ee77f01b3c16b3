"""Extra 1: end-to-end delay of sensor-stats-1m results beyond window end + grace, under a
paced producer whose event time is the wall clock."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import statistics
import time
import uuid
from collections.abc import Callable

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.common import metric, partition_of
from bench.consumers import Context
from bench.data import MINUTE, create_topic
from bench.worker import PIPELINE, Worker

DEFAULT_MAX_RATE = 20_000.0  # events/s assumed as the 1m maximum when the main table has none


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


def run_latency(
    ctx: Context, max_rate: float | None, warmup_s: float, say: Callable[[str], None]
) -> dict:
    """One worker under a producer at half the maximum rate: how late the 1m results arrive."""
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
