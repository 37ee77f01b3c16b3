"""What every running pipeline is, as the HTTP views describe and query it: topics, key, window,
aggregates, the fields of its results, and where its state and history live."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from faustapp.api import DerivedOutput, PipelineDecl, RankingDecl
from faustapp.history import ResultHistory
from faustapp.pipeline import SourceRouter, WindowedPipeline
from faustapp.runtime import Declared, Deployment
from faustapp.tables.measures import Measure
from faustapp.tables.windows import (
    FOREVER_MS,
    HoppingWindows,
    SessionWindows,
    SlidingWindows,
)

log = logging.getLogger(__name__)

Record = dict[str, Any]
Project = Callable[[Record], Record | None]

NOT_FIGURES = ("window_start", "window_end", "ts")
"""Numbers of a result that are times, not figures: ``top`` does not rank by them."""
SAMPLE_COUNT = 1_000_000_000
SAMPLE_CARRIED = 1e12
"""A probe's sample result: counts large and carried values far from the means, so that
threshold rules (alerts) publish it and its fields can be read off."""


@dataclass(frozen=True)
class Entry:
    """One pipeline name the views answer for: its description and where its data lives."""

    name: str
    pipeline: WindowedPipeline
    """The windowed pipeline whose windows it reads (a derived output's parent)."""
    router: SourceRouter
    history: ResultHistory | None
    input_topic: str
    output_topic: str
    key_field: str
    window: dict[str, Any]
    grace_ms: int
    aggregates: list[dict[str, Any]]
    output_fields: list[str]
    numeric_fields: list[str]
    project: Project = field(repr=False)
    """A running result (key, bounds and figures) as this output would publish it."""

    def describe(self) -> dict[str, Any]:
        """The ``/api/pipelines`` shape."""
        return {
            "name": self.name,
            "input_topic": self.input_topic,
            "output_topic": self.output_topic,
            "key_field": self.key_field,
            "window": self.window,
            "grace_ms": self.grace_ms,
            "aggregates": self.aggregates,
            "output_fields": self.output_fields,
            "numeric_fields": self.numeric_fields,
        }


def entries(deployment: Deployment) -> dict[str, Entry]:
    """Every selected pipeline and every windowed one that runs, by name."""
    decls: dict[str, Declared] = {}
    for decl in deployment.selected.values():
        if isinstance(decl, (DerivedOutput, RankingDecl)):
            decls.setdefault(decl.parent.name, decl.parent)
        decls[decl.name] = decl
    found = {}
    for name in sorted(set(deployment.selected) | set(deployment.pipelines)):
        decl = decls.get(name)
        if decl is None:
            continue
        try:
            found[name] = _entry(deployment, decl)
        except KeyError:  # not running on this worker after all (nothing windows it)
            log.warning("pipeline %s is selected but has no windows to query", name)
    return found


def _entry(deployment: Deployment, decl: Declared) -> Entry:
    windowed = decl.name if not isinstance(decl, DerivedOutput) else decl.parent.name
    pipeline = deployment.pipelines[windowed]
    spec = pipeline.spec
    parent = decl if isinstance(decl, PipelineDecl) else decl.parent
    if isinstance(decl, RankingDecl):
        key_field = spec.key_field
        aggregates = [{"name": "items", "kind": "ranking", "field": decl.score}]
    else:
        key_field = parent.key
        aggregates = [_aggregate(name, m) for name, m in parent.measures.items()]
    project = _projection(pipeline, deployment.outputs.get(decl.name), decl.name == windowed)
    sample = _sample(parent, decl, key_field)
    output_fields, numeric_fields = probe(project, sample, key_field)
    return Entry(
        name=decl.name,
        pipeline=pipeline,
        router=_router_of(deployment, pipeline),
        history=pipeline.history,
        input_topic=deployment.routers[parent.source.root.name].source_topic,
        output_topic=deployment.outputs.get(decl.name, spec.output_topic),
        key_field=key_field,
        window=window_of(parent),
        grace_ms=spec.window.grace_ms,
        aggregates=aggregates,
        output_fields=output_fields,
        numeric_fields=numeric_fields,
        project=project,
    )


def _router_of(deployment: Deployment, pipeline: WindowedPipeline) -> SourceRouter:
    """The router that feeds ``pipeline`` (whose partitions hold its state)."""
    for router in deployment.routers.values():
        if pipeline in router.pipelines:
            return router
    raise KeyError(pipeline.spec.name)


def window_of(decl: PipelineDecl) -> dict[str, Any]:
    """Kind and sizes of a pipeline's windows (a derived output or ranking: its parent's)."""
    windows = decl.windows
    if isinstance(windows, HoppingWindows) and windows.size_ms >= FOREVER_MS:
        # A running table that never closes (``forever()``): one window, no size, no results.
        return {"kind": "tumbling", "size_ms": None, "step_ms": None, "gap_ms": None}
    if isinstance(windows, HoppingWindows):
        kind = "tumbling" if windows.size_ms == windows.step_ms else "hopping"
        return {
            "kind": kind,
            "size_ms": windows.size_ms,
            "step_ms": windows.step_ms,
            "gap_ms": None,
        }
    if isinstance(windows, SessionWindows):
        return {"kind": "session", "size_ms": None, "step_ms": None, "gap_ms": windows.gap_ms}
    return {"kind": "sliding", "size_ms": windows.size_ms, "step_ms": None, "gap_ms": None}


def _aggregate(name: str, measure: Measure) -> dict[str, Any]:
    named = getattr(measure.state, "field", None)
    return {"name": name, "kind": measure.kind, "field": named if isinstance(named, str) else None}


def _projection(pipeline: WindowedPipeline, topic: str | None, own: bool) -> Project:
    """How a windowed result becomes the record this output publishes: the pipeline's
    ``select``, then (for a derived output) the derived one's."""
    spec = pipeline.spec
    select = spec.select
    then = None if own else dict(spec.derived).get(topic)

    def project(result: Record) -> Record | None:
        published = result if select is None else select(result)
        if published is None or then is None:
            return published
        return then(dict(published))

    return project


def _sample(parent: PipelineDecl, decl: Declared, key_field: str) -> Record:
    """A made-up result of the parent's windows, each figure of the type it has."""
    schema = parent.schema
    windows = parent.windows
    size = getattr(windows, "size_ms", None) or getattr(windows, "gap_ms", 1)
    result: Record = {key_field: "key"}
    if isinstance(windows, SlidingWindows):
        result["ts"] = size
        for name in windows.carry:
            result[name] = SAMPLE_CARRIED if name in schema.numeric else "value"
    result["window_start"], result["window_end"] = 0, size
    if isinstance(decl, RankingDecl):
        result["items"] = [{parent.key: "key", decl.score: 1.0}]
        return result
    for name, measure in parent.measures.items():
        result[name] = _sample_figure(measure, schema)
    return result


def _sample_figure(measure: Measure, schema: Any) -> Any:
    kind = measure.kind
    if kind in ("count", "distinct"):
        return SAMPLE_COUNT
    if kind in ("first", "last"):
        named = getattr(measure.state, "field", None)
        numeric = not isinstance(named, str) or named in schema.numeric or named == schema.ts
        return 1.0 if numeric else "value"
    if kind == "distinct_list":
        return ["value"]
    if kind == "count_by":
        return {"value": 1}
    if kind == "top":
        return [{"value": "value", "count": 1}]
    return 1.0


def probe(project: Project, sample: Record, key_field: str) -> tuple[list[str], list[str]]:
    """The fields of what ``project`` publishes for ``sample`` and which of them are numbers;
    the sample's own fields when the projection refuses it (no rule of the output fires)."""
    try:
        published = project(dict(sample))
    except Exception:  # a select that cannot take made-up figures: describe what we know
        published = None
    record = published if isinstance(published, dict) else sample
    numeric = [
        name
        for name, value in record.items()
        if isinstance(value, (int, float))
        and not isinstance(value, bool)
        and name != key_field
        and name not in NOT_FIGURES
    ]
    return list(record), numeric
