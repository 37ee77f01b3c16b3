"""Window assigners: which event-time windows an event belongs to."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open event-time interval [start, end) in epoch milliseconds."""

    start: int
    end: int


@lru_cache(maxsize=4096)
def interned_window(start: int, end: int) -> Window:
    """One shared ``Window`` per bounds: every key's state in a time window points at it."""
    return Window(start, end)


@dataclass(frozen=True, slots=True)
class HoppingWindows:
    """Windows of ``size_ms`` starting every ``step_ms``; tumbling when the two are equal."""

    size_ms: int
    step_ms: int

    def __post_init__(self) -> None:
        if self.size_ms <= 0 or self.step_ms <= 0:
            raise ValueError("window size and step must be positive milliseconds")
        if self.step_ms > self.size_ms:
            raise ValueError("a step larger than the size would leave gaps between windows")

    def windows_for(self, ts: int) -> list[Window]:
        """Every window containing ``ts``, oldest first, aligned to the epoch (UTC)."""
        last_start = ts - ts % self.step_ms
        lowest_start = ts - self.size_ms + 1
        first_start = lowest_start + (-lowest_start) % self.step_ms
        return [
            Window(start, start + self.size_ms)
            for start in range(first_start, last_start + 1, self.step_ms)
        ]


def tumbling(size_ms: int) -> HoppingWindows:
    """Back-to-back windows of one size: every event in exactly one."""
    return HoppingWindows(size_ms=size_ms, step_ms=size_ms)


FOREVER_MS = 1 << 62


def forever() -> HoppingWindows:
    """One window per key that never closes: a running table (queried, never emitted)."""
    return HoppingWindows(size_ms=FOREVER_MS, step_ms=FOREVER_MS)


def hopping(size_ms: int, step_ms: int) -> HoppingWindows:
    """Overlapping windows: every event in ``size_ms / step_ms`` of them."""
    return HoppingWindows(size_ms=size_ms, step_ms=step_ms)


@dataclass(frozen=True, slots=True)
class SessionWindows:
    """Per key, events closer than ``gap_ms`` to each other form one session."""

    gap_ms: int

    def __post_init__(self) -> None:
        if self.gap_ms <= 0:
            raise ValueError("a session gap must be positive milliseconds")


def session(gap_ms: int) -> SessionWindows:
    """Activity sessions: one result per burst of a key's events."""
    return SessionWindows(gap_ms=gap_ms)


@dataclass(frozen=True, slots=True)
class SlidingWindows:
    """For every event at ``t``, the window [t - size_ms, t] of its key's events."""

    size_ms: int
    carry: tuple[str, ...] = ()
    """Fields of the event itself that its result repeats (the reading's value, a trade's price)."""

    def __post_init__(self) -> None:
        if self.size_ms <= 0:
            raise ValueError("a sliding window size must be positive milliseconds")


def sliding(size_ms: int, carry: tuple[str, ...] = ()) -> SlidingWindows:
    """One result per event, over the key's events in the ``size_ms`` before it."""
    return SlidingWindows(size_ms=size_ms, carry=tuple(carry))
