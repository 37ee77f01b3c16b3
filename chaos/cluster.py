"""A broker and a group of faustapp workers that the chaos run can crash, wipe and restart."""

from __future__ import annotations

import re
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from support.kafka_broker import LocalBroker, free_port
from support.workers import WorkerProcess, http_get

PIPELINES = "sensor-stats-1m,sensor-stats-5m,sensor-alerts"
SESSION_TIMEOUT_MS = 6000
POLL_S = 0.25
HTTP_TIMEOUT_S = 1.5
STOP_TIMEOUT_S = 20.0
_SAMPLE = re.compile(r'^faustapp_events_in_total\{[^}]*pipeline="sensors"[^}]*\}\s+(\S+)', re.M)


def now_iso() -> str:
    """Wall-clock time for logs and the timeline (UTC, milliseconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def events_in(worker: WorkerProcess) -> float | None:
    """``faustapp_events_in_total{pipeline="sensors"}`` of a worker, None if it does not answer."""
    try:
        with urllib.request.urlopen(f"{worker.url}/metrics", timeout=HTTP_TIMEOUT_S) as resp:
            text = resp.read().decode(errors="replace")
    except (OSError, urllib.error.URLError):
        return None
    match = _SAMPLE.search(text)
    return float(match.group(1)) if match else 0.0


def health(worker: WorkerProcess) -> tuple[int, dict]:
    """Status and body of /api/health, (0, {}) when the worker does not answer."""
    try:
        status, body, _ = http_get(f"{worker.url}/api/health", timeout=HTTP_TIMEOUT_S)
    except (OSError, urllib.error.URLError, ValueError):
        return 0, {}
    return status, body if isinstance(body, dict) else {}


@dataclass
class Recovery:
    """How long the group took to come back after a fault."""

    healthy_s: float | None = None  # all workers 200, every partition owned exactly once
    resumed_s: float | None = None  # then events_in grew on some worker
    recovery_s: float | None = None  # the later of the two (healthy_s if nothing was pending)
    unexpected_exits: list[dict] = field(default_factory=list)
    assignment: dict[int, list[int]] = field(default_factory=dict)  # slot -> partitions after
    last_health: dict[int, list] = field(default_factory=dict)  # when it did not recover


class Cluster:
    """``n`` workers with their own data dir and web port, one consumer group (``app_id``)."""

    def __init__(
        self,
        broker: LocalBroker,
        root: Path,
        *,
        workers: int,
        partitions: int,
        guarantee: str,
        app_id: str,
        prefix: str,
        grace_ms: int,
        pipelines: str = PIPELINES,
        log=print,  # noqa: ANN001 - a print-like callable
    ) -> None:
        self.broker = broker
        self.partitions = partitions
        self.log = log
        self.env = {
            "FAUSTAPP_PROCESSING_GUARANTEE": guarantee,
            "FAUSTAPP_TOPIC_PREFIX": prefix,
            "FAUSTAPP_PARTITIONS": str(partitions),
            "FAUSTAPP_GRACE_MS": str(grace_ms),
            "FAUSTAPP_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
            "FAUSTAPP_PIPELINES": pipelines,
        }
        self.workers = [
            WorkerProcess(
                broker.bootstrap,
                root / f"worker-{i}",
                free_port(),
                app_id=app_id,
                extra_env=self.env,
            )
            for i in range(workers)
        ]
        self.down: set[int] = set()  # slots we stopped on purpose and have not restarted yet
        self.exits: list[dict] = []  # workers that died without us killing them

    # --- lifecycle ---------------------------------------------------------------------

    def mark(self, slot: int, text: str) -> None:
        """Write a line into the worker's log so the timeline can be read next to its output."""
        worker = self.workers[slot]
        worker.data_dir.mkdir(parents=True, exist_ok=True)
        with open(worker.log_path, "a") as log:
            log.write(f"\n===== chaos {now_iso()}: {text} =====\n")

    def start_all(self, timeout: float = 180.0) -> float:
        """Start every worker and wait until the group is ready; returns the seconds it took."""
        began = time.monotonic()
        for slot in range(len(self.workers)):
            self.mark(slot, "start")
            self.workers[slot].start()
        recovery = self.wait_recovered(began, timeout=timeout, expect_progress=False)
        if recovery.healthy_s is None:
            raise TimeoutError(f"workers not ready after {timeout}s: {recovery.last_health}")
        return time.monotonic() - began

    def kill(self, slot: int) -> list[int]:
        """kill -9 a worker (its whole process group); returns the partitions it owned."""
        _, body = health(self.workers[slot])
        owned = list(body.get("active_partitions", []))
        self.down.add(slot)
        self.workers[slot].kill()
        self.mark(slot, f"kill -9 (owned partitions {owned})")
        return owned

    def wipe(self, slot: int) -> list[str]:
        """Delete the worker's local Faust state (``v1/``: RocksDB tables) and its clean-stop
        marker, as if the machine came back with an empty disk; the log is kept."""
        worker = self.workers[slot]
        removed = []
        for path in [worker.data_dir / "v1", *worker.data_dir.glob("*.running")]:
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
            else:
                continue
            removed.append(str(path.relative_to(worker.data_dir)))
        self.mark(slot, f"local state deleted: {removed}")
        return removed

    def restart(self, slot: int, why: str = "restart") -> None:
        """Start the worker again with the same data dir, web port and app id."""
        self.mark(slot, why)
        self.workers[slot].start()
        self.down.discard(slot)

    def stop_all(self) -> None:
        """SIGTERM every worker (SIGKILL after a timeout); never raises."""
        for worker in self.workers:
            try:
                worker.stop(timeout=STOP_TIMEOUT_S)
            except Exception as exc:  # keep stopping the others
                self.log(f"  stopping {worker.data_dir.name} failed: {exc!r}")
                try:
                    worker.kill()
                except Exception as kill_exc:
                    self.log(f"  killing {worker.data_dir.name} failed: {kill_exc!r}")

    # --- watching ----------------------------------------------------------------------

    def reap(self) -> list[dict]:
        """Restart workers that died on their own (not killed by us); returns what happened."""
        found = []
        for slot, worker in enumerate(self.workers):
            if slot in self.down or worker.proc is None or worker.alive():
                continue
            event = {
                "slot": slot,
                "returncode": worker.proc.returncode,
                "at": now_iso(),
                "log_tail": worker.log_tail(25),
            }
            self.log(f"  !! worker-{slot} exited by itself (rc={worker.proc.returncode}); restart")
            self.exits.append(event)
            found.append(event)
            self.restart(slot, f"exited by itself with {worker.proc.returncode}: restart")
        return found

    def snapshot(self) -> dict[int, tuple[int, dict]]:
        """Health of every worker now."""
        return {slot: health(w) for slot, w in enumerate(self.workers)}

    def healthy(self, snap: dict[int, tuple[int, dict]]) -> bool:
        """All workers 200, not rebalancing, every partition owned by exactly one of them."""
        if any(status != 200 for status, _ in snap.values()):
            return False
        owned = [p for _, body in snap.values() for p in body.get("active_partitions", [])]
        return sorted(owned) == list(range(self.partitions))

    def total_events_in(self) -> float | None:
        """Sum of events_in over the workers; None unless every worker answered."""
        values = [events_in(w) for w in self.workers]
        return None if any(v is None for v in values) else sum(values)

    def wait_recovered(
        self,
        since: float,
        *,
        timeout: float,
        expect_progress: bool = True,
        progress_timeout: float = 30.0,
    ) -> Recovery:
        """Wait until the group is healthy (twice in a row) and, if ``expect_progress``, until the
        workers count new input events. Times are measured from ``since`` (monotonic)."""
        result = Recovery()
        deadline = time.monotonic() + timeout
        first_ok: float | None = None
        snap: dict[int, tuple[int, dict]] = {}
        while time.monotonic() < deadline:
            result.unexpected_exits += self.reap()
            snap = self.snapshot()
            if self.healthy(snap):
                if first_ok is not None:
                    break
                first_ok = time.monotonic()
            else:
                first_ok = None
            time.sleep(POLL_S)
        else:
            result.last_health = {slot: [s, b] for slot, (s, b) in snap.items()}
            return result
        result.healthy_s = round(first_ok - since, 2)
        result.assignment = {
            slot: body.get("active_partitions", []) for slot, (_, body) in snap.items()
        }
        result.recovery_s = result.healthy_s
        if not expect_progress:
            return result
        base = self.total_events_in()
        progress_deadline = time.monotonic() + progress_timeout
        while time.monotonic() < progress_deadline:
            time.sleep(POLL_S)
            current = self.total_events_in()
            if base is None:
                base = current
            elif current is not None and current > base:
                result.resumed_s = round(time.monotonic() - since, 2)
                result.recovery_s = result.resumed_s
                break
        return result
