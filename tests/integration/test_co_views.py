"""Chained pipelines on the real broker: co-views built from final user sessions, and the two
views over them answered by any of two workers (each item and user routed to its owner)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import orjson
import pytest

from support.sensors import MINUTE, key_per_partition, send, wait_for_records
from support.workers import http_get

pytestmark = pytest.mark.integration

PARTITIONS = 4
GRACE_MS = 2_000


def _views(user: str, start: int, items: list[str]) -> list[dict]:
    return [
        {"user_id": user, "ts": start + i * 1_000, "event": "view",
         "page": f"/product/{item}", "item_id": item}
        for i, item in enumerate(items)
    ]  # fmt: skip


def test_co_views_and_recommendations_across_two_workers(kafka_bootstrap, make_worker, event_clock):
    prefix = f"cv-{uuid.uuid4().hex[:6]}."
    env = dict(
        FAUSTAPP_TOPIC_PREFIX=prefix,
        FAUSTAPP_PARTITIONS=str(PARTITIONS),
        FAUSTAPP_GRACE_MS=str(GRACE_MS),
        FAUSTAPP_PIPELINES="co-views",  # runs user-sessions and user-last-session with it
    )
    first = make_worker(**env).start()
    second = make_worker(app_id=first.app_id, **env).start()
    first.wait_ready(timeout=120)
    second.wait_ready(timeout=120)
    start = event_clock.allocate(minutes=200)
    users = list(key_per_partition("viewer", PARTITIONS).values())
    sessions = {
        # user -> sessions (lists of viewed items); the last one is the user's most recent
        users[0]: [["a", "b", "c"], ["a", "d"]],
        users[1]: [["b", "c"], ["c", "a", "c"]],
        users[2]: [["d", "e"]],
        users[3]: [["e"]],
    }
    clicks = []
    for user, visits in sessions.items():
        for n, items in enumerate(visits):
            clicks += _views(user, start + n * 60 * MINUTE, items)
    closers = [
        {"user_id": u, "ts": start + 150 * MINUTE, "event": "view", "page": "/"} for u in users
    ]
    records = [(c["user_id"].encode(), orjson.dumps(c)) for c in [*clicks, *closers]]
    asyncio.run(send(kafka_bootstrap, f"{prefix}clicks", records))

    co: dict[str, Counter] = {}
    for visits in sessions.values():
        for items in visits:
            distinct = list(dict.fromkeys(items))
            for a in distinct:
                for b in distinct:
                    if a != b:
                        co.setdefault(a, Counter())[b] += 1
    total = sum(len(v) for v in sessions.values())
    asyncio.run(
        wait_for_records(
            kafka_bootstrap, f"{prefix}user-sessions", lambda r: r["user_id"] in users, total, 120
        )
    )

    def also_viewed(item: str, n: int = 5) -> list[dict]:
        rows = sorted((-c, b) for b, c in co[item].items())[:n]
        return [{"item_id": b, "sessions": -c} for c, b in rows]

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the co-view table follows the sessions topic
        status, body, _ = http_get(f"{first.url}/api/items/a/also-viewed")
        if status == 200 and body["items"] == also_viewed("a"):
            break
        time.sleep(1.0)
    for worker in (first, second):  # any worker answers, whoever owns the item or user
        for item in co:
            status, body, _ = http_get(f"{worker.url}/api/items/{item}/also-viewed?n=2")
            assert status == 200, body
            assert body == {"item_id": item, "items": also_viewed(item, 2)}
        status, body, _ = http_get(f"{worker.url}/api/items/zzz/also-viewed")
        assert status == 404 and "error" in body
        for bad in ("n=0", "n=101", "n=abc"):
            status, body, _ = http_get(f"{worker.url}/api/items/a/also-viewed?{bad}")
            assert status == 400 and "n must be" in body["error"]
        for user, visits in sessions.items():
            based_on = list(dict.fromkeys(visits[-1]))
            scores: Counter = Counter()
            for a in based_on:
                scores.update(co.get(a, {}))
            rows = sorted((-s, x) for x, s in scores.items() if x not in based_on and s > 0)
            want = {
                "user_id": user,
                "based_on": based_on,
                "items": [{"item_id": x, "score": -s} for s, x in rows[:5]],
            }
            status, body, _ = http_get(f"{worker.url}/api/users/{user}/recommendations")
            assert (status, body) == (200, want), body
        status, body, _ = http_get(f"{worker.url}/api/users/nobody/recommendations")
        assert status == 404 and "error" in body
