"""Acknowledging a flushed run of offsets the way Faust's per-message ack would."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

from aiokafka.structs import TopicPartition
from faust.types import TP

from faustapp.fastpath import ack_offsets


def _consumer(committed: int | None = None, acks_enabled: bool = True) -> SimpleNamespace:
    tp = TopicPartition("readings", 0)
    return SimpleNamespace(
        app=SimpleNamespace(topics=SimpleNamespace(acks_enabled_for=lambda topic: acks_enabled)),
        _committed_offset=defaultdict(lambda: None, {tp: committed}),
        _acked_index=defaultdict(set),
        _acked=defaultdict(list),
        _n_acked=0,
        _waiting_for_ack=None,
    )


def test_offsets_are_acked_once_and_never_below_the_committed_offset():
    consumer = _consumer(committed=10)
    ack_offsets(consumer, TP("readings", 0), [8, 9, 10, 11, 13])
    ack_offsets(consumer, TP("readings", 0), [11, 14])  # 11 again: already acked
    tp = TopicPartition("readings", 0)
    assert consumer._acked[tp] == [10, 11, 13, 14]
    assert consumer._acked_index[tp] == {10, 11, 13, 14}
    assert consumer._n_acked == 4


def test_acked_offsets_are_keyed_by_the_clients_partition_type():
    # An exactly-once commit hands these keys to aiokafka, which refuses Faust's TP.
    consumer = _consumer()
    ack_offsets(consumer, TP("readings", 0), [0, 1])
    assert [type(key) for key in consumer._acked] == [TopicPartition]


def test_nothing_is_acked_for_a_topic_without_acks():
    consumer = _consumer(acks_enabled=False)
    ack_offsets(consumer, TP("readings", 0), [0, 1])
    assert consumer._n_acked == 0 and not consumer._acked
