"""Bearer tokens on real workers: every /api path (as /openapi.json lists them) refuses a request
without FAUSTAPP_API_TOKEN, answers with it, also when the key's owner is the other worker (the
proxied request carries the token); /metrics and /api/health stay open unless
FAUSTAPP_METRICS_TOKEN is set; Faust's own views are gone; every refusal is JSON."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict

import pytest
from aiohttp import web as aioweb
from aiohttp.test_utils import TestClient, TestServer

from faustapp.settings import Settings
from faustapp.web_auth import middleware

from support.api_client import Answer, bearer, fill_path, get, json_error, wait_ready
from support.kafka_broker import free_port
from support.sensors import Reading, key_per_partition, partition_of, send_readings
from support.workers import WorkerProcess

pytestmark = pytest.mark.integration

PARTITIONS = 4
PREFIX = f"tok-{uuid.uuid4().hex[:6]}."
TOKEN = "t0k-" + uuid.uuid4().hex
METRICS_TOKEN = "m3t-" + uuid.uuid4().hex
PIPELINES = "sensor-stats-1m,co-views,user-last-session"
READINGS_PER_SENSOR = 3
FAUST_VIEWS = [
    "/router",
    "/router/",
    "/router/sensor-stats-1m-windows/get/s-1",
    "/table",
    "/table/",
    "/table/sensor-stats-1m-windows/",
    "/table/sensor-stats-1m-windows/s-1/",
    "/stats/",
    "/graph/",
    "/performance/",
    "/signal/",
]
EXPECTED_API = {
    "/api/health",
    "/api/sensors/{sensor_id}",
    "/api/items/{item_id}/co-views",
    "/api/items/{item_id}/also-viewed",
    "/api/users/{user_id}/recommendations",
}


def _start(bootstrap: str, tmp, env: dict[str, str]) -> WorkerProcess:
    return WorkerProcess(
        bootstrap,
        tmp,
        free_port(),
        app_id=f"faustapp-it-{PREFIX[:-1]}",
        extra_env={
            "FAUSTAPP_TOPIC_PREFIX": PREFIX,
            "FAUSTAPP_PIPELINES": PIPELINES,
            "FAUSTAPP_PARTITIONS": str(PARTITIONS),
            **env,
        },
    ).start()


@pytest.fixture(scope="module")
def pair(kafka_bootstrap, tmp_path_factory, event_clock):
    """Two workers sharing the partitions, with the API token set, and readings in open
    windows of one sensor per partition: (workers, owner URL by sensor, readings by sensor)."""
    env = {"FAUSTAPP_API_TOKEN": TOKEN}
    workers = [_start(kafka_bootstrap, tmp_path_factory.mktemp("tok"), env) for _ in range(2)]
    try:
        owners = _wait_split(workers)
        start = event_clock.allocate(minutes=1)
        sensors = sorted(key_per_partition(f"tok-{uuid.uuid4().hex[:4]}", PARTITIONS).values())
        readings = [
            Reading(sid, start + 1000 * (i + 1), float(10 * n + i))
            for n, sid in enumerate(sensors)
            for i in range(READINGS_PER_SENSOR)
        ]
        asyncio.run(send_readings(kafka_bootstrap, readings, f"{PREFIX}sensor-readings"))
        by_sensor: dict[str, list[Reading]] = defaultdict(list)
        for r in readings:
            by_sensor[r.sensor_id].append(r)
        owner_of = {sid: owners[partition_of(sid, PARTITIONS)] for sid in sensors}
        yield workers, owner_of, dict(by_sensor)
    finally:
        for worker in workers:
            worker.kill()


def _wait_split(workers: list[WorkerProcess], timeout: float = 150.0) -> dict[int, str]:
    """Wait until the workers own every partition between them, each some: partition -> URL."""
    deadline = time.monotonic() + timeout
    seen: dict[str, list[int]] = {}
    while time.monotonic() < deadline:
        for worker in workers:
            body = wait_ready(worker, timeout=max(1.0, deadline - time.monotonic()))
            seen[worker.url] = body["active_partitions"]
        owned = [p for parts in seen.values() for p in parts]
        if sorted(owned) == list(range(PARTITIONS)) and all(seen.values()):
            return {p: url for url, parts in seen.items() for p in parts}
        time.sleep(0.5)
    raise TimeoutError(f"partitions never split between the workers: {seen}")


def _spec(worker: WorkerProcess) -> dict:
    answer = get(worker.url, "/openapi.json")
    assert answer.status == 200 and answer.content_type == "application/json", answer
    return answer.json()


def _api_paths(spec: dict, values: dict[str, str]) -> list[tuple[str, str, dict]]:
    """(template, concrete path, operation) of every guarded /api path of the description."""
    out = []
    for template, item in spec["paths"].items():
        if not template.startswith("/api/") or template == "/api/health":
            continue
        op = item["get"]
        out.append((template, fill_path(template, op.get("parameters", []), values), op))
    return out


def _local_keys(owners: dict[str, str], worker: WorkerProcess, prefix: str) -> dict[str, str]:
    """Path values owned by ``worker`` itself: its answers need no other worker."""
    sensor = min(s for s, url in owners.items() if url == worker.url)
    partition = partition_of(sensor, PARTITIONS)
    item = key_per_partition(prefix, PARTITIONS)[partition]
    return {
        "sensor_id": sensor,
        "key": sensor,
        "name": "sensor-stats-1m",
        "item_id": item,
        "user_id": item,
    }


def _call(worker: WorkerProcess, template: str, path: str, headers: dict[str, str]) -> Answer:
    stream = template.endswith("/stream")
    return get(worker.url, path, headers, read_body=not stream, timeout=15)


def _assert_refused(answer: Answer, context: str) -> None:
    json_error(answer, 401)
    assert (answer.header("WWW-Authenticate") or "").startswith("Bearer"), (context, answer)


def test_every_api_path_needs_the_token(pair):
    workers, owner_of, _ = pair
    spec = _spec(workers[0])
    assert set(spec["paths"]) >= EXPECTED_API, sorted(spec["paths"])
    assert spec["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"
    for worker in workers:
        for template, path, op in _api_paths(spec, _local_keys(owner_of, worker, "tok-i")):
            assert op["security"] == [{"apiToken": []}], template
            assert "401" in op["responses"], template
            _assert_refused(_call(worker, template, path, {}), path)
            _assert_refused(_call(worker, template, path, bearer(TOKEN[:-1])), path)
            _assert_refused(_call(worker, template, path, bearer(TOKEN + "x")), path)
            answer = _call(worker, template, path, bearer(TOKEN))
            assert answer.status != 401, (worker.url, path, answer.body[:300])
            assert str(answer.status) in op["responses"], (path, answer.status, answer.body[:300])
            if answer.status >= 400:
                json_error(answer, answer.status)


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic " + TOKEN,
        "Bearer",
        "Bearer ",
        TOKEN,
        "Bearer " + TOKEN.upper(),
        "Bearer " + TOKEN + " extra",
        "Token " + TOKEN,
    ],
)
def test_other_credentials_are_refused(pair, authorization):
    workers, owner_of, _ = pair
    path = f"/api/sensors/{sorted(owner_of)[0]}"
    _assert_refused(get(workers[0].url, path, {"Authorization": authorization}), authorization)
    _assert_refused(get(workers[0].url, f"{path}?token={TOKEN}"), "query token")


def test_scheme_name_is_case_insensitive(pair):
    workers, owner_of, _ = pair
    sensor = _local_keys(owner_of, workers[0], "tok-i")["sensor_id"]
    answer = _wait_answer(
        workers[0], f"/api/sensors/{sensor}", {"Authorization": f"bearer {TOKEN}"}
    )
    assert answer.status == 200, answer
    assert answer.json()["sensor_id"] == sensor


def test_health_metrics_and_page_stay_open_without_metrics_token(pair):
    workers, _, _ = pair
    for worker in workers:
        health = get(worker.url, "/api/health")
        assert health.status == 200 and health.json()["status"] == "ok", health
        metrics = get(worker.url, "/metrics")
        assert metrics.status == 200 and metrics.content_type == "text/plain", metrics.headers
        assert b"faustapp_" in metrics.body
        for path, media in [
            ("/", "text/html"),
            ("/docs", "text/html"),
            ("/openapi.json", "application/json"),
            ("/static/app.js", "text/javascript"),
            ("/static/vendor/uPlot.iife.min.js", "text/javascript"),
        ]:
            answer = get(worker.url, path)
            assert answer.status == 200 and answer.content_type == media, (path, answer.headers)


def _expected_window(readings: list[Reading]) -> tuple[int, float]:
    return len(readings), sum(r.value for r in readings)


def _wait_answer(
    worker: WorkerProcess, path: str, headers: dict | None = None, timeout: float = 60.0
) -> Answer:
    """The first answer that is not 404/503 (readings still on their way, a rebalance)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = get(worker.url, path, headers or bearer(TOKEN))
        if answer.status not in (404, 503) or time.monotonic() > deadline:
            return answer
        time.sleep(0.3)


def test_proxied_requests_carry_the_token(pair):
    """Each worker answers for every sensor with the owner's figures: a request for a key of
    the other worker is proxied with the token and answered there."""
    workers, owner_of, readings = pair
    assert len(set(owner_of.values())) == 2, owner_of  # keys of both workers are asked
    spec_paths = _spec(workers[0])["paths"]
    for sensor, owner in sorted(owner_of.items()):
        count, total = _expected_window(readings[sensor])
        for worker in workers:
            answer = _wait_answer(worker, f"/api/sensors/{sensor}")
            assert answer.status == 200, (worker.url, owner, answer.body[:300])
            window = answer.json()["windows"][0]
            assert (window["count"], window["sum"]) == (count, pytest.approx(total)), window
            if worker.url != owner:
                assert answer.header("X-Faustapp-Served-By") == owner, answer.headers
            _assert_refused(get(worker.url, f"/api/sensors/{sensor}"), "proxied, no token")
            if "/api/pipelines/{name}/keys/{key}" in spec_paths:
                path = f"/api/pipelines/sensor-stats-1m/keys/{sensor}"
                answer = _wait_answer(worker, path)
                assert answer.status == 200, (worker.url, owner, answer.body[:300])
                assert answer.header("X-Faustapp-Served-By") == owner, answer.headers
                first = answer.json()["open_windows"][0]
                assert (first["count"], first["sum"]) == (count, pytest.approx(total)), first
    # An item of each worker, asked of the other: the owner answers (404: never co-viewed),
    # which it can only do if the proxied request carried the token.
    items = key_per_partition(f"tok-item-{uuid.uuid4().hex[:4]}", PARTITIONS)
    for _partition, item in items.items():
        for worker in workers:
            for path in (f"/api/items/{item}/co-views", f"/api/items/{item}/also-viewed"):
                answer = get(worker.url, path, bearer(TOKEN))
                assert answer.status == 404, (worker.url, path, answer.body[:300])
                json_error(answer, 404)


def test_faust_default_views_are_gone(pair):
    workers, _, _ = pair
    for worker in workers:
        for path in FAUST_VIEWS:
            _assert_refused(get(worker.url, path), path)  # no token: nothing to learn
            json_error(get(worker.url, path, bearer(TOKEN)), 404)
        page = get(worker.url, "/")
        assert page.status == 200 and page.content_type == "text/html", page.headers
        assert b"<title>faustapp live</title>" in page.body


def test_unknown_paths_and_methods_answer_json(pair):
    worker = pair[0][0]
    json_error(get(worker.url, "/no/such/path", bearer(TOKEN)), 404)
    json_error(get(worker.url, "/api/no-such-view", bearer(TOKEN)), 404)
    json_error(get(worker.url, "/static/no-such-file.js"), 404)
    # The open /static/ prefix never leads around the token to a guarded view.
    for sneaky in (
        "/static/../api/pipelines",
        "/static/%2e%2e/api/sensors/s-1",
        "/static/..%2fapi/sensors/s-1",
        "/static/vendor/../../api/health",
    ):
        json_error(get(worker.url, sneaky), 404)
    _assert_refused(get(worker.url, "//api/sensors/s-1"), "double slash")
    refused = get(worker.url, "/api/health", method="POST")
    json_error(refused, 405)
    assert "GET" in (refused.header("Allow") or ""), refused.headers
    json_error(get(worker.url, "/api/sensors/s-1", bearer(TOKEN), method="DELETE"), 405)


def test_metrics_token_guards_metrics_and_health(kafka_bootstrap, tmp_path_factory):
    env = {"FAUSTAPP_API_TOKEN": TOKEN, "FAUSTAPP_METRICS_TOKEN": METRICS_TOKEN}
    worker = _start(kafka_bootstrap, tmp_path_factory.mktemp("tok-metrics"), env)
    try:
        wait_ready(worker, token=METRICS_TOKEN)
        for path in ("/metrics", "/api/health"):
            _assert_refused(get(worker.url, path), path)
            _assert_refused(get(worker.url, path, bearer("wrong")), path)
        metrics = get(worker.url, "/metrics", bearer(METRICS_TOKEN))
        assert metrics.status == 200 and b"faustapp_" in metrics.body, metrics.status
        _assert_refused(get(worker.url, "/metrics", bearer(TOKEN)), "api token on /metrics")
        for token in (METRICS_TOKEN, TOKEN):  # the page shows health with the API token
            health = get(worker.url, "/api/health", bearer(token))
            assert health.status == 200 and health.json()["status"] == "ok", health
        _assert_refused(get(worker.url, "/api/sensors/s-1", bearer(METRICS_TOKEN)), "metrics")
        spec = _spec(worker)
        schemes = spec["components"]["securitySchemes"]
        assert set(schemes) == {"apiToken", "metricsToken"}, schemes
        assert spec["paths"]["/metrics"]["get"]["security"] == [{"metricsToken": []}]
        assert get(worker.url, "/").status == 200
    finally:
        worker.kill()


async def _in_process(settings: Settings, handler, path: str, headers=None) -> tuple:
    app = aioweb.Application(middlewares=[middleware(settings)])
    app.router.add_get("/api/boom", handler)
    app.router.add_get("/api/health", handler)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        resp = await client.get(path, headers=headers or {})
        return resp.status, dict(resp.headers), await resp.read()


def test_an_unexpected_exception_is_a_json_503():
    async def boom(request: aioweb.Request) -> aioweb.Response:
        raise RuntimeError("not foreseen")

    status, headers, body = asyncio.run(_in_process(Settings(), boom, "/api/boom"))
    json_error(Answer(status, headers, body), 503)
    assert headers.get("Retry-After") == "2", headers
    status, headers, body = asyncio.run(
        _in_process(Settings(api_token="abc"), boom, "/api/boom", {"Authorization": "Bearer ab"})
    )
    json_error(Answer(status, headers, body), 401)


def test_top_gathers_from_both_workers_with_the_token(pair):
    """/top asks every worker for its own keys: with the token set, the peers' answers only
    arrive when the asking worker sends it, so both workers' keys are in every answer."""
    workers, owner_of, readings = pair
    if "/api/pipelines/{name}/top" not in _spec(workers[0])["paths"]:
        pytest.skip("no /top view mounted")
    want = {sensor: len(readings[sensor]) for sensor in owner_of}
    path = "/api/pipelines/sensor-stats-1m/top?field=count&window=open&n=1000"
    for worker in workers:
        deadline = time.monotonic() + 60
        while True:
            answer = get(worker.url, path, bearer(TOKEN), timeout=15)
            body = answer.json() if answer.status == 200 else {}
            rows = {r["key"]: r["value"] for r in body.get("rows", []) if r["key"] in want}
            if (rows == want and not body["partial"]) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert answer.status == 200, (worker.url, answer.body[:300])
        assert body["partial"] is False and body["missing_partitions"] == [], body
        assert sorted(body["workers"]) == sorted(w.url for w in workers), body
        assert rows == want, (rows, want)
        _assert_refused(get(worker.url, path), "top without token")
