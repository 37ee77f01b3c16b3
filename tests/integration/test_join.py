"""The stream-table join on the real broker: purchases enriched from the compacted ``products``
topic (a product updated and one deleted mid-stream), then regrouped by category."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict

import orjson
import pytest
from aiokafka.client import AIOKafkaClient

from support.sensors import MINUTE, key_per_partition, send, wait_for_records

pytestmark = pytest.mark.integration

PARTITIONS = 4
GRACE_MS = 2_000
SETTLE_S = 5.0  # long enough for every worker's copy of the catalogue to see a change


async def _wait_for_topic(bootstrap: str, topic: str, timeout: float = 60.0) -> None:
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            metadata = await client.fetch_all_metadata()
            if metadata.partitions_for_topic(topic):
                return
            await asyncio.sleep(0.5)
        raise TimeoutError(f"{topic} was not created within {timeout}s")
    finally:
        await client.close()


def test_purchases_count_under_the_category_their_item_had_when_processed(
    kafka_bootstrap, make_worker, event_clock
):
    prefix = f"join-{uuid.uuid4().hex[:6]}."
    env = dict(
        FAUSTAPP_TOPIC_PREFIX=prefix,
        FAUSTAPP_PARTITIONS=str(PARTITIONS),
        FAUSTAPP_GRACE_MS=str(GRACE_MS),
        FAUSTAPP_PIPELINES="category-sales-1m",
    )
    products = f"{prefix}products"
    catalogue = {
        "sku-1": {"item_id": "sku-1", "category": "books", "name": "Dune", "price": 9.5},
        "sku-2": {"item_id": "sku-2", "category": "music", "name": "Kind of Blue", "price": 12.0},
        "sku-3": {"item_id": "sku-3", "category": "books", "name": "Emma", "price": 4.0},
    }
    first = make_worker(**env).start()
    second = make_worker(app_id=first.app_id, **env).start()
    first.wait_ready(timeout=120)
    second.wait_ready(timeout=120)
    # The workers create the catalogue topic (compacted); every worker reads all of it. A
    # record that is not a product is rejected (logged and counted), never guessed at.
    asyncio.run(_wait_for_topic(kafka_bootstrap, products))
    records = [(k.encode(), orjson.dumps(v)) for k, v in catalogue.items()]
    asyncio.run(send(kafka_bootstrap, products, [(b"bad", b"{not json"), *records]))
    time.sleep(SETTLE_S)

    start = event_clock.allocate(minutes=10)
    users = list(key_per_partition("shopper", PARTITIONS).values())
    clicks_topic = f"{prefix}clicks"
    expected: list[tuple[str, dict]] = []  # (category it must count under, purchase)
    sequence = 0

    def buy(item: str | None, category: str, minute: int, amount: float) -> dict:
        nonlocal sequence
        sequence += 1
        click = {
            "user_id": users[sequence % len(users)],
            "ts": start + minute * MINUTE + sequence * 100,
            "event": "purchase",
            "page": "/checkout",
            "item_id": item,
            "amount": amount,
        }
        expected.append((category, click))
        return click

    def produce(clicks: list[dict]) -> None:
        records = [(c["user_id"].encode(), orjson.dumps(c)) for c in clicks]
        asyncio.run(send(kafka_bootstrap, clicks_topic, records))

    produce(
        [
            buy("sku-1", "books", 0, 9.5),
            buy("sku-2", "music", 0, 12.0),
            buy("sku-3", "books", 0, 4.0),
            buy("sku-9", "unknown", 0, 1.0),  # not in the catalogue
            buy(None, "unknown", 0, 2.0),  # no item at all
            {"user_id": users[0], "ts": start + 1000, "event": "view", "page": "/"},  # no sale
        ]
    )
    time.sleep(SETTLE_S)
    # sku-3 moves to "classics"; sku-2 is withdrawn (tombstone).
    moved = {**catalogue["sku-3"], "category": "classics"}
    asyncio.run(
        send(kafka_bootstrap, products, [(b"sku-3", orjson.dumps(moved)), (b"sku-2", None)])
    )
    time.sleep(SETTLE_S)
    produce(
        [
            buy("sku-3", "classics", 1, 4.0),
            buy("sku-2", "unknown", 1, 12.0),
            buy("sku-1", "books", 1, 9.5),
            buy("sku-1", "books", 1, 9.5),
        ]
    )
    closers = [
        {"user_id": u, "ts": start + 5 * MINUTE, "event": "view", "page": "/"} for u in users
    ]
    produce(closers)

    want: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for category, click in expected:
        want[(category, click["ts"] - click["ts"] % MINUTE)].append(click)
    got = asyncio.run(
        wait_for_records(
            kafka_bootstrap, f"{prefix}category-sales-1m", lambda r: True, len(want), timeout=120
        )
    )
    assert sorted((r["category"], r["window_start"]) for r in got) == sorted(want)
    for r in got:
        members = want[(r["category"], r["window_start"])]
        assert r["_key"] == r["category"].encode()
        assert r["purchases"] == len(members), r
        assert r["revenue"] == pytest.approx(sum(c["amount"] for c in members)), r
        assert r["items"] == len({c["item_id"] for c in members if c["item_id"]}), r
