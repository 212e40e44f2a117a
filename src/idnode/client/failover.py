"""Asking the servers of a site in turn: the next one when one does not answer.

HSJ's resolver tries the servers of a site (and then the next site) when one times out; a
client of a replicated site (docs/replication.md) does the same here: ``first_answer`` asks
each server in order and returns the first answer, an error code included (an answer is an
answer: only silence or a refused connection moves on). ``prefix_sites`` reads the sites a
prefix record lists, for reads (``idnode get --sites``) and writes (``client.admin.PrimaryWriter``)
alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from idnode.client.resolve import ClientTimeout, resolution_request
from idnode.client.sites import sites_of
from idnode.model import NA_PREFIX
from idnode.names import prefix_part
from idnode.wire.message import Message
from idnode.wire.site import SiteInfo

T = TypeVar("T")


async def first_answer(
    servers: Sequence[tuple[str, int]],
    ask: Callable[[str, int], Awaitable[T]],
    on_skip: Callable[[str, int, Exception], None] = lambda host, port, exc: None,
) -> T:
    """``ask(host, port)`` of the first server that answers; ``ClientTimeout`` naming every
    server when none does."""
    if not servers:
        raise ValueError("no server to ask")
    failures = []
    for host, port in servers:
        try:
            return await ask(host, port)
        except (ClientTimeout, OSError) as exc:
            failures.append(f"{host}:{port}: {exc}")
            on_skip(host, port, exc)
    raise ClientTimeout("no server answered: " + "; ".join(failures))


async def prefix_sites(
    handle: str,
    servers: Sequence[tuple[str, int]],
    send: Callable[..., Awaitable[Message]],
    *,
    timeout: float,
) -> list[SiteInfo]:
    """The sites ``0.NA/<prefix of handle>`` lists, primary first, read from the first of
    ``servers`` that answers (a mirror holds the same record as its primary). ``send`` is
    ``request_udp`` or ``request_tcp`` (or TCP inside TLS); an answer without the record
    lists no site."""
    record = NA_PREFIX + prefix_part(handle)

    async def ask(host: str, port: int) -> Message:
        return await send(host, port, resolution_request(record), timeout=timeout)

    reply = await first_answer(servers, ask)
    return sites_of(getattr(reply.body, "values", ()))
