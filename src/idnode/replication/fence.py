"""The fence: a primary that finds a newer epoch at a peer stops taking writes.

After ``idnode promote`` a mirror serves txn ids of a higher epoch. A primary that comes back
(``kill -9``, a partition healed) asks the site's other servers (``[replication] peers``) for
their next txn id before it serves; any epoch above its own means it was replaced, so it
records why in its store (``replication.fenced``, kept across restarts) and refuses every
write with 301 until an operator re-attaches it as a mirror (``idnode attach``). It asks
again every few seconds while it serves (``FenceWatch``), for a partition that heals.
"""

from __future__ import annotations

import asyncio
import logging

from idnode.background import stop_task
from idnode.client.replication import parse_address
from idnode.client.resolve import request_tcp
from idnode.codes import OpCode
from idnode.errors import IdnodeError
from idnode.service.admin import AdminService
from idnode.service.replication import FENCE_KEY, epoch_of, set_meta
from idnode.store.base import Store
from idnode.store.effects import Effects
from idnode.wire import bodies
from idnode.wire import replication as rw

log = logging.getLogger(__name__)


async def peer_epoch(address: str, timeout: float = 1.0) -> int | None:
    """The epoch a peer is in, or None when it does not answer."""
    from idnode.client.admin import new_request

    host, port = parse_address(address)
    request = new_request(OpCode.GET_NEXT_TXN_ID, bodies.NextTxnIdRequest())
    try:
        reply = await request_tcp(host, port, request, timeout=timeout)
    except (IdnodeError, OSError):
        return None
    if not isinstance(reply.body, bodies.NextTxnIdResponse):
        return None
    return rw.split_txn_id(max(reply.body.next_txn_id - 1, 0))[0]


async def check_fence(store: Store, admin: AdminService, peers: list[str]) -> str | None:
    """Fence this primary if a peer is in a newer epoch; the reason, or None."""
    ours = await epoch_of(store)
    for address in peers:
        theirs = await peer_epoch(address)
        if theirs is not None and theirs > ours:
            reason = f"{address} was promoted (epoch {theirs}, ours {ours})"
            effects = Effects(statements=(set_meta(FENCE_KEY, reason),))
            await store.apply(effects, logged=False)
            admin.refusal = f"this primary is fenced: {reason}"
            log.warning("replication: %s", admin.refusal)
            return reason
    return None


class FenceWatch:
    """``check_fence`` every ``interval`` seconds while a primary serves: a partition that
    heals after a promotion fences the old primary without a restart. Every worker runs one
    (each holds its own write service)."""

    def __init__(
        self, store: Store, admin: AdminService, peers: list[str], interval: float = 5.0
    ) -> None:
        self.store, self.admin, self.peers, self.interval = store, admin, peers, interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="idnode-fence")

    async def _run(self) -> None:
        while self.admin.refusal is None:
            await asyncio.sleep(self.interval)
            try:
                await check_fence(self.store, self.admin, self.peers)
            except IdnodeError as exc:  # the store busy: try again next time
                log.warning("replication: fence check failed: %s", exc)

    async def close(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)
