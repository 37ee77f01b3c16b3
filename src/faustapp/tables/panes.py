"""Hopping windows by pane slicing: each event is folded once, into the pane of gcd(size, step)
that holds it, and a window's figures are the merge of its panes when it closes.

A 5-minute window every minute thus costs one aggregate update per event instead of five. The
figures are those of the per-window engine: counts, sums, extremes and first/last exactly, mean
and variance up to rounding (partial moments merged), sketches within their stated error.

Which events a window holds is decided exactly as the per-window engine decides it: an event
counts in the windows over it that are still open by the partition's stream time when it arrives
(for a stage fed through a repartition topic: still open on the event's own input partition).
A pane is therefore kept in **generations**: one per first window still open when its events
arrived (almost always one; a second only for an event that comes after some window over the pane
became final, within the grace of a later one). A window merges the generations of its panes that
began while it was open. The generation of an event is a function of the stream time and the
event alone, so a replay after a crash, whatever reached the table, rebuilds the same windows.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson

from faustapp.tables.clock import MARK_KEY, PartitionClock
from faustapp.tables.events import Event
from faustapp.tables.state import (
    WINDOW_PREFIX,
    BatchOutcome,
    LateEvent,
    WindowResult,
    WindowSpec,
)
from faustapp.tables.windows import HoppingWindows, Window

PANE_PREFIX = b"p"
FRONTIER_KEY = b"m\x00emitted"
_OFFSET = 1 << 63
_NOTHING_EMITTED = -(1 << 62)
_NEVER = 1 << 62


def paned(spec: WindowSpec) -> bool:
    """Whether ``spec`` runs on panes: overlapping hopping windows."""
    windows = spec.windows
    return isinstance(windows, HoppingWindows) and windows.step_ms < windows.size_ms


def pane_key(key: str, start: int, first_window: int) -> bytes:
    """State-store key of one generation of a key's pane."""
    return (
        PANE_PREFIX
        + key.encode()
        + b"\x00"
        + (start + _OFFSET).to_bytes(8, "big")
        + (first_window + _OFFSET).to_bytes(8, "big")
    )


def _parse_pane_key(raw: bytes) -> tuple[str, int, int]:
    return (
        raw[1:-17].decode(),
        int.from_bytes(raw[-16:-8], "big") - _OFFSET,
        int.from_bytes(raw[-8:], "big") - _OFFSET,
    )


class Pane:
    """One generation of a key's pane: running aggregates of the events that arrived while
    ``first_window`` was the earliest open window over it, and the last offset folded in."""

    __slots__ = ("first_window", "states", "applied_offset")

    def __init__(self, first_window: int, states: list[Any], applied_offset: int = -1) -> None:
        self.first_window = first_window
        self.states = states
        self.applied_offset = applied_offset

    def encode(self, spec: WindowSpec) -> bytes:
        """Serialised form for the table and its changelog."""
        dumped = [agg.dump(state) for agg, state in zip(spec.aggregates, self.states, strict=True)]
        return orjson.dumps([self.applied_offset, dumped])

    @classmethod
    def decode(cls, spec: WindowSpec, first_window: int, raw: bytes) -> Pane:
        """Rebuild from a table record."""
        applied_offset, dumped = orjson.loads(raw)
        states = [agg.load(data) for agg, data in zip(spec.aggregates, dumped, strict=True)]
        return cls(first_window, states, applied_offset)


@dataclass(frozen=True, slots=True)
class OpenWindow:
    """An open window's running figures: its panes merged (for views)."""

    key: str
    window: Window
    states: list[Any]

    def figures(self, spec: WindowSpec) -> dict[str, Any]:
        """Current figures of every aggregate."""
        return spec.result(self.states)


class PanedWindows(PartitionClock):
    """Panes, stream time and close schedule of one input partition (see module docstring)."""

    def __init__(self, spec: WindowSpec) -> None:
        if not paned(spec):
            raise TypeError("PanedWindows needs overlapping hopping windows")
        super().__init__()
        self.spec = spec
        windows: HoppingWindows = spec.windows  # type: ignore[assignment]
        self.size, self.step = windows.size_ms, windows.step_ms
        self.pane = math.gcd(self.size, self.step)
        self.grace = spec.grace_ms
        self.emitted_through = _NOTHING_EMITTED  # windows closing at or before this are out
        self.open: dict[tuple[str, int], list[Pane]] = {}  # (key, pane start) -> generations
        self._by_key: dict[str, list[int]] = {}  # key -> its pane starts
        # close time -> keys with a window closing then; a heap of the distinct close times
        self._closing: dict[int, set[str]] = {}
        self._times: list[int] = []
        self._repairs: list[bytes] = []

    @classmethod
    def restore(cls, spec: WindowSpec, records: Iterable[tuple[bytes, bytes]]) -> PanedWindows:
        """Rebuild from the partition's table records (after a restart, recovery or rebalance):
        windows not known to be emitted are scheduled again, and close as their figures were."""
        part = cls(spec)
        panes: list[tuple[bytes, bytes]] = []
        for raw_key, raw_value in records:
            if raw_key == MARK_KEY:
                part.load_mark(raw_value)
            elif raw_key == FRONTIER_KEY:
                part.emitted_through = orjson.loads(raw_value)
            elif raw_key.startswith(PANE_PREFIX):
                panes.append((raw_key, raw_value))
            elif raw_key.startswith(WINDOW_PREFIX):
                part._repairs.append(raw_key)  # a window of the per-window layout: not kept
        for raw_key, raw_value in panes:
            key, start, first_window = _parse_pane_key(raw_key)
            if part._last_window(start) + part.size + part.grace <= part.emitted_through:
                part._repairs.append(raw_key)  # its windows were all emitted
                continue
            part._add(key, start, Pane.decode(spec, first_window, raw_value))
        return part

    # --- geometry ------------------------------------------------------------------------

    def _first_window(self, pane_start: int) -> int:
        lowest = pane_start - self.size + self.pane
        return lowest + (-lowest) % self.step

    def _last_window(self, pane_start: int) -> int:
        return pane_start - pane_start % self.step

    def _add(self, key: str, start: int, pane: Pane) -> None:
        """Track a pane generation and schedule its windows not emitted yet."""
        generations = self.open.get((key, start))
        if generations is None:
            self.open[(key, start)] = [pane]
            self._by_key.setdefault(key, []).append(start)
        else:
            generations.append(pane)
        reach = self.size + self.grace
        emitted, closing = self.emitted_through, self._closing
        for window_start in range(pane.first_window, self._last_window(start) + 1, self.step):
            close_at = window_start + reach
            if close_at <= emitted:
                continue
            keys = closing.get(close_at)
            if keys is None:
                keys = closing[close_at] = set()
                heapq.heappush(self._times, close_at)
            keys.add(key)

    # --- folding -------------------------------------------------------------------------

    def process(self, events: Iterable[Event], through_offset: int = -1) -> BatchOutcome:
        """Fold a batch of this partition's events (in offset order) into their panes, then
        close the windows stream time has passed."""
        outcome = BatchOutcome()
        dirty: dict[tuple[str, int, int], Pane] = {}
        spec = self.spec
        adders = [aggregate.add for aggregate in spec.aggregates]
        only = adders[0] if len(adders) == 1 else None
        panes = self.open
        where = spec.where
        pane_size, step, size = self.pane, self.step, self.size
        reach = size + self.grace
        # A stage fed by several partitions keeps the time its watermarks give it, and a
        # forwarded event skips the windows already final on its own partition.
        limit = -1 if spec.watermarked else 1 << 62
        applied, stream_time = self.applied_offset, self.stream_time
        accepted = replayed = 0
        for event in events:
            offset = event.offset
            if offset <= applied:
                replayed += 1
                continue
            applied = offset
            ts = event.ts
            if where is None or where(event.record):
                last = ts - ts % step
                # The earliest window over the event's pane that is still open.
                clock = event.source_time if event.source_time > stream_time else stream_time
                lowest = clock - reach + 1
                first = lowest + (-lowest) % step
                pane_start = ts - ts % pane_size
                floor = pane_start - size + pane_size
                floor += (-floor) % step
                if first < floor:
                    first = floor
                if first > last:  # every window over it is final
                    outcome.late.append(self._late(event, clock))
                else:
                    accepted += 1
                    key = event.key
                    generations = panes.get((key, pane_start))
                    pane = None
                    if generations is not None:
                        for candidate in generations:
                            if candidate.first_window == first:
                                pane = candidate
                                break
                    if pane is None:
                        pane = Pane(first, [agg.create() for agg in spec.aggregates])
                        self._add(key, pane_start, pane)
                    if offset > pane.applied_offset:
                        if only is not None:
                            only(pane.states[0], event)
                        else:
                            states = pane.states
                            for i, add in enumerate(adders):
                                add(states[i], event)
                        pane.applied_offset = offset
                        dirty[(key, pane_start, first)] = pane
            if stream_time < ts < limit:
                stream_time = ts
        self.applied_offset, self.stream_time = max(applied, through_offset), stream_time
        outcome.updates = [
            (pane_key(key, start, first), partial(pane.encode, spec))
            for (key, start, first), pane in dirty.items()
        ]
        outcome.mark = self.mark()
        outcome.accepted += accepted
        outcome.replayed += replayed
        self._close_due(outcome)
        return outcome

    def _late(self, event: Event, stream_time: int) -> LateEvent:
        ts = event.ts
        lowest = ts - self.size + 1
        start = lowest + (-lowest) % self.step
        return LateEvent(
            event,
            Window(start, start + self.size),
            stream_time,
            f"window [{start}, {start + self.size}) was final at stream time "
            f"{stream_time} (grace {self.grace} ms)",
        )

    # --- closing -------------------------------------------------------------------------

    def _merged(self, key: str, start: int) -> list[Any] | None:
        """The window's states: the generations of its panes that began while it was open
        merged; None when there are none."""
        aggregates = self.spec.aggregates
        merged: list[Any] | None = None
        for pane_start in range(start, start + self.size, self.pane):
            for pane in self.open.get((key, pane_start), ()):
                if pane.first_window > start:
                    continue
                if merged is None:
                    merged = [agg.create() for agg in aggregates]
                merged = [
                    agg.merge(into, other)
                    for agg, into, other in zip(aggregates, merged, pane.states, strict=True)
                ]
        return merged

    def _close_due(self, outcome: BatchOutcome) -> None:
        """Close every window whose close time stream time has reached, oldest first."""
        times, closing, now = self._times, self._closing, self.stream_time
        reach = self.size + self.grace
        spec = self.spec
        while times and times[0] <= now:
            close_at = heapq.heappop(times)
            start = close_at - reach
            for key in sorted(closing.pop(close_at, ())):
                states = self._merged(key, start)
                if states is not None:
                    window = Window(start, start + self.size)
                    outcome.results.append(WindowResult(key, window, spec.result(states)))
                # The panes of its first step are in no later window: they go with it.
                for pane_start in range(start, start + self.step, self.pane):
                    generations = self.open.pop((key, pane_start), None)
                    if generations is None:
                        continue
                    for pane in generations:
                        outcome.deletes.append(pane_key(key, pane_start, pane.first_window))
                    self._forget_start(key, pane_start)
        if now > self.emitted_through:
            self.emitted_through = now
            outcome.after_results.append((FRONTIER_KEY, orjson.dumps(now)))

    def _forget_start(self, key: str, start: int) -> None:
        starts = self._by_key.get(key)
        if starts is not None:
            starts.remove(start)
            if not starts:
                del self._by_key[key]

    def close_due(self, stream_time: int | None = None) -> BatchOutcome:
        """Close what is final at the restored stream time (a crash between the mark and the
        results), or at ``stream_time`` when an idle partition's clock is moved forward."""
        if stream_time is not None and stream_time > self.stream_time:
            self.stream_time = stream_time
        outcome = BatchOutcome(mark=self.mark())
        self._close_due(outcome)
        outcome.deletes.extend(self._repairs)
        self._repairs = []
        return outcome

    # --- reading -------------------------------------------------------------------------

    def windows_of(self, key: str) -> list[OpenWindow]:
        """The key's open windows with their running figures, oldest first."""
        starts = self._by_key.get(key)
        if not starts:
            return []
        step, size, reach = self.step, self.size, self.size + self.grace
        found = []
        first = self._first_window(min(starts))
        for start in range(first, self._last_window(max(starts)) + 1, step):
            if start + reach <= self.stream_time:
                continue
            states = self._merged(key, start)
            if states is not None:
                found.append(OpenWindow(key, Window(start, start + size), states))
        return found

    def keys(self) -> Iterator[str]:
        """Keys with at least one pane."""
        return iter(list(self._by_key))
