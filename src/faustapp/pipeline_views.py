"""What the pipeline views read from a worker's own state: a key's open windows and last final
results, and this worker's share of a top-n ranking (merged across workers by the asked one)."""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import faust

from faustapp.catalogue import Entry
from faustapp.pipeline import partition_for
from faustapp.tables.moments import Moments
from faustapp.tables.sliding import SlidingPartition

TOP_MAX_N = 1000
TOP_DEFAULT_N = 10
ORDERS = ("desc", "asc")
WINDOWS = ("final", "open")
SLIDING_OPEN_LIMIT = 100
"""A sliding pipeline's key view shows at most this many of the key's pending events."""

Row = dict[str, Any]
_MISSING = object()


class BadParameter(ValueError):
    """A query parameter a client got wrong (a 400, with the reason)."""


class UnknownPipeline(LookupError):
    """No pipeline of that name runs here (a 404)."""


@dataclass(frozen=True)
class TopQuery:
    """A validated ``top`` request."""

    field: str
    n: int
    order: str
    window: str

    def echo(self) -> dict[str, Any]:
        """The request's parameters as the answer repeats them."""
        return {"field": self.field, "order": self.order, "window": self.window, "n": self.n}


def parse_top(query: Mapping[str, str], entry: Entry) -> TopQuery:
    """The query string of a ``top`` request; BadParameter with the reason when it is bad."""
    field = query.get("field", "count")
    if field not in entry.numeric_fields:
        choices = ", ".join(entry.numeric_fields) or "none"
        raise BadParameter(
            f"field {field[:64]!r} is not a numeric output field of {entry.name} "
            f"(numeric fields: {choices})"
        )
    raw_n = query.get("n", str(TOP_DEFAULT_N))
    try:
        n = int(raw_n)
    except ValueError:
        raise BadParameter(
            f"n must be an integer from 1 to {TOP_MAX_N}, got {raw_n[:32]!r}"
        ) from None
    if not 1 <= n <= TOP_MAX_N:
        raise BadParameter(f"n must be an integer from 1 to {TOP_MAX_N}, got {n}")
    order = query.get("order", "desc")
    if order not in ORDERS:
        raise BadParameter(f"order must be desc or asc, got {order[:32]!r}")
    window = query.get("window", "final")
    if window not in WINDOWS:
        raise BadParameter(f"window must be final or open, got {window[:32]!r}")
    return TopQuery(field, n, order, window)


# --- a key's state ----------------------------------------------------------------------------


def key_state(entry: Entry, key: str) -> dict[str, Any] | None:
    """The key's open windows (oldest first) and last final results (newest first), or None
    when it has neither. PartitionNotReady while its partition is not active here."""
    part = entry.router.state_for(entry.pipeline, key)
    windows = open_windows(entry, part, key)
    results: list[Row] = []
    if entry.history is not None:
        partition = partition_for(key, entry.router.partitions)
        results = entry.history.results(entry.name, key, partition)
    if not windows and not results:
        return None
    return {"pipeline": entry.name, "key": key, "open_windows": windows, "results": results}


def open_windows(entry: Entry, part: Any, key: str) -> list[Row]:
    """The key's open windows with their running figures, oldest first."""
    if isinstance(part, SlidingPartition):
        return _sliding_windows(part, key, SLIDING_OPEN_LIMIT)
    spec = entry.pipeline.spec.window
    return [
        {"window_start": state.window.start, "window_end": state.window.end, **state.figures(spec)}
        for state in part.windows_of(key)
    ]


def _sliding_windows(part: SlidingPartition, key: str, limit: int) -> list[Row]:
    """The windows of the key's events not final yet (the last ``limit``), figures computed
    afresh: the engine's running window moves forward only and is not touched."""
    entry = part.keys.get(key)
    if entry is None:
        return []
    points = entry.points
    first = bisect.bisect_right(points, (part.emitted_through, 1 << 63))
    found = []
    for ts, _, _, carried in points[max(first, len(points) - limit) :]:
        lo = bisect.bisect_left(points, (ts - part.size,))
        hi = bisect.bisect_left(points, (ts + 1,))
        moments = [Moments() for _ in part.inputs]
        for p_ts, offset, values, _ in points[lo:hi]:
            for i, value in enumerate(values):
                if value is not None:
                    source = part.inputs[i]
                    moments[i].add((p_ts, offset, value), source.sums, source.extremes)
        shown = dict(zip(part.carry_names, carried, strict=True)) if part.carry_names else {}
        figures = {name: moments[index].figure(kind) for name, kind, index in part.outputs}
        found.append(
            {"window_start": ts - part.size, "window_end": ts, "ts": ts, **shown, **figures}
        )
    return found


# --- top n ------------------------------------------------------------------------------------


def sort_key(order: str):  # noqa: ANN201 - a key function for sorted()
    """Highest (desc) or lowest (asc) value first, ties by key ascending."""
    if order == "desc":
        return lambda row: (-row["value"], row["key"])
    return lambda row: (row["value"], row["key"])


def best(rows: Iterable[Row], n: int, order: str) -> list[Row]:
    """The ``n`` first rows in the query's order."""
    return heapq.nsmallest(n, rows, key=sort_key(order))


def merge_top(shares: Iterable[Iterable[Row]], n: int, order: str) -> list[Row]:
    """Every worker's top n merged into the overall top n (a key answered twice during a
    rebalance counts once: the first answer)."""
    seen: dict[str, Row] = {}
    for rows in shares:
        for row in rows:
            seen.setdefault(row["key"], row)
    return best(seen.values(), n, order)


def owned_partitions(app: faust.App, entry: Entry) -> list[int]:
    """Partitions of the pipeline this worker owns with their state recovered (none while
    a rebalance or recovery is under way)."""
    if app.rebalancing or not app.tables.actives_ready:
        return []
    topic = entry.router.source_topic
    return sorted(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic)


def local_top(app: faust.App, entry: Entry, query: TopQuery) -> tuple[list[Row], list[int]]:
    """This worker's top n over the partitions it owns, and those partitions."""
    partitions = owned_partitions(app, entry)
    rows: list[Row] = []
    for partition in partitions:
        if query.window == "final":
            rows.extend(_final_rows(entry, partition, query.field))
        else:
            rows.extend(_open_rows(entry, partition, query.field))
    return best(rows, query.n, query.order), partitions


def _number(value: Any) -> float | int | None:
    if type(value) in (int, float) and math.isfinite(value):
        return value
    return None


def _row(key: str, value: Any, record: Row) -> Row | None:
    value, start, end = _number(value), record.get("window_start"), record.get("window_end")
    if value is None or type(start) is not int or type(end) is not int:
        return None
    return {"key": key, "value": value, "window_start": start, "window_end": end}


def _final_rows(entry: Entry, partition: int, field: str) -> Iterator[Row]:
    """Each key's value of ``field`` in its newest final result."""
    if entry.history is None:
        return
    for key, record in entry.history.latest(entry.name, partition):
        row = _row(key, record.get(field), record)
        if row is not None:
            yield row


def _open_rows(entry: Entry, partition: int, field: str) -> Iterator[Row]:
    """Each key's value of ``field`` in its newest open window: a running figure, or, for a
    field the output's ``select`` computes, that figure as it would be published now."""
    pipeline = entry.pipeline
    part = pipeline.loaded(partition)
    if part is None:
        # Read from the table without keeping it: the engine restores a partition itself, and
        # emits what became final while it was away when it does.
        part = pipeline.new_partition(pipeline.store.records(partition))
    keys = part.keys
    for key in keys() if callable(keys) else list(keys):
        if isinstance(part, SlidingPartition):
            windows = _sliding_windows(part, key, 1)
        else:
            windows = open_windows(entry, part, key)[-1:]
        if not windows:
            continue
        window = windows[0]
        value = window.get(field, _MISSING)
        if value is _MISSING:
            value = _projected(entry, key, window, field)
        row = _row(key, value, window)
        if row is not None:
            yield row


def _projected(entry: Entry, key: str, window: Row, field: str) -> Any:
    try:
        published = entry.project({entry.key_field: key, **window})
    except Exception:  # running figures a select cannot take yet (an empty window)
        return None
    return None if not published else published.get(field)
