"""Declared pipelines made real on a Faust app: topics, tables and the batch path, once for every
source and pipeline; nothing is wired per use (:mod:`faustapp.lifecycle` keeps them running)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import Any

import faust
import msgspec

from faustapp import fastpath
from faustapp.api import (
    Catalog,
    Configured,
    DerivedOutput,
    Join,
    PipelineDecl,
    RankingDecl,
    Record,
    Reference,
    Source,
)
from faustapp.history import HistoryStore, keep_histories
from faustapp.pipeline import PipelineSpec, SourceRouter, WindowedPipeline
from faustapp.reference import ReferenceTable
from faustapp.repartition import (
    RegroupPipeline,
    ResultRelay,
    WatermarkedRouter,
    repartition_topic,
)
from faustapp.schema import Schema
from faustapp.settings import Settings, SettingsError
from faustapp.tables.measures import Max, Measure, Min
from faustapp.tables.ranking import Ranked
from faustapp.tables.regroup import RegroupSpec
from faustapp.tables.state import WindowSpec
from faustapp.tables.windows import tumbling
from faustapp.topics import DLQ, LATE

Declared = PipelineDecl | DerivedOutput | RankingDecl


@dataclass
class Deployment:
    """What one worker runs: a router per source, a windowed pipeline per selected pipeline."""

    routers: dict[str, SourceRouter] = field(default_factory=dict)
    references: dict[str, ReferenceTable] = field(default_factory=dict)
    pipelines: dict[str, WindowedPipeline] = field(default_factory=dict)
    selected: dict[str, Declared] = field(default_factory=dict)
    router_of: dict[str, SourceRouter] = field(default_factory=dict)
    """Router of each selected pipeline name (a derived output: its parent's source)."""
    outputs: dict[str, str] = field(default_factory=dict)
    """Output topic of every selected and every windowed pipeline (prefix applied)."""

    def source_topics(self) -> set[str]:
        """Input topics this worker reads."""
        return {router.source_topic for router in self.routers.values()}

    async def flush_due(self, force: bool = False) -> None:
        """Persist what every router's write-behind cache holds once its interval passed."""
        for router in self.routers.values():
            await router.flush_due(force=force)


def choose(
    catalog: Catalog, names: tuple[str, ...]
) -> list[PipelineDecl | DerivedOutput | RankingDecl]:
    """The declared pipelines ``FAUSTAPP_PIPELINES`` names, or a SettingsError listing them all."""
    try:
        return catalog.select(names)
    except KeyError as exc:
        raise SettingsError(
            f"FAUSTAPP_PIPELINES={','.join(names)!r}: unknown pipeline {exc.args[0]}; "
            f"choose from all, {', '.join(catalog.names())}"
        ) from None


def deploy(app: faust.App, settings: Settings, catalog: Catalog) -> Deployment:
    """Register every selected pipeline (and the windows its derived outputs need) on ``app``."""
    deployment = Deployment()
    chosen = choose(catalog, settings.pipelines)
    deployment.selected = {decl.name: decl for decl in chosen}
    needed = [n for d in chosen if isinstance(d, PipelineDecl) for n in d.needs]
    while needed:  # a chained pipeline runs what feeds it
        name = needed.pop()
        if name not in deployment.selected:
            decl = choose(catalog, (name,))[0]
            deployment.selected[name] = decl
            if isinstance(decl, PipelineDecl):
                needed.extend(decl.needs)
    windowed: dict[str, PipelineDecl] = {}  # in declaration order, parents of derived included
    for decl in catalog:
        if decl.name not in deployment.selected:
            continue
        if isinstance(decl, (DerivedOutput, RankingDecl)):
            windowed.setdefault(decl.parent.name, decl.parent)
        else:
            windowed.setdefault(decl.name, decl)
    by_source: dict[str, list[PipelineDecl]] = {}
    for decl in windowed.values():
        by_source.setdefault(decl.source.root.name, []).append(decl)
    for source_name, decls in by_source.items():
        source = catalog.sources[source_name]
        router = _deploy_source(app, settings, catalog, source, decls, deployment)
        deployment.routers[source_name] = router
    for decl in deployment.selected.values():
        if isinstance(decl, RankingDecl):
            _deploy_ranking(app, settings, decl, deployment)
    for name, decl in deployment.selected.items():
        parent = decl if isinstance(decl, PipelineDecl) else decl.parent
        root = parent.source.root.name
        deployment.router_of[name] = deployment.routers.get(
            f"{root}/{name}",
            deployment.routers.get(f"{root}/{parent.name}", deployment.routers[root]),
        )
    deployment.outputs = keep_histories(
        deployment.pipelines,
        deployment.selected.values(),
        settings.topic,
        lambda name, producer: HistoryStore(app, _table(app, settings, name), producer),
    )
    return deployment


def _deploy_source(
    app: faust.App,
    settings: Settings,
    catalog: Catalog,
    source: Source,
    decls: list[PipelineDecl],
    deployment: Deployment,
) -> SourceRouter:
    router = _router(app, settings, source.name, settings.topic(source.topic), source.schema)
    outputs: list[str] = []
    for decl in decls:
        spec = _spec(settings, catalog, decl, deployment.selected)
        join = decl.source.join_spec
        if join is not None:
            table = _reference(app, settings, join.reference, deployment)
            spec = replace(spec, enrich=_enricher(join, table, decl.source.schema.record_type))
            if table.loaded not in router.gates:
                router.gates.append(table.loaded)
        outputs += [topic for topic, _ in spec.derived] + ([spec.output_topic] if spec.emit else [])
        if decl.by is None:
            deployment.pipelines[decl.name] = router.add(spec, _table(app, settings, decl.table))
            continue
        # Regrouped: lateness and forwarding here, the windows behind a repartition topic.
        topic = settings.topic(repartition_topic(settings.app_id, decl.name))
        upstream = replace(
            spec, output_topic=topic, key_field=source.schema.key, emit=False, derived=()
        )
        regroup = RegroupSpec(
            decl.windows,
            settings.grace_ms,
            attrgetter(decl.by),
            where=decl.where,
            explode=decl.explode.records if decl.explode is not None else None,
        )
        table = _table(app, settings, f"{decl.name}-regroup")
        router.attach(
            RegroupPipeline(app, upstream, table, router.producer, regroup, settings.partitions)
        )
        downstream = _router(
            app,
            settings,
            f"{decl.name}-repartition",
            topic,
            decl.schema.regrouped(decl.by),
            feeding=settings.partitions,
        )
        # Filtered upstream: what arrives downstream is windowed whole.
        regrouped = replace(spec, window=replace(spec.window, watermarked=True, where=None))
        table = _table(app, settings, decl.table)
        deployment.pipelines[decl.name] = downstream.add(regrouped, table)
        deployment.routers[f"{source.name}/{decl.name}"] = downstream
        _subscribe(app, settings, downstream)
    names = dict.fromkeys([*outputs, settings.topic(LATE), settings.topic(DLQ)])
    for each in (
        router,
        *(r for n, r in deployment.routers.items() if n.startswith(f"{source.name}/")),
    ):
        each.declare_outputs(_topic(app, settings, name, prefixed=False) for name in names)
    _subscribe(app, settings, router)
    return router


def _reference(
    app: faust.App, settings: Settings, reference: Reference, deployment: Deployment
) -> ReferenceTable:
    """The worker's copy of a reference topic (one per topic, started with the app)."""
    table = deployment.references.get(reference.name)
    if table is None:
        # faustapp creates the topic compacted when it is missing, like its own topics.
        topic = app.topic(
            settings.topic(reference.topic),
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.partitions,
            internal=True,
            compacting=True,
        )
        table = ReferenceTable(
            reference.name,
            settings.topic(reference.topic),
            reference.schema,
            settings.bootstrap_servers,
            declare=topic.maybe_declare,
        )
        deployment.references[reference.name] = table
        app.service(table)
    return table


def _enricher(join: Join, table: ReferenceTable, enriched: type) -> Callable[[Any], Any]:
    """Each record with the reference row's fields copied in, looked up now."""
    on, pairs, missing = attrgetter(join.on), list(join.fields.items()), join.missing
    as_dict = msgspec.structs.asdict

    def enrich(record: Any) -> Any:
        row = table.get(on(record))
        if row is None:
            return enriched(**as_dict(record), **missing)
        return enriched(**as_dict(record), **{name: getattr(row, taken) for name, taken in pairs})

    return enrich


def _deploy_ranking(
    app: faust.App, settings: Settings, ranking: RankingDecl, deployment: Deployment
) -> None:
    """The second stage of a global top-K: the parent's final rows of a window, relayed under
    one key with watermarks, ranked once every feeding partition has closed that window."""
    topic = settings.topic(repartition_topic(settings.app_id, ranking.name))
    parent = deployment.pipelines[ranking.parent.name]
    parent.relay = ResultRelay(topic, ranking.key, settings.partitions)
    row = msgspec.defstruct(
        f"{ranking.name}-row",
        [
            ("rank_key", str),
            ("ts", int),
            ("window_start", int),
            ("window_end", int),
            (ranking.parent.key, Any),
            (ranking.score, Any),
            *((name, Any) for name in ranking.fields),
        ],
        bases=(Record,),
    )
    ranked = Ranked(
        ranking.k,
        id_field=ranking.parent.key,
        score=ranking.score,
        fields=ranking.fields,
        above=ranking.above,
    )
    measures = {
        "window_start": Min("window_start"),
        "window_end": Max("window_end"),
        "items": Measure("ranking", ranked, ranked.ranking),
    }
    spec = PipelineSpec(
        name=ranking.name,
        output_topic=settings.topic(ranking.output),
        key_field="rank_key",
        window=WindowSpec.of(tumbling(ranking.step_ms), settings.grace_ms, measures, True),
        late_topic=settings.topic(LATE),
        select=_ranking_record,
    )
    router = _router(
        app,
        settings,
        f"{ranking.name}-ranking",
        topic,
        Schema(row, key="rank_key", ts="ts", key_is_id=False),
        feeding=settings.partitions,
    )
    deployment.pipelines[ranking.name] = router.add(spec, _table(app, settings, ranking.table))
    deployment.routers[f"{ranking.parent.source.name}/{ranking.name}"] = router
    router.declare_outputs(
        _topic(app, settings, name, prefixed=False)
        for name in (spec.output_topic, settings.topic(LATE), settings.topic(DLQ))
    )
    _subscribe(app, settings, router)


def _ranking_record(result: dict[str, Any]) -> dict[str, Any] | None:
    """A window's ranking as published (nothing when no row made it)."""
    if not result["items"]:
        return None
    return {
        "window_start": int(result["window_start"]),
        "window_end": int(result["window_end"]),
        "items": result["items"],
    }


def _spec(
    settings: Settings,
    catalog: Catalog,
    decl: PipelineDecl,
    selected: dict[str, Declared],
) -> PipelineSpec:
    derived = tuple(
        (settings.topic(d.output), _built(d.select, settings))
        for d in catalog
        if isinstance(d, DerivedOutput) and d.parent is decl and d.name in selected
    )
    return PipelineSpec(
        name=decl.name,
        output_topic=settings.topic(decl.output),
        key_field=decl.key,
        window=WindowSpec.of(decl.windows, settings.grace_ms, decl.measures, where=decl.where),
        late_topic=settings.topic(LATE),
        select=_built(decl.select, settings),
        emit=decl.name in selected,
        derived=derived,
    )


def _router(
    app: faust.App,
    settings: Settings,
    name: str,
    topic: str,
    schema: Schema,
    feeding: int | None = None,
) -> SourceRouter:
    options: dict[str, Any] = {
        "dlq_topic": settings.topic(DLQ),
        "max_future_skew_ms": settings.max_future_skew_ms,
        "flush_interval_ms": settings.flush_interval_ms,
    }
    if feeding is None:
        return SourceRouter(app, name, topic, settings.partitions, schema, **options)
    return WatermarkedRouter(
        app, name, topic, settings.partitions, schema, feeding=feeding, **options
    )


def _subscribe(app: faust.App, settings: Settings, router: SourceRouter) -> None:
    """An agent subscribes the topic (faustapp creates it, with the configured partitions);
    with the batch path on, the agent receives nothing and the router gets the batches."""
    input_topic = _topic(app, settings, router.source_topic, internal=True, prefixed=False)

    async def consume(stream: Any) -> None:
        """Feed the topic's records to its pipelines in per-partition batches (Stream path)."""
        async for events in stream.take_events(
            settings.batch_size, settings.batch_within_ms / 1000
        ):
            await router.process([event.message for event in events])

    app.agent(input_topic, name=f"faustapp.sources.{router.name}")(consume)
    if settings.batch_drain:
        fastpath.register(router.source_topic, router.handle_batch)


def _table(app: faust.App, settings: Settings, name: str) -> faust.Table:
    return app.Table(name, partitions=settings.partitions, key_type=bytes, value_type=bytes)


def _built(step: Any, settings: Settings) -> Any:
    return step.build(settings) if isinstance(step, Configured) else step


def _topic(
    app: faust.App, settings: Settings, name: str, *, internal: bool = False, prefixed: bool = True
) -> faust.TopicT:
    return app.topic(
        settings.topic(name) if prefixed else name,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
        internal=internal,
    )
