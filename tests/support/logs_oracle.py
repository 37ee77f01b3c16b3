"""What faustapp's log pipelines must produce, computed independently of faustapp's engine.

Given the records of the ``app-logs`` topic as they sit in the log, this module decides which are
rejected, replays every partition in offset order (stream time, lateness: see
:mod:`support.trades_oracle`, which holds the shared pieces), and computes the final
``log-stats-1m`` windows and ``log-alerts`` from plain lists. Nothing is imported from
``faustapp``.

Quantiles come from a KLL sketch (k=200) in faustapp, so they are checked by rank: an estimate is
right when its rank among the window's latencies is within the sketch's normalised rank error of
the asked rank (every estimate is one of the latencies seen, exactly).
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from support.trades_oracle import (
    MINUTE,
    Late,
    Produced,
    Reject,
    Rejected,
    Replay,
    close,
    event_time,
    identifier,
    load_object,
    ms_to_iso,
    number,
    replay,
    tumbling_start,
)

LOGS_GROUP = "logs"
LOGS_TOPIC = "app-logs"
LOG_STATS = "log-stats-1m"
LOG_ALERTS = "log-alerts"
LEVELS = ("DEBUG", "INFO", "WARN", "ERROR", "FATAL")
ERROR_LEVELS = ("ERROR", "FATAL")
MAX_MESSAGE_CHARS = 65_536
ALERT_MIN_EVENTS = 20
ALERT_ERROR_RATE = 0.1
TOP_ERRORS = 3
TOP_ERRORS_EXACT_UP_TO = 32  # distinct error messages in a window
QUANTILES = {"latency_p50": 0.5, "latency_p95": 0.95, "latency_p99": 0.99}
# Normalised rank error of a KLL sketch with k=200, single rank, 99% confidence.
KLL_RANK_ERROR = 0.0133

LOG_STATS_FIELDS = frozenset(
    {
        "service",
        "window_start",
        "window_end",
        "count",
        "errors",
        "warnings",
        "error_rate",
        "latency_count",
        "latency_mean",
        *QUANTILES,
        "top_errors",
    }
)
LOG_ALERT_FIELDS = frozenset(
    {
        "service",
        "window_start",
        "window_end",
        "count",
        "errors",
        "error_rate",
        "top_errors",
        "rule",
    }
)


@dataclass(frozen=True)
class LogEvent:
    """One valid ``app-logs`` value (optional fields None when absent)."""

    service: str
    ts: int
    level: str
    message: str = ""
    latency_ms: float | None = None
    status: int | None = None
    host: str | None = None

    def encode(self, *, iso_ts: bool = False, nulls: bool = False) -> bytes:
        """The JSON value; ``ts`` as ISO-8601 and absent optional fields as null when asked."""
        value: dict[str, Any] = {
            "service": self.service,
            "ts": ms_to_iso(self.ts) if iso_ts else self.ts,
            "level": self.level,
        }
        for name in ("message", "latency_ms", "status", "host"):
            item = getattr(self, name)
            if name == "message" and item == "" and not nulls:
                continue
            if item is not None or nulls:
                value[name] = item
        return orjson.dumps(value)


def decode_log(raw: bytes | None) -> LogEvent:
    """An ``app-logs`` value by the contract, or :class:`Reject` naming the field."""
    data = load_object(raw)
    service = identifier(data, "service")
    ts = event_time(data)
    level = data.get("level")
    if level is None:
        raise Reject("level", "missing field 'level'")
    if level not in LEVELS:
        raise Reject("level", f"field 'level' must be one of {', '.join(LEVELS)}")
    message = data.get("message")
    if message is None:
        message = ""
    elif not isinstance(message, str) or len(message) > MAX_MESSAGE_CHARS:
        raise Reject("message", f"field 'message' must be a string of <= {MAX_MESSAGE_CHARS}")
    latency = number(data, "latency_ms", required=False, minimum=0.0)
    status = data.get("status")
    if status is not None and (type(status) is not int or not 100 <= status <= 599):
        raise Reject("status", "field 'status' must be an integer from 100 to 599")
    host = identifier(data, "host", required=False)
    return LogEvent(service, ts, level, message, latency, status, host)  # type: ignore[arg-type]


def top_errors(messages: Counter[str]) -> list[dict]:
    """The most frequent error messages: count descending, then message ascending."""
    ranked = sorted(messages.items(), key=lambda item: (-item[1], item[0]))
    return [{"message": message, "count": count} for message, count in ranked[:TOP_ERRORS]]


def log_stats(service: str, start: int, events: list[LogEvent]) -> dict:
    """The ``log-stats-1m`` record of one window, with the sorted latencies under ``_latencies``
    and the number of distinct error messages under ``_distinct_errors``."""
    errors = [e for e in events if e.level in ERROR_LEVELS]
    latencies = sorted(e.latency_ms for e in events if e.latency_ms is not None)
    messages = Counter(e.message for e in errors)
    return {
        "service": service,
        "window_start": start,
        "window_end": start + MINUTE,
        "count": len(events),
        "errors": len(errors),
        "warnings": sum(1 for e in events if e.level == "WARN"),
        "error_rate": len(errors) / len(events),
        "latency_count": len(latencies),
        "latency_mean": math.fsum(latencies) / len(latencies) if latencies else None,
        **{name: None for name in QUANTILES},  # checked by rank against _latencies
        "top_errors": top_errors(messages),
        "_latencies": latencies,
        "_distinct_errors": len(messages),
    }


@dataclass
class LogsExpected:
    """Everything the log pipelines must write for one set of logged records."""

    replay: Replay
    stats: dict[tuple[str, int], dict] = field(default_factory=dict)
    alerts: dict[tuple[str, int], dict] = field(default_factory=dict)
    late: list[Late] = field(default_factory=list)

    @property
    def rejected(self) -> list[Rejected]:
        return self.replay.rejected

    @property
    def dlq_count(self) -> int:
        return len(self.replay.rejected)


def expected_logs(
    records: Iterable[Produced],
    grace_ms: int,
    min_events: int = ALERT_MIN_EVENTS,
    error_rate: float = ALERT_ERROR_RATE,
) -> LogsExpected:
    """Stats windows, alerts, late records and dead letters of ``app-logs`` records as logged."""
    run = replay(records, decode_log, lambda e: e.service)
    out = LogsExpected(run)
    windows: dict[tuple[str, int], list[LogEvent]] = defaultdict(list)
    home: dict[str, int] = {}
    for seen in run.seen:
        event: LogEvent = seen.event
        home[event.service] = seen.record.partition
        start = tumbling_start(event.ts)
        if seen.stream_before >= start + MINUTE + grace_ms:
            out.late.append(
                Late(
                    LOG_STATS,
                    event.service,
                    event.ts,
                    seen.record.partition,
                    seen.record.offset,
                    seen.stream_before,
                    start,
                    start + MINUTE,
                )
            )
        else:
            windows[(event.service, start)].append(event)
    for (service, start), events in windows.items():
        if run.final_stream(home[service]) < start + MINUTE + grace_ms:
            continue
        stats = log_stats(service, start, events)
        out.stats[(service, start)] = stats
        if stats["count"] >= min_events and stats["error_rate"] >= error_rate:
            out.alerts[(service, start)] = {
                name: stats[name]
                for name in (
                    "service",
                    "window_start",
                    "window_end",
                    "count",
                    "errors",
                    "error_rate",
                    "top_errors",
                    "_distinct_errors",
                )
            }
    return out


def quantile_ok(values_sorted: list[float], estimate: float, rank: float) -> bool:
    """Whether ``estimate`` is a ``rank`` quantile of the values within the KLL rank error."""
    n = len(values_sorted)
    if n == 0 or not isinstance(estimate, (int, float)) or isinstance(estimate, bool):  # noqa: UP038
        return False
    below = bisect.bisect_left(values_sorted, estimate)
    at_or_below = bisect.bisect_right(values_sorted, estimate)
    slack = KLL_RANK_ERROR * n + 1
    return below - slack <= rank * n <= at_or_below + slack


def _assert_top_errors(got: Any, want: dict) -> None:
    assert isinstance(got, list) and len(got) <= TOP_ERRORS, got
    for item in got:
        assert isinstance(item, dict) and set(item) == {"message", "count"}, got
    if want["_distinct_errors"] <= TOP_ERRORS_EXACT_UP_TO:
        assert got == want["top_errors"], (got, want["top_errors"])
    else:
        assert len(got) == TOP_ERRORS, got


def assert_same_log_stats(got: dict, want: dict) -> None:
    """Exact counts and top errors, rounded rates and means, quantiles by rank."""
    assert set(got) == LOG_STATS_FIELDS, (sorted(set(got) ^ LOG_STATS_FIELDS), got)
    exact = ("service", "window_start", "window_end", "count", "errors", "warnings")
    for name in (*exact, "latency_count"):
        assert got[name] == want[name], (name, got, want)
    assert close(got["error_rate"], want["error_rate"]), (got, want)
    assert close(got["latency_mean"], want["latency_mean"]), (got, want)
    latencies = want["_latencies"]
    for name, rank in QUANTILES.items():
        if not latencies:
            assert got[name] is None, (name, got)
        else:
            assert quantile_ok(latencies, got[name], rank), (name, got[name], latencies)
    _assert_top_errors(got["top_errors"], want)


def assert_same_log_alert(got: dict, want: dict) -> None:
    assert set(got) == LOG_ALERT_FIELDS, (sorted(set(got) ^ LOG_ALERT_FIELDS), got)
    for name in ("service", "window_start", "window_end", "count", "errors"):
        assert got[name] == want[name], (name, got, want)
    assert close(got["error_rate"], want["error_rate"]), (got, want)
    assert isinstance(got["rule"], str) and got["rule"], got
    _assert_top_errors(got["top_errors"], want)
