"""Session windows against a brute-force oracle: merging, lateness, batching, idle, crashes."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson
from hypothesis import HealthCheck, Phase, assume, event, given, settings
from hypothesis import strategies as st
from oracle_kinds import Call, SessionResult, calls_from_batches, first_last, run_session_oracle

from faustapp.tables.aggregates import FirstLast, Stats
from faustapp.tables.engine import (
    MARK_KEY,
    WINDOW_PREFIX,
    BatchOutcome,
    Event,
    PartitionWindows,
    WindowResult,
    WindowSpec,
    WindowState,
    window_key,
)
from faustapp.tables.windows import Window, session

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
KEYS = ("sensor-1", "b", "ключ-ü")
Slot = tuple[str, int, int]


# --------------------------------------------------------------------------------------------
# Scenarios


@dataclass(frozen=True)
class Scenario:
    """Session gap and grace, events in arrival order with their offsets, batch ends."""

    gap: int
    grace: int
    raw: list[tuple[str, int, float]]
    offsets: list[int]
    tail: int  # records after the last event that never became events
    ends: list[int]

    @property
    def spec(self) -> WindowSpec:
        return WindowSpec(session(self.gap), self.grace, (Stats(), FirstLast()))

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
def scenarios(draw: st.DrawFn, max_events: int = 30) -> Scenario:
    gap = draw(st.integers(1, 15))
    grace = draw(st.one_of(st.just(0), st.integers(0, 30)))
    count = draw(st.integers(0, max_events))
    ts = draw(st.integers(-30, 30))
    raw = []
    for _ in range(count):
        move = draw(st.sampled_from(["same", "near", "near", "back", "gap", "jump", "far-back"]))
        if move == "near":
            ts += draw(st.integers(1, gap))
        elif move == "back":
            ts -= draw(st.integers(1, gap))
        elif move == "gap":  # exactly one gap away: a new session, unless bridged later
            ts += draw(st.sampled_from([gap, -gap]))
        elif move == "jump":
            ts += draw(st.integers(gap, 4 * gap + 30))
        elif move == "far-back":
            ts -= draw(st.integers(gap, 4 * gap + 30))
        raw.append((draw(st.sampled_from(KEYS[:2] if count > 15 else KEYS)), ts, draw(values_st)))
    steps = draw(st.lists(st.integers(1, 3), min_size=count, max_size=count))
    first = draw(st.integers(0, 5))
    offsets = [first + total - steps[0] for total in itertools.accumulate(steps)]
    tail = draw(st.integers(0, 2))
    ends = draw(st.lists(st.integers(0, count), max_size=6))
    return Scenario(gap, grace, raw, offsets, tail, sorted(set(ends)))


# --------------------------------------------------------------------------------------------
# Helpers


def slot_of(result: WindowResult) -> Slot:
    return (result.key, result.window.start, result.window.end)


def figures(result: WindowResult) -> dict[str, object]:
    return dict(result.figures)


def assert_same_figures(got: WindowResult, want: SessionResult, scenario: Scenario) -> None:
    summary = figures(got)
    expected = want.figures
    context = f"{slot_of(got)}: engine {summary} oracle {want}"
    points = [(scenario.raw[i][1], scenario.offsets[i], scenario.raw[i][2]) for i in want.indices]
    assert {name: summary[name] for name in ("first", "first_ts", "last", "last_ts")} == (
        first_last(points)
    ), context
    assert summary["count"] == expected.count, context
    assert summary["min"] == expected.minimum, context
    assert summary["max"] == expected.maximum, context
    for name, value in (
        ("sum", expected.total),
        ("mean", expected.mean),
        ("stddev", expected.stddev),
    ):
        assert math.isclose(summary[name], value, rel_tol=1e-9, abs_tol=1e-9), (name, context)


def stored(value: bytes | Callable[[], bytes]) -> bytes:
    """An update's value as written: the bytes, or the encoding it defers to write time."""
    return value if isinstance(value, bytes) else value()


def persist(table: dict[bytes, bytes], outcome: BatchOutcome, upto: str = "all") -> list:
    """Apply an outcome to a dict standing in for the table, stopping after stage ``upto``.

    Stages in the contract's order: ``updates``, ``mark``, ``results`` (emitted),
    ``after results`` (their records written), ``all`` (deletes applied). Returns the results
    emitted.
    """
    for key, value in outcome.updates:
        if value is None:
            table.pop(key, None)
        else:
            table[key] = stored(value)
    if upto == "updates":
        return []
    table[MARK_KEY] = outcome.mark
    if upto == "mark":
        return []
    emitted = list(outcome.results)
    if upto == "results":
        return emitted
    for key, value in outcome.after_results:
        table[key] = value
    if upto == "after results":
        return emitted
    for key in outcome.deletes:
        table.pop(key, None)
    return emitted


def stored_sessions(spec: WindowSpec, table: dict[bytes, bytes]) -> dict[Slot, int]:
    """Sessions in the table, with their event counts."""
    found = {}
    for raw_key, raw_value in table.items():
        if raw_key.startswith(WINDOW_PREFIX):
            state = WindowState.decode(spec, raw_key, raw_value)
            found[(state.key, state.window.start, state.window.end)] = state.figures(spec)["count"]
    return found


def open_sessions(part: PartitionWindows) -> dict[Slot, int]:
    return {
        (state.key, state.window.start, state.window.end): state.figures(part.spec)["count"]
        for state in part.open.values()
    }


def drive(part: PartitionWindows, scenario: Scenario, calls: Sequence[Call]) -> list[BatchOutcome]:
    """Hand the scenario's events to ``part`` by ``calls``, persisting nothing."""
    events = scenario.events
    position = 0
    outcomes = []
    for kind, argument in calls:
        if kind == "process":
            outcomes.append(
                part.process(events[position:argument], through_offset=scenario.through(argument))
            )
            position = argument
        else:
            outcomes.append(part.close_due(stream_time=argument))
    return outcomes


def ev(ts: int, offset: int, value: float = 1.0, key: str = "k") -> Event:
    return Event(key, ts, value, offset)


def spans(outcome: BatchOutcome) -> list[tuple[int, int, int]]:
    """(start, end, count) of an outcome's results."""
    return [(r.window.start, r.window.end, r.figures["count"]) for r in outcome.results]


# --------------------------------------------------------------------------------------------
# The oracle property, uninterrupted


def check_against_oracle(
    scenario: Scenario, calls: Sequence[Call], near_final: bool = True
) -> None:
    spec = scenario.spec
    events = scenario.events
    run = run_session_oracle(scenario.raw, scenario.gap, scenario.grace, calls)
    if not near_final:
        # Events joining next to a final session are the subject of
        # test_a_final_session_is_never_revived; here they would only repeat that finding.
        assume(not run.joins_near_final)
    part = PartitionWindows(spec)
    table: dict[bytes, bytes] = {}
    emitted: set[Slot] = set()
    position = 0
    for number, ((kind, argument), expected) in enumerate(zip(calls, run.emissions, strict=True)):
        if kind == "process":
            outcome = part.process(
                events[position:argument], through_offset=scenario.through(argument)
            )
            views = run.events[position:argument]
            position = argument
        else:
            outcome = part.close_due(stream_time=argument)
            views = []
        persist(table, outcome)
        got = {slot_of(result): result for result in outcome.results}
        assert len(got) == len(outcome.results), "a session emitted twice in one call"
        assert set(got) == {want.slot for want in expected}, f"call {number}: {kind} {argument}"
        for want in expected:
            assert_same_figures(got[want.slot], want, scenario)
        assert not set(got) & emitted, "a session emitted again in a later call"
        emitted |= set(got)
        closes = [r.window.end + scenario.gap + scenario.grace for r in outcome.results]
        assert closes == sorted(closes), "results not in close-time order"

        late_views = [view for view in views if view.late]
        assert [late.event for late in outcome.late] == [events[v.index] for v in late_views]
        for late, view in zip(outcome.late, late_views, strict=True):
            assert late.stream_time == view.stream_before
            # The window reported is the session the event would have formed: at least the one
            # made of non-final sessions (it may also take in final ones not yet emitted).
            assert late.window.start <= view.session[0] <= view.session[1] <= late.window.end
            assert late.stream_time >= late.window.end + scenario.gap + scenario.grace
        assert outcome.accepted == len(views) - len(late_views)
        assert outcome.replayed == 0
        assert orjson.loads(outcome.mark) == [part.stream_time, part.applied_offset]
        # Applied in the contract's order, the table holds exactly the open sessions.
        assert stored_sessions(spec, table) == run.open_after[number]
        assert open_sessions(part) == run.open_after[number]
    event(f"late events: {min(len(run.late_indices), 3)}+")
    event(f"results: {min(len(emitted), 3)}+")
    event(f"merged sessions: {any(len(r.indices) > 1 for r in run.results.values())}")
    assert part.stream_time == run.final_stream_time
    assert emitted == set(run.results)
    assert open_sessions(part) == run.still_open


@PROPERTY
@given(scenarios())
def test_sessions_match_oracle(scenario: Scenario) -> None:
    check_against_oracle(scenario, calls_from_batches(len(scenario.raw), scenario.ends))


@PROPERTY
@given(scenarios(), st.data())
def test_idle_close_matches_oracle(scenario: Scenario, data: st.DataObject) -> None:
    """Idle clock moves between batches: forward closes what is due, backward changes nothing."""
    calls: list[Call] = []
    for call in calls_from_batches(len(scenario.raw), scenario.ends):
        calls.append(call)
        for _ in range(data.draw(st.integers(0, 2), label="idle moves")):
            calls.append(("advance", data.draw(st.integers(-40, 200), label="idle to")))
    check_against_oracle(scenario, calls, near_final=False)


@PROPERTY
@given(scenarios(), st.data())
def test_batching_does_not_change_session_results(scenario: Scenario, data: st.DataObject) -> None:
    events = scenario.events
    whole = drive(PartitionWindows(scenario.spec), scenario, [("process", len(events))])
    other_ends = data.draw(st.lists(st.integers(0, len(events)), max_size=8))
    split = drive(
        PartitionWindows(scenario.spec), scenario, calls_from_batches(len(events), other_ends)
    )
    assert {slot_of(r): figures(r) for o in split for r in o.results} == {
        slot_of(r): figures(r) for o in whole for r in o.results
    }
    assert [late.event for o in split for late in o.late] == [
        late.event for o in whole for late in o.late
    ]


# --------------------------------------------------------------------------------------------
# Crash and replay


STAGES = (
    "some updates",
    "updates",
    "mark",
    "some results",
    "results",
    "after results",
    "some deletes",
)


@PROPERTY
@given(scenarios(max_events=25), st.data())
def test_crash_and_replay_match_oracle(scenario: Scenario, data: st.DataObject) -> None:
    """Crash anywhere in a batch's application order, restore, replay: same results, none lost.

    One or two crashes; each replay starts at any offset up to the crashed batch's first offset
    (input offsets are committed only after a batch is fully applied). Updates may be lost in any
    subset; deletes are applied in order, so a crash leaves a prefix of them done.
    """
    spec = scenario.spec
    events = scenario.events
    run = run_session_oracle(scenario.raw, scenario.gap, scenario.grace)
    # Events joining next to a final session are the subject of
    # test_a_final_session_is_never_revived; here they would only repeat that finding.
    assume(not run.joins_near_final)
    table: dict[bytes, bytes] = {}
    emissions: list[WindowResult] = []
    part = PartitionWindows(spec)
    position = 0
    crashes = data.draw(st.integers(1, 2), label="crashes")
    while True:
        ends = data.draw(st.lists(st.integers(position, len(events)), max_size=5), label="ends")
        calls = [c for c in calls_from_batches(len(events), [position, *ends]) if c[1] > position]
        calls = calls or [("process", len(events))]
        crash_at = (
            data.draw(st.integers(0, len(calls) - 1), label="crash batch") if crashes else None
        )
        begin = position
        for number, (_, end) in enumerate(calls):
            outcome = part.process(events[begin:end], through_offset=scenario.through(end))
            if number != crash_at:
                emissions += persist(table, outcome)
                begin = end
                continue
            stage = data.draw(st.sampled_from(STAGES), label="stage")
            event(f"crash stage: {stage}")
            if stage == "some updates":
                written = data.draw(st.sets(st.integers(0, max(len(outcome.updates) - 1, 0))))
                outcome.updates = [u for i, u in enumerate(outcome.updates) if i in written]
                emissions += persist(table, outcome, "updates")
            elif stage == "some results":
                sent = data.draw(st.integers(0, len(outcome.results)))
                emissions += persist(table, outcome, "mark") + outcome.results[:sent]
            elif stage == "some deletes":
                emissions += persist(table, outcome, "after results")
                done = data.draw(st.integers(0, len(outcome.deletes)))
                for key in outcome.deletes[:done]:
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
        position = next((i for i, e in enumerate(events) if e.offset >= replay_from), len(events))

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
        assert_same_figures(result, expected[slot], scenario)
    assert open_sessions(part) == run.still_open
    assert part.stream_time == run.final_stream_time


# --------------------------------------------------------------------------------------------
# Worked examples of the contract


def sessions_of(part: PartitionWindows, key: str = "k") -> list[tuple[int, int, int]]:
    """(start, end, count) of a key's open sessions."""
    return [
        (s.window.start, s.window.end, s.figures(part.spec)["count"]) for s in part.windows_of(key)
    ]


def test_an_event_bridging_two_sessions_merges_them() -> None:
    part = PartitionWindows(WindowSpec(session(10), grace_ms=20))
    table: dict[bytes, bytes] = {}
    persist(table, part.process([ev(0, 0, 1.0), ev(15, 1, 2.0)]))
    assert sessions_of(part) == [(0, 0, 1), (15, 15, 1)]
    bridge = part.process([ev(7, 2, 4.0)])  # 0 - 10 < 7 < 0 + 10 and 15 - 10 < 7 < 15 + 10
    assert sessions_of(part) == [(0, 15, 3)]
    assert [key for key, _ in bridge.updates] == [window_key("k", 0)]
    assert bridge.deletes == [window_key("k", 15)]  # the absorbed session's record
    persist(table, bridge)
    assert stored_sessions(part.spec, table) == {("k", 0, 15): 3}
    assert part.process([ev(44, 3, key="other")]).results == []  # 15 + 10 + 20 > 44
    closed = part.process([ev(45, 4, key="other")])
    assert spans(closed) == [(0, 15, 3)]
    assert closed.results[0].figures["sum"] == 7.0


def test_a_bridge_merged_session_takes_the_earliest_start() -> None:
    part = PartitionWindows(WindowSpec(session(10), grace_ms=100))
    part.process([ev(20, 0), ev(35, 1)])
    outcome = part.process([ev(11, 2), ev(27, 3)])  # 11 joins [20, 20]; 27 bridges
    assert sessions_of(part) == [(11, 35, 4)]
    assert sorted(outcome.deletes) == sorted([window_key("k", 20), window_key("k", 35)])
    assert [key for key, _ in outcome.updates] == [window_key("k", 11)]


def test_events_exactly_gap_apart_are_separate_sessions() -> None:
    part = PartitionWindows(WindowSpec(session(10), grace_ms=100))
    part.process([ev(0, 0), ev(10, 1), ev(-10, 2), ev(20, 3)])
    assert sessions_of(part) == [(-10, -10, 1), (0, 0, 1), (10, 10, 1), (20, 20, 1)]
    part.process([ev(9, 4)])  # within gap of 0 and of 10 (but not of 20): bridges two
    assert sessions_of(part) == [(-10, -10, 1), (0, 10, 3), (20, 20, 1)]


def test_grace_zero_session_is_final_at_end_plus_gap() -> None:
    part = PartitionWindows(WindowSpec(session(10), grace_ms=0))
    assert part.process([ev(0, 0), ev(9, 1, key="other")]).results == []
    closed = part.process([ev(10, 2, key="other")])
    assert [(r.key, r.window) for r in closed.results] == [("k", Window(0, 0))]
    late = part.process([ev(0, 3)])  # alone it would be [0, 0]: final at 10
    assert [(item.event.offset, item.window, item.stream_time) for item in late.late] == [
        (3, Window(0, 0), 10)
    ]
    assert late.accepted == 0 and late.updates == []


def test_an_event_final_on_its_own_is_accepted_when_it_joins_an_open_session() -> None:
    part = PartitionWindows(WindowSpec(session(10), grace_ms=0))
    part.process([ev(30, 0, key="other"), ev(25, 1)])
    outcome = part.process([ev(18, 2)])  # [18, 18] would be final at 28 <= 30; [18, 25] is not
    assert outcome.late == [] and outcome.accepted == 1
    assert sessions_of(part) == [(18, 25, 2)]
    late = part.process([ev(5, 3)])  # touches nothing open and is final on its own
    assert [item.window for item in late.late] == [Window(5, 5)]


def test_equal_timestamps_form_one_session() -> None:
    part = PartitionWindows(WindowSpec(session(1), grace_ms=0))
    outcome = part.process([ev(5, i, float(i)) for i in range(4)] + [ev(6, 4, key="other")])
    assert spans(outcome) == [(5, 5, 4)]  # 5 + 1 + 0 <= 6: final in the same batch
    assert outcome.results[0].figures["sum"] == 6.0
    assert outcome.results[0].figures["stddev"] == math.sqrt(1.25)


def test_replayed_offsets_are_skipped() -> None:
    part = PartitionWindows(WindowSpec(session(10), grace_ms=0))
    part.process([ev(1, 5, 1.0)])
    outcome = part.process([ev(1, 4, 100.0), ev(2, 5, 100.0), ev(3, 6, 2.0)])
    assert (outcome.replayed, outcome.accepted) == (2, 1)
    assert part.windows_of("k")[0].figures(part.spec)["sum"] == 3.0


def test_replay_after_a_crash_before_the_mark_counts_nothing_twice() -> None:
    spec = WindowSpec(session(10), grace_ms=0)
    part = PartitionWindows(spec)
    table: dict[bytes, bytes] = {}
    persist(table, part.process([ev(0, 0, 1.0)]))
    persist(table, part.process([ev(5, 1, 2.0), ev(-5, 2, 4.0), ev(40, 3, key="j")]), "updates")
    restored = PartitionWindows.restore(spec, sorted(table.items()))
    assert restored.applied_offset == 0
    assert restored.close_due().results == []
    again = restored.process([ev(0, 0, 1.0), ev(5, 1, 2.0), ev(-5, 2, 4.0), ev(40, 3, key="j")])
    assert again.replayed == 1  # offset 0, below the mark; the others are held by the sessions
    assert spans(again) == [(-5, 5, 3)]
    assert again.results[0].figures["sum"] == 7.0


def test_a_final_session_is_never_revived() -> None:
    """[0, 0] is final once stream time reaches 10 (gap 10, grace 0), wherever the batch ends.

    The event at 5 is not late (with [10, 10] it forms [5, 10], final only at 20), but [0, 0] was
    final before it arrived, so [0, 0] is emitted alone and 5 joins [10, 10]. The engine instead
    merges a final session that is still in memory because its batch has not ended: in one batch
    it yields [0, 10] with 3 events, in two batches [0, 0] and [5, 10]. Results must not depend on
    where batches end (a replay after a crash re-batches the same events).
    """
    events = [ev(0, 0), ev(10, 1), ev(5, 2), ev(30, 3, key="other")]
    runs = {}
    for name, cut in (("one batch", 4), ("two batches", 2)):
        part = PartitionWindows(WindowSpec(session(10), grace_ms=0))
        outcomes = [part.process(events[:cut]), part.process(events[cut:])]
        runs[name] = sorted(
            (r.key, r.window.start, r.window.end, r.figures["count"])
            for outcome in outcomes
            for r in outcome.results
        )
    expected = [("k", 0, 0, 1), ("k", 5, 10, 2)]
    assert runs == {"one batch": expected, "two batches": expected}


def test_idle_close_moves_the_clock_forward_only() -> None:
    part = PartitionWindows(WindowSpec(session(10), grace_ms=5))
    assert part.process([ev(1, 0), ev(4, 1)]).results == []
    assert part.close_due(stream_time=18).results == []  # 4 + 10 + 5 > 18
    idle = part.close_due(stream_time=19)
    assert spans(idle) == [(1, 4, 2)]
    assert idle.deletes == [window_key("k", 1)]
    assert orjson.loads(idle.mark) == [19, 1]
    assert part.close_due(stream_time=3).results == []
    assert part.stream_time == 19
    late = part.process([ev(4, 2)])  # [4, 4] would be final at 19
    assert [(item.event.offset, item.stream_time) for item in late.late] == [(2, 19)]
    assert part.process([ev(5, 3)]).late == []  # [5, 5] is final only at 20


def test_restore_drops_sessions_contained_in_another() -> None:
    """A crash after a merge was written but before the absorbed session's record was deleted."""
    spec = WindowSpec(session(10), grace_ms=20)
    part = PartitionWindows(spec)
    table: dict[bytes, bytes] = {}
    persist(table, part.process([ev(0, 0, 1.0), ev(15, 1, 2.0)]))
    persist(table, part.process([ev(7, 2, 4.0)]), "results")
    assert stored_sessions(spec, table) == {("k", 0, 15): 3, ("k", 15, 15): 1}
    restored = PartitionWindows.restore(spec, sorted(table.items(), reverse=True))
    assert sessions_of(restored) == [(0, 15, 3)]
    assert spans(restored.process([ev(45, 3, key="j")])) == [(0, 15, 3)]


def test_a_session_absorbed_before_a_restart_does_not_come_back_after_another() -> None:
    """Restart 1 drops the leftover [0, 0] inside [-5, 0] from memory but not from the table;
    once [-5, 0] is emitted and deleted, restart 2 finds [0, 0] alone and emits it a second time
    (its event is already in the [-5, 0] result)."""
    spec = WindowSpec(session(10), grace_ms=0)
    part = PartitionWindows(spec)
    table: dict[bytes, bytes] = {}
    emitted = persist(table, part.process([ev(0, 0, 1.0)]))
    emitted += persist(table, part.process([ev(-5, 1, 2.0)]), "mark")  # crash before deletes
    part = PartitionWindows.restore(spec, sorted(table.items()))
    emitted += persist(table, part.close_due())
    emitted += persist(table, part.process([ev(100, 2, key="j")]))
    part = PartitionWindows.restore(spec, sorted(table.items()))  # restart 2
    emitted += persist(table, part.close_due())
    assert [(r.key, r.window, r.figures["count"]) for r in emitted] == [("k", Window(-5, 0), 2)]
    assert stored_sessions(spec, table) == {("j", 100, 100): 1}


def test_session_result_as_dict() -> None:
    part = PartitionWindows(WindowSpec(session(10), grace_ms=0, aggregates=(Stats(), FirstLast())))
    outcome = part.process([ev(3, 0, 2.0), ev(1, 1, 4.0), ev(30, 2, key="j")])
    assert outcome.results[0].as_dict("sensor_id") == {
        "sensor_id": "k",
        "window_start": 1,
        "window_end": 3,
        "count": 2,
        "sum": 6.0,
        "mean": 3.0,
        "min": 2.0,
        "max": 4.0,
        "stddev": 1.0,
        "first": 4.0,
        "first_ts": 1,
        "last": 2.0,
        "last_ts": 3,
    }
