"""Schemathesis against /openapi.json of a live worker running every pipeline: for every path and
parameter, valid and invalid requests, no 5xx, and every answer (status, content type, headers,
body) as the description says; the same with FAUSTAPP_API_TOKEN set, where a request without it
is refused with 401."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, defaultdict

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from support.api_client import bearer, get, json_error, wait_ready
from support.kafka_broker import free_port
from support.sensors import Reading, send_readings
from support.workers import WorkerProcess

pytestmark = pytest.mark.integration

PARTITIONS = 2
PREFIX = f"fuzz-{uuid.uuid4().hex[:6]}."
TOKEN = "fz-" + uuid.uuid4().hex
SENSORS = ["fuzz-a", "fuzz-b", "fuzz-c"]
POSITIVE_EXAMPLES = 40
NEGATIVE_EXAMPLES = 25
TIMEOUT_S = 15
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
STATUSES: dict[str, Counter] = defaultdict(Counter)
"""Statuses seen per path (printed, and checked for real answers besides errors)."""
SKIPPED = {"/api/pipelines/{name}/stream"}  # never ends: checked by hand, see _check_stream
EXPECTED = {
    "/",
    "/docs",
    "/metrics",
    "/api/health",
    "/api/sensors/{sensor_id}",
    "/api/items/{item_id}/co-views",
    "/api/items/{item_id}/also-viewed",
    "/api/users/{user_id}/recommendations",
    "/static/{file}",
    "/static/vendor/{file}",
}


def _send_readings(kafka_bootstrap: str, event_clock) -> None:
    """Open windows for a few sensors, so 200 answers are checked too, not only errors (sent
    once the worker has created the topic)."""
    start = event_clock.allocate(minutes=1)
    readings = [Reading(s, start + 1000 * (i + 1), 1.5 * i) for s in SENSORS for i in range(3)]
    asyncio.run(send_readings(kafka_bootstrap, readings, f"{PREFIX}sensor-readings"))


def _worker(kafka_bootstrap: str, tmp_path_factory, **env: str) -> WorkerProcess:
    return WorkerProcess(
        kafka_bootstrap,
        tmp_path_factory.mktemp("fuzz"),
        free_port(),
        app_id=f"faustapp-it-{PREFIX[:-1]}-{uuid.uuid4().hex[:4]}",
        extra_env={
            "FAUSTAPP_TOPIC_PREFIX": PREFIX,
            "FAUSTAPP_PIPELINES": "all",
            "FAUSTAPP_PARTITIONS": str(PARTITIONS),
            **env,
        },
    ).start()


def _wait_sensor(worker: WorkerProcess, headers: dict[str, str]) -> None:
    """Until the readings are in the worker's windows (so the fuzzing meets real state)."""
    for _ in range(120):
        if get(worker.url, f"/api/sensors/{SENSORS[0]}", headers).status == 200:
            return
        time.sleep(0.5)
    raise AssertionError(f"readings never reached the worker:\n{worker.log_tail()}")


def _fuzz(worker: WorkerProcess, headers: dict[str, str], checks_401: bool) -> list[str]:
    """Run every operation of the worker's description; the labels of those run."""
    schema = schemathesis.openapi.from_url(f"{worker.url}/openapi.json")
    schema.validate()  # a valid OpenAPI 3.0 document to begin with
    STATUSES.clear()
    ran = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in SKIPPED:
            continue
        ran.append(operation.path)
        explicit = _explicit_values(operation)
        _run(operation, GenerationMode.POSITIVE, POSITIVE_EXAMPLES, CHECKS, headers, explicit)
        if operation.definition.raw.get("parameters"):  # nothing to make invalid otherwise
            negative = [*CHECKS, negative_data_rejection]
            _run(operation, GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES, negative, headers, {})
        if checks_401 and operation.definition.raw.get("security"):
            _run(operation, GenerationMode.POSITIVE, 5, [ignored_auth, *CHECKS], {}, explicit)
    print({path: dict(counts) for path, counts in sorted(STATUSES.items())})
    sensors = STATUSES["/api/sensors/{sensor_id}"]
    assert sensors[200] and sensors[400] and sensors[404], sensors  # real answers, not only errors
    assert not any(status >= 500 and status != 503 for c in STATUSES.values() for status in c)
    return ran


def _explicit_values(operation) -> dict[str, str]:
    """Path values that exist, for about half the cases: the windows' sensors."""
    names = {p.name for p in operation.path_parameters}
    values = {"sensor_id": SENSORS[0], "key": SENSORS[1]}
    return {name: value for name, value in values.items() if name in names}


def _run(operation, mode, examples, checks, headers, fixed) -> None:
    strategies = [operation.as_strategy(generation_mode=mode)]
    if fixed:
        strategies.append(operation.as_strategy(generation_mode=mode, path_parameters=fixed))

    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    @given(data=hypothesis.strategies.data())
    def run(data) -> None:
        case = data.draw(hypothesis.strategies.one_of(strategies))
        response = case.call_and_validate(headers=headers, checks=checks, timeout=TIMEOUT_S)
        STATUSES[operation.path][response.status_code] += 1

    run()


STREAM = "/api/pipelines/{name}/stream"
BAD_STREAMS = [
    ("/api/pipelines/no-such-pipeline/stream", {}, 404),
    ("/api/pipelines/sensor-stats-1m/stream?from=middle", {}, 400),
    ("/api/pipelines/sensor-stats-1m/stream?key=", {}, 400),
    ("/api/pipelines/sensor-stats-1m/stream?key=a%01b", {}, 400),
    ("/api/pipelines/sensor-stats-1m/stream", {"Last-Event-ID": "not-a-position"}, 400),
]


def _check_stream(worker: WorkerProcess, headers: dict[str, str]) -> None:
    """The stream never ends, so it is checked by hand, bounded: its refusals are the JSON
    errors the description lists, and a good request opens a text/event-stream."""
    op = get(worker.url, "/openapi.json").json()["paths"][STREAM]["get"]
    for path, extra, status in BAD_STREAMS:
        answer = get(worker.url, path, {**headers, **extra}, read_body=False, timeout=TIMEOUT_S)
        json_error(answer, status)
        assert str(status) in op["responses"], (path, status)
    for query in ("?from=earliest", f"?key={SENSORS[0]}", ""):
        path = f"/api/pipelines/sensor-stats-1m/stream{query}"
        answer = get(worker.url, path, headers, read_body=False, timeout=TIMEOUT_S)
        assert answer.status == 200, (path, answer.status, answer.body[:300])
        assert answer.content_type == "text/event-stream", (path, answer.headers)
    if op.get("security"):
        json_error(get(worker.url, "/api/pipelines/sensor-stats-1m/stream", read_body=False), 401)


def test_fuzz_every_path_without_token(kafka_bootstrap, tmp_path_factory, event_clock):
    worker = _worker(kafka_bootstrap, tmp_path_factory)
    try:
        wait_ready(worker, partitions=PARTITIONS, timeout=180)
        _send_readings(kafka_bootstrap, event_clock)
        _wait_sensor(worker, {})
        ran = _fuzz(worker, {}, checks_401=False)
        _check_stream(worker, {})
        assert set(ran) >= EXPECTED, sorted(ran)
        assert worker.alive(), worker.log_tail()
    finally:
        worker.kill()


def test_fuzz_every_path_with_token(kafka_bootstrap, tmp_path_factory, event_clock):
    worker = _worker(kafka_bootstrap, tmp_path_factory, FAUSTAPP_API_TOKEN=TOKEN)
    try:
        wait_ready(worker, partitions=PARTITIONS, timeout=180)
        _send_readings(kafka_bootstrap, event_clock)
        _wait_sensor(worker, bearer(TOKEN))
        json_error(get(worker.url, f"/api/sensors/{SENSORS[0]}"), 401)
        ran = _fuzz(worker, bearer(TOKEN), checks_401=True)
        _check_stream(worker, bearer(TOKEN))
        assert set(ran) >= EXPECTED, sorted(ran)
        assert worker.alive(), worker.log_tail()
    finally:
        worker.kill()
