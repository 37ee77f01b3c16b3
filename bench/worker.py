"""One ``faustapp worker`` process on loopback with its own port and data dir, for the extras
that start, query, stop and restart workers."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bench.common import PROJECT_ROOT, free_port, http_text, parse_metrics, terminate
from bench.consumers import Context

FAUSTAPP = Path(sys.executable).with_name("faustapp")
PIPELINE = "sensor-stats-1m"
POLL_S = 0.1


class Worker:
    """One ``faustapp worker`` process with its own port and data dir."""

    def __init__(
        self,
        ctx: Context,
        app_id: str,
        data_dir: Path,
        prefix: str,
        name: str,
        *,
        guarantee: str = "at_least_once",
        pipeline: str | None = PIPELINE,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.ctx, self.app_id, self.data_dir, self.prefix, self.name = (
            ctx,
            app_id,
            data_dir,
            prefix,
            name,
        )
        self.port = free_port()
        self.guarantee = guarantee
        self.pipeline = pipeline
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None
        self.spawn = 0.0
        self.log_path = ctx.logs / f"{name}.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        ctx = self.ctx
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAUSTAPP_")}
        env.update(
            FAUSTAPP_BROKER=f"kafka://{ctx.bootstrap}",
            FAUSTAPP_DATA_DIR=str(self.data_dir),
            FAUSTAPP_WEB_PORT=str(self.port),
            FAUSTAPP_WEB_HOST="127.0.0.1",
            FAUSTAPP_APP_ID=self.app_id,
            FAUSTAPP_TOPIC_PREFIX=self.prefix,
            FAUSTAPP_PROCESSING_GUARANTEE=self.guarantee,
            FAUSTAPP_GRACE_MS=str(ctx.dataset.spec.grace_ms),
            FAUSTAPP_PARTITIONS=str(ctx.dataset.spec.partitions),
            FAUSTAPP_MAX_FUTURE_SKEW_MS=str(86_400_000),
            PYTHONUNBUFFERED="1",
        )
        if self.pipeline is not None:  # None: the default deployment's pipelines
            env["FAUSTAPP_PIPELINES"] = self.pipeline
        env.update(self.extra_env)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.spawn = time.monotonic()
            self.proc = subprocess.Popen(
                [str(FAUSTAPP), "worker", "-l", "warn"],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> dict:
        if self.proc is None:
            return {}
        code, took = terminate(self.proc, timeout)
        return {"returncode": code, "shutdown_s": round(took, 2)}

    def metrics(self) -> dict | None:
        text = http_text(f"{self.base}/metrics", timeout=5)
        return parse_metrics(text) if text is not None else None

    def status(self, path: str) -> tuple[int | None, bytes]:
        try:
            with urllib.request.urlopen(f"{self.base}{path}", timeout=5) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            return None, b""

    def wait_for(self, check: Callable[[], bool], timeout: float, what: str) -> float:
        """Poll ``check()`` until true; seconds since spawn. Raises on timeout or exit."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return time.monotonic() - self.spawn
            if not self.alive():
                raise RuntimeError(f"{self.name}: worker exited ({self.proc.returncode}) {what}")
            time.sleep(POLL_S)
        raise TimeoutError(f"{self.name}: not {what} within {timeout:.0f}s")

    def healthy(self) -> bool:
        return self.status("/api/health")[0] == 200

    def rss(self) -> dict:
        out: dict[str, float] = {}
        with contextlib.suppress(OSError, ValueError, IndexError, AttributeError):
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0].lower() + "_mib"] = round(int(line.split()[1]) / 1024, 1)
        return out
