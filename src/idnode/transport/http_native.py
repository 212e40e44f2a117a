"""HDL-over-HTTP: binary Handle messages on the site's HTTP interface, as HANDLE.NET serves
them.

Our HS_SITE advertises an HTTP interface (protocol 2) for queries and administration. An HSJ
client uses it like any other interface of the site -- when UDP and TCP are blocked, or for
the admin requests it will not send over UDP -- and speaks the binary protocol to it
(HSJ ``HandleResolver.sendHttpOrHttpsRequest``; served by ``NativeServlet``)::

    POST /<URL-encoded handle> HTTP/1.1
    Accept: application/x-hdl-message
    Content-Type: application/x-hdl-message
    Content-Length: 20 + n

    envelope (20 bytes) || message (n bytes)

and reads back ``200`` with ``Content-Type: application/x-hdl-message`` and the answer framed
as on TCP: envelope and message, then the next message of a CN-continued listing. Errors are
Handle error messages inside a 200, as ``NativeServlet`` sends them; the path is not read
(the handle is inside the message). One leading CR or LF before the envelope is skipped, as
``NativeServlet`` does.

Every request goes through the node's one ``WireHandler``, exactly as a TCP frame does: the
same rate limits, authentication, challenges, sessions and interface rules. The entity is
bounded (``max_body``: one envelope and the largest message the wire accepts, and never more
than ``[limits] http_max_body``), refused from its Content-Length before anything is read
(413), or as soon as the bytes received pass the bound.

Only requests whose Content-Type is ``application/x-hdl-message`` are taken, and never under
``/api/`` (the REST API's); everything else goes on to the REST app untouched.
"""

from __future__ import annotations

import logging

import orjson

from idnode.codes import ResponseCode
from idnode.errors import IdnodeError
from idnode.transport.wire_handler import WireHandler
from idnode.wire.envelope import ENVELOPE_SIZE, MAX_MESSAGE_LENGTH, Envelope, decode_envelope

log = logging.getLogger("idnode.http")

HDL_MIME_TYPE = "application/x-hdl-message"  # HSJ Common.HDL_MIME_TYPE
_MIME = HDL_MIME_TYPE.encode("ascii")


class _TooLarge(Exception):
    pass


def is_handle_message(scope: dict) -> bool:
    """A POST of a binary Handle message outside the REST API."""
    if scope.get("type") != "http" or scope.get("method") != "POST":
        return False
    if str(scope.get("path", "")).startswith("/api/"):
        return False
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() == _MIME
    return False


class HandleOverHttp:
    """ASGI middleware: answers HDL-over-HTTP requests with ``handler``, passes the rest on."""

    def __init__(self, app, handler: WireHandler, max_body: int | None = None) -> None:
        self.app = app
        self.handler = handler
        limit = 1 + ENVELOPE_SIZE + MAX_MESSAGE_LENGTH  # a leading newline, envelope, message
        configured = getattr(handler.limits, "http_max_body", None)
        if configured:
            limit = min(limit, int(configured))
        self.max_body = limit if max_body is None else max_body

    async def __call__(self, scope: dict, receive, send) -> None:
        if not is_handle_message(scope):
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await _too_large(send, self.max_body)
            return
        try:
            data = await _read_body(receive, self.max_body)
        except _TooLarge:
            await _too_large(send, self.max_body)
            return
        client = scope.get("client") or ("?", 0)
        answers = await self.answer(data, f"{client[0]}:{client[1]}")
        body = b"".join(answers)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", _MIME),
                    (b"content-length", str(len(body)).encode("ascii")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def answer(self, data: bytes, peer: str) -> list[bytes]:
        """The encoded answers to one entity (NativeServlet's checks, then the handler's)."""
        if data[:1] in (b"\n", b"\r"):
            data = data[1:]
        if len(data) < ENVELOPE_SIZE:
            return [self._error(Envelope(), "Invalid message length")]
        try:
            envelope = decode_envelope(data[:ENVELOPE_SIZE], self.max_body)
        except IdnodeError as exc:
            return [self._error(Envelope(), str(exc))]
        payload = data[ENVELOPE_SIZE : ENVELOPE_SIZE + envelope.message_length]
        if len(payload) < envelope.message_length:
            text = f"Expecting {envelope.message_length} bytes, only received {len(payload)}"
            return [self._error(envelope, text)]
        return await self.handler.answer_messages(envelope, payload, peer)

    def _error(self, envelope: Envelope, text: str) -> bytes:
        return self.handler.encode_error(envelope, ResponseCode.PROTOCOL_ERROR, text)


def _header(scope: dict, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == wanted:
            return value.decode("latin-1").strip()
    return None


async def _read_body(receive, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _too_large(send, limit: int) -> None:
    body = orjson.dumps(
        {
            "responseCode": int(ResponseCode.PROTOCOL_ERROR),
            "message": f"request body larger than {limit} bytes",
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("ascii")),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
