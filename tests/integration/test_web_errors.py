"""The web views under bad requests: clear JSON 4xx answers from our views, never a 500.

Requests go through ``http.client`` with the path exactly as written (percent-encoding included),
so what the worker sees is what the test means.
"""

from __future__ import annotations

import asyncio
import http.client
import random
import time
import urllib.parse
import uuid

import orjson
import pytest

from support.kafka_broker import free_port
from support.sensors import Reading, send_readings
from support.workers import WorkerProcess

pytestmark = pytest.mark.integration

PARTITIONS = 4
PREFIX = f"web-{uuid.uuid4().hex[:6]}."
READINGS = f"{PREFIX}sensor-readings"
MAX_ID = 256
FUZZ_PATHS = 300
FUZZ_QUERIES = 200
# Odd but valid ids the views must find once they hold a reading (exact round trip of encoding).
BRACED_ID = "web-{braced}"
ODD_IDS = [
    "web-plain",
    "web with space",
    "web-\u00fc-\u6e29-\U0001f321",
    "web%41",
    "web?#&=+",
    "w" * 256,
]


@pytest.fixture(scope="module")
def web_worker(kafka_bootstrap, tmp_path_factory, event_clock):
    worker = WorkerProcess(
        kafka_bootstrap,
        tmp_path_factory.mktemp("web-worker"),
        free_port(),
        app_id=f"faustapp-it-{PREFIX[:-1]}",
        extra_env={
            "FAUSTAPP_TOPIC_PREFIX": PREFIX,
            "FAUSTAPP_PIPELINES": "sensor-stats-1m",
            "FAUSTAPP_PARTITIONS": str(PARTITIONS),
        },
    ).start()
    try:
        worker.wait_ready(partitions=PARTITIONS)
        start = event_clock.allocate(minutes=1)
        ids = [*ODD_IDS, BRACED_ID]
        readings = [Reading(sid, start + 1000 + i, 1.0 + i) for i, sid in enumerate(ids)]
        asyncio.run(send_readings(kafka_bootstrap, readings, READINGS))
        yield worker
    finally:
        worker.kill()


def _get(worker: WorkerProcess, raw_path: str) -> tuple[int, str, bytes]:
    """GET with the path sent byte for byte: (status, content type, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", worker.web_port, timeout=10)
    try:
        conn.putrequest("GET", raw_path, skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type") or "", resp.read()
    finally:
        conn.close()


def _json_error(status: int, content_type: str, body: bytes, context: str) -> dict:
    assert content_type.startswith("application/json"), (status, content_type, body[:200], context)
    parsed = orjson.loads(body)
    assert isinstance(parsed, dict) and parsed.get("error"), (parsed, context)
    assert parsed.get("status") == status, (parsed, context)
    return parsed


def _sensor_path(sensor_id: str) -> str:
    return "/api/sensors/" + urllib.parse.quote(sensor_id, safe="")


def test_odd_but_valid_ids_round_trip(web_worker):
    deadline = time.monotonic() + 30
    pending = set(ODD_IDS)
    answers = {}
    while pending and time.monotonic() < deadline:
        for sid in sorted(pending):
            status, content_type, body = _get(web_worker, _sensor_path(sid))
            answers[sid] = (status, body[:200])
            if status == 200:
                found = orjson.loads(body)
                assert found["sensor_id"] == sid, found
                assert found["windows"][0]["count"] == 1, found
                pending.discard(sid)
        time.sleep(0.3)
    assert not pending, {sid: answers[sid] for sid in pending}


def _wait_served(worker: WorkerProcess, sensor_id: str, timeout: float) -> tuple[int, str, bytes]:
    deadline = time.monotonic() + timeout
    while True:
        status, content_type, body = _get(worker, _sensor_path(sensor_id))
        if status == 200 or time.monotonic() > deadline:
            return status, content_type, body
        time.sleep(0.3)


def test_valid_id_with_braces_is_served(web_worker):
    """README forbids only control characters and '/' in ids, so ``web-{braced}`` is valid: its
    readings are counted, and its view must answer like any other sensor's."""
    assert _wait_served(web_worker, "web-plain", 30)[0] == 200  # the readings were processed
    status, content_type, body = _wait_served(web_worker, BRACED_ID, 10)
    assert status == 200, (status, content_type, body[:200])
    found = orjson.loads(body)
    assert found["sensor_id"] == BRACED_ID and found["windows"][0]["count"] == 1, found


@pytest.mark.parametrize(
    ("sensor_id", "words"),
    [
        ("bad\x01id", "control"),
        ("bad\x00id", "control"),
        ("line\nbreak", "control"),
        ("tab\tid", "control"),
        ("del\x7fid", "control"),
        ("c1\x85id", "control"),
        ("a/b", "/"),
        ("/", "/"),
        ("../../etc/passwd", "/"),
        ("x" * (MAX_ID + 1), "256"),
        ("x" * 2000, "256"),
        ("\u00e9" * (MAX_ID + 1), "256"),
    ],
)
def test_invalid_sensor_id_is_400_json(web_worker, sensor_id, words):
    status, content_type, body = _get(web_worker, _sensor_path(sensor_id))
    assert status == 400, (status, body[:200])
    error = _json_error(status, content_type, body, repr(sensor_id))["error"]
    assert "invalid sensor id" in error and words in error, error


def test_unknown_sensor_is_404_json(web_worker):
    for sid in ("never-seen", "x" * MAX_ID, "web-plain-2", "%", ".."):
        status, content_type, body = _get(web_worker, _sensor_path(sid))
        assert status == 404, (sid, status, body[:200])
        assert "unknown sensor" in _json_error(status, content_type, body, sid)["error"]


def test_unknown_routes_are_404_not_500(web_worker):
    """Routes no view declares are answered by aiohttp itself: 404 (plain text, not JSON; see
    the report), never a 500."""
    seen = {}
    for path in (
        "/api/nope",
        "/api",
        "/api/sensors",
        "/api/sensors/",
        "/api/sensors/a/b",
        "/api/health/",
        "/api/sensors/s-1/extra",
        "/nope?x=1",
    ):
        status, content_type, body = _get(web_worker, path)
        seen[path] = (status, content_type, body[:60])
        assert status == 404, seen[path]
    print("unknown routes:", seen)


def _fuzz_segment(rng: random.Random) -> tuple[str, bytes]:
    """A random path segment, percent-encoded byte for byte (some bytes left as is when safe),
    and the bytes it encodes."""
    pieces = [bytes([rng.randrange(256)]) for _ in range(rng.randint(1, 12))] + [
        rng.choice(
            [
                "\u00fc".encode(),
                "\U0001f321".encode(),
                b"/",
                b"%",
                b"..",
                b"\x00",
                b"\x7f",
                b"\xc2\x85",
                b"\xe2\x80\xa8",
                b"?",
                b"#",
                b" ",
                b"+",
                b"x" * rng.choice([1, 100, 255, 256, 257, 400]),
            ]
        )
        for _ in range(rng.randint(0, 4))
    ]
    rng.shuffle(pieces)
    # '{' and '}' make aiohttp's route pattern miss altogether (plain-text 404): that bug has
    # its own test above; here they would only repeat it.
    raw = b"".join(pieces).replace(b"{", b"(").replace(b"}", b")")
    out = []
    for byte in raw:
        char = chr(byte)
        if char.isascii() and (char.isalnum() or char in "-._~") and rng.random() < 0.5:
            out.append(char)
        else:
            out.append(f"%{byte:02X}")
    return "".join(out), raw


def _expected_status(raw: bytes) -> set[int]:
    """What README promises for the id ``raw`` decodes to: 400 for an invalid id, 404 for a
    valid one nobody sent (503 only while partitions move)."""
    try:
        sid = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {400, 404, 503}  # not UTF-8: left undecoded or refused; either is a clear 4xx
    bad = not sid or len(sid) > MAX_ID or "/" in sid
    bad = bad or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in sid)
    return {400, 503} if bad else {404, 503}


def test_fuzzed_sensor_paths_never_500_and_answer_json(web_worker):
    rng = random.Random(20241124)
    failures = []
    statuses: dict[int, int] = {}
    for _ in range(FUZZ_PATHS):
        segment, raw = _fuzz_segment(rng)
        path = "/api/sensors/" + segment
        status, content_type, body = _get(web_worker, path)
        statuses[status] = statuses.get(status, 0) + 1
        if status >= 500 and status != 503:
            failures.append((path[:120], status, body[:200]))
            continue
        if status not in _expected_status(raw):
            failures.append((path[:120], status, f"expected {_expected_status(raw)}", body[:200]))
            continue
        try:
            _json_error(status, content_type, body, path[:120])
        except (AssertionError, orjson.JSONDecodeError) as exc:
            failures.append((path[:120], status, content_type, repr(exc)[:200]))
    assert web_worker.alive(), web_worker.log_tail()
    print("fuzzed sensor paths, statuses:", statuses)
    assert not failures, f"{len(failures)} of {FUZZ_PATHS} bad answers, e.g. {failures[:8]}"


def _fuzz_query(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 6)):
        key = "".join(f"%{rng.randrange(256):02X}" for _ in range(rng.randint(0, 8)))
        value = "".join(
            rng.choice(["%00", "%FF", "%25", "%", "=", "&", ";", "a", "%2F", "+", "%C3%28", "~"])
            for _ in range(rng.randint(0, 10))
        )
        parts.append(rng.choice([f"{key}={value}", key, f"={value}", ""]))
    return "&".join(parts)


def test_fuzzed_query_strings_never_500(web_worker):
    rng = random.Random(7)
    failures = []
    for _ in range(FUZZ_QUERIES):
        query = _fuzz_query(rng)
        for base, want in (
            ("/api/health", {200}),
            (_sensor_path("web-plain"), {200}),
            (_sensor_path("never-seen"), {404}),
            (_sensor_path("a/b"), {400}),
        ):
            path = f"{base}?{query}"
            status, content_type, body = _get(web_worker, path)
            if status not in want:
                failures.append((path[:120], status, body[:200]))
                continue
            if not content_type.startswith("application/json"):
                failures.append((path[:120], status, content_type))
                continue
            orjson.loads(body)
    assert web_worker.alive(), web_worker.log_tail()
    assert not failures, f"{len(failures)} bad answers, e.g. {failures[:8]}"
