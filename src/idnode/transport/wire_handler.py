"""From one decoded Handle message to its answer: the bridge between the wire and the services.

UDP and TCP share this: they deliver ``(envelope, payload)`` frames, and get back the encoded
response message (envelope included). Every failure becomes a Handle error response; nothing
a client sends can raise out of ``answer``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from idnode.codes import OpCode, OpFlag, ResponseCode
from idnode.errors import IdnodeError, MalformedMessage
from idnode.service.node import Node
from idnode.service.resolve import ResolutionQuery
from idnode.wire import bodies
from idnode.wire.envelope import Envelope
from idnode.wire.header import HEADER_SIZE, decode_header
from idnode.wire.message import Message, decode_message, encode_message, make_error, make_response

log = logging.getLogger("idnode.wire")

EXPIRATION_SECONDS = 12 * 3600  # how long an answer stays valid, as Handle.Net servers say


class WireHandler:
    """Answers Handle protocol requests for one node."""

    def __init__(self, node: Node, clock: Callable[[], float] = time.time) -> None:
        self.node = node
        self.clock = clock

    def _expiration(self) -> int:
        return int(self.clock()) + EXPIRATION_SECONDS

    def _respond(self, request: Message, body: bodies.Body) -> Message:
        return make_response(
            request, body, site_serial=self.node.site_serial, expiration=self._expiration()
        )

    async def answer(self, envelope: Envelope, payload: bytes, peer: str = "") -> bytes | None:
        """The encoded response to one request frame, or None when nothing should be sent."""
        try:
            request = decode_message(envelope, payload)
        except MalformedMessage as exc:
            header = _header_or_none(payload)
            if header is not None and header.response_code != 0:
                return None  # a malformed *response* sent to us: never answer answers
            log.info("malformed request from %s: %s", peer, exc)
            return encode_message(make_error(envelope, header, exc.code, str(exc)))
        except IdnodeError as exc:  # e.g. an unsupported protocol version
            return encode_message(
                make_error(envelope, _header_or_none(payload), exc.code, str(exc))
            )
        if request.header.response_code != 0:
            return None
        try:
            response = await self.dispatch(request)
        except IdnodeError as exc:
            response = make_error(request.envelope, request.header, exc.code, str(exc))
        except Exception:  # a bug must cost one answer, not the server
            log.exception("internal error answering opcode %s", request.header.opcode)
            response = make_error(
                request.envelope, request.header, ResponseCode.ERROR, "internal server error"
            )
        return encode_message(response)

    async def dispatch(self, request: Message) -> Message:
        body = request.body
        opcode = request.header.opcode
        if opcode == OpCode.RESOLUTION and isinstance(body, bodies.ResolutionRequest):
            return await self._resolve(request, body)
        if opcode == OpCode.GET_SITEINFO:
            return self._respond(request, bodies.SiteInfoResponse(self.node.site))
        return make_error(
            request.envelope,
            request.header,
            ResponseCode.OPERATION_NOT_SUPPORTED,
            f"operation {opcode} is not supported by this node",
        )

    async def _resolve(self, request: Message, body: bodies.ResolutionRequest) -> Message:
        query = ResolutionQuery(
            handle=body.handle,
            indexes=tuple(body.indexes),
            types=tuple(body.types),
            public_only=bool(request.header.flags & OpFlag.PO),
        )
        values = await self.node.resolver.resolve(query)
        return self._respond(request, bodies.ResolutionResponse(body.handle, tuple(values)))


def _header_or_none(payload: bytes):
    if len(payload) < HEADER_SIZE:
        return None
    try:
        return decode_header(payload[:HEADER_SIZE])
    except MalformedMessage:
        return None
