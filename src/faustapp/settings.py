"""Settings read from ``FAUSTAPP_*`` environment variables, validated once at start."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from faustapp.env_values import SettingsError, env_float, env_int
from faustapp.kafka_settings import (
    MAX_REPLICATION_FACTOR,
    SASL_MECHANISMS,
    SECURITY_PROTOCOLS,
    KafkaSettings,
)

__all__ = [  # the Kafka names are part of this module's interface too
    "DEFAULT_PIPELINES",
    "GUARANTEES",
    "MAX_REPLICATION_FACTOR",
    "SASL_MECHANISMS",
    "SECURITY_PROTOCOLS",
    "KafkaSettings",
    "Settings",
    "SettingsError",
]

GUARANTEES = ("at_least_once", "exactly_once")
DEFAULT_PIPELINES = ("sensor-stats-1m", "sensor-stats-5m", "sensor-alerts")
_TOPIC_CHARS = re.compile(r"[A-Za-z0-9._-]*")
_NAME = re.compile(r"[A-Za-z0-9._-]+")
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


@dataclass(frozen=True)
class Settings:
    """Everything a worker needs to know about its environment."""

    broker: str = "kafka://127.0.0.1:9092"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    data_dir: Path = Path(".data")
    partitions: int = 4
    processing_guarantee: str = "at_least_once"
    grace_ms: int = 10_000
    batch_size: int = 1000
    batch_within_ms: int = 50
    app_id: str = "faustapp"
    topic_prefix: str = ""
    session_timeout_ms: int = 10_000
    max_future_skew_ms: int = 3_600_000
    idle_close_ms: int = 0
    pipelines: tuple[str, ...] = DEFAULT_PIPELINES
    flush_interval_ms: int = 500
    fetch_max_wait_ms: int = 100
    batch_drain: bool = True
    modules: tuple[str, ...] = ()
    log_alert_min_events: int = 20
    log_alert_error_rate: float = 0.1
    api_token: str = field(default="", repr=False)
    """Bearer token every ``/api/*`` path requires when set (health excepted)."""
    metrics_token: str = field(default="", repr=False)
    """Bearer token ``/metrics`` and ``/api/health`` require when set."""
    web_advertised_url: str = ""
    """URL peers use to reach this worker; empty: ``http://<web_host>:<web_port>``."""
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    """Connection security and replication (``kafka_settings``); read through the properties."""
    sse_heartbeat_s: float = 15.0
    """Period of the comment a results stream sends when it has nothing else to send."""
    sse_write_timeout_s: float = 10.0
    """How long a write to a results stream may wait before the client is dropped as too slow."""
    sse_max_clients: int = 200
    """Results streams one worker serves at once; one more is answered 503."""

    def topic(self, name: str) -> str:
        """Actual topic name: the prefix lets several deployments share one cluster."""
        return f"{self.topic_prefix}{name}"

    @property
    def advertised_url(self) -> str:
        """Where peers send the queries they route here: the advertised URL, else the bind."""
        return self.web_advertised_url or f"http://{self.web_host}:{self.web_port}"

    @property
    def replication_factor(self) -> int:
        """Replicas of every topic faustapp creates."""
        return self.kafka.replication_factor

    @property
    def min_insync_replicas(self) -> int | None:
        """``min.insync.replicas`` of created topics; None: the broker's."""
        return self.kafka.min_insync_replicas

    @property
    def security_protocol(self) -> str:
        """How connections to Kafka are made (``FAUSTAPP_SECURITY_PROTOCOL``)."""
        return self.kafka.security_protocol

    @property
    def sasl_mechanism(self) -> str:
        """SASL mechanism, used when the protocol is SASL."""
        return self.kafka.sasl_mechanism

    @property
    def sasl_username(self) -> str:
        """SASL user name; empty unless the protocol is SASL."""
        return self.kafka.sasl_username

    @property
    def sasl_password(self) -> str:
        """SASL password; empty unless the protocol is SASL; never in a repr."""
        return self.kafka.sasl_password

    @property
    def ssl_cafile(self) -> Path | None:
        """CA bundle the broker's certificate is checked against."""
        return self.kafka.ssl_cafile

    @property
    def ssl_certfile(self) -> Path | None:
        """Client certificate for mutual TLS."""
        return self.kafka.ssl_certfile

    @property
    def ssl_keyfile(self) -> Path | None:
        """Private key of the client certificate."""
        return self.kafka.ssl_keyfile

    @property
    def uses_ssl(self) -> bool:
        """Whether connections to Kafka are TLS."""
        return self.kafka.uses_ssl

    @property
    def uses_sasl(self) -> bool:
        """Whether connections to Kafka authenticate with SASL."""
        return self.kafka.uses_sasl

    @property
    def bootstrap_servers(self) -> str:
        """Broker list in the ``host:port,...`` form raw Kafka clients take."""
        parts = []
        for url in self.broker.split(";"):
            for item in url.split(","):
                item = item.strip()
                if "://" in item:
                    item = item.split("://", 1)[1]
                if item:
                    parts.append(item)
        return ",".join(parts)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the environment, failing loudly on the first bad variable."""
        env = os.environ if env is None else env
        defaults = cls()
        broker = _broker(env, "FAUSTAPP_BROKER", defaults.broker)
        web_host = env.get("FAUSTAPP_WEB_HOST", defaults.web_host).strip() or defaults.web_host
        return cls(
            broker=broker,
            web_host=web_host,
            web_port=env_int(env, "FAUSTAPP_WEB_PORT", defaults.web_port, low=1, high=65535),
            data_dir=Path(env.get("FAUSTAPP_DATA_DIR", str(defaults.data_dir))).absolute(),
            partitions=env_int(env, "FAUSTAPP_PARTITIONS", defaults.partitions, low=1, high=10_000),
            processing_guarantee=_choice(
                env, "FAUSTAPP_PROCESSING_GUARANTEE", defaults.processing_guarantee, GUARANTEES
            ),
            grace_ms=env_int(
                env, "FAUSTAPP_GRACE_MS", defaults.grace_ms, low=0, high=7 * 86_400_000
            ),
            batch_size=env_int(
                env, "FAUSTAPP_BATCH_SIZE", defaults.batch_size, low=1, high=1_000_000
            ),
            batch_within_ms=env_int(
                env, "FAUSTAPP_BATCH_WITHIN_MS", defaults.batch_within_ms, low=1, high=60_000
            ),
            app_id=_topic_safe(env, "FAUSTAPP_APP_ID", defaults.app_id) or defaults.app_id,
            topic_prefix=_topic_safe(env, "FAUSTAPP_TOPIC_PREFIX", defaults.topic_prefix),
            max_future_skew_ms=env_int(
                env, "FAUSTAPP_MAX_FUTURE_SKEW_MS", defaults.max_future_skew_ms, low=0, high=10**12
            ),
            idle_close_ms=env_int(
                env, "FAUSTAPP_IDLE_CLOSE_MS", defaults.idle_close_ms, low=0, high=10**9
            ),
            pipelines=_pipelines(env, "FAUSTAPP_PIPELINES", defaults.pipelines),
            flush_interval_ms=env_int(
                env, "FAUSTAPP_FLUSH_INTERVAL_MS", defaults.flush_interval_ms, low=0, high=60_000
            ),
            fetch_max_wait_ms=env_int(
                env, "FAUSTAPP_FETCH_MAX_WAIT_MS", defaults.fetch_max_wait_ms, low=1, high=30_000
            ),
            batch_drain=_choice(env, "FAUSTAPP_BATCH_DRAIN", "1", ("0", "1")) == "1",
            modules=_modules(env, "FAUSTAPP_MODULES"),
            log_alert_min_events=env_int(
                env,
                "FAUSTAPP_LOG_ALERT_MIN_EVENTS",
                defaults.log_alert_min_events,
                low=1,
                high=10**9,
            ),
            log_alert_error_rate=env_float(
                env, "FAUSTAPP_LOG_ALERT_ERROR_RATE", defaults.log_alert_error_rate, 0.0, 1.0
            ),
            api_token=_token(env, "FAUSTAPP_API_TOKEN"),
            metrics_token=_token(env, "FAUSTAPP_METRICS_TOKEN"),
            web_advertised_url=_advertised_url(env, "FAUSTAPP_WEB_ADVERTISED_URL"),
            kafka=KafkaSettings.from_env(env),
            session_timeout_ms=env_int(
                env,
                "FAUSTAPP_SESSION_TIMEOUT_MS",
                defaults.session_timeout_ms,
                low=6000,
                high=300_000,
            ),
            sse_heartbeat_s=env_float(
                env, "FAUSTAPP_SSE_HEARTBEAT_S", defaults.sse_heartbeat_s, 0.1, 3600.0
            ),
            sse_write_timeout_s=env_float(
                env, "FAUSTAPP_SSE_WRITE_TIMEOUT_S", defaults.sse_write_timeout_s, 0.1, 600.0
            ),
            sse_max_clients=env_int(
                env, "FAUSTAPP_SSE_MAX_CLIENTS", defaults.sse_max_clients, low=1, high=10_000
            ),
        )


def _token(env: Mapping[str, str], name: str) -> str:
    """A bearer token: printable ASCII without spaces, or empty (off); the value is never shown."""
    value = env.get(name, "").strip()
    if value and not all(33 <= ord(c) <= 126 for c in value):
        raise SettingsError(f"{name} must be printable ASCII, no spaces (value not shown)")
    return value


def _topic_safe(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip()
    if len(value) > 100 or not _TOPIC_CHARS.fullmatch(value):
        raise SettingsError(
            f"{name}={raw!r} may hold at most 100 of the characters a-z A-Z 0-9 . _ -"
        )
    return value


def _pipelines(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """Names as given; whether each is declared is checked once every use has declared its
    pipelines (a worker with an unknown name stops at start with the list of valid ones)."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    chosen = tuple(dict.fromkeys(item.strip() for item in raw.split(",") if item.strip()))
    bad = [item for item in chosen if not _NAME.fullmatch(item)]
    if bad or not chosen:
        raise SettingsError(
            f"{name}={raw!r}: expected comma-separated pipeline names (or all), "
            f"got {', '.join(map(repr, bad)) or 'none'}"
        )
    return chosen


def _modules(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return ()
    chosen = tuple(dict.fromkeys(item.strip() for item in raw.split(",") if item.strip()))
    bad = [item for item in chosen if not _MODULE.fullmatch(item)]
    if bad:
        raise SettingsError(f"{name}={raw!r}: not an importable module name: {', '.join(bad)}")
    return chosen


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value not in choices:
        raise SettingsError(f"{name}={raw!r} must be one of: {', '.join(choices)}")
    return value


def _broker(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip()
    for item in value.replace(";", ",").split(","):
        item = item.strip()
        url = urlparse(item if "://" in item else f"kafka://{item}")
        try:
            port = url.port
        except ValueError:
            port = None
        if url.scheme not in ("kafka", "aiokafka") or not url.hostname or not port:
            raise SettingsError(f"{name}={raw!r} is not a broker URL like kafka://127.0.0.1:9092")
    return value if "://" in value else f"kafka://{value}"


def _advertised_url(env: Mapping[str, str], name: str) -> str:
    """An http(s) URL with a host and a port, without path, query or credentials; or empty."""
    raw = env.get(name, "").strip()
    if not raw:
        return ""
    url = urlparse(raw)
    try:
        port = url.port
    except ValueError:
        port = None
    if (
        url.scheme not in ("http", "https")
        or not url.hostname
        or not port
        or url.path not in ("", "/")
        or url.query
        or url.fragment
        or url.username is not None
        or url.hostname in ("0.0.0.0", "::")
    ):
        raise SettingsError(
            f"{name}={raw!r} must be an http(s) URL with a host peers can reach and a port, "
            "and nothing after them, like http://worker-1.example:6066"
        )
    return raw.rstrip("/")
