"""Recommendation views over the co-view table: items viewed with an item, and suggestions for a
user from the items of their most recent final session, gathered from the workers that own them."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import faust
import orjson
from faust.web import Request, Response, View

from faustapp.pipeline import PartitionNotReady, WindowedPipeline
from faustapp.records import InvalidRecord
from faustapp.runtime import Deployment
from faustapp.schema import check_id
from faustapp.web import (
    FORWARDED_HEADER,
    OwnerUnknown,
    error,
    json_response,
    owner_of,
    route_to_owner,
    unavailable,
)

log = logging.getLogger(__name__)

CO_VIEWS = "co-views"
LAST_SESSION = "user-last-session"
DEFAULT_N = 5
MAX_N = 100
PEER_TIMEOUT_S = 5.0


class PeerUnavailable(Exception):
    """A worker that owns part of the answer did not give it."""


def parse_n(request: Request) -> int:
    """``n`` from the query string: 1-100, default 5; ValueError with the reason otherwise."""
    raw = request.query.get("n")
    if raw is None:
        return DEFAULT_N
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"n must be an integer from 1 to {MAX_N}, got {raw[:32]!r}") from None
    if not 1 <= n <= MAX_N:
        raise ValueError(f"n must be an integer from 1 to {MAX_N}, got {n}")
    return n


def ranked(counts: dict[str, int], n: int, label: str) -> list[dict[str, Any]]:
    """The ``n`` highest positive counts, descending then id ascending."""
    rows = sorted(((-c, item) for item, c in counts.items() if c > 0))[:n]
    return [{"item_id": item, label: -negative} for negative, item in rows]


def _running(deployment: Deployment, pipeline: WindowedPipeline, key: str) -> Any | None:
    """The figures of ``key``'s running (never closing) window, or None when it has none."""
    router = deployment.router_of[pipeline.spec.name]
    windows = router.state_for(pipeline, key).windows_of(key)
    if not windows:
        return None
    return windows[0].figures(pipeline.spec.window)


def install(app: faust.App, deployment: Deployment) -> None:
    """Mount the item and user views when the co-view table runs on this worker."""
    co_views = deployment.pipelines.get(CO_VIEWS)
    last_session = deployment.pipelines.get(LAST_SESSION)
    if co_views is None or last_session is None:
        return
    co_table = co_views.store.table.name
    session_table = last_session.store.table.name

    async def co_counts(request: Request, item: str) -> dict[str, int] | None:
        """co[item] from wherever it lives (None: never co-viewed)."""
        owner = owner_of(app, co_table, item)
        if owner is None:
            figures = _running(deployment, co_views, item)
            return None if figures is None else figures["co"]
        url = owner.with_path(f"/api/items/{item}/co-views")
        headers = {FORWARDED_HEADER: "1", **_auth(request)}
        try:
            async with app.http_client.get(
                url, headers=headers, timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)
            ) as answer:
                if answer.status == 404:
                    return None
                if answer.status != 200:
                    raise PeerUnavailable(f"{owner} answered {answer.status} for {item!r}")
                return orjson.loads(await answer.read())["co"]
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PeerUnavailable(f"{owner} did not answer: {exc.__class__.__name__}") from exc

    @app.page("/api/items/{item_id:[^/]+}/co-views")
    class CoViewsView(View):
        """The whole co-view row of an item: how many sessions viewed it with each other item."""

        async def get(self, request: Request, item_id: str) -> Response:
            """Answered by the owner of the item's partition."""
            return await _guarded(self, request, item_id, self._answer)

        async def _answer(self, request: Request, item_id: str) -> Response:
            routed = await route_to_owner(app, self, request, co_table, item_id)
            if routed is not None:
                return routed
            figures = _running(deployment, co_views, item_id)
            if figures is None:
                return error(self, 404, f"item {item_id!r} was never viewed with another item")
            return json_response(self, {"item_id": item_id, "co": figures["co"]})

    @app.page("/api/items/{item_id:[^/]+}/also-viewed")
    class AlsoViewedView(View):
        """The items most often viewed in the same session as this one."""

        async def get(self, request: Request, item_id: str) -> Response:
            """``n`` items with the most shared sessions, descending then id ascending."""
            return await _guarded(self, request, item_id, self._answer)

        async def _answer(self, request: Request, item_id: str) -> Response:
            n = parse_n(request)
            routed = await route_to_owner(app, self, request, co_table, item_id)
            if routed is not None:
                return routed
            figures = _running(deployment, co_views, item_id)
            if figures is None:
                return error(self, 404, f"item {item_id!r} was never viewed with another item")
            items = ranked(figures["co"], n, "sessions")
            return json_response(self, {"item_id": item_id, "items": items})

    @app.page("/api/users/{user_id:[^/]+}/recommendations")
    class RecommendationsView(View):
        """Items to suggest to a user: co-viewed with the items of their last final session."""

        async def get(self, request: Request, user_id: str) -> Response:
            """Any worker answers: the user's session from its owner, co-views from theirs."""
            return await _guarded(self, request, user_id, self._answer)

        async def _answer(self, request: Request, user_id: str) -> Response:
            n = parse_n(request)
            routed = await route_to_owner(app, self, request, session_table, user_id)
            if routed is not None:
                return routed
            figures = _running(deployment, last_session, user_id)
            if figures is None or figures["based_on"] is None:
                return error(self, 404, f"user {user_id!r} has no final session yet")
            based_on = list(figures["based_on"])
            rows = await asyncio.gather(*(co_counts(request, item) for item in based_on))
            scores: dict[str, int] = {}
            for row in rows:
                for item, count in (row or {}).items():
                    scores[item] = scores.get(item, 0) + count
            for item in based_on:
                scores.pop(item, None)
            body = {"user_id": user_id, "based_on": based_on, "items": ranked(scores, n, "score")}
            return json_response(self, body)


def _auth(request: Request) -> dict[str, str]:
    token = request.headers.get("Authorization")
    return {"Authorization": token} if token else {}


async def _guarded(view: View, request: Request, key: str, answer: Any) -> Response:
    """Every failure a client can cause or wait out is a JSON 4xx/503, never a 500."""
    try:
        check_id("id", key)
        return await answer(request, key)
    except InvalidRecord as exc:
        return error(view, 400, f"invalid id: {exc}")
    except ValueError as exc:
        return error(view, 400, str(exc))
    except (PartitionNotReady, OwnerUnknown, PeerUnavailable) as exc:
        return unavailable(view, str(exc))
    except Exception:  # not foreseen: say so, log it, let the client retry
        log.exception("GET %s failed", request.url)
        return unavailable(view, "internal error while answering; retry")
