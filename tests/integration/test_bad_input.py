"""Bad input at scale on the real broker: >= 10,000 malformed records among valid readings.

Every bad record must reach ``faustapp-dlq`` exactly once with a reason that fits it, valid but
long-past readings must reach ``faustapp-late``, the valid readings must be counted exactly as an
independent oracle says, and the worker must stay healthy throughout.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
import urllib.request
import uuid
from collections import Counter, defaultdict

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from faustapp.pipeline import DLQ_RAW_LIMIT

from support import corpus
from support.corpus import CorpusRecord
from support.sensors import (
    MINUTE,
    Reading,
    assert_same_figures,
    disordered_readings,
    expected_windows,
    key_per_partition,
    partition_of,
    read_topic,
)
from support.workers import WorkerProcess, http_get

pytestmark = pytest.mark.integration

PARTITIONS = 4
GRACE_MS = 5_000
MINUTES = 5
N_BAD = 10_000
# The broker's default message.max.bytes (1048588) bounds a whole record batch.
BROKER_MESSAGE_MAX_BYTES = 1_048_588


class Topics:
    """This test's own topics (a fresh prefix), so counts cover this run only."""

    def __init__(self, tag: str) -> None:
        self.prefix = f"{tag}-{uuid.uuid4().hex[:6]}."
        self.readings = f"{self.prefix}sensor-readings"
        self.stats = f"{self.prefix}sensor-stats-1m"
        self.late = f"{self.prefix}faustapp-late"
        self.dlq = f"{self.prefix}faustapp-dlq"

    def env(self) -> dict[str, str]:
        return {
            "FAUSTAPP_TOPIC_PREFIX": self.prefix,
            "FAUSTAPP_PIPELINES": "sensor-stats-1m",
            "FAUSTAPP_GRACE_MS": str(GRACE_MS),
            "FAUSTAPP_PARTITIONS": str(PARTITIONS),
        }


def _start(make_worker, topics: Topics) -> WorkerProcess:
    worker = make_worker(**topics.env()).start()
    worker.wait_ready(partitions=PARTITIONS)
    return worker


async def _produce(
    bootstrap: str, topic: str, records: list[CorpusRecord]
) -> list[tuple[int, int]]:
    """Produce in order (acks=all, idempotent); (partition, offset) of each record.

    ``max_request_size`` admits values of about 1 MB; ``linger_ms=0`` keeps them alone in
    their batch, under the broker's message.max.bytes.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_request_size=BROKER_MESSAGE_MAX_BYTES - 1024,
        request_timeout_ms=60_000,
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, r.value, key=r.key) for r in records]
        metadata = await asyncio.wait_for(asyncio.gather(*futures), 120)
    finally:
        await producer.stop()
    return [(m.partition, m.offset) for m in metadata]


def _metrics(worker: WorkerProcess) -> dict[tuple[str, frozenset], float]:
    """Samples of the worker's /metrics: (name, frozenset of label pairs) -> value."""
    with urllib.request.urlopen(f"{worker.url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name_labels, value = line.rsplit(" ", 1)
            name, _, labels = name_labels.partition("{")
            pairs = re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels)
            samples[(name, frozenset(pairs))] = float(value)
    return samples


def _sample(worker: WorkerProcess, name: str, **labels: str) -> float:
    """One sample's value, 0 when the worker has not exported it (yet)."""
    return _metrics(worker).get((name, frozenset(labels.items())), 0.0)


def _wait_metric(
    worker: WorkerProcess, name: str, labels: dict[str, str], at_least: float, timeout: float
) -> float:
    deadline = time.monotonic() + timeout
    value = 0.0
    while time.monotonic() < deadline:
        assert worker.alive(), f"worker died: {_state(worker)}"
        value = _sample(worker, name, **labels)
        if value >= at_least:
            return value
        time.sleep(0.5)
    raise AssertionError(
        f"{name}{labels} = {value} < {at_least} after {timeout}s; {_state(worker)}"
    )


def _wait_records(
    bootstrap: str,
    topic: str,
    worker: WorkerProcess,
    expected: int,
    match=lambda r: True,
    timeout: float = 60.0,
    settle: float = 3.0,
    strict: bool = True,
) -> list[dict]:
    """Records of ``topic`` (matching ``match``) once ``expected`` are there, and again after
    ``settle`` s so late duplicates show. Fails at once, with the worker's errors, if the worker
    dies; at the deadline fails (``strict``) or returns what is there, so the assertions can say
    what is missing."""
    deadline = time.monotonic() + timeout
    found: list[dict] = []
    while time.monotonic() < deadline:
        found = [r for r in asyncio.run(read_topic(bootstrap, topic)) if match(r)]
        if len(found) >= expected:
            time.sleep(settle)
            return [r for r in asyncio.run(read_topic(bootstrap, topic)) if match(r)]
        if not worker.alive():
            raise AssertionError(
                f"{topic}: {len(found)} of {expected} records, and the worker died; "
                f"{_state(worker)}"
            )
        time.sleep(1.0)
    if strict:
        raise AssertionError(
            f"{topic}: {len(found)} of {expected} records after {timeout}s; {_state(worker)}"
        )
    return found


def _log_errors(worker: WorkerProcess, limit: int = 30) -> str:
    """ERROR/CRITICAL lines of the worker's log and the last exception line of each traceback."""
    try:
        lines = worker.log_path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    picked = [
        line
        for i, line in enumerate(lines)
        if "[ERROR]" in line
        or "[CRITICAL]" in line
        or (
            line
            and not line[0].isspace()
            and "Error" in line
            and i
            and lines[i - 1].startswith(" ")
        )
    ]
    return "\n".join(picked[-limit:]) or "(no ERROR lines)"


def _state(worker: WorkerProcess) -> str:
    return (
        f"worker alive={worker.alive()} exit={worker.proc.poll() if worker.proc else None} "
        f"health={worker.health()[0]}\n--- worker log, errors ---\n{_log_errors(worker)}"
        f"\n--- worker log, tail ---\n{worker.log_tail(15)}"
    )


def _closers(ts: int, tag: str) -> list[CorpusRecord]:
    """One reading per partition at ``ts``: every partition's stream time moves there."""
    return [
        corpus.valid_record(Reading(key, ts, 0.0))
        for key in key_per_partition(f"closer-{tag}", PARTITIONS).values()
    ]


def _b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode()


def _check_dead_letters(
    dead: list[dict], bad: dict[tuple[int, int], CorpusRecord], topic: str
) -> dict[str, str]:
    """Each bad record exactly once, raw bytes kept, reason fitting its kind; returns one reason
    per kind (for the report)."""
    by_position: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for record in dead:
        by_position[(record["source_partition"], record["source_offset"])].append(record)
    repeated = {p: len(v) for p, v in by_position.items() if len(v) > 1}
    assert not repeated, f"dead-lettered more than once: {list(repeated.items())[:10]}"
    missing = [(p, bad[p].kind) for p in bad if p not in by_position]
    assert not missing, f"{len(missing)} bad records not in the DLQ, e.g. {missing[:10]}"
    unexpected = [(p, r[0]["error"]) for p, r in by_position.items() if p not in bad]
    assert not unexpected, f"valid records dead-lettered: {unexpected[:10]}"
    wrong: list[tuple] = []
    reasons: dict[str, str] = {}
    for position, record in bad.items():
        letter = by_position[position][0]
        error = letter.get("error") or ""
        reasons.setdefault(record.kind, error)
        fits = error.strip() and all(word in error.lower() for word in record.reason)
        if not fits:
            wrong.append((record.kind, record.reason, error[:120]))
        # Raw bytes are kept whole up to DLQ_RAW_LIMIT; beyond, the first DLQ_RAW_LIMIT bytes
        # are kept with the original size (a base64 copy of 1 MB does not fit a Kafka message).
        value = record.value
        truncated = value is not None and len(value) > DLQ_RAW_LIMIT
        if (
            letter["pipeline"] != "sensors"
            or letter["source_topic"] != topic
            or letter["value_b64"] != _b64(value[:DLQ_RAW_LIMIT] if truncated else value)
            or letter.get("value_truncated", False) != truncated
            or (truncated and letter.get("value_size") != len(value))
            or letter["key_b64"] != _b64(record.key)
        ):
            wrong.append(
                (record.kind, "raw bytes/metadata", {k: str(v)[:60] for k, v in letter.items()})
            )
    assert not wrong, f"{len(wrong)} DLQ records do not fit their kind, e.g. {wrong[:10]}"
    return reasons


def test_ten_thousand_bad_records_dead_lettered_once_valid_counted_exactly(
    kafka_bootstrap, make_worker, event_clock
):
    topics = Topics("bad")
    worker = _start(make_worker, topics)
    start = event_clock.allocate(minutes=MINUTES)
    now = int(time.time() * 1000)

    # A recent reading first on every partition: from then on 1970/2001 readings are late.
    warm = _closers(start, "warm")
    sensors = [f"ok-{i}" for i in range(8)]
    base = disordered_readings(
        sensors, start, MINUTES, every_ms=1000, disorder_ms=GRACE_MS - 1500, seed=11
    )
    # Tricky valid records sit in the last minute and come after the base readings (they would
    # move stream time there and make earlier readings late). Nothing before the closers can
    # make the last minute final: even forwarded ones (null/binary/foreign keys) are not late.
    tricky = corpus.tricky_valid(start_ms=start + (MINUTES - 1) * MINUTE, seed=5)
    late = corpus.late_valid([f"past-{i}" for i in range(4)])
    bad = corpus.malformed(N_BAD, start_ms=start, minutes=MINUTES, now_ms=now, seed=3)
    mixed = [corpus.valid_record(r) for r in base] + tricky
    mixed = list(corpus.interleave(mixed, late, seed=2))
    mixed = list(corpus.interleave(mixed, bad, seed=3))
    records = warm + mixed
    assert sum(not r.valid for r in records) >= 10_000
    assert {r.kind for r in bad} >= {
        "invalid_json",
        "invalid_utf8",
        "empty_value",
        "null_value",
        "ts_far_future",
        "ts_before_1970",
        "huge_value",
        "sensor_id_control",
        "sensor_id_slash",
        "sensor_id_too_long",
    }

    positions = asyncio.run(_produce(kafka_bootstrap, topics.readings, records))
    placed = dict(zip(positions, records, strict=True))
    bad_at = {p: r for p, r in placed.items() if not r.valid}
    late_at = {p: r for p, r in placed.items() if r.late}
    forwarded = sum(
        1
        for (partition, _), r in placed.items()
        if r.valid and partition != corpus.home_partition(r, PARTITIONS)
    )

    # Everything, forwarded records included, read before the closers go out.
    _wait_metric(
        worker,
        "faustapp_events_in_total",
        {"pipeline": "sensors"},
        len(records) + forwarded,
        timeout=120,
    )
    _wait_records(kafka_bootstrap, topics.dlq, worker, len(bad_at))
    end = start + MINUTES * MINUTE
    asyncio.run(_produce(kafka_bootstrap, topics.readings, _closers(end + GRACE_MS, "end")))

    counted = [r.reading for r in records if r.valid and not r.late]
    want = expected_windows(counted)
    got = _wait_records(kafka_bootstrap, topics.stats, worker, len(want), strict=False)
    late_records = asyncio.run(read_topic(kafka_bootstrap, topics.late))
    dead = asyncio.run(read_topic(kafka_bootstrap, topics.dlq, timeout=60))

    # The worker stayed up and healthy.
    assert worker.alive(), _state(worker)
    status, body = worker.health()
    assert status == 200, body

    # Every bad record dead-lettered exactly once, with raw bytes and a fitting reason.
    reasons = _check_dead_letters(dead, bad_at, topics.readings)
    print("DLQ reason per kind:")
    for kind, reason in sorted(reasons.items()):
        print(f"  {kind}: {reason[:110]}")

    # Long-past valid readings are late, once each, with their figures; nothing else is late.
    late_by_position = Counter((r["source_partition"], r["source_offset"]) for r in late_records)
    unexpected_late = [
        r for r in late_records if (r["source_partition"], r["source_offset"]) not in late_at
    ]
    assert not unexpected_late, (
        f"{len(unexpected_late)} valid in-grace readings were judged late, e.g. "
        f"{unexpected_late[:5]}"
    )
    assert late_by_position == Counter(late_at.keys()), "a late record is missing or repeated"
    for record in late_records:
        reading = late_at[(record["source_partition"], record["source_offset"])].reading
        assert record["pipeline"] == "sensor-stats-1m"
        assert (record["sensor_id"], record["ts"], record["value"]) == (
            reading.sensor_id,
            reading.ts,
            reading.value,
        )
        assert record["reason"]

    # The valid readings counted exactly: each window once, figures as the oracle says.
    keys = Counter((r["sensor_id"], r["window_start"]) for r in got)
    assert not [k for k, n in keys.items() if n > 1], "a window was emitted twice"
    assert set(keys) == set(want), (
        f"missing {sorted(set(want) - set(keys))[:10]}, extra {sorted(set(keys) - set(want))[:10]}"
    )
    for record in got:
        assert_same_figures(record, want[(record["sensor_id"], record["window_start"])])

    samples = _metrics(worker)
    dead_letters = samples.get(
        ("faustapp_dead_letters_total", frozenset({("pipeline", "sensors")}))
    )
    assert dead_letters == len(dead) == len(bad_at), (dead_letters, len(dead), len(bad_at))
    late_events = samples.get(
        ("faustapp_late_events_total", frozenset({("pipeline", "sensor-stats-1m")}))
    )
    assert late_events == len(late_at), (late_events, len(late_at))


def test_far_future_event_is_dead_lettered_and_does_not_move_stream_time(
    kafka_bootstrap, make_worker, event_clock
):
    topics = Topics("skew")
    worker = _start(make_worker, topics)
    start = event_clock.allocate(minutes=2)
    sensor = "ff-s-1"
    now = int(time.time() * 1000)
    first = corpus.valid_record(Reading(sensor, start + 1000, 1.0))
    future = [
        CorpusRecord(
            "ts_far_future",
            sensor.encode(),
            orjson.dumps({"sensor_id": sensor, "ts": ts, "value": 99.0}),
            False,
            ("ahead",),
        )
        for ts in (now + 2 * 3_600_000, corpus.iso(corpus.YEAR_3000_MS), corpus.YEAR_3000_MS)
    ]
    # Had the future events moved stream time, this reading's window would be final: late.
    after = corpus.valid_record(Reading(sensor, start + 2000, 2.0))
    positions = asyncio.run(_produce(kafka_bootstrap, topics.readings, [first, *future, after]))
    dead = _wait_records(kafka_bootstrap, topics.dlq, worker, len(future))
    reasons = _check_dead_letters(
        dead, dict(zip(positions[1:-1], future, strict=True)), topics.readings
    )
    assert "3600000" in reasons["ts_far_future"], reasons

    # The window of the early readings is still open and holds both.
    deadline = time.monotonic() + 30
    body: dict = {}
    while time.monotonic() < deadline:
        status, body, _ = http_get(f"{worker.url}/api/sensors/{sensor}")
        if status == 200 and body["windows"] and body["windows"][0]["count"] == 2:
            break
        time.sleep(0.3)
    assert body.get("windows") and body["windows"][0]["count"] == 2, body
    partition = partition_of(sensor, PARTITIONS)
    labels = {"pipeline": "sensor-stats-1m", "partition": str(partition)}
    # Set at every flush: wait for it, then make sure it did not jump ahead.
    stream_time = _wait_metric(
        worker, "faustapp_stream_time_seconds", labels, (start + 2000) / 1000, timeout=15
    )
    assert stream_time * 1000 <= start + 2000, stream_time

    asyncio.run(
        _produce(
            kafka_bootstrap,
            topics.readings,
            [corpus.valid_record(Reading(sensor, start + MINUTE + GRACE_MS, 0.0))],
        )
    )
    got = _wait_records(
        kafka_bootstrap, topics.stats, worker, 1, match=lambda r: r["window_start"] == start
    )
    assert len(got) == 1 and got[0]["count"] == 2 and got[0]["sum"] == 3.0, got
    late = asyncio.run(read_topic(kafka_bootstrap, topics.late))
    assert late == [], late
    assert worker.health()[0] == 200


def test_one_megabyte_values_are_dead_lettered_or_counted(
    kafka_bootstrap, make_worker, event_clock
):
    """Values of about 1 MB (within the broker's limit): bad ones go to the DLQ once with their
    raw bytes (README: nothing is dropped silently), the padded valid one is counted, and the
    worker stays up."""
    topics = Topics("huge")
    worker = _start(make_worker, topics)
    start = event_clock.allocate(minutes=2)
    sensor = "huge-s"
    before = corpus.valid_record(Reading(sensor, start, 1.0))
    huge = corpus.huge(ts=start + 1000, prefix="huge")
    after = corpus.valid_record(Reading(sensor, start + 3000, 3.0))
    records = [before, *huge, after]
    positions = asyncio.run(_produce(kafka_bootstrap, topics.readings, records))
    placed = dict(zip(positions, records, strict=True))
    bad_at = {p: r for p, r in placed.items() if not r.valid}
    asyncio.run(
        _produce(kafka_bootstrap, topics.readings, _closers(start + MINUTE + GRACE_MS, "huge"))
    )
    counted = [r.reading for r in records if r.valid]
    want = expected_windows(counted)
    got = _wait_records(
        kafka_bootstrap, topics.stats, worker, 1, match=lambda r: r["sensor_id"] == sensor
    )
    dead = _wait_records(kafka_bootstrap, topics.dlq, worker, len(bad_at), timeout=30)
    assert worker.alive(), _state(worker)
    assert worker.health()[0] == 200
    _check_dead_letters(dead, bad_at, topics.readings)
    assert len(got) == 1, got
    assert_same_figures(got[0], want[(sensor, start)])
