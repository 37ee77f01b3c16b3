"""Exactly-once after a worker dies for good: partitions that come back to the survivor must
start on producers that were never fenced (Faust reused fenced ones and crashed)."""

from __future__ import annotations

import asyncio
import time
import uuid

import orjson
import pytest

from support.sensors import MINUTE, key_per_partition, send, wait_for_records

pytestmark = pytest.mark.integration

PARTITIONS = 4


def test_the_survivor_takes_its_partitions_back_after_the_other_worker_is_killed(
    kafka_bootstrap, make_worker, event_clock
):
    prefix = f"fence-{uuid.uuid4().hex[:6]}."
    env = dict(
        FAUSTAPP_TOPIC_PREFIX=prefix,
        FAUSTAPP_PARTITIONS=str(PARTITIONS),
        FAUSTAPP_GRACE_MS="1000",
        FAUSTAPP_PIPELINES="trade-candles-1m",
        FAUSTAPP_PROCESSING_GUARANTEE="exactly_once",
        FAUSTAPP_SESSION_TIMEOUT_MS="6000",
    )
    survivor = make_worker(**env).start()
    survivor.wait_ready(timeout=120, partitions=PARTITIONS)
    doomed = make_worker(app_id=survivor.app_id, **env).start()
    doomed.wait_ready(timeout=120)
    deadline = time.monotonic() + 60
    while len(survivor.wait_ready(timeout=60).get("active_partitions", [])) == PARTITIONS:
        assert time.monotonic() < deadline, "the second worker never got a partition"
        time.sleep(0.5)  # wait until the group has moved partitions to the second worker

    start = event_clock.allocate(minutes=5)
    symbols = list(key_per_partition("FENCE", PARTITIONS).values())
    topic = f"{prefix}trades"

    def trades(minute: int) -> list[tuple[bytes, bytes]]:
        return [
            (s.encode(), orjson.dumps({"symbol": s, "ts": start + minute * MINUTE, "price": 10.0,
                                       "qty": 1}))
            for s in symbols
        ]  # fmt: skip

    asyncio.run(send(kafka_bootstrap, topic, trades(0)))
    time.sleep(2.0)
    doomed.kill()  # for good: its partitions go back to the survivor after the session timeout
    time.sleep(15.0)
    asyncio.run(send(kafka_bootstrap, topic, trades(1) + trades(3)))
    got = asyncio.run(
        wait_for_records(
            kafka_bootstrap,
            f"{prefix}trade-candles-1m",
            lambda r: r["window_start"] < start + 2 * MINUTE,
            2 * PARTITIONS,
            timeout=90,
        )
    )
    assert survivor.alive(), survivor.log_tail()
    windows = sorted((r["symbol"], r["window_start"]) for r in got)
    assert windows == sorted((s, start + m * MINUTE) for s in symbols for m in (0, 1))
    assert all(r["trades"] == 1 and r["volume"] == 1.0 for r in got)
