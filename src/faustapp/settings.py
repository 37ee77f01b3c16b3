"""Settings read from ``FAUSTAPP_*`` environment variables, validated once at start."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

GUARANTEES = ("at_least_once", "exactly_once")
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
#: Highest replication factor accepted (Kafka has no hard limit; more is a typing error).
MAX_REPLICATION_FACTOR = 16
DEFAULT_PIPELINES = ("sensor-stats-1m", "sensor-stats-5m", "sensor-alerts")
_TOPIC_CHARS = re.compile(r"[A-Za-z0-9._-]*")
_NAME = re.compile(r"[A-Za-z0-9._-]+")
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


class SettingsError(ValueError):
    """A ``FAUSTAPP_*`` variable holds a value faustapp cannot run with."""


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
    replication_factor: int = 1
    """Replicas of every topic faustapp creates."""
    min_insync_replicas: int | None = None
    """``min.insync.replicas`` of every topic faustapp creates; None: the broker's default."""
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    def topic(self, name: str) -> str:
        """Actual topic name: the prefix lets several deployments share one cluster."""
        return f"{self.topic_prefix}{name}"

    @property
    def advertised_url(self) -> str:
        """Where peers send the queries they route here: the advertised URL, else the bind."""
        return self.web_advertised_url or f"http://{self.web_host}:{self.web_port}"

    @property
    def uses_ssl(self) -> bool:
        """Whether connections to Kafka are TLS."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        """Whether connections to Kafka authenticate with SASL."""
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

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
        replication_factor = _int(
            env, "FAUSTAPP_REPLICATION_FACTOR", 1, low=1, high=MAX_REPLICATION_FACTOR
        )
        return cls(
            broker=broker,
            web_host=web_host,
            web_port=_int(env, "FAUSTAPP_WEB_PORT", defaults.web_port, low=1, high=65535),
            data_dir=Path(env.get("FAUSTAPP_DATA_DIR", str(defaults.data_dir))).absolute(),
            partitions=_int(env, "FAUSTAPP_PARTITIONS", defaults.partitions, low=1, high=10_000),
            processing_guarantee=_choice(
                env, "FAUSTAPP_PROCESSING_GUARANTEE", defaults.processing_guarantee, GUARANTEES
            ),
            grace_ms=_int(env, "FAUSTAPP_GRACE_MS", defaults.grace_ms, low=0, high=7 * 86_400_000),
            batch_size=_int(env, "FAUSTAPP_BATCH_SIZE", defaults.batch_size, low=1, high=1_000_000),
            batch_within_ms=_int(
                env, "FAUSTAPP_BATCH_WITHIN_MS", defaults.batch_within_ms, low=1, high=60_000
            ),
            app_id=_topic_safe(env, "FAUSTAPP_APP_ID", defaults.app_id) or defaults.app_id,
            topic_prefix=_topic_safe(env, "FAUSTAPP_TOPIC_PREFIX", defaults.topic_prefix),
            max_future_skew_ms=_int(
                env, "FAUSTAPP_MAX_FUTURE_SKEW_MS", defaults.max_future_skew_ms, low=0, high=10**12
            ),
            idle_close_ms=_int(
                env, "FAUSTAPP_IDLE_CLOSE_MS", defaults.idle_close_ms, low=0, high=10**9
            ),
            pipelines=_pipelines(env, "FAUSTAPP_PIPELINES", defaults.pipelines),
            flush_interval_ms=_int(
                env, "FAUSTAPP_FLUSH_INTERVAL_MS", defaults.flush_interval_ms, low=0, high=60_000
            ),
            fetch_max_wait_ms=_int(
                env, "FAUSTAPP_FETCH_MAX_WAIT_MS", defaults.fetch_max_wait_ms, low=1, high=30_000
            ),
            batch_drain=_choice(env, "FAUSTAPP_BATCH_DRAIN", "1", ("0", "1")) == "1",
            modules=_modules(env, "FAUSTAPP_MODULES"),
            log_alert_min_events=_int(
                env,
                "FAUSTAPP_LOG_ALERT_MIN_EVENTS",
                defaults.log_alert_min_events,
                low=1,
                high=10**9,
            ),
            log_alert_error_rate=_float(
                env, "FAUSTAPP_LOG_ALERT_ERROR_RATE", defaults.log_alert_error_rate, 0.0, 1.0
            ),
            api_token=_token(env, "FAUSTAPP_API_TOKEN"),
            metrics_token=_token(env, "FAUSTAPP_METRICS_TOKEN"),
            web_advertised_url=_advertised_url(env, "FAUSTAPP_WEB_ADVERTISED_URL"),
            replication_factor=replication_factor,
            min_insync_replicas=_min_insync(env, replication_factor),
            **_security(env),
            session_timeout_ms=_int(
                env,
                "FAUSTAPP_SESSION_TIMEOUT_MS",
                defaults.session_timeout_ms,
                low=6000,
                high=300_000,
            ),
        )


def _token(env: Mapping[str, str], name: str) -> str:
    """A bearer token: printable ASCII without spaces, or empty (off); the value is never shown."""
    value = env.get(name, "").strip()
    if value and not all(33 <= ord(c) <= 126 for c in value):
        raise SettingsError(f"{name} must be printable ASCII, no spaces (value not shown)")
    return value


def _int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} is out of range [{low}, {high}]")
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


def _float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:  # NaN fails too
        raise SettingsError(f"{name}={value} is out of range [{low}, {high}]")
    return value


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


def _min_insync(env: Mapping[str, str], replication_factor: int) -> int | None:
    """At most the replication factor: a higher value would refuse every acks=all write."""
    name = "FAUSTAPP_MIN_INSYNC_REPLICAS"
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    value = _int(env, name, 1, low=1, high=MAX_REPLICATION_FACTOR)
    if value > replication_factor:
        raise SettingsError(
            f"{name}={value} is above FAUSTAPP_REPLICATION_FACTOR={replication_factor}: "
            "no write could ever be acknowledged"
        )
    return value


def _security(env: Mapping[str, str]) -> dict[str, object]:
    """How to reach a secured Kafka, checked as a whole: a setting the protocol does not use is
    refused rather than ignored. Passwords are never put in a message."""
    protocol = _upper_choice(env, "FAUSTAPP_SECURITY_PROTOCOL", "PLAINTEXT", SECURITY_PROTOCOLS)
    mechanism = _upper_choice(env, "FAUSTAPP_SASL_MECHANISM", "PLAIN", SASL_MECHANISMS)
    username = env.get("FAUSTAPP_SASL_USERNAME", "").strip()
    password = _password(env)
    files = {
        name: _readable_file(env, f"FAUSTAPP_SSL_{name.upper()}")
        for name in ("cafile", "certfile", "keyfile")
    }
    sasl = protocol in ("SASL_PLAINTEXT", "SASL_SSL")
    tls = protocol in ("SSL", "SASL_SSL")
    if sasl and not username:
        raise SettingsError(f"FAUSTAPP_SECURITY_PROTOCOL={protocol} needs FAUSTAPP_SASL_USERNAME")
    if sasl and not password:
        raise SettingsError(
            f"FAUSTAPP_SECURITY_PROTOCOL={protocol} needs FAUSTAPP_SASL_PASSWORD "
            "or FAUSTAPP_SASL_PASSWORD_FILE"
        )
    if not sasl:
        given = [
            name
            for name in (
                "FAUSTAPP_SASL_MECHANISM",
                "FAUSTAPP_SASL_USERNAME",
                "FAUSTAPP_SASL_PASSWORD",
                "FAUSTAPP_SASL_PASSWORD_FILE",
            )
            if env.get(name, "").strip()
        ]
        if given:
            raise SettingsError(
                f"{', '.join(given)} set, but FAUSTAPP_SECURITY_PROTOCOL={protocol} does not use "
                "SASL (use SASL_SSL or SASL_PLAINTEXT)"
            )
    if not tls:
        given = [f"FAUSTAPP_SSL_{name.upper()}" for name, path in files.items() if path]
        if given:
            raise SettingsError(
                f"{', '.join(given)} set, but FAUSTAPP_SECURITY_PROTOCOL={protocol} is not TLS "
                "(use SSL or SASL_SSL)"
            )
    if files["keyfile"] and not files["certfile"]:
        raise SettingsError("FAUSTAPP_SSL_KEYFILE needs FAUSTAPP_SSL_CERTFILE (mutual TLS)")
    return {
        "security_protocol": protocol,
        "sasl_mechanism": mechanism,
        "sasl_username": username if sasl else "",
        "sasl_password": password if sasl else "",
        "ssl_cafile": files["cafile"],
        "ssl_certfile": files["certfile"],
        "ssl_keyfile": files["keyfile"],
    }


def _upper_choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().upper()
    if value not in choices and value.replace("_", "-") in choices:  # SCRAM_SHA_512 too
        value = value.replace("_", "-")
    if value not in choices:
        raise SettingsError(f"{name}={raw!r} must be one of: {', '.join(choices)}")
    return value


def _password(env: Mapping[str, str]) -> str:
    """From the variable or from a file (its trailing newline dropped); never shown."""
    direct = env.get("FAUSTAPP_SASL_PASSWORD", "")
    path = _readable_file(env, "FAUSTAPP_SASL_PASSWORD_FILE")
    if direct and path:
        raise SettingsError(
            "FAUSTAPP_SASL_PASSWORD and FAUSTAPP_SASL_PASSWORD_FILE are both set; keep one"
        )
    if path is None:
        return direct
    try:
        value = path.read_text().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(
            f"FAUSTAPP_SASL_PASSWORD_FILE={str(path)!r} cannot be read: {type(exc).__name__}"
        ) from None
    if not value:
        raise SettingsError(f"FAUSTAPP_SASL_PASSWORD_FILE={str(path)!r} is empty")
    return value


def _readable_file(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    path = Path(raw).expanduser().absolute()
    if not path.is_file():
        raise SettingsError(f"{name}={raw!r}: no such file")
    if not os.access(path, os.R_OK):
        raise SettingsError(f"{name}={raw!r}: file not readable")
    return path
