"""HTTP views over live window state, answered by whichever worker is asked."""

from __future__ import annotations

import logging

import aiohttp
import faust
import orjson
from faust.types import TP
from faust.web import Request, Response, View
from yarl import URL

from faustapp.pipeline import PartitionNotReady, WindowedPipeline, partition_for
from faustapp.records import InvalidRecord, _sensor_id
from faustapp.runtime import Deployment
from faustapp.web_auth import peer_headers, settings_of

log = logging.getLogger(__name__)

RETRY_AFTER_S = 2
FORWARDED_HEADER = "X-Faustapp-Forwarded"
SERVED_BY_HEADER = "X-Faustapp-Served-By"
PEER_TIMEOUT_S = 5.0


def json_response(web: View, body: object, status: int = 200, **headers: str) -> Response:
    """A JSON response encoded with orjson (figures keyed by numbers included)."""
    return web.bytes(
        orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS),
        content_type="application/json",
        status=status,
        headers=headers,
    )


def here(app: faust.App) -> str:
    """This worker's URL, as peers name it in their partition owners."""
    return str(app.conf.canonical_url)


def served_here(app: faust.App) -> dict[str, str]:
    """The header of an answer this worker gave from its own state."""
    return {SERVED_BY_HEADER: here(app)}


def error(web: View, status: int, message: str, **headers: str) -> Response:
    """Every error is JSON with an ``error`` field, never an HTML page or a bare 500."""
    return json_response(web, {"error": message, "status": status}, status, **headers)


def unavailable(web: View, reason: str) -> Response:
    """503 that tells clients when to come back."""
    return error(web, 503, reason, **{"Retry-After": str(RETRY_AFTER_S)})


class OwnerUnknown(Exception):
    """No worker is known to own the key's partition right now (a rebalance)."""


def owner_of(app: faust.App, table_name: str, key: str) -> URL | None:
    """The worker that owns ``key`` in the table (its partition: murmur2 of the key's UTF-8
    bytes, as the records were partitioned); None when it is this worker."""
    table = app.tables[table_name]
    # The partition is computed here, not from the producer's metadata: a table nothing was
    # written to yet has none.
    tp = TP(table.changelog_topic.get_topic_name(), partition_for(key, table.partitions))
    url = app.assignor._tps_url.get(tp)
    if url is None:  # no owner known: a rebalance is assigning it
        raise OwnerUnknown("partition owners are being reassigned (rebalance)")
    owner = URL(url)
    here = app.conf.canonical_url
    if (owner.host, owner.port) == (here.host, here.port):
        return None
    return owner


async def route_to_owner(
    app: faust.App, web: View, request: Request, table_name: str, key: str
) -> Response | None:
    """Proxy the request to the worker that owns ``key``; None when that is this worker."""
    if request.headers.get(FORWARDED_HEADER):
        return None  # one hop only: the sender believed we own it, answer from local state
    try:
        owner = owner_of(app, table_name, key)
    except OwnerUnknown as exc:
        return unavailable(web, str(exc))
    if owner is None:
        return None
    url = request.url.with_host(owner.host).with_port(owner.port)
    try:
        async with app.http_client.get(
            url,
            headers=peer_headers(settings_of(app)),
            timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_S),
        ) as upstream:
            body = await upstream.read()
            headers = {SERVED_BY_HEADER: str(owner)}
            if "Retry-After" in upstream.headers:
                headers["Retry-After"] = upstream.headers["Retry-After"]
            return web.bytes(
                body,
                content_type=upstream.content_type or "application/json",
                status=upstream.status,
                headers=headers,
            )
    except (aiohttp.ClientError, TimeoutError) as exc:
        return unavailable(web, f"owner {owner} did not answer: {exc.__class__.__name__}")


def open_windows(deployment: Deployment, pipeline: WindowedPipeline, key: str) -> list[dict]:
    """Open windows of one key with their running figures, oldest first."""
    spec = pipeline.spec.window
    router = deployment.router_of[pipeline.spec.name]
    return [
        {
            "window_start": state.window.start,
            "window_end": state.window.end,
            **state.figures(spec),
        }
        for state in router.state_for(pipeline, key).windows_of(key)
    ]


WINDOWED_VIEWS = {"sensor-stats-1m": "windows", "sensor-stats-5m": "windows_5m"}


def sensor_view(deployment: Deployment, sensor_id: str) -> dict[str, object] | None:
    """The sensor's open 1-minute (and 5-minute) windows, or None when it has none."""
    pipelines = deployment.pipelines
    found = {
        field: open_windows(deployment, pipelines[name], sensor_id)
        for name, field in WINDOWED_VIEWS.items()
        if name in pipelines
    }
    if not any(found.values()):
        return None
    return {
        "sensor_id": sensor_id,
        "pipeline": "sensor-stats-1m",
        "grace_ms": deployment.routers["sensors"].pipelines[0].spec.window.grace_ms,
        "windows": found.get("windows", []),
        **{k: v for k, v in found.items() if k != "windows"},
    }


def install(app: faust.App, deployment: Deployment) -> None:
    """Mount faustapp's views on ``app`` for what ``deployment`` runs."""
    sensors = deployment.routers.get("sensors")
    if sensors is not None:
        _install_sensor_view(app, deployment, sensors.pipelines[0].store.table.name)
    _install_health(app, deployment)


def _install_sensor_view(app: faust.App, deployment: Deployment, table_name: str) -> None:
    @app.page("/api/sensors/{sensor_id:[^/]+}")  # any id but '/', braces included
    class SensorView(View):
        """Live state of one sensor: its open 1-minute windows."""

        async def get(self, request: Request, sensor_id: str) -> Response:
            """Answer from the owner of the sensor's partition; never a 500."""
            try:
                return await self._answer(request, sensor_id)
            except Exception:  # a state we did not foresee: say so, log it, let the client retry
                log.exception("GET /api/sensors/%s failed", sensor_id)
                return unavailable(self, "internal error while answering; retry")

        async def _answer(self, request: Request, sensor_id: str) -> Response:
            try:
                _sensor_id(sensor_id)
            except InvalidRecord as exc:
                return error(self, 400, f"invalid sensor id: {exc}")
            routed = await route_to_owner(app, self, request, table_name, sensor_id)
            if routed is not None:
                return routed
            served = served_here(app)
            try:
                found = sensor_view(deployment, sensor_id)
            except PartitionNotReady as exc:
                return error(self, 503, str(exc), **{"Retry-After": str(RETRY_AFTER_S)}, **served)
            if found is None:
                return error(self, 404, f"unknown sensor {sensor_id!r}: no open window", **served)
            return json_response(self, found, **served)


def _install_health(app: faust.App, deployment: Deployment) -> None:
    @app.page("/api/health")
    class HealthView(View):
        """Readiness: 200 once this worker owns its partitions and their state is recovered."""

        async def get(self, request: Request) -> Response:
            """503 with the reason while rebalancing or recovering, so probes and clients wait."""
            by_topic: dict[str, list[int]] = {t: [] for t in sorted(deployment.source_topics())}
            for tp in app.assignor.assigned_actives():
                if tp.topic in by_topic:
                    by_topic[tp.topic].append(tp.partition)
            body = {
                "status": "ok",
                "worker": str(app.conf.canonical_url),
                "processing_guarantee": app.conf.processing_guarantee.value,
                # Inputs are co-partitioned: a worker owns the same partitions of each.
                "active_partitions": sorted({p for parts in by_topic.values() for p in parts}),
                "active_partitions_by_topic": {t: sorted(p) for t, p in by_topic.items()},
                "pipelines": sorted(deployment.selected),
                "rebalancing": bool(app.rebalancing),
                "recovered": bool(app.tables.actives_ready),
            }
            if app.rebalancing or not app.tables.actives_ready:
                body["status"] = "recovering" if not app.tables.actives_ready else "rebalancing"
                return json_response(self, body, 503, **{"Retry-After": str(RETRY_AFTER_S)})
            return json_response(self, body)
