"""The Grafana dashboard and its provisioning, checked without Grafana.

Every panel's PromQL is parsed with promql-parser and then run against a real Prometheus that
scrapes a real worker fed with sensor readings, with Grafana's macros and the dashboard's
variables replaced the way Grafana would.
"""

from __future__ import annotations

import json
import math
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import promql_parser
import pytest
import yaml

from support.prometheus import (
    MonitoredWorker,
    PrometheusNotInstalled,
    monitored_worker,
    sample_value,
)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "faustapp-overview.json"
DATASOURCE_UID = "faustapp-prometheus"
DASHBOARD_UID = "faustapp-overview"

# What Grafana substitutes for its macros. $__rate_interval is at least four scrape intervals;
# the test Prometheus scrapes every second, so one minute always holds several samples.
MACROS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m"}

# Panels that must show data as soon as a worker has processed readings.
CORE_PANELS = ("Events in /s", "Windows closed /s", "Open windows")

# Panels that stay empty on a healthy worker fed in order: nothing is late, rekeyed or replayed.
QUIET_PANELS = ("Late events /s", "Rekeyed & replayed /s")

# Selectors that need not exist on a worker's /metrics page (Prometheus' own series).
NOT_FROM_WORKER = {"up"}


def load_dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels(dashboard: dict) -> list[dict]:
    """Every panel except rows, including panels nested in collapsed rows."""
    found = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def variables(dashboard: dict) -> dict[str, str]:
    """``$name`` -> the regex Grafana sends for "All" (every variable here allows All)."""
    values = {}
    for variable in dashboard["templating"]["list"]:
        assert variable.get("includeAll") and variable.get("allValue"), variable["name"]
        values[f"${variable['name']}"] = variable["allValue"]
    return values


def substitute(expr: str, dashboard: dict) -> str:
    """``expr`` as Grafana would send it, macros and variables replaced."""
    replacements = {**MACROS, **variables(dashboard)}
    for name in sorted(replacements, key=len, reverse=True):
        expr = expr.replace(name, replacements[name])
    assert "$" not in expr, f"unknown variable left in {expr!r}"
    return expr


def all_targets(dashboard: dict) -> list[tuple[str, str, str]]:
    """``(panel title, refId, expr with substitutions)`` of every target."""
    return [
        (panel["title"], target["refId"], substitute(target["expr"], dashboard))
        for panel in panels(dashboard)
        for target in panel["targets"]
    ]


def selected_metrics(expr: str) -> set[str]:
    """Metric names the expression selects, from its syntax tree."""
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"selector without a metric name in {expr!r}"
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MonitoredWorker]:
    """A worker fed with readings and a Prometheus scraping it every second."""
    failure = ""
    try:
        with monitored_worker(kafka_bootstrap, tmp_path_factory.mktemp("dashboards-e2e")) as s:
            yield s
    except PrometheusNotInstalled as exc:
        failure = str(exc)
    if failure:
        pytest.fail(failure, pytrace=False)


# --- provisioning and dashboard structure -----------------------------------------------


def test_datasource_provisioning_points_at_the_compose_prometheus() -> None:
    config = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    assert config["apiVersion"] == 1
    (datasource,) = config["datasources"]
    assert datasource["uid"] == DATASOURCE_UID
    assert datasource["type"] == "prometheus"
    assert datasource["access"] == "proxy"
    url = urlparse(datasource["url"])
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert url.hostname in services
    assert url.port == 9090
    assert "9090:9090" in services[url.hostname]["ports"]
    # $__rate_interval is derived from this: it must be the compose scrape interval.
    scrape = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    assert datasource["jsonData"]["timeInterval"] == scrape["global"]["scrape_interval"]


def test_dashboard_provider_loads_the_mounted_dashboards() -> None:
    config = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "faustapp.yml").read_text())
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    path = provider["options"]["path"]
    assert path == "/var/lib/grafana/dashboards"
    grafana = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in grafana["volumes"]}
    assert (ROOT / mounts[path]).resolve() == DASHBOARD.parent
    assert (ROOT / mounts["/etc/grafana/provisioning"]).resolve() == GRAFANA / "provisioning"


def test_dashboard_identity_is_stable() -> None:
    dashboard = load_dashboard()
    assert dashboard["uid"] == DASHBOARD_UID
    assert dashboard["title"] == "faustapp overview"
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert "id" not in dashboard or dashboard["id"] is None, "ids are per Grafana instance"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_every_panel_queries_the_provisioned_datasource() -> None:
    dashboard = load_dashboard()
    titles = [panel["title"] for panel in panels(dashboard)]
    assert len(titles) == len(set(titles)), "panel titles must be unique"
    assert set(CORE_PANELS) <= set(titles)
    for panel in panels(dashboard):
        assert panel["datasource"]["uid"] == DATASOURCE_UID, panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no target"
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == DATASOURCE_UID, panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"]["uid"] == DATASOURCE_UID


def test_panels_do_not_overlap() -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in load_dashboard()["panels"]:
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']!r} overlaps {taken[(x, y)]!r}"
                taken[(x, y)] = panel["title"]


def test_rate_queries_use_the_rate_interval_macro() -> None:
    for panel in panels(load_dashboard()):
        for target in panel["targets"]:
            for window in re.findall(r"\b(?:rate|increase)\([^\[]*\[([^\]]+)\]", target["expr"]):
                assert window in ("$__rate_interval", "$__range"), (panel["title"], window)


def test_every_expression_parses() -> None:
    dashboard = load_dashboard()
    for title, ref_id, expr in all_targets(dashboard):
        try:
            promql_parser.parse(expr)
        except ValueError as exc:
            pytest.fail(f"{title} [{ref_id}]: {exc}\n{expr}")


# --- against a real Prometheus ----------------------------------------------------------


def test_every_selected_metric_is_exported_by_the_worker(stack: MonitoredWorker) -> None:
    """Catches typos even in panels that are legitimately empty (late events, rekeying)."""
    with urllib.request.urlopen(f"{stack.worker.url}/metrics", timeout=10) as resp:
        exposition = resp.read().decode()
    exported = set(re.findall(r"^# TYPE (\S+) ", exposition, re.MULTILINE))
    exported |= set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", exposition, re.MULTILINE))
    for title, ref_id, expr in all_targets(load_dashboard()):
        missing = selected_metrics(expr) - exported - NOT_FROM_WORKER
        assert not missing, f"{title} [{ref_id}] selects unknown metrics {missing}"


def test_every_expression_runs_on_prometheus(stack: MonitoredWorker) -> None:
    failures = []
    for title, ref_id, expr in all_targets(load_dashboard()):
        answer = stack.prometheus.query_raw(expr)
        if answer.get("status") != "success":
            failures.append(f"{title} [{ref_id}]: {answer.get('error')}\n{expr}")
        elif answer.get("warnings"):
            failures.append(f"{title} [{ref_id}] warns: {answer['warnings']}\n{expr}")
    assert not failures, "\n".join(failures)


def test_core_panels_show_data(stack: MonitoredWorker) -> None:
    targets = all_targets(load_dashboard())
    for core in CORE_PANELS:
        exprs = [expr for title, _, expr in targets if title == core]
        assert exprs, core
        for expr in exprs:
            result = stack.prometheus.query(expr)
            assert result, f"{core!r} is empty: {expr}"
            assert any(sample_value(sample) > 0 for sample in result), (core, result)


def test_no_other_panel_is_empty_or_nan(stack: MonitoredWorker) -> None:
    """A panel whose metric is never updated (for instance a Faust histogram the sensor never
    observes) would show "No data" forever: every panel but the quiet ones must have a number."""
    dashboard = load_dashboard()
    for panel in panels(dashboard):
        if panel["title"] in QUIET_PANELS:
            continue
        values = [
            sample_value(sample)
            for target in panel["targets"]
            for sample in stack.prometheus.query(substitute(target["expr"], dashboard))
        ]
        assert any(not math.isnan(value) for value in values), (panel["title"], values)


def test_variable_query_finds_the_worker(stack: MonitoredWorker) -> None:
    (variable,) = load_dashboard()["templating"]["list"]
    match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["definition"])
    assert match, variable["definition"]
    selector, label = match.groups()
    promql_parser.parse(selector)
    values = {sample["metric"][label] for sample in stack.prometheus.query(selector)}
    assert values == {f"127.0.0.1:{stack.worker.web_port}"}
