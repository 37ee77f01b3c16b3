"""Async Kafka side of the generator: topic creation, pacing, batched delivery, progress."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from faustapp.generator.config import GeneratorConfig
from faustapp.generator.datasets import records_for

#: Delivery futures allowed to be outstanding before the loop waits for the oldest ones.
MAX_IN_FLIGHT = 20_000
#: Records sent per scheduling step when unpaced; also the cap for paced batches.
MAX_BATCH = 1000
#: Paced batches are sized to about this much wall-clock time at the target rate.
BATCH_SECONDS = 0.01
PROGRESS_EVERY_S = 1.0
CLIENT_ID = "faustapp-generator"


class TokenBucket:
    """Keeps a long-run average rate while sleeping once per batch rather than per record."""

    def __init__(
        self, rate: float, capacity: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self._rate = rate
        self._capacity = max(float(capacity), 1.0)
        self._clock = clock
        self._tokens = self._capacity
        self._updated = clock()

    def reserve(self, amount: float) -> float:
        """Take tokens now, going into debt if needed; the debt is the wait before sending."""
        now = self._clock()
        refill = (now - self._updated) * self._rate
        self._tokens = min(self._capacity, self._tokens + refill)
        self._updated = now
        self._tokens -= amount
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate


def batch_size_for(rate: float) -> int:
    """Big enough to amortise the sleep, small enough that pacing looks smooth."""
    if rate <= 0:
        return MAX_BATCH
    return max(1, min(MAX_BATCH, int(rate * BATCH_SECONDS)))


@dataclass(frozen=True)
class ProduceReport:
    """What a run achieved, for the exit status and for benchmarks that drive the generator."""

    topic: str
    requested: int
    """Records asked for; ``0`` means unbounded."""
    sent: int
    """Records handed to the producer."""
    acked: int
    failed: int
    bad: int
    bad_by_kind: Mapping[str, int]
    elapsed_s: float
    interrupted: bool
    seed: int
    start_ms: int
    first_error: str | None = None

    @property
    def records_per_s(self) -> float:
        """Throughput actually confirmed by the broker, the number benchmarks care about."""
        return self.acked / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass
class _Tally:
    """Mutable counters shared by the send loop and the progress printer."""

    sent: int = 0
    acked: int = 0
    failed: int = 0
    bad_by_kind: Counter[str] = field(default_factory=Counter)
    pending: deque[asyncio.Future[object]] = field(default_factory=deque)
    first_error: str | None = None

    @property
    def bad(self) -> int:
        return sum(self.bad_by_kind.values())

    def fail(self, error: BaseException) -> None:
        self.failed += 1
        if self.first_error is None:
            self.first_error = f"{type(error).__name__}: {error}"

    async def settle(self, how_many: int) -> None:
        """Await the oldest deliveries together instead of one await per record."""
        chunk = [self.pending.popleft() for _ in range(min(how_many, len(self.pending)))]
        for outcome in await asyncio.gather(*chunk, return_exceptions=True):
            if isinstance(outcome, BaseException):
                self.fail(outcome)
            else:
                self.acked += 1


async def ensure_topic(
    bootstrap: str,
    topic: str,
    partitions: int,
    replication_factor: int = 1,
    topic_configs: Mapping[str, str] | None = None,
    *,
    client_options: Mapping[str, Any] | None = None,
) -> bool:
    """Create the topic up front so partition count is ours, not the broker's auto-create default.

    ``topic_configs`` (``{"cleanup.policy": "compact"}``) apply to a topic this call creates; an
    existing topic is left as it is. ``client_options`` are the TLS/SASL keyword arguments of
    the admin client (see ``faustapp.kafka_client.client_options``). Returns whether this call
    created it.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id=CLIENT_ID, **dict(client_options or {})
    )
    await admin.start()
    try:
        if topic in await admin.list_topics():
            return False
        response = await admin.create_topics(
            [
                NewTopic(
                    topic,
                    num_partitions=partitions,
                    replication_factor=replication_factor,
                    topic_configs=dict(topic_configs or {}),
                )
            ]
        )
        for topic_error in response.topic_errors:
            error_code = topic_error[1]
            if error_code == TopicAlreadyExistsError.errno:
                return False
            if error_code != 0:
                message = topic_error[2] if len(topic_error) > 2 else None
                raise for_code(error_code)(message or f"cannot create topic {topic!r}")
        return True
    finally:
        await admin.close()


async def produce(
    config: GeneratorConfig,
    bootstrap: str,
    *,
    stop: asyncio.Event | None = None,
    out: TextIO | None = None,
    client_options: Mapping[str, Any] | None = None,
) -> ProduceReport:
    """Send one generator run to Kafka at the configured rate; setting ``stop`` ends it cleanly.

    Whatever was handed to the producer before ``stop`` (or cancellation) is flushed and
    counted, so the report always accounts for every sent record. ``client_options`` are the
    TLS/SASL keyword arguments of the clients (``faustapp.kafka_client.client_options``).
    """
    security = dict(client_options or {})
    topic_configs = dict(config.info.topic_configs)
    if config.min_insync_replicas is not None:
        topic_configs["min.insync.replicas"] = str(config.min_insync_replicas)
    config = config.resolved()
    assert config.seed is not None and config.start_ms is not None
    stop = stop if stop is not None else asyncio.Event()
    out = out if out is not None else sys.stderr
    await ensure_topic(
        bootstrap,
        config.topic,
        config.partitions,
        config.replication_factor,
        topic_configs,
        client_options=security,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=CLIENT_ID,
        linger_ms=5,
        acks="all",
        enable_idempotence=True,
        **security,
    )
    try:
        await producer.start()
    except BaseException:
        await producer.stop()
        raise
    if not config.quiet:
        _say(out, _describe_run(config, bootstrap))
    tally = _Tally()
    started = time.monotonic()
    progress = None if config.quiet else asyncio.create_task(_print_progress(tally, config, out))
    try:
        await _send_all(producer, config, stop, tally)
    except KafkaError as error:
        tally.fail(error)
    finally:
        try:
            await tally.settle(len(tally.pending))
            await producer.stop()
        finally:
            if progress is not None:
                progress.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await progress
    report = ProduceReport(
        topic=config.topic,
        requested=config.count,
        sent=tally.sent,
        acked=tally.acked,
        failed=tally.failed,
        bad=tally.bad,
        bad_by_kind=dict(tally.bad_by_kind),
        elapsed_s=time.monotonic() - started,
        interrupted=stop.is_set() and (config.count == 0 or tally.sent < config.count),
        seed=config.seed,
        start_ms=config.start_ms,
        first_error=tally.first_error,
    )
    if not config.quiet:
        _say(out, format_report(report))
    return report


async def _send_all(
    producer: AIOKafkaProducer, config: GeneratorConfig, stop: asyncio.Event, tally: _Tally
) -> None:
    records = records_for(config)
    batch_size = batch_size_for(config.rate)
    bucket = TokenBucket(config.rate, batch_size) if config.rate > 0 else None
    while not stop.is_set():
        batch = list(itertools.islice(records, batch_size))
        if not batch:
            return
        if bucket is not None:
            await _sleep_unless_stopped(bucket.reserve(len(batch)), stop)
            if stop.is_set():
                return
        for record in batch:
            timestamp_ms = record.event_ts if record.event_ts is not None else record.nominal_ts
            delivery = await producer.send(
                config.topic, record.value, key=record.key, timestamp_ms=timestamp_ms
            )
            tally.pending.append(delivery)
            tally.sent += 1
            if not record.is_valid:
                tally.bad_by_kind[record.kind] += 1
        if len(tally.pending) >= MAX_IN_FLIGHT:
            await tally.settle(len(tally.pending) - MAX_IN_FLIGHT // 2)
        else:
            await asyncio.sleep(0)


async def _sleep_unless_stopped(delay: float, stop: asyncio.Event) -> None:
    if delay <= 0:
        return
    if delay < 0.05:
        await asyncio.sleep(delay)
        return
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)


async def _print_progress(tally: _Tally, config: GeneratorConfig, out: TextIO) -> None:
    total = str(config.count) if config.count else "unbounded"
    last_sent, last_time = tally.sent, time.monotonic()
    while True:
        await asyncio.sleep(PROGRESS_EVERY_S)
        now = time.monotonic()
        rate = (tally.sent - last_sent) / (now - last_time) if now > last_time else 0.0
        last_sent, last_time = tally.sent, now
        _say(out, f"sent {tally.sent}/{total} ({rate:.0f}/s), bad {tally.bad}")


def _describe_run(config: GeneratorConfig, bootstrap: str) -> str:
    count = str(config.count) if config.count else "unbounded"
    rate = f"{config.rate:g}/s" if config.rate > 0 else "unpaced"
    info = config.info
    return (
        f"producing {count} {info.record_noun} from {config.keys} {info.key_noun} "
        f"to {config.topic!r} "
        f"at {bootstrap}: rate {rate}, disorder {config.disorder_ms} ms, "
        f"bad ratio {config.bad_ratio:g}, seed {config.seed}, start-ms {config.start_ms}, "
        f"interval-ms {config.effective_interval_ms:g}"
    )


def format_report(report: ProduceReport) -> str:
    """One line a person can read at the end of a run, interrupted or not."""
    total = str(report.requested) if report.requested else "unbounded"
    status = "interrupted" if report.interrupted else "done"
    line = (
        f"{status}: sent {report.sent}/{total} in {report.elapsed_s:.1f}s "
        f"({report.records_per_s:.0f}/s), acked {report.acked}, failed {report.failed}, "
        f"bad {report.bad}"
    )
    if report.first_error:
        line += f"; first error: {report.first_error}"
    return line


def _say(out: TextIO, line: str) -> None:
    print(line, file=out, flush=True)
