"""The upstream code faustapp corrects or relies on, as it was when the corrections were proven.

faust_fixes, fastpath and restore replace, wrap or mirror private code of Faust, aiokafka and mode;
tests/unit/test_upstream_shapes.py checks each pin below against the installed releases. A pin
names the upstream function, its fingerprint (its code without comments or docstrings), the
faustapp code that depends on it and what to re-check when it changed.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
from dataclasses import dataclass
from functools import cache
from importlib import metadata

PROVEN_ON = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0", "mode-streaming": "0.7.1"}

FT = "faust.transport"
CONSUMER = f"{FT}.consumer:Consumer"
THREAD = f"{FT}.drivers.aiokafka:AIOKafkaConsumerThread"
FAUST_PRODUCER = f"{FT}.drivers.aiokafka:Producer"
FAUST_TXN = f"{FT}.consumer:TransactionManager"
RECOVERY = "faust.tables.recovery:Recovery"
TRANSPORT = f"{FT}.drivers.aiokafka:Transport"
FIXES = "faust_fixes"


@dataclass(frozen=True)
class Pin:
    """One upstream function (all defs of that name: a property's getter and setter)."""

    target: str  # "module:Class.name" or "module:name"
    fingerprint: str
    fix: str  # the faustapp code that depends on it
    why: str  # what to re-check when it changed


PINS = (
    # faust_fixes
    Pin(
        f"{TRANSPORT}._get_controller_node",
        "7673fff5ad007aaf",
        "faust_admin_fixes._get_controller_node_of_a_live_broker (replaces it)",
        "it asked only the first broker of the metadata, which can be one just lost; if it now "
        "tries each broker, drop the fix",
    ),
    Pin(
        f"{TRANSPORT}._really_create_topic",
        "ed751b220bfdad0d",
        "faust_admin_fixes._really_create_topic_retrying (wraps it)",
        "the wrapper retries the errors of a broker going away; check what it raises for them",
    ),
    Pin(
        f"{THREAD}._highwaters",
        "0f10cb919acd1f24",
        f"{FIXES}._highwaters_from_broker (replaces it)",
        "under exactly_once it answered aiokafka's cached last stable offset, unknown before a "
        "fetch; if it now asks the broker, drop the fix",
    ),
    Pin(
        f"{THREAD}._fetch_records",
        "f4ca72ca81fc4b3b",
        f"{FIXES}._fetch_records_noting_positions (wraps it)",
        "the wrapper notes positions after the fetch and pauses the leader partition first",
    ),
    Pin(
        f"{CONSUMER}.getmany",
        "79d356ad8f171171",
        f"{FIXES}.rewind_unprocessed and fastpath._drain_in_batches",
        "it drops a fetched batch when the flow stopped or a partition was paused, then seeks "
        "to committed offsets; fastpath mirrors its checks",
    ),
    Pin(
        f"{CONSUMER}.perform_seek",
        "92f3b434205ac861",
        f"{FIXES}.rewind_unprocessed",
        "the seek back to committed offsets that loses records of an uncommitted partition",
    ),
    Pin(
        "aiokafka.consumer.consumer:AIOKafkaConsumer.seek_to_committed",
        "5e4ffcf406671b7d",
        f"{FIXES}.rewind_unprocessed",
        "it leaves a partition whose committed offset is 0 or "
        "unknown where it is, past the dropped batch",
    ),
    Pin(
        f"{THREAD}._create_worker_consumer",
        "c4d6236c34b4b574",
        f"{FIXES}._create_worker_consumer_with_fetch_wait",
        "it hard-codes fetch_max_wait_ms=1500; the wrapper overrides it afterwards",
    ),
    Pin(
        "faust.worker:Worker.on_setup_root_logger",
        "74dafe6eba8dec93",
        f"{FIXES}._setup_root_logger_without_spinner (replaces it)",
        "the spinner set up here puts the root logger at DEBUG",
    ),
    Pin(
        "faust.worker:Worker._setup_spinner_handler",
        "b78ea5986910767c",
        f"{FIXES}._setup_root_logger_without_spinner",
        "why the spinner costs: root at DEBUG",
    ),
    Pin(
        "aiokafka.producer.producer:AIOKafkaProducer.send",
        "52e23cc21d4ea8af",
        f"{FIXES}._send_dooming_transaction_on_failure (wraps it)",
        "the wrapper reads the returned future and the producer's _txn_manager",
    ),
    Pin(
        "aiokafka.producer.sender:SendProduceReqHandler.handle_response",
        "10af89b211e34e3c",
        f"{FIXES}._doom_on_failure",
        "a failed record fails its future only and leaves the "
        "transaction committable; if it now aborts the transaction, drop the fix",
    ),
    Pin(
        "aiokafka.producer.message_accumulator:MessageBatch.failure",
        "dbd975d9edf2289b",
        f"{FIXES}._doom_on_failure",
        "a batch expiring or failing sets its futures only",
    ),
    Pin(
        "aiokafka.producer.transaction_manager:TransactionManager.error_transaction",
        "c9d12326fcd8f7bc",
        f"{FIXES}._doom_on_failure",
        "called to move the transaction to ABORTABLE_ERROR",
    ),
    Pin(
        "aiokafka.client:AIOKafkaClient.add_topic",
        "fc40bfac2914267f",
        f"{FIXES}._track_topic",
        "the first send to a new topic narrows the metadata requests to the listed topics",
    ),
    Pin(
        "aiokafka.client:AIOKafkaClient._md_synchronizer",
        "ff5b40df383c924e",
        f"{FIXES}._track_topic",
        "it requests the listed topics only, replacing the metadata of every other one",
    ),
    Pin(
        f"{FAUST_PRODUCER}.commit_transactions",
        "fde5eec1aba9528b",
        f"{FIXES}._commit_transactions_unless_doomed (wraps it)",
        "the wrapper refuses the commit when a transaction's producer lost a record",
    ),
    Pin(
        f"{FAUST_PRODUCER}._new_producer",
        "cc731a75e3163f99",
        f"{FIXES}._new_producer_with_delivery_timeout",
        "the wrapper raises the accumulator's batch TTL of the producer built here",
    ),
    Pin(
        "aiokafka.producer.producer:AIOKafkaProducer.__init__",
        "716c5f3dd9fa7842",
        f"{FIXES}._new_producer_with_delivery_timeout",
        "the request timeout is also the "
        "delivery timeout (batch TTL); if a delivery timeout appears, use it instead",
    ),
    Pin(
        "aiokafka.producer.message_accumulator:MessageAccumulator.__init__",
        "561cbc80f18f1fca",
        f"{FIXES}._new_producer_with_delivery_timeout",
        "the batch TTL is kept in _batch_ttl",
    ),
    Pin(
        f"{RECOVERY}._seek_offsets",
        "f5fad73f55e5a6b7",
        f"{FIXES}._seek_offsets_from_zero (replaces it)",
        "an offset below -1 was sought as is and crashed recovery",
    ),
    Pin(
        f"{RECOVERY}._set_recovery_started",
        "0b28d90816a1ad5a",
        f"{FIXES}._set_recovery_started_without_stale_end (wraps it)",
        "the wrapper clears signal_recovery_end first",
    ),
    Pin(
        f"{RECOVERY}._restart_recovery",
        "b4cf2b4aeebe369f",
        f"{FIXES} recovery fixes and restore",
        "it seeks from 'earliest - 1' and waits on signal_recovery_end",
    ),
    Pin(
        f"{FAUST_TXN}.on_rebalance",
        "2a9ff59e318bf60c",
        f"{FIXES}._on_rebalance_with_fresh_producers (replaces it)",
        "it reused a fenced producer for a partition revoked as a standby",
    ),
    Pin(
        f"{FAUST_TXN}._tps_to_active_tpgs",
        "8d92441d69e4ac63",
        f"{FIXES}._on_rebalance_with_fresh_producers",
        "standby partitions are left out of the transactional ids",
    ),
    Pin(
        f"{FAUST_TXN}._tps_to_transactional_ids",
        "4851f8aa51a170aa",
        f"{FIXES}._on_rebalance_with_fresh_producers",
        "called to map partitions to transactional ids",
    ),
    # fastpath and restore
    Pin(
        f"{CONSUMER}._drain_messages",
        "feb1418dd34c4e10",
        "fastpath._drain_in_batches (replaces it)",
        "the batch drain is Faust's drain loop, batch-wise: port any change",
    ),
    Pin(
        f"{CONSUMER}._wait_next_records",
        "14e37c7c3ec64b65",
        "fastpath._drain_in_batches",
        "called for (records, active partitions)",
    ),
    Pin(
        f"{CONSUMER}.ack",
        "b09b115e1fdd5fbe",
        "fastpath.ack_offsets",
        "acks by offset exactly as this does",
    ),
    Pin(
        f"{CONSUMER}._add_gap",
        "dd551a2623edb828",
        "fastpath._drain_in_batches",
        "called for offset gaps",
    ),
    Pin(
        "faust.sensors.monitor:Monitor.on_message_in",
        "b3fdb1e846cadb06",
        "fastpath._record_batch_in",
        "counts per batch what this counts per message",
    ),
    Pin(
        "faust.sensors.prometheus:PrometheusMonitor.on_message_in",
        "5068a10df8c62aac",
        "fastpath._record_batch_in",
        "counts per batch what this counts per message",
    ),
    Pin(
        "mode.utils.futures:notify",
        "9daa779193147e6f",
        "fastpath.ack_offsets",
        "wakes Faust's wait for acks",
    ),
    Pin(
        f"{RECOVERY}._slurp_changelogs",
        "d6726832bd229f85",
        "restore.apply_batch and _signal_progress",
        "they do for a fetched batch what this loop does for each record: port any change",
    ),
    # the other private reads
    Pin(
        "faust.assignor.partition_assignor:PartitionAssignor.changelog_distribution",
        "8a48ae27b6241dcd",
        "web.owner_of",
        "it reads _tps_url, built here from the changelog distribution",
    ),
    Pin(
        "faust.stores.rocksdb:Store._db_for_partition",
        "29cedc485c52e535",
        "tables.store.TableStore._db",
        "it writes and scans the partition's rocksdict database directly",
    ),
)

# Attributes faust_fixes sets on objects upstream already built: upstream must read them later.
READ_BY_UPSTREAM = [
    ("aiokafka.consumer.consumer:AIOKafkaConsumer.start", "_fetch_max_wait_ms"),
    ("aiokafka.producer.message_accumulator:MessageAccumulator._append_batch", "_batch_ttl"),
    ("aiokafka.client:AIOKafkaClient._md_synchronizer", "_topics"),
]


@cache
def _module_tree(module_name: str) -> ast.Module:
    return ast.parse(inspect.getsource(importlib.import_module(module_name)))


def defs(target: str) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Every def of the target's name in its class, read from the installed source: the class
    attribute itself may be faustapp's replacement already."""
    module_name, _, path = target.partition(":")
    *classes, name = path.split(".")
    body = _module_tree(module_name).body
    for class_name in classes:
        found = [n for n in body if isinstance(n, ast.ClassDef) and n.name == class_name]
        if not found:
            return []
        body = found[0].body
    return [
        n for n in body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == name
    ]


def _canonical(node: object) -> str:
    """The code without comments, docstrings, positions or empty fields: stable across the
    Python versions faustapp runs on, so only a change of the code itself changes it."""
    if isinstance(node, list):
        return "[" + ", ".join(_canonical(item) for item in node) + "]"
    if not isinstance(node, ast.AST):
        return repr(node)
    fields = []
    for name in node._fields:
        value = getattr(node, name, None)
        if name == "body" and isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
        ):
            first = value[0] if value else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                value = value[1:] if isinstance(first.value.value, str) else value
        if value is None or (isinstance(value, list) and not value):
            continue
        fields.append(f"{name}={_canonical(value)}")
    return f"{type(node).__name__}({', '.join(fields)})"


def fingerprint(target: str) -> str:
    """A short hash of the target's code, or "missing" when it is gone."""
    found = defs(target)
    if not found:
        return "missing"
    return hashlib.sha256("\n".join(map(_canonical, found)).encode()).hexdigest()[:16]


def installed() -> str:
    """The installed releases of the pinned packages, for failure messages."""
    return ", ".join(f"{name} {metadata.version(name)}" for name in PROVEN_ON)
