"""The HTTP face of the node: the Handle.Net-shaped REST API and a proxy that redirects.

Requests reach the same service functions the binary protocol uses; only the rendering
differs. Errors are always JSON ``{"responseCode", "handle", "message"}``.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from idnode import __version__
from idnode.codes import ResponseCode
from idnode.errors import IdnodeError, InvalidHandle
from idnode.model import URL
from idnode.service.node import Node
from idnode.service.resolve import ResolutionQuery
from idnode.transport.json_values import value_to_json

# HTTP status for each Handle response code, as Handle.Net's REST API pairs them.
_STATUS = {
    ResponseCode.SUCCESS: 200,
    ResponseCode.ERROR: 500,
    ResponseCode.SERVER_BUSY: 503,
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
}


def http_status(code: int) -> int:
    if code in _STATUS:
        return _STATUS[ResponseCode(code)]
    if 400 <= code < 500:
        return 403
    return 500


class JSONResponse(Response):
    media_type = "application/json"

    def __init__(self, content: Any, status_code: int = 200, pretty: bool = False) -> None:
        option = orjson.OPT_INDENT_2 if pretty else 0
        super().__init__(orjson.dumps(content, option=option), status_code=status_code)


def error_response(handle: str | None, code: int, message: str, pretty: bool = False) -> Response:
    body: dict[str, Any] = {"responseCode": int(code)}
    if handle is not None:
        body["handle"] = handle
    body["message"] = message
    return JSONResponse(body, http_status(code), pretty)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() in ("true", "1", "yes", "")


def _query(request: Request, handle: str) -> ResolutionQuery:
    try:
        indexes = tuple(int(i) for i in request.query_params.getlist("index"))
    except ValueError:
        raise InvalidHandle("index must be an integer") from None
    return ResolutionQuery(
        handle=handle,
        indexes=indexes,
        types=tuple(request.query_params.getlist("type")),
        public_only=_flag(request, "publicOnly") if "publicOnly" in request.query_params else False,
    )


def build_app(node: Node) -> Starlette:
    async def get_handle(request: Request) -> Response:
        handle = request.path_params["handle"]
        pretty = "pretty" in request.query_params
        try:
            values = await node.resolver.resolve(_query(request, handle))
        except IdnodeError as exc:
            if exc.code == ResponseCode.VALUES_NOT_FOUND:
                body = {"responseCode": int(exc.code), "handle": handle, "values": []}
                return JSONResponse(body, 200, pretty)
            return error_response(handle, exc.code, exc.message, pretty)
        body = {
            "responseCode": 1,
            "handle": handle,
            "values": [value_to_json(v) for v in values],
        }
        return JSONResponse(body, 200, pretty)

    async def proxy(request: Request) -> Response:
        """``GET /{handle}``: redirect to the record's URL value, as public handle proxies do."""
        handle = request.path_params["handle"]
        try:
            values = await node.resolver.resolve(ResolutionQuery(handle=handle, public_only=True))
        except IdnodeError as exc:
            return error_response(handle, exc.code, exc.message)
        urls = [v for v in values if v.type == URL]
        if not urls:
            body = {
                "responseCode": 1,
                "handle": handle,
                "values": [value_to_json(v) for v in values],
            }
            return JSONResponse(body)
        target = urls[0].data.decode("utf-8", "replace")
        return RedirectResponse(target, status_code=302)

    async def root(request: Request) -> Response:
        return JSONResponse(
            {
                "node": node.config.node.name,
                "version": __version__,
                "prefixes": list(node.homed),
                "api": "/api/handles/{handle}",
            }
        )

    async def health(request: Request) -> Response:
        serial = await node.store.serial()
        return JSONResponse({"status": "ok", "serial": serial})

    routes = [
        Route("/", root),
        Route("/healthz", health),
        Route("/api/handles/{handle:path}", get_handle, methods=["GET"]),
        Route("/{handle:path}", proxy, methods=["GET"]),
    ]
    return Starlette(routes=routes)
