"""Asking the servers of a site in turn: the next one when one does not answer.

HSJ's resolver tries the servers of a site (and then the next site) when one times out; a
client of a replicated site (docs/replication.md) does the same here: ``first_answer`` asks
each server in order and returns the first answer, an error code included (an answer is an
answer: only silence or a refused connection moves on).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from idnode.client.resolve import ClientTimeout

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
