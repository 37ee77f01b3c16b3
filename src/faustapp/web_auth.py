"""Bearer-token access to the HTTP API, and the headers one worker sends another.

One aiohttp middleware on the worker's web application checks the tokens before any view runs,
and turns whatever a view or the router did not answer as JSON (unknown paths, wrong methods,
unexpected exceptions) into a JSON error, so no client ever sees an HTML page or a bare 500.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web as aioweb

from faustapp.settings import Settings

log = logging.getLogger(__name__)

FORWARDED_HEADER = "X-Faustapp-Forwarded"
RETRY_AFTER_S = 2
SETTINGS_KEY = aioweb.AppKey("faustapp_settings", Settings)
"""Where the worker's settings are kept on the aiohttp application (other views read them)."""

PUBLIC_PATHS = frozenset({"/", "/docs", "/openapi.json"})
"""Open whatever the tokens: the page and the API's description hold no data."""
PUBLIC_PREFIX = "/static/"
HEALTH_PATH = "/api/health"
METRICS_PATH = "/metrics"
_PREPARED = aioweb.RequestKey("faustapp_response_prepared", bool)

Handler = Callable[[aioweb.Request], Awaitable[aioweb.StreamResponse]]


def peer_headers(settings: Settings) -> dict[str, str]:
    """Headers of a request proxied to a peer worker: one hop only, and the API token if set."""
    headers = {FORWARDED_HEADER: "1"}
    if settings.api_token:
        headers["Authorization"] = f"Bearer {settings.api_token}"
    return headers


def settings_of(app: object) -> Settings:
    """The settings :func:`install` mounted on ``app`` (defaults when it was not called), so a
    view that proxies to a peer can send :func:`peer_headers` without being handed them."""
    web_app: aioweb.Application = app.web.web_app  # type: ignore[attr-defined]
    return web_app.get(SETTINGS_KEY) or Settings()


def json_error(status: int, reason: str, headers: dict[str, str] | None = None) -> aioweb.Response:
    """The one error shape of every faustapp answer: ``{"error": reason, "status": code}``."""
    return aioweb.Response(
        body=orjson.dumps({"error": reason, "status": status}),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def accepted_tokens(path: str, settings: Settings) -> tuple[str, ...]:
    """Tokens that open ``path`` (any one of them); empty when the path is open to all.

    Everything not public needs the API token (default deny, so a view added later is guarded
    too); ``/metrics`` and ``/api/health`` need the metrics token only when it is set, and
    health also accepts the API token, so the live page can show it."""
    if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIX):
        return ()
    if path == METRICS_PATH:
        return (settings.metrics_token,) if settings.metrics_token else ()
    if path == HEALTH_PATH:
        if not settings.metrics_token:
            return ()
        return tuple(t for t in (settings.metrics_token, settings.api_token) if t)
    return (settings.api_token,) if settings.api_token else ()


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, None when there is none."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def token_matches(given: str, expected: str) -> bool:
    """Constant-time comparison (of digests, so not even the token's length leaks)."""
    a = hashlib.sha256(given.encode("utf-8", "surrogateescape")).digest()
    b = hashlib.sha256(expected.encode("utf-8")).digest()
    return hmac.compare_digest(a, b)


def check_access(path: str, header: str | None, settings: Settings) -> aioweb.Response | None:
    """None when the request may go on, else the 401 to answer with."""
    tokens = accepted_tokens(path, settings)
    if not tokens:
        return None
    given = bearer_token(header)
    if given is None:
        return json_error(
            401,
            "this path needs an 'Authorization: Bearer <token>' header",
            {"WWW-Authenticate": 'Bearer realm="faustapp"'},
        )
    # Every accepted token is compared, so the time does not tell which one came close.
    matched = [token_matches(given, token) for token in tokens]
    if any(matched):
        return None
    return json_error(
        401,
        "invalid bearer token",
        {"WWW-Authenticate": 'Bearer realm="faustapp", error="invalid_token"'},
    )


def _from_http_exception(request: aioweb.Request, exc: aioweb.HTTPException) -> aioweb.Response:
    """aiohttp's own answers (no route, wrong method, ...) as faustapp's JSON errors."""
    headers = {}
    if exc.status == 404:
        reason = f"no such path: {request.path[:200]}"
    elif exc.status == 405:
        reason = f"method {request.method[:16]} is not allowed on {request.path[:200]}"
        if "Allow" in exc.headers:
            headers["Allow"] = exc.headers["Allow"]
    else:
        reason = exc.reason or "request refused"
    return json_error(exc.status, reason, headers)


def middleware(settings: Settings) -> Callable:
    """The token check and the JSON safety net around every view."""

    @aioweb.middleware
    async def guard(request: aioweb.Request, handler: Handler) -> aioweb.StreamResponse:
        refused = check_access(request.path, request.headers.get("Authorization"), settings)
        if refused is not None:
            return refused
        try:
            response = await handler(request)
        except aioweb.HTTPException as exc:
            if exc.status < 400:
                raise  # a redirect: aiohttp answers it as it is
            return _from_http_exception(request, exc)
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception:
            if request.get(_PREPARED):
                raise  # a stream already under way cannot change its status: let it end
            log.exception("%s %s failed", request.method, request.path)
            return json_error(
                503, "internal error while answering; retry", {"Retry-After": str(RETRY_AFTER_S)}
            )
        return response

    return guard


async def _mark_prepared(request: aioweb.Request, response: aioweb.StreamResponse) -> None:
    request[_PREPARED] = True


def install(app: object, settings: Settings) -> None:
    """Mount the token check (``FAUSTAPP_API_TOKEN``, ``FAUSTAPP_METRICS_TOKEN``) on ``app``."""
    web_app: aioweb.Application = app.web.web_app  # type: ignore[attr-defined]
    if web_app.frozen:
        raise RuntimeError("web_auth.install must run before the web server starts")
    web_app[SETTINGS_KEY] = settings
    web_app.middlewares.append(middleware(settings))
    web_app.on_response_prepare.append(_mark_prepared)
