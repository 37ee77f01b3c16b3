"""The per-key history of final results (bounded, newest first, replay-safe) and the top-n
merge across workers, each against a brute-force oracle."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from types import SimpleNamespace

import orjson
import pytest

from faustapp.catalogue import probe, window_of
from faustapp.history import HISTORY_LIMIT, ResultHistory, history_key
from faustapp.pipeline_views import (
    BadParameter,
    best,
    merge_top,
    parse_top,
)
from faustapp.tables.windows import SlidingWindows, forever, hopping, session, tumbling

MINUTE = 60_000


class MemoryStore:
    """The read/write surface of a history table, in memory, one dict per partition."""

    def __init__(self) -> None:
        self.parts: dict[int, dict[bytes, bytes]] = defaultdict(dict)
        self.writes = 0

    def get(self, partition: int, key: bytes) -> bytes | None:
        return self.parts[partition].get(key)

    def scan(self, partition: int, prefix: bytes):
        for key in sorted(self.parts[partition]):
            if key.startswith(prefix):
                yield key, self.parts[partition][key]

    async def write(self, partition: int, puts):
        for key, value in puts:
            self.writes += 1
            if value is None:
                self.parts[partition].pop(key, None)
            else:
                self.parts[partition][key] = value
        return []

    def mark_persisted(self, partition: int, delivered) -> None:
        pass


def result(key: str, start: int, count: int, size: int = MINUTE) -> dict:
    return {"sensor_id": key, "window_start": start, "window_end": start + size, "count": count}


def flushed(history: ResultHistory, records: list[dict], key: str = "s") -> None:
    """Each record written in a flush of its own, as the pipeline emits them."""
    for record in records:
        entries: dict[bytes, list[dict]] = {}
        history.collect(entries, key, record, [("stats-topic", record)])
        asyncio.run(history.write(0, entries))


def test_history_keeps_the_newest_ten_newest_first():
    store = MemoryStore()
    history = ResultHistory(store, "stats")
    flushed(history, [result("s", minute * MINUTE, minute) for minute in range(25)])
    got = history.results("stats", "s", 0)
    assert [r["window_start"] for r in got] == [m * MINUTE for m in range(24, 14, -1)]
    assert len(got) == HISTORY_LIMIT
    assert len(store.parts[0]) == HISTORY_LIMIT, "the pushed-out entries are deleted"


def test_a_replayed_window_replaces_its_entry_and_is_never_doubled():
    history = ResultHistory(MemoryStore(), "stats")
    flushed(history, [result("s", minute * MINUTE, minute) for minute in range(5)])
    # The replay of minute 3 (a sketch may differ after a replay: the newer one wins).
    flushed(history, [result("s", 3 * MINUTE, 99)])
    got = history.results("stats", "s", 0)
    assert [r["window_start"] // MINUTE for r in got] == [4, 3, 2, 1, 0]
    assert got[1]["count"] == 99


def test_results_arriving_out_of_order_are_kept_newest_first():
    history = ResultHistory(MemoryStore(), "stats")
    flushed(history, [result("s", minute * MINUTE, minute) for minute in (3, 1, 4, 0, 2)])
    assert [r["window_start"] // MINUTE for r in history.results("stats", "s", 0)] == [
        4,
        3,
        2,
        1,
        0,
    ]
    # A window older than the ten kept does not push a newer one out.
    store = MemoryStore()
    full = ResultHistory(store, "stats")
    flushed(full, [result("s", minute * MINUTE, minute) for minute in range(10, 20)])
    before = full.results("stats", "s", 0)
    writes = store.writes
    flushed(full, [result("s", 0, 0)])
    assert full.results("stats", "s", 0) == before
    assert store.writes == writes, "nothing to write for a result older than the kept ten"


def test_sliding_results_with_the_same_bounds_are_all_kept_but_replays_are_not():
    """Two readings of one sensor at the same time are two alerts with the same window."""
    history = ResultHistory(MemoryStore(), "alerts", by_window=False)
    a = {"sensor_id": "s", "ts": 10, "value": 1.0, "window_start": 0, "window_end": 10}
    b = {**a, "value": 2.0}
    older = {**a, "ts": 5, "window_start": -5, "window_end": 5}
    flushed(history, [older, a, b, a])  # the last: a replay of a
    got = history.results("alerts", "s", 0)
    assert len(got) == 3 and got[2] == older
    assert sorted(got[:2], key=lambda r: r["value"]) == [a, b]


def test_keys_that_prefix_each_other_keep_apart():
    history = ResultHistory(MemoryStore(), "stats")
    for key in ("s-1", "s-10", "s-1\u00fc", "s"):
        entries: dict[bytes, list[dict]] = {}
        for minute in range(12):
            history.collect(entries, key, result(key, minute * MINUTE, len(key)), [])
        asyncio.run(history.write(0, entries))
    for key in ("s-1", "s-10", "s-1\u00fc", "s"):
        got = history.results("stats", key, 0)
        assert [r["sensor_id"] for r in got] == [key] * HISTORY_LIMIT
        assert got[0]["window_start"] == 11 * MINUTE
    latest = dict(history.latest("stats", 0))
    assert {k: r["window_start"] for k, r in latest.items()} == {
        k: 11 * MINUTE for k in ("s-1", "s-10", "s-1\u00fc", "s")
    }


def test_result_history_against_an_oracle_with_crash_replays():
    """Results of many keys written flush by flush; a crash replays a random tail of what was
    already written. The stored history equals the last ten distinct windows per key."""
    rng = random.Random(5)
    store = MemoryStore()
    history = ResultHistory(store, "stats", {"alerts-topic": "alerts"})
    keys = [f"s-{i}" for i in range(7)]
    emitted: list[tuple[str, dict]] = []
    oracle: dict[str, dict[int, dict]] = defaultdict(dict)
    minute = 0
    for _ in range(40):
        flush: dict[bytes, list[dict]] = {}
        batch = []
        for _ in range(rng.randint(1, 6)):
            key = rng.choice(keys)
            minute += rng.randint(0, 1)
            record = result(key, minute * MINUTE, rng.randint(1, 100))
            batch.append((key, record))
        if emitted and rng.random() < 0.3:  # a crash: a tail is replayed before new results
            batch = emitted[-rng.randint(1, min(8, len(emitted))) :] + batch
        for key, record in batch:
            routes = [("stats-topic", record)]
            if record["count"] > 90:
                routes.append(("alerts-topic", {**record, "rule": "count > 90"}))
            history.collect(flush, key, record, routes)
            oracle[key][record["window_start"]] = record
        emitted += [item for item in batch if item not in emitted]
        asyncio.run(history.write(0, flush))
    for key in keys:
        want = sorted(oracle[key].values(), key=lambda r: -r["window_start"])[:HISTORY_LIMIT]
        assert history.results("stats", key, 0) == want
        alerts = [r for r in sorted(oracle[key].values(), key=lambda r: -r["window_start"])]
        want_alerts = [{**r, "rule": "count > 90"} for r in alerts if r["count"] > 90]
        assert history.results("alerts", key, 0) == want_alerts[:HISTORY_LIMIT]
    latest = dict(history.latest("stats", 0))
    assert latest == {key: history.results("stats", key, 0)[0] for key in keys if oracle[key]}
    # Each output's entries are under a prefix of their own, at most ten per key.
    for key in keys:
        for name in ("stats", "alerts"):
            held = [raw for raw in store.parts[0] if raw.startswith(history_key(name, key))]
            assert len(held) == len(history.results(name, key, 0)) <= HISTORY_LIMIT
            assert all(orjson.loads(store.parts[0][raw])["sensor_id"] == key for raw in held)
    assert all(raw.startswith((b"stats\x00", b"alerts\x00")) for raw in store.parts[0])


def row(key: str, value: float) -> dict:
    return {"key": key, "value": value, "window_start": 0, "window_end": MINUTE}


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_top_merge_equals_a_sort_of_every_row(order):
    rng = random.Random(11)
    for _ in range(200):
        workers = rng.randint(1, 4)
        rows = [
            row(f"k-{i:03d}", float(rng.choice([rng.randint(0, 20), rng.random()])))
            for i in range(rng.randint(0, 60))
        ]
        n = rng.randint(1, 25)
        # Keys are partitioned: each worker holds some of them and answers its own top n.
        shares = defaultdict(list)
        for r in rows:
            shares[rng.randrange(workers)].append(r)
        answered = [best(share, n, order) for share in shares.values()]
        merged_rows = merge_top(answered, n, order)
        sign = -1 if order == "desc" else 1
        want = sorted(rows, key=lambda r: (sign * r["value"], r["key"]))[:n]
        assert merged_rows == want


def test_top_merge_counts_a_key_answered_twice_once():
    first = [row("a", 5.0), row("b", 4.0)]
    again = [row("a", 5.0), row("c", 1.0)]
    assert [r["key"] for r in merge_top([first, again], 10, "desc")] == ["a", "b", "c"]


def test_top_ties_are_broken_by_key_ascending_in_both_orders():
    rows = [row("b", 1.0), row("a", 1.0), row("c", 2.0)]
    assert [r["key"] for r in best(rows, 3, "desc")] == ["c", "a", "b"]
    assert [r["key"] for r in best(rows, 3, "asc")] == ["a", "b", "c"]


class _Entry:
    name = "sensor-stats-1m"
    numeric_fields = ["count", "mean"]


@pytest.mark.parametrize(
    "query",
    [
        {"field": "sensor_id"},
        {"field": "nope"},
        {"n": "0"},
        {"n": "1001"},
        {"n": "ten"},
        {"n": "9" * 5000},
        {"order": "up"},
        {"window": "closed"},
    ],
)
def test_top_parameters_are_checked(query):
    with pytest.raises(BadParameter):
        parse_top(query, _Entry())


def test_top_parameters_have_their_defaults():
    query = parse_top({}, _Entry())
    assert (query.field, query.n, query.order, query.window) == ("count", 10, "desc", "final")
    query = parse_top({"field": "mean", "n": "1000", "order": "asc", "window": "open"}, _Entry())
    assert (query.field, query.n, query.order, query.window) == ("mean", 1000, "asc", "open")


@pytest.mark.parametrize(
    ("windows", "want"),
    [
        (tumbling(MINUTE), ("tumbling", MINUTE, MINUTE, None)),
        (hopping(5 * MINUTE, MINUTE), ("hopping", 5 * MINUTE, MINUTE, None)),
        (session(30 * MINUTE), ("session", None, None, 30 * MINUTE)),
        (SlidingWindows(5 * MINUTE), ("sliding", 5 * MINUTE, None, None)),
        (forever(), ("tumbling", None, None, None)),
    ],
)
def test_window_kinds_and_sizes_as_the_catalogue_describes_them(windows, want):
    described = window_of(SimpleNamespace(windows=windows))
    assert (described["kind"], described["size_ms"], described["step_ms"], described["gap_ms"]) == (
        want
    )


def test_probe_lists_published_fields_and_only_numeric_figures_as_rankable():
    sample = {"sensor_id": "k", "window_start": 0, "window_end": 10, "count": 3, "flag": True}

    def select(result):
        return {**result, "mean": 1.5, "label": "x"}

    fields, numeric = probe(select, sample, "sensor_id")
    assert fields == ["sensor_id", "window_start", "window_end", "count", "flag", "mean", "label"]
    assert numeric == ["count", "mean"]
    # A select that refuses the sample (a rule that does not fire) or fails: the sample's own.
    assert probe(lambda r: None, sample, "sensor_id") == (list(sample), ["count"])
    assert probe(lambda r: 1 / 0, sample, "sensor_id") == (list(sample), ["count"])


def test_entries_sort_newest_first_across_signs_and_extremes():
    from faustapp.history import entry_suffix

    bounds = [(-(1 << 70), -5), (-5, 0), (0, 10), (0, 60), (10, 60), (1 << 40, 1 << 41)]
    records = [{"window_start": s, "window_end": e} for s, e in bounds]
    suffixes = [entry_suffix(r, by_window=True) for r in records]
    assert sorted(suffixes) == suffixes[::-1]  # later end (then start) sorts first
    assert entry_suffix({"x": 1}, by_window=True) < min(suffixes)  # no bounds: newest
