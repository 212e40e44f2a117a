"""What ``app.open_node`` builds for replication from ``[replication]`` and the store."""

from __future__ import annotations

import os

from idnode.auth.identity import Identity
from idnode.config import Config, ConfigError
from idnode.crypto.keys import (
    PrivateKey,
    PublicKey,
    decode_public_key,
    encode_public_key,
    private_key_from_pem,
)
from idnode.errors import IdnodeError
from idnode.replication.fence import FenceWatch
from idnode.replication.mirror import Mirror
from idnode.replication.retention import LogPruner
from idnode.runtime import Runtime
from idnode.service.admin import AdminService
from idnode.service.node import Node
from idnode.service.replication import FENCE_KEY, ReplicationSource, read_meta, set_meta
from idnode.store.base import Store
from idnode.store.effects import Effects
from idnode.wire.site import decode_site

NODE_PREFIXES_KEY = "node.prefixes"  # meta: the primary's own prefixes, replicated to mirrors

ROLES = ("primary", "mirror")


def is_mirror(config: Config) -> bool:
    role = config.replication.role
    if role not in ROLES:
        raise ConfigError(f"[replication] role must be one of {', '.join(ROLES)}, not {role!r}")
    return role == "mirror"


def mirror_refusal(config: Config) -> str:
    sources = ", ".join(config.replication.sources) or "its primary"
    return f"this server is a mirror and takes no writes; send them to the primary ({sources})"


async def write_refusal(config: Config, store: Store) -> str | None:
    """Why the node takes no writes: a mirror, or a primary a promotion fenced; else None."""
    if is_mirror(config):
        return mirror_refusal(config)
    fenced = await read_meta(store, FENCE_KEY)
    return f"this primary is fenced: {fenced}" if fenced else None


async def record_node_prefixes(config: Config, store: Store) -> None:
    """Keep the primary's own prefixes (``[node] prefixes``, the first names its operator) in
    its store, so a mirror has them and runs the same registry once promoted."""
    if is_mirror(config) or not config.node.prefixes:
        return
    text = ",".join(config.node.prefixes)
    if await read_meta(store, NODE_PREFIXES_KEY) != text:
        await store.apply(Effects(statements=(set_meta(NODE_PREFIXES_KEY, text),)), logged=False)


async def replicated_node_prefixes(store: Store) -> list[str]:
    """The prefixes of the primary a mirror follows (empty before its first copy)."""
    text = await read_meta(store, NODE_PREFIXES_KEY) or ""
    return [p for p in text.split(",") if p]


def replication_source(
    config: Config,
    store: Store,
    private_key: PrivateKey | None,
    runtime: Runtime,
    admin: AdminService,
) -> ReplicationSource:
    admins = frozenset(Identity.parse(text) for text in config.replication.admins)
    mirror = is_mirror(config)
    return ReplicationSource(
        store,
        private_key,
        runtime.clock,
        admin.is_operator,
        admins,
        refusal=lambda: mirror_refusal(config) if mirror else admin.refusal,
    )


def pulling_process() -> bool:
    """One process of a node pulls (worker 0), as one ingests."""
    return os.environ.get("IDNODE_WORKER", "0") == "0"


def build_mirror(config: Config, node: Node, runtime: Runtime) -> Mirror | None:
    settings = config.replication
    if not is_mirror(config):
        return None
    if not settings.sources:
        raise ConfigError("[replication] role = mirror needs sources (HOST:PORT of the primary)")
    if not settings.identity or not settings.key:
        raise ConfigError("[replication] role = mirror needs identity and key to authenticate")
    key_path = config.path(settings.key)
    assert key_path is not None
    try:
        key = private_key_from_pem(key_path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"[replication] key: {exc}") from None
    clock = runtime.clock
    return Mirror(
        node.store,
        node.admin,
        list(settings.sources),
        settings.identity,
        key,
        interval=settings.interval_ms / 1000,
        now_ms=lambda: int(clock() * 1000),
        share=site_share(node.site, node.private_key.public_key()),
    )


def site_share(site_data: bytes, public_key: PublicKey) -> tuple[int, int, int]:
    """(hash option, server count, our server number) of our own site, as a mirror sends
    them with 1001/1002 so a source sends it only the handles it holds. The site is what
    ``service.site.build_site`` builds and ``idnode publish-mirror`` publishes: one server
    (multi-server sites are not configurable), so today (its hash option, 1, 0)."""
    site = decode_site(site_data)
    ours = encode_public_key(public_key)
    for number, server in enumerate(site.servers):
        try:
            if encode_public_key(decode_public_key(server.public_key)) == ours:
                return site.hash_option, len(site.servers), number
        except IdnodeError:
            continue
    return site.hash_option, 1, 0  # not in the site (no key): ask for everything


def keep_log_days(config: Config) -> int:
    days = config.replication.keep_log_days
    if days < 0:
        raise ConfigError(
            f"[replication] keep_log_days must be 0 (keep for ever) or more, not {days}"
        )
    return days


def build_pruner(config: Config, node: Node, runtime: Runtime) -> LogPruner | None:
    """The hourly prune of the logs (``replication.retention``), unless they are kept for ever."""
    days = keep_log_days(config)
    return LogPruner(node.store, days, runtime.clock) if days else None


def build_fence(config: Config, node: Node) -> FenceWatch | None:
    """A primary with peers watches them for a newer epoch (``replication.fence``)."""
    if is_mirror(config) or not config.replication.peers:
        return None
    return FenceWatch(node.store, node.admin, list(config.replication.peers))
