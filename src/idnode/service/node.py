"""The running node: its configuration, store, site information and services, in one place.

Transports receive a ``Node`` and call its services; they never reach for globals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from idnode.auth.acl import AccessControl
from idnode.auth.identity import Identity
from idnode.config import Config
from idnode.model import NA_PREFIX
from idnode.runtime import Runtime
from idnode.service.admin import AdminService
from idnode.service.names import PrefixSet
from idnode.service.resolve import Resolver
from idnode.store.base import Store


@dataclass
class Node:
    config: Config
    store: Store
    site: bytes  # our HS_SITE value data, answered to get-siteinfo
    private_key: PrivateKeyTypes | None
    runtime: Runtime  # the clock and random source every part of the node shares
    homed: PrefixSet
    resolver: Resolver
    admin: AdminService
    registry: Any = None  # idnode.registry.service.Registry: governance (issue 6)
    hierarchy: Any = None  # idnode.hierarchy.service.Hierarchy: role in the tree (issue 8)

    @property
    def site_serial(self) -> int:
        return self.config.node.site_serial


async def open_node(config: Config, *, runtime: Runtime) -> Node:
    """Open the store and build the services of the node described by ``config``.

    ``runtime`` is the one clock and random source of every part of the node: the store's
    transaction log, the registry, the hierarchy, sessions and challenges all read it."""
    from idnode.bootstrap import build_site, load_private_key
    from idnode.store.encrypted import configured_store

    store = configured_store(config, runtime)  # SM4-GCM at rest when a storage key is configured
    await store.open()
    homed = PrefixSet(await store.homed_prefixes())
    private_key = load_private_key(config)
    site = build_site(config, private_key.public_key())
    acl = AccessControl(store, operators=node_operators(config), prefix_admins_inherit=False)
    admin = AdminService(store, homed, acl, runtime.clock, runtime.random)
    node = Node(
        config=config,
        store=store,
        site=site,
        private_key=private_key,
        runtime=runtime,
        homed=homed,
        resolver=Resolver(store, homed, read_check=admin.may_read_restricted),
        admin=admin,
    )
    from idnode.registry.service import attach

    node.registry = await attach(node)
    from idnode.hierarchy.service import attach as attach_hierarchy

    node.hierarchy = await attach_hierarchy(node)
    return node


async def close_node(node: Node) -> None:
    """Close what ``open_node`` opened, in reverse: the hierarchy's tasks, the registry (its
    statistics flushed), then the store."""
    try:
        if node.hierarchy is not None:
            await node.hierarchy.close()
        if node.registry is not None:
            await node.registry.close()
    finally:
        await node.store.close()


def node_operators(config: Config) -> frozenset[Identity]:
    """The identities allowed everything: the admin key ``idnode init`` made for each prefix."""
    from idnode.bootstrap import ADMIN_INDEX

    return frozenset(Identity(NA_PREFIX + p, ADMIN_INDEX) for p in config.node.prefixes)
