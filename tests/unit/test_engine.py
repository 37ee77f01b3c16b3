"""The window engine against a brute-force oracle: results, late events, batching, crash replay."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from oracle import OracleResult, batch_slices, run_oracle

from faustapp.records import MAX_ABS_VALUE
from faustapp.tables.engine import (
    MARK_KEY,
    WINDOW_PREFIX,
    BatchOutcome,
    Event,
    PartitionWindows,
    WindowResult,
    WindowSpec,
    WindowState,
    key_prefix,
    parse_window_key,
    window_key,
)
from faustapp.tables.windows import Window, hopping, tumbling

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEYS = ("sensor-1", "b", "ключ-ü")
Slot = tuple[str, int, int]


# --------------------------------------------------------------------------------------------
# Helpers


@dataclass(frozen=True)
class Scenario:
    """A generated run: window spec, events in arrival order with their offsets, batch ends."""

    size: int
    step: int
    grace: int
    raw: list[tuple[str, int, float]]
    offsets: list[int]
    tail: int  # records after the last event that never became events (dead letters)
    ends: list[int]

    @property
    def spec(self) -> WindowSpec:
        return WindowSpec(hopping(self.size, self.step), self.grace)

    @property
    def events(self) -> list[Event]:
        return [
            Event(key, ts, value, offset)
            for (key, ts, value), offset in zip(self.raw, self.offsets, strict=True)
        ]

    def through(self, end: int) -> int:
        """Last source offset covered by a batch ending (exclusive) at event index ``end``."""
        if end < len(self.offsets):
            return self.offsets[end] - 1
        return (self.offsets[-1] if self.offsets else -1) + self.tail


values_st = st.one_of(
    st.integers(-100, 100).map(float),
    st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
)


@st.composite
def window_params(draw: st.DrawFn) -> tuple[int, int, int]:
    size = draw(st.integers(1, 40))
    step = size if draw(st.booleans()) else draw(st.integers(1, size))
    grace = draw(st.one_of(st.just(0), st.integers(0, 60)))
    return size, step, grace


@st.composite
def scenarios(draw: st.DrawFn, max_events: int = 40) -> Scenario:
    size, step, grace = draw(window_params())
    count = draw(st.integers(0, max_events))
    ts = draw(st.integers(-30, 60))
    raw = []
    for _ in range(count):
        move = draw(st.sampled_from(["same", "forward", "forward", "back", "jump", "far-back"]))
        if move == "forward":
            ts += draw(st.integers(1, 10))
        elif move == "back":
            ts -= draw(st.integers(1, 10))
        elif move == "jump":
            ts += draw(st.integers(20, 150))
        elif move == "far-back":
            ts -= draw(st.integers(20, 150))
        raw.append((draw(st.sampled_from(KEYS)), ts, draw(values_st)))
    gaps = draw(st.lists(st.integers(1, 3), min_size=count, max_size=count))
    start = draw(st.integers(0, 5))
    offsets = [start + total - gaps[0] for total in itertools.accumulate(gaps)]
    tail = draw(st.integers(0, 2))
    ends = draw(st.lists(st.integers(0, count), max_size=6))
    return Scenario(size, step, grace, raw, offsets, tail, sorted(set(ends)))


def slot_of(result: WindowResult) -> Slot:
    return (result.key, result.window.start, result.window.end)


def figures(result: WindowResult) -> dict[str, object]:
    """The result's output fields, without the key and window bounds."""
    shape = result.as_dict("key")
    for name in ("key", "window_start", "window_end"):
        del shape[name]
    return shape


def count_of(result: WindowResult) -> object:
    return figures(result)["count"]


def assert_same_figures(got: WindowResult, expected: OracleResult) -> None:
    summary = figures(got)
    context = f"{slot_of(got)}: engine {summary} oracle {expected}"
    assert summary["count"] == expected.count, context
    assert summary["min"] == expected.minimum, context
    assert summary["max"] == expected.maximum, context
    for name, want in (
        ("sum", expected.total),
        ("mean", expected.mean),
        ("stddev", expected.stddev),
    ):
        assert math.isclose(summary[name], want, rel_tol=1e-9, abs_tol=1e-9), (name, context)


def persist(table: dict[bytes, bytes], outcome: BatchOutcome, upto: str = "all") -> list:
    """Apply an outcome to a dict standing in for the table, stopping after stage ``upto``.

    Stages in the contract's order: ``updates``, ``mark``, ``results`` (emitted), ``all``
    (deletes applied). Returns the results emitted.
    """
    for key, value in outcome.encoded_updates():
        table[key] = value
    if upto == "updates":
        return []
    table[MARK_KEY] = outcome.mark
    if upto == "mark":
        return []
    emitted = list(outcome.results)
    if upto == "results":
        return emitted
    for key in outcome.deletes:
        table.pop(key, None)
    return emitted


def open_slots(part: PartitionWindows) -> dict[Slot, int]:
    return {
        (state.key, state.window.start, state.window.end): state.figures(part.spec)["count"]
        for state in part.open.values()
    }


def run_engine(spec: WindowSpec, batches: Iterable[Sequence[Event]]) -> list[BatchOutcome]:
    part = PartitionWindows(spec)
    return [part.process(batch) for batch in batches]


# --------------------------------------------------------------------------------------------
# The oracle property: every batch's results and late events, uninterrupted


@PROPERTY
@given(scenarios())
def test_engine_matches_oracle(scenario: Scenario) -> None:
    events = scenario.events
    grace = scenario.grace
    run = run_oracle(scenario.raw, scenario.size, scenario.step, grace, scenario.ends)
    part = PartitionWindows(scenario.spec)
    emitted: set[Slot] = set()
    slices = batch_slices(len(events), scenario.ends)
    assert len(slices) == len(run.batches)
    for (begin, end), expected in zip(slices, run.batches, strict=True):
        outcome = part.process(events[begin:end], through_offset=scenario.through(end))
        got = {slot_of(result): result for result in outcome.results}
        assert len(got) == len(outcome.results), "a window emitted twice in one batch"
        assert set(got) == {result.slot for result in expected}
        for want in expected:
            assert_same_figures(got[want.slot], want)
        assert not set(got) & emitted, "a window emitted again in a later batch"
        emitted |= set(got)
        close_times = [result.window.end + grace for result in outcome.results]
        assert close_times == sorted(close_times), "results not in close-time order"

        views = run.events[begin:end]
        late_views = [view for view in views if view.late]
        assert [late.event for late in outcome.late] == [events[v.index] for v in late_views]
        for late, view in zip(outcome.late, late_views, strict=True):
            assert late.stream_time == view.stream_before
            assert (late.window.start, late.window.end) in view.windows
            assert late.stream_time >= late.window.end + grace
        assert outcome.accepted == len(views) - len(late_views)
        assert outcome.replayed == 0

        touched = {(v.key, start) for v in views for start, _ in v.open_windows}
        assert sorted(key for key, _ in outcome.updates) == sorted(
            window_key(key, start) for key, start in touched
        )
        assert outcome.deletes == [window_key(r.key, r.window.start) for r in outcome.results]
        stream_now = max([-1] + [ts for _, ts, _ in scenario.raw[:end]])
        assert orjson.loads(outcome.mark) == [stream_now, scenario.through(end)]
    event(f"late events: {min(len(run.late_indices), 3)}+")
    event(f"results: {min(len(emitted), 3)}+")
    event(f"hopping: {scenario.step != scenario.size}")
    assert part.stream_time == run.final_stream_time
    assert set(emitted) == set(run.results)
    assert open_slots(part) == {slot: len(values) for slot, values in run.still_open.items()}


@PROPERTY
@given(scenarios(), st.data())
def test_batching_does_not_change_results(scenario: Scenario, data: st.DataObject) -> None:
    """Whatever the batch boundaries, the same windows are emitted with the same figures."""
    events = scenario.events
    whole = run_engine(scenario.spec, [events])[0]
    other_ends = data.draw(st.lists(st.integers(0, len(events)), max_size=8))
    split = run_engine(
        scenario.spec, [events[b:e] for b, e in batch_slices(len(events), other_ends)]
    )
    merged = {slot_of(r): figures(r) for outcome in split for r in outcome.results}
    assert merged == {slot_of(r): figures(r) for r in whole.results}
    assert [late.event for o in split for late in o.late] == [late.event for late in whole.late]


# --------------------------------------------------------------------------------------------
# Crash and replay


STAGES = ("some updates", "updates", "mark", "some results", "results", "some deletes")


@PROPERTY
@given(scenarios(max_events=30), st.data())
def test_crash_and_replay_match_oracle(scenario: Scenario, data: st.DataObject) -> None:
    """Crash anywhere in a batch's application order, restore, replay: same results, none lost.

    Up to two crashes; each replay starts at any offset up to the crashed batch's first offset
    (the input offsets are committed only after a batch is fully applied).
    """
    spec = scenario.spec
    events = scenario.events
    run = run_oracle(scenario.raw, scenario.size, scenario.step, scenario.grace)
    table: dict[bytes, bytes] = {}
    emissions: list[WindowResult] = []
    part = PartitionWindows(spec)
    position = 0  # index of the first event not yet handed to the engine
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
                emissions += persist(table, outcome)
                continue
            stage = data.draw(st.sampled_from(STAGES), label="stage")
            if stage == "some updates":
                # Part-way through the updates: any subset of them reached the table.
                written = data.draw(st.sets(st.integers(0, max(len(outcome.updates) - 1, 0))))
                outcome.updates = [u for i, u in enumerate(outcome.updates) if i in written]
                emissions += persist(table, outcome, "updates")
            elif stage == "some results":
                # Part-way through emitting: a prefix of the results went out.
                sent = data.draw(st.integers(0, len(outcome.results)))
                emissions += persist(table, outcome, "mark") + outcome.results[:sent]
            elif stage == "some deletes":
                # Part-way through the deletes: any subset of them reached the table.
                emissions += persist(table, outcome, "results")
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
        part = PartitionWindows.restore(spec, records)
        emissions += persist(table, part.close_due())
        position = next(
            (i for i, event in enumerate(events) if event.offset >= replay_from), len(events)
        )

    event(
        f"emissions beyond unique results: {len(emissions) > len({slot_of(r) for r in emissions})}"
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
    assert part.stream_time == run.final_stream_time


@PROPERTY
@given(scenarios(max_events=30), st.data())
def test_restore_then_close_due_emits_windows_already_final(
    scenario: Scenario, data: st.DataObject
) -> None:
    """A crash between emitting and deleting: the restored partition re-emits the same results."""
    part = PartitionWindows(scenario.spec)
    events = scenario.events
    table: dict[bytes, bytes] = {}
    slices = batch_slices(len(events), scenario.ends)
    crash_at = data.draw(st.integers(0, len(slices) - 1))
    for number, (begin, end) in enumerate(slices):
        outcome = part.process(events[begin:end], through_offset=scenario.through(end))
        if number == crash_at:
            stage = data.draw(st.sampled_from(["mark", "results"]))
            persist(table, outcome, stage)
            break
        persist(table, outcome)
    restored = PartitionWindows.restore(scenario.spec, sorted(table.items()))
    assert restored.stream_time == part.stream_time
    assert restored.applied_offset == part.applied_offset
    again = restored.close_due()
    assert {slot_of(r): figures(r) for r in again.results} == {
        slot_of(r): figures(r) for r in outcome.results
    }
    assert sorted(again.deletes) == sorted(outcome.deletes)
    assert again.updates == []
    assert orjson.loads(again.mark) == [part.stream_time, part.applied_offset]
    assert open_slots(restored) == open_slots(part)
    assert restored.close_due().results == []


# --------------------------------------------------------------------------------------------
# Worked examples of the contract


def ev(ts: int, offset: int, value: float = 1.0, key: str = "k") -> Event:
    return Event(key, ts, value, offset)


def test_window_is_final_exactly_at_end_plus_grace() -> None:
    part = PartitionWindows(WindowSpec(tumbling(10), grace_ms=5))
    first = part.process([ev(3, 0), ev(14, 1)])
    assert first.results == []  # stream time 14 < 10 + 5
    second = part.process([ev(15, 2)])
    assert [(r.window, count_of(r)) for r in second.results] == [(Window(0, 10), 1)]
    late = part.process([ev(9, 3, key="other")])
    assert [(item.event.offset, item.window, item.stream_time) for item in late.late] == [
        (3, Window(0, 10), 15)
    ]
    assert late.accepted == 0
    assert "grace 5 ms" in late.late[0].reason


def test_grace_zero_closes_when_stream_time_reaches_end() -> None:
    part = PartitionWindows(WindowSpec(tumbling(10), grace_ms=0))
    outcome = part.process([ev(0, 0), ev(9, 1), ev(10, 2), ev(9, 3)])
    assert [(r.window, count_of(r)) for r in outcome.results] == [(Window(0, 10), 2)]
    assert [item.event.offset for item in outcome.late] == [3]


def test_event_final_in_some_hopping_windows_is_counted_in_the_others() -> None:
    part = PartitionWindows(WindowSpec(hopping(10, 5), grace_ms=0))
    outcome = part.process([ev(0, 0, 1.0), ev(10, 1, 2.0), ev(7, 2, 4.0)])
    # ts 7 is in [0, 10) (final at stream time 10) and [5, 15) (open): counted, not late.
    assert outcome.late == []
    assert outcome.accepted == 3
    # ts 0 is in [-5, 5) and [0, 10); both are final at stream time 10.
    assert [(r.window, count_of(r)) for r in outcome.results] == [
        (Window(-5, 5), 1),
        (Window(0, 10), 1),
    ]
    assert {s.window: s.figures(part.spec)["sum"] for s in part.windows_of("k")} == {
        Window(5, 15): 6.0,
        Window(10, 20): 2.0,
    }


def test_late_event_in_a_later_batch_is_reported_once() -> None:
    part = PartitionWindows(WindowSpec(hopping(10, 5), grace_ms=0))
    part.process([ev(0, 0), ev(30, 1)])
    outcome = part.process([ev(7, 2)])
    assert len(outcome.late) == 1
    assert outcome.late[0].window == Window(0, 10)  # the oldest of the final windows
    assert outcome.results == [] and outcome.updates == []


def test_results_are_emitted_only_at_batch_end_and_open_windows_never() -> None:
    part = PartitionWindows(WindowSpec(tumbling(10), grace_ms=0))
    outcome = part.process([ev(1, 0), ev(25, 1), ev(12, 2)])
    assert [r.window for r in outcome.results] == [Window(0, 10)]
    assert [item.event for item in outcome.late] == [ev(12, 2)]
    assert sorted(s.window.start for s in part.open.values()) == [20]


def test_replayed_offsets_are_skipped() -> None:
    part = PartitionWindows(WindowSpec(tumbling(10), grace_ms=0))
    part.process([ev(1, 5, 1.0)])
    outcome = part.process([ev(1, 4, 100.0), ev(1, 5, 100.0), ev(2, 6, 2.0)])
    assert outcome.replayed == 2
    assert outcome.accepted == 1
    assert part.windows_of("k")[0].figures(part.spec)["sum"] == 3.0


def test_through_offset_moves_the_mark_past_records_that_were_not_events() -> None:
    part = PartitionWindows(WindowSpec(tumbling(10), grace_ms=0))
    outcome = part.process([], through_offset=41)
    assert orjson.loads(outcome.mark) == [-1, 41]
    assert part.process([ev(1, 41)]).replayed == 1


def test_restore_of_an_empty_table_is_a_fresh_partition() -> None:
    part = PartitionWindows.restore(WindowSpec(tumbling(10), grace_ms=0), [])
    assert (part.stream_time, part.applied_offset, part.open) == (-1, -1, {})
    assert part.close_due().results == []


def test_window_keys_round_trip_and_sort_by_key_then_start() -> None:
    starts = [-(2**40), -10, -1, 0, 1, 10, 2**40]
    for key in ("a", "ключ", "x y", ""):
        encoded = [window_key(key, start) for start in starts]
        assert encoded == sorted(encoded)
        assert [parse_window_key(raw) for raw in encoded] == [(key, s) for s in starts]
        assert all(raw.startswith(key_prefix(key)) for raw in encoded)
        assert all(raw.startswith(WINDOW_PREFIX) for raw in encoded)
    assert not MARK_KEY.startswith(WINDOW_PREFIX)


def test_window_state_round_trips_exactly() -> None:
    spec = WindowSpec(tumbling(10), grace_ms=100)  # [-20, -10) is open at stream time -1
    part = PartitionWindows(spec)
    values = (0.1, 1e-300, -3.5, 1e30, 5e-324)
    part.process([ev(-20 + i, 7 + i, value) for i, value in enumerate(values)])
    (state,) = part.windows_of("k")
    assert state.window == Window(-20, -10) and state.applied_offset == 11
    again = WindowState.decode(spec, window_key("k", -20), state.encode(spec))
    assert again == state
    assert again.figures(spec) == state.figures(spec)


def test_state_of_the_largest_accepted_values_survives_a_restore() -> None:
    """Values at the decoder's bound must not overflow the stats or make stored state unreadable
    (beyond it, the decoder refuses them: see test_records)."""
    spec = WindowSpec(tumbling(10), grace_ms=0)
    part = PartitionWindows(spec)
    table: dict[bytes, bytes] = {}
    persist(table, part.process([ev(1, 0, MAX_ABS_VALUE), ev(2, 1, -MAX_ABS_VALUE)]))
    restored = PartitionWindows.restore(spec, sorted(table.items()))
    outcome = restored.process([ev(10, 2)])
    assert [count_of(r) for r in outcome.results] == [2]
    assert figures(outcome.results[0])["sum"] == 0.0
    assert figures(outcome.results[0])["mean"] == 0.0
    assert figures(outcome.results[0])["stddev"] == MAX_ABS_VALUE


def test_negative_grace_is_rejected() -> None:
    with pytest.raises(ValueError, match="grace"):
        WindowSpec(tumbling(10), grace_ms=-1)


def test_result_as_dict_has_the_output_fields() -> None:
    part = PartitionWindows(WindowSpec(tumbling(10), grace_ms=0))
    outcome = part.process([ev(1, 0, 2.0), ev(2, 1, 4.0), ev(10, 2)])
    assert outcome.results[0].as_dict("sensor_id") == {
        "sensor_id": "k",
        "window_start": 0,
        "window_end": 10,
        "count": 2,
        "sum": 6.0,
        "mean": 3.0,
        "min": 2.0,
        "max": 4.0,
        "stddev": 1.0,
    }


def test_close_due_can_move_an_idle_partitions_clock_forward_only() -> None:
    part = PartitionWindows(WindowSpec(tumbling(10), grace_ms=5))
    assert part.process([ev(1, 0), ev(12, 1)]).results == []
    idle = part.close_due(stream_time=20)
    assert [(r.window, count_of(r)) for r in idle.results] == [(Window(0, 10), 1)]
    assert idle.deletes == [window_key("k", 0)]
    assert orjson.loads(idle.mark) == [20, 1]
    assert part.close_due(stream_time=5).results == []
    assert part.stream_time == 20
    late = part.process([ev(9, 2)])
    assert [(item.event.offset, item.stream_time) for item in late.late] == [(2, 20)]
