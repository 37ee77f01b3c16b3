"""The upstream half of a regrouped pipeline: on each input partition, decide which events are
late by that partition's own stream time, and hand the rest on, keyed by the field to group by.

The downstream half is an ordinary window stage whose clock is the minimum of the watermarks this
half sends (:mod:`faustapp.tables.clock`), so whether an event is late never depends on how fast
another input partition is processed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from faustapp.tables.clock import MARK_KEY, PartitionClock
from faustapp.tables.events import Event
from faustapp.tables.state import BatchOutcome, LateEvent
from faustapp.tables.windows import HoppingWindows, SessionWindows, SlidingWindows, Window


@dataclass(frozen=True, slots=True)
class Forward:
    """A record to hand on to the partition of its new key (``index``: which of the records an
    exploded event became)."""

    key: str
    event: Event
    index: int = 0
    source_time: int = -1
    """The input partition's stream time when the event was judged (not late)."""


@dataclass(frozen=True, slots=True)
class RegroupSpec:
    """The downstream windows (for lateness), the grace period and the new key's reader."""

    windows: HoppingWindows | SessionWindows | SlidingWindows
    grace_ms: int
    new_key: Callable[[Any], Any]
    where: Callable[[Any], bool] | None = None
    explode: Callable[[Any], Iterable[Any]] | None = None
    """Optional: each event becomes these records (a session's pairs of items) before grouping."""

    def last_window(self, ts: int) -> tuple[Window, int]:
        """The window containing ``ts`` that closes last, and the stream time it closes at."""
        windows = self.windows
        if isinstance(windows, HoppingWindows):
            start = ts - ts % windows.step_ms
            window = Window(start, start + windows.size_ms)
            return window, window.end + self.grace_ms
        if isinstance(windows, SessionWindows):
            return Window(ts, ts), ts + windows.gap_ms + self.grace_ms
        return Window(ts - windows.size_ms, ts), ts + self.grace_ms

    def first_window(self, ts: int) -> Window:
        """The window containing ``ts`` that closes first (named in a late record)."""
        windows = self.windows
        if isinstance(windows, HoppingWindows):
            lowest = ts - windows.size_ms + 1
            start = lowest + (-lowest) % windows.step_ms
            return Window(start, start + windows.size_ms)
        return self.last_window(ts)[0]


class RegroupPartition(PartitionClock):
    """Stream time of one input partition of a regrouped pipeline, and what it hands on."""

    def __init__(self, spec: RegroupSpec) -> None:
        super().__init__()
        self.spec = spec
        self.open: dict[str, Any] = {}  # no window state here; for the gauges

    @classmethod
    def restore(cls, spec: RegroupSpec, records: Iterable[tuple[bytes, bytes]]) -> RegroupPartition:
        """Rebuild from the partition's table records (its mark)."""
        part = cls(spec)
        for raw_key, raw_value in records:
            if raw_key == MARK_KEY:
                part.load_mark(raw_value)
        return part

    def process(self, events: Iterable[Event], through_offset: int = -1) -> BatchOutcome:
        """Late events are named; the others are forwarded, keyed by the new key (events that
        lack it cannot be grouped and are counted as filtered)."""
        outcome = BatchOutcome()
        new_key, where, explode = self.spec.new_key, self.spec.where, self.spec.explode
        for event in events:
            if event.offset <= self.applied_offset:
                outcome.replayed += 1
                continue
            self.applied_offset = event.offset
            window, closes_at = self.spec.last_window(event.ts)
            if where is not None and not where(event.record):
                pass  # filtered out: only the clock moves
            elif self.stream_time >= closes_at:
                first = self.spec.first_window(event.ts)
                outcome.late.append(
                    LateEvent(
                        event,
                        first,
                        self.stream_time,
                        f"window [{first.start}, {first.end}) was final at stream time "
                        f"{self.stream_time} (grace {self.spec.grace_ms} ms)",
                    )
                )
            elif explode is None:
                key = new_key(event.record)
                if key is not None:
                    outcome.results.append(Forward(str(key), event, 0, self.stream_time))
                outcome.accepted += 1
            else:
                for index, record in enumerate(explode(event.record)):
                    key = new_key(record)
                    if key is not None:
                        part = Event(str(key), event.ts, record, event.offset)
                        outcome.results.append(Forward(str(key), part, index, self.stream_time))
                outcome.accepted += 1
            if event.ts > self.stream_time:
                self.stream_time = event.ts
        self.applied_offset = max(self.applied_offset, through_offset)
        outcome.mark = self.mark()
        return outcome

    def close_due(self, stream_time: int | None = None) -> BatchOutcome:
        """Move stream time forward (idle close); nothing is held here to close."""
        if stream_time is not None and stream_time > self.stream_time:
            self.stream_time = stream_time
        return BatchOutcome(mark=self.mark())

    def windows_of(self, key: str) -> list[Any]:
        """No window lives upstream."""
        return []
