"""A deadline on each HTTP request, against slowloris clients.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but has no bound on how
long one request may take to arrive: a client sending a header byte every few seconds holds
a connection, and enough of them hold them all. This wraps uvicorn's HTTP protocol class
(through its documented ``http=`` option) with a deadline per request: a connection whose
current request has not fully arrived ``seconds`` after it began is closed.

One watchdog timer per connection, not one per request: a request only notes when it began
(a float), and the watchdog, when it fires, closes the connection or sleeps until the next
moment something could be due. A timer armed and cancelled for every request cost 7 % of
the server's time under load (py-spy, docs/performance.md). The watchdog also closes
connections left idle after an answer from the response cache (``http_fast``), which skips
uvicorn's per-response keep-alive timer for the same reason.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from idnode.transport.connections import shut

log = logging.getLogger("idnode.http")


def request_deadline_protocol(seconds: float, base: type | None = None) -> type:
    """uvicorn's (httptools) HTTP protocol with a deadline of ``seconds`` per request."""
    if base is None:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        base = HttpToolsProtocol

    class RequestDeadlineProtocol(base):  # type: ignore[misc, valid-type]
        _watchdog: asyncio.TimerHandle | None = None
        _began: float | None = None  # loop time the request now arriving began
        _idle_from: float | None = None  # loop time of the last cached answer, if idle since
        _due = 0.0  # when the watchdog fires next

        def _watch(self) -> None:
            loop = self.loop
            now = loop.time()
            self._watchdog = None
            transport: Any = getattr(self, "transport", None)
            if transport is None or transport.is_closing():
                return
            if self._began is not None:
                due = self._began + seconds
                if now >= due:
                    peer = transport.get_extra_info("peername")
                    extra = {"peer": str(peer), "after": seconds}
                    log.info("closing slow HTTP client", extra=extra)
                    shut(transport)
                    return
            elif self._idle_from is not None:
                due = self._idle_from + self.timeout_keep_alive
                if now >= due:
                    shut(transport)  # idle keep-alive connection, as uvicorn would
                    return
            else:
                due = now + seconds  # nothing arriving: look again later
            self._arm(due)

        def _arm(self, due: float) -> None:
            if self._watchdog is not None:
                self._watchdog.cancel()
            self._due = due
            self._watchdog = self.loop.call_at(due, self._watch)

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._began = self.loop.time()  # the first request is due within the deadline
            self._arm(self._began + seconds)

        def on_message_begin(self) -> None:
            self._began = self.loop.time()
            self._idle_from = None
            super().on_message_begin()

        def on_message_complete(self) -> None:
            self._began = None
            super().on_message_complete()

        def after_cached_answer(self) -> None:
            """Called by ``http_fast`` instead of uvicorn's per-response bookkeeping."""
            self.server_state.total_requests += 1
            self._idle_from = now = self.loop.time()
            idle_due = now + self.timeout_keep_alive
            if self._due > idle_due:  # at most once per keep-alive period under load
                self._arm(idle_due)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog = None
            super().connection_lost(exc)

    return RequestDeadlineProtocol
