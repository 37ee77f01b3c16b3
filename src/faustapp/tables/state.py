"""What the window engine keeps and returns: state-store keys, window state, results, outcomes.

The records here are what a partition's table holds (one value per open window, plus the partition
mark) and what :mod:`faustapp.tables.engine` hands back per batch; they know their encodings, not
how events are folded into them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from faustapp.tables.aggregates import Aggregator, Stats, compose_result
from faustapp.tables.clock import MARK_KEY  # noqa: F401 - re-exported for callers
from faustapp.tables.events import Event
from faustapp.tables.measures import Measure, Output, plan
from faustapp.tables.windows import (
    HoppingWindows,
    SessionWindows,
    SlidingWindows,
    Window,
    interned_window,
)

WINDOW_PREFIX = b"w"
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
    """What a windowed pipeline aggregates over: windows, grace period and aggregates."""

    windows: HoppingWindows | SessionWindows | SlidingWindows
    grace_ms: int
    aggregates: tuple[Aggregator, ...] = (Stats(),)
    outputs: tuple[Output, ...] = ()
    """Named figures read off ``aggregates``; empty: every aggregate's own fields."""
    watermarked: bool = False
    """Stream time comes from the watermarks of the partitions feeding this stage, not from
    event times (a regrouped or chained stage)."""
    where: Callable[[Any], bool] | None = None
    """Only records it accepts are windowed; the others still move the partition's clock (they
    are not late either)."""

    def __post_init__(self) -> None:
        if self.grace_ms < 0:
            raise ValueError("grace must be zero or more milliseconds")
        if not self.aggregates:
            raise ValueError("a window needs at least one aggregate")

    @classmethod
    def of(
        cls,
        windows: HoppingWindows | SessionWindows | SlidingWindows,
        grace_ms: int,
        measures: dict[str, Measure],
        watermarked: bool = False,
        where: Callable[[Any], bool] | None = None,
    ) -> WindowSpec:
        """A spec computing the named ``measures`` (states shared where they can be)."""
        aggregates, outputs = plan(measures)
        return cls(windows, grace_ms, aggregates, outputs, watermarked, where)

    def result(self, states: list[Any]) -> dict[str, Any]:
        """The figures of one window's states, under their output names."""
        if not self.outputs:
            return compose_result(self.aggregates, states)
        return {out.name: out.read(states[out.index]) for out in self.outputs}

    @property
    def sessions(self) -> bool:
        """Whether windows are sessions (variable bounds, merged by gaps)."""
        return isinstance(self.windows, SessionWindows)

    def close_at(self, window: Window) -> int:
        """Stream time at which ``window`` is final."""
        if isinstance(self.windows, SessionWindows):
            return window.end + self.windows.gap_ms + self.grace_ms
        return window.end + self.grace_ms


@dataclass(slots=True)
class WindowState:
    """The running aggregates of one key's window, and the last source offset folded into it."""

    key: str
    window: Window
    states: list[Any]
    applied_offset: int = -1

    @property
    def store_key(self) -> bytes:
        """The window's key in the state store (made when needed: a million open windows
        would otherwise hold a million of them)."""
        return window_key(self.key, self.window.start)

    def encode(self, spec: WindowSpec) -> bytes:
        """Serialised form for the table and its changelog."""
        dumped = [agg.dump(state) for agg, state in zip(spec.aggregates, self.states, strict=True)]
        return orjson.dumps([self.window.end, self.applied_offset, dumped])

    @classmethod
    def decode(cls, spec: WindowSpec, raw_key: bytes, raw_value: bytes) -> WindowState:
        """Rebuild from a table record."""
        key, start = parse_window_key(raw_key)
        end, applied_offset, dumped = orjson.loads(raw_value)
        states = [agg.load(data) for agg, data in zip(spec.aggregates, dumped, strict=True)]
        return cls(key, interned_window(start, end), states, applied_offset)

    def figures(self, spec: WindowSpec) -> dict[str, Any]:
        """Current figures of every aggregate."""
        return spec.result(self.states)


@dataclass(frozen=True, slots=True)
class WindowResult:
    """A final window: emitted exactly once, never revised."""

    key: str
    window: Window
    figures: dict[str, Any]

    def as_dict(self, key_field: str) -> dict[str, object]:
        """The output topic's JSON shape."""
        return {
            key_field: self.key,
            "window_start": self.window.start,
            "window_end": self.window.end,
            **self.figures,
        }


@dataclass(frozen=True, slots=True)
class LateEvent:
    """An event that arrived after every window it belongs to was final."""

    event: Event
    window: Window
    stream_time: int
    reason: str


Encoded = bytes | Callable[[], bytes]
"""A state value, or a function giving its encoding at write time (write-behind: a key changed by
many batches is encoded once, when it is flushed)."""


def encoded(value: Encoded) -> bytes:
    """The bytes to store for an update."""
    return value if isinstance(value, bytes) else value()


@dataclass(slots=True)
class BatchOutcome:
    """What one batch asks the caller to persist and emit, in application order."""

    updates: list[tuple[bytes, Encoded | None]] = field(default_factory=list)
    mark: bytes = b""
    results: list[Any] = field(default_factory=list)
    after_results: list[tuple[bytes, bytes]] = field(default_factory=list)
    deletes: list[bytes] = field(default_factory=list)
    late: list[LateEvent] = field(default_factory=list)
    accepted: int = 0
    replayed: int = 0

    def encoded_updates(self) -> list[tuple[bytes, bytes | None]]:
        """Updates with every value encoded now."""
        return [(k, None if v is None else encoded(v)) for k, v in self.updates]
