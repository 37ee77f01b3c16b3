"""What a declaration leaves behind: the frozen descriptions of pipelines, rankings, derived
outputs, references and joins that the runtime reads to build everything it runs.

They are built and checked by :mod:`faustapp.api` (its sources and catalog); a use imports them
from there. Nothing here validates, registers or connects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from faustapp.schema import Schema
from faustapp.tables.measures import Measure
from faustapp.tables.windows import HoppingWindows, SessionWindows, SlidingWindows

if TYPE_CHECKING:
    from faustapp.api import Source

Result = dict[str, Any]
Select = Callable[[Result], Result | None]
Windows = HoppingWindows | SessionWindows | SlidingWindows


@dataclass(frozen=True)
class Configured:
    """A step built from the worker's settings when the pipeline starts (thresholds from
    ``FAUSTAPP_*`` variables), not when the module is imported."""

    build: Callable[[Any], Select]


def configured(build: Callable[[Any], Select]) -> Configured:
    """Mark ``build(settings) -> select`` as a step that needs the worker's settings."""
    return Configured(build)


@dataclass(frozen=True)
class Explode:
    """Each event becomes several records of ``record`` (a session's ordered pairs of items)
    before it is grouped; ``records`` makes them (each with the event's time in ``ts``)."""

    record: type
    records: Callable[[Any], Any]

    @property
    def schema(self) -> Schema:
        """How the records are read back from the repartition topic."""
        return Schema(self.record, key=_first_field(self.record), ts="ts", key_is_id=False)


def _first_field(record: type) -> str:
    return record.__struct_fields__[0]


@dataclass(frozen=True)
class PipelineDecl:
    """One windowed pipeline: its source, window kind, named aggregates and last steps."""

    name: str
    source: Source
    windows: Windows
    measures: dict[str, Measure]
    output: str
    table: str
    where: Callable[[Any], bool] | None = None
    select: Select | Configured | None = None
    description: str = ""
    by: str | None = None
    """Group by this field instead of the input key (through a repartition topic)."""
    explode: Explode | None = None
    needs: tuple[str, ...] = ()
    """Pipelines that must run for this one to get its input (a chained pipeline's source)."""

    @property
    def schema(self) -> Schema:
        """The schema of the records its windows read (exploded ones, when it explodes)."""
        return self.explode.schema if self.explode is not None else self.source.schema

    @property
    def key(self) -> str:
        """The field results are keyed by."""
        return self.by or self.source.schema.key

    @property
    def kind(self) -> str:
        """``tumbling``, ``hopping``, ``session`` or ``sliding``."""
        windows = self.windows
        if isinstance(windows, HoppingWindows):
            return "tumbling" if windows.size_ms == windows.step_ms else "hopping"
        return "session" if isinstance(windows, SessionWindows) else "sliding"


@dataclass(frozen=True)
class DerivedOutput:
    """Results of another pipeline's windows, reshaped or filtered into a topic of their own
    (alerts on final windows): no state of its own, no late records of its own."""

    name: str
    parent: PipelineDecl
    select: Select | Configured
    output: str
    description: str = ""


@dataclass(frozen=True)
class RankingDecl:
    """A ranking across every key of a window (a global top-K): ``parent``'s final rows of each
    window meet under one ``key`` and the ``k`` with the highest ``score`` are published."""

    name: str
    parent: PipelineDecl
    k: int
    score: str
    fields: tuple[str, ...]
    key: str
    above: float | None
    output: str
    table: str
    description: str = ""

    @property
    def step_ms(self) -> int:
        """How often the parent's windows start: one ranking per parent window."""
        windows = self.parent.windows
        if not isinstance(windows, HoppingWindows):
            raise TypeError(f"{self.name}: a ranking needs tumbling or hopping windows")
        return windows.step_ms


@dataclass(frozen=True, eq=False)
class Reference:
    """A compacted topic read whole by every worker (a global table): the latest record per key,
    a null value deleting the key. Streams look their events' fields up in it."""

    name: str
    topic: str
    schema: Schema


@dataclass(frozen=True)
class Join:
    """How a source's events are enriched: ``on`` names the event field looked up in
    ``reference``; ``fields`` maps each new field to the reference record's field; ``missing``
    gives the new fields' values when the key is not (yet) in the table."""

    reference: Reference
    on: str
    fields: dict[str, str]
    missing: dict[str, Any]
