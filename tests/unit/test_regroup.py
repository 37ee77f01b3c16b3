"""Regrouped windows end to end, in memory: every input partition judges lateness by its own
stream time and forwards the rest through repartition logs, followed by its stream time as a
watermark; each repartition partition windows what it reads with the minimum watermark as its
clock, the way ``WatermarkedRouter`` folds a fetched batch.

The oracle is brute force over the raw per-partition event lists and never imports the engine:
an event is late when the stream time of its own input partition before it has passed its last
window's end + grace; a counted event belongs to each of its windows; a window is final once the
smallest final stream time of all input partitions has passed its end + grace.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from faustapp.tables.engine import (
    MARK_KEY,
    BatchOutcome,
    Event,
    PartitionWindows,
    WindowResult,
    WindowSpec,
)
from faustapp.tables.measures import Count, CountBy, Sum
from faustapp.tables.panes import PanedWindows, paned
from faustapp.tables.regroup import Forward, RegroupPartition, RegroupSpec
from faustapp.tables.windows import HoppingWindows, hopping, tumbling

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GROUPS = ("a", "b", "ключ", None)
Slot = tuple[str, int, int]


# --------------------------------------------------------------------------------------------
# The two halves, driven as the runtime drives them


@dataclass(frozen=True)
class Message:
    """One record of a repartition partition's log: a forwarded record with its source
    position, or a watermark."""

    offset: int
    source: int
    record: Any = None
    position: int | None = None
    index: int = 0
    watermark: int | None = None
    source_time: int = -1


def apply_outcome(table: dict[bytes, bytes], outcome: BatchOutcome) -> list[Any]:
    """Apply an outcome to a dict standing in for the table, in the contract's order; returns
    the results it emits."""
    for key, value in outcome.encoded_updates():
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    if outcome.mark:
        table[MARK_KEY] = outcome.mark
    emitted = list(outcome.results)
    for key, value in outcome.after_results:
        table[key] = value
    for key in outcome.deletes:
        table.pop(key, None)
    return emitted


class Downstream:
    """One partition of a repartition topic and the stage that reads it: batches of its log are
    folded exactly as ``WatermarkedRouter._fold_batch`` folds them, and every outcome is applied
    to its table at once."""

    def __init__(
        self,
        spec: WindowSpec,
        feeding: int,
        key_of: Callable[[Any], Any],
        ts_of: Callable[[Any], int],
        first_offset: int = 0,
        decode: Callable[[Any], Any] | None = None,
    ) -> None:
        self.spec = spec
        self.feeding = feeding
        self.key_of, self.ts_of = key_of, ts_of
        self.decode = decode  # how the stage reads a forwarded record back, if not as is
        self.log: list[Message] = []
        self.next_offset = first_offset
        self.read = 0  # index of the first log record not handed to the stage yet
        self.part = engine_for(spec)(spec)
        self.table: dict[bytes, bytes] = {}
        self.emitted: list[WindowResult] = []
        self.late: list[Any] = []
        self.restores = 0

    def append(self, source: int, **fields: Any) -> None:
        self.log.append(Message(self.next_offset, source, **fields))
        self.next_offset += 1

    def apply(self, outcome: BatchOutcome) -> None:
        self.emitted += apply_outcome(self.table, outcome)
        self.late += outcome.late

    def consume(self, count: int | None = None) -> None:
        """Hand the next ``count`` log records (all unread ones when None) to the stage."""
        end = len(self.log) if count is None else min(len(self.log), self.read + count)
        batch = self.log[self.read : end]
        self.read = end
        if batch:
            self.fold(batch)

    def fold(self, batch: Sequence[Message]) -> None:
        part = self.part
        floor = part.applied_offset
        events: list[Event] = []
        for message in batch:
            offset = message.offset
            if offset <= floor:
                continue
            if message.watermark is not None:
                if events:
                    self.apply(part.process(events, through_offset=offset - 1))
                    events = []
                moved = part.watermark(message.source, message.watermark, self.feeding)
                part.applied_offset = max(part.applied_offset, offset)
                self.apply(part.close_due(moved))
                continue
            if message.position is not None and part.forwarded_before(
                message.source, message.position, message.index
            ):
                continue
            record = message.record if self.decode is None else self.decode(message.record)
            events.append(
                Event(self.key_of(record), self.ts_of(record), record, offset, message.source_time)
            )
        self.apply(part.process(events, through_offset=batch[-1].offset))

    def restore(self, rng: random.Random) -> None:
        """Rebuild the stage from its table (records in any order), check that it kept its clock,
        watermarks and dedup positions, and re-read from any earlier position of the log."""
        before = self.part
        records = list(self.table.items())
        rng.shuffle(records)
        after = engine_for(self.spec).restore(self.spec, records)
        assert after.stream_time == before.stream_time
        assert after.applied_offset == before.applied_offset
        assert after.sources == before.sources
        assert open_figures(after) == open_figures(before)
        leftovers = after.close_due()
        assert leftovers.results == []  # everything final was emitted and deleted already
        self.apply(leftovers)
        self.part = after
        self.read = rng.randint(0, self.read)
        self.restores += 1


def engine_for(spec: WindowSpec) -> type[PartitionWindows] | type[PanedWindows]:
    """The engine the runtime gives ``spec`` (panes for overlapping hopping windows)."""
    return PanedWindows if paned(spec) else PartitionWindows


def open_figures(part: PartitionWindows | PanedWindows) -> dict[Slot, dict[str, Any]]:
    return {
        (window.key, window.window.start, window.window.end): window.figures(part.spec)
        for key in list(part.keys())
        for window in part.windows_of(key)
    }


def home_of(key: str, partitions: int) -> int:
    """Any fixed routing of keys to partitions will do (the runtime uses murmur2)."""
    return sum(key.encode()) % partitions


class Upstream:
    """One input partition of a regrouped pipeline, applied as ``RegroupPipeline.apply`` does:
    forwards, then the watermark when stream time moved, then the mark."""

    def __init__(self, number: int, spec: RegroupSpec, events: list[Event]) -> None:
        self.number = number
        self.spec = spec
        self.events = events
        self.position = 0
        self.part = RegroupPartition(spec)
        self.table: dict[bytes, bytes] = {}
        self.sent: int | None = None
        self.late: list[Any] = []
        self.steps = 0
        self.replays = 0

    @property
    def done(self) -> bool:
        return self.position >= len(self.events)

    def step(self, size: int, downstreams: list[Downstream], replay: bool) -> None:
        batch = self.events[self.position : self.position + size]
        through = batch[-1].offset
        outcome = self.part.process(batch, through_offset=through)
        self.late += outcome.late
        self.send(outcome, downstreams)
        if replay:
            # A crash after the forwards and watermark went out, before the mark: the restarted
            # partition starts from its stored mark and sends the same batch again.
            self.part = RegroupPartition.restore(self.spec, self.table.items())
            self.sent = None
            again = self.part.process(batch, through_offset=through)
            assert again.results == outcome.results
            assert [late.event for late in again.late] == [late.event for late in outcome.late]
            self.send(again, downstreams)
            outcome = again
            self.replays += 1
        apply_outcome(self.table, outcome)
        self.position += len(batch)
        self.steps += 1

    def send(self, outcome: BatchOutcome, downstreams: list[Downstream]) -> None:
        for forward in outcome.results:
            assert isinstance(forward, Forward)
            target = downstreams[home_of(forward.key, len(downstreams))]
            target.append(
                self.number,
                record=forward.event.record,
                position=forward.event.offset,
                index=forward.index,
                source_time=forward.source_time,
            )
        stream_time = self.part.stream_time
        if stream_time >= 0 and stream_time != self.sent:
            for target in downstreams:
                target.append(self.number, watermark=stream_time)
            self.sent = stream_time


@dataclass
class Schedule:
    """How one run interleaves the halves: which input partition runs next and how much of it,
    when repartition partitions read, and whether batches are replayed or stages restored."""

    rng: random.Random
    replay_chance: float = 0.0
    restore_chance: float = 0.0


def run_regrouped(
    spec: RegroupSpec,
    window_spec: WindowSpec,
    inputs: list[list[Event]],
    partitions: int,
    schedule: Schedule,
    key_of: Callable[[Any], Any],
    ts_of: Callable[[Any], int],
    decode: Callable[[Any], Any] | None = None,
) -> tuple[list[Upstream], list[Downstream]]:
    rng = schedule.rng
    upstreams = [Upstream(n, spec, events) for n, events in enumerate(inputs)]
    downstreams = [
        Downstream(window_spec, len(inputs), key_of, ts_of, rng.randint(0, 5), decode)
        for _ in range(partitions)
    ]
    speeds = [rng.choice((1, 1, 2, 5)) for _ in upstreams]
    while True:
        waiting = [up for up in upstreams if not up.done]
        if not waiting:
            break
        up = rng.choices(waiting, weights=[speeds[up.number] for up in waiting])[0]
        up.step(rng.randint(1, 4), downstreams, rng.random() < schedule.replay_chance)
        for down in downstreams:
            if rng.random() < 0.5:
                down.consume(rng.randint(1, 6))
            if rng.random() < schedule.restore_chance:
                down.restore(rng)
    for down in downstreams:
        while down.read < len(down.log):
            down.consume(rng.randint(1, 8))
    return upstreams, downstreams


# --------------------------------------------------------------------------------------------
# The oracle


@dataclass(frozen=True)
class Rec:
    """An input record, grouped by ``group``; ``eid`` shows which events a window holds."""

    eid: str
    group: str | None
    ts: int
    value: int


def rejects_multiples_of_three(record: Rec) -> bool:
    return record.value % 3 != 0


@dataclass
class Expected:
    strict: dict[Slot, set[str]] = field(default_factory=dict)
    """Events counted in windows not yet final on their own partition when they arrived."""
    loose: dict[Slot, set[str]] = field(default_factory=dict)
    """Events that were not late, in every window they belong to."""
    late: list[list[tuple[int, int]]] = field(default_factory=list)
    """Per input partition: (offset, stream time before it) of each late event."""
    closed_by: int = -1
    values: dict[str, int] = field(default_factory=dict)

    def final(self, slot: Slot, grace: int) -> bool:
        return slot[2] + grace <= self.closed_by


def windows_of(ts: int, size: int, step: int) -> list[tuple[int, int]]:
    return [(start, start + size) for start in range(ts - size + 1, ts + 1) if start % step == 0]


def oracle(
    inputs: list[list[Event]], size: int, step: int, grace: int, where: Callable | None
) -> Expected:
    expected = Expected()
    finals = []
    for events in inputs:
        stream = -1
        late = []
        for ev in events:
            record = ev.record
            expected.values[record.eid] = record.value
            if where is None or where(record):
                windows = windows_of(ev.ts, size, step)
                if stream >= max(end for _, end in windows) + grace:
                    late.append((ev.offset, stream))
                elif record.group is not None:
                    for start, end in windows:
                        slot = (record.group, start, end)
                        expected.loose.setdefault(slot, set()).add(record.eid)
                        if stream < end + grace:
                            expected.strict.setdefault(slot, set()).add(record.eid)
            stream = max(stream, ev.ts)
        expected.late.append(late)
        finals.append(stream)
    expected.closed_by = min(finals)
    return expected


# --------------------------------------------------------------------------------------------
# Scenarios


@dataclass(frozen=True)
class Scenario:
    size: int
    step: int
    grace: int
    filtered: bool
    inputs: list[list[Event]]
    partitions: int

    @property
    def where(self) -> Callable[[Rec], bool] | None:
        return rejects_multiples_of_three if self.filtered else None

    @property
    def windows(self) -> HoppingWindows:
        return hopping(self.size, self.step)

    @property
    def regroup(self) -> RegroupSpec:
        return RegroupSpec(self.windows, self.grace, attrgetter("group"), where=self.where)

    @property
    def window_spec(self) -> WindowSpec:
        measures = {"n": Count(), "ids": CountBy("eid"), "total": Sum("value")}
        # As the runtime builds the downstream half: filtered upstream, watermarked clock.
        return WindowSpec.of(self.windows, self.grace, measures, watermarked=True)

    def run(self, schedule: Schedule) -> tuple[list[Upstream], list[Downstream]]:
        return run_regrouped(
            self.regroup,
            self.window_spec,
            self.inputs,
            self.partitions,
            schedule,
            attrgetter("group"),
            attrgetter("ts"),
        )

    def oracle(self) -> Expected:
        return oracle(self.inputs, self.size, self.step, self.grace, self.where)


@st.composite
def partition_events(draw: st.DrawFn, number: int, max_events: int, closing: bool) -> list[Event]:
    count = draw(st.integers(0, max_events))
    ts = draw(st.integers(0, 40))
    offset = draw(st.integers(0, 3))
    events = []
    for i in range(count):
        move = draw(st.sampled_from(["same", "forward", "forward", "back", "jump", "far-back"]))
        if move == "forward":
            ts += draw(st.integers(1, 8))
        elif move == "back":
            ts = max(0, ts - draw(st.integers(1, 8)))
        elif move == "jump":
            ts += draw(st.integers(15, 80))
        elif move == "far-back":
            ts = max(0, ts - draw(st.integers(15, 80)))
        record = Rec(f"{number}-{i}", draw(st.sampled_from(GROUPS)), ts, draw(st.integers(0, 9)))
        events.append(Event(f"user-{number}", ts, record, offset))
        offset += draw(st.integers(1, 3))
    if closing:  # an event far ahead, so that most windows end up final
        record = Rec(f"{number}-end", draw(st.sampled_from(GROUPS)), ts + 200, 1)
        events.append(Event(f"user-{number}", ts + 200, record, offset))
    return events


@st.composite
def scenarios(draw: st.DrawFn, hopping_windows: bool, max_events: int = 25) -> Scenario:
    size = draw(st.integers(1, 30))
    step = draw(st.integers(1, size)) if hopping_windows else size
    if hopping_windows and step == size:
        step = max(1, size // 2)
    grace = draw(st.sampled_from([0, 0, 3, 10, 25]))
    count = draw(st.integers(1, 3))
    closing = draw(st.booleans())
    inputs = [draw(partition_events(n, max_events, closing)) for n in range(count)]
    return Scenario(size, step, grace, draw(st.booleans()), inputs, draw(st.integers(1, 3)))


def emitted_by_slot(downstreams: list[Downstream]) -> dict[Slot, dict[str, Any]]:
    emitted: dict[Slot, dict[str, Any]] = {}
    for down in downstreams:
        for result in down.emitted:
            slot = (result.key, result.window.start, result.window.end)
            assert slot not in emitted, f"{slot} emitted twice"
            emitted[slot] = result.figures
    return emitted


def still_open(downstreams: list[Downstream]) -> dict[Slot, dict[str, Any]]:
    figures: dict[Slot, dict[str, Any]] = {}
    for down in downstreams:
        opened = open_figures(down.part)
        assert not set(opened) & set(figures)
        figures.update(opened)
    return figures


def check_common(scenario: Scenario, ups: list[Upstream], downs: list[Downstream]) -> Expected:
    """What holds for every window kind: late events, clocks, routing, figures' consistency."""
    expected = scenario.oracle()
    for up, late in zip(ups, expected.late, strict=True):
        assert [(lt.event.offset, lt.stream_time) for lt in up.late] == late
        for lt in up.late:
            assert lt.stream_time >= lt.window.end + scenario.grace
    for number, down in enumerate(downs):
        assert down.part.stream_time == expected.closed_by
        assert down.late == []  # lateness is judged upstream only
        for result in down.emitted:
            assert home_of(result.key, len(downs)) == number
            assert result.window.end + scenario.grace <= expected.closed_by
    for figures in [*emitted_by_slot(downs).values(), *still_open(downs).values()]:
        ids = figures["ids"]
        assert set(ids.values()) == {1}, f"an event counted twice in one window: {ids}"
        assert figures["n"] == len(ids)
        assert figures["total"] == sum(expected.values[eid] for eid in ids)
    event(f"late: {min(sum(map(len, expected.late)), 3)}+")
    event(f"emitted: {min(len(emitted_by_slot(downs)), 3)}+")
    return expected


# --------------------------------------------------------------------------------------------
# Properties


@PROPERTY
@given(scenarios(hopping_windows=False), st.randoms(use_true_random=False), st.data())
def test_regrouped_tumbling_windows_equal_the_oracle_whatever_the_interleaving(
    scenario: Scenario, rng: random.Random, data: st.DataObject
) -> None:
    """Tumbling windows: each final result holds exactly the events not late on their own
    partition; two runs with different speeds, batches, replays and restores agree exactly."""
    replayed = Schedule(random.Random(rng.random()), replay_chance=0.3, restore_chance=0.1)
    ups, downs = scenario.run(replayed)
    expected = check_common(scenario, ups, downs)
    assert expected.strict == expected.loose  # one window per event
    emitted = emitted_by_slot(downs)
    final = {s: ids for s, ids in expected.strict.items() if expected.final(s, scenario.grace)}
    assert {slot: set(f["ids"]) for slot, f in emitted.items()} == final
    opened = {s: ids for s, ids in expected.strict.items() if not expected.final(s, scenario.grace)}
    assert {slot: set(f["ids"]) for slot, f in still_open(downs).items()} == opened

    seed = data.draw(st.integers(0, 2**32 - 1), label="second interleaving")
    _, other = scenario.run(Schedule(random.Random(seed)))
    assert emitted_by_slot(other) == emitted
    assert still_open(other) == still_open(downs)
    event(f"replayed batches: {min(sum(up.replays for up in ups), 2)}+")
    event(f"restores: {min(sum(down.restores for down in downs), 2)}+")


@PROPERTY
@given(scenarios(hopping_windows=True), st.randoms(use_true_random=False), st.data())
def test_regrouped_hopping_windows_equal_the_oracle_whatever_the_interleaving(
    scenario: Scenario, rng: random.Random, data: st.DataObject
) -> None:
    """Hopping windows: a window holds exactly the events that arrived while the window was
    still open on the event's own partition; nothing is counted twice, replays and restores
    included, and another interleaving gives the same windows."""
    ups, downs = scenario.run(Schedule(rng, replay_chance=0.3, restore_chance=0.1))
    expected = check_common(scenario, ups, downs)
    got = {slot: set(f["ids"]) for slot, f in emitted_by_slot(downs).items()}
    got.update({slot: set(f["ids"]) for slot, f in still_open(downs).items()})
    assert got == {slot: ids for slot, ids in expected.strict.items() if ids}
    seed = data.draw(st.integers(0, 2**32 - 1), label="second interleaving")
    _, other = scenario.run(Schedule(random.Random(seed)))
    assert emitted_by_slot(other) == emitted_by_slot(downs)
    assert still_open(other) == still_open(downs)
    for slot in emitted_by_slot(downs):
        assert expected.final(slot, scenario.grace)
    event(f"partly-late events: {expected.strict != expected.loose}")


@PROPERTY
@given(scenarios(hopping_windows=False, max_events=15), st.randoms(use_true_random=False))
def test_replaying_every_upstream_batch_changes_nothing(
    scenario: Scenario, rng: random.Random
) -> None:
    seed = rng.random()
    _, once = scenario.run(Schedule(random.Random(seed)))
    ups, twice = scenario.run(Schedule(random.Random(seed), replay_chance=1.0))
    assert all(up.replays == up.steps for up in ups)
    assert emitted_by_slot(twice) == emitted_by_slot(once)
    assert still_open(twice) == still_open(once)
    for a, b in zip(once, twice, strict=True):
        assert a.part.stream_time == b.part.stream_time
        assert a.part.sources == b.part.sources


# --------------------------------------------------------------------------------------------
# Worked examples


def rec(eid: str, group: str | None, ts: int, value: int = 1) -> Rec:
    return Rec(eid, group, ts, value)


def ev(partition: int, offset: int, record: Rec) -> Event:
    return Event(f"user-{partition}", record.ts, record, offset)


def drive(
    spec: RegroupSpec, window_spec: WindowSpec, steps: list[tuple[int, list[Event]]], inputs: int
) -> tuple[list[Upstream], Downstream]:
    """One downstream partition; ``steps`` are (input partition, batch) in processing order,
    each read downstream at once."""
    down = Downstream(window_spec, inputs, attrgetter("group"), attrgetter("ts"))
    ups = [Upstream(n, spec, []) for n in range(inputs)]
    for number, batch in steps:
        up = ups[number]
        up.events += batch
        up.step(len(batch), [down], replay=False)
        down.consume()
    return ups, down


def test_a_window_closes_only_when_every_input_partition_has_passed_it() -> None:
    windows = tumbling(10)
    spec = RegroupSpec(windows, 0, attrgetter("group"))
    window_spec = WindowSpec.of(windows, 0, {"n": Count()}, watermarked=True)
    ups, down = drive(
        spec,
        window_spec,
        [
            (0, [ev(0, 0, rec("x", "g", 3))]),
            (0, [ev(0, 1, rec("y", "g", 50))]),  # partition 0 is far ahead
        ],
        inputs=2,
    )
    assert down.emitted == []
    assert down.part.stream_time == -1  # partition 1 never said where it is
    ups[1].events.append(ev(1, 0, rec("z", "g", 9)))  # not late on its own partition
    ups[1].step(1, [down], replay=False)
    down.consume()
    assert down.emitted == []  # partition 1 is at 9: [0, 10) is still open
    ups[1].events.append(ev(1, 1, rec("w", "h", 10)))
    ups[1].step(1, [down], replay=False)
    down.consume()
    assert [(r.key, r.window.start, r.figures["n"]) for r in down.emitted] == [("g", 0, 2)]
    assert down.part.stream_time == 10


def test_an_event_late_on_its_own_partition_is_late_even_if_another_lags() -> None:
    windows = tumbling(10)
    spec = RegroupSpec(windows, 2, attrgetter("group"))
    window_spec = WindowSpec.of(windows, 2, {"n": Count()}, watermarked=True)
    ups, down = drive(
        spec,
        window_spec,
        [(0, [ev(0, 0, rec("a", "g", 12)), ev(0, 1, rec("b", "g", 5))])],
        inputs=2,
    )
    assert [late.event.offset for late in ups[0].late] == [1]
    assert ups[0].late[0].stream_time == 12
    assert down.emitted == []


def test_an_event_without_the_group_field_is_not_forwarded_but_moves_the_clock() -> None:
    windows = tumbling(10)
    spec = RegroupSpec(windows, 0, attrgetter("group"))
    part = RegroupPartition(spec)
    outcome = part.process([ev(0, 0, rec("a", None, 30)), ev(0, 1, rec("b", "g", 5))])
    assert outcome.results == []
    assert [late.event.offset for late in outcome.late] == [1]
    assert part.stream_time == 30


def test_hopping_results_do_not_depend_on_which_partition_ran_first() -> None:
    windows = hopping(10, 5)
    spec = RegroupSpec(windows, 0, attrgetter("group"))
    window_spec = WindowSpec.of(windows, 0, {"n": Count(), "ids": CountBy("eid")}, True)
    a_first = [
        (0, [ev(0, 0, rec("a1", "g", 12))]),
        (1, [ev(1, 0, rec("b1", "h", 11))]),
        (0, [ev(0, 1, rec("a2", "g", 8))]),  # [0, 10) is final on partition 0 (at 12)
        (0, [ev(0, 2, rec("a3", "z", 100))]),
        (1, [ev(1, 1, rec("b2", "z", 100))]),
    ]
    b_last = [a_first[0], a_first[2], a_first[1], a_first[3], a_first[4]]
    results = []
    for steps in (a_first, b_last):
        _, down = drive(spec, window_spec, copy.deepcopy(steps), inputs=2)
        results.append(sorted((r.key, r.window.start, r.figures["n"]) for r in down.emitted))
    # A single partition would count a2 in [5, 15) only; with partition 1 lagging behind 10,
    # the regrouped window [0, 10) of g is created for it and emitted.
    assert results[0] == results[1]
