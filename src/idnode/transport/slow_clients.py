"""A deadline on each HTTP request, against slowloris clients.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but has no bound on how
long one request may take to arrive: a client sending a header byte every few seconds holds
a connection, and enough of them hold them all. This wraps uvicorn's HTTP protocol class
(through its documented ``http=`` option) with one timer per request: armed when the
connection opens and when a new request begins, cancelled when the request has fully
arrived; when it fires, the connection is closed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("idnode.http")


def request_deadline_protocol(seconds: float, base: type | None = None) -> type:
    """uvicorn's (httptools) HTTP protocol with a deadline of ``seconds`` per request."""
    if base is None:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        base = HttpToolsProtocol

    class RequestDeadlineProtocol(base):  # type: ignore[misc, valid-type]
        _deadline: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._deadline = asyncio.get_running_loop().call_later(seconds, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            transport: Any = getattr(self, "transport", None)
            if transport is not None and not transport.is_closing():
                peer = transport.get_extra_info("peername")
                log.info("closing slow HTTP client", extra={"peer": str(peer), "after": seconds})
                transport.close()

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            self._arm()
            super().on_message_begin()

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return RequestDeadlineProtocol
