"""The store side of ``idnode promote``, ``attach`` and ``restore --primary``.

Promotion raises the node's epoch above every epoch it has seen (its own and its source's,
from its position), in one logged transaction: from then on its txn ids outrank the old
primary's, which is how mirrors choose it and how the old primary learns it was replaced
(``replication.fence``).
"""

from __future__ import annotations

from idnode.config import Config
from idnode.runtime import Runtime
from idnode.service.replication import (
    EPOCH_KEY,
    FENCE_KEY,
    GOVERNANCE_KEY,
    POSITION_KEY,
    epoch_of,
    position_of,
    set_meta,
)
from idnode.store.effects import Effects, Statement
from idnode.wire import replication as rw

_DELETE_META = "DELETE FROM {s}.meta WHERE key = ?"


async def _open(config: Config, runtime: Runtime):
    from idnode.store.encrypted import configured_store

    store = configured_store(config, runtime)
    await store.open()
    return store


async def promote_store(config: Config, runtime: Runtime) -> tuple[int, int]:
    """(new epoch, serial of the promotion's log row). ``config.node.prefixes`` becomes the
    old primary's (replicated with its governance), so the registry comes up as it was."""
    from idnode.replication.setup import replicated_node_prefixes

    store = await _open(config, runtime)
    try:
        config.node.prefixes = await replicated_node_prefixes(store) or config.node.prefixes
        seen = max(await epoch_of(store), rw.split_txn_id(await position_of(store))[0])
        epoch = seen + 1
        effects = Effects(
            statements=(
                set_meta(EPOCH_KEY, str(epoch)),
                Statement(_DELETE_META, (FENCE_KEY,)),
                Statement(_DELETE_META, (POSITION_KEY,)),
                Statement(_DELETE_META, (GOVERNANCE_KEY,)),
            ),
            action="promote",
            target=f"epoch {epoch}",
        )
        serial = await store.apply(effects)
        await store.reseed_ids()  # rows copied from the old primary came with their ids
        return epoch, serial
    finally:
        await store.close()


async def clear_for_mirror(config: Config, runtime: Runtime) -> None:
    """An old primary becoming a mirror: no fence, no position (it dumps first)."""
    store = await _open(config, runtime)
    try:
        keys = (FENCE_KEY, POSITION_KEY, GOVERNANCE_KEY)
        statements = tuple(Statement(_DELETE_META, (k,)) for k in keys)
        await store.apply(Effects(statements=statements), logged=False)
    finally:
        await store.close()


async def resume_at(config: Config, runtime: Runtime, txn_id: int) -> None:
    """A restored node resumes its source's log after ``txn_id`` (the backup's)."""
    store = await _open(config, runtime)
    try:
        effects = Effects(
            statements=(set_meta(POSITION_KEY, str(txn_id)), Statement(_DELETE_META, (FENCE_KEY,)))
        )
        await store.apply(effects, logged=False)
    finally:
        await store.close()
