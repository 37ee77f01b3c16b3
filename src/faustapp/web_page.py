"""The built-in live page, its static assets, and the API's OpenAPI description.

Faust's own views (``/router``, ``/table``, its statistics index at ``/``) are removed first: they
expose raw tables and answer in shapes this API does not document. The page's files ship inside
the package (uPlot included), so nothing is fetched from the internet and nothing is built.
"""

from __future__ import annotations

from pathlib import Path

import faust
import orjson
from aiohttp import web as aioweb
from faust.web import Request, View

from faustapp import openapi
from faustapp.runtime import Deployment
from faustapp.web_auth import SETTINGS_KEY

STATIC = Path(__file__).with_name("static")
FOLDERS = {"/static": STATIC, "/static/vendor": STATIC / "vendor"}
TYPES = {
    ".html": ("text/html", "utf-8"),
    ".js": ("text/javascript", "utf-8"),
    ".css": ("text/css", "utf-8"),
    ".json": ("application/json", None),
}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
FAUST_VIEWS = "faust.web.apps."


def remove_default_views(app: faust.App) -> None:
    """Drop Faust's built-in blueprints (router, tables, statistics, graph, performance)."""
    blueprints = app.web.blueprints
    if blueprints.applied:
        raise RuntimeError("Faust's default views are already mounted")
    # The manager has no removal API: filter its pending list before the server applies it.
    blueprints._enabled[:] = [
        (prefix, bp)
        for prefix, bp in blueprints._enabled
        if not (isinstance(bp, str) and bp.startswith(FAUST_VIEWS))
    ]


def load_assets(folder: Path) -> dict[str, bytes]:
    """The files of one static folder (not its subfolders), read once at start."""
    return {
        path.name: path.read_bytes()
        for path in sorted(folder.iterdir())
        if path.is_file() and not path.name.startswith(".")
    }


def asset_response(name: str, body: bytes) -> aioweb.Response:
    """A static file with its type, under the page's security headers."""
    content_type, charset = TYPES.get(Path(name).suffix, ("text/plain", "utf-8"))
    return aioweb.Response(
        body=body, content_type=content_type, charset=charset, headers=PAGE_HEADERS
    )


def served_paths(app: faust.App) -> list[str]:
    """Route patterns the worker's web server answers (Faust views and plain aiohttp routes)."""
    paths = list(app.web.views)
    for resource in app.web.web_app.router.resources():
        paths.append(resource.canonical)
    return paths


def install(app: faust.App, deployment: Deployment) -> None:
    """Mount these views on ``app`` for what ``deployment`` runs."""
    remove_default_views(app)
    assets = {prefix: load_assets(folder) for prefix, folder in FOLDERS.items()}
    page = assets["/static"]
    spec: list[bytes] = []

    def spec_bytes() -> bytes:
        """Built at the first request, once every view of every module is mounted."""
        if not spec:
            built = openapi.build(
                deployment,
                app.web.web_app.get(SETTINGS_KEY),
                served_paths(app),
                {prefix: sorted(files) for prefix, files in assets.items()},
            )
            spec.append(orjson.dumps(built))
        return spec[0]

    @app.page("/")
    class LivePage(View):
        """The live page: results pushed as they become final, a chart, top keys, health."""

        async def get(self, request: Request) -> aioweb.Response:
            """The page itself holds no data: it asks the API with the user's token."""
            return asset_response("index.html", page["index.html"])

    @app.page("/docs")
    class DocsPage(View):
        """The API description rendered as tables, from /openapi.json."""

        async def get(self, request: Request) -> aioweb.Response:
            """Self-contained: no script or style from elsewhere."""
            return asset_response("docs.html", page["docs.html"])

    @app.page("/openapi.json")
    class OpenApiView(View):
        """Every path, parameter and JSON shape this worker serves."""

        async def get(self, request: Request) -> aioweb.Response:
            """OpenAPI 3.0, with this worker's pipeline names and token schemes."""
            return aioweb.Response(
                body=spec_bytes(), content_type="application/json", headers=PAGE_HEADERS
            )

    def static_view(prefix: str) -> type[View]:
        files = assets[prefix]

        class StaticView(View):
            """A file of the page: only the package's own, by exact name."""

            async def get(self, request: Request, file: str) -> aioweb.Response:
                """404 JSON for any other name (no path is ever joined to the file system)."""
                body = files.get(file)
                if body is None:
                    return aioweb.Response(
                        body=orjson.dumps({"error": f"no such file: {file[:200]}", "status": 404}),
                        status=404,
                        content_type="application/json",
                    )
                return asset_response(file, body)

        StaticView.__name__ = StaticView.__qualname__ = f"Static{len(prefix)}View"
        return StaticView

    for prefix in FOLDERS:
        app.page(f"{prefix}/{{file}}")(static_view(prefix))
