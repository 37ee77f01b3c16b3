"""Prometheus against a real worker, plus the deployment files that wire them together.

The end-to-end tests start a worker on its own topics, send it sensor readings that span five
minutes of event time (so windows close), and read every figure back through a real Prometheus
that scrapes the worker every second and evaluates the repository's alert rules.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from faustapp import metrics as faustapp_metrics

from support.prometheus import (
    MonitoredWorker,
    PrometheusNotInstalled,
    monitored_worker,
    promtool,
    sample_value,
)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "prometheus"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
WORKER_PORT = 6066
PIPELINES_WITH_WINDOWS = ("sensor-stats-1m", "sensor-stats-5m")
ALL_PIPELINES = (*PIPELINES_WITH_WINDOWS, "sensor-alerts")
PARTITIONS = 4

# Lint findings of `promtool check metrics` on metrics that Faust's own Prometheus sensor
# names: they cannot be renamed without replacing the sensor. Anything else fails the test.
TOLERATED_FAUST_LINT = {
    ("faustapp_events_runtime_ms", "metric names should not contain abbreviated units"),
    ("faustapp_events_runtime_ms_created", "metric names should not contain abbreviated units"),
}


def run_promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """``promtool`` that fails the test (never skips it) when Prometheus is not installed."""
    try:
        return promtool(*args, stdin=stdin)
    except PrometheusNotInstalled as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MonitoredWorker]:
    """A worker fed with readings, scraped by a Prometheus that loads prometheus/rules.yml."""
    failure = ""
    try:
        with monitored_worker(
            kafka_bootstrap,
            tmp_path_factory.mktemp("prometheus-e2e"),
            rule_files=[PROMETHEUS_DIR / "rules.yml"],
        ) as running:
            yield running
    except PrometheusNotInstalled as exc:
        failure = str(exc)
    if failure:
        pytest.fail(failure, pytrace=False)


def by_label(result: list[dict], label: str) -> dict[str, float]:
    """``{label value: sample value}`` of an instant-vector result."""
    return {sample["metric"][label]: sample_value(sample) for sample in result}


def scalar(stack: MonitoredWorker, expr: str) -> float:
    """The single value of ``expr`` (which must return exactly one sample)."""
    result = stack.prometheus.query(expr)
    assert len(result) == 1, f"{expr} gave {result}"
    return sample_value(result[0])


# --- deployment files -------------------------------------------------------------------


def test_compose_prometheus_config_is_valid() -> None:
    proc = run_promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 rule files found" in proc.stdout


def test_alert_rules_are_valid_and_pass_their_unit_tests() -> None:
    proc = run_promtool("check", "rules", str(PROMETHEUS_DIR / "rules.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = run_promtool("test", "rules", str(PROMETHEUS_DIR / "rules_test.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_services_and_references_exist() -> None:
    services = compose()["services"]
    assert set(services) >= {"kafka", "worker", "generator", "prometheus", "grafana"}
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dependency in service.get("depends_on", []):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in compose().get("volumes", {}), f"{name}: undeclared {source}"

    assert services["kafka"]["image"] == "apache/kafka:3.9.1"
    kafka_env = services["kafka"]["environment"]
    assert "broker" in kafka_env["KAFKA_PROCESS_ROLES"]
    assert "controller" in kafka_env["KAFKA_PROCESS_ROLES"]
    assert "PLAINTEXT://kafka:9092" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    assert kafka_env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{kafka_env['KAFKA_NODE_ID']}@kafka:9093"

    for name in ("worker", "generator"):
        env = services[name]["environment"]
        broker = urlparse(env["FAUSTAPP_BROKER"])
        assert (broker.hostname, broker.port) == ("kafka", 9092), name
        assert env["FAUSTAPP_WEB_PORT"] == str(WORKER_PORT)
        assert services[name]["image"] == services["worker"]["image"]

    worker = services["worker"]
    assert shlex.split(worker["command"]) == ["faustapp", "worker", "-l", "info"]
    assert "container_name" not in worker, "a fixed container name prevents --scale"
    for port in worker.get("ports", []):
        assert ":" not in str(port), f"fixed host port {port} prevents --scale"
    generate = shlex.split(services["generator"]["command"])
    assert generate[:3] == ["faustapp", "generate", "sensors"]
    for option in ("--rate", "--count", "--sensors", "--disorder-ms", "--bad-ratio"):
        assert option in generate

    assert services["prometheus"]["image"].startswith("prom/prometheus")
    assert "./prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    assert services["grafana"]["image"].startswith("grafana/grafana")
    assert "3000:3000" in services["grafana"]["ports"]


def test_compose_prometheus_scrapes_every_worker_replica() -> None:
    services = compose()["services"]
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "faustapp"]
    assert job["metrics_path"] == "/metrics"
    assert job["scrape_interval"] == "5s"
    (sd,) = job["dns_sd_configs"]
    assert sd["type"] == "A"
    assert sd["port"] == WORKER_PORT
    assert sd["names"] == ["worker"]
    assert all(name in services for name in sd["names"])


def test_dockerfile_builds_a_non_root_worker_image() -> None:
    lines = [
        line.strip()
        for line in DOCKERFILE.read_text().replace("\\\n", " ").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    instructions = [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]
    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert any(op == "COPY" and "uv.lock" in arg.split() for op, arg in instructions)
    run = " ".join(arg for op, arg in instructions if op == "RUN")
    assert "uv export --frozen" in run and "pip install -r" in run, "locked set not installed"
    assert "pip install --no-deps ." in run
    lock = (DOCKERFILE.parent / "uv.lock").read_text()
    (uv_version,) = re.findall(r'name = "uv"\nversion = "([^"]+)"', lock)
    assert f'pip install "uv=={uv_version}"' in run, "the image's uv differs from the lock's"
    users = [arg for op, arg in instructions if op == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    assert ("EXPOSE", str(WORKER_PORT)) in instructions
    (cmd,) = [json.loads(arg) for op, arg in instructions if op == "CMD"]
    assert cmd == ["faustapp", "worker", "-l", "info"]

    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in ("src", "pyproject.toml", "README.md"):
        assert needed not in ignored
    assert ".venv" in ignored and ".git" in ignored


def test_image_entrypoint_advertises_the_container_address_unless_told() -> None:
    """The ENTRYPOINT script, run here with a stand-in command instead of the worker."""
    (entrypoint,) = [
        json.loads(line.split(None, 1)[1])
        for line in DOCKERFILE.read_text().splitlines()
        if line.startswith("ENTRYPOINT")
    ]
    python_dir = Path(sys.executable).parent
    show = [sys.executable, "-c", "import os; print(os.environ['FAUSTAPP_WEB_HOST'])"]
    base_env = {"PATH": f"{python_dir}:/usr/bin:/bin"}

    derived = subprocess.run(
        [*entrypoint, *show], env=base_env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", derived), derived

    explicit = subprocess.run(
        [*entrypoint, *show],
        env={**base_env, "FAUSTAPP_WEB_HOST": "worker-7"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert explicit == "worker-7"


# --- a real worker scraped by a real Prometheus -----------------------------------------


def test_worker_is_a_healthy_scrape_target(stack: MonitoredWorker) -> None:
    (target,) = stack.prometheus.active_targets()
    assert target["health"] == "up", target
    assert target["labels"]["job"] == "faustapp"
    assert target["scrapeUrl"] == f"{stack.worker.url}/metrics"


def test_pipeline_counters_match_what_was_produced(stack: MonitoredWorker) -> None:
    query = stack.prometheus.query
    assert stack.bad > 0, "the generator run should include malformed records"

    events_in = by_label(query("faustapp_events_in_total"), "pipeline")
    assert events_in == {"sensors": stack.produced}
    assert by_label(query("faustapp_dead_letters_total"), "pipeline") == {"sensors": stack.bad}

    # Disorder (1 s) is well inside the grace period (10 s): nothing may be late.
    late = by_label(query("faustapp_late_events_total"), "pipeline")
    assert all(value == 0 for value in late.values()), late
    accepted = by_label(query("faustapp_events_accepted_total"), "pipeline")
    assert accepted == dict.fromkeys(ALL_PIPELINES, stack.produced - stack.bad)

    closed = by_label(query("faustapp_windows_closed_total"), "pipeline")
    for pipeline in PIPELINES_WITH_WINDOWS:
        # Five minutes of event time: at least the first three 1-minute windows are final.
        assert closed.get(pipeline, 0) >= 3, closed
    # The counters start at 0 before the first reading, so the whole run is an increase.
    assert scalar(stack, "sum(increase(faustapp_windows_closed_total[10m])) > 0") > 0

    open_windows = query("faustapp_open_windows")
    assert {(s["metric"]["pipeline"], s["metric"]["partition"]) for s in open_windows} == {
        (pipeline, str(partition)) for pipeline in ALL_PIPELINES for partition in range(PARTITIONS)
    }
    assert all(sample_value(sample) > 0 for sample in open_windows)

    first = stack.reports[0].start_ms / 1000
    last = first + 300  # two runs of 2000 readings, 75 ms of event time apart
    for sample in query("faustapp_stream_time_seconds"):
        assert first < sample_value(sample) <= last + 1, sample

    assert scalar(stack, 'faustapp_batch_seconds_count{pipeline="sensors"}') > 0
    assert scalar(stack, 'faustapp_batch_seconds_bucket{pipeline="sensors", le="+Inf"}') > 0


def test_faust_consumer_metrics_are_exported(stack: MonitoredWorker) -> None:
    query = stack.prometheus.query
    topic = stack.readings_topic
    assert scalar(stack, "faustapp_messages_received_total") >= stack.produced
    per_topic = by_label(query("faustapp_messages_received_per_topic_total"), "topic")
    assert per_topic[topic] == stack.produced

    # Faust's offset gauges are labelled by topic and partition, both "next offset" values.
    end = query(f'faustapp_topic_partition_end_offset{{topic="{topic}"}}')
    assert {s["metric"]["partition"] for s in end} == {str(p) for p in range(PARTITIONS)}
    assert set(end[0]["metric"]) == {"__name__", "instance", "job", "topic", "partition"}
    assert sum(sample_value(s) for s in end) == stack.produced  # a fresh topic: offsets from 0
    lag = (
        f'faustapp_topic_partition_end_offset{{topic="{topic}"}}'
        f' - faustapp_topic_partition_offset_commited{{topic="{topic}"}}'
    )
    # Faust commits every few seconds: the whole backlog is committed soon after processing.
    stack.prometheus.wait_for(
        lag,
        lambda r: len(r) == PARTITIONS and all(sample_value(s) == 0 for s in r),
        timeout=30,
    )
    assert scalar(stack, "faustapp_consumer_commit_latency_count") > 0
    assert scalar(stack, "faustapp_rebalance_done_latency_count") >= 1
    assert scalar(stack, "faustapp_total_rebalances") == 0  # in progress, not a total


def test_alert_rules_evaluate_against_real_metrics(stack: MonitoredWorker) -> None:
    prometheus = stack.prometheus

    def evaluated() -> list[dict]:
        groups = prometheus.api("rules")["data"]["groups"]
        return [rule for group in groups for rule in group["rules"]]

    rules = evaluated()
    assert {rule["name"] for rule in rules} >= {
        "FaustappDeadLetters",
        "FaustappNoWindowsClosed",
        "FaustappConsumerLagHigh",
    }
    prometheus.wait_for('ALERTS{alertname="FaustappDeadLetters", pipeline="sensors"}', timeout=20)
    for rule in evaluated():
        assert rule["health"] == "ok", rule
    active = {alert["labels"]["alertname"] for alert in prometheus.api("alerts")["data"]["alerts"]}
    assert active == {"FaustappDeadLetters"}, active


def faustapp_metric_names() -> set[str]:
    """Names of the metrics faustapp itself defines (the rest of /metrics is Faust's)."""
    names: set[str] = set()
    for value in vars(faustapp_metrics).values():
        if isinstance(value, MetricWrapperBase):
            names.update(family.name for family in value.describe())
    return names


def test_worker_metrics_pass_promtool_lint(stack: MonitoredWorker) -> None:
    with urllib.request.urlopen(f"{stack.worker.url}/metrics", timeout=10) as resp:
        exposition = resp.read().decode()
    proc = run_promtool("check", "metrics", stdin=exposition)
    # 0: clean, 3: lint findings only; anything else means the text could not be parsed.
    assert proc.returncode in (0, 3), proc.stdout + proc.stderr
    findings = set()
    for line in (proc.stdout + proc.stderr).splitlines():
        if line.strip():
            name, _, message = line.strip().partition(" ")
            findings.add((name, message))

    ours = faustapp_metric_names()
    assert ours, "faustapp.metrics defines no metric?"
    own_findings = {f for f in findings if any(f[0].startswith(name) for name in ours)}
    assert not own_findings, f"faustapp's own metrics fail promtool's lint: {own_findings}"
    unexpected = findings - TOLERATED_FAUST_LINT
    assert not unexpected, f"new lint findings on Faust's metrics: {unexpected}"
    if findings:
        warnings.warn(
            f"tolerated lint findings on metrics named by Faust's sensor: {sorted(findings)}",
            stacklevel=1,
        )
