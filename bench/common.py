"""Small helpers shared by the benchmark: machine facts, ports, processes, partitions, metrics."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import platform
import random
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from aiokafka.partitioner import murmur2

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024


# --- partitions ------------------------------------------------------------------------------


def partition_of(key: str, partitions: int) -> int:
    """Partition of ``key`` under Kafka's default partitioner (murmur2, as Java and aiokafka)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def key_per_partition(prefix: str, partitions: int) -> dict[int, str]:
    """One key landing in each partition."""
    found: dict[int, str] = {}
    for n in itertools.count():
        key = f"{prefix}-{n}"
        found.setdefault(partition_of(key, partitions), key)
        if len(found) == partitions:
            return found
    raise AssertionError("unreachable")


# --- machine ---------------------------------------------------------------------------------


def machine_info() -> dict[str, object]:
    """What the figures were measured on."""
    cpu_model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    ram_mib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_mib = int(line.split()[1]) // 1024
                break
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        nproc = os.cpu_count() or 0
    versions = {}
    for dist in (
        "faust-streaming",
        "aiokafka",
        "quixstreams",
        "bytewax",
        "pathway",
        "confluent-kafka",
        "orjson",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    with contextlib.suppress(ImportError):
        import confluent_kafka

        versions["librdkafka"] = confluent_kafka.libversion()[0]
    return {
        "nproc": nproc,
        "cpu_model": cpu_model,
        "ram_mib": ram_mib,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "versions": versions,
    }


def describe_machine(info: dict) -> str:
    """One line for the top of the table."""
    ram = f"{info['ram_mib'] / 1024:.1f} GiB" if info.get("ram_mib") else "? GiB"
    return (
        f"machine: {info['nproc']} CPUs ({info['cpu_model']}), {ram} RAM, "
        f"Python {info['python']}, kernel {info['kernel']}"
    )


def src_fingerprint() -> str:
    """Short hash of faustapp's source as it is on disk now (the work tree may be edited while
    a long benchmark runs; rounds with different hashes measured different code)."""
    digest = hashlib.sha256()
    for path in sorted((PROJECT_ROOT / "src" / "faustapp").rglob("*.py")):
        digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
        with contextlib.suppress(OSError):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def git_head() -> str | None:
    """Commit of the work tree, if it is a git checkout."""
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() or None


def load_average() -> float | None:
    """1-minute load average: other work on the machine skews the figures."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


# --- ports -----------------------------------------------------------------------------------

_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range (never handed out twice)."""
    high = max(_ephemeral_low() - 1, 20000)
    for _ in range(200):
        port = random.randint(15000, high)
        if port not in _handed_out and _port_is_free(port):
            _handed_out.add(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _handed_out.add(port)
    return port


# --- processes -------------------------------------------------------------------------------


def peak_rss_mib(pid: int) -> float | None:
    """VmHWM (peak resident set size) of a live process, in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclass
class Exited:
    """How a child process ended, with its own peak RSS from the kernel (wait4)."""

    returncode: int | None
    peak_rss_mib: float | None
    timed_out: bool
    cpu_seconds: float | None = None


def wait_with_rusage(proc: subprocess.Popen, timeout: float) -> Exited:
    """Reap ``proc`` with wait4 (its CPU time; its ru_maxrss is at least the parent's RSS at the
    fork: children report their own peak, see ``bench.own_rss``); kill it at the deadline.

    Popen.wait would reap the child without its rusage, so the wait is done here and the
    returncode is handed back to the Popen object.
    """
    deadline = time.monotonic() + timeout
    timed_out = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            cpu = usage.ru_utime + usage.ru_stime
            return Exited(proc.returncode, usage.ru_maxrss / 1024, timed_out, cpu)
        if time.monotonic() >= deadline and not timed_out:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGKILL)
            deadline = time.monotonic() + 10
        elif time.monotonic() >= deadline:
            return Exited(None, None, True)
        time.sleep(0.02)


def terminate(proc: subprocess.Popen, timeout: float = 30.0) -> tuple[int | None, float]:
    """SIGTERM, then SIGKILL to the child's own process group after ``timeout``.

    Returns (returncode, seconds the shutdown took).
    """
    started = time.monotonic()
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group we created with the child
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
    return proc.returncode, time.monotonic() - started


def log_problems(path: Path, limit: int = 8) -> dict[str, object]:
    """Error-looking lines of a process log: count and the first few."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {"errors": 0, "warnings": 0, "first_errors": []}
    errors = [
        line
        for line in lines
        if re.search(r"\b(ERROR|CRITICAL|Traceback)\b", line) or "Error:" in line
    ]
    warnings = [line for line in lines if re.search(r"\bWARNING\b|\[W\]", line)]
    return {
        "errors": len(errors),
        "warnings": len(warnings),
        "first_errors": [line[:300] for line in errors[:limit]],
        "first_warnings": [line[:300] for line in warnings[:3]],
    }


# --- Prometheus text -------------------------------------------------------------------------

_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def http_text(url: str, timeout: float = 2.0) -> str | None:
    """Body of a GET, or None when the server does not answer (yet)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read().decode()
    except (OSError, urllib.error.URLError):
        return None


def parse_metrics(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text format to {name: [(labels, value), ...]}."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, raw = line.rpartition(" ")
        try:
            value = float(raw)
        except ValueError:
            continue
        name, brace, rest = head.partition("{")
        labels = dict(_LABEL.findall(rest)) if brace else {}
        out.setdefault(name, []).append((labels, value))
    return out


def metric(
    metrics: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (0 when absent)."""
    return sum(
        value
        for sample_labels, value in metrics.get(name, [])
        if all(sample_labels.get(k) == v for k, v in labels.items())
    )


def samples(
    metrics: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> list[tuple[dict[str, str], float]]:
    """Samples of ``name`` whose labels include ``labels``."""
    return [
        (sample_labels, value)
        for sample_labels, value in metrics.get(name, [])
        if all(sample_labels.get(k) == v for k, v in labels.items())
    ]
