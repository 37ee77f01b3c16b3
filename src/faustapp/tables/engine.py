"""The event-time window engine: plain Python, fed per-partition batches, says what to persist.

Nothing here touches Kafka or Faust. A caller hands :meth:`PartitionWindows.process` the decoded
events of one input partition in offset order and receives a :class:`BatchOutcome`: the state
records to write, the final results to emit, the late events, and the state records to delete. The
caller must apply it in that order (updates, then the partition mark, then results, then deletions)
so that a crash at any point replays into the same results (README, "Guarantees").
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from functools import partial

from faustapp.tables.clock import PartitionClock
from faustapp.tables.events import Event
from faustapp.tables.state import (
    MARK_KEY,
    WINDOW_PREFIX,
    BatchOutcome,
    LateEvent,
    WindowResult,
    WindowSpec,
    WindowState,
    key_prefix,
    parse_window_key,
    window_key,
)
from faustapp.tables.windows import Window, interned_window

__all__ = [
    "MARK_KEY",
    "BatchOutcome",
    "Event",
    "LateEvent",
    "PartitionWindows",
    "WindowResult",
    "WindowSpec",
    "WindowState",
    "key_prefix",
    "parse_window_key",
    "window_key",
]


class PartitionWindows(PartitionClock):
    """Open windows, stream time and close schedule of one input partition.

    Stream time is the largest event time seen on the partition. A window is final once stream
    time >= its close time (end + grace; for sessions end + gap + grace); events for a final
    window are late. The close schedule is derived from the stored windows alone, so it survives
    restarts and rebalances.
    """

    def __init__(self, spec: WindowSpec) -> None:
        super().__init__()
        self.spec = spec
        self.open: dict[tuple[str, int], WindowState] = {}
        # Kept small per open key: a million open keys are a million of each.
        self._sessions = spec.sessions
        # key -> its window starts: sessions only (time windows find a key's windows through
        # the few distinct close times in ``_due``).
        self._by_key: dict[str, tuple[int, ...]] = {}
        # Sessions: a heap of (close time, key, start); a session's close time moves as it grows.
        # Time windows: a heap of close times, and the keys whose window closes at each (a time
        # window's start follows from its close time).
        self._schedule: list = []
        self._due: dict[int, list[str]] = {}
        self._repairs: list[bytes] = []  # stale records found by restore, deleted by close_due

    @classmethod
    def restore(cls, spec: WindowSpec, records: Iterable[tuple[bytes, bytes]]) -> PartitionWindows:
        """Rebuild from the partition's table records (after a restart, recovery or rebalance)."""
        part = cls(spec)
        for raw_key, raw_value in records:
            if raw_key == MARK_KEY:
                part.load_mark(raw_value)
            elif raw_key.startswith(WINDOW_PREFIX):
                part._track(WindowState.decode(spec, raw_key, raw_value))
        if spec.sessions:
            part._drop_absorbed_sessions()
        return part

    def _drop_absorbed_sessions(self) -> None:
        # A crash after a merge was persisted but before the absorbed sessions were deleted
        # leaves sessions lying inside the merged one; genuine sessions never overlap.
        for key, starts in list(self._by_key.items()):
            sessions = sorted((self.open[(key, s)] for s in starts), key=lambda w: w.window.start)
            for inner in sessions:
                for outer in sessions:
                    if outer is not inner and _contains(outer.window, inner.window):
                        self._untrack(inner)
                        self._repairs.append(inner.store_key)
                        break

    def _track(self, state: WindowState) -> None:
        key, start = state.key, state.window.start
        self.open[(key, start)] = state
        close_at = self.spec.close_at(state.window)
        if self._sessions:
            starts = self._by_key.get(key)
            if starts is None:
                self._by_key[key] = (start,)
            elif start not in starts:
                self._by_key[key] = (*starts, start)
            heapq.heappush(self._schedule, (close_at, key, start))
            return
        due = self._due.get(close_at)
        if due is None:
            self._due[close_at] = [key]
            heapq.heappush(self._schedule, close_at)
        else:
            due.append(key)

    def _untrack(self, state: WindowState) -> None:
        key, start = state.key, state.window.start
        self.open.pop((key, start), None)
        starts = self._by_key.get(key)  # sessions only
        if starts is not None:
            rest = tuple(s for s in starts if s != start)
            if rest:
                self._by_key[key] = rest
            else:
                del self._by_key[key]

    def windows_of(self, key: str) -> list[WindowState]:
        """The key's open windows, oldest first."""
        if self._sessions:
            starts = sorted(self._by_key.get(key, ()))
            return [self.open[(key, start)] for start in starts]
        behind = self.spec.grace_ms + self.spec.windows.size_ms  # type: ignore[union-attr]
        found = (self.open.get((key, close_at - behind)) for close_at in sorted(self._due))
        return [state for state in found if state is not None]

    def keys(self) -> Iterator[str]:
        """Keys with at least one open window."""
        if self._sessions:
            return iter(list(self._by_key))
        return iter(list(dict.fromkeys(key for key, _ in self.open)))

    def _new_state(self, key: str, window: Window) -> WindowState:
        return WindowState(key, window, [agg.create() for agg in self.spec.aggregates])

    def _fold(self, state: WindowState, event: Event) -> None:
        states = state.states
        for i, aggregate in enumerate(self.spec.aggregates):
            aggregate.add(states[i], event)
        state.applied_offset = event.offset

    def process(self, events: Iterable[Event], through_offset: int = -1) -> BatchOutcome:
        """Fold a batch of this partition's events (in offset order) into the open windows.

        ``through_offset`` is the last source offset the batch covered, including records that
        never became events (dead letters, forwarded records), so a replay skips them too.
        """
        outcome = BatchOutcome()
        dirty: dict[tuple[str, int], WindowState] = {}
        absorbed: list[bytes] = []
        where = self.spec.where
        if self.spec.sessions:
            for event in events:
                if event.offset <= self.applied_offset:
                    outcome.replayed += 1
                    continue
                self.applied_offset = event.offset
                # A filtered-out event is neither counted nor late; it still moves the clock.
                if where is None or where(event.record):
                    late = self._add_to_session(event, dirty, absorbed, outcome)
                    if late is None:
                        outcome.accepted += 1
                    else:
                        outcome.late.append(late)
                if event.ts > self.stream_time and not self.spec.watermarked:
                    self.stream_time = event.ts
        else:
            self._add_to_windows(events, dirty, outcome)
        self.applied_offset = max(self.applied_offset, through_offset)
        spec = self.spec
        outcome.updates = [
            (state.store_key, partial(state.encode, spec)) for state in dirty.values()
        ]
        outcome.mark = self._mark()
        self._close_due(outcome)
        outcome.deletes[:0] = absorbed
        return outcome

    def _mark(self) -> bytes:
        return self.mark()

    def _late(self, event: Event, window: Window) -> LateEvent:
        return LateEvent(
            event,
            window,
            self.stream_time,
            f"window [{window.start}, {window.end}) was final at stream time "
            f"{self.stream_time} (grace {self.spec.grace_ms} ms)",
        )

    def _add_to_windows(
        self,
        events: Iterable[Event],
        dirty: dict[tuple[str, int], WindowState],
        outcome: BatchOutcome,
    ) -> None:
        # The hot loop of every time-window pipeline: locals only, one call per aggregate.
        spec = self.spec
        windows = spec.windows
        size, step = windows.size_ms, windows.step_ms  # type: ignore[union-attr]
        behind = spec.grace_ms + size  # a window starting at or before stream time - this is final
        adders = [aggregate.add for aggregate in spec.aggregates]
        only = adders[0] if len(adders) == 1 else None
        open_windows = self.open
        applied, stream_time = self.applied_offset, self.stream_time
        # A stage fed by several partitions keeps the time its watermarks give it.
        limit = -1 if spec.watermarked else 1 << 62
        where = spec.where
        accepted = replayed = 0
        for event in events:
            offset = event.offset
            if offset <= applied:
                replayed += 1
                continue
            applied = offset
            ts, key = event.ts, event.key
            if where is not None and not where(event.record):
                if stream_time < ts < limit:  # filtered out, but the partition's clock moves
                    stream_time = ts
                continue
            if limit < 0 and event.source_time > stream_time:
                # forwarded: windows already final on the event's own partition stay untouched
                final_before = event.source_time - behind
            else:
                final_before = stream_time - behind
            lowest = ts - size + 1
            missed: int | None = None
            took = False
            for start in range(lowest + (-lowest) % step, ts - ts % step + 1, step):
                if start <= final_before:
                    if missed is None:
                        missed = start
                    continue
                took = True
                slot = (key, start)
                state = open_windows.get(slot)
                if state is None:
                    state = self._new_state(key, interned_window(start, start + size))
                    self._track(state)
                elif offset <= state.applied_offset:
                    continue
                if only is not None:
                    only(state.states[0], event)
                else:
                    states = state.states
                    for i, add in enumerate(adders):
                        add(states[i], event)
                state.applied_offset = offset
                dirty[slot] = state
            if took or missed is None:
                accepted += 1
            else:
                self.stream_time = stream_time  # the reason names the stream time it was late at
                outcome.late.append(self._late(event, Window(missed, missed + size)))
            if stream_time < ts < limit:
                stream_time = ts
        self.applied_offset, self.stream_time = applied, stream_time
        outcome.accepted += accepted
        outcome.replayed += replayed

    def _add_to_session(
        self,
        event: Event,
        dirty: dict[tuple[str, int], WindowState],
        absorbed: list[bytes],
        outcome: BatchOutcome,
    ) -> LateEvent | None:
        gap = self.spec.windows.gap_ms  # type: ignore[union-attr]
        key, ts = event.key, event.ts
        close_at = self.spec.close_at
        stream_time = self.stream_time
        touching = [  # a final session stays closed, even before the batch end emits it
            state
            for state in self.windows_of(key)
            if state.window.start - gap < ts < state.window.end + gap
            and close_at(state.window) > stream_time
        ]
        start = min([ts, *(s.window.start for s in touching)])
        end = max([ts, *(s.window.end for s in touching)])
        merged_window = Window(start, end)
        if self.stream_time >= self.spec.close_at(merged_window):
            return self._late(event, merged_window)
        if any(event.offset <= s.applied_offset for s in touching):
            return None  # a replay of an event these sessions already hold
        if len(touching) == 1 and touching[0].window.start == start:
            # The common case: the event falls in or extends one session's end. Fold it in
            # place; a new end gets its own schedule entry (the old one is then superseded).
            state = touching[0]
            if end != state.window.end:
                state.window = merged_window
                self._track(state)
            self._fold(state, event)
            dirty[(key, start)] = state
            return None
        occupant = self.open.get((key, start))
        if occupant is not None and all(occupant is not state for state in touching):
            # A final session not emitted yet (it closes at the batch end) holds the slot the
            # new one takes: emit it now. The new state overwrites its table record, so its
            # record is not deleted.
            self._untrack(occupant)
            outcome.results.append(WindowResult(key, occupant.window, occupant.figures(self.spec)))
        merged = self._new_state(key, merged_window)
        for state in touching:
            merged.states = [
                agg.merge(into, other)
                for agg, into, other in zip(
                    self.spec.aggregates, merged.states, state.states, strict=True
                )
            ]
            merged.applied_offset = max(merged.applied_offset, state.applied_offset)
            self._untrack(state)
            dirty.pop((key, state.window.start), None)
            if state.window.start != start:
                absorbed.append(state.store_key)
        self._fold(merged, event)
        self._track(merged)
        dirty[(key, start)] = merged
        return None

    def _close_due(self, outcome: BatchOutcome) -> None:
        if not self._sessions:
            self._close_due_windows(outcome)
            return
        schedule = self._schedule
        while schedule and schedule[0][0] <= self.stream_time:
            close_at, key, start = heapq.heappop(schedule)
            state = self.open.get((key, start))
            if state is None or self.spec.close_at(state.window) != close_at:
                continue  # superseded: merged away or extended (sessions)
            self._untrack(state)
            outcome.results.append(WindowResult(key, state.window, state.figures(self.spec)))
            outcome.deletes.append(state.store_key)

    def _close_due_windows(self, outcome: BatchOutcome) -> None:
        schedule, due, open_windows = self._schedule, self._due, self.open
        behind = self.spec.grace_ms + self.spec.windows.size_ms  # type: ignore[union-attr]
        results, deletes = outcome.results, outcome.deletes
        while schedule and schedule[0] <= self.stream_time:
            close_at = heapq.heappop(schedule)
            start = close_at - behind
            for key in sorted(set(due.pop(close_at, ()))):
                state = open_windows.get((key, start))
                if state is None:
                    continue
                self._untrack(state)
                results.append(WindowResult(key, state.window, state.figures(self.spec)))
                deletes.append(state.store_key)

    def close_due(self, stream_time: int | None = None) -> BatchOutcome:
        """Close windows final at the restored stream time (a crash between emit and delete),
        or at ``stream_time`` when an idle partition's clock is moved forward."""
        if stream_time is not None and stream_time > self.stream_time:
            self.stream_time = stream_time
        outcome = BatchOutcome(mark=self._mark())
        self._close_due(outcome)
        outcome.deletes.extend(self._repairs)
        self._repairs = []
        return outcome


def _contains(outer: Window, inner: Window) -> bool:
    return outer.start <= inner.start and inner.end <= outer.end
