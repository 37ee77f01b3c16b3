"""Regrouping on the real broker: page statistics from clicks keyed by user, through a
repartition topic whose stage closes windows by the minimum watermark of every input partition."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import defaultdict

import orjson
import pytest

from support.sensors import MINUTE, key_per_partition, read_topic, send, wait_for_records

pytestmark = pytest.mark.integration

PARTITIONS = 4
GRACE_MS = 2_000


def _click(user: str, ts: int, page: str, event: str = "view") -> dict:
    return {"user_id": user, "ts": ts, "event": event, "page": page, "item_id": None}


def test_a_fast_partition_never_closes_a_window_a_slow_one_still_feeds(
    kafka_bootstrap, make_worker, event_clock
):
    prefix = f"rg-{uuid.uuid4().hex[:6]}."
    worker = make_worker(
        FAUSTAPP_TOPIC_PREFIX=prefix,
        FAUSTAPP_PARTITIONS=str(PARTITIONS),
        FAUSTAPP_GRACE_MS=str(GRACE_MS),
        FAUSTAPP_PIPELINES="page-stats-1m",
    ).start()
    worker.wait_ready(timeout=120, partitions=PARTITIONS)
    start = event_clock.allocate(minutes=15)
    users = key_per_partition("user", PARTITIONS)  # partition -> a user living there
    topic = f"{prefix}clicks"

    def produce(clicks: list[dict]) -> None:
        asyncio.run(
            send(kafka_bootstrap, topic, [(c["user_id"].encode(), orjson.dumps(c)) for c in clicks])
        )

    # Minute 0: every partition's user views /home and /cart.
    first = [
        _click(users[p], start + 1_000 * (p + 1), page)
        for p in range(PARTITIONS)
        for page in ("/home", "/cart")
    ]
    produce(first)
    # Partition 0 runs ten minutes ahead: with a per-partition clock it would close minute 0 of
    # /home for everyone.
    ahead = [_click(users[0], start + 10 * MINUTE, "/elsewhere")]
    produce(ahead)
    # Partition 1 is still in minute 0: not late on its own partition, so it must count.
    slow = [_click(users[1], start + 30_000, "/home", "click") for _ in range(3)]
    produce(slow)
    # A truly late event on partition 0 (its own clock is at minute 10): late, never counted.
    late = [_click(users[0], start + 5_000, "/home")]
    produce(late)
    closers = [_click(users[p], start + 12 * MINUTE, "/closer") for p in range(PARTITIONS)]
    produce(closers)

    counted = [*first, *slow]
    want: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for c in [*counted, *ahead]:
        want[(c["page"], c["ts"] - c["ts"] % MINUTE)].append(c)
    got = asyncio.run(
        wait_for_records(
            kafka_bootstrap,
            f"{prefix}page-stats-1m",
            lambda r: r["window_start"] < start + 11 * MINUTE,
            len(want),
            timeout=120,
        )
    )
    assert sorted((r["page"], r["window_start"]) for r in got) == sorted(want)
    for r in got:
        members = want[(r["page"], r["window_start"])]
        assert r["events"] == len(members), r
        assert r["views"] == sum(1 for c in members if c["event"] == "view"), r
        assert r["unique_users"] == len({c["user_id"] for c in members}), r
    late_records = [
        r
        for r in asyncio.run(read_topic(kafka_bootstrap, f"{prefix}faustapp-late"))
        if r["pipeline"] == "page-stats-1m"
    ]
    assert [(r["user_id"], r["ts"], r["page"]) for r in late_records] == [
        (users[0], start + 5_000, "/home")
    ]
    # Idle input partitions keep repeating their watermark (one sent in an aborted transaction
    # must not hold the regrouped windows open for ever).
    repartition = f"{prefix}{worker.app_id}-page-stats-1m-repartition"

    def closer_marks() -> int:
        records = asyncio.run(read_topic(kafka_bootstrap, repartition))
        return sum(1 for r in records if r.get("watermark") == start + 12 * MINUTE)

    before = closer_marks()
    assert before >= PARTITIONS  # each input partition told each repartition partition once
    time.sleep(8)
    assert closer_marks() >= before + PARTITIONS


def test_trending_items_rank_every_item_of_a_window_across_partitions(
    kafka_bootstrap, make_worker, event_clock
):
    prefix = f"tr-{uuid.uuid4().hex[:6]}."
    worker = make_worker(
        FAUSTAPP_TOPIC_PREFIX=prefix,
        FAUSTAPP_PARTITIONS=str(PARTITIONS),
        FAUSTAPP_GRACE_MS=str(GRACE_MS),
        FAUSTAPP_PIPELINES="trending-items",
    ).start()
    worker.wait_ready(timeout=120, partitions=PARTITIONS)
    start = event_clock.allocate(minutes=15)
    users = list(key_per_partition("buyer", PARTITIONS).values())
    rng = random.Random(7)
    events = ("view", "view", "view", "click", "add_to_cart", "purchase")
    clicks = []
    for i in range(600):
        kind = rng.choice(events)
        item = f"sku-{min(int(rng.paretovariate(1.2)), 30)}" if rng.random() < 0.9 else None
        clicks.append(
            {
                "user_id": rng.choice(users),
                "ts": start + i * 400,  # four minutes of events
                "event": kind,
                "page": f"/product/{item}" if item else "/",
                "item_id": item,
                "amount": 10.0 if kind == "purchase" else None,
            }
        )
    closers = [
        {"user_id": u, "ts": start + 12 * MINUTE, "event": "view", "page": "/"} for u in users
    ]
    records = [(c["user_id"].encode(), orjson.dumps(c)) for c in [*clicks, *closers]]
    asyncio.run(send(kafka_bootstrap, f"{prefix}clicks", records))

    per_window: dict[int, dict[str, list[int]]] = defaultdict(
        lambda: defaultdict(lambda: [0, 0, 0])
    )
    for c in clicks:
        if c["item_id"] is None:
            continue
        slot = {"view": 0, "add_to_cart": 1, "purchase": 2}.get(c["event"])
        last = c["ts"] - c["ts"] % MINUTE
        for window_start in range(last - 4 * MINUTE, last + 1, MINUTE):
            counts = per_window[window_start][c["item_id"]]
            if slot is not None:
                counts[slot] += 1
    want = {}
    for window_start, items in per_window.items():
        scored = [
            (v + 3 * a + 5 * p, item, v, a, p)
            for item, (v, a, p) in items.items()
            if v + 3 * a + 5 * p > 0
        ]
        scored.sort(key=lambda row: (-row[0], row[1]))
        if scored:
            want[window_start] = [
                {"item_id": i, "score": s, "views": v, "add_to_carts": a, "purchases": p}
                for s, i, v, a, p in scored[:10]
            ]
    got = asyncio.run(
        wait_for_records(
            kafka_bootstrap, f"{prefix}trending-items", lambda r: True, len(want), timeout=120
        )
    )
    assert sorted(r["window_start"] for r in got) == sorted(want)
    for r in got:
        assert r["_key"] == b"trending"
        assert r["window_end"] == r["window_start"] + 5 * MINUTE
        assert r["items"] == want[r["window_start"]], r["window_start"]
