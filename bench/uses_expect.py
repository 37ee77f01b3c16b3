"""Expected trade-candles-1m and log-stats-1m results, computed from the events the bench produced
(independently of faustapp's engine), and the checks of a worker's output against them."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import orjson

from bench.data import MINUTE
from bench.uses_data import LOGS, UseDataset

REL_TOL = 1e-9
ABS_TOL = 1e-6
RANK_ERROR = 0.013
"""KLL's normalised rank error at k=200 (faustapp's Quantile); exact below 200 values."""
QUANTILES = {"latency_p50": 0.5, "latency_p95": 0.95, "latency_p99": 0.99}
TOP_ERRORS = 3
ERROR_LEVELS = frozenset({"ERROR", "FATAL"})


@dataclass(frozen=True, slots=True)
class Candle:
    """Expected figures of one symbol's minute."""

    end: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int
    notional: float
    buy_volume: float
    sell_volume: float


@dataclass(frozen=True, slots=True)
class LogStats:
    """Expected figures of one service's minute; latencies sorted."""

    end: int
    count: int
    errors: int
    warnings: int
    latency_count: int
    latency_mean: float | None
    latencies: tuple[float, ...]
    top_errors: tuple[tuple[str, int], ...]


def _minutes(dataset: UseDataset) -> Iterator[tuple[str, int, list]]:
    """(key, window start, events in log order) of every non-empty 1-minute window."""
    for key, events in dataset.events_by_key.items():
        buckets: dict[int, list] = {}
        for event in events:
            buckets.setdefault(event[0] - event[0] % MINUTE, []).append(event)
        for start, bucket in buckets.items():
            yield key, start, bucket


def expected_candles(dataset: UseDataset) -> dict[tuple[str, int], Candle]:
    """Every (symbol, minute): open/close the price of the smallest/largest ts (ties: log order)."""
    out = {}
    for symbol, start, trades in _minutes(dataset):
        by_time = sorted(range(len(trades)), key=lambda i: (trades[i][0], i))
        prices = [t[1] for t in trades]
        out[(symbol, start)] = Candle(
            end=start + MINUTE,
            open=trades[by_time[0]][1],
            high=max(prices),
            low=min(prices),
            close=trades[by_time[-1]][1],
            volume=math.fsum(t[2] for t in trades),
            trades=len(trades),
            notional=math.fsum(t[1] * t[2] for t in trades),
            buy_volume=math.fsum(t[2] for t in trades if t[3] == "buy"),
            sell_volume=math.fsum(t[2] for t in trades if t[3] == "sell"),
        )
    return out


def expected_log_stats(dataset: UseDataset) -> dict[tuple[str, int], LogStats]:
    """Every (service, minute): counts, latency figures and the top 3 error messages."""
    out = {}
    for service, start, lines in _minutes(dataset):
        latencies = [line[3] for line in lines if line[3] is not None]
        errors = Counter(line[2] for line in lines if line[1] in ERROR_LEVELS)
        top = sorted(errors.items(), key=lambda item: (-item[1], item[0]))[:TOP_ERRORS]
        out[(service, start)] = LogStats(
            end=start + MINUTE,
            count=len(lines),
            errors=sum(errors.values()),
            warnings=sum(1 for line in lines if line[1] == "WARN"),
            latency_count=len(latencies),
            latency_mean=math.fsum(latencies) / len(latencies) if latencies else None,
            latencies=tuple(sorted(latencies)),
            top_errors=tuple(top),
        )
    return out


def _close(got: object, want: float | None) -> bool:
    if want is None or got is None:
        return got is None and want is None
    return isinstance(got, int | float) and math.isclose(
        got, want, rel_tol=REL_TOL, abs_tol=ABS_TOL
    )


def candle_problems(got: dict, want: Candle) -> list[str]:
    """Fields of a trade-candles-1m record that differ from the expected candle."""
    exact = ("open", "high", "low", "close", "trades")
    bad = [name for name in exact if got.get(name) != getattr(want, name)]
    if got.get("window_end") != want.end:
        bad.append("window_end")
    for name in ("volume", "notional", "buy_volume", "sell_volume"):
        if not _close(got.get(name), getattr(want, name)):
            bad.append(name)
    if not _close(got.get("vwap"), want.notional / want.volume):
        bad.append("vwap")
    return bad


def quantile_ok(got: object, q: float, latencies: tuple[float, ...]) -> bool:
    """A value of the window whose rank range [#below, #at or below] / n comes within the KLL
    rank error of ``q`` (null when the window has no latency)."""
    if not latencies:
        return got is None
    if not isinstance(got, int | float):
        return False
    value = float(got)
    n = len(latencies)
    below = sum(1 for x in latencies if x < value)
    at_or_below = sum(1 for x in latencies if x <= value)
    return at_or_below > below and below / n - RANK_ERROR <= q <= at_or_below / n + RANK_ERROR


def log_stats_problems(got: dict, want: LogStats) -> list[str]:
    """Fields of a log-stats-1m record that differ from the expected figures."""
    bad = [
        name
        for name in ("count", "errors", "warnings", "latency_count")
        if got.get(name) != getattr(want, name)
    ]
    if got.get("window_end") != want.end:
        bad.append("window_end")
    if not _close(got.get("error_rate"), want.errors / want.count):
        bad.append("error_rate")
    if not _close(got.get("latency_mean"), want.latency_mean):
        bad.append("latency_mean")
    for name, q in QUANTILES.items():
        if not quantile_ok(got.get(name), q, want.latencies):
            bad.append(name)
    top = got.get("top_errors")
    if not isinstance(top, list) or [
        (item.get("message"), item.get("count")) for item in top if isinstance(item, dict)
    ] != list(want.top_errors):
        bad.append("top_errors")
    return bad


KEY_FIELDS = {"trade-candles-1m": "symbol", "log-stats-1m": "service"}
WHAT = {
    "trade-candles-1m": "output holds exactly the expected (symbol, 1-minute window) candles, "
    "each once: open/close (price of the smallest/largest ts, ties in log order), high, low and "
    "trades exact; volume, notional, buy/sell volume and vwap within 1e-9 relative",
    "log-stats-1m": "output holds exactly the expected (service, 1-minute window) results, each "
    "once: count, errors, warnings, latency_count and top 3 errors (count desc, message asc) "
    "exact; error_rate and latency_mean within 1e-9 relative; p50/p95/p99 a latency of the "
    f"window within {RANK_ERROR:.1%} rank of the quantile",
}


def expected_for(pipeline: str, dataset: UseDataset) -> dict:
    """The expected results of ``pipeline`` on its dataset."""
    if pipeline == "log-stats-1m":
        assert dataset.use == LOGS
        return expected_log_stats(dataset)
    return expected_candles(dataset)


def check_use_windows(
    pipeline: str, records: Iterable[tuple[bytes | None, bytes | None]], expected: dict
) -> dict[str, object]:
    """Exactly the expected windows, each once, with the expected figures."""
    key_field = KEY_FIELDS[pipeline]
    problems: Callable[[dict, object], list[str]] = (
        log_stats_problems if pipeline == "log-stats-1m" else candle_problems  # type: ignore[assignment]
    )
    seen: Counter[tuple[str, int]] = Counter()
    wrong_fields: Counter[str] = Counter()
    mismatched = unparsable = 0
    examples: list[str] = []
    for _key, value in records:
        try:
            record = orjson.loads(value or b"null")
            slot = (record[key_field], record["window_start"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            unparsable += 1
            continue
        seen[slot] += 1
        want = expected.get(slot)
        bad = problems(record, want) if want is not None else []
        if bad:
            mismatched += 1
            wrong_fields.update(bad)
            if len(examples) < 5:
                examples.append(f"{slot}: {', '.join(bad)} differ: got {record}, want {want}")
    missing = [slot for slot in expected if slot not in seen]
    unexpected = [slot for slot in seen if slot not in expected]
    duplicates = sum(n - 1 for n in seen.values() if n > 1)
    return {
        "ok": not (missing or unexpected or duplicates or mismatched or unparsable),
        "what": WHAT[pipeline],
        "expected_windows": len(expected),
        "received": sum(seen.values()),
        "missing": len(missing),
        "unexpected": len(unexpected),
        "duplicates": duplicates,
        "mismatched": mismatched,
        "mismatched_fields": dict(wrong_fields),
        "unparsable": unparsable,
        "examples": [e[:600] for e in examples]
        + [f"missing {s}" for s in missing[:3]]
        + [f"unexpected {s}" for s in unexpected[:3]],
    }
