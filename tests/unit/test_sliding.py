"""Sliding windows against a brute-force oracle: per-event results, lateness, idle, crashes."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from oracle_kinds import Call, SlidingRun, calls_from_batches, moments, run_sliding_oracle

from faustapp.tables.engine import MARK_KEY, BatchOutcome, Event, WindowSpec
from faustapp.tables.sliding import (
    BUCKET_MS,
    BUCKET_PREFIX,
    FRONTIER_KEY,
    SlidingPartition,
    SlidingResult,
    bucket_key,
)
from faustapp.tables.windows import Window, session, sliding

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
KEYS = ("sensor-1", "b", "ключ-ü")


# --------------------------------------------------------------------------------------------
# Scenarios


@dataclass(frozen=True)
class Scenario:
    """Window size and grace, events in arrival order with their offsets, batch ends."""

    size: int
    grace: int
    raw: list[tuple[str, int, float]]
    offsets: list[int]
    tail: int
    ends: list[int]

    @property
    def spec(self) -> WindowSpec:
        return WindowSpec(sliding(self.size), self.grace)

    @property
    def events(self) -> list[Event]:
        return [
            Event(key, ts, value, offset)
            for (key, ts, value), offset in zip(self.raw, self.offsets, strict=True)
        ]

    def through(self, end: int) -> int:
        if end < len(self.offsets):
            return self.offsets[end] - 1
        return (self.offsets[-1] if self.offsets else -1) + self.tail


values_st = st.one_of(
    st.integers(-100, 100).map(float),
    st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
)


@st.composite
def scenarios(draw: st.DrawFn, max_events: int = 30) -> Scenario:
    # A scale of 1 keeps everything in one or two state buckets; a large scale spreads events
    # over many buckets, so buckets are deleted while others are still needed.
    scale = draw(st.sampled_from([1, 1, 700, BUCKET_MS // 4]))
    size = draw(st.integers(1, 40)) * scale
    grace = draw(st.one_of(st.just(0), st.integers(0, 40).map(lambda g: g * scale)))
    count = draw(st.integers(0, max_events))
    ts = draw(st.integers(-30, 30)) * scale
    raw = []
    for _ in range(count):
        move = draw(st.sampled_from(["same", "forward", "forward", "back", "size", "jump"]))
        if move == "forward":
            ts += draw(st.integers(1, 10)) * scale
        elif move == "back":
            ts -= draw(st.integers(1, 10)) * scale + draw(st.integers(0, 1))
        elif move == "size":  # exactly one window size away: on the window's edge
            ts += draw(st.sampled_from([size, -size]))
        elif move == "jump":
            ts += draw(st.integers(20, 150)) * scale
        raw.append((draw(st.sampled_from(KEYS)), ts, draw(values_st)))
    steps = draw(st.lists(st.integers(1, 3), min_size=count, max_size=count))
    first = draw(st.integers(0, 5))
    offsets = [first + total - steps[0] for total in itertools.accumulate(steps)]
    tail = draw(st.integers(0, 2))
    ends = draw(st.lists(st.integers(0, count), max_size=6))
    return Scenario(size, grace, raw, offsets, tail, sorted(set(ends)))


# --------------------------------------------------------------------------------------------
# Helpers


def ident(result: SlidingResult) -> tuple[str, int]:
    """Which event a result belongs to: key and source offset."""
    return (result.key, result.event.offset)


def stored(value: bytes | Callable[[], bytes]) -> bytes:
    """An update's value as written: the bytes, or the encoding it defers to write time."""
    return value if isinstance(value, bytes) else value()


def persist(table: dict[bytes, bytes], outcome: BatchOutcome, upto: str = "all") -> list:
    """Apply an outcome to a dict standing in for the table, stopping after stage ``upto``
    (``updates``, ``mark``, ``results``, ``after results``, ``all``). Returns the results sent."""
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


def assert_same_figures(got: SlidingResult, scenario: Scenario, run: SlidingRun) -> None:
    index = scenario.offsets.index(got.event.offset)
    want = run.results[index]
    figures = got.figures
    context = f"{ident(got)} ts {got.event.ts}: engine {figures} oracle {want}"
    assert set(figures) == {"count", "sum", "mean", "stddev"}, context
    assert figures["count"] == want.count, context
    # Running sums: errors scale with the largest value the key's window has ever held.
    key = got.key
    scale = max([1.0] + [abs(v) for k, _, v in scenario.raw if k == key])
    assert math.isclose(figures["sum"], want.total, rel_tol=1e-9, abs_tol=1e-9 * scale), context
    assert math.isclose(figures["mean"], want.mean, rel_tol=1e-9, abs_tol=1e-9 * scale), context
    assert abs(figures["stddev"] ** 2 - want.stddev**2) <= 1e-9 * scale * scale, context


def ev(ts: int, offset: int, value: float = 1.0, key: str = "k") -> Event:
    return Event(key, ts, value, offset)


def counts(outcome: BatchOutcome) -> list[tuple[int, int]]:
    """(ts, count) of an outcome's results, in order."""
    return [(r.event.ts, r.figures["count"]) for r in outcome.results]


# --------------------------------------------------------------------------------------------
# The oracle property, uninterrupted


def check_against_oracle(scenario: Scenario, calls: Sequence[Call]) -> SlidingPartition:
    events = scenario.events
    run = run_sliding_oracle(scenario.raw, scenario.size, scenario.grace, calls)
    part = SlidingPartition(scenario.spec)
    table: dict[bytes, bytes] = {}
    position = 0
    emitted_through = -(1 << 62)  # nothing emitted yet: no clamp at -1 (times may be negative)
    for (kind, argument), expected in zip(calls, run.emissions, strict=True):
        if kind == "process":
            outcome = part.process(
                events[position:argument], through_offset=scenario.through(argument)
            )
            indices = range(position, argument)
            position = argument
        else:
            outcome = part.close_due(stream_time=argument)
            indices = range(0)
        persist(table, outcome)
        assert [ident(r) for r in outcome.results] == [
            (want.key, scenario.offsets[want.index]) for want in expected
        ], "results differ (or are not in (ts, offset) order)"
        for got in outcome.results:
            assert got.event == events[scenario.offsets.index(got.event.offset)]
            assert got.window == Window(got.event.ts - scenario.size, got.event.ts)
            assert_same_figures(got, scenario, run)
        late = [i for i in indices if i in set(run.late_indices)]
        assert [item.event for item in outcome.late] == [events[i] for i in late]
        for item, index in zip(outcome.late, late, strict=True):
            assert item.stream_time == run.stream_before[index]
            assert item.window == Window(item.event.ts - scenario.size, item.event.ts)
        assert outcome.accepted == len(indices) - len(late)
        assert outcome.replayed == 0
        stream_now = part.stream_time
        assert orjson.loads(outcome.mark) == [stream_now, part.applied_offset]
        emitted_through = max(emitted_through, stream_now - scenario.grace)
        assert outcome.after_results == [(FRONTIER_KEY, orjson.dumps(emitted_through))]
    event(f"late events: {min(len(run.late_indices), 3)}+")
    event(f"results: {min(len(run.results), 5)}+")
    event(f"buckets stored at the end: {min(sum(k.startswith(BUCKET_PREFIX) for k in table), 3)}+")
    assert part.stream_time == run.final_stream_time
    return part


@PROPERTY
@given(scenarios())
def test_sliding_matches_oracle(scenario: Scenario) -> None:
    check_against_oracle(scenario, calls_from_batches(len(scenario.raw), scenario.ends))


@PROPERTY
@given(scenarios(), st.data())
def test_idle_close_matches_oracle(scenario: Scenario, data: st.DataObject) -> None:
    """Idle clock moves between batches; at the end the clock moves past everything pending."""
    calls: list[Call] = []
    for call in calls_from_batches(len(scenario.raw), scenario.ends):
        calls.append(call)
        for _ in range(data.draw(st.integers(0, 2), label="idle moves")):
            to = data.draw(st.integers(-40, 200), label="idle to") * (scenario.size // 40 + 1)
            calls.append(("advance", to))
    calls.append(("advance", 10**12))
    check_against_oracle(scenario, calls)


@PROPERTY
@given(scenarios(), st.data())
def test_batching_does_not_change_sliding_results(scenario: Scenario, data: st.DataObject) -> None:
    events = scenario.events
    whole = SlidingPartition(scenario.spec).process(events)
    other_ends = data.draw(st.lists(st.integers(0, len(events)), max_size=8))
    part = SlidingPartition(scenario.spec)
    ends = [end for _, end in calls_from_batches(len(events), other_ends)]
    split = [part.process(events[b:e]) for b, e in itertools.pairwise([0, *ends])]
    # The same results in the same order; figures equal up to rounding (the running sums see
    # additions and removals in a different interleaving).
    got = [result for outcome in split for result in outcome.results]
    assert [ident(r) for r in got] == [ident(r) for r in whole.results]
    run = run_sliding_oracle(scenario.raw, scenario.size, scenario.grace)
    for mine, theirs in zip(got, whole.results, strict=True):
        assert mine.figures["count"] == theirs.figures["count"]
        assert_same_figures(mine, scenario, run)
    assert [late.event for o in split for late in o.late] == [late.event for late in whole.late]


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

    One or two crashes; each replay starts at any offset up to the crashed batch's first offset.
    Updates may be lost in any subset; deletes are applied in order (a prefix is done).
    """
    spec = scenario.spec
    events = scenario.events
    run = run_sliding_oracle(
        scenario.raw, scenario.size, scenario.grace, [("process", len(events))]
    )
    table: dict[bytes, bytes] = {}
    emissions: list[SlidingResult] = []
    part = SlidingPartition(spec)
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
                for key in outcome.deletes[: data.draw(st.integers(0, len(outcome.deletes)))]:
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
        part = SlidingPartition.restore(spec, records)
        emissions += persist(table, part.close_due())
        position = next((i for i, e in enumerate(events) if e.offset >= replay_from), len(events))

    first: dict[tuple[str, int], SlidingResult] = {}
    for result in emissions:
        if ident(result) in first:
            assert result.figures == first[ident(result)].figures, f"{ident(result)} changed"
        else:
            first[ident(result)] = result
    expected = {(r.key, scenario.offsets[r.index]) for r in run.results.values()}
    assert set(first) == expected, f"missing {expected - set(first)} extra {set(first) - expected}"
    for result in first.values():
        assert_same_figures(result, scenario, run)
    assert part.stream_time == run.final_stream_time


# --------------------------------------------------------------------------------------------
# Worked examples of the contract


def test_each_event_gets_one_result_over_its_window_inclusive_at_both_ends() -> None:
    part = SlidingPartition(WindowSpec(sliding(10), grace_ms=0))
    outcome = part.process([ev(0, 0, 1.0), ev(10, 1, 2.0), ev(21, 2, 4.0), ev(31, 3, 8.0)])
    assert counts(outcome) == [(0, 1), (10, 2), (21, 1), (31, 2)]
    assert [r.figures["sum"] for r in outcome.results] == [1.0, 3.0, 4.0, 12.0]
    assert [r.window for r in outcome.results] == [
        Window(-10, 0),
        Window(0, 10),
        Window(11, 21),
        Window(21, 31),
    ]
    assert outcome.results[1].figures["mean"] == 1.5
    assert outcome.results[1].figures["stddev"] == 0.5


def test_a_result_waits_for_the_grace_then_comes_once() -> None:
    part = SlidingPartition(WindowSpec(sliding(10), grace_ms=5))
    assert part.process([ev(10, 0, 1.0), ev(12, 1, 2.0)]).results == []
    first = part.process([ev(8, 2, 4.0), ev(15, 3, key="j")])  # 8 is not late: 12 < 8 + 5
    assert counts(first) == [(8, 1), (10, 2)]
    assert first.results[1].figures["sum"] == 5.0  # the later-arriving 8 is in 10's window
    assert part.process([ev(16, 4, key="j")]).results == []
    second = part.process([ev(20, 5, key="j")])
    assert [(r.key, r.event.ts) for r in second.results] == [("k", 12), ("j", 15)]
    assert second.results[0].figures["sum"] == 7.0
    assert part.close_due(stream_time=20).results == []


def test_late_iff_stream_time_reached_ts_plus_grace() -> None:
    part = SlidingPartition(WindowSpec(sliding(10), grace_ms=5))
    outcome = part.process([ev(10, 0), ev(5, 1), ev(6, 2)])
    assert [(item.event.offset, item.stream_time) for item in outcome.late] == [(1, 10)]
    assert outcome.late[0].window == Window(-5, 5)
    assert "grace 5 ms" in outcome.late[0].reason
    assert outcome.accepted == 2


def test_grace_zero_makes_a_second_event_at_the_same_time_late() -> None:
    part = SlidingPartition(WindowSpec(sliding(10), grace_ms=0))
    outcome = part.process([ev(5, 0, 1.0), ev(5, 1, 2.0)])
    assert counts(outcome) == [(5, 1)]
    assert [item.event.offset for item in outcome.late] == [1]


def test_events_at_the_same_time_are_all_in_each_others_windows() -> None:
    part = SlidingPartition(WindowSpec(sliding(10), grace_ms=1))
    outcome = part.process([ev(5, 0, 1.0), ev(5, 1, 2.0), ev(5, 2, 3.0), ev(6, 3, key="j")])
    assert counts(outcome) == [(5, 3), (5, 3), (5, 3)]
    assert [r.event.offset for r in outcome.results] == [0, 1, 2]
    assert {r.figures["sum"] for r in outcome.results} == {6.0}


def test_results_come_in_time_then_offset_order_across_keys() -> None:
    part = SlidingPartition(WindowSpec(sliding(10), grace_ms=100))
    part.process([ev(7, 0, key="a"), ev(3, 1, key="b"), ev(7, 2, key="c"), ev(5, 3, key="a")])
    outcome = part.close_due(stream_time=200)
    assert [(r.event.ts, r.event.offset) for r in outcome.results] == [
        (3, 1),
        (5, 3),
        (7, 0),
        (7, 2),
    ]


def test_replayed_offsets_are_skipped() -> None:
    part = SlidingPartition(WindowSpec(sliding(10), grace_ms=100))
    part.process([ev(1, 5, 1.0)])
    outcome = part.process([ev(1, 4, 100.0), ev(2, 5, 100.0), ev(3, 6, 2.0)])
    assert (outcome.replayed, outcome.accepted) == (2, 1)
    assert [r.figures["sum"] for r in part.close_due(stream_time=1000).results] == [1.0, 3.0]


def test_idle_close_moves_the_clock_forward_only() -> None:
    part = SlidingPartition(WindowSpec(sliding(10), grace_ms=5))
    assert part.process([ev(1, 0), ev(4, 1)]).results == []
    idle = part.close_due(stream_time=8)
    assert counts(idle) == [(1, 1)]
    assert orjson.loads(idle.mark) == [8, 1]
    assert idle.after_results == [(FRONTIER_KEY, b"3")]
    assert part.close_due(stream_time=2).results == []
    assert part.stream_time == 8
    late = part.process([ev(3, 2)])
    assert [(item.event.offset, item.stream_time) for item in late.late] == [(2, 8)]
    assert counts(part.close_due(stream_time=9)) == [(4, 2)]


def test_replay_after_a_crash_before_the_mark_keeps_late_events_late() -> None:
    """The second event is late (grace 0, same time). The bucket holding the first was written,
    the mark was not: the replay skips the first as already held, but must still let it move
    stream time, or the second is accepted and gets a result of its own."""
    spec = WindowSpec(sliding(10), grace_ms=0)
    table: dict[bytes, bytes] = {}
    part = SlidingPartition(spec)
    first = part.process([ev(0, 0), ev(0, 1)])
    assert counts(first) == [(0, 1)] and len(first.late) == 1
    persist(table, first, "updates")  # crash before the mark
    restored = SlidingPartition.restore(spec, sorted(table.items()))
    again = restored.process([ev(0, 0), ev(0, 1)])
    assert [item.event.offset for item in again.late] == [1]
    assert counts(again) == [(0, 1)]


def test_a_pending_result_before_time_zero_survives_a_restart() -> None:
    """Stream time starts at -1; the stored frontier must not be read as "ts <= -1 emitted"."""
    spec = WindowSpec(sliding(10), grace_ms=5)
    table: dict[bytes, bytes] = {}
    part = SlidingPartition(spec)
    persist(table, part.process([ev(-3, 0, 2.0)]))
    assert counts(part.close_due(stream_time=100)) == [(-3, 1)]
    restored = SlidingPartition.restore(spec, sorted(table.items()))
    assert counts(restored.close_due(stream_time=100)) == [(-3, 1)]


def test_a_window_of_one_event_reports_that_event_exactly() -> None:
    part = SlidingPartition(WindowSpec(sliding(10), grace_ms=0))
    outcome = part.process([ev(0, 0, 0.1), ev(20, 1, 0.7), ev(40, 2, 0.2)])
    assert [r.figures for r in outcome.results] == [
        {"count": 1, "sum": value, "mean": value, "stddev": 0.0} for value in (0.1, 0.7, 0.2)
    ]


def test_a_result_emitted_again_after_a_crash_has_identical_figures() -> None:
    """Crash after the results went out but before the frontier was written: the restored
    partition emits them again, and a repeat must be identical to be recognised as one."""
    spec = WindowSpec(sliding(10), grace_ms=0)
    table: dict[bytes, bytes] = {}
    part = SlidingPartition(spec)
    persist(table, part.process([ev(0, 0, 0.1)]))
    persist(table, part.process([ev(20_000, 1, 0.7)]))  # bucket 0 is deleted
    sent = persist(table, part.process([ev(20_005, 2, 0.2)]), "results")
    again = SlidingPartition.restore(spec, sorted(table.items())).close_due().results
    assert [(r.event, r.figures) for r in again] == [(r.event, r.figures) for r in sent]


def test_state_of_a_quiet_key_is_deleted_once_its_results_are_out() -> None:
    """Module contract: a bucket is deleted once no pending event can reach it."""
    spec = WindowSpec(sliding(10), grace_ms=0)
    table: dict[bytes, bytes] = {}
    part = SlidingPartition(spec)
    persist(table, part.process([ev(5, 0), ev(12, 1)]))
    persist(table, part.close_due(stream_time=10 * BUCKET_MS))
    assert [key for key in table if key.startswith(BUCKET_PREFIX)] == []
    assert part.keys == {}


def test_buckets_behind_every_pending_window_are_deleted_and_not_needed() -> None:
    spec = WindowSpec(sliding(BUCKET_MS), grace_ms=0)
    table: dict[bytes, bytes] = {}
    part = SlidingPartition(spec)
    ts = [0, 5_000, 12_000, 21_000, 33_000, 39_000]
    for offset, t in enumerate(ts):
        persist(table, part.process([ev(t, offset, float(offset))]))
        part = SlidingPartition.restore(spec, sorted(table.items()))
    assert sorted(table) == sorted(
        [MARK_KEY, FRONTIER_KEY, bucket_key("k", 20_000), bucket_key("k", 30_000)]
    )
    last = part.process([ev(40_000, 6, 6.0)])
    assert counts(last) == [(40_000, 3)]  # 33_000, 39_000 and itself; 30_000 is the edge
    assert last.results[0].figures["sum"] == 15.0


def test_values_far_from_zero_keep_an_accurate_stddev() -> None:
    part = SlidingPartition(WindowSpec(sliding(100), grace_ms=0))
    values = [1e9 + x for x in (4.0, 7.0, 13.0, 16.0, 1.0, 2.0)]
    outcome = part.process([ev(i * 40, i, value) for i, value in enumerate(values)])
    windows = [values[max(i - 2, 0) : i + 1] for i in range(6)]
    for result, window in zip(outcome.results, windows, strict=True):
        want = moments(window)
        assert result.figures["count"] == want.count
        assert math.isclose(result.figures["stddev"], want.stddev, rel_tol=1e-6, abs_tol=1e-6)
        assert math.isclose(result.figures["mean"], want.mean, rel_tol=1e-12)


def test_a_long_run_of_one_key_matches_the_oracle_across_restarts() -> None:
    """Hundreds of events of one key (the retained list is compacted), restarted every batch."""
    size, grace = 50, 7
    raw = [("k", 3 * i - (i % 4) * 2, float((i * 37) % 23 - 11)) for i in range(700)]
    scenario = Scenario(size, grace, raw, list(range(len(raw))), 0, list(range(0, 700, 64)))
    calls = [*calls_from_batches(len(raw), scenario.ends), ("advance", 10**6)]
    run = run_sliding_oracle(raw, size, grace, calls)
    spec = scenario.spec
    table: dict[bytes, bytes] = {}
    part = SlidingPartition(spec)
    emitted: list[SlidingResult] = []
    for begin, end in itertools.pairwise([0, *scenario.ends, len(raw)]):
        emitted += persist(table, part.process(scenario.events[begin:end]))
        if end % 128 == 0:
            part = SlidingPartition.restore(spec, sorted(table.items()))
    emitted += persist(table, part.close_due(stream_time=10**6))
    assert [ident(r) for r in emitted] == [("k", r.index) for r in run.results.values()]
    for result in emitted:
        assert_same_figures(result, scenario, run)


def test_sliding_result_as_dict() -> None:
    part = SlidingPartition(WindowSpec(sliding(10), grace_ms=0))
    outcome = part.process([ev(3, 0, 2.0), ev(5, 1, 4.0)])
    assert outcome.results[1].as_dict("sensor_id") == {
        "sensor_id": "k",
        "ts": 5,
        "value": 4.0,
        "window_start": -5,
        "window_end": 5,
        "count": 2,
        "sum": 6.0,
        "mean": 3.0,
        "stddev": 1.0,
    }


def test_sliding_partition_needs_sliding_windows() -> None:
    with pytest.raises(TypeError, match="SlidingWindows"):
        SlidingPartition(WindowSpec(session(10), grace_ms=0))  # type: ignore[arg-type]


def test_a_bucket_written_and_deleted_in_the_same_batch_can_still_be_stored() -> None:
    """The outcome's updates are applied before its deletes, so each must be encodable even
    when the batch also retired the bucket (a batch spanning more than size + grace)."""
    part = SlidingPartition(WindowSpec(sliding(60_000), grace_ms=5_000))
    outcome = part.process([ev(0, 0, 1.0), ev(100_000, 1, 2.0)])
    assert bucket_key("k", 0) in outcome.deletes
    table: dict[bytes, bytes] = {}
    persist(table, outcome)
    assert bucket_key("k", 0) not in table


def test_a_crash_after_the_updates_of_a_long_batch_loses_nothing() -> None:
    """Hundreds of events of one key in one batch: the key's retained events are compacted while
    the batch emits; the bucket written for that batch must still hold every event whose result
    is not yet known to be out (the mark and frontier were not written)."""
    size, grace = 5, 0
    raw = [("k", 10_000 + i, float(i % 7)) for i in range(700)]
    scenario = Scenario(size, grace, raw, list(range(len(raw))), 0, [100])
    calls = [("process", 100), ("process", 700), ("advance", 10**6)]
    run = run_sliding_oracle(raw, size, grace, calls)
    events = scenario.events
    table: dict[bytes, bytes] = {}
    part = SlidingPartition(scenario.spec)
    emitted = persist(table, part.process(events[:100]))
    persist(table, part.process(events[100:]), "updates")  # crash before the mark
    part = SlidingPartition.restore(scenario.spec, sorted(table.items()))
    emitted += persist(table, part.close_due())
    emitted += persist(table, part.process(events[100:]))
    emitted += persist(table, part.close_due(stream_time=10**6))
    assert {r.event.offset for r in emitted} == set(run.results)
    for result in emitted:
        assert_same_figures(result, scenario, run)
