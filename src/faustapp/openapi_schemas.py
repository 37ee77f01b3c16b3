"""JSON shapes of faustapp's HTTP answers, as OpenAPI 3.0 schema objects (see
:mod:`faustapp.openapi`): one place for every body a client parses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Schema = dict[str, Any]

TOP_MAX_N = 1000


def ref(name: str) -> Schema:
    """A reference to one of :data:`SCHEMAS`."""
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: Iterable[str], props: Schema, extra: bool = True) -> Schema:
    """An object schema; ``extra``: whether more properties than ``props`` may appear."""
    return {
        "type": "object",
        "required": list(required),
        "properties": props,
        "additionalProperties": extra,
    }


INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
STR: Schema = {"type": "string"}
NULL_INT: Schema = {"type": "integer", "nullable": True}

SCHEMAS: dict[str, Schema] = {
    "Error": obj(
        ["error", "status"],
        {"error": {"type": "string", "minLength": 1}, "status": {**INT, "minimum": 400}},
        extra=False,
    ),
    "Health": obj(
        ["status", "worker", "active_partitions", "pipelines", "rebalancing", "recovered"],
        {
            "status": {"type": "string", "enum": ["ok", "recovering", "rebalancing"]},
            "worker": STR,
            "processing_guarantee": {"type": "string", "enum": ["at_least_once", "exactly_once"]},
            "active_partitions": {"type": "array", "items": INT},
            "active_partitions_by_topic": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": INT},
            },
            "pipelines": {"type": "array", "items": STR},
            "rebalancing": {"type": "boolean"},
            "recovered": {"type": "boolean"},
        },
    ),
    "Window": obj(["window_start", "window_end"], {"window_start": INT, "window_end": INT}),
    "Sensor": obj(
        ["sensor_id", "pipeline", "grace_ms", "windows"],
        {
            "sensor_id": STR,
            "pipeline": STR,
            "grace_ms": INT,
            "windows": {"type": "array", "items": ref("Window")},
            "windows_5m": {"type": "array", "items": ref("Window")},
        },
    ),
    "CoViews": obj(
        ["item_id", "co"],
        {"item_id": STR, "co": {"type": "object", "additionalProperties": INT}},
        extra=False,
    ),
    "AlsoViewed": obj(
        ["item_id", "items"],
        {
            "item_id": STR,
            "items": {
                "type": "array",
                "items": obj(["item_id", "sessions"], {"item_id": STR, "sessions": INT}, False),
            },
        },
        extra=False,
    ),
    "Recommendations": obj(
        ["user_id", "based_on", "items"],
        {
            "user_id": STR,
            "based_on": {"type": "array", "items": STR},
            "items": {
                "type": "array",
                "items": obj(["item_id", "score"], {"item_id": STR, "score": INT}, False),
            },
        },
        extra=False,
    ),
    "Pipeline": obj(
        [
            "name",
            "input_topic",
            "output_topic",
            "key_field",
            "window",
            "grace_ms",
            "aggregates",
            "output_fields",
            "numeric_fields",
        ],
        {
            "name": STR,
            "input_topic": STR,
            "output_topic": STR,
            "key_field": STR,
            "window": obj(
                ["kind", "size_ms", "step_ms", "gap_ms"],
                {
                    "kind": {
                        "type": "string",
                        "enum": ["tumbling", "hopping", "sliding", "session"],
                    },
                    "size_ms": NULL_INT,
                    "step_ms": NULL_INT,
                    "gap_ms": NULL_INT,
                },
            ),
            "grace_ms": INT,
            "aggregates": {
                "type": "array",
                "items": obj(
                    ["name", "kind", "field"],
                    {"name": STR, "kind": STR, "field": {"type": "string", "nullable": True}},
                ),
            },
            "output_fields": {"type": "array", "items": STR},
            "numeric_fields": {"type": "array", "items": STR},
        },
    ),
    "Pipelines": obj(
        ["pipelines"], {"pipelines": {"type": "array", "items": ref("Pipeline")}}, False
    ),
    "KeyState": obj(
        ["pipeline", "key", "open_windows", "results"],
        {
            "pipeline": STR,
            "key": STR,
            "open_windows": {"type": "array", "items": ref("Window")},
            "results": {"type": "array", "maxItems": 10, "items": {"type": "object"}},
        },
    ),
    "Top": obj(
        [
            "pipeline",
            "field",
            "order",
            "window",
            "n",
            "rows",
            "partial",
            "missing_partitions",
            "workers",
        ],
        {
            "pipeline": STR,
            "field": STR,
            "order": {"type": "string", "enum": ["desc", "asc"]},
            "window": {"type": "string", "enum": ["final", "open"]},
            "n": {**INT, "minimum": 1, "maximum": TOP_MAX_N},
            "rows": {
                "type": "array",
                "maxItems": TOP_MAX_N,
                "items": obj(
                    ["key", "value", "window_start", "window_end"],
                    {"key": STR, "value": NUM, "window_start": INT, "window_end": INT},
                ),
            },
            "partial": {"type": "boolean"},
            "missing_partitions": {"type": "array", "items": INT},
            "workers": {"type": "array", "items": STR},
        },
    ),
}
