"""The event as the window engine sees it: already decoded, keyed, with its source offset."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Event:
    """One decoded input event; the offset makes replays detectable.

    ``value`` feeds numeric aggregates, ``item`` (a category such as a page or a user) feeds
    distinct counts and top-K.
    """

    key: str
    ts: int
    value: float
    offset: int
    item: str | None = None
