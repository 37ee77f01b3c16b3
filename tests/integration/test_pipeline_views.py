"""The pipeline views on three real workers and the real broker: the catalogue, a key's state
and history asked of every worker, top-n gathered across workers against an oracle over what
was produced, a worker killed mid-query, and the history after its partitions moved."""

from __future__ import annotations

import asyncio
import math
import random
import statistics
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

import orjson
import pytest

from support.kafka_broker import free_port
from support.sensors import (
    MINUTE,
    Reading,
    key_per_partition,
    partition_of,
    send_readings,
    wait_for_records,
)
from support.workers import WorkerProcess, http_get

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

PARTITIONS = 4
GRACE_MS = 5_000
FINAL_MINUTES = 12
PREFIX = f"pv-{uuid.uuid4().hex[:6]}."
READINGS, STATS = f"{PREFIX}sensor-readings", f"{PREFIX}sensor-stats-1m"
SERVED_BY = "X-Faustapp-Served-By"
STATS_FIELDS = ["count", "sum", "mean", "min", "max", "stddev"]
ODD_KEY = "pv odd?#&=+%41-\u00fc"
"""A valid key that needs percent-encoding in a path, proxied between workers as it is."""


@dataclass
class Produced:
    """What the test sent, and the figures every view must show for it."""

    start: int
    readings: list[Reading]
    sensors: list[str]
    closers: list[str]
    emitted: dict[str, list[dict]] = field(default_factory=dict)
    """Final records per key, as read back from the output topic, newest first."""

    def partition(self, key: str) -> int:
        return partition_of(key, PARTITIONS)

    def open_figures(self) -> dict[str, dict]:
        """Each key's newest open 1-minute window (only the last minute is open)."""
        last = self.start + FINAL_MINUTES * MINUTE
        by_key: dict[str, list[float]] = defaultdict(list)
        for r in self.readings:
            if r.ts >= last:
                by_key[r.sensor_id].append(r.value)
        return {
            key: {"window_start": last, "window_end": last + MINUTE, **_stats(values)}
            for key, values in by_key.items()
        }

    def top(self, field: str, order: str, window: str, n: int, partitions=None) -> list[dict]:
        """The oracle: every key's value in its newest final (or open) window, ranked."""
        if window == "final":
            figures = {key: records[0] for key, records in self.emitted.items()}
        else:
            figures = self.open_figures()
        rows = [
            {
                "key": key,
                "value": f[field],
                "window_start": f["window_start"],
                "window_end": f["window_end"],
            }
            for key, f in figures.items()
            if partitions is None or self.partition(key) in partitions
        ]
        sign = -1 if order == "desc" else 1
        return sorted(rows, key=lambda r: (sign * r["value"], r["key"]))[:n]


def _stats(values: list[float]) -> dict:
    return {
        "count": len(values),
        "sum": math.fsum(values),
        "mean": statistics.fmean(values),
        "min": min(values),
        "max": max(values),
        "stddev": statistics.pstdev(values),
    }


def get(url: str, path: str, **query: object) -> tuple[int, dict, dict]:
    """GET a worker path with a query string: (status, JSON body, headers)."""
    quoted = urllib.parse.quote(path, safe="/")
    suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
    return http_get(f"{url}{quoted}{suffix}", timeout=15)


def assert_rows_equal(got: list[dict], want: list[dict]) -> None:
    """Same keys in the same order and windows; values equal up to float rounding."""
    assert [(r["key"], r["window_start"], r["window_end"]) for r in got] == [
        (r["key"], r["window_start"], r["window_end"]) for r in want
    ], (got, want)
    for g, w in zip(got, want, strict=True):
        assert math.isclose(g["value"], w["value"], rel_tol=1e-9, abs_tol=1e-9), (g, w)


def assert_figures(got: dict, want: dict) -> None:
    assert (got["window_start"], got["window_end"]) == (want["window_start"], want["window_end"])
    assert (got["count"], got["min"], got["max"]) == (want["count"], want["min"], want["max"])
    for name in ("sum", "mean", "stddev"):
        assert math.isclose(got[name], want[name], rel_tol=1e-9, abs_tol=1e-9), (name, got, want)


def poll(check, timeout: float, what: str):
    """Call ``check`` until it returns something truthy (bounded), else fail with its last."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what} not reached after {timeout}s; last: {last}")


@pytest.fixture(scope="module")
def cluster(kafka_bootstrap, tmp_path_factory):
    """Three workers of one deployment (default pipelines), each with a steady assignment."""
    app_id = f"faustapp-pv-{PREFIX[3:-1]}"
    env = {
        "FAUSTAPP_GRACE_MS": str(GRACE_MS),
        "FAUSTAPP_PARTITIONS": str(PARTITIONS),
        "FAUSTAPP_TOPIC_PREFIX": PREFIX,
        # Results and their history in one transaction; read back read_committed.
        "FAUSTAPP_PROCESSING_GUARANTEE": "exactly_once",
        # Long enough that a killed worker's partitions stay with it while the test asks.
        "FAUSTAPP_SESSION_TIMEOUT_MS": "20000",
    }
    workers = [
        WorkerProcess(
            kafka_bootstrap,
            tmp_path_factory.mktemp(f"pv-worker-{i}"),
            free_port(),
            app_id=app_id,
            extra_env=env,
        )
        for i in range(3)
    ]
    try:
        for worker in workers:
            worker.start()
        poll(lambda: settled(workers), 240, "three workers owning every partition once")
        yield workers
    finally:
        for worker in workers:
            worker.kill()


def settled(workers: list[WorkerProcess]) -> dict[str, list[int]] | None:
    """Each live worker's active partitions, once all are ready, each owns some and together
    they own every partition once."""
    owned = {}
    for worker in workers:
        if not worker.alive():
            raise RuntimeError(f"worker exited:\n{worker.log_tail()}")
        status, body = worker.health()
        if status != 200:
            return None
        owned[worker.url] = body["active_partitions"]
    flat = sorted(p for parts in owned.values() for p in parts)
    if flat != list(range(PARTITIONS)) or not all(owned.values()):
        return None  # a worker that has not joined yet owns nothing: not settled
    return owned


@pytest.fixture(scope="module")
def produced(cluster, kafka_bootstrap, event_clock) -> Produced:
    """Twelve final minutes and one open minute for 40 sensors, with known values."""
    start = event_clock.allocate(minutes=FINAL_MINUTES + 3)
    rng = random.Random(14)
    sensors = [f"pv-s-{i:02d}" for i in range(40)] + [ODD_KEY]
    readings = []
    for minute in range(FINAL_MINUTES):
        for i, sensor in enumerate(sensors):
            for j in range(1 + (i * 7 + minute) % 5):  # counts differ, with ties
                ts = start + minute * MINUTE + j * 9_000 + i
                readings.append(Reading(sensor, ts, round(rng.uniform(-50, 150), 2)))
    readings.sort(key=lambda r: r.ts)  # in time order: no reading is late for any pipeline
    asyncio.run(send_readings(kafka_bootstrap, readings, READINGS))
    closing = start + FINAL_MINUTES * MINUTE + GRACE_MS
    closers = list(key_per_partition(f"pv-close-{PREFIX[3:-1]}", PARTITIONS).values())
    closing_readings = [Reading(key, closing, 0.0) for key in closers]
    asyncio.run(send_readings(kafka_bootstrap, closing_readings, READINGS))
    # The open minute: after the closers, so nothing in it is late or final.
    open_readings = [
        Reading(sensor, closing + 1_000 + j * 7_000 + i, round(rng.uniform(-50, 150), 2))
        for i, sensor in enumerate(sensors)
        for j in range(1 + i % 6)
    ]
    open_readings.sort(key=lambda r: r.ts)
    asyncio.run(send_readings(kafka_bootstrap, open_readings, READINGS))
    data = Produced(start, readings + closing_readings + open_readings, sensors, closers)
    records = asyncio.run(
        wait_for_records(
            kafka_bootstrap,
            STATS,
            lambda r: r["sensor_id"] in sensors,
            expected=len(sensors) * FINAL_MINUTES,
            timeout=180,
        )
    )
    assert len(records) == len(sensors) * FINAL_MINUTES, "a window was emitted twice"
    for record in records:
        clean = {k: v for k, v in record.items() if not k.startswith("_")}
        data.emitted.setdefault(clean["sensor_id"], []).append(clean)
    for history in data.emitted.values():
        history.sort(key=lambda r: -r["window_start"])
    return data


def test_catalogue_lists_the_running_pipelines_the_same_on_every_worker(cluster):
    answers = [get(worker.url, "/api/pipelines") for worker in cluster]
    assert all(status == 200 for status, _, _ in answers), answers
    assert answers[0][1] == answers[1][1] == answers[2][1]
    pipelines = {p["name"]: p for p in answers[0][1]["pipelines"]}
    assert set(pipelines) == {"sensor-stats-1m", "sensor-stats-5m", "sensor-alerts"}
    stats = pipelines["sensor-stats-1m"]
    assert stats == {
        "name": "sensor-stats-1m",
        "input_topic": READINGS,
        "output_topic": STATS,
        "key_field": "sensor_id",
        "window": {"kind": "tumbling", "size_ms": MINUTE, "step_ms": MINUTE, "gap_ms": None},
        "grace_ms": GRACE_MS,
        "aggregates": [{"name": name, "kind": name, "field": "value"} for name in STATS_FIELDS],
        "output_fields": ["sensor_id", "window_start", "window_end", *STATS_FIELDS],
        "numeric_fields": STATS_FIELDS,
    }
    assert pipelines["sensor-stats-5m"]["window"] == {
        "kind": "hopping",
        "size_ms": 5 * MINUTE,
        "step_ms": MINUTE,
        "gap_ms": None,
    }
    assert pipelines["sensor-stats-5m"]["numeric_fields"] == [*STATS_FIELDS, "p50", "p95"]
    alerts = pipelines["sensor-alerts"]
    assert alerts["window"]["kind"] == "sliding" and alerts["output_topic"].endswith("alerts")
    assert {"zscore", "value", "mean"} <= set(alerts["numeric_fields"])


def test_bad_requests_are_json_400_and_unknown_names_404(cluster, produced):
    url = cluster[0].url
    sensor = produced.sensors[0]
    cases = [
        ("/api/pipelines/nope/keys/s-1", {}, 404),
        ("/api/pipelines/nope/top", {}, 404),
        ("/api/pipelines/sensor-stats-1m/keys/never-seen-key", {}, 404),
        ("/api/pipelines/sensor-stats-1m/keys/bad\x01key", {}, 400),
        (f"/api/pipelines/sensor-stats-1m/keys/{'k' * 300}", {}, 400),
        ("/api/pipelines/sensor-stats-1m/top", {"field": "sensor_id"}, 400),
        ("/api/pipelines/sensor-stats-1m/top", {"field": "p50"}, 400),
        ("/api/pipelines/sensor-stats-1m/top", {"n": 0}, 400),
        ("/api/pipelines/sensor-stats-1m/top", {"n": 1001}, 400),
        ("/api/pipelines/sensor-stats-1m/top", {"n": "many"}, 400),
        ("/api/pipelines/sensor-stats-1m/top", {"order": "up"}, 400),
        ("/api/pipelines/sensor-stats-1m/top", {"window": "closed"}, 400),
        (f"/api/pipelines/sensor-stats-1m/keys/{sensor}", {}, 200),
    ]
    for path, query, status in cases:
        got, body, headers = get(url, path, **query)
        assert got == status, (path, query, got, body)
        assert headers.get("Content-Type", "").startswith("application/json"), headers
        if status != 200:
            assert body["status"] == status and body["error"], body


def test_every_worker_answers_each_key_with_the_owners_figures_and_history(cluster, produced):
    owned = settled(cluster)
    assert owned, "the assignment moved"
    owner_of = {p: url for url, parts in owned.items() for p in parts}
    want_open = produced.open_figures()
    picked = {}
    for key in produced.sensors:
        picked.setdefault(owner_of[produced.partition(key)], []).append(key)
    assert set(picked) == {w.url for w in cluster}, "every worker owns some sensor"
    for owner, keys in picked.items():
        for key in [*keys[:3], *([ODD_KEY] if ODD_KEY in keys[3:] else [])]:
            path = f"/api/pipelines/sensor-stats-1m/keys/{key}"

            def open_minute_counted(key: str = key, path: str = path, owner: str = owner) -> bool:
                status, body, _ = get(owner, path)
                return (
                    status == 200
                    and body["open_windows"][-1:]
                    and (body["open_windows"][-1]["count"] == want_open[key]["count"])
                )

            poll(open_minute_counted, 60, f"open minute of {key} counted")
            answers = [get(worker.url, path) for worker in cluster]
            for status, body, headers in answers:
                assert status == 200, body
                assert headers[SERVED_BY] == owner, (key, headers)
                assert body == answers[0][1]
            body = answers[0][1]
            assert body["pipeline"] == "sensor-stats-1m" and body["key"] == key
            # Exactly the records emitted to the output topic, the ten newest, newest first.
            assert body["results"] == produced.emitted[key][:10]
            assert len(produced.emitted[key]) == FINAL_MINUTES > 10
            assert len(body["open_windows"]) == 1
            assert_figures(body["open_windows"][0], want_open[key])


def test_sliding_pipeline_shows_a_keys_pending_events_with_their_figures(cluster, produced):
    """sensor-alerts: the events of a key whose sliding window is not final yet."""
    newest = max(produced.readings, key=lambda r: r.ts)  # its partition's clock
    key, stream_time = newest.sensor_id, newest.ts
    mine = sorted((r for r in produced.readings if r.sensor_id == key), key=lambda r: r.ts)
    pending = [r for r in mine if r.ts > stream_time - GRACE_MS]
    assert pending, "the test needs events within the grace of the partition's clock"
    status, body, headers = get(cluster[1].url, f"/api/pipelines/sensor-alerts/keys/{key}")
    assert status == 200, body
    assert [w["ts"] for w in body["open_windows"]] == [r.ts for r in pending]
    for window, reading in zip(body["open_windows"], pending, strict=True):
        values = [r.value for r in mine if reading.ts - 5 * MINUTE <= r.ts <= reading.ts]
        assert window["value"] == reading.value
        assert window["count"] == len(values), (window, values)
        assert math.isclose(window["mean"], statistics.fmean(values), rel_tol=1e-9)
        assert math.isclose(window["stddev"], statistics.pstdev(values), abs_tol=1e-9)


@pytest.mark.parametrize("window", ["final", "open"])
def test_top_from_every_worker_equals_the_oracle(cluster, produced, window):
    cases = [(f, o, n) for f in ("count", "mean") for o in ("desc", "asc") for n in (1, 7, 1000)]

    def top_matches() -> bool:
        status, body, _ = get(cluster[0].url, "/api/pipelines/sensor-stats-1m/top", window=window)
        want = produced.top("count", "desc", window, 10)
        return status == 200 and [r["key"] for r in body["rows"]] == [r["key"] for r in want]

    poll(top_matches, 60, f"top over {window} windows")
    for worker in cluster:
        for field_name, order, n in cases:
            query = {"field": field_name, "order": order, "n": n, "window": window}
            status, body, _ = get(worker.url, "/api/pipelines/sensor-stats-1m/top", **query)
            assert status == 200, body
            assert {k: body[k] for k in ("pipeline", "field", "order", "window", "n")} == {
                "pipeline": "sensor-stats-1m",
                **query,
            }
            assert body["partial"] is False and body["missing_partitions"] == []
            assert sorted(body["workers"]) == sorted(w.url for w in cluster)
            assert body["workers"][0] == worker.url
            assert_rows_equal(body["rows"], produced.top(field_name, order, window, n))


def test_a_killed_worker_gives_partial_answers_then_its_keys_move_with_their_history(
    cluster, produced
):
    owned = settled(cluster)
    assert owned
    victim = max(cluster, key=lambda w: len(owned[w.url]))
    survivors = [w for w in cluster if w is not victim]
    lost = owned[victim.url]
    victim.kill()  # kill -9, before the group notices (session timeout 20 s)
    answers = [
        get(w.url, "/api/pipelines/sensor-stats-1m/top", field="mean", n=1000)
        for w in survivors
        for _ in range(2)
    ]
    kept = set(range(PARTITIONS)) - set(lost)
    want = produced.top("mean", "desc", "final", 1000, partitions=kept)
    for status, body, _ in answers:
        assert status == 200, body
        assert body["partial"] is True
        assert body["missing_partitions"] == sorted(lost)
        assert sorted(body["workers"]) == sorted(w.url for w in survivors)
        assert_rows_equal(body["rows"], want)
    # A key of the dead worker, asked before the rebalance: 503 with Retry-After, not a 500.
    key = next(k for k in produced.sensors if produced.partition(k) in lost)
    status, body, headers = get(survivors[0].url, f"/api/pipelines/sensor-stats-1m/keys/{key}")
    assert status == 503 and headers.get("Retry-After"), (status, body)
    # Once the survivors own its partitions, its history is there, from the changelog.
    poll(lambda: settled(survivors), 120, "survivors owning every partition")
    status, body, headers = get(survivors[1].url, f"/api/pipelines/sensor-stats-1m/keys/{key}")
    assert status == 200, body
    assert body["results"] == produced.emitted[key][:10]
    status, body, _ = get(survivors[0].url, "/api/pipelines/sensor-stats-1m/top", n=1000)
    assert status == 200 and body["partial"] is False, body
    assert_rows_equal(body["rows"], produced.top("count", "desc", "final", 1000))


def _get_with(url: str, path: str, headers: dict[str, str]) -> tuple[int, dict]:
    """GET with headers: (status, JSON body), for 4xx/5xx too."""
    request = urllib.request.Request(f"{url}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=15) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def test_top_gathers_every_worker_when_the_api_token_is_set(make_worker):
    """The fan-out to the other worker carries the token: without it the peer would refuse
    and the answer would be partial."""
    token = "pv-" + uuid.uuid4().hex
    env = {
        "FAUSTAPP_API_TOKEN": token,
        "FAUSTAPP_PARTITIONS": str(PARTITIONS),
        "FAUSTAPP_TOPIC_PREFIX": f"pvt-{uuid.uuid4().hex[:6]}.",
        "FAUSTAPP_PIPELINES": "sensor-stats-1m",
    }
    app_id = f"faustapp-pvt-{uuid.uuid4().hex[:6]}"
    workers = [make_worker(app_id=app_id, **env).start() for _ in range(2)]
    poll(lambda: settled(workers), 180, "two workers owning every partition")
    path = "/api/pipelines/sensor-stats-1m/top?field=mean&n=5"
    for worker in workers:
        status, body = _get_with(worker.url, path, {})
        assert status == 401 and body["status"] == 401, body
        status, body = _get_with(worker.url, path, {"Authorization": f"Bearer {token}"})
        assert status == 200, body
        assert body["partial"] is False and body["missing_partitions"] == [], body
        assert sorted(body["workers"]) == sorted(w.url for w in workers)
        assert body["rows"] == []  # nothing was produced: no key has a final result
        status, body = _get_with(worker.url, "/api/pipelines", {"Authorization": f"Bearer {token}"})
        assert status == 200 and [p["name"] for p in body["pipelines"]] == ["sensor-stats-1m"]
