"""What a use imports to declare its pipelines: sources, record schemas, windows, aggregates.

A declaration is only a description; nothing connects, starts or registers with Faust here. The
runtime (:mod:`faustapp.runtime`) builds topics, tables, the batch path, flushes, revoke handling,
metrics and web views for every declared pipeline the worker is asked to run::

    trades = source("trades", topic="trades", schema=Schema(Trade, key="symbol"))
    trades.window(
        "trade-candles-1m",
        tumbling(MINUTE),
        open=First("price"), close=Last("price"), high=Max("price"), low=Min("price"),
        volume=Sum("qty"), trades=Count(), notional=Sum(lambda t: t.price * t.qty),
        select=add_vwap,
    )

The frozen descriptions a declaration leaves (:class:`PipelineDecl` and its kin) live in
:mod:`faustapp.declarations`; they are re-exported here so that this stays the one import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

from faustapp.declarations import (
    Configured,
    DerivedOutput,
    Explode,
    Join,
    PipelineDecl,
    RankingDecl,
    Reference,
    Select,
    Windows,
    configured,
)
from faustapp.declarations import Result as Result
from faustapp.schema import EventTime, Id, Integer, Number, Record, Schema, Text
from faustapp.tables.measures import (
    NEEDS_NUMBERS,
    NUMERIC_KINDS,
    Count,
    CountBy,
    DistinctCount,
    DistinctList,
    First,
    Last,
    Max,
    Mean,
    Measure,
    Min,
    Quantile,
    StdDev,
    Sum,
    TopK,
    stats,
)
from faustapp.tables.windows import HoppingWindows as HoppingWindows
from faustapp.tables.windows import SessionWindows as SessionWindows
from faustapp.tables.windows import (
    SlidingWindows,
    forever,
    hopping,
    session,
    sliding,
    tumbling,
)

__all__ = [
    "MINUTE",
    "SECOND",
    "Catalog",
    "Configured",
    "Count",
    "CountBy",
    "DerivedOutput",
    "Explode",
    "DistinctCount",
    "DistinctList",
    "EventTime",
    "First",
    "Id",
    "Integer",
    "Last",
    "Max",
    "Mean",
    "Min",
    "Number",
    "PipelineDecl",
    "Quantile",
    "RankingDecl",
    "Record",
    "Reference",
    "Schema",
    "Source",
    "StdDev",
    "Sum",
    "Text",
    "TopK",
    "catalog",
    "configured",
    "forever",
    "reference",
    "hopping",
    "session",
    "sliding",
    "source",
    "stats",
    "tumbling",
]

SECOND = 1000
MINUTE = 60 * SECOND


@dataclass(frozen=True, eq=False)
class Source:
    """An input topic and the schema of its records; pipelines declared on it share one decode,
    one dead-letter pass and one routing per batch."""

    name: str
    topic: str
    schema: Schema
    catalog: Catalog = field(repr=False)
    parent: Source | None = None
    """For a joined source: the source whose events it enriches (and whose topic it reads)."""
    join_spec: Join | None = None

    @property
    def root(self) -> Source:
        """The source that reads the topic (a joined source reads its parent's events)."""
        return self if self.parent is None else self.parent.root

    def join(
        self,
        reference: Reference,
        *,
        on: str,
        fields: dict[str, str],
        missing: dict[str, Any] | None = None,
    ) -> Source:
        """The same events enriched from ``reference`` (a stream-table join): for each event,
        the reference record whose key is the event's ``on`` field, looked up when the event is
        processed; its ``fields`` are copied in (``missing`` values when there is none)."""
        if on not in self.schema.fields:
            raise ValueError(f"cannot join on {on!r}: not a field of {self.schema.name}")
        for name, taken in fields.items():
            if taken not in reference.schema.fields:
                raise ValueError(f"{reference.name} has no field {taken!r} (for {name!r})")
            if name in self.schema.fields:
                raise ValueError(f"{name!r} is already a field of {self.schema.name}")
        missing = dict(missing or {})
        strays = sorted(set(missing) - set(fields))
        if strays:
            raise ValueError(
                f"missing values for {', '.join(map(repr, strays))}: not among the fields "
                f"the join adds ({', '.join(map(repr, fields))})"
            )
        enriched = msgspec.defstruct(
            f"{self.schema.name}With{reference.schema.name}",
            [(name, Any, missing.get(name)) for name in fields],
            bases=(self.schema.record_type,),
        )
        schema = Schema(enriched, key=self.schema.key, ts=self.schema.ts)
        spec = Join(reference, on, dict(fields), missing)
        return Source(f"{self.name}+{reference.name}", self.topic, schema, self.catalog, self, spec)

    def window(
        self,
        name: str,
        windows: Windows,
        *,
        by: str | None = None,
        explode: Explode | None = None,
        needs: tuple[str, ...] = (),
        where: Callable[[Any], bool] | None = None,
        select: Select | Configured | None = None,
        output: str | None = None,
        table: str | None = None,
        description: str = "",
        **measures: Measure,
    ) -> PipelineDecl:
        """Declare a windowed pipeline: ``measures`` name its output fields; ``by`` groups by
        another field than the input key; ``where`` drops events before windowing; ``select``
        reshapes a final result or drops it (None)."""
        if not measures:
            raise ValueError(f"pipeline {name!r} needs at least one aggregate")
        schema = explode.schema if explode is not None else self.schema
        if explode is not None and by is None:
            raise ValueError(f"{name}: exploded records are grouped: say by which field")
        if by is not None and by not in schema.fields:
            raise ValueError(f"{name}: cannot group by {by!r}, not a field of {schema.name}")
        self._check_fields(name, measures, schema, carry=getattr(windows, "carry", ()))
        if isinstance(windows, SlidingWindows):
            kinds = {measure.kind for measure in measures.values()}
            if not kinds <= set(NUMERIC_KINDS):
                raise TypeError(
                    f"{name}: sliding windows compute {', '.join(NUMERIC_KINDS)}, "
                    f"not {', '.join(sorted(kinds - set(NUMERIC_KINDS)))}"
                )
        pipeline = PipelineDecl(
            name=name,
            source=self,
            windows=windows,
            measures=dict(measures),
            output=output or name,
            table=table or f"{name}-windows",
            where=where,
            select=select,
            description=description,
            by=by if by != self.schema.key or explode is not None else None,
            explode=explode,
            needs=tuple(needs),
        )
        self.catalog.add(pipeline)
        return pipeline

    def _check_fields(
        self, pipeline: str, measures: dict[str, Measure], schema: Schema, carry: tuple
    ) -> None:
        """Named fields must exist, and numeric figures need numeric fields: a typo fails at
        declaration, not in a running worker."""
        for output, measure in measures.items():
            if not isinstance(measure, Measure):
                raise TypeError(f"{pipeline}: output {output!r} must be an aggregate like Sum('x')")
            named = measure.state.field
            if not isinstance(named, str):
                continue  # a function of the record, or the record itself
            if named not in schema.fields:
                raise ValueError(
                    f"{pipeline}: output {output!r} reads {named!r}, which {schema.name} lacks; "
                    f"fields: {', '.join(schema.fields)}"
                )
            if measure.kind in NEEDS_NUMBERS and named not in schema.numeric and named != schema.ts:
                raise TypeError(f"{pipeline}: {output!r} needs numbers; {named!r} is not numeric")
        for name in carry:
            if name not in schema.fields:
                raise ValueError(f"{pipeline}: carried field {name!r} is not in {schema.name}")

    def rank(
        self,
        name: str,
        parent: PipelineDecl,
        *,
        k: int,
        score: str,
        fields: tuple[str, ...] = (),
        key: str = "top",
        above: float | None = None,
        output: str | None = None,
        description: str = "",
    ) -> RankingDecl:
        """Declare a global ranking of ``parent``'s rows per window: the ``k`` highest
        ``score`` (ties by the parent's key, ascending; only scores above ``above``), published
        under ``key`` as ``{window_start, window_end, items: [{id, score, *fields}]}``."""
        if parent.source is not self:
            raise ValueError(f"{name!r}: {parent.name!r} reads another source")
        ranking = RankingDecl(
            name,
            parent,
            k,
            score,
            tuple(fields),
            key,
            above,
            output or name,
            f"{name}-ranking",
            description,
        )
        ranking.step_ms  # noqa: B018 - a parent without fixed windows fails here, not at start
        self.catalog.add(ranking)
        return ranking

    def derive(
        self,
        name: str,
        parent: PipelineDecl,
        select: Select | Configured,
        *,
        output: str | None = None,
        description: str = "",
    ) -> DerivedOutput:
        """Declare an output computed from ``parent``'s final results (it runs ``parent``'s
        windows even when ``parent``'s own topic is not selected)."""
        if parent.source is not self:
            raise ValueError(f"{name!r}: {parent.name!r} reads another source")
        derived = DerivedOutput(name, parent, select, output or name, description)
        self.catalog.add(derived)
        return derived


class Catalog:
    """Every declared source and pipeline, by name; what ``FAUSTAPP_PIPELINES`` picks from."""

    def __init__(self) -> None:
        self.sources: dict[str, Source] = {}
        self.references: dict[str, Reference] = {}
        self.pipelines: dict[str, PipelineDecl | DerivedOutput | RankingDecl] = {}

    def reference(self, name: str, *, topic: str, schema: Schema) -> Reference:
        """Declare a compacted reference topic (once per name)."""
        existing = self.references.get(name)
        if existing is not None:
            return existing
        declared = self.references[name] = Reference(name, topic, schema)
        return declared

    def source(self, name: str, *, topic: str, schema: Schema) -> Source:
        """Declare an input topic (once per name; declaring it again returns the same one)."""
        existing = self.sources.get(name)
        if existing is not None:
            if existing.topic != topic or existing.schema.record_type is not schema.record_type:
                raise ValueError(f"source {name!r} is already declared differently")
            return existing
        declared = Source(name, topic, schema, self)
        self.sources[name] = declared
        return declared

    def add(self, pipeline: PipelineDecl | DerivedOutput | RankingDecl) -> None:
        """Register a pipeline; names are unique across every use."""
        if pipeline.name in self.pipelines:
            raise ValueError(f"pipeline {pipeline.name!r} is declared twice")
        self.pipelines[pipeline.name] = pipeline

    def names(self) -> list[str]:
        """Every declared pipeline name, in declaration order."""
        return list(self.pipelines)

    def select(self, names: tuple[str, ...]) -> list[PipelineDecl | DerivedOutput | RankingDecl]:
        """The pipelines ``names`` pick (``all``: every one); KeyError names the unknown."""
        if "all" in names:
            return list(self.pipelines.values())
        unknown = [name for name in names if name not in self.pipelines]
        if unknown:
            raise KeyError(", ".join(unknown))
        return [self.pipelines[name] for name in names]

    def __iter__(self) -> Iterator[PipelineDecl | DerivedOutput | RankingDecl]:
        return iter(self.pipelines.values())


catalog = Catalog()
"""The catalog the worker runs from: built-in uses and ``FAUSTAPP_MODULES`` declare into it."""


def source(name: str, *, topic: str, schema: Schema) -> Source:
    """Declare an input topic in the worker's catalog (see :meth:`Catalog.source`)."""
    return catalog.source(name, topic=topic, schema=schema)


def reference(name: str, *, topic: str, schema: Schema) -> Reference:
    """Declare a compacted reference topic in the worker's catalog (a global table to join)."""
    return catalog.reference(name, topic=topic, schema=schema)
