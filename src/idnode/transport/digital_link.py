"""A GS1-Conformant resolver on the node's HTTP face: ``/01/<GTIN>/...`` and the other
primary keys, and ``/.well-known/gs1resolver`` (docs/schemes.md, "GS1 Digital Link").

A Digital Link path is validated (``schemes.gs1``: 400 with a message for a bad check digit,
an unknown AI, qualifiers out of order), mapped onto its Handle identifier and resolved
through the one resolver (public values only), the most specific record first: the serial's,
else the batch's, else the product's. The record's link values (``schemes.gs1_links``) then
answer:

* ``linkType=all``, or an ``Accept`` asking for ``application/linkset+json`` (or JSON before
  HTML): 200, the RFC 9264 linkset, ``application/linkset+json``;
* otherwise a **307** to the link of the asked ``linkType`` (else the default link), chosen
  among several by ``Accept-Language`` against ``hreflang`` and ``Accept`` against ``type``,
  with a ``Link`` header pointing at the linkset;
* 404 when no record or no link answers.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from idnode.codes import ResponseCode
from idnode.errors import HandleNotFound, IdnodeError
from idnode.schemes.gs1 import DigitalLink, GS1Scheme, parse_path
from idnode.schemes.gs1_ai import PRIMARY_KEYS
from idnode.schemes.gs1_links import LINKSET, choose, link_type, links_of, linkset
from idnode.schemes.registry import SchemeRegistry
from idnode.service.node import Node
from idnode.service.resolve import Referral, ResolutionQuery, Values

VARY = "Accept, Accept-Language"
_STATUS = {ResponseCode.INVALID_HANDLE: 400, ResponseCode.HANDLE_NOT_FOUND: 404}


def _json(body: Any, status: int = 200, media: str = "application/json") -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=media)


def _error(code: ResponseCode, message: str, status: int | None = None) -> Response:
    body = {"responseCode": int(code), "message": message}
    return _json(body, status or _STATUS.get(code, 400))


def _wants_linkset(accept: str) -> bool:
    """An ``Accept`` that prefers a linkset (or JSON) to a page to be redirected to."""
    media = [p.split(";")[0].strip().lower() for p in accept.split(",")]
    if LINKSET in media:
        return True
    return "application/json" in media and "text/html" not in media


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


class DigitalLinkResolver:
    """The handlers; ``scheme`` is the node's GS1 plugin (its prefix says where keys live)."""

    def __init__(self, node: Node, scheme: GS1Scheme) -> None:
        self.node = node
        self.scheme = scheme

    async def resolve(self, request: Request) -> Response:
        raw = request.scope.get("raw_path") or quote(request.url.path).encode()
        query = list(request.query_params.multi_items())
        try:
            link = parse_path(raw.decode("latin-1"), query)
        except IdnodeError as exc:
            return _error(exc.code, exc.message)
        wanted = request.query_params.get("linkType")
        wanted_type = None
        if wanted and wanted != "all":
            wanted_type = link_type(wanted)
            if wanted_type is None:
                return _error(
                    ResponseCode.INVALID_HANDLE,
                    f"unknown linkType {wanted!r}: use all, gs1:<type> or https://gs1.org/voc/<type>",
                )
        try:
            found = await self._record(link, request)
        except IdnodeError as exc:
            return _error(exc.code, exc.message, 404 if isinstance(exc, HandleNotFound) else None)
        if isinstance(found[1], Referral):
            body = {
                "responseCode": int(ResponseCode.SERVICE_REFERRAL),
                "handle": self.scheme.handle_of(found[0]),
                "referralHandle": found[1].prefix_handle,
            }
            return _json(body, 300)
        matched, values = found[0], found[1].values
        links = links_of(values)
        anchor = _base(request) + matched.path
        linkset_url = f"{anchor}?linkType=all"
        if wanted == "all" or _wants_linkset(request.headers.get("accept", "")):
            response = _json(linkset(anchor, links), media=LINKSET)
        else:
            target = choose(
                links,
                wanted_type,
                request.headers.get("accept-language", ""),
                request.headers.get("accept", ""),
            )
            if target is None:
                which = wanted_type or "gs1:defaultLink"
                return _error(
                    ResponseCode.HANDLE_NOT_FOUND, f"{matched.path} has no {which} link", 404
                )
            response = RedirectResponse(target.href, status_code=307)
        response.headers["Link"] = f'<{linkset_url}>; rel="linkset"; type="{LINKSET}"'
        response.headers["Vary"] = VARY
        return response

    async def _record(
        self, link: DigitalLink, request: Request
    ) -> tuple[DigitalLink, Values | Referral]:
        """The most specific record of ``link`` the node has, through the one resolver."""
        client = request.scope.get("client")
        for candidate in link.less_specific():
            query = ResolutionQuery(
                handle=self.scheme.handle_of(candidate),
                public_only=True,
                client=str(client[0]) if client else "",
            )
            try:
                answer = await self.node.resolver.resolve(query)
            except HandleNotFound:
                continue
            if isinstance(answer, Values | Referral):
                return candidate, answer
        raise HandleNotFound(
            f"no record for the GS1 key {link.path} (Handle {self.scheme.handle_of(link)})"
        )

    async def description(self, request: Request) -> Response:
        """The resolver description file (GS1-Conformant resolver standard, section 3)."""
        settings = self.node.config.schemes
        body = {
            "name": settings.resolver_name or self.node.config.node.name,
            "resolverRoot": _base(request),
            "supportedLinkType": [{"namespace": "https://gs1.org/voc/", "prefix": "gs1:"}],
            "supportedPrimaryKeys": list(PRIMARY_KEYS),
            "linkTypeDefaultCanBeLinkset": True,
            "supportedContextValuesEnumerated": [],
        }
        return _json(body)


def digital_link_routes(node: Node) -> list[BaseRoute]:
    """``/<primary key AI>/...`` and ``/.well-known/gs1resolver``, when ``[schemes]`` enables
    GS1; none otherwise (the paths are then handles for the proxy)."""
    registry = SchemeRegistry.from_settings(node.config.schemes, node.config.node.prefixes)
    scheme = registry.get("gs1")
    if not isinstance(scheme, GS1Scheme):
        return []
    resolver = DigitalLinkResolver(node, scheme)
    routes: list[BaseRoute] = [Route("/.well-known/gs1resolver", resolver.description)]
    routes += [Route(f"/{ai}/{{rest:path}}", resolver.resolve) for ai in PRIMARY_KEYS]
    return routes
