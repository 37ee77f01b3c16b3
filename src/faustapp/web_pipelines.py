"""Views over every declared pipeline: its description, a key's windows and results, top keys."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import faust
import orjson
from faust.types import TP
from faust.web import Request, Response, View
from yarl import URL

from faustapp.catalogue import Entry, entries
from faustapp.pipeline import PartitionNotReady
from faustapp.pipeline_views import (
    BadParameter,
    UnknownPipeline,
    key_state,
    local_top,
    merge_top,
    parse_top,
)
from faustapp.records import InvalidRecord
from faustapp.runtime import Deployment
from faustapp.schema import check_id
from faustapp.web import (
    FORWARDED_HEADER,
    RETRY_AFTER_S,
    error,
    here,
    json_response,
    route_to_owner,
    served_here,
    unavailable,
)
from faustapp.web_auth import peer_headers, settings_of

log = logging.getLogger(__name__)

TOP_PEER_TIMEOUT_S = 3.0
"""How long the asked worker waits for the others' share of a ``top``."""


def install(app: faust.App, deployment: Deployment) -> None:
    """Mount these views on ``app`` for what ``deployment`` runs."""
    catalogue = entries(deployment)
    described = {"pipelines": [entry.describe() for entry in catalogue.values()]}

    def lookup(name: str) -> Entry:
        entry = catalogue.get(name)
        if entry is None:
            running = ", ".join(catalogue) or "none"
            raise UnknownPipeline(f"unknown pipeline {name[:256]!r}; running: {running}")
        return entry

    @app.page("/api/pipelines")
    class PipelinesView(View):
        """Every pipeline this worker runs: topics, key, window, grace, aggregates, fields."""

        async def get(self, request: Request) -> Response:
            """The same answer on every worker of a deployment."""
            return json_response(self, described)

    @app.page("/api/pipelines/{name}/keys/{key:[^/]+}")
    class KeyView(View):
        """A key's open windows with running figures and its last final results."""

        async def get(self, request: Request, name: str, key: str) -> Response:
            """Answered by the worker that owns the key; never a 500."""
            return await _guarded(self, request, lambda: self._answer(request, name, key))

        async def _answer(self, request: Request, name: str, key: str) -> Response:
            entry = lookup(name)
            try:
                check_id("key", key)
            except InvalidRecord as exc:
                return error(self, 400, f"invalid key: {exc}")
            table = entry.pipeline.store.table.name
            routed = await route_to_owner(app, self, request, table, key)
            if routed is not None:
                return routed
            served = served_here(app)
            try:
                found = key_state(entry, key)
            except PartitionNotReady as exc:
                return error(self, 503, str(exc), **{"Retry-After": str(RETRY_AFTER_S)}, **served)
            if found is None:
                reason = f"key {key!r} of {name} has no open window and no final result"
                return error(self, 404, reason, **served)
            return json_response(self, found, **served)

    @app.page("/api/pipelines/{name}/top")
    class TopView(View):
        """The n keys with the highest (or lowest) value of a numeric field, from every worker."""

        async def get(self, request: Request, name: str) -> Response:
            """Each worker ranks its own partitions; the asked one merges their answers."""
            return await _guarded(self, request, lambda: self._answer(request, name))

        async def _answer(self, request: Request, name: str) -> Response:
            entry = lookup(name)
            query = parse_top(request.query, entry)
            rows, partitions = local_top(app, entry, query)
            me = here(app)
            shares, covered, workers = [rows], set(partitions), [me]
            if not request.headers.get(FORWARDED_HEADER):
                for url, share in await _ask_peers(app, request, entry):
                    if share is not None:
                        shares.append(share["rows"])
                        covered.update(share["partitions"])
                        workers.append(url)
            elif not partitions:
                return unavailable(self, "this worker owns no recovered partition right now")
            if not covered:
                return unavailable(self, "no worker answered for any partition (rebalance?)")
            missing = sorted(set(range(entry.router.partitions)) - covered)
            body: dict[str, Any] = {
                "pipeline": entry.name,
                **query.echo(),
                "rows": merge_top(shares, query.n, query.order),
                "partial": bool(missing),
                "missing_partitions": missing,
                "workers": workers,
            }
            if request.headers.get(FORWARDED_HEADER):
                body["partitions"] = partitions  # what this share covers, for the merge
            return json_response(self, body)


async def _guarded(
    view: View, request: Request, answer: Callable[[], Awaitable[Response]]
) -> Response:
    """Every failure a client can cause or wait out is a JSON 4xx/503, never a 500."""
    try:
        return await answer()
    except UnknownPipeline as exc:
        return error(view, 404, str(exc))
    except BadParameter as exc:
        return error(view, 400, str(exc))
    except PartitionNotReady as exc:
        return unavailable(view, str(exc))
    except Exception:  # not foreseen: say so, log it, let the client retry
        log.exception("GET %s failed", request.path)
        return unavailable(view, "internal error while answering; retry")


def _owners(app: faust.App, entry: Entry) -> set[str]:
    """URLs of the other workers that own a partition of the pipeline's table now."""
    table = entry.pipeline.store.table
    changelog = table.changelog_topic.get_topic_name()
    me = URL(here(app))
    urls = set()
    for partition in range(table.partitions):
        url = app.assignor._tps_url.get(TP(changelog, partition))
        if url is None:
            continue  # no owner known: a rebalance; the partition shows as missing
        owner = URL(url)
        if (owner.host, owner.port) != (me.host, me.port):
            urls.add(url)
    return urls


async def _ask_peers(
    app: faust.App, request: Request, entry: Entry
) -> list[tuple[str, dict[str, Any] | None]]:
    """Every other owner's share of the answer (None for one that did not give it in time)."""
    peers = sorted(_owners(app, entry))
    headers = peer_headers(settings_of(app))
    shares = await asyncio.gather(*(_ask(app, request, url, headers) for url in peers))
    return list(zip(peers, shares, strict=True))


async def _ask(
    app: faust.App, request: Request, url: str, headers: dict[str, str]
) -> dict[str, Any] | None:
    owner = URL(url)
    target = request.url.with_host(owner.host).with_port(owner.port)
    try:
        async with app.http_client.get(
            target, headers=headers, timeout=aiohttp.ClientTimeout(total=TOP_PEER_TIMEOUT_S)
        ) as answer:
            if answer.status != 200:
                log.info("top: %s answered %d", url, answer.status)
                return None
            body = orjson.loads(await answer.read())
    except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
        log.info("top: %s did not answer: %s", url, exc.__class__.__name__)
        return None
    if not (isinstance(body.get("rows"), list) and isinstance(body.get("partitions"), list)):
        return None
    return body
