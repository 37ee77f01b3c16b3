"""Extras 2-4: RSS with many open keys, restart on the local RocksDB, and restore from the
changelog after the local state is deleted."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
import uuid
from collections.abc import Callable

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.broker import end_offsets
from bench.common import metric, partition_of
from bench.consumers import Context
from bench.data import MINUTE, create_topic
from bench.worker import PIPELINE, Worker


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
    """Sensor id of the ``i``-th distinct key, so that a probe can name one without the list."""
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


def run_state(ctx: Context, n_keys: int, say: Callable[[str], None]) -> dict:
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
