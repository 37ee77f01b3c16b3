"""The click pipelines against their oracle on the real broker: two workers under exactly_once, a
``kill -9`` in the middle, disordered, late and malformed input.

Every valid record is keyed by its own user, so it is processed on the partition it was produced
to, in the order of that partition's log: the oracle replays exactly that order. The regrouped
pipelines (page statistics by page, item activity by item) close their windows by the slowest
input partition, so the closing records go to every partition.
"""

from __future__ import annotations

import asyncio
import base64
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from support.clicks_oracle import (
    CATEGORY_SALES,
    CLICKS_GROUP,
    CLICKS_TOPIC,
    CO_VIEWS,
    ITEM_ACTIVITY,
    PAGE_STATS,
    PRODUCTS_TOPIC,
    SESSION_GAP_MS,
    SESSIONS,
    TRENDING,
    TRENDING_KEY,
    TRENDING_TOP,
    UNKNOWN_CATEGORY,
    Click,
    ClicksExpected,
    also_viewed,
    assert_same_category_sales,
    assert_same_page_stats,
    assert_same_session,
    assert_same_trending,
    co_view_matrix,
    expected_clicks,
    recommendations,
    session_slot,
)
from support.sensors import key_per_partition, partition_of, read_topic, send, wait_for_records
from support.trades_oracle import MINUTE, Late, Produced, Rejected, assert_late_record
from support.workers import WorkerProcess, http_get

pytestmark = pytest.mark.integration

PARTITIONS = 4
GRACE_MS = 4_000
DISORDER_MS = GRACE_MS - 1_000  # in-order enough: nothing late but what is made late
GAP = SESSION_GAP_MS
ACTIVE_MINUTES = 150  # the regular users' traffic; hand-made edges up to minute 166
CLOSE_MINUTE = 210  # every session, page window and item window with data is final by then
PIPELINES = "user-sessions,page-stats-1m,trending-items"
SEED = 20_241_125
OUTPUT_BUDGET_S = 120.0  # from the closing records until every output must be complete


@dataclass(frozen=True)
class Entry:
    """One record to produce; ``ts`` and ``partition`` only for valid ones."""

    key: bytes | None
    value: bytes
    ts: int | None = None
    partition: int | None = None
    field: str | None = None  # for a malformed one: the field its error must name
    then: tuple[Entry, ...] = ()  # produced right after it


def _valid(click: Click, **encoding: object) -> Entry:
    return Entry(
        click.user_id.encode(),
        click.encode(**encoding),  # type: ignore[arg-type]
        click.ts,
        partition_of(click.user_id, PARTITIONS),
    )


def _user_on(prefix: str, partition: int) -> str:
    """A user id of ``prefix`` whose records land in ``partition``."""
    n = 0
    while partition_of(f"{prefix}-{n}", PARTITIONS) != partition:
        n += 1
    return f"{prefix}-{n}"


def _arrival_order(timed: list[tuple[float, Entry]]) -> list[Entry]:
    """Sort by arrival time (equal arrivals keep the planned order); an entry's ``then`` follow
    it at once."""
    out: list[Entry] = []
    for _, _, entry in sorted((t, i, e) for i, (t, e) in enumerate(timed)):
        out.append(entry)
        out.extend(entry.then)
    return out


def _weave(
    ordered: list[Entry], insert: Callable[[int, dict[int, int]], list[Entry]]
) -> list[Entry]:
    """``ordered`` with ``insert(index, stream_times)`` put before each entry, where
    ``stream_times`` is every partition's largest valid event time so far."""
    running: dict[int, int] = defaultdict(lambda: -1)
    out: list[Entry] = []
    for index, entry in enumerate(ordered):
        for extra in [*insert(index, running), entry]:
            out.append(extra)
            if extra.ts is not None:
                running[extra.partition] = max(running[extra.partition], extra.ts)
    return out


def _spread(values: list[Entry], ordered: list[Entry], rng: random.Random) -> list[Entry]:
    """``ordered`` with each of ``values`` put at a random place."""
    out = list(ordered)
    for entry in values:
        out.insert(rng.randrange(len(out) + 1), entry)
    return out


# --------------------------------------------------------------------------------------------
# The clicks to produce

PAGES = ("/", "/search", "/cart", "/checkout", "/help")


def _item(rng: random.Random) -> str:
    return f"sku-{min(int(rng.paretovariate(1.1)), 40)}"


def _regular(users: list[str], start: int, rng: random.Random) -> list[tuple[float, Entry]]:
    """Users in sessions of 1-12 events (mostly seconds apart, now and then up to 29.5 minutes)
    separated by 31-55 minutes, for ``ACTIVE_MINUTES``."""
    timed = []
    for user in users:
        ts = start + rng.randint(0, 5 * MINUTE)
        while ts < start + ACTIVE_MINUTES * MINUTE:
            for _ in range(rng.randint(1, 12)):
                kind = rng.choices(("view", "click", "add_to_cart", "purchase"), (55, 15, 17, 13))[
                    0
                ]
                item = _item(rng) if rng.random() < 0.8 or kind == "purchase" else None
                amount = None
                if kind == "purchase":
                    amount = round(rng.uniform(1, 250), 2)
                elif kind == "add_to_cart" and rng.random() < 0.3:
                    amount = round(rng.uniform(1, 250), 2)  # counts nowhere
                page = f"/product/{item}" if item else rng.choice(PAGES)
                click = Click(user, ts, kind, page, item, amount)
                roll = rng.random()
                if roll < 0.03:
                    entry = _valid(click, iso_ts=True)
                elif roll < 0.05:
                    entry = _valid(click, nulls=True, referrer="ad-7")
                else:
                    entry = _valid(click, nulls=roll < 0.3)
                timed.append((ts + rng.uniform(0, DISORDER_MS), entry))
                gap = rng.choices(
                    (rng.randint(2_000, 90_000), rng.randint(3, 10) * MINUTE, 29 * MINUTE + 30_000),
                    (85, 11, 4),
                )[0]
                ts += gap
                if ts >= start + ACTIVE_MINUTES * MINUTE:
                    break
            ts += rng.randint(31 * MINUTE, 55 * MINUTE)
    return timed


def _crafted(start: int, rng: random.Random) -> list[tuple[float, Entry]]:
    """Hand-made sessions, pages and items, arriving within the disorder."""
    timed: list[tuple[float, Entry]] = []

    def add(click: Click, *, arrival: float | None = None, **encoding: object) -> Entry:
        entry = _valid(click, **encoding)
        late = arrival if arrival is not None else rng.uniform(0, DISORDER_MS)
        timed.append((click.ts + late, entry))
        return entry

    e = start + 20 * MINUTE
    # The gap: exactly 30 minutes apart is two sessions, a millisecond less is one.
    add(Click("cl-edge-gap", e, "view", "/a", "sku-1"))
    add(Click("cl-edge-gap", e + GAP, "view", "/b", "sku-2"))
    add(Click("cl-edge-gap-in", e, "view", "/a", "sku-1"))
    add(Click("cl-edge-gap-in", e + GAP - 1, "view", "/b", "sku-2"))
    # Equal timestamps: entry and exit pages and the items' order follow the log.
    for ts, page, item in (
        (e, "/tie-a", "sku-3"),
        (e, "/tie-b", "sku-4"),
        (e + MINUTE, "/tie-c", "sku-5"),
        (e + MINUTE, "/tie-d", "sku-3"),
        (e + MINUTE, "/tie-e", "sku-6"),
    ):
        add(Click("cl-edge-ties", ts, "view", page, item))
    # 64 views of 60 items in three minutes (ties and disorder included): the first 50 by time.
    cap = e + 5 * MINUTE
    for n in range(60):
        add(Click("cl-edge-cap", cap + 3_000 * n - (n % 3 == 0) * 3_000, "view", "/p", f"cap-{n}"))
    for n in (4, 7, 55, 59):
        add(Click("cl-edge-cap", cap + 1_000 * n, "view", "/p", f"cap-{n}"))
    add(Click("cl-edge-cap", cap + 10_000, "add_to_cart", "/p", "cap-99"))
    # Revenue: purchases only, 0 allowed, an ISO time and a whole float time accepted.
    rev = e + 10 * MINUTE
    add(Click("cl-edge-rev", rev, "purchase", "/buy", "sku-7", 0.1))
    add(Click("cl-edge-rev", rev + 1_000, "purchase", "/buy", "sku-8", 0.2), iso_ts=True)
    add(Click("cl-edge-rev", rev + 2_000, "purchase", "/buy", None, 0.0), nulls=True)
    add(Click("cl-edge-rev", rev + 3_000, "add_to_cart", "/buy", "sku-9", 99.0))
    whole = {"user_id": "cl-edge-rev", "ts": float(rev + 4_000), "event": "purchase"}
    whole |= {"page": "/buy", "item_id": "sku-9", "amount": 12.5}
    partition = partition_of("cl-edge-rev", PARTITIONS)
    timed.append((rev + 4_000, Entry(b"cl-edge-rev", orjson.dumps(whole), rev + 4_000, partition)))
    # Pages and items at their limits.
    pages = e + 12 * MINUTE
    for n, page in enumerate(("/" + "p" * 2_047, "/tab\there", "/\u00e9t\u00e9")):
        add(Click("cl-edge-pages", pages + n, "view", page, "i" * 256 if n == 0 else None))
    # A bridge: [b] and [b + gap + 100 ms] are both open when an event between them arrives
    # (stream time is then below b + gap + grace): one session of three.
    bridge = start + 100 * MINUTE
    add(Click("cl-edge-bridge", bridge, "view", "/one", "sku-10"), arrival=0)
    middle = _valid(Click("cl-edge-bridge", bridge + GAP // 2, "view", "/two", "sku-11"))
    second = _valid(Click("cl-edge-bridge", bridge + GAP + 100, "view", "/three", "sku-12"))
    timed.append((bridge + GAP + 100, replace(second, then=(middle,))))
    # A flash sale: 150 users view /sale in one minute, ten of them twice.
    sale = start + 70 * MINUTE
    for n in range(150):
        user = f"cl-flash-{n}"
        add(Click(user, sale + 300 * n, "view", "/sale", "sku-sale"))
        if n % 15 == 0:
            add(Click(user, sale + 300 * n + 100, "click", "/sale", "sku-sale"))
    # After the traffic: clicks on an item alone (score 0: no trending record for its windows).
    quiet = start + 165 * MINUTE
    add(Click("cl-edge-quiet", quiet, "click", "/p/quiet", "sku-quiet"))
    add(Click("cl-edge-quiet", quiet + 10_000, "view", "/"))
    return timed


def _boundary(running: dict[int, int], start: int) -> list[Entry] | None:
    """Exact lateness boundaries on one partition, once its stream time is in
    [M + disorder + 1, M + grace] for a minute M: an event at S = M + grace makes stream time
    exactly S, and nothing produced later (at most ``DISORDER_MS`` behind) becomes late by it."""
    for partition in range(PARTITIONS):
        stream = running[partition]
        m = stream - stream % MINUTE
        if not (start + 40 * MINUTE <= m <= start + 140 * MINUTE):
            continue
        if not DISORDER_MS < stream - m <= GRACE_MS:
            continue
        s = m + GRACE_MS

        def click(n: int, ts: int, item: str | None = None, at: int = partition) -> Entry:
            return _valid(Click(_user_on(f"cl-edge-b{n}", at), ts, "view", "/edge", item))

        return [
            click(0, s),  # stream time exactly S
            click(1, m - 1),  # late for [M - 1 min, M) at its boundary; a session of its own
            click(2, m),  # counted in [M, M + 1 min)
            click(3, s - GAP - GRACE_MS),  # late for its session (alone) at its boundary
            click(4, s - GAP - GRACE_MS + 1),  # a session of its own; late for its minute
            click(5, m - 4 * MINUTE - 1, "sku-edge"),  # late for every 5-minute window, at S
        ]
    return None


def _clicks(start: int, rng: random.Random) -> list[Entry]:
    """Every record of the run in the order to produce them."""
    users = [f"cl-u-{n}" for n in range(48)]
    ordered = _arrival_order([*_regular(users, start, rng), *_crafted(start, rng)])
    late_at = set(rng.sample(range(len(ordered) // 5, len(ordered) * 9 // 10), 18))
    boundary_done = False

    def insert(index: int, running: dict[int, int]) -> list[Entry]:
        nonlocal boundary_done
        out: list[Entry] = []
        if not boundary_done:
            edges = _boundary(running, start)
            if edges is not None:
                out.extend(edges)
                boundary_done = True
        if index in late_at:
            user = rng.choice(users)
            stream = running[partition_of(user, PARTITIONS)]
            kind = len(late_at) % 3
            late_at.discard(index)
            if kind == 0:  # late for its minute and its 5-minute windows, maybe not its session
                ts = stream - GRACE_MS - rng.randint(6 * MINUTE, 9 * MINUTE)
            elif kind == 1:  # late for everything unless it touches a long open session
                ts = stream - 2 * GAP - GRACE_MS - rng.randint(0, 20 * MINUTE)
            else:  # behind by more than the grace: late for its minute
                ts = stream - GRACE_MS - MINUTE - rng.randint(0, 30_000)
            item = _item(rng) if kind != 2 else None
            page = f"/product/{item}" if item else "/late"
            out.append(_valid(Click(user, ts, "add_to_cart" if kind else "view", page, item)))
        return out

    woven = _weave(ordered, insert)
    assert boundary_done, "no place for the boundary case: change SEED"
    return _spread(_bad_clicks(start), woven, rng)


def _bad_clicks(start: int) -> list[Entry]:
    """One malformed record per rejection rule."""
    ok = {"user_id": "cl-u-0", "ts": start + 5_000, "event": "view", "page": "/", "item_id": "a"}

    def bad(field: str | None, **changes: object) -> Entry:
        fields = {k: v for k, v in dict(ok, **changes).items() if v is not ...}
        return Entry(b"cl-u-0", orjson.dumps(fields), field=field)

    raw_ts = start + 5_000
    return [
        Entry(b"cl-u-1", b"", field=None),
        Entry(b"cl-u-1", b"{oops", field=None),
        Entry(None, b"[1, 2, 3]", field=None),
        Entry(
            b"cl-u-1",
            b'{"user_id": "cl-u-1", "ts": %d, "event": "view", "page": "/", '
            b'"amount": NaN}' % raw_ts,
            field=None,
        ),
        Entry(
            b"cl-u-1",
            b'{"user_id": "cl-u-1", "ts": %d, "event": "view", "page": "/\xff"}' % raw_ts,
            field=None,
        ),
        bad("user_id", user_id=...),
        bad("user_id", user_id=""),
        bad("user_id", user_id="u/1"),
        bad("user_id", user_id="u\x01"),
        bad("user_id", user_id="u" * 257),
        bad("user_id", user_id=7),
        bad("ts", ts=...),
        bad("ts", ts="yesterday"),
        bad("ts", ts=start + 0.5),
        bad("ts", ts=True),
        bad("ts", ts=-1),
        bad("ts", ts=253_402_300_800_000),
        bad("event", event=...),
        bad("event", event=None),
        bad("event", event="hover"),
        bad("page", page=...),
        bad("page", page=None),
        bad("page", page=""),
        bad("page", page="/" * 2_049),
        bad("page", page=["/"]),
        bad("item_id", item_id=""),
        bad("item_id", item_id="sku/1"),
        bad("item_id", item_id="s" * 257),
        bad("item_id", item_id="sku\x7f"),
        bad("item_id", item_id=17),
        bad("amount", amount=-0.01),
        bad("amount", amount="9.99"),
        bad("amount", amount=1e16),
        bad("amount", amount=False),
        bad("amount", event="purchase"),
        bad("amount", event="purchase", amount=None),
    ]


# --------------------------------------------------------------------------------------------
# Broker helpers


async def _topic_partitions(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """Partitions of each topic that exists (a metadata read that creates nothing)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        return {t: len(cluster.partitions_for_topic(t) or ()) for t in topics}
    finally:
        await consumer.stop()


def _wait_for_inputs(bootstrap: str, topics: list[str], workers: list[WorkerProcess]) -> None:
    """The workers create their input topics; producing first would let the broker create them
    with its own partition count."""
    deadline = time.monotonic() + 30
    found: dict[str, int] = {}
    while time.monotonic() < deadline:
        found = asyncio.run(_topic_partitions(bootstrap, topics))
        if all(count == PARTITIONS for count in found.values()):
            return
        time.sleep(1.0)
    tails = "\n".join(w.log_tail(30) for w in workers)
    raise AssertionError(f"input topics not created with {PARTITIONS} partitions: {found}\n{tails}")


async def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset of every partition of ``topic`` (-1 when none)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
        return {tp.partition: (meta.offset if meta else -1) for tp, meta in offsets.items()}
    finally:
        await admin.close()


def _wait_until_processed(
    bootstrap: str, group: str, topic: str, produced: list[Produced], workers: list
) -> None:
    """Every produced record of ``topic`` is processed and committed by the group (under
    exactly_once nothing before that offset is processed again)."""
    ends: dict[int, int] = defaultdict(int)
    for record in produced:
        ends[record.partition] = max(ends[record.partition], record.offset + 1)
    deadline = time.monotonic() + 60
    committed: dict[int, int] = {}
    while time.monotonic() < deadline:
        committed = asyncio.run(_committed(bootstrap, group, topic))
        if all(committed.get(p, -1) >= end for p, end in ends.items()):
            return
        time.sleep(0.5)
    tails = "\n---\n".join(w.log_tail(30) for w in workers)
    raise AssertionError(
        f"not processed: committed {committed}, produced up to {dict(ends)}\n{tails}"
    )


async def _produce(bootstrap: str, topic: str, entries: list[Entry]) -> list[Produced]:
    placed = await send(bootstrap, topic, ((e.key, e.value) for e in entries))
    return [Produced(e.key, e.value, p, o) for e, (p, o) in zip(entries, placed, strict=True)]


# --------------------------------------------------------------------------------------------
# Checks


def _assert_outputs(
    got: list[dict],
    want: dict,
    slot: Callable[[dict], object],
    key: Callable[[dict], bytes],
    compare,
) -> None:
    slots = Counter(slot(r) for r in got)
    repeated = [s for s, n in slots.items() if n > 1]
    assert not repeated, f"emitted more than once: {repeated[:5]}"
    missing, extra = set(want) - set(slots), set(slots) - set(want)
    assert not missing and not extra, (
        f"missing {sorted(missing)[:5]}, unexpected {sorted(extra)[:5]}"
    )
    for record in got:
        assert record["_key"] == key(record), record
        compare(record, want[slot(record)])


def _assert_late(got: list[dict], want: list[Late], topic: str) -> None:
    slots = Counter((r["pipeline"], r["source_partition"], r["source_offset"]) for r in got)
    repeated = [slot for slot, n in slots.items() if n > 1]
    assert not repeated, f"late record repeated: {repeated}"
    expected = {late.slot: late for late in want}
    assert sorted(slots) == sorted(expected), (
        sorted(set(slots) - set(expected)),
        sorted(set(expected) - set(slots)),
    )
    for record in got:
        late = expected[(record["pipeline"], record["source_partition"], record["source_offset"])]
        assert record["_key"] == late.key.encode(), record
        assert_late_record(record, late, "user_id", topic)


def _assert_dlq(got: list[dict], want: list[Rejected], topic: str, fields: dict) -> None:
    slots = Counter((r["source_partition"], r["source_offset"]) for r in got)
    assert all(n == 1 for n in slots.values()), f"dead letter repeated: {slots}"
    expected = {(r.record.partition, r.record.offset): r for r in want}
    assert sorted(slots) == sorted(expected), (sorted(slots), sorted(expected))
    for record in got:
        rejected = expected[(record["source_partition"], record["source_offset"])]
        assert record["pipeline"] == CLICKS_GROUP, record
        assert record["source_topic"] == topic, record
        assert base64.b64decode(record["value_b64"]) == rejected.record.value, record
        if rejected.record.key is None:
            assert record["key_b64"] is None, record
        else:
            assert base64.b64decode(record["key_b64"]) == rejected.record.key, record
        field = fields[(rejected.record.partition, rejected.record.offset)]
        assert field == rejected.field, (field, rejected)  # the test and its oracle agree
        assert isinstance(record["error"], str) and record["error"], record
        if field is not None:
            assert field in record["error"], (field, record["error"])


def _assert_intent(want: ClicksExpected, rejected_planned: int, start: int) -> None:
    """The data really holds what the test means to exercise."""
    assert want.partially_late == [], "a hopping event partly late on its partition: change SEED"
    late_sessions = want.late_for(SESSIONS)
    late_pages = want.late_for(PAGE_STATS)
    late_items = want.late_for(ITEM_ACTIVITY)
    assert len(late_sessions) >= 3 and len(late_pages) >= 12 and len(late_items) >= 6
    assert any(x.stream_time == x.ts + GAP + GRACE_MS for x in late_sessions)
    assert all(x.window_start == x.window_end == x.ts for x in late_sessions)
    assert any(x.stream_time == x.window_end + GRACE_MS for x in late_pages)
    assert any(x.stream_time == x.window_end + 4 * MINUTE + GRACE_MS for x in late_items)
    session_late = {(x.partition, x.offset) for x in late_sessions}
    assert len([x for x in late_pages if (x.partition, x.offset) not in session_late]) >= 5

    sessions: dict[str, list[dict]] = defaultdict(list)
    for session in want.sessions.values():
        sessions[session["user_id"]].append(session)
    assert len(want.sessions) >= 300 and len(want.open_sessions) == PARTITIONS  # the closers
    assert len(sessions["cl-edge-gap"]) == 2 and len(sessions["cl-edge-gap-in"]) == 1
    (bridged,) = sessions["cl-edge-bridge"]
    assert bridged["events"] == 3 and bridged["items_viewed"] == ["sku-10", "sku-11", "sku-12"]
    (capped,) = sessions["cl-edge-cap"]
    assert len(capped["items_viewed"]) == 50 and capped["views"] == 64
    (revenue,) = sessions["cl-edge-rev"]
    assert revenue["purchases"] == 4 and abs(revenue["revenue"] - 12.8) < 1e-9
    assert sum(len(v) > 1 for k, v in sessions.items() if k.startswith("cl-u-")) >= 30
    assert len([s for s in want.sessions.values() if len(s["items_viewed"]) >= 2]) >= 40

    sale_minute = start + 70 * MINUTE
    assert want.page_stats[("/sale", sale_minute)]["unique_users"] >= 150
    assert len(want.page_stats) >= 500
    assert len(want.trending) >= 150
    assert any(len(t["items"]) == TRENDING_TOP for t in want.trending.values())
    ties = [
        t
        for t in want.trending.values()
        if any(a["score"] == b["score"] for a, b in zip(t["items"], t["items"][1:], strict=False))
    ]
    assert len(ties) >= 10
    quiet_windows = {s for (item, s) in want.item_activity if item == "sku-quiet"}
    assert len(quiet_windows) == 5 and not quiet_windows & set(want.trending)
    assert want.dlq_count == rejected_planned


def test_click_outputs_equal_the_oracle_with_two_workers_and_a_crash(
    kafka_bootstrap, make_worker, event_clock
):
    prefix = f"cl-{uuid.uuid4().hex[:6]}."
    topic = f"{prefix}{CLICKS_TOPIC}"
    env = {
        "FAUSTAPP_TOPIC_PREFIX": prefix,
        "FAUSTAPP_PIPELINES": PIPELINES,
        "FAUSTAPP_GRACE_MS": str(GRACE_MS),
        "FAUSTAPP_PARTITIONS": str(PARTITIONS),
        "FAUSTAPP_PROCESSING_GUARANTEE": "exactly_once",
        "FAUSTAPP_SESSION_TIMEOUT_MS": "6000",
    }
    first = make_worker(**env).start()
    second = make_worker(app_id=first.app_id, **env).start()
    first.wait_ready(timeout=90)
    second.wait_ready(timeout=90)
    _wait_for_inputs(kafka_bootstrap, [topic], [first, second])

    start = event_clock.allocate(minutes=CLOSE_MINUTE + 10)
    clicks = _clicks(start, random.Random(SEED))
    planned_fields: dict[tuple[int, int], str | None] = {}
    produced: list[Produced] = []

    def produce(entries: list[Entry]) -> None:
        records = asyncio.run(_produce(kafka_bootstrap, topic, entries))
        for entry, record in zip(entries, records, strict=True):
            if entry.partition is not None:  # keyed by its own user: its home partition
                assert record.partition == entry.partition, (entry, record)
            else:
                planned_fields[(record.partition, record.offset)] = entry.field
        produced.extend(records)

    produce(clicks[: len(clicks) // 2])
    time.sleep(1.0)
    second.kill()  # a crash mid-stream: its partitions move to the first worker, then back
    data_dir, log_path = second.data_dir, second.log_path
    second = make_worker(app_id=first.app_id, **env)
    second.data_dir, second.log_path = data_dir, log_path
    second.start()
    produce(clicks[len(clicks) // 2 :])
    second.wait_ready(timeout=90)

    # Close everything: one record on every partition well past the last window + grace.
    end = start + CLOSE_MINUTE * MINUTE
    closers = key_per_partition("cl-closer", PARTITIONS).values()
    produce([_valid(Click(user, end, "view", "/closer")) for user in closers])

    want = expected_clicks(produced, GRACE_MS, PARTITIONS)
    _assert_intent(want, len(planned_fields), start)

    deadline = time.monotonic() + OUTPUT_BUDGET_S

    def wait(name: str, expected: int) -> list:
        remaining = max(deadline - time.monotonic(), 5.0)
        return asyncio.run(
            wait_for_records(
                kafka_bootstrap, f"{prefix}{name}", lambda r: True, expected, remaining
            )
        )

    late_pipelines = (SESSIONS, PAGE_STATS, ITEM_ACTIVITY)
    want_late = [x for x in want.late if x.pipeline in late_pipelines]
    try:
        got_sessions = wait(SESSIONS, len(want.sessions))
        got_pages = wait(PAGE_STATS, len(want.page_stats))
        got_trending = wait(TRENDING, len(want.trending))
        got_late = wait("faustapp-late", len(want_late))
        got_dlq = wait("faustapp-dlq", want.dlq_count)
    except TimeoutError as exc:
        tails = "\n---\n".join(w.log_tail(40) for w in (first, second))
        raise AssertionError(f"{exc}\n{tails}") from None

    _assert_outputs(
        got_sessions,
        want.sessions,
        session_slot,
        lambda r: r["user_id"].encode(),
        assert_same_session,
    )
    _assert_outputs(
        got_pages,
        want.page_stats,
        lambda r: (r["page"], r["window_start"]),
        lambda r: r["page"].encode(),
        assert_same_page_stats,
    )
    _assert_outputs(
        got_trending,
        want.trending,
        lambda r: r["window_start"],
        lambda r: TRENDING_KEY.encode(),
        assert_same_trending,
    )
    assert {r["pipeline"] for r in got_late} <= set(late_pipelines), got_late
    _assert_late(got_late, want_late, topic)
    _assert_dlq(got_dlq, want.rejected, topic, planned_fields)

    # Nothing went to the outputs of pipelines not selected; both workers are still healthy.
    for name in (ITEM_ACTIVITY, "sensor-stats-1m", "trade-candles-1m"):
        assert asyncio.run(read_topic(kafka_bootstrap, f"{prefix}{name}")) == []
    assert first.health()[0] == 200 and second.health()[0] == 200


# --------------------------------------------------------------------------------------------
# category-sales-1m: purchases joined with the products catalogue

CATEGORIES = ("books", "music", "garden", "toys", "games")
SETTLE_S = 5.0  # long enough for every worker's copy of the catalogue to see a change


def _product(item: str, category: str) -> tuple[bytes, bytes]:
    value = {"item_id": item, "category": category, "name": f"Name of {item}", "price": 9.5}
    return item.encode(), orjson.dumps(value)


def _purchases(
    start: int, minutes: range, catalogue: dict[str, str], rng: random.Random
) -> list[tuple[Entry, str | None]]:
    """Purchases (and views around them) of 32 users in ``minutes``, disordered, each with the
    category it must count under given ``catalogue`` (item -> category)."""
    users = [f"cs-u-{n}" for n in range(32)]
    items = [f"sku-{n}" for n in range(1, 36)]  # sku-31 and up are not in the first catalogue
    timed: list[tuple[float, Entry, str | None]] = []
    for user in users:
        ts = start + minutes.start * MINUTE + rng.randint(0, 20_000)
        while ts < start + minutes.stop * MINUTE:
            kind = rng.choice(("purchase", "purchase", "view", "add_to_cart"))
            item = rng.choice(items) if rng.random() < 0.93 else None
            amount = (
                rng.choice((0.0, round(rng.uniform(1, 400), 2))) if kind == "purchase" else None
            )
            click = Click(user, ts, kind, f"/p/{item}" if item else "/checkout", item, amount)
            category = catalogue.get(item, UNKNOWN_CATEGORY) if item else UNKNOWN_CATEGORY
            if kind != "purchase":
                category = None
            timed.append((ts + rng.uniform(0, DISORDER_MS), _valid(click, nulls=True), category))
            ts += rng.randint(3_000, 25_000)
    timed.sort(key=lambda t: t[0])
    return [(entry, category) for _, entry, category in timed]


def _late_purchases(
    entries: list[tuple[Entry, str]], rng: random.Random
) -> list[tuple[Entry, str]]:
    """``entries`` with purchases and views later than the grace for their minute put in."""
    running: dict[int, int] = defaultdict(lambda: -1)
    out: list[tuple[Entry, str | None]] = []
    late_at = set(rng.sample(range(len(entries) // 4, len(entries)), 12))
    for index, (entry, category) in enumerate(entries):
        if index in late_at and running[entry.partition] > 0:
            stream = running[entry.partition]
            user = entry.key.decode()
            ts = stream - GRACE_MS - MINUTE - rng.randint(0, 40_000)
            kind = "purchase" if index % 3 else "view"  # a late view is late for nothing here
            amount = 5.0 if kind == "purchase" else None
            late = Click(user, ts, kind, "/late", "sku-1", amount)
            out.append((_valid(late), "late" if kind == "purchase" else None))
        out.append((entry, category))
        running[entry.partition] = max(running[entry.partition], entry.ts)  # type: ignore[arg-type]
    return out


def test_category_sales_equal_the_oracle_across_catalogue_changes_and_a_crash(
    kafka_bootstrap, make_worker, event_clock
):
    prefix = f"cs-{uuid.uuid4().hex[:6]}."
    topic = f"{prefix}{CLICKS_TOPIC}"
    products = f"{prefix}{PRODUCTS_TOPIC}"
    env = {
        "FAUSTAPP_TOPIC_PREFIX": prefix,
        "FAUSTAPP_PIPELINES": CATEGORY_SALES,
        "FAUSTAPP_GRACE_MS": str(GRACE_MS),
        "FAUSTAPP_PARTITIONS": str(PARTITIONS),
        "FAUSTAPP_PROCESSING_GUARANTEE": "exactly_once",
        "FAUSTAPP_SESSION_TIMEOUT_MS": "6000",
    }
    rng = random.Random(SEED + 1)
    catalogue = {f"sku-{n}": CATEGORIES[n % len(CATEGORIES)] for n in range(1, 31)}
    first = make_worker(**env).start()
    second = make_worker(app_id=first.app_id, **env).start()
    first.wait_ready(timeout=90)
    second.wait_ready(timeout=90)
    _wait_for_inputs(kafka_bootstrap, [topic, products], [first, second])
    # The workers created the compacted catalogue topic; every worker reads it whole, and
    # purchases wait until both have seen it.
    asyncio.run(send(kafka_bootstrap, products, [_product(i, c) for i, c in catalogue.items()]))
    time.sleep(SETTLE_S)

    start = event_clock.allocate(minutes=20)
    categories: dict[tuple[int, int], str] = {}
    planned_fields: dict[tuple[int, int], str | None] = {}
    produced: list[Produced] = []

    def produce(entries: list[tuple[Entry, str | None]]) -> None:
        records = asyncio.run(_produce(kafka_bootstrap, topic, [e for e, _ in entries]))
        for (entry, category), record in zip(entries, records, strict=True):
            if entry.partition is not None:
                assert record.partition == entry.partition, (entry, record)
                if category is not None:
                    categories[(record.partition, record.offset)] = category
            else:
                planned_fields[(record.partition, record.offset)] = entry.field
        produced.extend(records)

    no_amount = {"user_id": "cs-u-0", "ts": start, "event": "purchase", "page": "/"}
    bad: list[tuple[Entry, str | None]] = [
        (Entry(b"cs-u-0", orjson.dumps(no_amount), field="amount"), None),
        (Entry(b"cs-u-0", b"{oops", field=None), None),
    ]
    before = _late_purchases(_purchases(start, range(0, 5), catalogue, rng), rng)
    before = [*before[:40], *bad, *before[40:]]
    produce(before[: len(before) // 2])
    time.sleep(1.0)
    second.kill()  # a crash mid-stream, while the first catalogue holds
    data_dir, log_path = second.data_dir, second.log_path
    second = make_worker(app_id=first.app_id, **env)
    second.data_dir, second.log_path = data_dir, log_path
    second.start()
    produce(before[len(before) // 2 :])
    second.wait_ready(timeout=90)
    # Lookups happen when an event is processed: every purchase so far must be processed (and
    # committed, so never processed again) before the catalogue changes.
    _wait_until_processed(kafka_bootstrap, first.app_id, topic, produced, [first, second])

    # sku-3 moves to another shelf, sku-2 is withdrawn, sku-31 is listed.
    changed = dict(catalogue, **{"sku-3": "classics", "sku-31": "toys"})
    del changed["sku-2"]
    updates = [_product("sku-3", "classics"), (b"sku-2", None), _product("sku-31", "toys")]
    asyncio.run(send(kafka_bootstrap, products, updates))
    time.sleep(SETTLE_S)
    produce(_late_purchases(_purchases(start, range(5, 10), changed, rng), rng))

    end = start + 12 * MINUTE
    closers = key_per_partition("cs-closer", PARTITIONS).values()
    produce([(_valid(Click(user, end, "view", "/closer")), None) for user in closers])

    def category_of(seen) -> str:
        category = categories[(seen.record.partition, seen.record.offset)]
        assert category != "late", seen  # the test meant it late, the oracle counts it
        return category

    want = expected_clicks(produced, GRACE_MS, PARTITIONS, category_of=category_of)
    late = want.late_for(CATEGORY_SALES)
    assert len(late) >= 6 and want.dlq_count == len(planned_fields) == 2
    assert {c for c, _ in want.category_sales} == {*CATEGORIES, "classics", UNKNOWN_CATEGORY}
    counted = Counter(categories.values())  # the purchases, by the category they count under
    assert counted["classics"] >= 3 and counted[UNKNOWN_CATEGORY] >= 10
    assert len(want.category_sales) >= 50

    try:
        got = asyncio.run(
            wait_for_records(
                kafka_bootstrap,
                f"{prefix}{CATEGORY_SALES}",
                lambda r: True,
                len(want.category_sales),
                OUTPUT_BUDGET_S,
            )
        )
        got_late = asyncio.run(
            wait_for_records(kafka_bootstrap, f"{prefix}faustapp-late", lambda r: True, len(late))
        )
        got_dlq = asyncio.run(
            wait_for_records(kafka_bootstrap, f"{prefix}faustapp-dlq", lambda r: True, 2)
        )
    except TimeoutError as exc:
        tails = "\n---\n".join(w.log_tail(40) for w in (first, second))
        raise AssertionError(f"{exc}\n{tails}") from None

    _assert_outputs(
        got,
        want.category_sales,
        lambda r: (r["category"], r["window_start"]),
        lambda r: r["category"].encode(),
        assert_same_category_sales,
    )
    assert {r["pipeline"] for r in got_late} == {CATEGORY_SALES}, got_late
    _assert_late(got_late, late, topic)
    _assert_dlq(got_dlq, want.rejected, topic, planned_fields)
    assert first.health()[0] == 200 and second.health()[0] == 200


# --------------------------------------------------------------------------------------------
# co-views and its views: also-viewed and recommendations

BROWSED = [f"sku-{n}" for n in range(1, 16)]


def _browsing(start: int, rng: random.Random) -> list[Entry]:
    """40 users in sessions of views (and other events) over 15 items, 31-50 minutes apart, a
    few hand-made users, late views, and two malformed records, in the order to produce them."""
    users = [f"cv-u-{n}" for n in range(40)]
    timed: list[tuple[float, Entry]] = []

    def add(click: Click) -> None:
        timed.append((click.ts + rng.uniform(0, DISORDER_MS), _valid(click, nulls=True)))

    for user in users:
        ts = start + rng.randint(0, 10 * MINUTE)
        for _ in range(rng.randint(2, 4)):
            for _ in range(rng.randint(1, 8)):
                kind = rng.choices(("view", "click", "add_to_cart"), (75, 15, 10))[0]
                item = rng.choice(BROWSED[: rng.choice((5, 15))]) if rng.random() < 0.9 else None
                add(Click(user, ts, kind, f"/p/{item}" if item else "/", item))
                ts += rng.randint(1_000, 4 * MINUTE)
            ts += rng.randint(31 * MINUTE, 50 * MINUTE)
    e = start + 30 * MINUTE
    # The last session without an item view: recommendations based on nothing.
    add(Click("cv-edge-noitems", e, "view", "/p/sku-1", "sku-1"))
    add(Click("cv-edge-noitems", e + 1_000, "view", "/p/sku-2", "sku-2"))
    add(Click("cv-edge-noitems", e + 40 * MINUTE, "click", "/p/sku-3", "sku-3"))
    add(Click("cv-edge-noitems", e + 41 * MINUTE, "view", "/"))
    # An item only ever viewed alone: never co-viewed.
    add(Click("cv-edge-lonely", e, "view", "/p/sku-lonely", "sku-lonely"))
    add(Click("cv-edge-lonely", e + 5_000, "view", "/p/sku-lonely", "sku-lonely"))
    ordered = _arrival_order(timed)

    late_at = set(rng.sample(range(len(ordered) // 4, len(ordered)), 8))

    def insert(index: int, running: dict[int, int]) -> list[Entry]:
        if index not in late_at:
            return []
        user = rng.choice(users)
        ts = running[partition_of(user, PARTITIONS)] - 2 * GAP - GRACE_MS - rng.randint(0, MINUTE)
        return [_valid(Click(user, ts, "view", "/p/sku-late", "sku-late"))]

    bad = [
        Entry(b"cv-u-0", b"{oops", field=None),
        Entry(b"cv-u-0", Click("cv-u-0", start, "view", "").encode(), field="page"),
    ]
    return _spread(bad, _weave(ordered, insert), rng)


def _answers(workers: list[WorkerProcess], paths: list[str]) -> dict[str, tuple[int, dict]]:
    """Status and body of every path, asked of the workers in turn (each proxies or gathers
    what it does not own)."""
    out = {}
    for n, path in enumerate(paths):
        worker = workers[n % len(workers)]
        try:
            status, body, _ = http_get(f"{worker.url}{path}", timeout=10)
        except OSError as exc:  # kept, and reported if it lasts
            status, body = 0, {"error": f"{worker.url}: {exc!r}"}
        out[path] = (status, body)
    return out


def test_co_views_and_recommendations_equal_the_oracle_with_two_workers_and_a_crash(
    kafka_bootstrap, make_worker, event_clock
):
    prefix = f"cv-{uuid.uuid4().hex[:6]}."
    topic = f"{prefix}{CLICKS_TOPIC}"
    env = {
        "FAUSTAPP_TOPIC_PREFIX": prefix,
        "FAUSTAPP_PIPELINES": CO_VIEWS,  # runs user-sessions, which feeds it, with it
        "FAUSTAPP_GRACE_MS": str(GRACE_MS),
        "FAUSTAPP_PARTITIONS": str(PARTITIONS),
        "FAUSTAPP_PROCESSING_GUARANTEE": "exactly_once",
        "FAUSTAPP_SESSION_TIMEOUT_MS": "6000",
    }
    first = make_worker(**env).start()
    second = make_worker(app_id=first.app_id, **env).start()
    first.wait_ready(timeout=90)
    second.wait_ready(timeout=90)
    _wait_for_inputs(kafka_bootstrap, [topic], [first, second])

    start = event_clock.allocate(minutes=CLOSE_MINUTE + 10)
    clicks = _browsing(start, random.Random(SEED + 2))
    planned_fields: dict[tuple[int, int], str | None] = {}
    produced: list[Produced] = []

    def produce(entries: list[Entry]) -> None:
        records = asyncio.run(_produce(kafka_bootstrap, topic, entries))
        for entry, record in zip(entries, records, strict=True):
            if entry.partition is not None:
                assert record.partition == entry.partition, (entry, record)
            else:
                planned_fields[(record.partition, record.offset)] = entry.field
        produced.extend(records)

    produce(clicks[: len(clicks) // 2])
    time.sleep(1.0)
    second.kill()  # a crash mid-stream
    data_dir, log_path = second.data_dir, second.log_path
    second = make_worker(app_id=first.app_id, **env)
    second.data_dir, second.log_path = data_dir, log_path
    second.start()
    produce(clicks[len(clicks) // 2 :])
    second.wait_ready(timeout=90)
    end = start + CLOSE_MINUTE * MINUTE
    closers = list(key_per_partition("cv-closer", PARTITIONS).values())
    produce([_valid(Click(user, end, "view", "/closer", "sku-1")) for user in closers])

    want = expected_clicks(produced, GRACE_MS, PARTITIONS)
    sessions = list(want.sessions.values())
    co = co_view_matrix(sessions)
    users = sorted({s["user_id"] for s in sessions})
    assert len(sessions) >= 100 and len(want.late_for(SESSIONS)) >= 6
    assert want.dlq_count == len(planned_fields) == 2
    assert len(co) == len(BROWSED) and "sku-lonely" not in co and "sku-late" not in co
    assert recommendations(sessions, co, "cv-edge-noitems")[1]["based_on"] == []

    deadline = time.monotonic() + OUTPUT_BUDGET_S
    try:
        got_sessions = asyncio.run(
            wait_for_records(
                kafka_bootstrap, f"{prefix}{SESSIONS}", lambda r: True, len(sessions), 90
            )
        )
        got_late = asyncio.run(
            wait_for_records(
                kafka_bootstrap,
                f"{prefix}faustapp-late",
                lambda r: True,
                len(want.late_for(SESSIONS)),
            )
        )
        got_dlq = asyncio.run(
            wait_for_records(kafka_bootstrap, f"{prefix}faustapp-dlq", lambda r: True, 2)
        )
    except TimeoutError as exc:
        tails = "\n---\n".join(w.log_tail(40) for w in (first, second))
        raise AssertionError(f"{exc}\n{tails}") from None
    _assert_outputs(
        got_sessions,
        want.sessions,
        session_slot,
        lambda r: r["user_id"].encode(),
        assert_same_session,
    )
    assert {r["pipeline"] for r in got_late} == {SESSIONS}, got_late
    _assert_late(got_late, want.late_for(SESSIONS), topic)
    _assert_dlq(got_dlq, want.rejected, topic, planned_fields)

    # The views, from either worker, once the chained table has taken every final session.
    items = [*BROWSED, "sku-lonely", "sku-late", "sku-never"]
    expected: dict[str, tuple[int, dict | None]] = {}
    for item in items:
        for n in (None, "1", "3", "100"):
            query = "" if n is None else f"?n={n}"
            expected[f"/api/items/{item}/also-viewed{query}"] = also_viewed(co, item, n)
    for user in [*users, closers[0], "cv-nobody"]:
        for n in (None, "2", "100"):
            query = "" if n is None else f"?n={n}"
            expected[f"/api/users/{user}/recommendations{query}"] = recommendations(
                sessions, co, user, n
            )
    assert {status for status, _ in expected.values()} == {200, 404}
    paths = sorted(expected)
    mismatched: list[str] = paths
    got: dict[str, tuple[int, dict]] = {}
    while mismatched and time.monotonic() < deadline:
        got.update(_answers([first, second], mismatched))
        mismatched = [
            p
            for p in mismatched
            if got[p][0] != expected[p][0] or (expected[p][1] and got[p][1] != expected[p][1])
        ]
        if mismatched:
            time.sleep(1.0)
    if mismatched:
        tails = "\n---\n".join(f"alive={w.alive()}\n{w.log_tail(40)}" for w in (first, second))
        path = mismatched[0]
        example = f"{path}: {got[path]} != {expected[path]}"
        raise AssertionError(f"{len(mismatched)} answers differ, e.g. {example}\n{tails}")
    for path in paths:
        status, body = got[path]
        want_status, want_body = expected[path]
        assert status == want_status, (path, status, body, want_status, want_body)
        if want_body is not None:
            assert body == want_body, (path, body, want_body)
        else:
            assert isinstance(body, dict) and body.get("error"), (path, body)

    # Bad n: 400 whatever the item or user; every answer JSON.
    for path in ("/api/items/sku-1/also-viewed", "/api/users/cv-u-1/recommendations"):
        for n in ("0", "101", "-1", "abc", "2.5", ""):
            for worker in (first, second):
                status, body, _ = http_get(f"{worker.url}{path}?n={n}")
                assert status == 400 and body.get("error"), (path, n, status, body)
    status, body, _ = http_get(f"{second.url}/api/items/sku-never/also-viewed?n=0")
    assert status == 400, (status, body)
    assert first.health()[0] == 200 and second.health()[0] == 200
