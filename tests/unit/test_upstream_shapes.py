"""The upstream code faustapp corrects or relies on is the code it was proven on.

faust_fixes, faust_admin_fixes, fastpath and restore replace, wrap or mirror private code of Faust,
aiokafka and mode. A new release can change that code while every behaviour test still passes, and
silently void a guarantee. Each check fails when such code changes (comments and docstrings aside)
and says which correction to re-check and why. Upgrading is deliberate: raise the pin in
pyproject.toml, run ``uv lock``, re-check each failing pin's correction against the new code, then
record the new fingerprints (each failure prints its own) and PROVEN_ON in
tests/support/upstream_pins.py.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from faustapp import fastpath, faust_admin_fixes, faust_fixes
from faustapp.producing import PartitionProducer

from support.upstream_pins import (
    CONSUMER,
    FAUST_PRODUCER,
    FAUST_TXN,
    PINS,
    PROVEN_ON,
    READ_BY_UPSTREAM,
    RECOVERY,
    THREAD,
    TRANSPORT,
    Pin,
    defs,
    fingerprint,
    installed,
)

ROOT = Path(__file__).resolve().parents[2]
# Replacements must take what Faust passes to what they replace.
REPLACED = {
    f"{THREAD}._highwaters": faust_fixes._highwaters_from_broker,
    f"{THREAD}._fetch_records": faust_fixes._fetch_records_noting_positions,
    "faust.worker:Worker.on_setup_root_logger": faust_fixes._setup_root_logger_without_spinner,
    f"{FAUST_PRODUCER}.commit_transactions": faust_fixes._commit_transactions_unless_doomed,
    f"{RECOVERY}._seek_offsets": faust_fixes._seek_offsets_from_zero,
    f"{RECOVERY}._set_recovery_started": faust_fixes._set_recovery_started_without_stale_end,
    f"{FAUST_TXN}.on_rebalance": faust_fixes._on_rebalance_with_fresh_producers,
    f"{CONSUMER}._drain_messages": fastpath._drain_in_batches,
    f"{TRANSPORT}._get_controller_node": faust_admin_fixes._get_controller_node_of_a_live_broker,
}


@pytest.mark.parametrize("pin", PINS, ids=lambda pin: pin.target)
def test_upstream_code_is_what_the_fixes_were_proven_on(pin: Pin) -> None:
    """A release that changes code faustapp corrects or mirrors must be re-checked, not trusted."""
    actual = fingerprint(pin.target)
    proven = ", ".join(f"{name} {version}" for name, version in PROVEN_ON.items())
    assert actual == pin.fingerprint, (
        f"{pin.target} is not the code {pin.fix} was proven on ({proven}; installed: "
        f"{installed()}): {pin.why}. Re-check that correction against the installed code, "
        f"then set this pin's fingerprint to {actual!r}."
    )


def _parameters_of_def(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[tuple[str, str, bool]]:
    """(name, kind, has a default) of each parameter, as inspect.signature gives them."""
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    first_default = len(positional) - len(args.defaults)
    params = [
        (
            arg.arg,
            "POSITIONAL_ONLY" if arg in args.posonlyargs else "POSITIONAL_OR_KEYWORD",
            i >= first_default,
        )
        for i, arg in enumerate(positional)
    ]
    if args.vararg:
        params.append((args.vararg.arg, "VAR_POSITIONAL", False))
    params += [
        (arg.arg, "KEYWORD_ONLY", default is not None)
        for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True)
    ]
    if args.kwarg:
        params.append((args.kwarg.arg, "VAR_KEYWORD", False))
    return params


@pytest.mark.parametrize("target", REPLACED, ids=str)
def test_replacements_take_the_arguments_of_what_they_replace(target: str) -> None:
    """Faust calls a replacement the way it calls its own function."""
    replacement = REPLACED[target]
    found = defs(target)
    assert len(found) == 1, f"{target} is gone or defined {len(found)} times ({installed()})"
    ours = [
        (p.name, p.kind.name, p.default is not inspect.Parameter.empty)
        for p in inspect.signature(replacement).parameters.values()
    ]
    assert ours == _parameters_of_def(found[0]), (
        f"{replacement.__module__}.{replacement.__name__} no longer takes the parameters of "
        f"{target} ({installed()}): Faust's callers would break; align it with upstream."
    )


@pytest.mark.parametrize(("target", "attribute"), READ_BY_UPSTREAM, ids=str)
def test_attributes_faustapp_sets_are_still_read_upstream(target: str, attribute: str) -> None:
    """faust_fixes changes these attributes after construction; that only works while they are
    read later, where they take effect."""
    reads = [
        node
        for definition in defs(target)
        for node in ast.walk(definition)
        if isinstance(node, ast.Attribute)
        and node.attr == attribute
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    ]
    assert reads, (
        f"{target} no longer reads self.{attribute} ({installed()}): the faust_fixes "
        "correction that sets it (fetch wait, delivery timeout or topic tracking) has no effect."
    )


def test_private_attributes_faustapp_reads_exist_on_real_objects(tmp_path: Path) -> None:
    """Real Faust, aiokafka and rocksdict objects (built, never started): each name faustapp
    reads of them, grouped by the faustapp code that reads it."""
    import faust
    from aiokafka.producer.transaction_manager import TransactionState
    from faust.sensors.prometheus import FaustMetrics
    from faust.types import tuples

    app = faust.App(
        f"shapes-{tmp_path.name}",
        broker="kafka://127.0.0.1:9",
        store="rocksdb://",
        datadir=str(tmp_path),
        processing_guarantee="exactly_once",
        autodiscover=False,
    )
    table = app.Table("shapes", partitions=1, key_type=bytes, value_type=bytes)

    async def missing_names() -> list[str]:
        consumer = app.consumer
        client_consumer = consumer._thread._create_worker_consumer(app.transport)
        producer = app.producer._new_producer(transactional_id="shapes-0-0")
        expected = {
            "fastpath, metrics, pipeline: Faust's consumer": (
                consumer,
                "_thread _read_offset _committed_offset _acked_index _acked _n_acked "
                "_waiting_for_ack _buffered_partitions _wait_next_records _to_message _add_gap "
                "consumer_stopped_errors callback suspend_flow flow_active perform_seek "
                "wait_first highwater commit transactions",
            ),
            "faust_fixes: Faust's consumer thread": (
                consumer._thread,
                "call_thread _ensure_consumer app",
            ),
            "faust_fixes: aiokafka's consumer": (
                client_consumer,
                "_fetch_max_wait_ms _subscription _client _max_poll_records seek pause",
            ),
            "faust_fixes: aiokafka's subscription": (client_consumer._subscription, "subscription"),
            "faust_fixes, reference, tail: aiokafka's client": (
                client_consumer._client,
                "_topics cluster force_metadata_update fetch_all_metadata",
            ),
            "faust_fixes: aiokafka's producer": (
                producer,
                "_txn_manager _message_accumulator client",
            ),
            "faust_fixes: aiokafka's accumulator": (producer._message_accumulator, "_batch_ttl"),
            "faust_fixes: aiokafka's transaction manager": (
                producer._txn_manager,
                "state transactional_id error_transaction wait_for_transaction_end",
            ),
            "faust_fixes: aiokafka's transaction states": (
                TransactionState,
                "IN_TRANSACTION ABORTABLE_ERROR FATAL_ERROR",
            ),
            "faust_fixes, producing: Faust's producer": (
                app.producer,
                "_transaction_producers _new_producer send",
            ),
            "fastpath, faust_fixes: the app": (
                app,
                "_leader_assignor consumer_generation_id flow_control in_transaction topics",
            ),
            "fastpath, faust_fixes: the settings": (
                app.conf,
                "topic_disable_leader broker_commit_every id",
            ),
            "faust_fixes: the leader assignor": (app._leader_assignor, "_leader_tp"),
            "web, producing, faust_fixes: the assignor": (
                app.assignor,
                "_tps_url group_for_topic is_standby",
            ),
            "fastpath: the monitor": (
                app.monitor,
                "messages_received_total messages_received_by_topic tp_read_offsets "
                "track_tp_end_offset on_tp_commit",
            ),
            "fastpath: the Prometheus metrics": (
                FaustMetrics,
                "messages_received messages_received_per_topics "
                "messages_received_per_topics_partition",
            ),
            "fastpath: Faust's ack lock": (tuples, "ack_lock"),
            "restore, tables.store: the tables": (
                app.tables,
                "recovery standbys_ready on_standbys_ready persist_offset_on_commit",
            ),
            "restore, faust_fixes: recovery": (
                app.tables.recovery,
                "active_tps standby_tps active_offsets standby_offsets active_highwaters "
                "standby_highwaters tp_to_table buffers _last_flush_at in_recovery "
                "need_recovery flush_buffers _set_recovery_ended _actives_span _standbys_span "
                "standby_remaining_total signal_recovery_end tables",
            ),
            "restore, tables.store: a table": (
                table,
                "_on_changelog_event on_changelog_event apply_changelog_batch changelog_topic data",
            ),
            "tables.store: its store": (table.data, "_db_for_partition set_persisted_offset"),
        }
        try:
            return [
                f"{where}: {name}"
                for where, (obj, names) in expected.items()
                for name in names.split()
                if not hasattr(obj, name)
            ]
        finally:
            await client_consumer.stop()

    missing = asyncio.run(missing_names())
    assert not missing, (
        f"names faustapp reads are gone ({installed()}); re-check the code named first: "
        + "; ".join(missing)
    )


def test_table_partitions_are_rocksdict_databases_taking_the_stores_calls(tmp_path: Path) -> None:
    """tables.store writes raw WriteBatches to the partition's database and scans from a key."""
    import faust
    from rocksdict import Rdict, WriteBatch

    app = faust.App(f"shapes-{tmp_path.name}", store="rocksdb://", datadir=str(tmp_path))
    table = app.Table("shapes", partitions=1, key_type=bytes, value_type=bytes)
    db = table.data._db_for_partition(0)
    try:
        assert isinstance(db, Rdict), f"Faust's store is {type(db)}: tables.store needs rocksdict"
        batch = WriteBatch(raw_mode=True)
        for key, value in ((b"b", b"2"), (b"a", b"1"), (b"c", b"3")):
            batch.put(key, value)
        batch.delete(b"c")
        db.write(batch)
        assert list(db.items(from_key=b"b")) == [(b"b", b"2")]
        assert list(db.items()) == [(b"a", b"1"), (b"b", b"2")]
    finally:
        db.close()


def test_partition_producers_send_under_fausts_transactional_ids() -> None:
    """Outputs join the transaction Faust opened for the source partition only if the ids match."""
    from faust.transport.consumer import TopicPartitionGroup, TransactionManager

    app = SimpleNamespace(
        in_transaction=True,
        conf=SimpleNamespace(id="shapes"),
        assignor=SimpleNamespace(group_for_topic=lambda topic: 3),
    )
    ours = PartitionProducer(app, "readings")._transactional_id(5)  # type: ignore[arg-type]
    fausts = TransactionManager.transactional_id_format.format(
        tpg=TopicPartitionGroup("readings", 5, 3), group_id="shapes"
    )
    assert ours == fausts, f"producing.PartitionProducer builds {ours!r}, Faust {fausts!r}"


def test_faust_methods_called_positionally_keep_their_parameters() -> None:
    """producing and pipeline pass these arguments by position."""
    from faust.transport.consumer import TransactionManager
    from faust.transport.drivers.aiokafka import Producer

    send = inspect.signature(Producer.send).parameters
    assert list(send)[:7] == ["self", "topic", "key", "value", "partition", "timestamp", "headers"]
    assert send["transactional_id"].kind is inspect.Parameter.KEYWORD_ONLY
    commit = inspect.signature(TransactionManager.commit).parameters
    assert list(commit)[:2] == ["self", "offsets"]
    assert commit["start_new_transaction"].default is True


def _toml(name: str) -> dict:
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / name).read_text())


def _declared() -> list[tuple[str | None, Requirement]]:
    """(extra or None, requirement) for every dependency pyproject.toml declares."""
    project = _toml("pyproject.toml")["project"]
    declared = [(None, Requirement(line)) for line in project["dependencies"]]
    for extra, lines in project.get("optional-dependencies", {}).items():
        declared += [(extra, Requirement(line)) for line in lines]
    return declared


def test_installed_versions_are_within_the_pyproject_bounds() -> None:
    """The environment under test is one the bounds allow (make install syncs it to uv.lock)."""
    problems = []
    for extra, requirement in _declared():
        if requirement.marker and not requirement.marker.evaluate({"extra": extra or ""}):
            continue
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            if extra not in (None, "dev"):  # the bench extra is optional
                continue
            problems.append(f"{requirement.name} is not installed")
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            problems.append(f"{requirement.name} {installed} is outside {requirement.specifier}")
    assert not problems, "run make install (uv sync of uv.lock): " + "; ".join(problems)


def test_the_patched_releases_are_pinned_to_the_proven_ones() -> None:
    """Raising a pin without re-proving the corrections (PROVEN_ON) fails here first."""
    pins = {canonicalize_name(r.name): str(r.specifier) for _, r in _declared()}
    for name, version in PROVEN_ON.items():
        assert pins.get(name) == f"=={version}", (
            f"pyproject.toml pins {name} {pins.get(name)!r}, but the faust_fixes corrections were "
            f"proven on {version}: re-check the pins of tests/support/upstream_pins.py, "
            "then update PROVEN_ON there"
        )
        assert metadata.version(name) == version, f"{name} {metadata.version(name)} installed"


def _extra_of(marker: str | None) -> str | None:
    found = re.search(r"extra == '([^']+)'", marker or "")
    return found.group(1) if found else None


def test_the_lock_is_current_and_holds_the_proven_releases() -> None:
    """uv.lock was made from this pyproject.toml: a bound changed without ``uv lock`` fails."""
    lock = _toml("uv.lock")
    (project,) = [p for p in lock["package"] if p["name"] == "faustapp"]
    locked = {
        (
            canonicalize_name(d["name"]),
            _extra_of(d.get("marker")),
            str(SpecifierSet(d.get("specifier", ""))),
        )
        for d in project["metadata"]["requires-dist"]
    }
    declared = {(canonicalize_name(r.name), extra, str(r.specifier)) for extra, r in _declared()}
    assert locked == declared, (
        f"uv.lock is stale (run uv lock): declared only {sorted(declared - locked)}, "
        f"locked only {sorted(locked - declared)}"
    )
    requires_python = _toml("pyproject.toml")["project"]["requires-python"]
    assert SpecifierSet(lock["requires-python"]) == SpecifierSet(requires_python), "run uv lock"
    for name, version in PROVEN_ON.items():
        versions = [p["version"] for p in lock["package"] if p["name"] == name]
        assert versions == [version], f"uv.lock holds {name} {versions}, proven on {version}"
