"""Global rankings: the ``Ranked`` aggregate against ``sorted()``, and the two-stage top-K of
``trending-items`` (per-item hopping counts, their final rows relayed under one key to one ranking
window per parent window) against a brute-force top-K per window."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_regroup import Downstream, apply_outcome

from faustapp.agents.clicks import Click, item_activity, trending_items
from faustapp.runtime import _ranking_record
from faustapp.schema import Record, Schema
from faustapp.tables.engine import Event, PartitionWindows, WindowSpec
from faustapp.tables.measures import Max, Measure, Min
from faustapp.tables.ranking import Ranked
from faustapp.tables.windows import tumbling

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------------------------
# The aggregate


@dataclass(frozen=True)
class Row:
    item_id: str
    score: Any
    views: int


def oracle_top(rows: list[Row], k: int, above: float | None) -> list[dict[str, Any]]:
    """The last row of each id, ranked by score descending then id ascending."""
    latest = {row.item_id: row for row in rows}
    kept = [
        row
        for row in latest.values()
        if row.score is not None and (above is None or row.score > above)
    ]
    kept = sorted(kept, key=lambda row: (-row.score, row.item_id))[:k]
    return [{"item_id": r.item_id, "score": r.score, "views": r.views} for r in kept]


def ranked(k: int, above: float | None, where: Any = None) -> Ranked:
    return Ranked(k, id_field="item_id", score="score", fields=("views",), above=above, where=where)


def add_all(agg: Ranked, rows: list[Row]) -> Any:
    state = agg.create()
    for offset, row in enumerate(rows):
        agg.add(state, Event("top", 0, row, offset))
    return state


def round_trip(agg: Ranked, state: Any) -> Any:
    return agg.load(orjson.loads(orjson.dumps(agg.dump(state))))


ids_st = st.sampled_from(["a", "b", "c", "d", "e", "f", "g", "h", "ä", "sku-10", "sku-9", "B"])
scores_st = st.one_of(
    st.integers(-3, 6),
    st.sampled_from([0.5, 2.5, -0.5]),
    st.none(),
)
rows_st = st.lists(st.builds(Row, ids_st, scores_st, st.integers(0, 9)), max_size=30)
unique_rows_st = rows_st.map(lambda rows: list({row.item_id: row for row in rows}.values()))
k_st = st.integers(1, 12)
above_st = st.one_of(st.none(), st.sampled_from([0, 1, -1, 2.5]))


@PROPERTY
@given(rows_st, k_st, above_st)
def test_ranking_is_the_sorted_rows_with_the_last_row_of_each_id(
    rows: list[Row], k: int, above: float | None
) -> None:
    agg = ranked(k, above)
    state = add_all(agg, rows)
    want = oracle_top(rows, k, above)
    assert agg.ranking(state) == want
    assert agg.result(state) == {"items": want}
    assert agg.ranking(round_trip(agg, state)) == want
    event(f"cut by k: {len({r.item_id for r in rows}) > k}")


@PROPERTY
@given(unique_rows_st, k_st, above_st, st.data())
def test_adding_rows_again_changes_nothing(
    rows: list[Row], k: int, above: float | None, data: st.DataObject
) -> None:
    agg = ranked(k, above)
    replays = data.draw(st.lists(st.sampled_from(rows), max_size=20)) if rows else []
    order = data.draw(st.permutations(rows + replays))
    assert agg.ranking(add_all(agg, order)) == oracle_top(rows, k, above)


@PROPERTY
@given(unique_rows_st, k_st, above_st, st.data())
def test_merged_partial_rankings_equal_one_ranking(
    rows: list[Row], k: int, above: float | None, data: st.DataObject
) -> None:
    """Rows spread over partial states (a row may be in several: a replay), merged in any order
    and through the stored form, rank as all rows added to one state."""
    agg = ranked(k, above)
    parts = data.draw(st.integers(1, 4))
    chunks: list[list[Row]] = [[] for _ in range(parts)]
    for row in rows:
        for index in data.draw(st.sets(st.integers(0, parts - 1), min_size=1)):
            chunks[index].append(row)
    states = [round_trip(agg, add_all(agg, chunk)) for chunk in chunks]
    order = data.draw(st.permutations(states))
    merged = agg.create()
    for state in order:
        merged = agg.merge(merged, state)
    assert agg.ranking(merged) == oracle_top(rows, k, above)


@PROPERTY
@given(unique_rows_st, k_st)
def test_where_leaves_rows_out(rows: list[Row], k: int) -> None:
    agg = ranked(k, None, where=lambda row: row.views % 2 == 0)
    assert agg.ranking(add_all(agg, rows)) == oracle_top(
        [row for row in rows if row.views % 2 == 0], k, None
    )


def test_ties_rank_by_id_and_only_scores_above_the_threshold_count() -> None:
    rows = [Row("b", 3, 1), Row("a", 3, 2), Row("c", 0, 5), Row("d", 4, 0), Row("e", None, 1)]
    agg = ranked(3, 0)
    assert [r["item_id"] for r in agg.ranking(add_all(agg, rows))] == ["d", "a", "b"]
    agg = ranked(10, None)
    assert [r["item_id"] for r in agg.ranking(add_all(agg, rows))] == ["d", "a", "b", "c"]


def test_a_ranking_keeps_at_least_one_row() -> None:
    with pytest.raises(ValueError, match="at least one row"):
        ranked(0, None)


# --------------------------------------------------------------------------------------------
# Two stages: per-item hopping counts, then one ranking window per parent window


RANK_KEY = trending_items.key
ID = item_activity.key
KINDS = ("view", "click", "add_to_cart", "purchase")
WEIGHTS = {"view": 1, "click": 0, "add_to_cart": 3, "purchase": 5}
COUNTED = {"view": "views", "add_to_cart": "add_to_carts", "purchase": "purchases"}


def row_schema() -> Schema:
    """How the ranking stage reads a relayed row (as the runtime declares it)."""
    row = msgspec.defstruct(
        "trending-row",
        [
            ("rank_key", str),
            ("ts", int),
            ("window_start", int),
            ("window_end", int),
            (ID, Any),
            (trending_items.score, Any),
            *((name, Any) for name in trending_items.fields),
        ],
        bases=(Record,),
    )
    return Schema(row, key="rank_key", ts="ts", key_is_id=False)


def ranking_spec(grace: int) -> WindowSpec:
    agg = Ranked(
        trending_items.k,
        id_field=ID,
        score=trending_items.score,
        fields=trending_items.fields,
        above=trending_items.above,
    )
    measures = {
        "window_start": Min("window_start"),
        "window_end": Max("window_end"),
        "items": Measure("ranking", agg, agg.ranking),
    }
    return WindowSpec.of(tumbling(trending_items.step_ms), grace, measures, True)


class FirstStage:
    """One partition of ``item-activity-5m``: its windows, its table, and the relay of its final
    rows and stream time to the ranking stage."""

    def __init__(self, number: int, grace: int, clicks: list[Event], schema: Schema) -> None:
        self.number = number
        self.spec = WindowSpec.of(
            item_activity.windows, grace, item_activity.measures, where=item_activity.where
        )
        self.part = PartitionWindows(self.spec)
        self.table: dict[bytes, bytes] = {}
        self.clicks = clicks
        self.position = 0
        self.sent: int | None = None
        self.schema = schema
        self.crashes = 0

    def relay(self, results: list[Any], ranking: Downstream) -> None:
        for result in results:
            published = item_activity.select(result.as_dict(ID))
            raw = orjson.dumps({**published, "rank_key": RANK_KEY, "ts": result.window.end - 1})
            ranking.append(self.number, record=self.schema.decode(raw))
        stream_time = self.part.stream_time
        if stream_time >= 0 and stream_time != self.sent:
            ranking.append(self.number, watermark=stream_time)
            self.sent = stream_time

    def step(self, size: int, ranking: Downstream, crash: bool) -> None:
        batch = self.clicks[self.position : self.position + size]
        self.position += len(batch)
        outcome = self.part.process(batch, through_offset=batch[-1].offset)
        if not crash:
            apply_outcome(self.table, outcome)
            self.relay(outcome.results, ranking)
            return
        # A crash after the results went out, before the closed windows were deleted: the
        # restarted partition emits (and relays) them again.
        deletes, outcome.deletes = outcome.deletes, []
        apply_outcome(self.table, outcome)
        self.relay(outcome.results, ranking)
        self.part = PartitionWindows.restore(self.spec, self.table.items())
        self.sent = None
        again = self.part.close_due()
        assert sorted(again.deletes) == sorted(deletes)
        apply_outcome(self.table, again)
        self.relay(again.results, ranking)
        self.crashes += 1


@st.composite
def partition_clicks(draw: st.DrawFn, number: int, grace: int) -> list[Event]:
    items = [f"p{number}-sku-{i}" for i in range(draw(st.sampled_from([1, 3, 8, 14, 14])))]
    unit = draw(st.sampled_from([5_000, 20_000]))  # dense windows, or many windows
    ts = draw(st.integers(0, 5)) * unit
    clicks = []
    for offset in range(draw(st.integers(1, 60))):
        ts = max(0, ts + draw(st.sampled_from([0, 0, 1, 1, 2, 3, 6, -1, -3, -8, 15])) * unit)
        kind = draw(st.sampled_from(KINDS))
        item = draw(st.one_of(st.sampled_from(items), st.none()))
        amount = 9.5 if kind == "purchase" else None
        click = Click(f"u{number}", ts, kind, "/p", item, amount)
        clicks.append(Event(item or "-", ts, click, offset))
    if draw(st.booleans()):  # far ahead: most windows end up ranked
        ts += 20 * 60_000
        clicks.append(Event("-", ts, Click(f"u{number}", ts, "view", "/"), len(clicks)))
    return clicks


def brute_force(inputs: list[list[Event]], grace: int) -> tuple[dict, dict, set]:
    """Published rankings of final parent windows, and which parent windows are relayed but not
    ranked yet, by window start."""
    size, step = item_activity.windows.size_ms, item_activity.windows.step_ms
    activity: dict[tuple[int, str], dict[str, int]] = {}
    relayed: set[int] = set()
    finals = []
    for clicks in inputs:
        stream = -1
        mine: set[int] = set()
        for ev in clicks:
            click = ev.record
            if click.item_id is not None:
                for start in range(ev.ts - ev.ts % step - size, ev.ts + 1, step):
                    if ev.ts - size < start and stream < start + size + grace:
                        counts = activity.setdefault(
                            (start, click.item_id), dict.fromkeys(COUNTED.values(), 0)
                        )
                        mine.add(start)
                        if click.event in COUNTED:
                            counts[COUNTED[click.event]] += 1
            stream = max(stream, ev.ts)
        finals.append(stream)
        relayed |= {start for start in mine if start + size + grace <= stream}
    closed_by = min(finals)
    published: dict[int, dict[str, Any]] = {}
    ranked_starts = set()
    for start in {start for start, _ in activity}:
        ranking_end = (start + size - 1) // step * step + step
        if ranking_end + grace > closed_by:
            continue
        ranked_starts.add(start)
        rows = []
        for (other, item), counts in activity.items():
            score = sum(WEIGHTS[kind] * counts[name] for kind, name in COUNTED.items())
            if other == start and score > trending_items.above:
                rows.append({ID: item, "score": score, **counts})
        rows.sort(key=lambda row: (-row["score"], row[ID]))
        if rows:
            published[start] = {
                "window_start": start,
                "window_end": start + size,
                "items": rows[: trending_items.k],
            }
    return published, relayed - ranked_starts, ranked_starts


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.randoms(use_true_random=False))
def test_two_stage_top_k_equals_brute_force_top_k_per_window(
    data: st.DataObject, rng: random.Random
) -> None:
    grace = data.draw(st.sampled_from([0, 20_000, 120_000]), label="grace")
    count = data.draw(st.integers(1, 3), label="partitions")
    inputs = [data.draw(partition_clicks(n, grace), label=f"partition {n}") for n in range(count)]
    schema = row_schema()
    ranking = Downstream(ranking_spec(grace), count, schema.key_of, schema.ts_of)
    stages = [FirstStage(n, grace, clicks, schema) for n, clicks in enumerate(inputs)]
    crash_chance = data.draw(st.sampled_from([0.0, 0.15]), label="crash chance")
    while waiting := [stage for stage in stages if stage.position < len(stage.clicks)]:
        stage = rng.choice(waiting)
        stage.step(rng.randint(1, 5), ranking, crash=rng.random() < crash_chance)
        if rng.random() < 0.5:
            ranking.consume(rng.randint(1, 6))
    ranking.consume()

    published, pending, ranked_starts = brute_force(inputs, grace)
    emitted: dict[int, dict[str, Any]] = {}
    closed: set[int] = set()
    for result in ranking.emitted:
        record = _ranking_record(result.as_dict("rank_key"))
        start = int(result.figures["window_start"])
        assert start not in closed, f"ranking of window {start} emitted twice"
        closed.add(start)
        if record is not None:
            emitted[start] = record
    assert emitted == published
    assert closed == ranked_starts
    opened = {
        int(state.figures(ranking.spec)["window_start"]) for state in ranking.part.open.values()
    }
    assert opened == pending
    if not any(stage.crashes for stage in stages):
        assert ranking.late == []
    for late in ranking.late:  # rows relayed again after a crash, once ranked already
        assert late.event.record.window_start in closed
    event(f"published: {min(len(published), 3)}+")
    event(f"crashes: {min(sum(stage.crashes for stage in stages), 2)}+")
    event(f"k cut: {any(len(p['items']) == trending_items.k for p in published.values())}")
