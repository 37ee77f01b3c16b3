"""The trade and log pipelines against their oracles on the real broker: two workers under
exactly_once, a ``kill -9`` in the middle, disordered, late and malformed input.

Every record is keyed by its own symbol or service, so it is processed on the partition it was
produced to, in the order of that partition's log: the oracles replay exactly that order.
"""

from __future__ import annotations

import asyncio
import base64
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from support.logs_oracle import (
    LOG_ALERTS,
    LOG_STATS,
    LOGS_GROUP,
    LOGS_TOPIC,
    LogEvent,
    LogsExpected,
    assert_same_log_alert,
    assert_same_log_stats,
    expected_logs,
)
from support.sensors import key_per_partition, partition_of, read_topic, send, wait_for_records
from support.trades_oracle import (
    ALERTS,
    CANDLES,
    MINUTE,
    TRADES_GROUP,
    TRADES_TOPIC,
    Late,
    Produced,
    Rejected,
    Trade,
    TradesExpected,
    assert_late_record,
    assert_same_candle,
    assert_same_trade_alerts,
    expected_trades,
)
from support.workers import WorkerProcess

pytestmark = pytest.mark.integration

PARTITIONS = 4
GRACE_MS = 4_000
DISORDER_MS = GRACE_MS - 1_000  # in-order enough: nothing late but what is made late
MINUTES = 6
PIPELINES = "trade-candles-1m,trade-alerts,log-stats-1m,log-alerts"
SEED = 20_241_124
OUTPUT_BUDGET_S = 120.0  # from the closing records until every output must be complete


@dataclass(frozen=True)
class Entry:
    """One record to produce; ``ts`` and ``partition`` only for valid ones."""

    key: bytes
    value: bytes
    ts: int | None = None
    partition: int | None = None
    field: str | None = None  # for a malformed one: the field its error must name


def _valid(key: str, ts: int, value: bytes) -> Entry:
    return Entry(key.encode(), value, ts, partition_of(key, PARTITIONS))


def _arrival_order(timed: list[tuple[float, Entry]]) -> list[Entry]:
    """Sort by arrival time; equal arrivals keep the order they were planned in."""
    return [entry for _, _, entry in sorted((t, i, e) for i, (t, e) in enumerate(timed))]


def _weave(
    ordered: list[Entry], insert: Callable[[int, dict[int, int]], list[Entry]]
) -> list[Entry]:
    """``ordered`` with ``insert(index, stream_times)`` put before each entry, where
    ``stream_times`` is every partition's largest valid event time so far."""
    running: dict[int, int] = defaultdict(lambda: -1)
    out: list[Entry] = []
    for index, entry in enumerate(ordered):
        for extra in insert(index, running):
            out.append(extra)
            if extra.ts is not None:
                running[extra.partition] = max(running[extra.partition], extra.ts)
        out.append(entry)
        if entry.ts is not None:
            running[entry.partition] = max(running[entry.partition], entry.ts)
    return out


def _boundary_minute(running: dict[int, int], partition: int, after: int) -> int | None:
    """A minute M such that the partition's stream time is in [M + disorder + 1, M + grace]:
    an event at M + grace then makes stream time exactly M + grace, and nothing produced
    later (at most ``DISORDER_MS`` behind stream time) becomes late by it."""
    stream = running[partition]
    minute = stream - stream % MINUTE
    if minute >= after and DISORDER_MS < stream - minute <= GRACE_MS:
        return minute
    return None


def _spread(values: list[Entry], ordered: list[Entry], rng: random.Random) -> list[Entry]:
    """``ordered`` with each of ``values`` put at a random place."""
    out = list(ordered)
    for entry in values:
        out.insert(rng.randrange(len(out) + 1), entry)
    return out


# --------------------------------------------------------------------------------------------
# Trades


def _trades(start: int, rng: random.Random) -> list[Entry]:
    """Disordered trades of 12 symbols over ``MINUTES`` minutes with spikes, hand-made edges,
    late trades and malformed records, in the order to produce them."""
    symbols = [f"tl-sym-{i}" for i in range(12)]
    base = {symbol: rng.uniform(20, 500) for symbol in symbols}
    timed: list[tuple[float, Entry]] = []
    for symbol in symbols:
        ts = start + rng.randint(0, 2_000)
        while ts < start + MINUTES * MINUTE:
            base[symbol] *= 1 + rng.uniform(-0.001, 0.001)
            price = base[symbol] * (1 + rng.uniform(-0.008, 0.008))
            if rng.random() < 0.012:  # a spike the 60 s VWAP alert flags
                price *= 1 + rng.choice((-1, 1)) * rng.uniform(0.05, 0.1)
            qty = rng.choice((rng.randint(1, 500), rng.randint(1, 40) / 4))
            side = rng.choice(("buy", "sell", None, None))
            trade = Trade(symbol, ts, round(price, 2), qty, side)
            value = trade.encode(iso_ts=rng.random() < 0.03, null_side=rng.random() < 0.5)
            timed.append((ts + rng.uniform(0, DISORDER_MS), _valid(symbol, ts, value)))
            ts += rng.randint(1_500, 2_500)

    # Hand-made edges at minute 2, arriving in event-time order (ties in the order listed).
    edge = start + 2 * MINUTE
    slide = [(1_000 + d, 100.0) for d in (10_000, 20_000, 30_000)]
    slide += [(61_000, 110.0), (61_001, 100.0)]
    crafted = {
        # equal timestamps: open is the first of the earliest, close the last of the latest
        "tl-edge-tie": [(1_000, 10.0), (1_000, 20.0), (2_000, 15.0), (50_000, 30.0)]
        + [(50_000, 40.0)],
        # exactly 3 % above / below a VWAP of 100: no alert; then 104 at 6 trades: an alert
        "tl-edge-up": [(1_000 + i * 1_000, 99.25) for i in range(4)]
        + [(5_000, 103.0), (6_000, 104.0)],
        "tl-edge-down": [(1_000 + i * 1_000, 100.75) for i in range(4)] + [(5_000, 97.0)],
        # [t - 60 s, t] holds its lower bound: 5 trades and an alert for 110 at 61000 ...
        "tl-edge-slide": [(1_000, 100.0), *slide],
        # ... and one millisecond earlier only 4: no alert
        "tl-edge-slide-out": [(999, 100.0), *slide],
        # equal timestamps share a window whatever their order: the first one alerts
        "tl-edge-eq": [(30_000, 110.0)] + [(30_000, 100.0)] * 4,
    }
    for symbol, trades in crafted.items():
        for offset, price in trades:
            trade = Trade(symbol, edge + offset, price, 1.0, None)
            timed.append((edge + offset, _valid(symbol, edge + offset, trade.encode())))
    for i, side in enumerate(("buy", None, "sell", None)):  # sides and no side
        trade = Trade("tl-edge-sides", edge + 10_000 + i, 50.0, 2.5 * (i + 1), side)
        timed.append((trade.ts, _valid(trade.symbol, trade.ts, trade.encode(null_side=i == 3))))
    ordered = _arrival_order(timed)

    late_at = set(rng.sample(range(len(ordered) // 5, len(ordered)), 14))
    boundary_done = False

    def insert(index: int, running: dict[int, int]) -> list[Entry]:
        nonlocal boundary_done
        out: list[Entry] = []
        if not boundary_done:
            for symbol in symbols:
                m = _boundary_minute(running, partition_of(symbol, PARTITIONS), start + 3 * MINUTE)
                if m is not None:
                    # stream time exactly M + grace; then M - 1 (late for both, the candle at
                    # its boundary), M (late for the alert only, at its boundary), M + 1 (not)
                    for ts in (m + GRACE_MS, m - 1, m, m + 1):
                        trade = Trade(symbol, ts, round(base[symbol], 2), 7.0, "buy")
                        out.append(_valid(symbol, ts, trade.encode()))
                    boundary_done = True
                    break
        if index in late_at:
            late_at.discard(index)
            symbol = rng.choice(symbols)
            stream = running[partition_of(symbol, PARTITIONS)]
            if len(late_at) % 2:  # in a minute long final
                ts = stream - GRACE_MS - MINUTE - rng.randint(0, 20_000)
            else:  # behind by more than the grace, its minute maybe still open
                ts = stream - GRACE_MS - rng.randint(0, 800)
            trade = Trade(symbol, ts, round(base[symbol] * 1.2, 2), 1.0, "sell")
            out.append(_valid(symbol, ts, trade.encode()))
        return out

    woven = _weave(ordered, insert)
    assert boundary_done, "no place for the boundary case: change SEED"
    return _spread(_bad_trades(start), woven, rng)


def _bad_trades(start: int) -> list[Entry]:
    ok = {"symbol": "tl-sym-0", "ts": start + 5_000, "price": 10.5, "qty": 2}

    def bad(field: str | None, **changes: object) -> Entry:
        fields = {k: v for k, v in dict(ok, **changes).items() if v is not ...}
        return Entry(b"tl-sym-0", orjson.dumps(fields), field=field)

    return [
        Entry(b"tl-sym-1", b"not json{", field=None),
        Entry(b"tl-sym-1", b"[1, 2, 3]", field=None),
        bad("price", price=...),
        bad("symbol", symbol="tl/bad"),
        bad("symbol", symbol=""),
        bad("symbol", symbol="s" * 257),
        bad("price", price=0),
        bad("price", price=-3.5),
        bad("price", price="10.5"),
        bad("price", price=1e16),
        bad("side", side="hold"),
        bad("qty", qty=0),
        bad("ts", ts="not a time"),
        bad("ts", ts=...),
    ]


# --------------------------------------------------------------------------------------------
# Logs

MESSAGES = ["payment timeout", "db pool exhausted", "upstream 502", "card declined", "oom", "nil"]


def _logs(start: int, rng: random.Random) -> list[Entry]:
    """Disordered log events of 10 services over ``MINUTES`` minutes with error bursts,
    hand-made edges, late events and malformed records, in the order to produce them."""
    services = [f"tl-svc-{i}" for i in range(10)]
    timed: list[tuple[float, Entry]] = []
    for n, service in enumerate(services):
        ts = start + rng.randint(0, 1_000)
        incident: dict[int, bool] = {}
        while ts < start + MINUTES * MINUTE:
            minute = (ts - start) // MINUTE
            if minute not in incident:
                incident[minute] = rng.random() < 0.3
            roll = rng.random()
            error_share = 0.25 if incident[minute] else 0.03
            if roll < error_share:
                level = rng.choice(("ERROR", "ERROR", "FATAL"))
                message = rng.choices(MESSAGES, weights=(5, 3, 3, 2, 1, 1))[0]
            else:
                level = rng.choices(("WARN", "DEBUG", "INFO"), weights=(8, 10, 80))[0]
                message = rng.choice(("ok", "slow request", "cache miss", ""))
            latency = round(rng.lognormvariate(4, 0.8), 1) if n < 8 and rng.random() < 0.8 else None
            status = None
            if rng.random() < 0.5:
                status = rng.choice((500, 503, 504)) if level in ("ERROR", "FATAL") else 200
            host = f"web-{rng.randint(1, 4)}" if rng.random() < 0.5 else None
            event = LogEvent(service, ts, level, message, latency, status, host)
            value = event.encode(iso_ts=rng.random() < 0.03, nulls=rng.random() < 0.2)
            timed.append((ts + rng.uniform(0, DISORDER_MS), _valid(service, ts, value)))
            ts += rng.randint(400, 1_600)

    # Hand-made windows at minute 3: alert thresholds, top errors, no latency, field bounds.
    edge = start + 3 * MINUTE

    def window(service: str, levels: list[tuple[str, str]], **fields: object) -> None:
        for i, (level, message) in enumerate(levels):
            event = LogEvent(service, edge + 1_000 + i * 1_000, level, message, **fields)
            timed.append((event.ts, _valid(service, event.ts, event.encode(nulls=i % 2 == 0))))

    window("tl-edge-b20", [("ERROR", "boom")] * 2 + [("INFO", "ok")] * 18)  # rate 0.1: alert
    window("tl-edge-b30", [("ERROR", "boom")] + [("FATAL", "bang")] * 2 + [("INFO", "")] * 27)
    window("tl-edge-n19", [("ERROR", "boom")] * 19)  # 19 events: no alert
    window("tl-edge-n20", [("ERROR", "boom")] + [("INFO", "ok")] * 19)  # rate 0.05: no alert
    window(
        "tl-edge-top",
        [("ERROR", "b"), ("ERROR", "a")] * 3
        + [("FATAL", "d"), ("ERROR", "c")] * 2
        + [("WARN", "z")] * 10
        + [("INFO", "z")] * 5,
        latency_ms=12.5,
        status=599,
    )
    window("tl-edge-nolat", [("INFO", "x")] * 8 + [("ERROR", "")] * 2, status=100, host="h-1")
    window("tl-edge-long", [("INFO", "m" * 65_536), ("DEBUG", "")], latency_ms=0.0)
    ordered = _arrival_order(timed)

    late_at = set(rng.sample(range(len(ordered) // 5, len(ordered)), 8))
    boundary_done = False

    def insert(index: int, running: dict[int, int]) -> list[Entry]:
        nonlocal boundary_done
        out: list[Entry] = []
        if not boundary_done:
            for service in services:
                m = _boundary_minute(running, partition_of(service, PARTITIONS), start + 2 * MINUTE)
                if m is not None:
                    # stream time exactly M + grace; M - 1 is late at its boundary, M is not
                    for ts, level in ((m + GRACE_MS, "INFO"), (m - 1, "ERROR"), (m, "WARN")):
                        event = LogEvent(service, ts, level, "edge", 3.0)
                        out.append(_valid(service, ts, event.encode()))
                    boundary_done = True
                    break
        if index in late_at:
            service = rng.choice(services)
            stream = running[partition_of(service, PARTITIONS)]
            ts = stream - GRACE_MS - MINUTE - rng.choice((0, rng.randint(0, 60_000)))
            out.append(_valid(service, ts, LogEvent(service, ts, "FATAL", "late").encode()))
        return out

    woven = _weave(ordered, insert)
    assert boundary_done, "no place for the boundary case: change SEED"
    return _spread(_bad_logs(start), woven, rng)


def _bad_logs(start: int) -> list[Entry]:
    ok = {"service": "tl-svc-0", "ts": start + 5_000, "level": "ERROR", "message": "boom"}

    def bad(field: str | None, **changes: object) -> Entry:
        fields = {k: v for k, v in dict(ok, **changes).items() if v is not ...}
        return Entry(b"tl-svc-0", orjson.dumps(fields), field=field)

    return [
        Entry(b"tl-svc-1", b"{oops", field=None),
        bad("service", service=...),
        bad("service", service="a/b"),
        bad("level", level=...),
        bad("level", level=None),
        bad("level", level="NOTICE"),
        bad("status", status=600),
        bad("status", status=99),
        bad("status", status="500"),
        bad("latency_ms", latency_ms=-1),
        bad("latency_ms", latency_ms=True),
        bad("message", message=42),
        bad("message", message="m" * 65_537),
        bad("host", host="web/3"),
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


async def _produce(bootstrap: str, topic: str, entries: list[Entry]) -> list[Produced]:
    placed = await send(bootstrap, topic, ((e.key, e.value) for e in entries))
    return [Produced(e.key, e.value, p, o) for e, (p, o) in zip(entries, placed, strict=True)]


# --------------------------------------------------------------------------------------------
# Checks


def _assert_windows(
    got: list[dict], want: dict[tuple[str, int], dict], key_field: str, compare: Callable
) -> None:
    slots = Counter((r[key_field], r["window_start"]) for r in got)
    repeated = [slot for slot, n in slots.items() if n > 1]
    assert not repeated, f"emitted more than once: {repeated[:5]}"
    missing, extra = sorted(set(want) - set(slots)), sorted(set(slots) - set(want))
    assert not missing and not extra, f"missing {missing[:5]}, unexpected {extra[:5]}"
    for record in got:
        assert record["_key"] == record[key_field].encode(), record
        clean = {k: v for k, v in record.items() if not k.startswith("_")}
        compare(clean, want[(record[key_field], record["window_start"])])


def _assert_late(got: list[dict], want: list[Late], key_field: str, topic: str) -> None:
    slots = Counter((r["pipeline"], r["source_partition"], r["source_offset"]) for r in got)
    repeated = [slot for slot, n in slots.items() if n > 1]
    assert not repeated, f"late record repeated: {repeated}"
    expected = {late.slot: late for late in want}
    assert sorted(slots) == sorted(expected), (sorted(slots), sorted(expected))
    for record in got:
        late = expected[(record["pipeline"], record["source_partition"], record["source_offset"])]
        assert record["_key"] == late.key.encode(), record
        assert_late_record(record, late, key_field, topic)


def _assert_dlq(got: list[dict], want: list[Rejected], topic: str, fields: dict) -> None:
    slots = Counter((r["source_partition"], r["source_offset"]) for r in got)
    assert all(n == 1 for n in slots.values()), f"dead letter repeated: {slots}"
    expected = {(r.record.partition, r.record.offset): r for r in want}
    assert sorted(slots) == sorted(expected), (sorted(slots), sorted(expected))
    for record in got:
        rejected = expected[(record["source_partition"], record["source_offset"])]
        assert record["source_topic"] == topic, record
        assert base64.b64decode(record["value_b64"]) == rejected.record.value, record
        assert base64.b64decode(record["key_b64"]) == rejected.record.key, record
        field = fields[(rejected.record.partition, rejected.record.offset)]
        assert field == rejected.field, (field, rejected)  # the test and its oracle agree
        assert isinstance(record["error"], str) and record["error"], record
        if field is not None:
            assert field in record["error"], (field, record["error"])


def _assert_intent(trades: TradesExpected, logs: LogsExpected, rejected_planned: int) -> None:
    """The data really holds what the test means to exercise."""
    candles_late = trades.late_for(CANDLES)
    alerts_late = trades.late_for(ALERTS)
    late_slots = {(late.partition, late.offset) for late in candles_late}
    assert len(candles_late) >= 5
    assert len([a for a in alerts_late if (a.partition, a.offset) not in late_slots]) >= 4
    assert any(late.stream_time == late.window_end + GRACE_MS for late in candles_late)
    assert any(late.stream_time == late.ts + GRACE_MS for late in alerts_late)
    assert len(trades.alerts) >= 8 and len(trades.candles) >= 12 * MINUTES
    edge_alerts = Counter(a["symbol"] for a in trades.alerts if a["symbol"].startswith("tl-edge"))
    assert edge_alerts["tl-edge-up"] == 1 and edge_alerts["tl-edge-down"] == 0
    assert edge_alerts["tl-edge-slide"] == 1 and edge_alerts["tl-edge-slide-out"] == 0
    assert edge_alerts["tl-edge-eq"] == 1
    exact = [c for c in trades.checks if c.margin == 0]
    assert {c.symbol for c in exact} == {"tl-edge-up", "tl-edge-down"}
    # Random trades keep clear of the threshold, so rounding cannot decide an alert.
    assert min(c.margin for c in trades.checks if c.symbol.startswith("tl-sym")) > 1e-6
    assert len(logs.late) >= 5
    assert any(late.stream_time == late.window_end + GRACE_MS for late in logs.late)
    alerted = {service for service, _ in logs.alerts}
    assert {"tl-edge-b20", "tl-edge-b30", "tl-edge-top"} <= alerted
    assert not {"tl-edge-n19", "tl-edge-n20", "tl-edge-nolat"} & alerted
    assert len([s for s in alerted if s.startswith("tl-svc")]) >= 3
    assert all(s["_distinct_errors"] <= 32 for s in logs.stats.values())
    assert trades.dlq_count + logs.dlq_count == rejected_planned


def test_trade_and_log_outputs_equal_oracles_with_two_workers_and_a_crash(
    kafka_bootstrap, make_worker, event_clock
):
    prefix = f"tl-{uuid.uuid4().hex[:6]}."
    topic = {name: f"{prefix}{name}" for name in (TRADES_TOPIC, LOGS_TOPIC)}
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
    _wait_for_inputs(kafka_bootstrap, list(topic.values()), [first, second])

    start = event_clock.allocate(minutes=MINUTES + 4)
    rng = random.Random(SEED)
    trades, logs = _trades(start, rng), _logs(start, rng)
    planned_fields = {}
    produced: dict[str, list[Produced]] = {TRADES_TOPIC: [], LOGS_TOPIC: []}

    def produce(name: str, entries: list[Entry]) -> None:
        records = asyncio.run(_produce(kafka_bootstrap, topic[name], entries))
        for entry, record in zip(entries, records, strict=True):
            if entry.partition is not None:  # keyed by its own key: its home partition
                assert record.partition == entry.partition, (entry, record)
            else:
                planned_fields[(name, record.partition, record.offset)] = entry.field
        produced[name].extend(records)

    produce(TRADES_TOPIC, trades[: len(trades) // 2])
    produce(LOGS_TOPIC, logs[: len(logs) // 2])
    time.sleep(1.0)
    second.kill()  # a crash mid-stream: its partitions move to the first worker, then back
    data_dir, log_path = second.data_dir, second.log_path
    second = make_worker(app_id=first.app_id, **env)
    second.data_dir, second.log_path = data_dir, log_path
    second.start()
    produce(TRADES_TOPIC, trades[len(trades) // 2 :])
    produce(LOGS_TOPIC, logs[len(logs) // 2 :])
    second.wait_ready(timeout=90)

    # Close everything: one record per partition well past the last window + grace.
    end = start + (MINUTES + 2) * MINUTE + GRACE_MS
    closers = key_per_partition("tl-closer", PARTITIONS).values()
    produce(TRADES_TOPIC, [_valid(k, end, Trade(k, end, 1.0, 1.0, None).encode()) for k in closers])
    produce(LOGS_TOPIC, [_valid(k, end, LogEvent(k, end, "INFO").encode()) for k in closers])

    want_trades = expected_trades(produced[TRADES_TOPIC], GRACE_MS)
    want_logs = expected_logs(produced[LOGS_TOPIC], GRACE_MS)
    _assert_intent(want_trades, want_logs, len(planned_fields))

    deadline = time.monotonic() + OUTPUT_BUDGET_S

    def wait(name: str, expected: int, match: Callable[[dict], bool] = lambda r: True) -> list:
        remaining = max(deadline - time.monotonic(), 5.0)
        return asyncio.run(
            wait_for_records(kafka_bootstrap, f"{prefix}{name}", match, expected, remaining)
        )

    try:
        got_candles = wait(CANDLES, len(want_trades.candles))
        got_stats = wait(LOG_STATS, len(want_logs.stats))
        got_alerts = wait(ALERTS, len(want_trades.alerts))
        got_log_alerts = wait(LOG_ALERTS, len(want_logs.alerts))
        got_late = wait("faustapp-late", len(want_trades.late) + len(want_logs.late))
        got_dlq = wait("faustapp-dlq", want_trades.dlq_count + want_logs.dlq_count)
    except TimeoutError as exc:
        tails = "\n---\n".join(w.log_tail(40) for w in (first, second))
        raise AssertionError(f"{exc}\n{tails}") from None

    _assert_windows(got_candles, want_trades.candles, "symbol", assert_same_candle)
    assert_same_trade_alerts(
        [{k: v for k, v in r.items() if not k.startswith("_")} for r in got_alerts],
        want_trades.alerts,
    )
    assert all(r["_key"] == r["symbol"].encode() for r in got_alerts)
    _assert_windows(got_stats, want_logs.stats, "service", assert_same_log_stats)
    _assert_windows(got_log_alerts, want_logs.alerts, "service", assert_same_log_alert)

    trade_pipelines, log_pipelines = {CANDLES, ALERTS}, {LOG_STATS, LOG_ALERTS}
    assert {r["pipeline"] for r in got_late} <= trade_pipelines | log_pipelines, got_late
    _assert_late(
        [r for r in got_late if r["pipeline"] in trade_pipelines],
        want_trades.late,
        "symbol",
        topic[TRADES_TOPIC],
    )
    _assert_late(
        [r for r in got_late if r["pipeline"] in log_pipelines],
        want_logs.late,
        "service",
        topic[LOGS_TOPIC],
    )

    assert {r["pipeline"] for r in got_dlq} <= {TRADES_GROUP, LOGS_GROUP}, got_dlq
    fields = {(p, o): f for (name, p, o), f in planned_fields.items() if name == TRADES_TOPIC}
    _assert_dlq(
        [r for r in got_dlq if r["pipeline"] == TRADES_GROUP],
        want_trades.rejected,
        topic[TRADES_TOPIC],
        fields,
    )
    fields = {(p, o): f for (name, p, o), f in planned_fields.items() if name == LOGS_TOPIC}
    _assert_dlq(
        [r for r in got_dlq if r["pipeline"] == LOGS_GROUP],
        want_logs.rejected,
        topic[LOGS_TOPIC],
        fields,
    )

    # Nothing else was written to the sensor outputs, and both workers are still healthy.
    for name in ("sensor-stats-1m", "sensor-alerts"):
        assert asyncio.run(read_topic(kafka_bootstrap, f"{prefix}{name}")) == []
    assert first.health()[0] == 200 and second.health()[0] == 200
