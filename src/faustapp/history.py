"""The last final results of every key, kept in a changelog-backed table of their own, so a key's
recent results are answered from state that survives restarts and rebalances, without reading
the output topics back.

A pipeline's history table is written in the same flush (and, under ``exactly_once``, the same
transaction) as the results themselves, never seen by the window engine. Every result is an
entry of its own, so a flush sends one small changelog record per result (and a tombstone for
the entry it pushes out). A crash can replay results that already reached the history; a
replayed result replaces the entry of its window (time windows and sessions) or is the same
entry (sliding windows, where two events of one key may share a window's bounds, entries are
told apart by the record's digest), so nothing appears twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any

import orjson
from aiokafka.structs import RecordMetadata

from faustapp.api import DerivedOutput
from faustapp.producing import PartitionProducer
from faustapp.tables.store import TableStore
from faustapp.tables.windows import FOREVER_MS, SlidingWindows

HISTORY_LIMIT = 10
"""Final results kept per key and output, newest first."""
SEPARATOR = b"\x00"
_BIAS = 1 << 63
_TOP = (1 << 64) - 1
_NEWEST = (_TOP, _TOP)

Record = dict[str, Any]


def history_key(output: str, key: str) -> bytes:
    """Prefix of one output's entries for one key (keys hold no NUL, so no key's prefix is
    another's)."""
    return output.encode() + SEPARATOR + key.encode() + SEPARATOR


def output_prefix(output: str) -> bytes:
    """Prefix shared by every entry of ``output`` in the table."""
    return output.encode() + SEPARATOR


def _bounds(record: Record) -> tuple[int, int] | None:
    """(window_end, window_start) of a result, the order of "newest"; None when it has none."""
    start, end = record.get("window_start"), record.get("window_end")
    if type(start) is int and type(end) is int:
        return end, start
    return None


def _biased(ms: int) -> int:
    """A signed 64-bit time as an unsigned one of the same order (clamped, never an error)."""
    return min(max(ms + _BIAS, 0), _TOP)


def entry_suffix(record: Record, *, by_window: bool) -> bytes:
    """Where a result sits among its key's entries: byte order is newest first (latest window
    end, then start). ``by_window``: one entry per window, so a replay replaces it; otherwise
    the record's digest tells two results of the same bounds apart and a replay is the same
    entry."""
    bounds = _bounds(record)
    end, start = _NEWEST if bounds is None else (_biased(bounds[0]), _biased(bounds[1]))
    suffix = (_TOP - end).to_bytes(8, "big") + (_TOP - start).to_bytes(8, "big")
    if by_window:
        return suffix
    return suffix + hashlib.blake2b(orjson.dumps(record), digest_size=8).digest()


class HistoryStore(TableStore):
    """The table store of a history (the window engine never reads this table)."""


class ResultHistory:
    """The bounded history of one windowed pipeline's outputs: its own results and those of
    the outputs derived from them, each under its own name.

    Each result is an entry of its own (a small changelog record), keyed so that a prefix
    scan lists a key's results newest first; beyond ``limit`` the oldest are deleted."""

    def __init__(
        self,
        store: HistoryStore,
        own: str,
        derived: dict[str, str] | None = None,
        *,
        by_window: bool = True,
        limit: int = HISTORY_LIMIT,
    ) -> None:
        self.store = store
        self.own = own
        self.derived = dict(derived or {})
        """Output topic of each derived output -> its name."""
        self.by_window = by_window
        self.limit = limit
        self._suffix = 16 if by_window else 24

    @property
    def outputs(self) -> list[str]:
        """Names whose history this table keeps."""
        return [self.own, *self.derived.values()]

    def collect(
        self,
        entries: dict[bytes, list[Record]],
        key: str,
        published: Record,
        routes: Sequence[tuple[str, Record]],
    ) -> None:
        """Note one final result (as published, and as each derived output sent it) for the
        next :meth:`write` of the flush."""
        entries.setdefault(history_key(self.own, key), []).append(published)
        derived = self.derived
        if derived:
            for topic, record in routes:
                name = derived.get(topic)
                if name is not None:
                    entries.setdefault(history_key(name, key), []).append(record)

    async def write(
        self, partition: int, entries: dict[bytes, list[Record]]
    ) -> list[Awaitable[RecordMetadata]]:
        """Add the collected results to their keys' entries, drop the oldest beyond the limit
        and queue the writes."""
        if not entries:
            return []
        by_window, limit, store = self.by_window, self.limit, self.store
        puts: list[tuple[bytes, bytes | None]] = []
        for prefix, records in entries.items():
            fresh: dict[bytes, Record] = {}
            for record in records:  # a later result of the same entry wins
                fresh[prefix + entry_suffix(record, by_window=by_window)] = record
            held = [raw for raw, _ in store.scan(partition, prefix)]
            kept = set(sorted({*held, *fresh})[:limit])
            puts.extend((raw, orjson.dumps(fresh[raw])) for raw in sorted(fresh) if raw in kept)
            puts.extend((raw, None) for raw in held if raw not in kept)
        return await store.write(partition, puts)

    def mark_persisted(self, partition: int, delivered: Sequence[RecordMetadata]) -> None:
        """How far the history's changelog holds this partition (for Faust's recovery)."""
        self.store.mark_persisted(partition, delivered)

    def results(self, output: str, key: str, partition: int) -> list[Record]:
        """The key's last final results of ``output``, newest first."""
        scanned = self.store.scan(partition, history_key(output, key))
        return [orjson.loads(value) for _, value in islice(scanned, self.limit)]

    def latest(self, output: str, partition: int) -> Iterator[tuple[str, Record]]:
        """Every key of ``output`` in ``partition`` with its newest final result."""
        prefix = output_prefix(output)
        start, cut = len(prefix), -(self._suffix + len(SEPARATOR))
        previous = None
        for raw_key, raw_value in self.store.scan(partition, prefix):
            key = raw_key[start:cut]
            if key != previous:
                previous = key
                yield key.decode(), orjson.loads(raw_value)


def keep_histories(
    pipelines: Mapping[str, Any],
    selected: Iterable[Any],
    topic_of: Callable[[str], str],
    store_for: Callable[[str, PartitionProducer], HistoryStore],
) -> dict[str, str]:
    """Give every windowed pipeline a history table (``<name>-history``) of its own results
    and of the outputs derived from them; the output topic of every name, prefix applied.

    A running table that never closes (``forever()`` windows) has no results, so no history."""
    outputs: dict[str, str] = {}
    for name, pipeline in pipelines.items():
        spec = pipeline.spec
        outputs[name] = spec.output_topic
        derived: dict[str, str] = {}
        for decl in selected:
            if isinstance(decl, DerivedOutput) and decl.parent.name == name:
                topic = outputs[decl.name] = topic_of(decl.output)
                derived[topic] = decl.name
        windows = spec.window.windows
        if getattr(windows, "size_ms", 0) >= FOREVER_MS:
            continue
        store = store_for(f"{name}-history", pipeline.producer)
        by_window = not isinstance(windows, SlidingWindows)
        pipeline.history = ResultHistory(store, name, derived, by_window=by_window)
    return outputs
