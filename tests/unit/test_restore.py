"""Changelog batches applied the way Faust's recovery loop applies each record.

A real Faust app, table, RocksDB store (rocksdict) and recovery service; no broker: the records
are what the consumer would have fetched.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import faust
import pytest
from faust.types import TP

from faustapp import faust_fixes
from faustapp.restore import apply_batch, changelog_handlers


def _record(offset: int, key: bytes, value: bytes | None, partition: int = 0) -> SimpleNamespace:
    return SimpleNamespace(offset=offset, partition=partition, key=key, value=value)


@pytest.fixture
def recovery_and_table(tmp_path):
    app = faust.App(f"restore-test-{tmp_path.name}", datadir=str(tmp_path), store="rocksdb://")
    table = app.Table("windows", partitions=2, key_type=bytes, value_type=bytes)
    recovery = app.tables.recovery
    tp = TP(table.changelog_topic.get_topic_name(), 0)
    recovery.tp_to_table[tp] = table
    return recovery, table, tp


def _stored(table, partition: int = 0) -> dict[bytes, bytes]:
    """The partition's keys, without the store's own persisted-offset key."""
    db = table.data._db_for_partition(partition)
    return {k: v for k, v in db.items() if not k.startswith(b"__faust")}


def _active(recovery, tp: TP, seen: int, highwater: int) -> None:
    recovery.active_tps.add(tp)
    recovery.active_offsets[tp] = seen
    recovery.active_highwaters[tp] = highwater
    recovery.in_recovery = True
    recovery.app.in_recovery = True


def test_a_batch_is_applied_past_what_was_applied_and_deletes_tombstones(recovery_and_table):
    recovery, table, tp = recovery_and_table
    _active(recovery, tp, seen=-1, highwater=10)
    records = [_record(0, b"a", b"1"), _record(1, b"b", b"2"), _record(2, b"a", None)]
    asyncio.run(apply_batch(recovery, tp, records, position_after_fetch=3))
    assert _stored(table) == {b"b": b"2"}
    assert recovery.active_offsets[tp] == 2
    assert table.data.persisted_offset(tp) == 2
    # A re-fetch of offsets already applied changes nothing; the new one is applied.
    asyncio.run(apply_batch(recovery, tp, [_record(1, b"b", b"old"), _record(3, b"c", b"3")], 4))
    assert _stored(table) == {b"b": b"2", b"c": b"3"}
    assert recovery.active_offsets[tp] == 3
    assert recovery.in_recovery, "offset 3 of highwater 10: still recovering"
    assert not recovery.signal_recovery_end.is_set()


def test_recovery_ends_when_the_last_record_is_applied(recovery_and_table):
    recovery, table, tp = recovery_and_table
    _active(recovery, tp, seen=-1, highwater=1)
    asyncio.run(apply_batch(recovery, tp, [_record(0, b"a", b"1"), _record(1, b"b", b"2")], 2))
    assert not recovery.in_recovery
    assert not recovery.app.in_recovery
    assert recovery.signal_recovery_end.is_set()
    assert _stored(table) == {b"a": b"1", b"b": b"2"}


def test_transaction_markers_after_the_last_record_end_recovery(recovery_and_table):
    recovery, table, tp = recovery_and_table
    # Records at 0 and 1, a commit marker at 2: the highwater is 2 (end offset 3 - 1).
    _active(recovery, tp, seen=-1, highwater=2)
    asyncio.run(apply_batch(recovery, tp, [_record(0, b"a", b"1"), _record(1, b"b", b"2")], 3))
    assert recovery.active_offsets[tp] == 2
    assert not recovery.in_recovery
    assert recovery.signal_recovery_end.is_set()


def test_a_fetch_that_stopped_before_the_end_does_not_end_recovery(recovery_and_table):
    recovery, table, tp = recovery_and_table
    _active(recovery, tp, seen=-1, highwater=2)
    # Position 2: offset 2 not fetched yet, it may be a record.
    asyncio.run(apply_batch(recovery, tp, [_record(0, b"a", b"1"), _record(1, b"b", b"2")], 2))
    assert recovery.active_offsets[tp] == 1
    assert recovery.in_recovery
    assert not recovery.signal_recovery_end.is_set()
    # Without a known position nothing is assumed either.
    asyncio.run(apply_batch(recovery, tp, [], None))
    assert recovery.active_offsets[tp] == 1


def test_records_of_a_partition_neither_active_nor_standby_are_not_applied(recovery_and_table):
    recovery, table, tp = recovery_and_table
    asyncio.run(apply_batch(recovery, tp, [_record(0, b"a", b"1")], 1))
    assert _stored(table) == {}
    assert tp not in recovery.active_offsets


def test_standby_records_are_applied_and_standbys_reported_ready(recovery_and_table):
    recovery, table, tp = recovery_and_table
    recovery.standby_tps.add(tp)
    recovery.standby_offsets[tp] = -1
    recovery.standby_highwaters[tp] = 1
    asyncio.run(apply_batch(recovery, tp, [_record(0, b"a", b"1")], 1))
    assert recovery.standby_offsets[tp] == 0
    assert not recovery.tables.standbys_ready
    asyncio.run(apply_batch(recovery, tp, [_record(1, b"b", b"2")], 2))
    assert recovery.tables.standbys_ready
    assert _stored(table) == {b"a": b"1", b"b": b"2"}


def test_every_table_changelog_gets_a_handler(recovery_and_table):
    recovery, table, tp = recovery_and_table
    handlers = changelog_handlers(recovery.app, dict)
    assert list(handlers) == [tp.topic]


def test_the_next_recovery_does_not_start_already_ended(recovery_and_table):
    """The end of one recovery must not end the next one before it read anything."""
    faust_fixes.apply()
    recovery, table, tp = recovery_and_table
    _active(recovery, tp, seen=-1, highwater=0)
    asyncio.run(apply_batch(recovery, tp, [_record(0, b"a", b"1")], 1))
    assert recovery.signal_recovery_end.is_set()
    recovery._set_recovery_started()  # the next rebalance's recovery
    assert recovery.in_recovery
    assert not recovery.signal_recovery_end.is_set()
