"""``/api/openapi.json`` and ``/api/docs``: one OpenAPI document of the node's HTTP APIs and
Swagger UI over it, working on a machine without Internet.

The document joins the Handle.Net REST API (``rest_openapi``: ``/api/handles``,
``/api/sessions``) with the parts the features contribute (the management API under
``/api/mgmt``), each part's paths put under its mount so one server ``/`` serves them all.
The security schemes (Basic and session for the Handle API, the bearer token of the
management API) are what Swagger UI's Authorize button offers. Swagger UI's script and style
are the node's own copies (``assets``), so the page is never blank for want of a CDN.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from idnode import __version__
from idnode.transport import rest_openapi
from idnode.transport.assets import URL, missing

OpenApiPart = tuple[str, Callable[[], dict[str, Any]]]  # (mount, the part's own document)
SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui.css")


def merged_document(parts: Sequence[OpenApiPart]) -> dict[str, Any]:
    """The Handle REST API's description plus each part's paths under its mount."""
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "idnode HTTP API",
            "version": __version__,
            "description": "The Handle.Net REST API (`/api/handles`, `/api/sessions`) and the"
            " node's management API (`/api/mgmt`). Authorize with an admin's secret key"
            " (Basic), a session, or a management bearer token.",
        },
        "servers": [{"url": "/"}],
        "paths": dict(rest_openapi.PATHS),
        "components": {
            "schemas": dict(rest_openapi.SCHEMAS),
            "securitySchemes": dict(rest_openapi.SECURITY_SCHEMES),
        },
        "tags": list(rest_openapi.TAGS),
    }
    for mount, produce in parts:
        part = produce()
        for path, item in part.get("paths", {}).items():
            doc["paths"][mount + path] = item
        for kind, entries in part.get("components", {}).items():
            doc["components"].setdefault(kind, {}).update(entries)
        doc["tags"] += [t for t in part.get("tags", []) if t not in doc["tags"]]
    return doc


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css"></head>
<body><main><h1 class="visually-hidden" style="position:absolute;left:-9999px">{title}</h1>
<div id="swagger-ui"></div></main>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="/api/docs/init.js"></script>
</body></html>
"""

_INIT = """window.ui = SwaggerUIBundle({
  url: "/api/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
  persistAuthorization: false, tryItOutEnabled: false,
  presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout"
});
"""

_MISSING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><main><h1>{title}</h1><p>Swagger UI is not installed on this node (missing: {files}).
Run <code>make vendor</code> where idnode was installed; the description itself is at
<a href="/api/openapi.json">/api/openapi.json</a>.</p></main></body></html>
"""


def docs_routes(parts: Sequence[OpenApiPart]) -> list[Route]:
    """The document (built once, on first request) and the Swagger UI page."""
    cached: dict[str, bytes] = {}
    title = "idnode HTTP API"

    async def openapi(request: Request) -> Response:
        if "doc" not in cached:
            cached["doc"] = orjson.dumps(merged_document(parts))
        return Response(cached["doc"], media_type="application/json")

    async def docs(request: Request) -> Response:
        absent = missing(*SWAGGER_FILES)
        if absent:
            page = _MISSING.format(title=title, files=html.escape(", ".join(absent)))
            return HTMLResponse(page, status_code=503)
        return HTMLResponse(_PAGE.format(title=title, assets=URL))

    async def init(request: Request) -> Response:
        return Response(_INIT, media_type="text/javascript")

    return [
        Route("/api/openapi.json", openapi),
        Route("/api/docs", docs),
        Route("/api/docs/init.js", init),
    ]


__all__ = ["OpenApiPart", "docs_routes", "merged_document"]
