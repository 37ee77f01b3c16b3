"""Trades and log lines from the generator must behave like markets and services do.

Prices wander and sometimes jump, so VWAP deviation alerts happen now and then; services have
incidents, so some minutes have error-rate alerts. Records are read through the contract
validator of ``test_generator_trades_logs``.
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections import Counter, defaultdict, deque
from typing import Any

import orjson
import pytest
from test_generator_trades_logs import (
    ERROR_LEVELS,
    LEVELS,
    MINUTE_MS,
    check_log,
    check_trade,
    make_config,
    records,
)

from faustapp.generator import records_for

# --- what the records look like ----------------------------------------------------------


def test_trades_look_like_trades() -> None:
    trades = [
        orjson.loads(record.value) for record in records("trades", count=20_000, bad_ratio=0.0)
    ]
    sides = Counter(trade.get("side", "absent") for trade in trades)
    assert {"buy", "sell", None, "absent"} <= set(sides)
    assert sides["buy"] + sides["sell"] > 0.8 * len(trades)
    quantities = [trade["qty"] for trade in trades]
    assert any(isinstance(qty, float) and qty != int(qty) for qty in quantities)
    assert any(isinstance(qty, int) for qty in quantities)
    assert any(isinstance(qty, int) and qty % 100 == 0 for qty in quantities)
    symbols = Counter(trade["symbol"] for trade in trades)
    assert "ACME" in symbols and "BTC-USD" in symbols
    busiest, quietest = max(symbols.values()), min(symbols.values())
    assert busiest > 3 * quietest
    for trade in trades:
        assert round(trade["price"], 4) == trade["price"]


def test_log_lines_look_like_log_lines() -> None:
    lines = [orjson.loads(record.value) for record in records("logs", count=40_000, bad_ratio=0.0)]
    assert {line["level"] for line in lines} == LEVELS
    fields = Counter(name for line in lines for name, value in line.items() if value is not None)
    nulls = Counter(name for line in lines for name, value in line.items() if value is None)
    for optional in ("message", "latency_ms", "status", "host"):
        assert fields[optional] > 0.5 * len(lines)
        assert fields[optional] < len(lines)
    assert {"latency_ms", "status", "host"} <= set(nulls)
    hosts = {line["host"] for line in lines if line.get("host")}
    assert all(re.fullmatch(r"[a-z]+-\d", host) for host in hosts)
    assert "web-3" in hosts
    errors_by_service: dict[str, set[str]] = defaultdict(set)
    for line in lines:
        if line["level"] == "ERROR":
            errors_by_service[line["service"]].add(line["message"])
    assert len(errors_by_service) == 12
    assert all(1 <= len(messages) <= 5 for messages in errors_by_service.values())
    assert "payment timeout" in errors_by_service["checkout"]
    statuses = {line["status"] for line in lines if line.get("status") is not None}
    assert {200, 404, 503} <= statuses


# --- realistic dynamics ------------------------------------------------------------------


def test_prices_stay_positive_and_bounded_over_long_walks() -> None:
    """Two days of a trade a second and 17 years of one an hour: prices wander, never to 0."""
    for interval_ms in (1000, 3_600_000):
        config = make_config("trades", count=150_000, keys=20, interval_ms=interval_ms)
        prices: dict[str, list[float]] = defaultdict(list)
        for record in records_for(config):
            trade = orjson.loads(record.value)
            prices[trade["symbol"]].append(trade["price"])
        assert {"DOGE-USD", "PENNY"} <= set(prices)
        for series in prices.values():
            assert all(isinstance(price, float) and 0 < price < 1e7 for price in series)
            assert max(series) / min(series) > 1.2
            assert max(series) / series[0] < 60 and series[0] / min(series) < 60


def _vwap_alerts(trades: list[dict[str, Any]]) -> tuple[int, int]:
    """Trades more than 3% from the VWAP of their symbol's trades in [ts - 60 s, ts] (>= 5)."""
    by_symbol: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for trade in trades:
        by_symbol[trade["symbol"]].append(trade)
    alerts = 0
    for series in by_symbol.values():
        series.sort(key=lambda trade: trade["ts"])
        window: deque[dict[str, Any]] = deque()
        notional = volume = 0.0
        for trade in series:
            window.append(trade)
            notional += trade["price"] * trade["qty"]
            volume += trade["qty"]
            while window[0]["ts"] < trade["ts"] - MINUTE_MS:
                old = window.popleft()
                notional -= old["price"] * old["qty"]
                volume -= old["qty"]
            vwap = notional / volume
            if len(window) >= 5 and abs(trade["price"] - vwap) / vwap > 0.03:
                alerts += 1
    return alerts, len(trades)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_price_jumps_make_vwap_deviation_alerts_sometimes(seed: int) -> None:
    config = make_config("trades", seed=seed, count=60_000, interval_ms=20, bad_ratio=0.0)
    trades = [check_trade(record.value) for record in records_for(config)]
    alerts, total = _vwap_alerts(trades)
    assert 0.001 * total < alerts < 0.05 * total


def test_without_jumps_the_walk_alone_rarely_moves_3_percent_in_a_minute() -> None:
    """The alerts come from the jumps: between them, prices move well under 3% a minute."""
    config = make_config("trades", count=60_000, interval_ms=20, bad_ratio=0.0, keys=20)
    by_symbol: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for record in records_for(config):
        trade = check_trade(record.value)
        by_symbol[trade["symbol"]].append((record.nominal_ts, trade["price"]))
    moves = [
        abs(later / earlier - 1)
        for series in by_symbol.values()
        for (_, earlier), (_, later) in itertools.pairwise(series)
    ]
    assert sum(move > 0.035 for move in moves) >= 3
    assert sum(move > 0.01 for move in moves) < 0.001 * len(moves)


def _minute_windows(lines: list[dict[str, Any]]) -> dict[tuple[str, int], list[dict[str, Any]]]:
    windows: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        windows[(line["service"], line["ts"] // MINUTE_MS)].append(line)
    return windows


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incidents_make_some_minutes_alert_on_error_rate(seed: int) -> None:
    config = make_config("logs", seed=seed, count=60_000, interval_ms=20, bad_ratio=0.0)
    lines = [check_log(record.value) for record in records_for(config)]
    windows = _minute_windows(lines)
    busy = {key: window for key, window in windows.items() if len(window) >= 20}
    hot = {
        key
        for key, window in busy.items()
        if sum(line["level"] in ERROR_LEVELS for line in window) / len(window) >= 0.1
    }
    assert len(hot) >= 3
    assert len(hot) < 0.3 * len(busy)
    assert len({service for service, _ in hot}) >= 2

    def mean_latency(window: list[dict[str, Any]]) -> float:
        latencies = [
            line["latency_ms"]
            for line in window
            if line.get("latency_ms") is not None and line["level"] in ("INFO", "WARN")
        ]
        return sum(latencies) / len(latencies)

    calm: dict[str, list[float]] = defaultdict(list)
    for (service, minute), window in busy.items():
        if (service, minute) not in hot:
            calm[service].append(mean_latency(window))
    slower = [
        mean_latency(busy[(service, minute)]) > 2 * statistics.median(calm[service])
        for service, minute in hot
        if calm[service]
    ]
    assert len(slower) >= 3 and sum(slower) >= 0.75 * len(slower)
