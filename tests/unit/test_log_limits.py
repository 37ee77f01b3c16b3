"""The limiter of repeated Kafka client errors: first occurrence at once, then one per interval
with the count of those left out; other messages and lower levels untouched."""

from __future__ import annotations

import logging

from faustapp.log_limits import KAFKA_CLIENT_LOGGERS, RepeatLimiter, limit_repeats


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _record(message: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("aiokafka", level, __file__, 1, message, args, None)


def test_repeats_are_counted_and_told_once_per_interval():
    clock = _Clock()
    limiter = RepeatLimiter(10.0, clock)
    passed = []
    for step in range(250):  # 25 s of a message every 100 ms
        clock.now = step / 10
        record = _record("Unable connect to node with id %s: refused", 1)
        if limiter.filter(record):
            passed.append((clock.now, record.getMessage()))
    assert [t for t, _ in passed] == [0.0, 10.0, 20.0]
    assert passed[0][1] == "Unable connect to node with id 1: refused"
    told = "Unable connect to node with id 1: refused (repeated 99 more times in 10 s)"
    assert passed[1][1] == told
    assert passed[2][1].endswith("(repeated 99 more times in 10 s)")


def test_distinct_messages_and_info_lines_are_never_held_back():
    clock = _Clock()
    limiter = RepeatLimiter(10.0, clock)
    assert limiter.filter(_record("node %s down", 1))
    assert limiter.filter(_record("node %s down", 2))  # another message
    assert limiter.filter(_record("node %s down", 1, level=logging.WARNING))  # another level
    assert all(limiter.filter(_record("joined", level=logging.INFO)) for _ in range(50))
    assert not limiter.filter(_record("node %s down", 1))


def test_installed_on_every_client_logger_once(caplog):
    first = limit_repeats()
    limiter = limit_repeats()  # a second install replaces the first
    try:
        for name in KAFKA_CLIENT_LOGGERS:
            filters = logging.getLogger(name).filters
            assert limiter in filters and first not in filters
        logger = logging.getLogger("aiokafka.consumer.fetcher")
        with caplog.at_level(logging.ERROR, logger="aiokafka"):
            for _ in range(30):
                logger.error("Failed fetch messages from %s", 1)
        assert [r.getMessage() for r in caplog.records] == ["Failed fetch messages from 1"]
    finally:
        for name in KAFKA_CLIENT_LOGGERS:
            logging.getLogger(name).removeFilter(limiter)
