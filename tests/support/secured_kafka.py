"""A real broker with a SASL_SSL, a TLS-only and a SASL_PLAINTEXT listener besides PLAINTEXT
(the SASL ones take SCRAM-SHA-256 and SCRAM-SHA-512), started through ``ops/kafka/kafka.sh
start --sasl-ssl-port --ssl-port --sasl-plaintext-port``."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

from support.kafka_broker import KAFKA_SH, PROJECT_ROOT, BrokerError, free_port

START_TIMEOUT_S = 240.0
USER = "faustapp-it"


class SecuredBroker:
    """One KRaft node on 127.0.0.1: PLAINTEXT (for the test's own checks), SASL_SSL, SSL and
    SASL_PLAINTEXT."""

    def __init__(self, data_dir: Path, *, client_auth: bool = False) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.client_auth = client_auth  # the SSL listener requires a client certificate
        self.port, self.controller_port = free_port(), free_port()
        self.sasl_ssl_port, self.ssl_port = free_port(), free_port()
        self.sasl_plaintext_port = free_port()
        self.password = secrets.token_hex(12)

    @property
    def bootstrap(self) -> str:
        """The PLAINTEXT listener."""
        return f"127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        """The CA the script made; it signed the broker's certificate."""
        return self.data_dir / "tls" / "ca.pem"

    def _run(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(KAFKA_SH), *args],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self) -> SecuredBroker:
        """Start and block until every listener serves; raises BrokerError with the log tail."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ports = ["--port", str(self.port), "--controller-port", str(self.controller_port)]
        ports += ["--sasl-ssl-port", str(self.sasl_ssl_port), "--ssl-port", str(self.ssl_port)]
        ports += ["--sasl-plaintext-port", str(self.sasl_plaintext_port)]
        user = ["--scram-user", USER, "--scram-password", self.password]
        if self.client_auth:
            user.append("--ssl-client-auth")
        proc = self._run(
            "start",
            *ports,
            *user,
            "--data-dir",
            str(self.data_dir),
            "--owner-pid",
            str(os.getpid()),
            timeout=START_TIMEOUT_S,
        )
        if proc.returncode != 0 or proc.stdout.strip().splitlines()[-1:] != [self.bootstrap]:
            self.stop()
            raise BrokerError(f"kafka.sh start failed: {proc.stderr.strip()[-3000:]}")
        return self

    def stop(self) -> None:
        """Stop the broker; safe when it is not running."""
        self._run("stop", "--data-dir", str(self.data_dir), timeout=90)

    def env(self, listener: str, **overrides: str) -> dict[str, str]:
        """``FAUSTAPP_*`` settings that reach this broker through ``listener`` (sasl_ssl, ssl,
        sasl_plaintext); an override set to "" removes that setting."""
        if listener == "sasl_ssl":
            env = {
                "FAUSTAPP_BROKER": f"kafka://127.0.0.1:{self.sasl_ssl_port}",
                "FAUSTAPP_SECURITY_PROTOCOL": "SASL_SSL",
                "FAUSTAPP_SASL_MECHANISM": "SCRAM-SHA-512",
                "FAUSTAPP_SASL_USERNAME": USER,
                "FAUSTAPP_SASL_PASSWORD": self.password,
                "FAUSTAPP_SSL_CAFILE": str(self.ca_file),
            }
        elif listener == "ssl":
            env = {
                "FAUSTAPP_BROKER": f"kafka://127.0.0.1:{self.ssl_port}",
                "FAUSTAPP_SECURITY_PROTOCOL": "SSL",
                "FAUSTAPP_SSL_CAFILE": str(self.ca_file),
            }
            if self.client_auth:  # the client certificate the script made, signed by its CA
                env["FAUSTAPP_SSL_CERTFILE"] = str(self.ca_file.with_name("client.pem"))
                env["FAUSTAPP_SSL_KEYFILE"] = str(self.ca_file.with_name("client.key"))
        elif listener == "sasl_plaintext":
            env = {
                "FAUSTAPP_BROKER": f"kafka://127.0.0.1:{self.sasl_plaintext_port}",
                "FAUSTAPP_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "FAUSTAPP_SASL_MECHANISM": "SCRAM-SHA-256",
                "FAUSTAPP_SASL_USERNAME": USER,
                "FAUSTAPP_SASL_PASSWORD": self.password,
            }
        else:
            raise ValueError(listener)
        env.update(overrides)
        return {name: value for name, value in env.items() if value != ""}


def other_ca(folder: Path) -> Path:
    """A CA certificate that did not sign the broker's: a client trusting only it must refuse."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
        + ["-keyout", str(folder / "other.key"), "-out", str(folder / "other.pem")]
        + ["-subj", "/CN=some other CA"],
        check=True,
        capture_output=True,
    )
    return folder / "other.pem"
