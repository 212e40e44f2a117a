"""Cross-origin requests (CORS) for browser apps, on every path of the node's HTTP interface.

HANDLE.NET's server installs a cross-origin filter in front of every servlet, so a web page
served from elsewhere can call the REST API. Without one a browser refuses the answer (no
``Access-Control-Allow-Origin``) and, for a ``PUT`` or a request with ``Authorization``, never
sends the request at all: its preflight ``OPTIONS`` got a 405.

This middleware, outermost in the ASGI stack (so rate-limit refusals and errors carry the
headers too), does what such a filter does:

* a preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) from an
  allowed origin is answered here, 204, on any path: ``/api/handles``, ``/api/sessions``,
  ``/api/mgmt``, the proxy; one from another origin gets 403 and no CORS headers;
* any other request from an allowed origin gets ``Access-Control-Allow-Origin`` (``*`` when
  every origin is allowed, else the origin itself with ``Vary: Origin``) and the headers a
  client must read exposed (the challenge of a 401, ``Retry-After``, ``Location``).

Browsers' credentials (cookies) are never allowed cross-origin: the REST API authenticates
with an ``Authorization`` header the app sets itself. The console (``/console``) is
same-origin only, so it gets no CORS headers. ``[server] cors_origins`` lists the origins
(``["*"]`` by default; ``[]`` switches CORS off).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson

METHODS = b"GET, HEAD, POST, PUT, DELETE, OPTIONS"
EXPOSED = b"WWW-Authenticate, Authentication-Info, Retry-After, Location, Content-Disposition"
MAX_AGE = b"86400"
SAME_ORIGIN_ONLY = ("/console",)
_HEADER_LIST = re.compile(rb"^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$")
_DEFAULT_HEADERS = b"Authorization, Content-Type, Accept, Accept-Language"


class CorsPolicy:
    """Which origins may call: ``*`` or exact ``scheme://host[:port]`` strings."""

    def __init__(self, origins: Iterable[str]) -> None:
        cleaned = [o.strip().rstrip("/") for o in origins if o.strip()]
        self.any = "*" in cleaned
        self.origins = frozenset(o.lower() for o in cleaned if o != "*")

    @property
    def enabled(self) -> bool:
        return self.any or bool(self.origins)

    def allows(self, origin: str) -> bool:
        return self.any or origin.lower() in self.origins

    def allow_origin(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        """The ``Access-Control-Allow-Origin`` header (and ``Vary``) for an allowed origin."""
        if self.any:
            return [(b"access-control-allow-origin", b"*")]
        return [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]


class Cors:
    """ASGI middleware applying a ``CorsPolicy`` (see the module docstring)."""

    def __init__(self, app: Any, policy: CorsPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.policy.enabled:
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        origin = _header(scope, b"origin")
        if origin is None or path.startswith(SAME_ORIGIN_ONLY):
            await self.app(scope, receive, send)
            return
        allowed = self.policy.allows(origin.decode("latin-1"))
        requested = _header(scope, b"access-control-request-method")
        if scope["method"] == "OPTIONS" and requested is not None:
            await self._preflight(scope, send, origin, allowed)
            return
        if not allowed:
            await self.app(scope, receive, send)
            return
        extra = [*self.policy.allow_origin(origin), (b"access-control-expose-headers", EXPOSED)]

        async def with_cors(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_cors)

    async def _preflight(self, scope: dict, send: Any, origin: bytes, allowed: bool) -> None:
        if not allowed:
            body = orjson.dumps({"message": f"origin {origin.decode('latin-1')} is not allowed"})
            await _answer(send, 403, [(b"content-type", b"application/json")], body)
            return
        asked = _header(scope, b"access-control-request-headers")
        headers = asked if asked and _HEADER_LIST.match(asked.strip()) else _DEFAULT_HEADERS
        await _answer(
            send,
            204,
            [
                *self.policy.allow_origin(origin),
                (b"access-control-allow-methods", METHODS),
                (b"access-control-allow-headers", headers.strip()),
                (b"access-control-max-age", MAX_AGE),
            ],
            b"",
        )


def _header(scope: dict, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value
    return None


async def _answer(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = ["Cors", "CorsPolicy"]
