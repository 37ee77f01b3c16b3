"""The clock of one partition's state: stream time, how far its source was applied, and, for a
stage fed by several partitions, each feeding partition's watermark and last forwarded offset.

A stage fed through a repartition topic (a regrouped pipeline, a ranking, a chained stage) has no
clock of its own: its stream time is the **minimum** of the watermarks its feeding partitions sent,
so a fast partition never closes a window a slow one still feeds. Events forwarded twice (a replay
of an upstream batch under at-least-once) are recognised by their source position and skipped.
"""

from __future__ import annotations

import orjson

MARK_KEY = b"m\x00partition"


class PartitionClock:
    """Stream time and progress of one partition, persisted as its mark."""

    def __init__(self) -> None:
        self.stream_time = -1
        self.applied_offset = -1
        # feeding partition -> [watermark, last offset, index within it] (an event may be
        # forwarded as several records: a session's pairs of items)
        self.sources: dict[str, list[int]] = {}

    def load_mark(self, raw: bytes) -> None:
        """Restore from a stored mark (an empty one means nothing was applied)."""
        if not raw:
            return
        mark = orjson.loads(raw)
        self.stream_time, self.applied_offset = mark[:2]
        if len(mark) > 2:
            self.sources = {key: list(value) for key, value in mark[2].items()}

    def mark(self) -> bytes:
        """The mark to persist with a batch."""
        if self.sources:
            return orjson.dumps([self.stream_time, self.applied_offset, self.sources])
        return orjson.dumps([self.stream_time, self.applied_offset])

    def forwarded_before(self, source: int, offset: int, index: int = 0) -> bool:
        """Whether record ``index`` forwarded for ``offset`` of feeding partition ``source`` was
        applied already; records it as applied when not."""
        entry = self._entry(source)
        if (offset, index) <= (entry[1], entry[2]):
            return True
        entry[1], entry[2] = offset, index
        return False

    def _entry(self, source: int) -> list[int]:
        entry = self.sources.setdefault(str(source), [-1, -1, -1])
        if len(entry) < 3:
            entry.append(-1)
        return entry

    def watermark(self, source: int, watermark: int, feeding: int) -> int | None:
        """Note ``source``'s watermark; the new stream time when the minimum over all ``feeding``
        partitions moved past the current one, else None."""
        entry = self._entry(source)
        if watermark > entry[0]:
            entry[0] = watermark
        if len(self.sources) < feeding:
            return None
        low = min(entry[0] for entry in self.sources.values())
        return low if low > self.stream_time else None
