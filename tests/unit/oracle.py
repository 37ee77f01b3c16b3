"""A deliberately naive reference for the event-time window contract, independent of the engine.

Everything here is brute force over plain lists: window membership is found by scanning candidate
starts, stream time is recomputed from the raw event list, and the statistics are computed from the
full list of values (``math.fsum``, ``statistics.pstdev``). Nothing is imported from ``faustapp``.

Contract modelled:

* stream time = largest event time seen so far (starts at -1);
* window [start, end) is final once stream time >= end + grace;
* an event is late when every window it belongs to is final under the stream time *before* it;
  otherwise it is counted in each of its windows that is not final;
* at the end of each batch every window with counted values and end + grace <= stream time is
  emitted once; windows still open after the last batch are never emitted.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class OracleResult:
    """The figures of one final (key, window)."""

    key: str
    start: int
    end: int
    count: int
    total: float
    mean: float
    minimum: float
    maximum: float
    stddev: float

    @property
    def slot(self) -> tuple[str, int, int]:
        return (self.key, self.start, self.end)


@dataclass(frozen=True)
class OracleEventView:
    """What the oracle decided for one event, in arrival order."""

    index: int
    key: str
    ts: int
    value: float
    stream_before: int
    windows: tuple[tuple[int, int], ...]
    open_windows: tuple[tuple[int, int], ...]
    late: bool


@dataclass
class OracleRun:
    """The whole brute-force run: per-event decisions and per-batch emissions."""

    events: list[OracleEventView] = field(default_factory=list)
    batches: list[list[OracleResult]] = field(default_factory=list)
    still_open: dict[tuple[str, int, int], list[float]] = field(default_factory=dict)
    final_stream_time: int = -1

    @property
    def results(self) -> dict[tuple[str, int, int], OracleResult]:
        """Every emitted result, keyed by (key, start, end)."""
        return {result.slot: result for batch in self.batches for result in batch}

    @property
    def late_indices(self) -> list[int]:
        return [view.index for view in self.events if view.late]


def windows_containing(ts: int, size: int, step: int) -> list[tuple[int, int]]:
    """Every epoch-aligned window [start, start + size) with start a multiple of step holding ts.

    Brute force: scan every multiple of ``step`` in a range certainly wide enough.
    """
    found = []
    lowest_multiple = (ts - size) // step - 1
    highest_multiple = ts // step + 1
    for multiple in range(lowest_multiple, highest_multiple + 1):
        start = multiple * step
        if start <= ts < start + size:
            found.append((start, start + size))
    return found


def summarise(key: str, start: int, end: int, values: Sequence[float]) -> OracleResult:
    """Statistics of a plain list of values, computed as accurately as the stdlib allows."""
    total = math.fsum(values)
    return OracleResult(
        key=key,
        start=start,
        end=end,
        count=len(values),
        total=total,
        mean=total / len(values),
        minimum=min(values),
        maximum=max(values),
        stddev=statistics.pstdev(values) if len(values) > 1 else 0.0,
    )


def batch_slices(count: int, batch_ends: Sequence[int] | None) -> list[tuple[int, int]]:
    """``[begin, end)`` index ranges of the batches: ends sorted, unique, the last at ``count``."""
    ends = sorted({end for end in batch_ends or () if 0 <= end <= count})
    if not ends or ends[-1] != count:
        ends.append(count)
    return list(zip([0] + ends[:-1], ends, strict=True))


def run_oracle(
    events: Sequence[tuple[str, int, float]],
    size: int,
    step: int,
    grace: int,
    batch_ends: Sequence[int] | None = None,
) -> OracleRun:
    """Run the contract over ``events`` (arrival order), in batches ending at ``batch_ends``.

    ``batch_ends`` are exclusive end indices into ``events``, ascending; the last batch always ends
    at ``len(events)`` (added when missing). ``None`` means a single batch.
    """
    run = OracleRun()
    values: dict[tuple[str, int, int], list[float]] = {}
    emitted: set[tuple[str, int, int]] = set()
    for begin, end in batch_slices(len(events), batch_ends):
        for index in range(begin, end):
            key, ts, value = events[index]
            # Stream time before this event, recomputed from scratch.
            stream_before = max([-1] + [events[i][1] for i in range(index)])
            windows = windows_containing(ts, size, step)
            open_windows = tuple(w for w in windows if not stream_before >= w[1] + grace)
            late = len(open_windows) == 0
            for start, stop in open_windows:
                values.setdefault((key, start, stop), []).append(value)
            run.events.append(
                OracleEventView(
                    index, key, ts, value, stream_before, tuple(windows), open_windows, late
                )
            )
        stream_now = max([-1] + [events[i][1] for i in range(end)])
        batch = []
        for slot in sorted(values, key=lambda s: (s[2] + grace, s[0], s[1])):
            if slot in emitted or slot[2] + grace > stream_now:
                continue
            emitted.add(slot)
            batch.append(summarise(slot[0], slot[1], slot[2], values[slot]))
        run.batches.append(batch)
    run.final_stream_time = max([-1] + [ts for _, ts, _ in events])
    run.still_open = {slot: vals for slot, vals in values.items() if slot not in emitted}
    return run
