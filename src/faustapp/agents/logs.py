"""Log monitoring on ``app-logs``: per-service minute statistics, latency quantiles, top errors,
and error-rate alerts derived from the same windows."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from faustapp.api import (
    MINUTE,
    Count,
    EventTime,
    Id,
    Integer,
    Mean,
    Number,
    Quantile,
    Record,
    Schema,
    Text,
    TopK,
    configured,
    source,
    tumbling,
)

APP_LOGS = "app-logs"
MAX_MESSAGE = 65_536
ERROR_LEVELS = frozenset({"ERROR", "FATAL"})


class LogEvent(Record):
    """One log line of a service: level, message, and the request's latency and status."""

    service: Id
    ts: EventTime
    level: Literal["DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
    message: Annotated[str, Text(MAX_MESSAGE)] = ""
    latency_ms: Annotated[float, Number(ge=0)] | None = None
    status: Annotated[int, Integer(ge=100, le=599)] | None = None
    host: Id | None = None


def is_error(event: LogEvent) -> bool:
    """ERROR and FATAL lines."""
    return event.level in ERROR_LEVELS


def is_warning(event: LogEvent) -> bool:
    """WARN lines."""
    return event.level == "WARN"


def with_error_rate(result: dict[str, Any]) -> dict[str, Any]:
    """The window's figures in their published order, with errors per event."""
    return {
        "service": result["service"],
        "window_start": result["window_start"],
        "window_end": result["window_end"],
        "count": result["count"],
        "errors": result["errors"],
        "warnings": result["warnings"],
        "error_rate": result["errors"] / result["count"],
        "latency_count": result["latency_count"],
        "latency_mean": result["latency_mean"],
        "latency_p50": result["latency_p50"],
        "latency_p95": result["latency_p95"],
        "latency_p99": result["latency_p99"],
        "top_errors": result["top_errors"],
    }


def error_rate_rule(settings: Any) -> Any:
    """The alert rule with the thresholds of ``FAUSTAPP_LOG_ALERT_*``."""
    min_events, min_rate = settings.log_alert_min_events, settings.log_alert_error_rate

    def alert(stats: dict[str, Any]) -> dict[str, Any] | None:
        if stats["count"] < min_events or stats["error_rate"] < min_rate:
            return None
        return {
            "service": stats["service"],
            "window_start": stats["window_start"],
            "window_end": stats["window_end"],
            "count": stats["count"],
            "errors": stats["errors"],
            "error_rate": stats["error_rate"],
            "top_errors": stats["top_errors"],
            "rule": f"error_rate >= {min_rate:g}, >= {min_events} events in 1 min",
        }

    return alert


logs = source("logs", topic=APP_LOGS, schema=Schema(LogEvent, key="service"))

log_stats = logs.window(
    "log-stats-1m",
    tumbling(MINUTE),
    description="events, errors, warnings, latency quantiles and top errors per service and minute",
    count=Count(),
    errors=Count(where=is_error),
    warnings=Count(where=is_warning),
    latency_count=Count("latency_ms"),
    latency_mean=Mean("latency_ms"),
    latency_p50=Quantile("latency_ms", 0.5),
    latency_p95=Quantile("latency_ms", 0.95),
    latency_p99=Quantile("latency_ms", 0.99),
    top_errors=TopK("message", 3, where=is_error, label="message"),
    select=with_error_rate,
)
log_alerts = logs.derive(
    "log-alerts",
    log_stats,
    configured(error_rate_rule),
    description="minutes of a service with an error rate at or above the threshold",
)
