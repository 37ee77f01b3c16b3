"""The trade and log oracles against hand-computed cases, one contract rule at a time."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from support.logs_oracle import (
    KLL_RANK_ERROR,
    LOG_ALERTS,
    LOG_STATS,
    LogEvent,
    assert_same_log_alert,
    assert_same_log_stats,
    decode_log,
    expected_logs,
    quantile_ok,
    top_errors,
)
from support.trades_oracle import (
    ALERTS,
    CANDLES,
    MINUTE,
    Late,
    Produced,
    Reject,
    Trade,
    assert_late_record,
    assert_same_candle,
    assert_same_trade_alert,
    assert_same_trade_alerts,
    decode_trade,
    expected_trades,
    iso_to_ms,
    ms_to_iso,
)

GRACE = 5_000
W = 1_732_435_200_000  # a minute boundary (2024-11-24T08:00:00Z)
FAR = W + 30 * MINUTE


def logged(*items: Trade | LogEvent | tuple[bytes | None, bytes], partition: int = 0):
    """Records at consecutive offsets of one partition, valid ones keyed by their own key."""
    out = []
    for offset, item in enumerate(items):
        if isinstance(item, Trade):
            key, value = item.symbol.encode(), item.encode()
        elif isinstance(item, LogEvent):
            key, value = item.service.encode(), item.encode()
        else:
            key, value = item
        out.append(Produced(key, value, partition, offset))
    return out


def trade(ts: int, price: float, qty: float = 1, side: str | None = None, symbol: str = "A"):
    return Trade(symbol, ts, price, qty, side)


def closer(ts: int = FAR, symbol: str = "Z") -> Trade:
    return Trade(symbol, ts, 1.0, 1.0, None)


def raw(**fields: object) -> tuple[bytes, bytes]:
    return (b"k", orjson.dumps(fields))


# --------------------------------------------------------------------------------------------
# Candles


def test_candle_figures_with_equal_timestamps_and_sides() -> None:
    items = [
        trade(W + 1_000, 10.0, 1, "buy"),
        trade(W + 1_000, 12.0, 2, None),
        trade(W + 30_000, 8.0, 0.5, "sell"),
        trade(W + 59_999, 11.0, 1, None),
        trade(W + 59_999, 9.0, 4, "buy"),
        closer(W + MINUTE + GRACE),
    ]
    want = expected_trades(logged(*items), GRACE)
    assert list(want.candles) == [("A", W)]  # the closer's own window is not final
    assert want.candles[("A", W)] == {
        "symbol": "A",
        "window_start": W,
        "window_end": W + MINUTE,
        "open": 10.0,  # smallest ts, first in the log
        "high": 12.0,
        "low": 8.0,
        "close": 9.0,  # largest ts, last in the log
        "volume": 8.5,
        "trades": 5,
        "notional": 85.0,
        "vwap": 10.0,
        "buy_volume": 5.0,
        "sell_volume": 0.5,
    }
    # The same trades with the equal-timestamp pairs the other way round in the log.
    swapped = [items[1], items[0], items[2], items[4], items[3], items[5]]
    again = expected_trades(logged(*swapped), GRACE).candles[("A", W)]
    assert (again["open"], again["close"]) == (12.0, 11.0)
    assert again["volume"] == 8.5 and again["notional"] == 85.0


def test_absent_and_null_side_count_in_neither_side() -> None:
    records = logged(trade(W + 1, 5.0, 2), closer(W + MINUTE + GRACE))
    records.insert(1, Produced(b"A", trade(W + 2, 7.0, 3).encode(null_side=True), 0, 1))
    records[-1] = Produced(records[-1].key, records[-1].value, 0, 2)
    candle = expected_trades(records, GRACE).candles[("A", W)]
    assert candle["trades"] == 2 and candle["volume"] == 5.0
    assert candle["buy_volume"] == 0 and candle["sell_volume"] == 0
    assert candle["vwap"] == (10.0 + 21.0) / 5.0


def test_window_is_final_at_end_plus_grace_on_its_own_partition_only() -> None:
    a = [trade(W + 1, 5.0)]
    assert expected_trades(logged(*a, closer(W + MINUTE + GRACE - 1)), GRACE).candles == {}
    assert list(expected_trades(logged(*a, closer(W + MINUTE + GRACE)), GRACE).candles) == [
        ("A", W)
    ]
    # Stream time of another partition closes nothing here.
    other = logged(closer(FAR), partition=1)
    assert expected_trades(logged(*a) + other, GRACE).candles == {}


# --------------------------------------------------------------------------------------------
# Trade alerts (sliding 60 s window, both bounds included)


def test_sliding_window_includes_both_bounds() -> None:
    t0 = W + 1_000
    items = [trade(t0 + d, 100.0) for d in (0, 10_000, 20_000, 30_000)]
    items += [trade(t0 + 60_000, 110.0), trade(t0 + 60_001, 100.0), closer()]
    want = expected_trades(logged(*items), GRACE)
    assert want.alerts == [
        {
            "symbol": "A",
            "ts": t0 + 60_000,
            "price": 110.0,
            "qty": 1.0,
            "window_start": t0,
            "window_end": t0 + 60_000,
            "trades": 5,  # t0 (the lower bound) in, t0 + 60001 (after it) out
            "vwap": 102.0,
            "deviation": 8.0 / 102.0,
        }
    ]
    # The trade at t0 + 60001: [t0 + 1, t0 + 60001] holds 5, 2 % below the VWAP: no alert.
    assert [(c.ts, c.deviation) for c in want.checks] == [
        (t0 + 60_000, 8.0 / 102.0),
        (t0 + 60_001, -2.0 / 102.0),
    ]
    # One millisecond earlier, the first trade is outside the 110 trade's window: 4 trades.
    items[0] = trade(t0 - 1, 100.0)
    moved = expected_trades(logged(*items), GRACE)
    assert moved.alerts == [] and [c.ts for c in moved.checks] == [t0 + 60_001]


def test_equal_timestamps_are_in_each_others_window_whatever_the_log_order() -> None:
    t = W + 5_000
    items = [trade(t, 110.0)] + [trade(t, 100.0) for _ in range(4)] + [closer()]
    want = expected_trades(logged(*items), GRACE)
    assert [(a["price"], a["trades"], a["vwap"]) for a in want.alerts] == [(110.0, 5, 102.0)]
    assert len(want.checks) == 5


def test_exactly_three_percent_does_not_alert_either_way() -> None:
    t = W + 1_000
    up = [trade(t + i * 1_000, 99.25) for i in range(4)] + [trade(t + 4_000, 103.0)]
    up.append(trade(t + 5_000, 104.0))
    down = [trade(t + i * 1_000, 100.75, symbol="B") for i in range(4)]
    down.append(trade(t + 4_000, 97.0, symbol="B"))
    records = logged(*up, closer()) + logged(*down, closer(symbol="Y"), partition=1)
    want = expected_trades(records, GRACE)
    assert want.late == []
    by_trade = {(c.symbol, c.ts): c for c in want.checks}
    assert by_trade[("A", t + 4_000)].deviation == 0.03  # vwap 100, price 103
    assert by_trade[("B", t + 4_000)].deviation == -0.03  # vwap 100, price 97
    assert by_trade[("A", t + 4_000)].margin == 0 and by_trade[("B", t + 4_000)].margin == 0
    assert [(a["symbol"], a["ts"], a["trades"]) for a in want.alerts] == [("A", t + 5_000, 6)]
    assert want.alerts[0]["vwap"] == 604.0 / 6
    assert want.alerts[0]["deviation"] == (104.0 - 604.0 / 6) / (604.0 / 6)


def test_qty_weights_the_vwap_and_four_trades_never_alert() -> None:
    t = W + 1_000
    four = [trade(t + i, p) for i, p in enumerate((1.0, 50.0, 2.0, 90.0))]
    assert expected_trades(logged(*four, closer()), GRACE).checks == []
    weighted = [trade(t + i, 100.0, 3.0) for i in range(4)] + [trade(t + 4, 110.0, 0.5)]
    alert = expected_trades(logged(*weighted, closer()), GRACE).alerts[0]
    assert alert["vwap"] == (1200.0 + 55.0) / 12.5 and alert["qty"] == 0.5


def test_alert_waits_for_its_window_to_be_final() -> None:
    t = W + 1_000
    spike = [trade(t + i, 100.0) for i in range(4)] + [trade(t + 4, 200.0)]
    assert expected_trades(logged(*spike, closer(t + 4 + GRACE - 1)), GRACE).alerts == []
    assert len(expected_trades(logged(*spike, closer(t + 4 + GRACE)), GRACE).alerts) == 1


# --------------------------------------------------------------------------------------------
# Late trades


def test_late_trades_per_pipeline_at_the_boundaries() -> None:
    items = [
        trade(W + 65_000, 100.0),  # stream time W + 65000: minute W is final (end + grace)
        trade(W + 59_999, 101.0),  # late for both, the candle exactly at its boundary
        trade(W + 60_000, 102.0),  # ts + grace == stream time: late for alerts only
        trade(W + 60_001, 103.0),  # counted in both
        closer(),
    ]
    want = expected_trades(logged(*items), GRACE)
    stream = W + 65_000
    assert want.late == [
        Late(CANDLES, "A", W + 59_999, 0, 1, stream, W, W + MINUTE),
        Late(ALERTS, "A", W + 59_999, 0, 1, stream, W + 59_999 - MINUTE, W + 59_999),
        Late(ALERTS, "A", W + 60_000, 0, 2, stream, W, W + 60_000),
    ]
    assert list(want.candles) == [("A", W + MINUTE)]
    assert want.candles[("A", W + MINUTE)]["trades"] == 3  # the alerts-late one is counted


def test_a_late_trade_is_in_no_sliding_window() -> None:
    t = W + 1_000
    items = [trade(t + i * 1_000, 100.0) for i in range(4)]
    items += [closer(t + 100 + GRACE, symbol="Z"), trade(t + 100, 500.0)]  # late: stream - grace
    items += [trade(t + 4_000, 120.0), closer()]
    want = expected_trades(logged(*items), GRACE)
    assert [(late.pipeline, late.ts) for late in want.late] == [(ALERTS, t + 100)]
    assert [(a["ts"], a["trades"], a["vwap"]) for a in want.alerts] == [(t + 4_000, 5, 104.0)]
    assert want.candles[("A", W)]["trades"] == 6  # its minute is still open for the candle


def test_late_is_decided_per_partition() -> None:
    records = logged(trade(W + 1, 5.0), closer(FAR), partition=0)
    records += logged(trade(W + 2, 6.0, symbol="C"), closer(FAR, symbol="Y"), partition=1)
    assert expected_trades(records, GRACE).late == []


def test_rejected_trades_do_not_move_stream_time() -> None:
    bad_future = raw(symbol="A", ts=FAR, price=0, qty=1)
    records = logged(trade(W + 1, 5.0), bad_future, trade(W + 2, 6.0))
    want = expected_trades(records, GRACE)
    assert want.late == [] and want.dlq_count == 1
    assert want.rejected[0].field == "price" and want.rejected[0].record.offset == 1
    assert want.replay.stream_time == {0: W + 2}


def test_records_keyed_otherwise_are_refused() -> None:
    record = Produced(b"other", trade(W, 1.0).encode(), 0, 0)
    with pytest.raises(ValueError, match="forwarding"):
        expected_trades([record], GRACE)


# --------------------------------------------------------------------------------------------
# Trade validation

BASE_TRADE = {"symbol": "ACME", "ts": W + 123, "price": 101.25, "qty": 300}


def trade_value(**changes: object) -> bytes:
    fields = dict(BASE_TRADE, **changes)
    return orjson.dumps({k: v for k, v in fields.items() if v is not ...})


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (b"", None),
        (b"not json{", None),
        (b"[1, 2]", None),
        (trade_value(symbol=...), "symbol"),
        (trade_value(symbol=""), "symbol"),
        (trade_value(symbol="a/b"), "symbol"),
        (trade_value(symbol="x" * 257), "symbol"),
        (trade_value(symbol="bell\x07"), "symbol"),
        (trade_value(symbol=7), "symbol"),
        (trade_value(ts=...), "ts"),
        (trade_value(ts="yesterday"), "ts"),
        (trade_value(ts=True), "ts"),
        (trade_value(ts=-1), "ts"),
        (trade_value(ts=1.5), "ts"),
        (trade_value(price=...), "price"),
        (trade_value(price=None), "price"),
        (trade_value(price=0), "price"),
        (trade_value(price=-1.5), "price"),
        (trade_value(price="101"), "price"),
        (trade_value(price=True), "price"),
        (trade_value(price=1e16), "price"),
        (trade_value(qty=0), "qty"),
        (trade_value(qty=-0.5), "qty"),
        (trade_value(side="hold"), "side"),
        (trade_value(side=1), "side"),
    ],
)
def test_trade_rejections_name_the_field(value: bytes, field: str | None) -> None:
    with pytest.raises(Reject) as caught:
        decode_trade(value)
    assert caught.value.field == field


def test_trade_accepts_null_side_iso_time_and_fractions() -> None:
    assert decode_trade(trade_value(side=None)).side is None
    assert decode_trade(trade_value(side="sell")).side == "sell"
    iso = decode_trade(trade_value(ts="2024-11-24T08:00:00.123Z", qty=0.25, price=3))
    assert (iso.ts, iso.qty, iso.price) == (W + 123, 0.25, 3.0)
    assert decode_trade(trade_value(ts="2024-11-24T08:00:00.123")).ts == W + 123  # no zone: UTC
    assert decode_trade(trade_value(ts="2024-11-24T09:00:00.123+01:00")).ts == W + 123
    assert ms_to_iso(W + 123) == "2024-11-24T08:00:00.123Z" and iso_to_ms(ms_to_iso(W)) == W
    assert decode_trade(Trade("A", W, 1.0, 2.0, None).encode(iso_ts=True)).ts == W


# --------------------------------------------------------------------------------------------
# Trade comparison helpers


def test_trade_comparisons_catch_wrong_figures() -> None:
    items = [trade(W + i, 100.0 + i) for i in range(5)] + [trade(W + 5, 150.0), closer()]
    want = expected_trades(logged(*items), GRACE)
    candle = want.candles[("A", W)]
    assert_same_candle(dict(candle, volume=candle["volume"] * (1 + 1e-12)), candle)
    for wrong in ({"open": 101.0}, {"trades": 5}, {"vwap": candle["vwap"] * 1.001}):
        with pytest.raises(AssertionError):
            assert_same_candle(dict(candle, **wrong), candle)
    with pytest.raises(AssertionError):
        assert_same_candle({**candle, "extra": 1}, candle)
    alert = dict(want.alerts[0], rule="price deviates > 3 % from the 60 s VWAP")
    assert_same_trade_alerts([alert], want.alerts)
    with pytest.raises(AssertionError):
        assert_same_trade_alerts([alert, alert], want.alerts)  # repeated
    with pytest.raises(AssertionError):
        assert_same_trade_alert(dict(alert, trades=5), want.alerts[0])
    with pytest.raises(AssertionError):
        assert_same_trade_alert({k: v for k, v in alert.items() if k != "rule"}, want.alerts[0])


def test_late_record_comparison() -> None:
    want = Late(CANDLES, "A", W + 1, 2, 17, W + 70_000, W, W + MINUTE)
    got = {
        "pipeline": CANDLES,
        "source_topic": "p.trades",
        "source_partition": 2,
        "source_offset": 17,
        "symbol": "A",
        "ts": W + 1,
        "price": 1.0,
        "window_start": W,
        "window_end": W + MINUTE,
        "stream_time": W + 70_000,
        "reason": "final",
    }
    assert_late_record(got, want, "symbol", "p.trades")
    for wrong in ({"source_offset": 18}, {"pipeline": ALERTS}, {"stream_time": W}):
        with pytest.raises(AssertionError):
            assert_late_record(dict(got, **wrong), want, "symbol", "p.trades")
    with pytest.raises(AssertionError):
        assert_late_record({k: v for k, v in got.items() if k != "symbol"}, want, "symbol", "t")


# --------------------------------------------------------------------------------------------
# Log stats


def log(ts: int, level: str, message: str = "", latency: float | None = None, **extra) -> LogEvent:
    return LogEvent(extra.pop("service", "checkout"), ts, level, message, latency, **extra)


def log_closer(ts: int = FAR) -> LogEvent:
    return LogEvent("zz", ts, "INFO")


def test_log_stats_figures_and_top_errors() -> None:
    events = [
        log(W + 1, "INFO", "ok", 10.0),
        log(W + 2, "ERROR", "timeout", 30.0, status=504, host="web-3"),
        log(W + 3, "FATAL", "db down"),
        log(W + 4, "WARN", "slow", 20.0),
        log(W + 5, "WARN", "slow"),
        log(W + 6, "WARN", "slow"),
        log(W + 7, "ERROR", "timeout"),
        log(W + 8, "FATAL", "db down", 40.0),
        log(W + 9, "ERROR", "b-msg"),
        log(W + 10, "ERROR"),  # no message: ""
        log(W + 11, "DEBUG", "trace", 0.0),
    ]
    records = logged(*events, log_closer())
    # One WARN with its optional fields sent as null.
    null_warn = orjson.dumps(
        {
            "service": "checkout",
            "ts": W + 6,
            "level": "WARN",
            "message": "slow",
            "latency_ms": None,
            "status": None,
            "host": None,
        }
    )
    records[5] = Produced(b"checkout", null_warn, 0, 5)
    want = expected_logs(records, GRACE)
    stats = want.stats[("checkout", W)]
    assert {k: v for k, v in stats.items() if not k.startswith("_")} == {
        "service": "checkout",
        "window_start": W,
        "window_end": W + MINUTE,
        "count": 11,
        "errors": 6,
        "warnings": 3,
        "error_rate": 6 / 11,
        "latency_count": 5,
        "latency_mean": 20.0,
        "latency_p50": None,
        "latency_p95": None,
        "latency_p99": None,
        "top_errors": [
            {"message": "db down", "count": 2},
            {"message": "timeout", "count": 2},
            {"message": "", "count": 1},
        ],
    }
    assert stats["_latencies"] == [0.0, 10.0, 20.0, 30.0, 40.0]
    assert stats["_distinct_errors"] == 4
    assert list(want.stats) == [("checkout", W)] and want.alerts == {}
    got = dict(
        {k: v for k, v in stats.items() if not k.startswith("_")},
        latency_p50=20.0,
        latency_p95=40.0,
        latency_p99=40.0,
    )
    assert_same_log_stats(got, stats)
    for wrong in (
        {"latency_p50": 40.0},
        {"errors": 5},
        {"warnings": 4},
        {"top_errors": list(reversed(got["top_errors"]))},
        {"top_errors": got["top_errors"][:2]},
    ):
        with pytest.raises(AssertionError):
            assert_same_log_stats(dict(got, **wrong), stats)


def test_top_errors_order_count_then_message() -> None:
    counts = Counter({"b": 3, "a": 3, "d": 2, "c": 2, "e": 1})
    assert top_errors(counts) == [
        {"message": "a", "count": 3},
        {"message": "b", "count": 3},
        {"message": "c", "count": 2},
    ]
    assert top_errors(Counter({"only": 1})) == [{"message": "only", "count": 1}]
    assert top_errors(Counter()) == []


def test_no_latency_gives_null_latency_figures() -> None:
    events = [log(W + i, "INFO") for i in range(3)]
    stats = expected_logs(logged(*events, log_closer()), GRACE).stats[("checkout", W)]
    assert stats["latency_count"] == 0 and stats["latency_mean"] is None
    assert stats["top_errors"] == [] and stats["error_rate"] == 0.0
    got = {k: v for k, v in stats.items() if not k.startswith("_")}
    assert_same_log_stats(got, stats)
    with pytest.raises(AssertionError):
        assert_same_log_stats(dict(got, latency_p50=0.0), stats)


def test_log_alert_thresholds_are_inclusive() -> None:
    def window(service: str, count: int, errors: int) -> list[LogEvent]:
        return [
            log(W + i, "ERROR" if i < errors else "INFO", "boom", service=service)
            for i in range(count)
        ]

    events = window("b20", 20, 2) + window("b30", 30, 3) + window("n19", 19, 19)
    events += window("n20", 20, 1)
    records = logged(*events, log_closer())
    want = expected_logs(records, GRACE)
    assert sorted(want.alerts) == [("b20", W), ("b30", W)]
    assert want.alerts[("b30", W)]["error_rate"] == 0.1
    assert want.alerts[("b20", W)]["top_errors"] == [{"message": "boom", "count": 2}]
    custom = expected_logs(records, GRACE, min_events=19, error_rate=0.5)
    assert sorted(custom.alerts) == [("n19", W)]
    alert = dict(
        {k: v for k, v in want.alerts[("b20", W)].items() if not k.startswith("_")},
        rule="error_rate >= 0.1, >= 20 events in 1 min",
    )
    assert_same_log_alert(alert, want.alerts[("b20", W)])
    with pytest.raises(AssertionError):
        assert_same_log_alert(dict(alert, count=21), want.alerts[("b20", W)])


def test_late_logs_at_the_boundary() -> None:
    events = [
        log(W + 65_000, "INFO"),  # stream time W + 65000: minute W final
        log(W + 59_999, "ERROR", "late"),  # late, exactly at end + grace
        log(W + 60_000, "INFO"),  # next minute: counted
        log_closer(),
    ]
    want = expected_logs(logged(*events), GRACE)
    assert want.late == [Late(LOG_STATS, "checkout", W + 59_999, 0, 1, W + 65_000, W, W + MINUTE)]
    assert list(want.stats) == [("checkout", W + MINUTE)]
    assert want.stats[("checkout", W + MINUTE)]["count"] == 2
    assert all(late.pipeline != LOG_ALERTS for late in want.late)
    # One millisecond less of stream time and the event is counted.
    events[0] = log(W + 64_999, "INFO")
    assert expected_logs(logged(*events), GRACE).late == []


# --------------------------------------------------------------------------------------------
# Log validation

BASE_LOG = {"service": "checkout", "ts": W + 123, "level": "ERROR", "message": "payment timeout"}


def log_value(**changes: object) -> bytes:
    fields = dict(BASE_LOG, **changes)
    return orjson.dumps({k: v for k, v in fields.items() if v is not ...})


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (b"{oops", None),
        (log_value(service=...), "service"),
        (log_value(service="a/b"), "service"),
        (log_value(ts=...), "ts"),
        (log_value(level=...), "level"),
        (log_value(level=None), "level"),
        (log_value(level="NOTICE"), "level"),
        (log_value(message=42), "message"),
        (log_value(message="x" * 65_537), "message"),
        (log_value(latency_ms=-0.5), "latency_ms"),
        (log_value(latency_ms="12"), "latency_ms"),
        (log_value(latency_ms=True), "latency_ms"),
        (log_value(status=99), "status"),
        (log_value(status=600), "status"),
        (log_value(status="500"), "status"),
        (log_value(status=True), "status"),
        (log_value(host="web/3"), "host"),
        (log_value(host=""), "host"),
    ],
)
def test_log_rejections_name_the_field(value: bytes, field: str | None) -> None:
    with pytest.raises(Reject) as caught:
        decode_log(value)
    assert caught.value.field == field


def test_log_accepts_bounds_nulls_and_iso_time() -> None:
    assert decode_log(log_value(status=100)).status == 100
    assert decode_log(log_value(status=599, latency_ms=0)).latency_ms == 0.0
    assert decode_log(log_value(message=None)).message == ""
    assert decode_log(log_value(message=...)).message == ""
    assert decode_log(log_value(message="x" * 65_536)).message == "x" * 65_536
    event = decode_log(log_value(host=None, latency_ms=None, status=None, ts=ms_to_iso(W + 7)))
    assert (event.host, event.latency_ms, event.status, event.ts) == (None, None, None, W + 7)
    assert decode_log(LogEvent("s", W, "WARN", "m", 1.5, 200, "h").encode(nulls=True)) == (
        LogEvent("s", W, "WARN", "m", 1.5, 200, "h")
    )


def test_log_rejections_are_counted_and_listed() -> None:
    records = logged(log(W, "INFO"), (b"checkout", log_value(level="NOTICE")), log_closer())
    want = expected_logs(records, GRACE)
    assert want.dlq_count == 1 and want.rejected[0].record.offset == 1
    assert want.rejected[0].field == "level"


# --------------------------------------------------------------------------------------------
# Quantiles by rank


def test_quantile_rank_check() -> None:
    values = [float(v) for v in range(1, 1001)]
    slack = KLL_RANK_ERROR * 1000 + 1
    assert quantile_ok(values, 500.0, 0.5)
    assert quantile_ok(values, 500.0 + slack - 1, 0.5)
    assert not quantile_ok(values, 500.0 + slack + 2, 0.5)
    assert not quantile_ok(values, 400.0, 0.5)
    assert quantile_ok(values, 990.0, 0.99) and not quantile_ok(values, 900.0, 0.99)
    # 32-bit floats: a value rounded to single precision still ranks where it belongs.
    assert quantile_ok([0.1, 0.2, 0.3], 0.20000000298023224, 0.5)
    assert not quantile_ok([], 1.0, 0.5) and not quantile_ok([1.0], None, 0.5)  # type: ignore[arg-type]
