"""The proxy, ``GET|HEAD /{handle}``, as HANDLE.NET's (hdl.handle.net) answers people.

What it does with a handle (docs/compatibility.md, "The proxy"):

* the path may name it plainly (``/20.500.123/x``) or in the ``hdl:`` / ``doi:`` forms
  people paste (``/hdl:20.500.123/x``, ``/doi:10.1000/182``);
* it resolves through the one resolver (public values only), narrowed by ``type`` and
  ``index`` as the REST API does;
* ``Accept`` preferring ``application/json``: the REST API's JSON of the answer, no redirect;
* otherwise a 302 to the location the record's 10320/LOC selects (``proxy_select``: weights,
  ``locatt``, and ``view=`` as a shorthand for ``locatt=view:...``), else to its first URL
  value, with ``urlappend`` appended; ``noredirect`` or ``action=showvalues`` -- or a record
  with nowhere to go -- gets an HTML page of the values (``proxy_page``), in Chinese or
  English;
* errors are that page's error form (or the REST JSON error to a JSON client), with the
  status the REST API pairs with the code;
* ``auth`` (HANDLE.NET's "authoritative" query) answers from the store and never from, nor
  into, the node's response cache; nor does a weighted random choice go into it.

Answers go into the response cache (``http_fast``) under the target and the variant the
request's headers ask for (``proxy_negotiation.cache_key``).

The JSON and its errors are the REST API's own (``transport/http.py``), handed in as two
functions so that module builds the proxy without this one importing it back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from idnode.codes import ResponseCode
from idnode.errors import IdnodeError, ProtocolError
from idnode.service.node import Node
from idnode.service.resolve import NeedsAuth, Referral, ResolutionQuery, Values
from idnode.transport.http_fast import CachedRestAnswers
from idnode.transport.proxy_negotiation import wants_json
from idnode.transport.proxy_page import CSP, error_page, language, values_page
from idnode.transport.proxy_select import Target, parse_locatt, redirect_target

JsonAnswer = Callable[[Request, str, Values | Referral], Response]
JsonError = Callable[[Request, str, int, str], Response]

_SCHEME_FORM = re.compile(r"^(?:hdl|doi):/*", re.IGNORECASE)
_INDEX = re.compile(r"-?[0-9]{1,10}")
VARY = "Accept, Accept-Language"


def handle_from_path(path: str) -> str:
    """``hdl:20.500.123/x`` and ``doi:10.1000/182`` name the handles ``20.500.123/x`` and
    ``10.1000/182``; any other path is the handle itself."""
    return _SCHEME_FORM.sub("", path, count=1)


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name)
    return value is not None and value.strip().lower() in ("", "true", "yes", "1")


def _indexes(request: Request) -> tuple[int, ...]:
    out = []
    for raw in request.query_params.getlist("index"):
        if not _INDEX.fullmatch(raw.strip()) or not -(2**31) <= int(raw) < 2**31:
            raise ProtocolError("index must be an integer of 32 bits")
        out.append(int(raw))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ProxyRequest:
    """The proxy's reading of one request; ``ProtocolError`` for a malformed parameter."""

    handle: str
    json: bool
    lang: str
    show_values: bool
    authoritative: bool
    urlappend: str
    locatt: tuple[tuple[str, str], ...]
    types: tuple[str, ...]
    indexes: tuple[int, ...]

    @classmethod
    def read(cls, request: Request) -> ProxyRequest:
        params = request.query_params
        locatt = list(params.getlist("locatt"))
        locatt += [f"view:{view}" for view in params.getlist("view")]
        try:
            pairs = parse_locatt(locatt)
        except IdnodeError as exc:
            raise ProtocolError(exc.message) from None
        return cls(
            handle=handle_from_path(request.path_params["handle"]),
            json=wants_json(request.headers.get("accept")),
            lang=language(params.get("lang"), request.headers.get("accept-language")),
            show_values=_flag(request, "noredirect") or params.get("action") == "showvalues",
            authoritative=_flag(request, "auth"),
            urlappend=params.get("urlappend") or "",
            locatt=pairs,
            types=tuple(params.getlist("type")),
            indexes=_indexes(request),
        )


class Proxy:
    """The ``/{handle}`` endpoint: ``respond`` is the Starlette endpoint."""

    def __init__(
        self,
        node: Node,
        answers: CachedRestAnswers | None,
        json_answer: JsonAnswer,
        json_error: JsonError,
        status_of: Callable[[int], int],
    ) -> None:
        self.node = node
        self.answers = answers
        self.json_answer = json_answer
        self.json_error = json_error
        self.status_of = status_of

    async def respond(self, request: Request) -> Response:
        generation = self.answers.generation() if self.answers is not None else 0
        try:
            asked = ProxyRequest.read(request)
        except IdnodeError as exc:
            handle = handle_from_path(request.path_params["handle"])
            lang = language(request.query_params.get("lang"), None)
            bare = ProxyRequest(handle, wants_json(request.headers.get("accept")), lang,
                                False, True, "", (), (), ())  # fmt: skip
            return self._finish(request, bare, self._error(request, bare, exc.code, exc.message))
        response, target = await self._answer(request, asked)
        response = self._finish(request, asked, response)
        cacheable = not asked.authoritative and not (target is not None and target.random)
        if cacheable and self.answers is not None:  # (only GETs are kept)
            self.answers.remember(
                request.scope, response.status_code, response.raw_headers, response.body,
                asked.handle, generation,
            )  # fmt: skip
        return response

    async def _answer(
        self, request: Request, asked: ProxyRequest
    ) -> tuple[Response, Target | None]:
        query = ResolutionQuery(
            handle=asked.handle,
            indexes=asked.indexes,
            types=asked.types,
            public_only=True,
            client=request.client.host if request.client else "",
        )
        try:
            answer = await self.node.resolver.resolve(query)
        except IdnodeError as exc:
            if exc.code != ResponseCode.VALUES_NOT_FOUND:
                return self._error(request, asked, exc.code, exc.message), None
            answer = Values(())
        if isinstance(answer, NeedsAuth):  # not with public_only; rendered if it ever is
            code = ResponseCode.AUTHENTICATION_NEEDED
            return self._error(request, asked, code, answer.reason), None
        if asked.json or isinstance(answer, Referral):
            return self.json_answer(request, asked.handle, answer), None
        target = None
        if not asked.show_values:
            target = redirect_target(answer.values, asked.locatt, self.node.runtime.random)
        if target is not None:
            return RedirectResponse(target.url + asked.urlappend, status_code=302), target
        page = values_page(asked.handle, answer.values, asked.lang, self.node.config.node.name)
        return HTMLResponse(page), None

    def _error(self, request: Request, asked: ProxyRequest, code: int, message: str) -> Response:
        if asked.json:
            return self.json_error(request, asked.handle, code, message)
        page = error_page(asked.handle, code, message, asked.lang)
        return HTMLResponse(page, status_code=self.status_of(code))

    def _finish(self, request: Request, asked: ProxyRequest, response: Response) -> Response:
        """The headers every proxy answer carries; no body for HEAD (the same length)."""
        response.headers["vary"] = VARY
        if response.media_type == "text/html":
            response.headers["content-security-policy"] = CSP
            response.headers["x-content-type-options"] = "nosniff"
            response.headers["content-language"] = asked.lang
        if asked.authoritative:
            response.headers["cache-control"] = "no-store"
        if request.method == "HEAD":
            response.body = b""
        return response


__all__ = ["Proxy", "ProxyRequest", "handle_from_path"]
