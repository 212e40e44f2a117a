"""The running node: its configuration, store, site information and services, in one place.

Transports receive a ``Node`` and call its services; they never reach for globals.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from idnode.config import Config
from idnode.service.names import PrefixSet
from idnode.service.resolve import Resolver
from idnode.store.base import Store


@dataclass
class Node:
    config: Config
    store: Store
    site: bytes  # our HS_SITE value data, answered to get-siteinfo
    private_key: PrivateKeyTypes | None
    homed: PrefixSet
    resolver: Resolver

    @property
    def site_serial(self) -> int:
        return self.config.node.site_serial


async def open_node(config: Config) -> Node:
    """Open the store and build the services of the node described by ``config``."""
    from idnode.bootstrap import build_site, load_private_key
    from idnode.store import open_store

    store = open_store(config.store_url)
    await store.open()
    homed = PrefixSet(await store.homed_prefixes())
    private_key = load_private_key(config)
    site = build_site(config, private_key.public_key())
    return Node(
        config=config,
        store=store,
        site=site,
        private_key=private_key,
        homed=homed,
        resolver=Resolver(store, homed),
    )
