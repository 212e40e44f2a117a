"""How many connections a serving process holds, and from whom.

Why this exists: every connection costs a file descriptor, and a process that runs out of
them fails ``accept`` on every listener at once (TCP, TLS, HTTP go silent together) and
cannot open a store connection or a log file either. Per-address caps alone do not prevent
it: 329 addresses under the 64-per-address cap hold 21,000 idle sockets. So one
``ConnectionBudget`` per process, shared by every stream listener (``serve.py`` builds it):

* per listener, at most ``per_ip`` connections from one address (exempt addresses apart);
* for the process, at most ``total`` connections on all listeners together. ``total`` stays
  below ``RLIMIT_NOFILE`` with headroom (``fd_budget``) for the store, the logs, worker pipes
  and the sockets being accepted;
* when the budget is full a newcomer is still let in: the connection idle the longest (no
  answer being computed for it; ordered by its last complete request, or its opening) is
  closed for it. A half-sent request is idle in this sense, so a client hoarding sockets with
  slow requests loses them first. A newcomer is refused only when every connection is busy.

The hot path costs one ``OrderedDict.move_to_end`` per completed request (``active``).
"""

from __future__ import annotations

import logging
import resource
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger("idnode.connections")

MIN_HEADROOM = 64  # descriptors kept for the store, logs, pipes and accepts in progress
HEADROOM_FRACTION = 0.1  # ... or this share of the limit, whichever is more
EVICTION_SCAN = 256  # connections looked at for an idle one before refusing a newcomer


class Held(Protocol):
    """What the budget needs of a connection (the TCP and HTTP protocols provide it)."""

    def busy(self) -> bool:
        """Whether an answer is being computed for it now (then it is not evicted)."""

    def evict(self) -> None:
        """Close it at once: the budget is full and a newcomer needs its descriptor."""


@dataclass(eq=False, slots=True)
class Ticket:
    """A connection's place in the budget; ``release`` it exactly once, when it closes."""

    conn: Held
    listener: str
    host: str | None  # None: not counted per address (an exempt address)
    released: bool = field(default=False)


def fd_budget(soft_limit: int | None = None) -> int:
    """Connections a process may hold: its descriptor limit minus the headroom."""
    if soft_limit is None:
        soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft_limit == resource.RLIM_INFINITY:
            soft_limit = 1 << 20
    headroom = max(MIN_HEADROOM, int(soft_limit * HEADROOM_FRACTION))
    return max(8, soft_limit - headroom)


def raise_fd_limit(wanted: int = 65536) -> int:
    """Raise the soft descriptor limit towards the hard one (as servers do at start);
    returns the soft limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


class ConnectionBudget:
    """Open stream connections of one process: per listener and address, and in total."""

    def __init__(self, total: int | None = None) -> None:
        auto = fd_budget()
        self.total = auto if not total or total <= 0 else min(total, auto)
        self._order: OrderedDict[Ticket, None] = OrderedDict()  # least recently active first
        self._per_host: dict[tuple[str, str], int] = {}
        self.evicted = 0  # idle connections closed for a newcomer
        self.refused = 0  # newcomers refused (over their address's cap, or all busy)

    def __len__(self) -> int:
        return len(self._order)

    def count(self, listener: str, host: str) -> int:
        return self._per_host.get((listener, host), 0)

    def admit(self, conn: Held, listener: str, host: str | None, per_ip: int) -> Ticket | None:
        """A ticket for a new connection, or None to refuse it (close it at once).

        ``host`` None skips the per-address cap (exempt addresses); ``per_ip`` <= 0 means no
        cap. A full budget evicts the longest-idle connection to make room.
        """
        if host is not None and per_ip > 0 and self.count(listener, host) >= per_ip:
            self.refused += 1
            return None
        if len(self._order) >= self.total and not self._evict_one():
            self.refused += 1
            return None
        ticket = Ticket(conn, listener, host)
        self._order[ticket] = None
        if host is not None:
            key = (listener, host)
            self._per_host[key] = self._per_host.get(key, 0) + 1
        return ticket

    def active(self, ticket: Ticket | None) -> None:
        """The connection completed a request: it is now the most recently active."""
        if ticket is not None and not ticket.released:
            self._order.move_to_end(ticket)

    def release(self, ticket: Ticket | None) -> None:
        """The connection closed (idempotent)."""
        if ticket is None or ticket.released:
            return
        ticket.released = True
        self._order.pop(ticket, None)
        if ticket.host is not None:
            key = (ticket.listener, ticket.host)
            left = self._per_host.get(key, 0) - 1
            if left > 0:
                self._per_host[key] = left
            else:
                self._per_host.pop(key, None)

    def _evict_one(self) -> bool:
        """Close the longest-idle connection; False when the first ``EVICTION_SCAN`` are busy."""
        for n, ticket in enumerate(self._order):
            if n >= EVICTION_SCAN:
                break
            if ticket.conn.busy():
                continue
            self.release(ticket)
            self.evicted += 1
            try:
                ticket.conn.evict()
            except Exception:  # noqa: BLE001 - a connection already gone frees its place anyway
                log.debug("evicting a connection failed", exc_info=True)
            return True
        return False


def shut(transport: object) -> None:
    """Close a stream transport; abort it when output is still queued.

    ``close`` waits for queued output to be sent, and a client that stopped reading never
    takes it: the socket (and its descriptor) would stay open for good. A transport already
    closing with output still queued is aborted too."""
    if transport is None:
        return
    try:
        pending = transport.get_write_buffer_size()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001
        pending = 0
    if pending:
        transport.abort()  # type: ignore[attr-defined]
    elif not transport.is_closing():  # type: ignore[attr-defined]
        transport.close()  # type: ignore[attr-defined]
