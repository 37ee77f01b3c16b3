"""A real Prometheus server for tests: scrapes given targets every second, answers PromQL.

Prometheus is not installed by the tests (``make install`` does it). When the binary is missing
the helpers raise :class:`PrometheusNotInstalled`, which fixtures turn into a test failure: a
monitoring suite that silently skips proves nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import yaml

from faustapp.generator import GeneratorConfig, ProduceReport, produce

from support.kafka_broker import free_port
from support.workers import WorkerProcess

INSTALL_HINT = (
    "install it with `make install` (Debian/Ubuntu: `apt-get install -y prometheus`, which also "
    "provides promtool)"
)
#: Job name of the scraped workers; the compose config and the dashboards use the same one.
JOB = "faustapp"


class PrometheusNotInstalled(RuntimeError):
    """The ``prometheus`` or ``promtool`` binary is not on PATH."""


class PrometheusError(RuntimeError):
    """Prometheus did not start, or answered a query with an error; carries the log tail."""


def find_binary(name: str) -> str:
    """Absolute path of ``prometheus`` or ``promtool``, or :class:`PrometheusNotInstalled`."""
    found = shutil.which(name)
    if found is None:
        raise PrometheusNotInstalled(f"`{name}` was not found on PATH; {INSTALL_HINT}")
    return found


def promtool(
    *args: str, stdin: str | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess:
    """Run ``promtool`` with ``args`` and return the finished process (output as text)."""
    return subprocess.run(
        [find_binary("promtool"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def sample_value(sample: dict) -> float:
    """The float value of one instant-vector (or wrapped scalar) result."""
    return float(sample["value"][1])


class PrometheusServer:
    """One Prometheus process on loopback with its own config, data folder and log file."""

    def __init__(
        self,
        targets: Sequence[str],
        port: int,
        data_dir: Path,
        *,
        scrape_interval: str = "1s",
        rule_files: Sequence[Path] = (),
        job: str = JOB,
    ) -> None:
        self.targets = list(targets)
        self.port = port
        self.data_dir = Path(data_dir)
        self.scrape_interval = scrape_interval
        self.rule_files = [Path(path).resolve() for path in rule_files]
        self.job = job
        self.config_path = self.data_dir / "prometheus.yml"
        self.log_path = self.data_dir / "prometheus.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """Base URL of the server's HTTP API."""
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict:
        """The generated configuration: one job scraping every target at ``scrape_interval``."""
        config: dict = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "scrape_configs": [
                {
                    "job_name": self.job,
                    "metrics_path": "/metrics",
                    "static_configs": [{"targets": self.targets}],
                }
            ],
        }
        if self.rule_files:
            config["rule_files"] = [str(path) for path in self.rule_files]
        return config

    def start(self) -> PrometheusServer:
        """Write the config and start the process (returns at once; see :meth:`wait_ready`)."""
        binary = find_binary("prometheus")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        try:
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={self.data_dir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=info",
                ],
                cwd=self.data_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        return self

    def alive(self) -> bool:
        """Whether the process is running."""
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until ``/-/ready`` answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise PrometheusError(f"prometheus exited early:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        raise PrometheusError(f"prometheus not ready after {timeout}s:\n{self.log_tail()}")

    def api(self, path: str, **params: str) -> dict:
        """GET ``/api/v1/<path>`` and return the decoded JSON, error answers included."""
        query = urllib.parse.urlencode(params)
        url = f"{self.url}/api/v1/{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:  # 400/422/503 carry a JSON error body
            raw = exc.read()
            try:
                return json.loads(raw)
            except json.JSONDecodeError:
                return {"status": "error", "error": raw.decode(errors="replace")}

    def query_raw(self, expr: str) -> dict:
        """The full answer of an instant query: ``{"status": ..., "data": ...}``."""
        return self.api("query", query=expr)

    def query(self, expr: str) -> list[dict]:
        """Evaluate ``expr`` now; a list of ``{"metric": {...}, "value": [ts, "v"]}`` results.

        Scalar and string results come back as one result with an empty ``metric``.
        """
        answer = self.query_raw(expr)
        if answer.get("status") != "success":
            raise PrometheusError(f"query {expr!r} failed: {answer.get('error', answer)}")
        data = answer["data"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def wait_for(
        self,
        expr: str,
        predicate: Callable[[list[dict]], bool] = bool,
        timeout: float = 30.0,
    ) -> list[dict]:
        """Poll ``expr`` until ``predicate(result)`` holds; the satisfying result."""
        deadline = time.monotonic() + timeout
        result: list[dict] = []
        while time.monotonic() < deadline:
            if not self.alive():
                raise PrometheusError(f"prometheus exited:\n{self.log_tail()}")
            result = self.query(expr)
            if predicate(result):
                return result
            time.sleep(0.5)
        raise TimeoutError(f"{expr!r} still gave {result} after {timeout}s")

    def active_targets(self) -> list[dict]:
        """The scrape targets with their health and last error."""
        return self.api("targets", state="active")["data"]["activeTargets"]

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; always leaves no process behind."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode

    def log_tail(self, lines: int = 40) -> str:
        """Last lines of the server's log, for failure messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> PrometheusServer:
        try:
            self.start().wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --- a worker under monitoring, with data that closes windows ---------------------------


@dataclass
class MonitoredWorker:
    """A running worker, the Prometheus scraping it, and what was produced to it."""

    worker: WorkerProcess
    prometheus: PrometheusServer
    topic_prefix: str
    produced: int
    bad: int
    reports: list[ProduceReport]

    @property
    def readings_topic(self) -> str:
        """The worker's input topic."""
        return f"{self.topic_prefix}sensor-readings"


#: Event-time step between readings: 2 x 2000 readings span five minutes of event time.
READING_INTERVAL_MS = 75.0
PHASE_COUNT = 2000


@contextmanager
def monitored_worker(
    bootstrap: str, work_dir: Path, *, rule_files: Sequence[Path] = ()
) -> Iterator[MonitoredWorker]:
    """A fresh worker on its own topics, scraped every second, after two bursts of readings.

    The second burst is sent once Prometheus has the first one, so every counter has grown
    between two scrapes and ``rate()`` over it is positive, not only present. Everything
    started here is stopped on exit, whatever happened.
    """
    tag = uuid.uuid4().hex[:8]
    prefix = f"e2e-{tag}."
    worker = WorkerProcess(
        bootstrap,
        work_dir / "worker",
        free_port(),
        app_id=f"faustapp-e2e-{tag}",
        extra_env={"FAUSTAPP_TOPIC_PREFIX": prefix, "FAUSTAPP_PARTITIONS": "4"},
    )
    prometheus = PrometheusServer(
        [f"127.0.0.1:{worker.web_port}"],
        free_port(),
        work_dir / "prometheus",
        rule_files=rule_files,
    )
    now_ms = int(time.time() * 1000)
    start_ms = now_ms - now_ms % 60_000 - 2 * 3_600_000  # aligned, well in the past
    clean_exit = False
    try:
        worker.start()
        worker.wait_ready(partitions=4)
        prometheus.start().wait_ready()
        prometheus.wait_for(f'up{{job="{prometheus.job}"}} == 1')
        reports: list[ProduceReport] = []
        for phase in range(2):
            config = GeneratorConfig(
                topic=f"{prefix}sensor-readings",
                rate=0,
                count=PHASE_COUNT,
                keys=40,
                disorder_ms=1000,
                bad_ratio=0.02,
                seed=100 + phase,
                start_ms=start_ms + int(phase * PHASE_COUNT * READING_INTERVAL_MS),
                interval_ms=READING_INTERVAL_MS,
                partitions=4,
                quiet=True,
            )
            report = asyncio.run(produce(config, bootstrap))
            if report.acked != PHASE_COUNT:
                raise RuntimeError(f"generator delivered {report.acked}/{PHASE_COUNT}: {report}")
            reports.append(report)
            produced = sum(r.acked for r in reports)
            prometheus.wait_for(
                'sum(faustapp_events_in_total{pipeline="sensors"})',
                lambda result, want=produced: bool(result) and sample_value(result[0]) == want,
                timeout=60,
            )
        # A few more scrapes so every range query over the last minute has several points.
        prometheus.wait_for(
            'count_over_time(faustapp_events_in_total{pipeline="sensors"}[1m]) >= 5'
        )
        yield MonitoredWorker(
            worker,
            prometheus,
            prefix,
            produced=sum(r.acked for r in reports),
            bad=sum(r.bad for r in reports),
            reports=reports,
        )
        clean_exit = True
    finally:
        prometheus.stop()
        if clean_exit:
            worker.stop()
        worker.kill()
