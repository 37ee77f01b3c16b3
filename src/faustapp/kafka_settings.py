"""How faustapp reaches a secured Kafka and how durable the topics it creates are.

``FAUSTAPP_SECURITY_PROTOCOL``, the SASL and TLS variables, ``FAUSTAPP_REPLICATION_FACTOR`` and
``FAUSTAPP_MIN_INSYNC_REPLICAS``, checked as a whole; :class:`faustapp.settings.Settings` holds
them and answers for them, so a caller reads ``settings.security_protocol`` as before.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from faustapp.env_values import SettingsError, env_int

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
#: Highest replication factor accepted (Kafka has no hard limit; more is a typing error).
MAX_REPLICATION_FACTOR = 16


@dataclass(frozen=True)
class KafkaSettings:
    """Connection security and replication: one concern, validated apart from the rest."""

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

    @property
    def uses_ssl(self) -> bool:
        """Whether connections to Kafka are TLS."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        """Whether connections to Kafka authenticate with SASL."""
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KafkaSettings:
        """Read and check these variables, failing loudly on the first bad one."""
        replication_factor = env_int(
            env, "FAUSTAPP_REPLICATION_FACTOR", 1, low=1, high=MAX_REPLICATION_FACTOR
        )
        return cls(
            replication_factor=replication_factor,
            min_insync_replicas=_min_insync(env, replication_factor),
            **_security(env),
        )


def _min_insync(env: Mapping[str, str], replication_factor: int) -> int | None:
    """At most the replication factor: a higher value would refuse every acks=all write."""
    name = "FAUSTAPP_MIN_INSYNC_REPLICAS"
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    value = env_int(env, name, 1, low=1, high=MAX_REPLICATION_FACTOR)
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
