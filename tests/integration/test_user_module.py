"""A user's own pipeline, declared in a module outside the package, runs in a worker: its own
topic, schema, aggregates and derived output, loaded through ``FAUSTAPP_MODULES``."""

from __future__ import annotations

import asyncio
import textwrap
import uuid
from collections import defaultdict

import orjson
import pytest

from faustapp.api import Catalog, Count, Id, Record, Schema, Sum, tumbling

from support.sensors import MINUTE, key_per_partition, read_topic, send, wait_for_records

pytestmark = pytest.mark.integration

PARTITIONS = 2
GRACE_MS = 2_000

USER_MODULE = '''
"""Orders of a shop: revenue per country and minute (a user's module, not faustapp's)."""

from typing import Annotated, Literal

from faustapp.api import (
    MINUTE, Count, DistinctCount, EventTime, Id, Max, Number, Record, Schema, Sum, source,
    tumbling,
)


class Order(Record):
    country: Id
    ts: EventTime
    order_id: Id
    amount: Annotated[float, Number(ge=0)]
    channel: Literal["web", "app"] = "web"
    coupon: Id | None = None


orders = source("orders", topic="shop-orders", schema=Schema(Order, key="country"))
revenue = orders.window(
    "order-revenue-1m",
    tumbling(MINUTE),
    orders=Count(),
    revenue=Sum("amount"),
    biggest=Max("amount"),
    app_orders=Count(where=lambda o: o.channel == "app"),
    coupons=Count("coupon"),
    customers=DistinctCount("order_id"),
)
orders.derive(
    "order-big-minutes",
    revenue,
    lambda r: r if r["revenue"] >= 1000 else None,
)
'''


def test_a_module_outside_the_package_declares_and_runs_a_pipeline(
    kafka_bootstrap, make_worker, event_clock, tmp_path
):
    module = f"shop_orders_{uuid.uuid4().hex[:6]}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(USER_MODULE))
    prefix = f"user-{uuid.uuid4().hex[:6]}."
    worker = make_worker(
        FAUSTAPP_TOPIC_PREFIX=prefix,
        FAUSTAPP_PARTITIONS=str(PARTITIONS),
        FAUSTAPP_GRACE_MS=str(GRACE_MS),
        FAUSTAPP_MODULES=module,
        FAUSTAPP_PIPELINES="order-revenue-1m,order-big-minutes",
        PYTHONPATH=str(tmp_path),
    ).start()
    body = worker.wait_ready(timeout=120, partitions=PARTITIONS)
    assert body["pipelines"] == ["order-big-minutes", "order-revenue-1m"]

    start = event_clock.allocate(minutes=4)
    countries = list(key_per_partition("country", PARTITIONS).values())
    orders = []
    for i in range(120):
        country = countries[i % len(countries)]
        order = {
            "country": country,
            "ts": start + i * 1_000,
            "order_id": f"o-{i % 50}",
            "amount": float(i % 40) * 3.5,
            "channel": "app" if i % 3 == 0 else "web",
            "coupon": None if i % 4 else f"c-{i}",
        }
        if i % 5 == 0:
            del order["channel"]  # the default applies
        orders.append(order)
    bad = [
        {"country": countries[0], "ts": start, "order_id": "x", "amount": -1.0},
        {"country": countries[0], "ts": start, "order_id": "x", "amount": 1.0, "channel": "fax"},
        {"country": "a/b", "ts": start, "order_id": "x", "amount": 1.0},
    ]
    closers = [
        {"country": c, "ts": start + 3 * MINUTE + GRACE_MS, "order_id": "z", "amount": 0.0}
        for c in countries
    ]
    topic = f"{prefix}shop-orders"
    records = [(o["country"].encode(), orjson.dumps(o)) for o in [*orders, *bad, *closers]]
    asyncio.run(send(kafka_bootstrap, topic, records))

    want: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for o in orders:
        want[(o["country"], o["ts"] - o["ts"] % MINUTE)].append(o)
    got = asyncio.run(
        wait_for_records(
            kafka_bootstrap,
            f"{prefix}order-revenue-1m",
            lambda r: r["window_start"] < start + 3 * MINUTE,
            len(want),
            timeout=90,
        )
    )
    assert sorted((r["country"], r["window_start"]) for r in got) == sorted(want)
    for r in got:
        members = want[(r["country"], r["window_start"])]
        assert r["window_end"] == r["window_start"] + MINUTE
        assert r["orders"] == len(members)
        assert r["revenue"] == pytest.approx(sum(o["amount"] for o in members))
        assert r["biggest"] == max(o["amount"] for o in members)
        assert r["app_orders"] == sum(1 for o in members if o.get("channel") == "app")
        assert r["coupons"] == sum(1 for o in members if o["coupon"] is not None)
        assert r["customers"] == len({o["order_id"] for o in members})

    big = asyncio.run(read_topic(kafka_bootstrap, f"{prefix}order-big-minutes"))
    want_big = sorted(
        key for key, members in want.items() if sum(o["amount"] for o in members) >= 1000
    )
    assert want_big, "the data should have minutes with revenue >= 1000"
    assert sorted((r["country"], r["window_start"]) for r in big) == want_big

    dead = asyncio.run(read_topic(kafka_bootstrap, f"{prefix}faustapp-dlq"))
    assert sorted(d["pipeline"] for d in dead) == ["orders"] * 3
    errors = sorted(d["error"] for d in dead)
    assert any("'amount'" in e for e in errors), errors
    assert any("'channel'" in e for e in errors), errors
    assert any("'country'" in e for e in errors), errors


class Visit(Record):
    page: Id
    ts: int
    referrer: str = ""


def test_a_declaration_naming_a_missing_or_non_numeric_field_fails_at_once():
    visits = Catalog().source("visits", topic="visits", schema=Schema(Visit, key="page"))
    with pytest.raises(ValueError, match="'duration'"):
        visits.window("v1", tumbling(MINUTE), total=Sum("duration"))
    with pytest.raises(TypeError, match="'referrer' is not numeric"):
        visits.window("v2", tumbling(MINUTE), total=Sum("referrer"))
    declared = visits.window("v3", tumbling(MINUTE), visits=Count(), referred=Count("referrer"))
    assert declared.kind == "tumbling" and declared.output == "v3"


def test_an_unknown_pipeline_or_module_stops_the_worker_with_the_valid_names(make_worker):
    unknown = make_worker(FAUSTAPP_PIPELINES="sensor-stats-1m,no-such-pipeline").start()
    assert unknown.proc.wait(60) != 0
    log = unknown.log_tail()
    assert "no-such-pipeline" in log
    assert "trade-candles-1m" in log and "log-stats-1m" in log and "sensor-alerts" in log

    missing = make_worker(FAUSTAPP_MODULES="no_such_module_here").start()
    assert missing.proc.wait(60) != 0
    assert "no_such_module_here" in missing.log_tail()
