"""The HTTP face of the node: the Handle.Net-shaped REST API and a proxy that redirects.

Requests reach the same service functions the binary protocol uses (``node.resolver``,
``node.admin``); only the rendering differs. What Handle.Net clients rely on, and this module
keeps (technical manual chapter 14; HSJ ``HandleJsonRestApiServlet``; docs/compatibility.md):

* every answer is JSON carrying ``responseCode`` and, on the handles API, the ``handle``;
  every error adds a ``message``; HTTP status and response code pair as in ``http_status``;
* ``PUT`` without ``index`` creates or replaces a record (``overwrite`` defaults to true);
  with ``index=`` it adds or replaces just those values; ``index=various`` lets the server
  number values sent without an index; 201 when something new was created, else 200;
* ``pretty`` indents, ``callback`` wraps the answer for JSONP, a boolean parameter given
  without a value is true.

Resolution (``GET /api/handles/{handle}`` and the proxy ``GET /{handle}``) only translates
the resolver's typed answer (``service.resolve``), the same one UDP and TCP translate:

* ``Values``: 200 ``{"responseCode": 1, "handle", "values"}``; the proxy redirects (302) to
  the first URL value instead when there is one;
* ``Referral`` (a handle under a prefix delegated to a child node): what HSJ's REST API
  answers for a service referral (``BaseHandleRequestProcessingServlet.statusCodeFromResponse``
  and ``GsonUtility.ResponseGsonTypeHierarchyAdapter``): HTTP **300** Multiple Choices with
  ``{"responseCode": 302, "handle": <asked>, "referralHandle": "0.NA/<child prefix>",
  "values": [<the child's HS_SITE>]}``. Not a 3xx redirect a browser follows: the child is a
  Handle service, not a URL, and a client asks it with the site it was given;
* ``NeedsAuth``: 401 with ``responseCode`` 402 and the challenge headers;
* errors (not found, tombstone, not responsible, not authorized): the JSON error shape with
  the HTTP status ``http_status`` pairs with the code.

On a recursive node the resolver's routing stage recurses for handles homed elsewhere, so
REST and the proxy answer them as UDP and TCP do (the REST API has no REC flag; the role
implies it, as on the wire).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from idnode import __version__
from idnode.auth.identity import Identity
from idnode.auth.rest_sessions import StoredSessions
from idnode.codes import ResponseCode
from idnode.errors import AuthenticationNeeded, IdnodeError, InvalidValue, ProtocolError
from idnode.model import HS_ADMIN, HandleValue, handle_key
from idnode.service.node import Node
from idnode.service.resolve import Answer, NeedsAuth, Referral, ResolutionQuery, Values
from idnode.transport.cors import Cors, CorsPolicy
from idnode.transport.digital_link import digital_link_routes
from idnode.transport.http_auth import HttpAuthenticator, HttpAuthFailed, session_routes
from idnode.transport.http_fast import CachedRestAnswers
from idnode.transport.http_native import HandleOverHttp
from idnode.transport.labels import qr_routes
from idnode.transport.limits import HttpLimits, Limits
from idnode.transport.proxy import Proxy
from idnode.transport.wire_handler import WireHandler
from idnode.wire.json import put_entity_values, value_from_json, value_to_json

log = logging.getLogger(__name__)

MAX_PUT_ENTITY = 16 * 1024 * 1024  # bytes: 1000 values of 64 KiB fit in base64 with room
ADMIN_INDEXES = range(100, 200)  # where HS_ADMIN values go when the server numbers them

# HTTP status for each Handle response code, as Handle.Net's REST API pairs them
# (HSJ BaseHandleRequestProcessingServlet.statusCodeFromResponse).
_STATUS = {
    ResponseCode.SUCCESS: 200,
    ResponseCode.SERVICE_REFERRAL: 300,  # HSJ: SC_MULTIPLE_CHOICES for both referrals
    ResponseCode.PREFIX_REFERRAL: 300,
    ResponseCode.ERROR: 500,
    ResponseCode.SERVER_BUSY: 503,
    ResponseCode.SERVER_BACKUP: 503,
    ResponseCode.PROTOCOL_ERROR: 400,
    ResponseCode.OPERATION_NOT_SUPPORTED: 501,
    ResponseCode.HANDLE_NOT_FOUND: 404,
    ResponseCode.HANDLE_ALREADY_EXISTS: 409,
    ResponseCode.INVALID_HANDLE: 400,
    ResponseCode.VALUES_NOT_FOUND: 400,
    ResponseCode.VALUE_ALREADY_EXISTS: 409,
    ResponseCode.INVALID_VALUE: 400,
    ResponseCode.SERVER_NOT_RESPONSIBLE: 400,
    ResponseCode.AUTHENTICATION_NEEDED: 401,
    # IDIS quota refusals (service.quotas), which HSJ has no status for: the day's requests
    # are used up (try again tomorrow), or an allowance of identifiers or prefixes is
    ResponseCode.REQUEST_LIMIT_DAILY: 429,
    ResponseCode.REGISTER_COUNT_LIMIT: 403,
    ResponseCode.PREFIX_LIMIT: 403,
}


def http_status(code: int) -> int:
    """The HTTP status of a Handle response code: 40x authentication errors are 403."""
    if code in _STATUS:
        return _STATUS[ResponseCode(code)]
    if 400 <= code < 500:
        return 403
    return 500


def flag(request: Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter; present without a value means true (manual 14.2)."""
    value = request.query_params.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("", "true", "yes", "1")


def render(request: Request, body: Any, status: int = 200) -> Response:
    """JSON, indented with ``pretty``, wrapped in ``callback(...)`` for JSONP."""
    option = orjson.OPT_INDENT_2 if flag(request, "pretty") else 0
    content = orjson.dumps(body, option=option)
    callback = request.query_params.get("callback")
    if callback:
        wrapped = _scrub_callback(callback).encode("utf-8") + b"(" + content + b");"
        return Response(wrapped, status_code=status, media_type="application/javascript")
    return Response(content, status_code=status, media_type="application/json")


def _scrub_callback(name: str) -> str:
    """A JavaScript identifier: anything else becomes ``_`` (HSJ scrubCallbackParameter)."""
    return "".join(
        c
        if c in "_$" or c.isascii() and c.isalpha() or (i and c.isdigit()) or ord(c) >= 0xA0
        else "_"
        for i, c in enumerate(name)
    )


def error_body(handle: str | None, code: int, message: str) -> dict[str, Any]:
    body: dict[str, Any] = {"responseCode": int(code)}
    if handle is not None:
        body["handle"] = handle
    body["message"] = message
    return body


def error_response(handle: str | None, code: int, message: str, pretty: bool = False) -> Response:
    """An error outside a request context (kept for callers that have no Request)."""
    option = orjson.OPT_INDENT_2 if pretty else 0
    content = orjson.dumps(error_body(handle, code, message), option=option)
    return Response(content, status_code=http_status(code), media_type="application/json")


def answer_json(handle: str, answer: Values | Referral) -> tuple[int, dict[str, Any]]:
    """HTTP status and JSON body of a resolver answer, as Handle.Net's REST API writes them
    (the module docstring says why a referral is 300 with ``referralHandle``)."""
    if isinstance(answer, Referral):
        return http_status(ResponseCode.SERVICE_REFERRAL), {
            "responseCode": int(ResponseCode.SERVICE_REFERRAL),
            "handle": handle,
            "referralHandle": answer.prefix_handle,
            "values": [value_to_json(v) for v in answer.site_values],
        }
    values = sorted(answer.values, key=lambda v: v.index)
    return 200, {
        "responseCode": int(ResponseCode.SUCCESS),
        "handle": handle,
        "values": [value_to_json(v) for v in values],
    }


MAX_INT_PARAM = 2**31 - 1  # a value index is a signed 32-bit field on the wire; so are pages
_INTEGER = re.compile(r"-?[0-9]{1,10}")


def _bounded_int(raw: str, name: str) -> int:
    """A query parameter as an int within 32 bits: anything else is the client's error (400),
    never an overflow deeper down (a 500)."""
    text = raw.strip()
    if _INTEGER.fullmatch(text) is None:
        raise ProtocolError(f"{name} must be an integer")
    value = int(text)
    if not -MAX_INT_PARAM - 1 <= value <= MAX_INT_PARAM:
        raise ProtocolError(f"{name} must fit in 32 bits")
    return value


def _indexes(request: Request) -> tuple[int, ...]:
    return tuple(_bounded_int(i, "index") for i in request.query_params.getlist("index"))


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    return _bounded_int(raw, name)


def client_host(request: Request) -> str:
    """The client's address (for statistics that count a client once per identifier)."""
    client = request.scope.get("client")
    return str(client[0]) if client else ""


class RestApi:
    """The handlers of ``/api/handles``; each authenticates first, then calls one service."""

    def __init__(
        self, node: Node, auth: HttpAuthenticator, answers: CachedRestAnswers | None = None
    ) -> None:
        self.node = node
        self.auth = auth
        self.answers = answers  # the cache of anonymous answers (http_fast), if serving

    async def respond(
        self, request: Request, handle: str | None, work: Callable[[Identity | None], Any]
    ) -> Response:
        """Authenticate, run ``work(identity)`` -> (status, body), render errors as JSON."""
        try:
            caller = await self.auth.caller(request)
        except HttpAuthFailed as exc:
            return await self._unauthorized(request, handle, f"authentication failed: {exc}", exc)
        try:
            status, body = await work(caller.identity)
        except IdnodeError as exc:
            if exc.code == ResponseCode.AUTHENTICATION_NEEDED:
                return await self._unauthorized(request, handle, exc.message)
            return render(request, error_body(handle, exc.code, exc.message), http_status(exc.code))
        return render(request, body, status)

    async def _unauthorized(
        self,
        request: Request,
        handle: str | None,
        message: str,
        failure: HttpAuthFailed | None = None,
    ) -> Response:
        code = ResponseCode.AUTHENTICATION_NEEDED
        response = render(request, error_body(handle, code, message), 401)
        session = failure.session if failure is not None else None
        for name, value in await self.auth.challenge_headers(request, session, message):
            response.headers.append(name, value)
        return response

    # -- GET /api/handles/{handle} -------------------------------------------------------
    async def get(self, request: Request) -> Response:
        handle = request.path_params["handle"]
        if not handle:
            return await self.list_handles(request)

        async def work(who: Identity | None) -> tuple[int, dict]:
            # publicOnly defaults to true for anonymous and false for authenticated callers
            # (HSJ). An authenticated caller who did not say publicOnly gets the restricted
            # values it may read and the public ones otherwise; an explicit publicOnly=false
            # is the wire's strict rule (401 anonymous, 403 for a reader without the right).
            explicit = "publicOnly" in request.query_params
            public_only = flag(request, "publicOnly") if explicit else who is None
            query = ResolutionQuery(
                handle=handle,
                indexes=_indexes(request),
                types=tuple(request.query_params.getlist("type")),
                public_only=public_only,
                omit_unreadable=not explicit,
                do_not_refer=flag(request, "doNotRefer"),
                client=client_host(request),
            )
            try:
                answer = await self.node.resolver.resolve(query, reader=who)
            except IdnodeError as exc:
                if exc.code != ResponseCode.VALUES_NOT_FOUND:
                    raise
                # in resolution "values not found" is a 200 (manual 14.4)
                return 200, {"responseCode": 200, "handle": handle, "values": []}
            return rest_answer(handle, answer)

        return await remembered(
            self.answers, request, handle, lambda: self.respond(request, handle, work)
        )

    # -- GET /api/handles?prefix= --------------------------------------------------------
    async def list_handles(self, request: Request) -> Response:
        prefix = request.query_params.get("prefix")
        if prefix is None:
            body = error_body(None, ResponseCode.INVALID_HANDLE, "empty handle invalid")
            return render(request, body, 400)

        async def work(who: Identity | None) -> tuple[int, dict]:
            page = _int_param(request, "page", -1)
            size = _int_param(request, "pageSize", -1)
            paged = page >= 0 and size >= 0
            if not paged:
                total, handles = await self.node.admin.list_handles(who, prefix)
            elif size == 0:  # a count and no handles (manual 14.5.4)
                total, _ = await self.node.admin.list_handles(who, prefix, offset=0, limit=0)
                handles = []
            else:
                total, handles = await self.node.admin.list_handles(
                    who, prefix, offset=page * size, limit=size
                )
            body: dict[str, Any] = {"responseCode": 1, "prefix": prefix}
            body["totalCount"] = str(total)  # a string, as HSJ writes it
            if paged:
                body["page"], body["pageSize"] = page, size
            body["handles"] = list(handles)
            return 200, body

        return await self.respond(request, None, work)

    # -- PUT /api/handles/{handle} -------------------------------------------------------
    async def put(self, request: Request) -> Response:
        handle = request.path_params["handle"]

        async def work(who: Identity | None) -> tuple[int, dict]:
            raw_indexes = request.query_params.getlist("index")
            various = "various" in raw_indexes
            indexes = None if various or not raw_indexes else _indexes(request)
            overwrite = flag(request, "overwrite", default=True)
            mint = flag(request, "mintNewSuffix")
            entity = put_entity_values(await _json_entity(request), _matches(handle))
            existing = None if mint else await self.node.store.get_handle(handle)
            values = _values(entity, existing or [], various)
            if indexes is None and not various:
                name = await self.node.admin.create_handle(
                    who, handle, values, overwrite=overwrite, mint=mint
                )
                return (201 if existing is None else 200), {"responseCode": 1, "handle": name}
            if indexes is not None and set(indexes) != {v.index for v in values}:
                raise ProtocolError("mismatched indexes in PUT request")
            await self.node.admin.add_values(who, handle, values, overwrite=overwrite)
            old = {v.index for v in existing or []}
            status = 200 if any(v.index in old for v in values) else 201
            return status, {"responseCode": 1, "handle": handle}

        return await self.respond(request, handle, work)

    # -- DELETE /api/handles/{handle} ----------------------------------------------------
    async def delete(self, request: Request) -> Response:
        handle = request.path_params["handle"]

        async def work(who: Identity | None) -> tuple[int, dict]:
            indexes = _indexes(request)
            if indexes:
                await self.node.admin.remove_values(who, handle, indexes)
            else:
                await self.node.admin.delete_handle(who, handle)
            return 200, {"responseCode": 1, "handle": handle}

        return await self.respond(request, handle, work)


def rest_answer(handle: str, answer: Answer) -> tuple[int, dict[str, Any]]:
    """A resolver answer as (status, body); ``NeedsAuth`` becomes the 401 ``respond`` renders
    with the challenge headers."""
    if isinstance(answer, NeedsAuth):
        raise AuthenticationNeeded(answer.reason)
    return answer_json(handle, answer)


async def remembered(
    answers: CachedRestAnswers | None,
    request: Request,
    handle: str,
    produce: Callable[[], Awaitable[Response]],
) -> Response:
    """``produce()``'s response to a resolution, offered to the response cache (which keeps
    it only for anonymous GETs) for the HTTP protocol to answer the next identical one."""
    if answers is None:
        return await produce()
    generation = answers.generation()  # before resolving: a write meanwhile voids it
    response = await produce()
    answers.remember(
        request.scope, response.status_code, response.raw_headers, response.body, handle,
        generation,
    )  # fmt: skip
    return response


async def _json_entity(request: Request) -> Any:
    """The request entity as JSON; HSJ answers 400 / code 4 for anything else."""
    content_type = request.headers.get("content-type")
    if content_type is not None:
        media = content_type.split(";", 1)[0].strip().lower()
        if media != "application/json":
            raise ProtocolError(f"unsupported media type {media!r}; send application/json")
    body = await request.body()
    if len(body) > MAX_PUT_ENTITY:
        raise ProtocolError(f"request entity larger than {MAX_PUT_ENTITY} bytes")
    if not body.strip():
        raise ProtocolError("PUT needs a JSON entity with the values")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"invalid JSON in PUT request: {exc}") from None


def _matches(handle: str) -> Callable[[str], bool]:
    return lambda named: handle_key(named) == handle_key(handle)


def _values(entity: Sequence[Any], existing: Sequence[HandleValue], various: bool) -> list:
    """Model values from the entity. With ``index=various`` a value without an index gets the
    lowest free one: 100-199 for HS_ADMIN, elsewhere for the rest (pyhandle's convention)."""
    taken = {v.index for v in existing}
    for obj in entity:
        if isinstance(obj, dict) and "index" in obj:
            taken.add(_peek_index(obj["index"]))
    out = []
    for obj in entity:
        given = isinstance(obj, dict) and "index" in obj
        if various and not given:
            index = _free_index(taken, isinstance(obj, dict) and obj.get("type") == HS_ADMIN)
            taken.add(index)
            out.append(value_from_json(obj, timestamp=0, index=index))
        else:
            out.append(value_from_json(obj, timestamp=0))
    return out


def _peek_index(raw: object) -> int | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw)
    return None


def _free_index(taken: set[int | None], admin: bool) -> int:
    candidates = ADMIN_INDEXES if admin else range(1, 2**31)
    for index in candidates:
        if index in taken or (not admin and index in ADMIN_INDEXES):
            continue
        return index
    raise InvalidValue("no free index left for a value sent without one")


def build_app(
    node: Node,
    *,
    limits: Limits | None = None,
    answers: CachedRestAnswers | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    wire: WireHandler | None = None,
    streamed: Mapping[str, int] | None = None,
) -> Starlette:
    """The ASGI app; the node's clock and random source drive sessions and nonces.
    ``wire``: the node's wire handler, which then also answers binary Handle messages POSTed
    to this interface (HDL-over-HTTP, ``http_native``), outside the REST API's limits: the
    handler applies its own, as on TCP.
    ``limits`` (default: from ``[limits]``) rate-limits clients and bounds
    request bodies; ``serve`` passes the wire handler's, so one client has one budget.
    ``answers`` keeps anonymous resolutions for the HTTP protocol to answer (http_fast).
    ``streamed``: the features' upload paths and their own body bounds (``HttpLimits``)."""
    clock = node.runtime.clock
    sessions = StoredSessions(node.store, clock, node.runtime.random)  # every worker's
    auth = HttpAuthenticator(node.store, node.homed, sessions, node.runtime, node.private_key)
    api = RestApi(node, auth, answers)

    # the proxy (``GET|HEAD /{handle}``, transport/proxy.py) renders JSON as the REST API does
    proxy = Proxy(
        node,
        answers,
        json_answer=lambda request, handle, answer: render(
            request, answer_json(handle, answer)[1], answer_json(handle, answer)[0]
        ),
        json_error=lambda request, handle, code, message: render(
            request, error_body(handle, code, message), http_status(code)
        ),
        status_of=http_status,
    )

    async def unknown_api(request: Request) -> Response:
        """``/api/*`` is the node's own namespace, never a handle's: an unknown path is 404."""
        message = f"no such API endpoint: {request.method} {request.url.path}"
        body = {"responseCode": int(ResponseCode.PROTOCOL_ERROR), "message": message}
        return render(request, body, 404)

    async def root(request: Request) -> Response:
        return render(
            request,
            {
                "node": node.config.node.name,
                "version": __version__,
                "prefixes": list(node.homed),
                "api": "/api/handles/{handle}",
            },
        )

    async def health(request: Request) -> Response:
        serial = await node.store.serial()
        return render(request, {"status": "ok", "serial": serial})

    async def handles_collection(request: Request) -> Response:
        if request.method != "GET":
            return _not_allowed(request)
        return await api.list_handles(request)

    async def one_handle(request: Request) -> Response:
        method = request.method
        if method in ("GET", "HEAD"):
            return await api.get(request)
        if method == "PUT":
            return await api.put(request)
        if method == "DELETE":
            return await api.delete(request)
        return _not_allowed(request)

    every = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]
    routes = [
        Route("/", root),
        Route("/healthz", health),
        *session_routes(auth),
        *extra_routes,  # the features': /api/mgmt, /metrics, /api/hierarchy/... (idnode.app)
        Route("/api/handles", handles_collection, methods=every),
        Route("/api/handles/{handle:path}", one_handle, methods=every),
        Route("/api", unknown_api, methods=every),
        Route("/api/{path:path}", unknown_api, methods=every),
        *qr_routes(node),  # /qr/{handle}.svg|png (transport/labels.py)
        *digital_link_routes(node),  # GS1: /01/..., /414/..., /.well-known/gs1resolver
        # Paths the node answers itself go above (extra_routes for a feature's or a scheme's,
        # e.g. GS1 Digital Link's /01/...); the proxy takes every other path as a handle.
        Route("/{handle:path}", proxy.respond, methods=["GET", "HEAD"]),
    ]
    app = Starlette(routes=routes)
    app.state.auth = auth  # its session table, for tests and tools
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _internal_error)
    app.add_exception_handler(StarletteHTTPException, _routing_error)
    if limits is None:
        limits = Limits.from_settings(node.config.limits, clock.monotonic)
    app.add_middleware(HttpLimits, limits=limits, streamed=streamed)
    if wire is not None:  # a Handle message is no anonymous REST write
        app.add_middleware(HandleOverHttp, handler=wire)
    # outermost: a browser app's preflight is answered on every path, and every answer from
    # below (a 429, a 401 with its challenge) carries the CORS headers (transport/cors.py)
    app.add_middleware(Cors, policy=CorsPolicy(node.config.server.cors_origins))
    return app


def _not_allowed(request: Request) -> Response:
    message = f"unknown HTTP API endpoint {request.method} {request.url.path}"
    return render(
        request, {"responseCode": int(ResponseCode.PROTOCOL_ERROR), "message": message}, 405
    )


async def _routing_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (405 on the proxy route, 404) as JSON, like every error."""
    status = getattr(exc, "status_code", 400)
    message = str(getattr(exc, "detail", "") or "bad request")
    body = {"responseCode": int(ResponseCode.PROTOCOL_ERROR), "message": message}
    headers = getattr(exc, "headers", None)
    content = orjson.dumps(body)
    return Response(content, status, headers=headers, media_type="application/json")


async def _client_gone(request: Request, exc: Exception) -> Response:
    """A client that hung up mid-body is expected on the Internet: one line, no traceback."""
    client = request.scope.get("client") or ("?", 0)
    log.info("client %s disconnected during %s %s", client[0], request.method, request.url.path)
    return Response(status_code=400)


async def _internal_error(request: Request, exc: Exception) -> Response:
    """A bug, not a client error: log it, answer code 2 without details (they may be private)."""
    log.exception("unexpected error serving %s %s", request.method, request.url.path)
    body = {"responseCode": int(ResponseCode.ERROR), "message": "internal server error"}
    return Response(orjson.dumps(body), status_code=500, media_type="application/json")


__all__ = ["build_app", "error_response", "http_status"]
