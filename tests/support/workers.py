"""Worker processes for tests: real ``faustapp worker`` processes against a real broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FAUSTAPP = Path(sys.executable).with_name("faustapp")


def http_get(url: str, timeout: float = 5.0) -> tuple[int, dict, dict]:
    """GET a JSON URL: (status, body, headers), for 4xx/5xx too."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, orjson.loads(resp.read() or b"null"), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = {"raw": raw.decode(errors="replace")}
        return exc.code, body, dict(exc.headers)


class WorkerProcess:
    """One faustapp worker with its own data folder and web port, logging to a file."""

    def __init__(
        self,
        bootstrap: str,
        data_dir: Path,
        web_port: int,
        *,
        app_id: str = "faustapp",
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.data_dir = Path(data_dir)
        self.web_port = web_port
        self.app_id = app_id
        self.extra_env = dict(extra_env or {})
        self.proc: subprocess.Popen | None = None
        self.log_path = self.data_dir / "worker.log"

    @property
    def url(self) -> str:
        """Base URL of the worker's web server."""
        return f"http://127.0.0.1:{self.web_port}"

    def env(self) -> dict[str, str]:
        """Environment the worker runs with."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAUSTAPP_")}
        env.update(
            FAUSTAPP_BROKER=f"kafka://{self.bootstrap}",
            FAUSTAPP_DATA_DIR=str(self.data_dir),
            FAUSTAPP_WEB_PORT=str(self.web_port),
            FAUSTAPP_APP_ID=self.app_id,
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def start(self) -> WorkerProcess:
        """Start the process (returns at once; see :meth:`wait_ready`)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.proc = subprocess.Popen(
            [str(FAUSTAPP), "worker", "-l", "info"],
            cwd=PROJECT_ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.proc is not None and self.proc.poll() is None

    def health(self) -> tuple[int, dict]:
        """Status and body of /api/health, (0, {}) when the port does not answer."""
        try:
            status, body, _ = http_get(f"{self.url}/api/health", timeout=2)
        except (OSError, urllib.error.URLError):
            return 0, {}
        return status, body

    def wait_ready(self, timeout: float = 90.0, partitions: int | None = None) -> dict:
        """Block until the worker is recovered (and owns ``partitions`` actives, if given)."""
        deadline = time.monotonic() + timeout
        body: dict = {}
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"worker exited early:\n{self.log_tail()}")
            status, body = self.health()
            if status == 200 and (
                partitions is None or len(body.get("active_partitions", [])) == partitions
            ):
                return body
            time.sleep(0.5)
        raise TimeoutError(f"worker not ready after {timeout}s (last {body}):\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait (SIGKILL after ``timeout``): a clean shutdown."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash, no chance to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def log_tail(self, lines: int = 60) -> str:
        """Last lines of the worker's log, for failure messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
