"""Replication, TLS/SASL and advertised-URL settings, and the client options made from them."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed
from faust.auth import SASLCredentials, SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from faustapp import kafka_client
from faustapp.generator.config import GeneratorConfig, config_problems
from faustapp.kafka_settings import KafkaSettings
from faustapp.settings import Settings, SettingsError

SECRET = "s3cr3t-Pa55word"


def make_ca(folder: Path) -> Path:
    """A self-signed CA certificate made with openssl, as a cluster's CA file would be."""
    key, cert = folder / "ca.key", folder / "ca.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=test CA"],
        check=True,
        capture_output=True,
    )
    return cert


def sasl_env(**more: str) -> dict[str, str]:
    env = {
        "FAUSTAPP_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "FAUSTAPP_SASL_MECHANISM": "SCRAM-SHA-512",
        "FAUSTAPP_SASL_USERNAME": "alice",
        "FAUSTAPP_SASL_PASSWORD": SECRET,
    }
    env.update(more)
    return env


# --- replication ---------------------------------------------------------------------------


def test_defaults_keep_a_single_local_broker_working() -> None:
    settings = Settings.from_env({})
    assert settings.replication_factor == 1
    assert settings.min_insync_replicas is None
    assert settings.security_protocol == "PLAINTEXT"
    assert kafka_client.client_options(settings) == {"security_protocol": "PLAINTEXT"}
    assert kafka_client.topic_options(settings) == {"replicas": 1, "config": {}}
    assert kafka_client.faust_options(settings) == {
        "broker_credentials": None,
        "producer_acks": -1,
        "topic_replication_factor": 1,
    }


def test_replication_and_min_insync_reach_topics_and_faust() -> None:
    settings = Settings.from_env(
        {"FAUSTAPP_REPLICATION_FACTOR": "3", "FAUSTAPP_MIN_INSYNC_REPLICAS": "2"}
    )
    assert kafka_client.topic_options(settings) == {
        "replicas": 3,
        "config": {"min.insync.replicas": "2"},
    }
    assert kafka_client.faust_options(settings)["topic_replication_factor"] == 3
    # What a caller sets for one topic wins over the settings' default.
    assert kafka_client.with_topic_config(
        settings, {"cleanup.policy": "compact", "min.insync.replicas": "3"}
    ) == {"cleanup.policy": "compact", "min.insync.replicas": "3"}
    assert kafka_client.with_topic_config(settings, None) == {"min.insync.replicas": "2"}


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"FAUSTAPP_REPLICATION_FACTOR": "0"}, "FAUSTAPP_REPLICATION_FACTOR=0 is out of range"),
        ({"FAUSTAPP_REPLICATION_FACTOR": "three"}, "is not an integer"),
        ({"FAUSTAPP_MIN_INSYNC_REPLICAS": "2"}, "above FAUSTAPP_REPLICATION_FACTOR=1"),
        (
            {"FAUSTAPP_REPLICATION_FACTOR": "3", "FAUSTAPP_MIN_INSYNC_REPLICAS": "4"},
            "above FAUSTAPP_REPLICATION_FACTOR=3",
        ),
        ({"FAUSTAPP_MIN_INSYNC_REPLICAS": "0"}, "out of range"),
    ],
)
def test_bad_replication_settings_are_refused(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment):
        Settings.from_env(env)


def test_producers_wait_for_every_in_sync_replica() -> None:
    options = kafka_client.producer_options(Settings.from_env({}))
    assert options["acks"] == "all"
    assert options["enable_idempotence"] is True


# --- security ------------------------------------------------------------------------------


def test_sasl_settings_become_client_and_faust_options() -> None:
    settings = Settings.from_env(sasl_env())
    assert kafka_client.client_options(settings) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "alice",
        "sasl_plain_password": SECRET,
    }
    credentials = kafka_client.faust_credentials(settings)
    assert isinstance(credentials, SASLCredentials)
    # Faust's aiokafka driver turns them into the same options for its consumer and producer.
    assert credentials_to_aiokafka_auth(credentials) == {
        **kafka_client.client_options(settings),
        "ssl_context": None,
    }


def test_sasl_ssl_and_ssl_share_one_verifying_context(tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    settings = Settings.from_env(
        sasl_env(FAUSTAPP_SECURITY_PROTOCOL="sasl_ssl", FAUSTAPP_SSL_CAFILE=str(ca))
    )
    options = kafka_client.client_options(settings)
    context = options["ssl_context"]
    assert options["security_protocol"] == "SASL_SSL"
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [cert["subject"] for cert in context.get_ca_certs()] == [((("commonName", "test CA"),),)]
    auth = credentials_to_aiokafka_auth(kafka_client.faust_credentials(settings))
    assert auth["security_protocol"] == "SASL_SSL" and auth["ssl_context"] is context

    tls = Settings.from_env({"FAUSTAPP_SECURITY_PROTOCOL": "SSL", "FAUSTAPP_SSL_CAFILE": str(ca)})
    credentials = kafka_client.faust_credentials(tls)
    assert isinstance(credentials, SSLCredentials)
    assert credentials_to_aiokafka_auth(credentials) == kafka_client.client_options(tls)
    assert kafka_client.client_options(tls)["ssl_context"] is context


def test_password_file_is_read_without_its_newline(tmp_path: Path) -> None:
    secret_file = tmp_path / "password"
    secret_file.write_text(SECRET + "\n")
    env = sasl_env(FAUSTAPP_SASL_PASSWORD_FILE=str(secret_file))
    del env["FAUSTAPP_SASL_PASSWORD"]
    assert Settings.from_env(env).sasl_password == SECRET


def test_scram_mechanism_is_accepted_with_underscores() -> None:
    settings = Settings.from_env(sasl_env(FAUSTAPP_SASL_MECHANISM="scram_sha_256"))
    assert settings.sasl_mechanism == "SCRAM-SHA-256"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"FAUSTAPP_SECURITY_PROTOCOL": "TLS"}, "must be one of: PLAINTEXT, SSL"),
        (sasl_env(FAUSTAPP_SASL_MECHANISM="GSSAPI"), "must be one of: PLAIN, SCRAM"),
        (sasl_env(FAUSTAPP_SASL_USERNAME=""), "needs FAUSTAPP_SASL_USERNAME"),
        (sasl_env(FAUSTAPP_SASL_PASSWORD=""), "needs FAUSTAPP_SASL_PASSWORD"),
        (
            sasl_env(FAUSTAPP_SASL_PASSWORD_FILE="/nonexistent/password"),
            "FAUSTAPP_SASL_PASSWORD_FILE='/nonexistent/password': no such file",
        ),
        ({"FAUSTAPP_SASL_USERNAME": "alice"}, "PLAINTEXT does not use SASL"),
        ({"FAUSTAPP_SASL_PASSWORD": SECRET}, "PLAINTEXT does not use SASL"),
        (
            {"FAUSTAPP_SECURITY_PROTOCOL": "SSL", "FAUSTAPP_SSL_CAFILE": "/nonexistent/ca.pem"},
            "no such file",
        ),
    ],
)
def test_bad_security_settings_are_refused_without_the_password(
    env: dict[str, str], fragment: str
) -> None:
    with pytest.raises(SettingsError, match=fragment) as caught:
        Settings.from_env(env)
    assert SECRET not in str(caught.value)


def test_tls_files_with_a_plaintext_protocol_are_refused(tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    with pytest.raises(SettingsError, match="FAUSTAPP_SSL_CAFILE set, but .*PLAINTEXT is not TLS"):
        Settings.from_env({"FAUSTAPP_SSL_CAFILE": str(ca)})
    with pytest.raises(SettingsError, match="FAUSTAPP_SSL_KEYFILE needs FAUSTAPP_SSL_CERTFILE"):
        Settings.from_env(
            {"FAUSTAPP_SECURITY_PROTOCOL": "SSL", "FAUSTAPP_SSL_KEYFILE": str(tmp_path / "ca.key")}
        )


def test_a_ca_file_that_is_no_certificate_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    settings = Settings.from_env(
        {"FAUSTAPP_SECURITY_PROTOCOL": "SSL", "FAUSTAPP_SSL_CAFILE": str(junk)}
    )
    with pytest.raises(SettingsError, match="holds no usable CA certificate"):
        kafka_client.client_options(settings)


def test_secrets_stay_out_of_repr() -> None:
    settings = Settings.from_env(sasl_env())
    assert settings.sasl_password == SECRET
    assert SECRET not in repr(settings)
    assert "alice" in repr(settings)
    assert SECRET not in repr(settings.kafka)


def test_the_kafka_part_reads_alone_and_settings_answer_for_it() -> None:
    env = sasl_env(FAUSTAPP_REPLICATION_FACTOR="3", FAUSTAPP_MIN_INSYNC_REPLICAS="2")
    kafka = KafkaSettings.from_env(env)
    settings = Settings.from_env(env)
    assert settings.kafka == kafka
    assert (settings.replication_factor, settings.min_insync_replicas) == (3, 2)
    assert (settings.security_protocol, settings.sasl_username) == ("SASL_PLAINTEXT", "alice")
    assert settings.uses_sasl and not settings.uses_ssl
    assert Settings().kafka == KafkaSettings()


# --- advertised URL ------------------------------------------------------------------------


def test_advertised_url_defaults_to_the_bind_address() -> None:
    assert Settings.from_env({"FAUSTAPP_WEB_PORT": "7001"}).advertised_url == (
        "http://127.0.0.1:7001"
    )
    settings = Settings.from_env(
        {
            "FAUSTAPP_WEB_HOST": "0.0.0.0",
            "FAUSTAPP_WEB_PORT": "7001",
            "FAUSTAPP_WEB_ADVERTISED_URL": "http://worker-1.example:7001/",
        }
    )
    assert settings.web_host == "0.0.0.0"
    assert settings.advertised_url == "http://worker-1.example:7001"


@pytest.mark.parametrize(
    "url",
    [
        "worker-1:6066",
        "ftp://worker-1:6066",
        "http://worker-1",
        "http://worker-1:6066/api",
        "http://worker-1:6066?x=1",
        "http://user:pw@worker-1:6066",
        "http://0.0.0.0:6066",
        "http://worker-1:99999",
    ],
)
def test_bad_advertised_urls_are_refused(url: str) -> None:
    with pytest.raises(SettingsError, match="FAUSTAPP_WEB_ADVERTISED_URL"):
        Settings.from_env({"FAUSTAPP_WEB_ADVERTISED_URL": url})


# --- refusals and the probe ----------------------------------------------------------------


def test_refusals_are_told_from_an_unreachable_broker(tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    tls = Settings.from_env({"FAUSTAPP_SECURITY_PROTOCOL": "SSL", "FAUSTAPP_SSL_CAFILE": str(ca)})
    untrusted = ssl.SSLCertVerificationError(1, "certificate verify failed")
    untrusted.verify_message = "unable to get local issuer certificate"
    message = kafka_client.refusal(untrusted, tls, "127.0.0.1:9093")
    assert message is not None
    assert "not trusted (unable to get local issuer certificate)" in message
    assert str(ca) in message

    sasl = Settings.from_env(sasl_env())
    message = kafka_client.refusal(SaslAuthenticationFailed("bad"), sasl, "127.0.0.1:9094")
    assert message is not None
    assert "refused the login of FAUSTAPP_SASL_USERNAME='alice'" in message
    assert SECRET not in message

    for retryable in (ConnectionRefusedError(), asyncio.TimeoutError(), KafkaConnectionError()):
        assert kafka_client.refusal(retryable, sasl, "127.0.0.1:9094") is None


def test_probe_of_a_closed_port_fails_fast_as_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings.from_env({"FAUSTAPP_BROKER": f"kafka://127.0.0.1:{port}"})
    started = time.monotonic()
    with pytest.raises(KafkaConnectionError, match=f"127.0.0.1:{port}: connection refused"):
        asyncio.run(kafka_client.probe(settings, timeout=3.0))
    assert time.monotonic() - started < 3.0


# --- generator -----------------------------------------------------------------------------


def test_generator_min_insync_is_checked_against_its_replication_factor() -> None:
    assert config_problems(GeneratorConfig(replication_factor=3, min_insync_replicas=2)) == []
    with pytest.raises(ValueError, match=r"within \[1, replication-factor=1\], got 2"):
        GeneratorConfig(replication_factor=1, min_insync_replicas=2)
