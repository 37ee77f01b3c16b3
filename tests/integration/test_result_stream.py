"""The results stream on real workers and the real broker (exactly_once): every final result
once across a reconnect with Last-Event-ID and across a rebalance, the key filter, heartbeats,
a slow client dropped while others keep up, the cap on streams, and the 400/404 answers."""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.parse
import uuid
from collections import Counter

import orjson
import pytest

from support.kafka_broker import free_port
from support.sensors import (
    MINUTE,
    Reading,
    expected_windows,
    key_per_partition,
    partition_of,
    read_topic,
    send_readings,
    wait_for_records,
)
from support.sse_reader import SseReader
from support.workers import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

PARTITIONS = 4
GRACE_MS = 2_000
PREFIX = f"rs-{uuid.uuid4().hex[:6]}."
READINGS, STATS = f"{PREFIX}sensor-readings", f"{PREFIX}sensor-stats-1m"
STREAM = "/api/pipelines/sensor-stats-1m/stream"
MAX_CLIENTS = 4
ENV = {
    "FAUSTAPP_PIPELINES": "sensor-stats-1m",
    "FAUSTAPP_GRACE_MS": str(GRACE_MS),
    "FAUSTAPP_PARTITIONS": str(PARTITIONS),
    "FAUSTAPP_TOPIC_PREFIX": PREFIX,
    "FAUSTAPP_PROCESSING_GUARANTEE": "exactly_once",
    "FAUSTAPP_SSE_HEARTBEAT_S": "0.5",
    "FAUSTAPP_SSE_WRITE_TIMEOUT_S": "2",
    "FAUSTAPP_SSE_MAX_CLIENTS": str(MAX_CLIENTS),
}


@pytest.fixture(scope="module")
def app_id() -> str:
    return f"faustapp-rs-{PREFIX[3:-1]}"


@pytest.fixture(scope="module")
def worker(kafka_bootstrap, tmp_path_factory, app_id):
    """One worker of the deployment, owning every partition."""
    process = WorkerProcess(
        kafka_bootstrap,
        tmp_path_factory.mktemp("rs-worker"),
        free_port(),
        app_id=app_id,
        extra_env=ENV,
    )
    try:
        process.start()
        process.wait_ready(timeout=180, partitions=PARTITIONS)
        yield process
    finally:
        process.kill()


class Feed:
    """Readings sent in phases, each phase closed by one reading per partition past grace."""

    def __init__(self, bootstrap: str, start: int) -> None:
        self.bootstrap = bootstrap
        self.next_minute = 0
        self.start = start
        self.readings: list[Reading] = []

    def phase(self, sensors: list[str], minutes: int, batches: int = 1) -> None:
        """``minutes`` closed minutes for ``sensors``, sent in ``batches`` pieces."""
        first = self.start + self.next_minute * MINUTE
        readings = [
            Reading(sensor, first + m * MINUTE + j * 10_000 + i, float((i * 31 + j * 7 + m) % 97))
            for m in range(minutes)
            for i, sensor in enumerate(sensors)
            for j in range(1 + (i + m) % 3)
        ]
        readings.sort(key=lambda r: r.ts)
        closing = first + minutes * MINUTE + GRACE_MS
        tag = f"{PREFIX[3:-1]}-{self.next_minute}"
        closers = [Reading(k, closing, 0.0) for k in key_per_partition(tag, PARTITIONS).values()]
        size = -(-len(readings) // batches)
        for n in range(batches):
            asyncio.run(
                send_readings(self.bootstrap, readings[n * size : (n + 1) * size], READINGS)
            )
            if batches > 1:
                time.sleep(1.0)
        asyncio.run(send_readings(self.bootstrap, closers, READINGS))
        self.readings += readings + closers
        self.next_minute += minutes + 2  # the closers' own minute stays open until the next

    def expected(self, sensors: list[str]) -> Counter:
        """(sensor, window start) of every final window of ``sensors`` (the oracle)."""
        wanted = set(sensors)
        windows = expected_windows(r for r in self.readings if r.sensor_id in wanted)
        return Counter((sensor, start) for sensor, start in windows)


def results_of(events) -> list[dict]:
    return [orjson.loads(e.data) for e in events]


def identity(record: dict) -> tuple[str, int]:
    return record["sensor_id"], record["window_start"]


def committed(bootstrap: str) -> list[dict]:
    """Every committed record of the output topic (read_committed), with partition, offset."""
    return asyncio.run(read_topic(bootstrap, STATS))


def assert_positions_match_offsets(events, records: list[dict], partitions: list[int]) -> None:
    """Each event's id names every partition read, its own at its record's offset + 1."""
    where = {identity(r): (r["_partition"], r["_offset"]) for r in records}
    for event in events:
        position = dict(map(int, pair.split(":")) for pair in event.id.split(","))
        assert sorted(position) == partitions, event.id
        partition, offset = where[identity(orjson.loads(event.data))]
        assert position[partition] == offset + 1, (event.id, partition, offset)


def get(url: str, path: str, headers: dict | None = None) -> tuple[int, dict, dict]:
    """A request that is not expected to stream: (status, JSON body, headers)."""
    reader = SseReader(url, path, headers or {})
    reader.close()
    return reader.status, orjson.loads(reader.body) if reader.body else {}, reader.response_headers


def test_every_result_once_across_a_reconnect_and_a_rebalance(
    worker, kafka_bootstrap, event_clock, make_worker, app_id
):
    feed = Feed(kafka_bootstrap, event_clock.allocate(minutes=60))
    sensors = [f"rs-a-{i:02d}" for i in range(24)]
    # Connected before the output topic has anything: reads it from its beginning.
    first = SseReader(worker.url, f"{STREAM}?from=earliest")
    assert first.status == 200, first.body
    assert first.response_headers["Content-Type"].startswith("text/event-stream")
    assert first.response_headers["Cache-Control"] == "no-cache"
    feed.phase(sensors, minutes=3)
    part_one = sum(feed.expected(sensors).values())
    got = first.wait_for(part_one, timeout=120)
    # Heartbeats come while the stream waits.
    deadline = time.monotonic() + 10
    while first.comments.count("heartbeat") < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert first.comments.count("heartbeat") >= 2, first.comments
    # Caught up with the worker's shared reader, it moves onto it (and says so).
    deadline = time.monotonic() + 20
    while "live" not in first.comments and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "live" in first.comments, first.comments
    first.close()
    last_id = got[-1].id
    seen = list(got)

    # While disconnected, more results are committed; the reconnect misses none of them.
    feed.phase(sensors, minutes=2)
    second = SseReader(worker.url, STREAM, {"Last-Event-ID": last_id})
    assert second.status == 200, second.body

    # A second worker joins while results are being emitted: a rebalance under way.
    joiner = make_worker(app_id=app_id, **ENV).start()
    feed.phase(sensors, minutes=4, batches=6)
    joiner.wait_ready(timeout=180)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        owned = [len(w.health()[1].get("active_partitions", [])) for w in (worker, joiner)]
        if owned[0] and owned[1] and sum(owned) == PARTITIONS:
            break
        time.sleep(0.5)
    assert owned[0] and owned[1] and sum(owned) == PARTITIONS, owned
    feed.phase(sensors, minutes=2)  # after the rebalance: emitted by both workers

    expected = feed.expected(sensors)
    records = asyncio.run(
        wait_for_records(
            kafka_bootstrap,
            STATS,
            lambda r: r["sensor_id"] in set(sensors),
            expected=sum(expected.values()),
            timeout=240,
        )
    )
    everything = committed(kafka_bootstrap)
    second.wait_for(len(everything) - len(seen), timeout=120)
    time.sleep(2)  # a result delivered twice would arrive now
    assert "live" in second.comments, second.comments
    second.close()
    seen += second.results()

    # Oracle 1: the committed topic is what was produced, once each.
    assert Counter(identity(r) for r in records) == expected
    # Oracle 2: the stream delivered every committed record exactly once, ids at their offsets.
    assert Counter(identity(r) for r in results_of(seen)) == Counter(map(identity, everything))
    assert_positions_match_offsets(seen, everything, list(range(PARTITIONS)))
    by_id = {identity(r): {k: v for k, v in r.items() if not k.startswith("_")} for r in records}
    for record in results_of(seen):
        if record["sensor_id"] in set(sensors):
            assert record == by_id[identity(record)]  # the record exactly as emitted

    joiner.stop()
    worker.wait_ready(timeout=180, partitions=PARTITIONS)


def test_key_filter_reads_only_the_key(worker, kafka_bootstrap):
    everything = committed(kafka_bootstrap)
    key = everything[0]["sensor_id"]
    mine = [r for r in everything if r["sensor_id"] == key]
    reader = SseReader(worker.url, f"{STREAM}?from=earliest&key={urllib.parse.quote(key)}")
    try:
        got = reader.wait_for(len(mine), timeout=60)
        time.sleep(1.5)
        got = reader.results()
    finally:
        reader.close()
    assert [identity(r) for r in results_of(got)] == [identity(r) for r in mine]
    assert_positions_match_offsets(got, mine, [partition_of(key, PARTITIONS)])
    # Resuming a key's stream after its first event gives exactly the rest.
    again = SseReader(worker.url, f"{STREAM}?key={key}", {"Last-Event-ID": got[0].id})
    try:
        rest = again.wait_for(len(mine) - 1, timeout=60)
        time.sleep(1.5)
        rest = again.results()
    finally:
        again.close()
    assert [identity(r) for r in results_of(rest)] == [identity(r) for r in mine[1:]]


def _worker_rss_kb(process: WorkerProcess) -> int:
    with open(f"/proc/{process.proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _silent_client(port: int, path: str) -> socket.socket:
    """A stream request from a client that then reads nothing, with a tiny receive window."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return sock


def _ended(sock: socket.socket, deadline: float, received: bytearray | None = None) -> bool:
    """Read what the worker sent until it closes or resets the connection (bounded)."""
    sock.settimeout(30)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        if not chunk:
            return True
        if received is not None:
            received += chunk
    return False


def test_a_slow_client_is_dropped_while_others_keep_up(worker, kafka_bootstrap, event_clock):
    feed = Feed(kafka_bootstrap, event_clock.allocate(minutes=60))
    sensors = [f"rs-slow-{i:03d}" for i in range(200)]
    port = int(worker.url.rsplit(":", 1)[1])
    # A client at the end of the topic (on the shared reader at once) that stops reading.
    live_slow = _silent_client(port, f"{STREAM}?from=latest")
    feed.phase(sensors, minutes=8)
    expected = feed.expected(sensors)
    asyncio.run(
        wait_for_records(
            kafka_bootstrap,
            STATS,
            lambda r: r["sensor_id"].startswith("rs-slow-"),
            expected=sum(expected.values()),
            timeout=240,
            settle=0.5,
        )
    )
    everything = committed(kafka_bootstrap)
    rss_before = _worker_rss_kb(worker)
    # A client that reads nothing from the beginning (on a consumer of its own).
    slow = _silent_client(port, f"{STREAM}?from=earliest")
    normal = SseReader(worker.url, f"{STREAM}?from=earliest")
    try:
        # The normal client gets everything, while the slow one is still connected.
        got = normal.wait_for(len(everything), timeout=120)
        assert Counter(identity(r) for r in results_of(got)) == Counter(map(identity, everything))
        # The worker drops both slow clients (a write waits longer than the write timeout).
        deadline = time.monotonic() + 60
        while worker.log_tail(1000).count("client too slow") < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert worker.log_tail(1000).count("client too slow") >= 2, worker.log_tail(40)
        assert _ended(live_slow, deadline + 30), "the slow client on the shared reader stayed"
        # Its connection ends (closed or reset) once it reads what was sent before the drop.
        received = bytearray()
        assert _ended(slow, deadline + 30, received), f"still connected ({len(received)} bytes)"
        assert len(received) < sum(len(e.data) for e in got), "it was sent everything"
        # The pipeline still emits and the normal stream still delivers after the drop.
        more = [f"rs-after-{i}" for i in range(5)]
        feed.phase(more, minutes=1)
        normal.wait_for(len(everything) + sum(feed.expected(more).values()), timeout=120)
        assert _worker_rss_kb(worker) - rss_before < 100_000, "the worker's memory grew"
    finally:
        slow.close()
        live_slow.close()
        normal.close()


def test_bad_requests_are_json_errors(worker):
    for path, status, what in [
        ("/api/pipelines/nope/stream", 404, "unknown pipeline"),
        (f"{STREAM}?from=middle", 400, "from must be"),
        (f"{STREAM}?key=", 400, "invalid key"),
        (f"{STREAM}?key=a%2Fb", 400, "invalid key"),
    ]:
        code, body, headers = get(worker.url, path)
        assert (code, body["status"]) == (status, status), (path, code, body)
        assert what in body["error"], body
    for last_id, what in [
        ("junk", "partition:next_offset"),
        ("0:1,0:2", "twice"),
        (f"{PARTITIONS}:0", "does not have"),
        ("0:999999999", "past the end"),
    ]:
        code, body, _ = get(worker.url, STREAM, {"Last-Event-ID": last_id})
        assert (code, body.get("status")) == (400, 400), (last_id, code, body)
        assert what in body["error"], body


def test_streams_beyond_the_cap_get_503(worker):
    readers = []
    try:
        deadline = time.monotonic() + 30
        while len(readers) < MAX_CLIENTS and time.monotonic() < deadline:
            reader = SseReader(worker.url, STREAM)
            if reader.status == 200:
                readers.append(reader)
            else:  # earlier tests' streams not yet noticed gone
                time.sleep(0.5)
        assert len(readers) == MAX_CLIENTS
        code, body, headers = get(worker.url, STREAM, {"Accept": "text/event-stream"})
        assert (code, body["status"]) == (503, 503), body
        assert headers.get("Retry-After"), headers
    finally:
        for reader in readers:
            reader.close()


def test_stopping_the_worker_ends_its_streams_with_a_reason(worker):
    """Last in this module: it stops the module's worker."""
    deadline = time.monotonic() + 30
    reader = SseReader(worker.url, STREAM)
    while reader.status == 503 and time.monotonic() < deadline:  # earlier streams ending
        time.sleep(0.5)
        reader = SseReader(worker.url, STREAM)
    assert reader.status == 200, reader.body
    began = time.monotonic()
    assert worker.stop(timeout=60) is not None
    took = time.monotonic() - began
    deadline = time.monotonic() + 10
    while not reader.ended and time.monotonic() < deadline:
        time.sleep(0.1)
    closes = [e for e in reader.events if e.event == "close"]
    assert closes and orjson.loads(closes[-1].data) == {"reason": "worker stopping"}, reader.events
    assert reader.ended and took < 30, took
