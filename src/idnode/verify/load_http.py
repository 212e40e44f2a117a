"""REST resolution over raw HTTP/1.1: kept-alive GETs of /api/handles/{handle}.

Only what the generator needs of HTTP: a status line, headers, a Content-Length body.
A chunked or length-less answer counts as malformed (the node always sends a length), and
``Connection: close`` makes the pool reopen the connection for the next request (requests
pipelined behind that answer fail as ``connect`` errors: the server will not answer them).
"""

from __future__ import annotations

import re

from idnode.runtime import Clock
from idnode.verify.checks import check_http
from idnode.verify.streams import StreamConnection, StreamPool
from idnode.verify.workload import Op, http_request

MAX_HEAD = 16 * 1024
MAX_BODY = 64 * 1024 * 1024
MAX_REMEMBERED = 100_000  # encoded requests kept for reuse
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})[ \r]")
_FRAMING_HEADER = re.compile(
    rb"\r\n(content-length|connection|transfer-encoding)[ \t]*:[ \t]*([^\r]*)", re.IGNORECASE
)


class HttpConnection(StreamConnection):
    def __init__(self) -> None:
        super().__init__()
        self._head: tuple[int, int] | None = None  # (status, body length) once headers parsed
        self._head_end = 0

    def parse(self) -> tuple[int, bytes] | None:
        buf = self.buf
        if self._head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise ValueError("HTTP head longer than 16 KiB")
                return None
            self._head = self._parse_head(bytes(buf[:end]))
            self._head_end = end + 4
        status, length = self._head
        stop = self._head_end + length
        if len(buf) < stop:
            return None
        body = bytes(buf[self._head_end : stop])
        del buf[:stop]
        self._head = None
        return status, body

    def _parse_head(self, head: bytes) -> tuple[int, int]:
        # one regex pass over the headers: a per-line Python loop cost as much as the node
        # spends answering a cached request
        status = _STATUS_LINE.match(head)
        if status is None:
            first = head.split(b"\r\n", 1)[0]
            raise ValueError(f"bad status line {first[:80]!r}")
        length = None
        for name, value in _FRAMING_HEADER.findall(head):
            name = name.lower()
            if name == b"content-length":
                length = int(value) if value.strip().isdigit() else None
            elif name == b"connection" and value.strip().lower() == b"close":
                self.closing = True
            elif name == b"transfer-encoding":
                raise ValueError("chunked answer: the generator reads Content-Length bodies")
        if length is None or length > MAX_BODY:
            raise ValueError("HTTP answer without a usable Content-Length")
        return int(status.group(1)), length

    def drop(self) -> None:
        self._head = None
        super().drop()


def http_channel(
    host: str, port: int, *, connections: int, timeout: float, clock: Clock, pipeline: int = 1
) -> StreamPool:
    """REST resolution against ``http://host:port`` through kept-alive connections, each
    with up to ``pipeline`` requests in flight (HTTP/1.1 pipelining when above 1); requests
    time out on ``clock``."""
    authority = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"

    requests: dict[tuple[str, str | None], bytes] = {}  # the key set repeats: encode once

    def encode(op: Op) -> bytes:
        key = (op.handle, op.type)
        request = requests.get(key)
        if request is None:
            if len(requests) >= MAX_REMEMBERED:  # misses are all different: stay bounded
                requests.clear()
            request = requests[key] = http_request(op, authority)
        return request

    def check(op: Op, got: object) -> tuple[str, str | None]:
        status, body = got  # type: ignore[misc]
        return check_http(op, status, body)

    return StreamPool(
        host,
        port,
        size=connections,
        timeout=timeout,
        factory=HttpConnection,
        encode=encode,
        check=check,
        clock=clock,
        pipeline=pipeline,
    )
