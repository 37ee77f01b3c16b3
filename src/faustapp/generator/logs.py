"""Pure, seedable source of application log lines, kept free of I/O so it can be tested exactly.

Each service mostly logs healthy requests, and now and then has an incident: for 20 to 90 s of
event time a large share of its lines are errors and its requests get several times slower.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

from faustapp.generator.config import GeneratorConfig
from faustapp.generator.records import GeneratedRecord
from faustapp.generator.schema import (
    Popularity,
    Record,
    Schema,
    bad_id,
    keyed_records,
    with_value,
)

LEVELS = ("DEBUG", "INFO", "WARN", "ERROR", "FATAL")
MAX_MESSAGE_LENGTH = 65536


@dataclass(frozen=True)
class Service:
    """What a service's log lines look like."""

    name: str
    host_prefix: str
    hosts: int
    median_ms: float
    """Median latency of a healthy request."""
    paths: tuple[str, ...]
    errors: tuple[str, ...]


#: The first runs' keys, busiest first; further services are ``svc-12``, ``svc-13``, ...
NAMED_SERVICES: tuple[Service, ...] = (
    Service("gateway", "edge", 4, 8.0, ("GET /", "GET /api/health", "POST /api/graphql"),
            ("upstream request timeout", "no healthy upstream", "connection reset by peer")),
    Service("search", "search", 3, 45.0, ("GET /api/search", "GET /api/suggest"),
            ("search backend query timeout", "shard failure: 2 of 5 shards failed",
             "circuit breaker open for search-index")),
    Service("catalog", "api", 3, 20.0, ("GET /api/products", "GET /api/products/{id}"),
            ("database connection refused", "deadline exceeded calling pricing",
             "product cache stampede")),
    Service("cart", "web", 4, 15.0, ("GET /api/cart", "POST /api/cart/items"),
            ("session store unavailable", "redis timeout after 250 ms")),
    Service("auth", "auth", 2, 30.0, ("POST /oauth/token", "GET /.well-known/jwks.json"),
            ("user store unavailable", "JWKS fetch failed", "LDAP bind timeout")),
    Service("checkout", "web", 4, 120.0, ("POST /api/checkout", "GET /api/checkout/summary"),
            ("payment timeout", "inventory reservation failed", "order total mismatch")),
    Service("payments", "pay", 3, 250.0, ("POST /api/payments", "POST /api/refunds"),
            ("payment gateway timeout", "acquirer returned 503",
             "TLS handshake with acquirer failed")),
    Service("recommendations", "ml", 2, 60.0, ("GET /api/recommendations",),
            ("model server timeout", "feature store read failed", "GPU out of memory")),
    Service("profile", "api", 2, 18.0, ("GET /api/profile", "PUT /api/profile"),
            ("database connection pool exhausted", "avatar upload failed")),
    Service("inventory", "worker", 3, 35.0, ("POST /api/reservations", "GET /api/stock/{sku}"),
            ("deadlock detected, transaction rolled back", "stock sync lagging")),
    Service("shipping", "api", 2, 90.0, ("POST /api/labels", "GET /api/rates"),
            ("carrier API rate limited", "address validation unavailable")),
    Service("notifications", "worker", 2, 40.0, ("POST /api/notify",),
            ("SMTP connection reset", "push provider returned 503", "template render failed")),
)  # fmt: skip

_GENERIC_PATHS = ("GET /api/items", "POST /api/items", "GET /api/items/{id}")
_GENERIC_ERRORS = ("upstream connect error", "database timeout", "internal server error")
_FATAL = (
    "out of memory: worker killed",
    "database connection pool exhausted, shutting down",
    "unrecoverable state, exiting",
    "panic: nil pointer dereference",
)
_DEBUG = (
    "cache refresh completed",
    "config reloaded",
    "retrying upstream call (attempt 2)",
    "connection pool: 12 active, 4 idle",
    "feature flag evaluated",
)
_OK_STATUS = {
    "GET": (200, 200, 200, 200, 200, 200, 200, 200, 304, 304),
    "POST": (200, 201, 201, 202),
    "PUT": (200, 200, 204),
}
_TIMEOUTS_MS = (250.0, 5000.0, 10_000.0, 30_000.0)
_CLIENT_STATUS = (400, 401, 403, 404, 404, 409, 429)
_SERVER_STATUS = (500, 502, 503, 503, 504)

#: Mean event time between the end of a service's incident and the start of its next one.
INCIDENT_EVERY_MIN = 10.0
INCIDENT_SECONDS = (20.0, 90.0)
#: Range of the share of a service's lines that are errors during an incident.
INCIDENT_ERROR_SHARE = (0.15, 0.5)
#: Range of how much slower requests get during an incident.
INCIDENT_SLOWDOWN = (4.0, 15.0)
HEALTHY_ERROR_SHARE = 0.01
FATAL_PER_ERROR = 0.02
DEBUG_SHARE = 0.07
CLIENT_ERROR_SHARE = 0.06
SLOW_REQUEST_MS = 1000.0
#: Share of optional fields sent as null rather than left out when a line has no value.
NULL_SHARE = 0.2


def _bad_level(schema: Schema, rng: random.Random, record: Record) -> bytes:
    level = rng.choice(("TRACE", "CRITICAL", "NOTICE", "VERBOSE", "", 3, ["ERROR"], True))
    return with_value(record, "level", level)


def _long_message(schema: Schema, rng: random.Random, record: Record) -> bytes:
    unit = f"{record.get('message') or 'stack frame'} | "
    length = rng.randint(MAX_MESSAGE_LENGTH + 1, MAX_MESSAGE_LENGTH + 4096)
    return with_value(record, "message", (unit * (length // len(unit) + 1))[:length])


def _message_not_string(schema: Schema, rng: random.Random, record: Record) -> bytes:
    message = record.get("message") or "payment timeout"
    return with_value(record, "message", rng.choice((42, True, [message], {"text": message})))


def _negative_latency(schema: Schema, rng: random.Random, record: Record) -> bytes:
    return with_value(record, "latency_ms", -round(rng.uniform(0.1, 5000.0), 1))


def _status_out_of_range(schema: Schema, rng: random.Random, record: Record) -> bytes:
    return with_value(record, "status", rng.choice((0, 99, 600, 999, 1000, -200)))


def _status_not_integer(schema: Schema, rng: random.Random, record: Record) -> bytes:
    return with_value(record, "status", rng.choice((200.5, 503.25, "200", True, [500])))


def _bad_host(schema: Schema, rng: random.Random, record: Record) -> bytes:
    good = str(record.get("host") or "web-1")
    kind = rng.choice(("empty", "long", "control", "slash", "number"))
    host: object = 17 if kind == "number" else bad_id(rng, good, kind)
    return with_value(record, "host", host)


LOG_SCHEMA = Schema(
    id_field="service",
    required=("service", "ts", "level"),
    numbers=("latency_ms", "status"),
    specific={
        "bad_level": _bad_level,
        "long_message": _long_message,
        "message_not_string": _message_not_string,
        "negative_latency": _negative_latency,
        "status_out_of_range": _status_out_of_range,
        "status_not_integer": _status_not_integer,
        "bad_host": _bad_host,
    },
)
#: Every way a generated log line can be malformed; each must be rejected by a correct consumer.
LOG_BAD_KINDS: tuple[str, ...] = LOG_SCHEMA.bad_kinds


class _Fleet:
    """Per-service incident state, advanced by nominal event time."""

    def __init__(self, services: int, start_ms: int, rng: random.Random) -> None:
        self._rng = rng
        self.services = [
            NAMED_SERVICES[index]
            if index < len(NAMED_SERVICES)
            else Service(f"svc-{index}", "app", 2, 25.0, _GENERIC_PATHS, _GENERIC_ERRORS)
            for index in range(services)
        ]
        self.ids = [service.name for service in self.services]
        self.incident_end = [start_ms] * services
        self.next_incident = [start_ms + self._gap_ms() for _ in range(services)]
        self.error_share = [HEALTHY_ERROR_SHARE] * services
        self.slowdown = [1.0] * services
        self._popularity = Popularity(services, rng, skew=0.7)

    def pick(self) -> int:
        return self._popularity.pick()

    def record(self, index: int, nominal_ts: int, ts: object) -> Record:
        rng = self._rng
        service = self.services[index]
        in_incident = self._update_incident(index, nominal_ts)
        error_share = self.error_share[index] if in_incident else HEALTHY_ERROR_SHARE
        slowdown = self.slowdown[index] if in_incident else 1.0
        line: Record = {"service": service.name, "ts": ts}
        draw = rng.random()
        if draw < error_share * FATAL_PER_ERROR:
            line["level"], line["message"] = "FATAL", rng.choice(_FATAL)
            self._optional(line, "latency_ms", None)
            self._optional(line, "status", None)
        elif draw < error_share:
            line["level"], line["message"] = "ERROR", rng.choice(service.errors)
            latency = self._latency(service, slowdown * 3.0)
            if "timeout" in str(line["message"]):
                latency = max(latency, rng.choice(_TIMEOUTS_MS) + round(rng.uniform(0, 50), 1))
            self._optional(line, "latency_ms", latency if rng.random() < 0.85 else None)
            status = rng.choice(_SERVER_STATUS) if rng.random() < 0.8 else None
            self._optional(line, "status", status)
        elif draw < error_share + DEBUG_SHARE:
            line["level"] = "DEBUG"
            if rng.random() < 0.8:
                line["message"] = rng.choice(_DEBUG)
            self._optional(line, "latency_ms", None)
            self._optional(line, "status", None)
        else:
            self._request(line, service, slowdown)
        host = f"{service.host_prefix}-{rng.randrange(service.hosts)}"
        self._optional(line, "host", host if rng.random() < 0.95 else None)
        return line

    def _request(self, line: Record, service: Service, slowdown: float) -> None:
        rng = self._rng
        path = rng.choice(service.paths)
        method = path.split(" ", 1)[0]
        if "{" in path:
            path = path.replace("{id}", str(rng.randint(1000, 99_999))).replace(
                "{sku}", f"SKU-{rng.randint(100, 9999)}"
            )
        latency = self._latency(service, slowdown)
        if latency > SLOW_REQUEST_MS:
            status = rng.choice(_OK_STATUS[method])
            line["level"] = "WARN"
            line["message"] = f"slow request: {path} took {latency:.0f} ms"
        elif rng.random() < CLIENT_ERROR_SHARE:
            status = rng.choice(_CLIENT_STATUS)
            line["level"], line["message"] = "WARN", f"{path} {status}"
        else:
            status = rng.choice(_OK_STATUS[method])
            line["level"], line["message"] = "INFO", f"{path} {status}"
        self._optional(line, "latency_ms", latency if rng.random() < 0.97 else None)
        line["status"] = status

    def _update_incident(self, index: int, nominal_ts: int) -> bool:
        """Whether service ``index`` is in an incident at ``nominal_ts``, starting one if due."""
        if nominal_ts < self.incident_end[index]:
            return True
        if nominal_ts < self.next_incident[index]:
            return False
        rng = self._rng
        self.incident_end[index] = nominal_ts + round(rng.uniform(*INCIDENT_SECONDS) * 1000)
        self.next_incident[index] = self.incident_end[index] + self._gap_ms()
        self.error_share[index] = rng.uniform(*INCIDENT_ERROR_SHARE)
        self.slowdown[index] = rng.uniform(*INCIDENT_SLOWDOWN)
        return True

    def _gap_ms(self) -> int:
        return round(self._rng.expovariate(1.0 / INCIDENT_EVERY_MIN) * 60_000)

    def _latency(self, service: Service, slowdown: float) -> float:
        median = service.median_ms * slowdown
        return round(min(self._rng.lognormvariate(math.log(median), 0.6), 60_000.0), 1)

    def _optional(self, line: Record, name: str, value: object) -> None:
        """Set an optional field, or leave it out or null (both mean absent) when ``None``."""
        if value is not None:
            line[name] = value
        elif self._rng.random() < NULL_SHARE:
            line[name] = None


def log_records(config: GeneratorConfig) -> Iterator[GeneratedRecord]:
    """Yield the log lines of one run; the same resolved config always yields the same records.

    Slots, disorder and malformed records follow
    :func:`~faustapp.generator.records.sensor_records`: a valid line's ``ts`` lies in
    ``[nominal - disorder_ms, nominal]``, and each record is malformed with probability
    ``bad_ratio`` (kind picked uniformly from :data:`LOG_BAD_KINDS`).

    A valid line has ``service``, ``ts`` (epoch ms, now and then ISO-8601) and ``level`` (one of
    :data:`LEVELS`); ``message`` (a short string) is left out of some DEBUG lines; ``latency_ms``
    (>= 0), ``status`` (100-599) and ``host`` (like ``web-3``) are sometimes absent or null.
    Keys are the service (``gateway``, ``search``, ... then ``svc-12``, ...), busiest first.
    """
    config = config.resolved()
    assert config.start_ms is not None
    rng = random.Random(config.seed)
    fleet = _Fleet(config.keys, config.start_ms, rng)
    return keyed_records(config, LOG_SCHEMA, fleet, rng)
