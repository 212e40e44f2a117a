"""Bounds on every HTTP connection: its output, its request head, and its place in the budget.

uvicorn's httptools protocol (which ``http_fast`` and ``slow_clients`` extend through uvicorn's
documented ``http=`` option; uvicorn is pinned ``<0.56`` in pyproject.toml) leaves three holes
an attacker used (docs/security.md):

* **Output nobody reads.** A client pipelining requests and never reading the answers made
  the node buffer all of them (a cached 14 KiB answer asked for 1.6 MB worth: +211 MiB).
  ``guarded_protocol`` parses input ``SLICE`` bytes at a time and stops while the connection's
  unsent output is above the transport's high-water mark, ``PIPELINE_LIMIT`` requests wait, or
  uvicorn itself asked for no more input (a pipelined request queued, a body not yet taken);
  the input left over (at most one read) waits, and the socket is not read until the client
  has taken its answers. ``http_fast`` asks ``output_full`` before writing a cached answer.
* **Heads of any size.** llhttp has no limit on the request line or the headers (an 8 MiB
  header got a 200). ``head_limits_protocol`` refuses a request line over
  ``max_request_line`` bytes (414), more than ``max_header_count`` fields or a head over
  ``max_header_bytes`` (431), and closes the connection; a head still arriving is cut off
  once twice the limit has come in, so a trickled header never grows past it.
* **Connections.** Every connection takes a ticket from the process's ``ConnectionBudget``
  (``connections.py``): at most ``http_max_connections_per_ip`` per address on this listener
  (429 and close beyond), and when the process is full the longest-idle connection (a
  half-sent request included) is closed for the newcomer. ``http_max_concurrency`` bounds
  the requests being answered at once (503 beyond), no longer the connections.

Composition (``serve.py``): ``head_limits_protocol`` sits right on uvicorn's class (it
replaces the error path of the parser), ``http_fast`` and ``slow_clients`` above it, and
``guarded_protocol`` outermost (it decides what the classes below get to parse).
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import orjson

from idnode.transport.connections import ConnectionBudget, Ticket, shut
from idnode.transport.limits import Limits

log = logging.getLogger("idnode.http")

SLICE = 4096  # bytes of input parsed at a time
PIPELINE_LIMIT = 32  # requests queued on one connection before its input stops being parsed
OUTPUT_HIGH_WATER = 64 * 1024  # unsent bytes above which a connection is not read


@dataclass(frozen=True)
class HeadLimits:
    """Sizes a request head may have (``[limits] http_max_*``)."""

    max_request_line: int = 8 * 1024
    max_header_bytes: int = 16 * 1024
    max_header_count: int = 100

    @classmethod
    def from_settings(cls, section: Any) -> HeadLimits:
        return cls(
            int(section.http_max_request_line),
            int(section.http_max_header_bytes),
            int(section.http_max_header_count),
        )


@dataclass
class HttpGuard:
    """What ``guarded_protocol`` needs: the limits, the process's budget, the task bound."""

    limits: Limits
    budget: ConnectionBudget
    max_tasks: int = 1000  # requests answered at once (``http_max_concurrency``); 0: no bound


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing a head over its limits."""


def refusal(status: int, reason: str, message: str, *, retry_after: int = 0) -> bytes:
    """A complete HTTP response that closes the connection, JSON like every error."""
    body = orjson.dumps({"responseCode": 4 if status < 500 else 3, "message": message})
    head = [
        b"HTTP/1.1 %d %s\r\n" % (status, reason.encode()),
        b"content-type: application/json\r\n",
        b"content-length: %d\r\n" % len(body),
        b"connection: close\r\n",
    ]
    if retry_after:
        head.append(b"retry-after: %d\r\n" % retry_after)
    return b"".join(head) + b"\r\n" + body


def head_limits_protocol(limits: HeadLimits, base: type | None = None) -> type:
    """uvicorn's (httptools) HTTP protocol refusing oversized request heads."""
    import httptools

    if base is None:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        base = HttpToolsProtocol

    class HeadLimitsProtocol(base):  # type: ignore[misc, valid-type]
        _head_open = False  # a request head is being parsed
        _head_bytes = 0  # its bytes counted so far (request line, complete fields)
        _head_fed = 0  # bytes fed while it was open (bounds a field still arriving)
        _refused: tuple[int, str, str] | None = None

        def on_message_begin(self) -> None:
            self._head_open, self._head_bytes, self._head_fed = True, 0, 0
            super().on_message_begin()

        def on_url(self, url: bytes) -> None:
            self._head_bytes += len(url)
            if self._head_bytes > limits.max_request_line:
                self._refuse(414, f"request target longer than {limits.max_request_line} bytes")
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._head_bytes += len(name) + len(value) + 4
            if self._head_bytes > limits.max_header_bytes:
                self._refuse(431, f"request head larger than {limits.max_header_bytes} bytes")
            if len(self.headers) >= limits.max_header_count:
                self._refuse(431, f"more than {limits.max_header_count} header fields")
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._head_open = False
            super().on_headers_complete()

        def _refuse(self, status: int, message: str) -> None:
            self._refused = (status, HTTPStatus(status).phrase, message)
            raise _Refused(message)

        def data_received(self, data: bytes) -> None:
            """uvicorn's, with our refusals in place of its generic 400."""
            self._unset_keepalive_if_required()
            was_open = self._head_open
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                if self._refused is None:
                    log.info("invalid HTTP request from %s", _peer(self))
                self.send_400_response("Invalid HTTP request received.")
                return
            except httptools.HttpParserUpgrade:
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                else:
                    self._unsupported_upgrade_warning()
                return
            if self._head_open:  # a head is still arriving: count what it may already hold
                self._head_fed += len(data) if was_open else min(len(data), SLICE)
                if self._head_fed > 2 * limits.max_header_bytes:
                    message = f"request head larger than {limits.max_header_bytes} bytes"
                    self._refused = (431, HTTPStatus(431).phrase, message)
                    self.send_400_response("")

        def send_400_response(self, msg: str) -> None:
            refused = self._refused
            if refused is None:
                super().send_400_response(msg)
                return
            status, reason, message = refused
            log.info("refused HTTP request from %s: %s", _peer(self), message)
            self.transport.write(refusal(status, reason, message))
            self.transport.close()

    return HeadLimitsProtocol


def guarded_protocol(guard: HttpGuard, base: type | None = None) -> type:
    """uvicorn's (httptools) HTTP protocol with bounded output and a connection budget."""
    from uvicorn.protocols.http.flow_control import FlowControl, service_unavailable

    if base is None:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        base = HttpToolsProtocol
    limits, budget, max_tasks = guard.limits, guard.budget, guard.max_tasks

    class HeldFlow(FlowControl):
        """uvicorn's flow control, whose reading also waits for the protocol's own reasons:
        input held back, or output the client has not taken."""

        def __init__(self, transport: Any, protocol: Any) -> None:
            super().__init__(transport)
            self.protocol = protocol

        def pause_reading(self) -> None:
            self.read_paused = True
            self.protocol._sync_reading()

        def resume_reading(self) -> None:
            self.read_paused = False
            self.protocol._schedule_pump()
            self.protocol._sync_reading()

        def pause_writing(self) -> None:
            super().pause_writing()
            self.protocol._sync_reading()

        def resume_writing(self) -> None:
            super().resume_writing()
            self.protocol._schedule_pump()
            self.protocol._sync_reading()

    class GuardedProtocol(base):  # type: ignore[misc, valid-type]
        _ticket: Ticket | None = None
        _backlog = b""  # input read but not yet parsed
        _reading_paused = False
        _pump_scheduled = False

        # -- the budget's view ----------------------------------------------------------
        def busy(self) -> bool:
            """An answer is being computed: a request arrived whole and is not answered."""
            cycle = self.cycle
            return bool(self.pipeline) or (
                cycle is not None and not cycle.response_complete and not cycle.more_body
            )

        def evict(self) -> None:
            log.info("closing %s: connection budget full, this one idle longest", _peer(self))
            self._gone()
            self.transport.abort()

        def _gone(self) -> None:
            """Every request of this connection stops writing: uvicorn marks only its latest
            request when the connection is lost, while with pipelining an earlier one may be
            the one answering, and uvloop raises on a write to a closed transport (a 500 and
            a traceback per client that went away)."""
            for cycle in getattr(self, "_cycles", ()):
                if not cycle.response_complete:
                    cycle.disconnected = True
                cycle.message_event.set()

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.flow = HeldFlow(transport, self)
            transport.set_write_buffer_limits(high=OUTPUT_HIGH_WATER)
            host = self.client[0] if self.client else "?"
            counted = None if limits.is_exempt(host) else host
            per_ip = limits.http_max_connections_per_ip
            self._ticket = budget.admit(self, self.scheme or "http", counted, per_ip)
            if self._ticket is None:
                if counted is not None and budget.count(self.scheme or "http", host) >= per_ip:
                    status, message = 429, "too many connections from this client"
                else:
                    status, message = 503, "the node is at its connection budget; try again"
                answer = refusal(status, HTTPStatus(status).phrase, message, retry_after=1)
                log.info("refusing HTTP connection from %s", host)
                transport.write(answer)
                transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            budget.release(self._ticket)
            self._ticket = None
            self._backlog = b""
            self._gone()
            super().connection_lost(exc)

        # -- what may be parsed ---------------------------------------------------------
        def output_full(self) -> bool:
            """Asked by ``http_fast`` before writing a cached answer."""
            return self.flow.write_paused

        def _held(self) -> bool:
            flow = self.flow
            return flow.read_paused or flow.write_paused or len(self.pipeline) >= PIPELINE_LIMIT

        def _sync_reading(self) -> None:
            transport = self.transport
            if transport is None or transport.is_closing():
                return
            pause = bool(self._backlog) or self._held()
            if pause != self._reading_paused:
                self._reading_paused = pause
                if pause:
                    transport.pause_reading()
                else:
                    transport.resume_reading()

        def _schedule_pump(self) -> None:
            if self._backlog and not self._pump_scheduled:
                self._pump_scheduled = True
                self.loop.call_soon(self._pump)

        def data_received(self, data: bytes) -> None:
            self._backlog = self._backlog + data if self._backlog else data
            self._pump()

        def _pump(self) -> None:
            self._pump_scheduled = False
            data, self._backlog = self._backlog, b""
            offset, size = 0, len(data)
            transport = self.transport
            while offset < size and not self._held() and not transport.is_closing():
                piece = data if size <= SLICE else data[offset : offset + SLICE]
                offset += len(piece)
                super().data_received(piece)
            if offset < size and not transport.is_closing():
                self._backlog = data[offset:]
            self._sync_reading()

        # -- requests ---------------------------------------------------------------------
        def on_headers_complete(self) -> None:
            if max_tasks > 0 and len(self.tasks) >= max_tasks:
                own = self.app
                self.app = service_unavailable  # uvicorn's 503: too many requests at once
                log.warning("refusing a request: %d being answered already", len(self.tasks))
                try:
                    super().on_headers_complete()
                finally:
                    self.app = own
                return
            super().on_headers_complete()
            if self.cycle is not None:  # remembered until answered (``_gone``)
                cycles = self.__dict__.setdefault("_cycles", weakref.WeakSet())
                cycles.add(self.cycle)

        def on_message_complete(self) -> None:
            budget.active(self._ticket)
            super().on_message_complete()

        def timeout_keep_alive_handler(self) -> None:
            self._gone()
            shut(self.transport)  # uvicorn's close() would wait for output never taken

    return GuardedProtocol


def _peer(protocol: Any) -> str:
    client = getattr(protocol, "client", None)
    return f"{client[0]}:{client[1]}" if client else "?"
