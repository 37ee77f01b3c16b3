"""The HTTP API described as OpenAPI 3.0 data, built for what one worker serves: its paths, its
running pipelines' names, and the bearer tokens when they are set, so clients and fuzzers can
rely on every documented shape."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from faustapp import __version__ as faustapp_version
from faustapp.openapi_schemas import SCHEMAS, STR, TOP_MAX_N, ref
from faustapp.runtime import Deployment
from faustapp.settings import Settings

Schema = dict[str, Any]

MAX_ID = 256
ITEMS_MAX_N = 100
ID_PATTERN = r"^[^/\u0000-\u001f\u007f-\u009f]+$"
"""Ids faustapp accepts: 1-256 characters, no control characters, no '/'."""

_PLACEHOLDER = re.compile(r"\{([^{}:]+)(?::[^{}]*)?\}")


RETRY_AFTER = {
    "description": "seconds to wait before retrying",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}
SERVED_BY = {
    "description": "the worker whose state answered (the owner of the key's partition)",
    "schema": STR,
}


def _json(description: str, schema: Schema, headers: Schema | None = None) -> Schema:
    out: Schema = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def _error(description: str, headers: Schema | None = None) -> Schema:
    return _json(description, ref("Error"), headers)


def _text(description: str, media: str) -> Schema:
    return {"description": description, "content": {media: {"schema": STR}}}


def _unavailable(what: str) -> Schema:
    return _error(what, {"Retry-After": RETRY_AFTER})


def _id_param(name: str, description: str) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ID, "pattern": ID_PATTERN},
    }


def _query(name: str, description: str, schema: Schema) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _n(maximum: int, default: int) -> Schema:
    return _query(
        "n",
        f"how many rows, 1-{maximum}",
        {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
    )


def _get(summary: str, responses: Schema, parameters: list[Schema] | None = None) -> Schema:
    op: Schema = {"summary": summary, "responses": responses}
    if parameters:
        op["parameters"] = parameters
    return {"get": op}


def _paths(pipelines: list[str]) -> dict[str, Schema]:
    """Every path faustapp can serve, keyed as OpenAPI writes them."""
    bad_id = _error("invalid id (empty, too long, a control character or '/')")
    rebalance = _unavailable("partition owners are being reassigned, or a peer did not answer")
    name = {
        "name": "name",
        "in": "path",
        "required": True,
        "description": "a pipeline this worker runs (see /api/pipelines)",
        "schema": {"type": "string", "enum": pipelines} if pipelines else STR,
    }
    key = {**_id_param("key", "the key, as in the pipeline's key field")}
    key_q = _query("key", "only this key's results", {**key["schema"]})
    unknown = _error("unknown pipeline")
    return {
        "/api/health": _get(
            "Readiness of this worker",
            {
                "200": _json("owns its partitions and their state is recovered", ref("Health")),
                "503": _json(
                    "rebalancing or recovering", ref("Health"), {"Retry-After": RETRY_AFTER}
                ),
            },
        ),
        "/api/sensors/{sensor_id}": _get(
            "Open 1-minute (and 5-minute) windows of one sensor, from the worker that owns it",
            {
                "200": _json(
                    "the sensor's open windows", ref("Sensor"), {"X-Faustapp-Served-By": SERVED_BY}
                ),
                "400": bad_id,
                "404": _error("no open window for this sensor"),
                "503": rebalance,
            },
            [_id_param("sensor_id", "the sensor id")],
        ),
        "/api/items/{item_id}/co-views": _get(
            "How many sessions viewed this item with each other item",
            {
                "200": _json("the item's co-view row", ref("CoViews")),
                "400": bad_id,
                "404": _error("never viewed with another item"),
                "503": rebalance,
            },
            [_id_param("item_id", "the item id")],
        ),
        "/api/items/{item_id}/also-viewed": _get(
            "The items most often viewed in the same session as this one",
            {
                "200": _json("count descending, then item id ascending", ref("AlsoViewed")),
                "400": _error("invalid id or n"),
                "404": _error("never viewed with another item"),
                "503": rebalance,
            },
            [_id_param("item_id", "the item id"), _n(ITEMS_MAX_N, 5)],
        ),
        "/api/users/{user_id}/recommendations": _get(
            "Items to suggest from the co-views of the user's last final session",
            {
                "200": _json("score descending, then item id ascending", ref("Recommendations")),
                "400": _error("invalid id or n"),
                "404": _error("the user has no final session yet"),
                "503": rebalance,
            },
            [_id_param("user_id", "the user id"), _n(ITEMS_MAX_N, 5)],
        ),
        "/api/pipelines": _get(
            "Every windowed pipeline this worker runs",
            {"200": _json("name, topics, key, window, grace and fields", ref("Pipelines"))},
        ),
        "/api/pipelines/{name}/keys/{key}": _get(
            "A key's open windows and its last final results, from the worker that owns it",
            {
                "200": _json(
                    "open windows oldest first, results newest first",
                    ref("KeyState"),
                    {"X-Faustapp-Served-By": {**SERVED_BY, "required": True}},
                ),
                "400": bad_id,
                "404": _error("unknown pipeline, or a key with no open window and no result"),
                "503": rebalance,
            },
            [name, key],
        ),
        "/api/pipelines/{name}/top": _get(
            "The n keys with the highest (or lowest) value of a numeric field, from every worker",
            {
                "200": _json("ties by key ascending; partial names missing partitions", ref("Top")),
                "400": _error("unknown or non-numeric field, or a bad n, order or window"),
                "404": unknown,
                "503": rebalance,
            },
            [
                name,
                _query(
                    "field",
                    "a numeric output field (see numeric_fields)",
                    {"type": "string", "default": "count"},
                ),
                _n(TOP_MAX_N, 10),
                _query(
                    "order",
                    "desc: highest first",
                    {"type": "string", "enum": ["desc", "asc"], "default": "desc"},
                ),
                _query(
                    "window",
                    "final: each key's latest final window; open: its open windows",
                    {"type": "string", "enum": ["final", "open"], "default": "final"},
                ),
            ],
        ),
        "/api/pipelines/{name}/stream": _get(
            "Server-Sent Events of final results as committed; the event id is the Kafka position",
            {
                "200": _text(
                    "`id: p:offset,...`, `event: result`, `data: <result JSON>`",
                    "text/event-stream",
                ),
                "400": _error("invalid key, from or Last-Event-ID"),
                "404": unknown,
                "503": rebalance,
            },
            [
                name,
                key_q,
                _query(
                    "from",
                    "where a new stream starts",
                    {"type": "string", "enum": ["latest", "earliest"], "default": "latest"},
                ),
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "description": "resume right after this event (partition:next_offset,...)",
                    "schema": {"type": "string", "pattern": r"^[0-9]+:[0-9]+(,[0-9]+:[0-9]+)*$"},
                },
            ],
        ),
        "/metrics": _get(
            "Prometheus metrics", {"200": _text("Prometheus text format", "text/plain")}
        ),
        "/openapi.json": _get(
            "This description", {"200": _json("OpenAPI 3.0", {"type": "object"})}
        ),
        "/docs": _get("The API description as a page", {"200": _text("HTML", "text/html")}),
        "/": _get("The live page", {"200": _text("HTML", "text/html")}),
    }


def template(path: str) -> str:
    """A route pattern with its placeholders blanked (``/a/{x:[^/]+}`` -> ``/a/{}``), to match
    a Faust or aiohttp route with an OpenAPI path."""
    return _PLACEHOLDER.sub("{}", path)


def pipeline_names(deployment: Deployment) -> list[str]:
    """Names the pipeline views answer for: every selected pipeline and every windowed one."""
    return sorted(set(deployment.selected) | set(deployment.pipelines))


API_TOKEN = "apiToken"
METRICS_TOKEN = "metricsToken"
PUBLIC = ("/", "/docs", "/openapi.json")


def _secure(path: str, op: Schema, settings: Settings) -> None:
    """Mark the tokens a path needs (as the middleware of :mod:`faustapp.web_auth` checks)."""
    if path in PUBLIC or path.startswith("/static/"):
        return
    if path == "/metrics":
        schemes = [METRICS_TOKEN] if settings.metrics_token else []
    elif path == "/api/health":
        schemes = [METRICS_TOKEN, API_TOKEN] if settings.metrics_token else []
        schemes = [s for s in schemes if s != API_TOKEN or settings.api_token]
    else:
        schemes = [API_TOKEN] if settings.api_token else []
    if not schemes:
        return
    op["security"] = [{scheme: []} for scheme in schemes]
    op["responses"]["401"] = _error(
        "missing or invalid bearer token",
        {"WWW-Authenticate": {"required": True, "schema": STR}},
    )


def _static(path: str, files: list[str]) -> Schema:
    param = {
        "name": "file",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": sorted(files)},
    }
    return _get(
        "An asset of the live page",
        {"200": {"description": "the file"}, "404": _error("no such file")},
        [param],
    )


def build(
    deployment: Deployment,
    settings: Settings | None,
    served: Iterable[str],
    static_files: dict[str, list[str]] | None = None,
) -> Schema:
    """The description of what this worker serves; ``served`` are its route patterns (a path
    is described only when it is mounted), ``static_files`` the page's assets by folder."""
    settings = settings or Settings()
    mounted = {template(path) for path in served}
    paths = {
        path: spec
        for path, spec in _paths(pipeline_names(deployment)).items()
        if template(path) in mounted
    }
    for folder, files in (static_files or {}).items():
        paths[f"{folder}/{{file}}"] = _static(folder, files)
    for path, spec in paths.items():
        _secure(path, spec["get"], settings)
    schemes = {}
    if settings.api_token:
        schemes[API_TOKEN] = {
            "type": "http",
            "scheme": "bearer",
            "description": "FAUSTAPP_API_TOKEN: every /api path but /api/health",
        }
    if settings.metrics_token:
        schemes[METRICS_TOKEN] = {
            "type": "http",
            "scheme": "bearer",
            "description": "FAUSTAPP_METRICS_TOKEN: /metrics and /api/health",
        }
    components: Schema = {"schemas": SCHEMAS}
    if schemes:
        components["securitySchemes"] = schemes
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "faustapp",
            "version": faustapp_version,
            "description": (
                "Live window state, final results, rankings and pushed results of every "
                "pipeline a faustapp worker runs. Any worker answers any key. Errors are "
                '{"error": reason, "status": code}.'
            ),
        },
        "paths": dict(sorted(paths.items())),
        "components": components,
    }
