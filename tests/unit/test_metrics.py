"""The lag-gauge refresher, with Faust's own monitor and stand-ins for the consumer's state."""

from __future__ import annotations

from types import SimpleNamespace

from aiokafka.errors import IllegalStateError
from faust.exceptions import ConsumerNotStarted
from faust.sensors.monitor import Monitor
from faust.types import TP

from faustapp.metrics import refresh_partition_offsets

ASSIGNED = TP("readings", 0)
NOT_FETCHED = TP("readings", 1)
REVOKED = TP("readings", 2)
NEVER_COMMITTED = TP("readings", 3)


class FakeConsumer:
    """The three things the refresher reads from Faust's consumer."""

    def __init__(self, *, started: bool = True) -> None:
        self.started = started
        self._committed_offset = {ASSIGNED: 40, NOT_FETCHED: 7, REVOKED: 3}

    def assignment(self) -> set[TP]:
        if not self.started:
            raise ConsumerNotStarted("Consumer thread not yet started")
        return {ASSIGNED, NOT_FETCHED, REVOKED, NEVER_COMMITTED}

    def highwater(self, tp: TP) -> int | None:
        if tp == REVOKED:
            raise IllegalStateError(f"No current assignment for partition {tp}")
        return {ASSIGNED: 42, NEVER_COMMITTED: 9}.get(tp)


def test_sets_end_and_committed_offsets_of_partitions_that_have_both() -> None:
    monitor = Monitor()
    app = SimpleNamespace(consumer=FakeConsumer(), monitor=monitor)
    assert refresh_partition_offsets(app) == 1
    assert monitor.tp_end_offsets == {ASSIGNED: 42}
    assert monitor.tp_committed_offsets == {ASSIGNED: 40}


def test_does_nothing_before_the_consumer_starts() -> None:
    monitor = Monitor()
    app = SimpleNamespace(consumer=FakeConsumer(started=False), monitor=monitor)
    assert refresh_partition_offsets(app) == 0
    assert monitor.tp_end_offsets == {}
    assert monitor.tp_committed_offsets == {}
