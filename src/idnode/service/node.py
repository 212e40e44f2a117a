"""The running node's core: its configuration, store, site information and services.

Transports receive a ``Node`` and call its services; they never reach for globals. The
composition root (``idnode.app``) builds it, with the features' policies and stages already
inside the write service and the resolver; features themselves hang off ``app.NodeApp``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from idnode.auth.identity import Identity
from idnode.config import Config
from idnode.model import NA_PREFIX
from idnode.names import PrefixSet
from idnode.runtime import Runtime
from idnode.service.admin import AdminService
from idnode.service.replication import ReplicationSource
from idnode.service.resolve import Resolver
from idnode.store.base import Store

ADMIN_INDEX = 300  # the index of the operator's key in each homed prefix handle


@dataclass
class Node:
    config: Config
    store: Store
    site: bytes  # our HS_SITE value data, answered to get-siteinfo
    private_key: PrivateKeyTypes | None
    runtime: Runtime  # the clock and random source every part of the node shares
    homed: PrefixSet
    resolver: Resolver
    admin: AdminService  # the one write path
    replication: ReplicationSource | None = None  # serves 1000-1002 (service/replication.py)

    @property
    def site_serial(self) -> int:
        """The serial of the site we answer (HS_SITE bytes 4-5): what every answer's header
        carries, bumped by ``service.site.publish_site`` when the listeners changed."""
        if len(self.site) >= 6:
            return int.from_bytes(self.site[4:6], "big")
        return self.config.node.site_serial


def node_operators(config: Config) -> frozenset[Identity]:
    """The identities allowed everything: the admin key ``idnode init`` made for each prefix."""
    return frozenset(Identity(NA_PREFIX + p, ADMIN_INDEX) for p in config.node.prefixes)
