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
from dataclasses import dataclass, field

import orjson

from faustapp.tables.aggregates import RunningStats
from faustapp.tables.windows import HoppingWindows, Window

WINDOW_PREFIX = b"w"
MARK_KEY = b"m\x00partition"
_OFFSET = 1 << 63


def window_key(key: str, start: int) -> bytes:
    """State-store key ordered by key, then window start: one key's windows are a prefix scan."""
    return WINDOW_PREFIX + key.encode() + b"\x00" + (start + _OFFSET).to_bytes(8, "big")


def key_prefix(key: str) -> bytes:
    """Prefix shared by every window of ``key`` in the state store."""
    return WINDOW_PREFIX + key.encode() + b"\x00"


def parse_window_key(raw: bytes) -> tuple[str, int]:
    """Inverse of :func:`window_key`."""
    return raw[1:-9].decode(), int.from_bytes(raw[-8:], "big") - _OFFSET


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """What a windowed pipeline aggregates over: the assigner and the grace period."""

    windows: HoppingWindows
    grace_ms: int

    def __post_init__(self) -> None:
        if self.grace_ms < 0:
            raise ValueError("grace must be zero or more milliseconds")


@dataclass(frozen=True, slots=True)
class Event:
    """One decoded input event, with the offset that makes replays detectable."""

    key: str
    ts: int
    value: float
    offset: int


@dataclass(slots=True)
class WindowState:
    """The running aggregate of one key's window, and the last source offset folded into it."""

    key: str
    window: Window
    stats: RunningStats = field(default_factory=RunningStats)
    applied_offset: int = -1

    def encode(self) -> bytes:
        """Serialised form for the table and its changelog."""
        return orjson.dumps([self.window.end, self.applied_offset, self.stats.to_list()])

    @classmethod
    def decode(cls, raw_key: bytes, raw_value: bytes) -> WindowState:
        """Rebuild from a table record."""
        key, start = parse_window_key(raw_key)
        end, applied_offset, stats = orjson.loads(raw_value)
        return cls(key, Window(start, end), RunningStats.from_list(stats), applied_offset)


@dataclass(frozen=True, slots=True)
class WindowResult:
    """A final window: emitted exactly once, never revised."""

    key: str
    window: Window
    stats: RunningStats

    def as_dict(self, key_field: str) -> dict[str, object]:
        """The output topic's JSON shape."""
        return {
            key_field: self.key,
            "window_start": self.window.start,
            "window_end": self.window.end,
            **self.stats.summary(),
        }


@dataclass(frozen=True, slots=True)
class LateEvent:
    """An event that arrived after every window it belongs to was final."""

    event: Event
    window: Window
    stream_time: int
    reason: str


@dataclass(slots=True)
class BatchOutcome:
    """What one batch asks the caller to persist and emit, in application order."""

    updates: list[tuple[bytes, bytes]] = field(default_factory=list)
    mark: bytes = b""
    results: list[WindowResult] = field(default_factory=list)
    deletes: list[bytes] = field(default_factory=list)
    late: list[LateEvent] = field(default_factory=list)
    accepted: int = 0
    replayed: int = 0


class PartitionWindows:
    """Open windows, stream time and close schedule of one input partition.

    Stream time is the largest event time seen on the partition. A window [start, end) is final once
    stream time >= end + grace; events for a final window are late. The close schedule is derived
    from the stored windows alone, so it survives restarts and rebalances.
    """

    def __init__(self, spec: WindowSpec) -> None:
        self.spec = spec
        self.stream_time = -1
        self.applied_offset = -1
        self.open: dict[tuple[str, int], WindowState] = {}
        self._schedule: list[tuple[int, str, int]] = []

    @classmethod
    def restore(cls, spec: WindowSpec, records: Iterable[tuple[bytes, bytes]]) -> PartitionWindows:
        """Rebuild from the partition's table records (after a restart, recovery or rebalance)."""
        part = cls(spec)
        for raw_key, raw_value in records:
            if raw_key == MARK_KEY:
                part.stream_time, part.applied_offset = orjson.loads(raw_value)
            elif raw_key.startswith(WINDOW_PREFIX):
                state = WindowState.decode(raw_key, raw_value)
                part._track(state)
        return part

    def _track(self, state: WindowState) -> None:
        self.open[(state.key, state.window.start)] = state
        close_at = state.window.end + self.spec.grace_ms
        heapq.heappush(self._schedule, (close_at, state.key, state.window.start))

    def windows_of(self, key: str) -> list[WindowState]:
        """The key's open windows, oldest first."""
        found = [state for (k, _), state in self.open.items() if k == key]
        return sorted(found, key=lambda state: state.window.start)

    def keys(self) -> Iterator[str]:
        """Keys with at least one open window."""
        return iter({key for key, _ in self.open})

    def process(self, events: Iterable[Event], through_offset: int = -1) -> BatchOutcome:
        """Fold a batch of this partition's events (in offset order) into the open windows.

        ``through_offset`` is the last source offset the batch covered, including records that
        never became events (dead letters, forwarded records), so a replay skips them too.
        """
        outcome = BatchOutcome()
        dirty: dict[tuple[str, int], WindowState] = {}
        grace = self.spec.grace_ms
        assign = self.spec.windows.windows_for
        for event in events:
            if event.offset <= self.applied_offset:
                outcome.replayed += 1
                continue
            self.applied_offset = event.offset
            stream_time = self.stream_time
            missed: Window | None = None
            took = False
            for window in assign(event.ts):
                if stream_time >= window.end + grace:
                    missed = missed or window
                    continue
                slot = (event.key, window.start)
                state = self.open.get(slot)
                if state is None:
                    state = WindowState(event.key, window)
                    self._track(state)
                if event.offset <= state.applied_offset:
                    took = True
                    continue
                state.stats.add(event.value)
                state.applied_offset = event.offset
                dirty[slot] = state
                took = True
            if took:
                outcome.accepted += 1
            elif missed is not None:
                outcome.late.append(
                    LateEvent(
                        event,
                        missed,
                        stream_time,
                        f"window [{missed.start}, {missed.end}) was final at stream time "
                        f"{stream_time} (grace {grace} ms)",
                    )
                )
            if event.ts > stream_time:
                self.stream_time = event.ts
        self.applied_offset = max(self.applied_offset, through_offset)
        outcome.updates = [(window_key(*slot), state.encode()) for slot, state in dirty.items()]
        outcome.mark = orjson.dumps([self.stream_time, self.applied_offset])
        self._close_due(outcome)
        return outcome

    def _close_due(self, outcome: BatchOutcome) -> None:
        schedule = self._schedule
        while schedule and schedule[0][0] <= self.stream_time:
            _, key, start = heapq.heappop(schedule)
            state = self.open.pop((key, start), None)
            if state is None:
                continue
            outcome.results.append(WindowResult(key, state.window, state.stats))
            outcome.deletes.append(window_key(key, start))

    def close_due(self) -> BatchOutcome:
        """Close windows final at the restored stream time (a crash between emit and delete)."""
        outcome = BatchOutcome(mark=orjson.dumps([self.stream_time, self.applied_offset]))
        self._close_due(outcome)
        return outcome
