"""Commit serials from other processes, by LISTEN on one dedicated connection.

A pooled connection cannot LISTEN: the pool resets it (UNLISTEN *) on release. So the
listener owns a connection of its own, and a supervisor task re-opens it when it is lost.
Notifications sent while it was down are gone, so after every reconnect the callbacks get the
current serial: a cache keyed on the serial then invalidates instead of serving stale answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

SerialCallback = Callable[[int], None]
_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)


class SerialListener:
    """LISTENs on ``channel`` and calls every callback with each serial announced there."""

    def __init__(
        self,
        dsn: str,
        channel: str,
        serial_sql: str,
        connect_kwargs: dict[str, Any],
        *,
        retry_delay: float = 0.5,
        max_retry_delay: float = 10.0,
    ) -> None:
        self._dsn = dsn
        self._channel = channel
        self._serial_sql = serial_sql
        self._connect_kwargs = connect_kwargs
        self._retry = (retry_delay, max_retry_delay)
        self._callbacks: list[SerialCallback] = []
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None

    @property
    def backend_pid(self) -> int | None:
        """The server process of the listening connection (for tests and diagnostics)."""
        return None if self._conn is None else self._conn.get_server_pid()

    async def add(self, callback: SerialCallback) -> None:
        """Register ``callback``; on the first one, connect and return once LISTEN is active,
        so any write committed after this returns is announced."""
        self._callbacks.append(callback)
        if self._task is not None:
            return
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(ready), name=f"idnode-listen-{self._channel}")
        try:
            await ready
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._callbacks.clear()

    async def _run(self, ready: asyncio.Future[None]) -> None:
        delay = self._retry[0]
        reconnect = False
        while True:
            try:
                conn = await asyncpg.connect(self._dsn, **self._connect_kwargs)
            except _ERRORS as exc:
                if not ready.done():
                    ready.set_exception(exc)
                    return
                log.warning("serial listener: reconnect failed (%s); retry in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry[1])
                continue
            lost = asyncio.Event()
            try:
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(self._channel, self._on_notify)
                current = await conn.fetchval(self._serial_sql)
                self._conn = conn
                if not ready.done():
                    ready.set_result(None)
                if reconnect:  # what we missed while down: at least "something changed"
                    self._deliver(current)
                delay = self._retry[0]
                await lost.wait()
                log.warning("serial listener: connection lost; reconnecting")
            except _ERRORS as exc:
                if not ready.done():
                    ready.set_exception(exc)
                    return
                log.warning("serial listener: %s; reconnecting", exc)
            finally:
                self._conn = None
                if not conn.is_closed():
                    conn.terminate()
            reconnect = True
            await asyncio.sleep(delay)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            serial = int(payload)
        except ValueError:
            log.warning("serial listener: ignoring payload %r", payload[:40])
            return
        self._deliver(serial)

    def _deliver(self, serial: int) -> None:
        for callback in list(self._callbacks):
            try:
                callback(serial)
            except Exception:  # one broken subscriber must not silence the others
                log.exception("serial listener: callback failed")
