"""Hopping windows on panes against the brute-force oracle and the per-window engine: the same
windows, figures and late events, whatever the batches, and across crashes anywhere."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from oracle import batch_slices, run_oracle
from test_engine import (
    PROPERTY,
    STAGES,
    Scenario,
    Slot,
    assert_same_figures,
    figures,
    persist,
    scenarios,
    slot_of,
)

from faustapp.tables.engine import PartitionWindows, WindowResult, WindowSpec, window_key
from faustapp.tables.measures import Count, CountBy, DistinctList, First, Last, Max, Min, Sum
from faustapp.tables.panes import FRONTIER_KEY, PanedWindows, pane_key, paned
from faustapp.tables.windows import hopping, sliding, tumbling

hopping_scenarios = scenarios().filter(lambda s: s.step < s.size)


def open_slots(part: PanedWindows) -> dict[Slot, int]:
    return {
        (window.key, window.window.start, window.window.end): window.figures(part.spec)["count"]
        for key in list(part.keys())
        for window in part.windows_of(key)
    }


@PROPERTY
@given(hopping_scenarios)
def test_panes_match_the_oracle_batch_by_batch(scenario: Scenario) -> None:
    events = scenario.events
    run = run_oracle(scenario.raw, scenario.size, scenario.step, scenario.grace, scenario.ends)
    part = PanedWindows(scenario.spec)
    slices = batch_slices(len(events), scenario.ends)
    for (begin, end), expected in zip(slices, run.batches, strict=True):
        outcome = part.process(events[begin:end], through_offset=scenario.through(end))
        got = {slot_of(result): result for result in outcome.results}
        assert len(got) == len(outcome.results), "a window emitted twice in one batch"
        assert set(got) == {result.slot for result in expected}
        for want in expected:
            assert_same_figures(got[want.slot], want)
        views = run.events[begin:end]
        late_views = [view for view in views if view.late]
        assert [late.event for late in outcome.late] == [events[v.index] for v in late_views]
        for late, view in zip(outcome.late, late_views, strict=True):
            assert late.stream_time == view.stream_before
            assert (late.window.start, late.window.end) in view.windows
        assert outcome.accepted == len(views) - len(late_views)
        stream_now = max([-1] + [ts for _, ts, _ in scenario.raw[:end]])
        assert orjson.loads(outcome.mark) == [stream_now, scenario.through(end)]
    event(f"late events: {min(len(run.late_indices), 3)}+")
    assert part.stream_time == run.final_stream_time
    assert open_slots(part) == {slot: len(values) for slot, values in run.still_open.items()}


@PROPERTY
@given(hopping_scenarios, st.data())
def test_panes_give_the_per_window_engines_figures(scenario: Scenario, data: st.DataObject) -> None:
    """Every measure kind, any batching: counts, sums, extremes, first/last and counts by value
    exactly as the per-window engine computes them."""
    measures = {
        "n": Count(),
        "positive": Count(where=lambda value: value > 0),
        "total": Sum(None),
        "low": Min(None),
        "high": Max(None),
        "first": First(None),
        "last": Last(None),
        "by_value": CountBy(lambda value: str(int(value) % 3)),
        "seen": DistinctList(lambda value: int(value) % 7, limit=3),
    }
    spec = WindowSpec.of(hopping(scenario.size, scenario.step), scenario.grace, measures)
    events = scenario.events
    windows = PartitionWindows(spec)
    expected = {slot_of(r): r.figures for r in windows.process(events).results}
    ends = data.draw(st.lists(st.integers(0, len(events)), max_size=8))
    panes = PanedWindows(spec)
    got: dict[Slot, dict] = {}
    for begin, end in batch_slices(len(events), ends):
        for result in panes.process(events[begin:end]).results:
            got[slot_of(result)] = result.figures
    assert got.keys() == expected.keys()
    for slot, want in expected.items():
        mine = got[slot]
        assert {k: v for k, v in mine.items() if k != "total"} == {
            k: v for k, v in want.items() if k != "total"
        }
        assert math.isclose(mine["total"], want["total"], rel_tol=1e-9, abs_tol=1e-9)
    still = {
        (state.key, state.window.start): state.figures(spec)["n"] for state in windows.open.values()
    }
    assert {
        (key, window.window.start): window.figures(spec)["n"]
        for key in list(panes.keys())
        for window in panes.windows_of(key)
    } == still


@PROPERTY
@given(hopping_scenarios.filter(lambda s: len(s.raw) <= 30), st.data())
def test_crash_anywhere_and_replay_match_the_oracle(
    scenario: Scenario, data: st.DataObject
) -> None:
    """Crash anywhere in a batch's application order (any subset of its state writes reaching
    the table), restore from the table in any record order, replay from any earlier offset:
    every window emitted with the oracle's figures, a re-emission never different."""
    spec = scenario.spec
    events = scenario.events
    run = run_oracle(scenario.raw, scenario.size, scenario.step, scenario.grace)
    table: dict[bytes, bytes] = {}
    emissions: list[WindowResult] = []
    part = PanedWindows(spec)
    position = 0
    crashes = data.draw(st.integers(0, 2), label="crashes")
    while True:
        ends = data.draw(st.lists(st.integers(position, len(events)), max_size=5), label="ends")
        slices = [
            (begin, end)
            for begin, end in batch_slices(len(events), [position, *ends])
            if begin >= position
        ]
        crash_at = (
            data.draw(st.integers(0, len(slices) - 1), label="crash batch") if crashes else None
        )
        for number, (begin, end) in enumerate(slices):
            outcome = part.process(events[begin:end], through_offset=scenario.through(end))
            if number != crash_at:
                emissions += persist_all(table, outcome)
                continue
            stage = data.draw(st.sampled_from(STAGES), label="stage")
            if stage == "some updates":
                written = data.draw(st.sets(st.integers(0, max(len(outcome.updates) - 1, 0))))
                outcome.updates = [u for i, u in enumerate(outcome.updates) if i in written]
                emissions += persist(table, outcome, "updates")
            elif stage == "some results":
                sent = data.draw(st.integers(0, len(outcome.results)))
                emissions += persist(table, outcome, "mark") + outcome.results[:sent]
            elif stage == "some deletes":
                emissions += persist(table, outcome, "results")
                table.update(outcome.after_results)
                for key in data.draw(st.sets(st.sampled_from(outcome.deletes or [b""]))):
                    table.pop(key, None)
            else:
                emissions += persist(table, outcome, stage)
            crash_first = scenario.offsets[begin] if begin < len(events) else scenario.through(end)
            replay_from = data.draw(st.integers(0, max(crash_first, 0)), label="replay from")
            break
        else:
            break
        crashes -= 1
        records = data.draw(st.permutations(sorted(table.items())), label="record order")
        part = PanedWindows.restore(spec, records)
        emissions += persist_all(table, part.close_due())
        position = next(
            (i for i, event in enumerate(events) if event.offset >= replay_from), len(events)
        )
    first: dict[Slot, WindowResult] = {}
    for result in emissions:
        slot = slot_of(result)
        if slot in first:
            assert figures(result) == figures(first[slot]), f"{slot} changed when re-emitted"
        else:
            first[slot] = result
    expected = run.results
    assert set(first) == set(expected), (
        f"missing {set(expected) - set(first)} extra {set(first) - set(expected)}"
    )
    for slot, result in first.items():
        assert_same_figures(result, expected[slot])
    assert open_slots(part) == {slot: len(values) for slot, values in run.still_open.items()}
    # Nothing outlives its windows in the table.
    assert all(
        key.startswith(b"p") or key in (FRONTIER_KEY,) or key.startswith(b"m") for key in table
    )


def persist_all(table: dict[bytes, bytes], outcome) -> list:  # noqa: ANN001
    """Every stage of the contract, the frontier (after the results) included."""
    emitted = persist(table, outcome, "results")
    table.update(outcome.after_results)
    for key in outcome.deletes:
        table.pop(key, None)
    return emitted


# --------------------------------------------------------------------------------------------
# Worked examples


def ev(ts: int, offset: int, value: float = 1.0, key: str = "k"):  # noqa: ANN201
    from faustapp.tables.events import Event

    return Event(key, ts, value, offset)


def test_an_event_after_a_window_was_final_reaches_only_the_later_windows_of_its_pane() -> None:
    """hopping(10, 5), grace 0: [0, 10) is final at 10; an event at 7 arriving then shares pane
    [5, 10) with [5, 15), which takes it; [0, 10) does not."""
    spec = WindowSpec(hopping(10, 5), 0)
    part = PanedWindows(spec)
    outcome = part.process([ev(6, 0), ev(10, 1), ev(7, 2)])
    # The late-arriving event lives in a second generation of the pane.
    assert [pane.first_window for pane in part.open[("k", 5)]] == [0, 5]
    assert [(r.window.start, r.figures["count"]) for r in outcome.results] == [(0, 1)]
    closed = part.process([ev(20, 3)])
    counts = {(r.window.start, r.window.end): r.figures["count"] for r in closed.results}
    assert counts == {(5, 15): 3, (10, 20): 1}


def test_a_second_generation_of_a_pane_survives_a_restore() -> None:
    spec = WindowSpec(hopping(10, 5), 0)
    part = PanedWindows(spec)
    table: dict[bytes, bytes] = {}
    persist_all(table, part.process([ev(6, 0), ev(10, 1), ev(7, 2)]))
    assert pane_key("k", 5, 0) in table and pane_key("k", 5, 5) in table
    restored = PanedWindows.restore(spec, sorted(table.items()))
    assert restored.close_due().results == []  # [0, 10) was emitted before the crash
    views = {
        (w.window.start, w.window.end): w.figures(spec)["count"] for w in restored.windows_of("k")
    }
    assert views == {(5, 15): 3, (10, 20): 1}
    closed = restored.process([ev(30, 3)])
    counts = {(r.window.start, r.window.end): r.figures["count"] for r in closed.results}
    assert counts == {(5, 15): 3, (10, 20): 1}
    assert pane_key("k", 5, 0) in closed.deletes and pane_key("k", 5, 5) in closed.deletes


def test_windows_of_the_per_window_layout_are_deleted_at_restore() -> None:
    spec = WindowSpec(hopping(10, 5), 0)
    stale = window_key("k", 0)
    part = PanedWindows.restore(spec, [(stale, b"[10,-1,[[0,0,0,0,null,null]]]")])
    assert stale in part.close_due().deletes


def test_panes_serve_overlapping_hopping_windows_only() -> None:
    assert paned(WindowSpec(hopping(10, 5), 0))
    assert paned(WindowSpec(hopping(10, 4), 0))  # panes of 2
    assert not paned(WindowSpec(tumbling(10), 0))
    assert paned(WindowSpec(hopping(10, 5), 0, watermarked=True))  # regrouped: see test_regroup
    assert not paned(WindowSpec(sliding(10), 0))
    with pytest.raises(TypeError):
        PanedWindows(WindowSpec(tumbling(10), 0))
