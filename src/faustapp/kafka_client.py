"""How faustapp's Kafka clients connect and what the topics it creates look like, from Settings.

One place for every client (the Faust worker, the reference-table readers, the generators,
``faustapp tail``): TLS and SASL options, ``acks=all`` for producers, the replication factor and
``min.insync.replicas`` of created topics. Also the start-up checks that need them: a probe that
tells a refused login or an untrusted certificate (fatal) from a broker that is not up yet
(retry), and the shapes of existing topics (partitions, replicas) the start-up checks compare.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from faustapp.settings import Settings, SettingsError

log = logging.getLogger(__name__)

#: Longest wait for one broker to accept a connection, finish TLS and log in during the probe.
PROBE_TIMEOUT_S = 10.0
_AUTH_ERRORS = (
    SaslAuthenticationFailed,
    AuthenticationFailedError,
    UnsupportedSaslMechanismError,
    IllegalSaslStateError,
)


class KafkaAccessRefused(Exception):
    """Kafka answered but refused us (a login or a certificate): retrying cannot help."""


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of every connection (None without TLS); the same object for the same
    files, so Faust and raw clients share it."""
    if not settings.uses_ssl:
        return None
    return _context(settings.ssl_cafile, settings.ssl_certfile, settings.ssl_keyfile)


@functools.lru_cache(maxsize=8)
def _context(cafile: Path | None, certfile: Path | None, keyfile: Path | None) -> ssl.SSLContext:
    """Verifies the broker's certificate and host name (system CAs unless ``cafile``)."""
    try:
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(cafile) if cafile else None
        )
    except (ssl.SSLError, OSError) as exc:
        raise SettingsError(
            f"FAUSTAPP_SSL_CAFILE={str(cafile)!r} holds no usable CA certificate: {exc}"
        ) from None
    if certfile is not None:
        try:
            context.load_cert_chain(str(certfile), str(keyfile) if keyfile else None)
        except (ssl.SSLError, OSError) as exc:
            raise SettingsError(
                f"FAUSTAPP_SSL_CERTFILE/FAUSTAPP_SSL_KEYFILE ({certfile}, {keyfile}): not a "
                f"certificate and its private key: {exc}"
            ) from None
    return context


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (consumer, producer, admin, client)."""
    options: dict[str, Any] = {"security_protocol": settings.security_protocol}
    if settings.uses_ssl:
        options["ssl_context"] = ssl_context(settings)
    if settings.uses_sasl:
        options.update(
            sasl_mechanism=settings.sasl_mechanism,
            sasl_plain_username=settings.sasl_username,
            sasl_plain_password=settings.sasl_password,
        )
    return options


def producer_options(settings: Settings) -> dict[str, Any]:
    """An aiokafka producer's: a record counts as written once every in-sync replica has it."""
    return {**client_options(settings), "acks": "all", "enable_idempotence": True}


def faust_credentials(settings: Settings) -> Any:
    """Faust's ``broker_credentials`` (None for PLAINTEXT), which its aiokafka driver hands to
    the worker's consumers, producers and the client that creates topics."""
    import faust  # imported here: the generators and ``tail`` do not load Faust

    context = ssl_context(settings)
    if settings.uses_sasl:
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password,
            ssl_context=context,  # SASL_SSL with a context, SASL_PLAINTEXT without
            mechanism=settings.sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def faust_options(settings: Settings) -> dict[str, Any]:
    """Settings of ``faust.App`` that follow from these: credentials, acks, replication."""
    return {
        "broker_credentials": faust_credentials(settings),
        "producer_acks": -1,  # "all": every in-sync replica has the record
        "topic_replication_factor": settings.replication_factor,
    }


def topic_config(settings: Settings) -> dict[str, str]:
    """Configuration of a topic faustapp creates (``min.insync.replicas`` when set)."""
    if settings.min_insync_replicas is None:
        return {}
    return {"min.insync.replicas": str(settings.min_insync_replicas)}


def topic_options(settings: Settings) -> dict[str, Any]:
    """``replicas`` and ``config`` for ``app.topic(...)`` / ``app.Table(extra_topic_configs=)``."""
    return {"replicas": settings.replication_factor, "config": topic_config(settings)}


def with_topic_config(settings: Settings, config: Mapping[str, Any] | None) -> dict[str, Any]:
    """``config`` plus the settings' topic configuration, what the caller set winning."""
    return {**topic_config(settings), **dict(config or {})}


# --- start-up checks ------------------------------------------------------------------------


def _hosts(settings: Settings) -> list[tuple[str, int]]:
    out = []
    for item in settings.bootstrap_servers.split(","):
        host, _, port = item.strip().rpartition(":")
        out.append((host.strip("[]"), int(port)))
    return out


def refusal(exc: BaseException, settings: Settings, where: str) -> str | None:
    """The message for an error retrying cannot fix (login, certificate, TLS), else None."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        hint = (
            f"FAUSTAPP_SSL_CAFILE={str(settings.ssl_cafile)!r}"
            if settings.ssl_cafile
            else "the system's CA certificates (set FAUSTAPP_SSL_CAFILE to the cluster's CA)"
        )
        return (
            f"Kafka at {where}: the broker's TLS certificate is not trusted "
            f"({exc.verify_message or exc.reason}); checked against {hint}"
        )
    if isinstance(exc, ssl.SSLError) and not isinstance(
        exc, ssl.SSLEOFError | ssl.SSLZeroReturnError
    ):
        return (
            f"Kafka at {where}: TLS handshake failed ({exc.reason or exc}); check "
            f"FAUSTAPP_SECURITY_PROTOCOL={settings.security_protocol} against the listener and "
            "FAUSTAPP_SSL_CERTFILE/FAUSTAPP_SSL_KEYFILE if it requires a client certificate"
        )
    if isinstance(exc, UnsupportedSaslMechanismError):
        return (
            f"Kafka at {where} does not offer FAUSTAPP_SASL_MECHANISM={settings.sasl_mechanism} "
            f"on this {settings.security_protocol} listener"
        )
    if isinstance(exc, _AUTH_ERRORS):
        detail = str(exc).strip() or type(exc).__name__
        return (
            f"Kafka at {where} refused the login of FAUSTAPP_SASL_USERNAME="
            f"{settings.sasl_username!r} with {settings.sasl_mechanism} over "
            f"{settings.security_protocol} ({detail}); check the user name, "
            "FAUSTAPP_SASL_PASSWORD(_FILE) and FAUSTAPP_SASL_MECHANISM"
        )
    return None


def _unreachable(exc: BaseException, settings: Settings, timeout: float) -> str:
    """Why a broker did not answer, in words (a refusal is told by :func:`refusal`)."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, asyncio.TimeoutError):
        return f"no answer within {timeout:.0f} s"
    if isinstance(exc, ConnectionResetError | KafkaConnectionError | ssl.SSLError):
        hint = " or one that requires a client certificate" if settings.uses_ssl else ""
        return (
            "the broker closed the connection: a listener of another protocol than "
            f"FAUSTAPP_SECURITY_PROTOCOL={settings.security_protocol}{hint}?"
        )
    return type(exc).__name__


async def probe(settings: Settings, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Connect, handshake and log in to the first bootstrap broker that answers.

    Returns once one broker accepted us; raises :class:`KafkaAccessRefused` as soon as one
    refuses our login or certificate, and ``KafkaConnectionError`` when none answered.
    """
    options = client_options(settings)
    failures = []
    for host, port in _hosts(settings):
        where = f"{host}:{port}"
        try:
            conn = await asyncio.wait_for(
                create_conn(
                    host,
                    port,
                    client_id="faustapp-probe",
                    request_timeout_ms=int(timeout * 1000),
                    ssl_context=options.get("ssl_context"),
                    security_protocol=settings.security_protocol,
                    sasl_mechanism=options.get("sasl_mechanism", "PLAIN"),
                    sasl_plain_username=options.get("sasl_plain_username"),
                    sasl_plain_password=options.get("sasl_plain_password"),
                ),
                timeout + 1.0,
            )
        except (OSError, KafkaError, asyncio.TimeoutError) as exc:
            message = refusal(exc, settings, where)
            if message is not None:
                raise KafkaAccessRefused(message) from None
            failures.append(f"{where}: {_unreachable(exc, settings, timeout)}")
            continue
        conn.close()
        return
    raise KafkaConnectionError("; ".join(failures))


@dataclass(frozen=True, slots=True)
class TopicShape:
    """What an existing topic looks like: how many partitions, fewest replicas of one."""

    partitions: int
    fewest_replicas: int


async def existing_topics(
    settings: Settings, topics: Iterable[str], timeout: float = 15.0
) -> dict[str, TopicShape]:
    """The shape of each topic among ``topics`` that exists (missing ones are left out: they
    will be created as configured)."""
    wanted = set(topics)
    if not wanted:
        return {}
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id="faustapp-topic-check",
        request_timeout_ms=int(timeout * 1000),
        **client_options(settings),
    )
    await admin.start()
    try:
        # Every topic's metadata: naming topics would let a broker with auto-creation on
        # create the missing ones with its own defaults.
        described = await asyncio.wait_for(admin.describe_topics(), timeout)
    finally:
        await admin.close()
    return {
        topic["topic"]: TopicShape(
            len(topic["partitions"]), min(len(p["replicas"]) for p in topic["partitions"])
        )
        for topic in described
        if topic["topic"] in wanted and not topic.get("error_code") and topic.get("partitions")
    }


async def under_replicated(
    settings: Settings, topics: Iterable[str], timeout: float = 15.0
) -> dict[str, int]:
    """Existing topics among ``topics`` with fewer replicas than configured: name -> fewest
    replicas of a partition."""
    if settings.replication_factor <= 1:
        return {}
    shapes = await existing_topics(settings, topics, timeout)
    return {
        name: shape.fewest_replicas
        for name, shape in shapes.items()
        if shape.fewest_replicas < settings.replication_factor
    }
