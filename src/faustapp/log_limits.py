"""Kafka client errors that repeat while a broker is away, logged once per interval with a count.

aiokafka logs every failed connection, metadata refresh, fetch and coordinator lookup at ERROR,
about ten times a second per client: a worker logs some 80 lines a second while its broker is
down, a generator more, enough to fill a disk during a long outage and to bury the line that
says why. The first occurrence of each message is logged as it comes; repeats within
``interval_s`` are counted and the next one after it says how many were left out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

#: The Kafka client's loggers (each module logs under its own name; the client under "aiokafka").
KAFKA_CLIENT_LOGGERS = (
    "aiokafka",
    "aiokafka.cluster",
    "aiokafka.conn",
    "aiokafka.admin.client",
    "aiokafka.consumer.consumer",
    "aiokafka.consumer.fetcher",
    "aiokafka.consumer.group_coordinator",
    "aiokafka.producer.producer",
    "aiokafka.producer.sender",
)
REPEAT_INTERVAL_S = 10.0
_MAX_TRACKED = 1000  # distinct messages remembered; a flood of distinct ones is not a repeat


class RepeatLimiter(logging.Filter):
    """Let a warning or error through once per ``interval_s`` per distinct message."""

    def __init__(
        self, interval_s: float = REPEAT_INTERVAL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._clock = clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a repeat inside the interval; the first one after it carries the count."""
        if record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        key = (record.name, record.levelno, message)
        now = self._clock()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self.interval_s:
            self._seen[key] = (last[0], last[1] + 1)
            return False
        if len(self._seen) >= _MAX_TRACKED:
            self._seen.clear()
        self._seen[key] = (now, 0)
        if last is not None and last[1]:
            record.msg = f"{message} (repeated {last[1]} more times in {now - last[0]:.0f} s)"
            record.args = ()
        return True


def limit_repeats(
    names: Iterable[str] = KAFKA_CLIENT_LOGGERS, interval_s: float = REPEAT_INTERVAL_S
) -> RepeatLimiter:
    """Install one limiter on each named logger (idempotent: an earlier one is replaced)."""
    limiter = RepeatLimiter(interval_s)
    for name in names:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, RepeatLimiter)]:
            logger.removeFilter(old)
        logger.addFilter(limiter)
    return limiter
