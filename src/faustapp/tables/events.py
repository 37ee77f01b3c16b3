"""The event as the window engine sees it: already decoded, keyed, with its source offset."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any


@dataclass(slots=True)
class Event:
    """One decoded input event; the offset makes replays detectable.

    ``record`` is whatever the source decoded (a typed record, or a bare number); aggregates
    read the fields they are bound to from it.
    """

    key: str
    ts: int
    record: Any
    offset: int
    source_time: int = -1
    """For a forwarded event: its own input partition's stream time when it was forwarded. The
    windows final by then are skipped, so a lagging partition elsewhere changes nothing."""


Field = str | Callable[[Any], Any] | None
"""What an aggregate reads of a record: a field name, a function of the record (a derived
value such as ``lambda t: t.price * t.qty``), or None for the record itself (a bare value)."""


def getter(field: Field) -> Callable[[Any], Any] | None:
    """A function reading ``field`` from a record; None when the record is the value itself."""
    if field is None:
        return None
    if callable(field):
        return field
    if not isinstance(field, str) or not field:
        raise TypeError(f"a field is a name or a function of the record, got {field!r}")
    return attrgetter(field)


def field_label(field: Field) -> str:
    """A readable name for a field, for descriptions and error messages."""
    if field is None:
        return "value"
    if isinstance(field, str):
        return field
    return getattr(field, "__name__", "expression")
