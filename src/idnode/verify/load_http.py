"""REST resolution over raw HTTP/1.1: kept-alive GETs of /api/handles/{handle}.

Only what the generator needs of HTTP: a status line, headers, a Content-Length body.
A chunked or length-less answer counts as malformed (the node always sends a length), and
``Connection: close`` makes the pool reopen the connection for the next request.
"""

from __future__ import annotations

from idnode.verify.checks import check_http
from idnode.verify.streams import StreamConnection, StreamPool
from idnode.verify.workload import Op, http_request

MAX_HEAD = 16 * 1024
MAX_BODY = 64 * 1024 * 1024


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
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ValueError(f"bad status line {lines[0][:80]!r}")
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip()) if value.strip().isdigit() else None
            elif name == b"connection" and value.strip().lower() == b"close":
                self.closing = True
            elif name == b"transfer-encoding":
                raise ValueError("chunked answer: the generator reads Content-Length bodies")
        if length is None or length > MAX_BODY:
            raise ValueError("HTTP answer without a usable Content-Length")
        return int(parts[1]), length

    def drop(self) -> None:
        self._head = None
        super().drop()


def http_channel(host: str, port: int, *, connections: int, timeout: float) -> StreamPool:
    """REST resolution against ``http://host:port`` through kept-alive connections."""
    authority = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"

    def encode(op: Op) -> bytes:
        return http_request(op, authority)

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
    )
