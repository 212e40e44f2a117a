"""The composition root: the one module that builds a node from its parts and its features.

``open_node(config, runtime=...)`` opens the store and wires, in this order, what every
request path shares: the features' states and write policies, the one write service (with
those policies), the one resolver (with the features' gate and stages), then the features
themselves. Nothing below this module imports a feature or assigns a hook afterwards; the
transports receive the core ``Node`` and the routes the features contribute.

No background work starts here: ``NodeApp.start`` is for a serving process (statistics
flushing, following other processes' state changes, reports to a parent), so a command
such as ``idnode import`` opens the same node without running server work.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from idnode.auth.acl import AccessControl
from idnode.config import Config
from idnode.names import PrefixSet
from idnode.replication.setup import (
    build_fence,
    build_mirror,
    build_pruner,
    pulling_process,
    record_node_prefixes,
    replication_source,
    write_refusal,
)
from idnode.runtime import Runtime
from idnode.schemes.registry import SchemeRegistry
from idnode.service.admin import AdminService
from idnode.service.homing import HomedFollower
from idnode.service.node import Node, node_operators
from idnode.service.policies import WritePolicy
from idnode.service.quotas import QuotaPolicy, Quotas
from idnode.service.resolve import Resolver
from idnode.service.site import build_site, load_private_key
from idnode.store.base import Store

if TYPE_CHECKING:
    from idnode.hierarchy.service import Hierarchy
    from idnode.registry.service import Registry
    from idnode.replication.fence import FenceWatch
    from idnode.replication.mirror import Mirror
    from idnode.replication.retention import LogPruner
    from idnode.replication.status import ReplicationMetrics
    from idnode.store.replica import ReadReplica


@dataclass(frozen=True)
class Features:
    """Which features a node runs (tests and tools may leave some out)."""

    registry: bool = True
    hierarchy: bool = True
    console: bool = True  # the web console at /console (needs the registry)


ALL = Features()


@dataclass
class NodeApp(Node):
    """A node with its features: what ``idnode serve`` and the commands run."""

    registry: Registry | None = None
    hierarchy: Hierarchy | None = None
    mirror: Mirror | None = None  # a mirror's pull loop ([replication] role = "mirror")
    fence: FenceWatch | None = None  # a primary with peers: fenced when one is promoted
    pruner: LogPruner | None = None  # deletes log entries older than keep_log_days
    homing: HomedFollower | None = None  # the homed prefixes other processes change
    replication_metrics: ReplicationMetrics | None = None  # role, epoch, position, lag
    read_replica: ReadReplica | None = None  # resolution from a streaming replica
    routes: list[BaseRoute] = field(default_factory=list)  # mounted by the HTTP transport
    # POST paths whose bodies the features stream to disk, with their own byte bounds
    streamed_uploads: dict[str, int] = field(default_factory=dict)

    async def start(self) -> None:
        """Background work of a serving process."""
        self.homing = HomedFollower(self.store, self.homed)
        await self.homing.start()
        if self.registry is not None:
            await self.registry.start()
        if self.hierarchy is not None:
            self.hierarchy.start()
        if self.mirror is not None and pulling_process():
            self.mirror.start()
        if self.fence is not None:
            self.fence.start()
        if self.pruner is not None and pulling_process():
            self.pruner.start()

    async def close(self) -> None:
        """Close what ``open_node`` opened, in reverse: the hierarchy's tasks, the registry
        (its statistics flushed), then the store."""
        try:
            if self.read_replica is not None:
                await self.read_replica.close()
            if self.homing is not None:
                await self.homing.close()
            if self.mirror is not None:
                await self.mirror.close()
            if self.fence is not None:
                await self.fence.close()
            if self.pruner is not None:
                await self.pruner.close()
            if self.hierarchy is not None:
                await self.hierarchy.close()
            if self.registry is not None:
                await self.registry.close()
        finally:
            await self.store.close()


async def open_node(config: Config, *, runtime: Runtime, features: Features = ALL) -> NodeApp:
    """Open the store and build the node described by ``config`` on ``runtime`` (the one clock
    and random source of every part: the store's log, the registry, the hierarchy, sessions,
    challenges)."""
    from idnode.store.encrypted import configured_store
    from idnode.wire.public_answer import ENCODER

    # SM4-GCM at rest when a storage key is set; each record's public answer kept encoded
    store = configured_store(config, runtime, answers=ENCODER)
    await store.open()
    try:
        return await _build(config, runtime, features, store)
    except BaseException:
        with contextlib.suppress(Exception):
            await store.close()
        raise


async def _build(config: Config, runtime: Runtime, features: Features, store: Store) -> NodeApp:
    await record_node_prefixes(config, store)  # what a promoted mirror's registry needs
    homed = PrefixSet(await store.homed_prefixes())
    private_key = load_private_key(config)
    site = build_site(config, private_key.public_key())
    acl = AccessControl(store, operators=node_operators(config), prefix_admins_inherit=False)
    policies: list[WritePolicy] = []
    gate = states = None
    if features.registry and config.node.prefixes:
        from idnode.registry.policy import RegistryPolicy
        from idnode.registry.states import GovernanceStates, ResolutionGate
        from idnode.registry.templates import TemplateCatalog

        states = GovernanceStates(TemplateCatalog.shipped())
        await states.load(store)
        gate = ResolutionGate(states, runtime.clock.monotonic)
        policies.append(RegistryPolicy(states))
    # per-identity quotas ([quotas]): guarded counters in each write's transaction, and a
    # count of each authenticated resolution
    quotas = Quotas.from_config(config.quotas, runtime.clock, acl.is_operator)
    if quotas.enabled:
        policies.append(QuotaPolicy(quotas))
    admin = AdminService(store, homed, acl, runtime.clock, runtime.random, policies=policies)
    admin.refusal = await write_refusal(config, store)  # a mirror, or a fenced primary
    routing = None  # the hierarchy's routing stage: referrals to children, recursion
    if features.hierarchy:
        from idnode.hierarchy.service import routing_stage

        routing = routing_stage(config, homed=homed, runtime=runtime, store=store)
    replica = await open_read_replica(config, runtime, store)  # [store] read_url
    resolver = Resolver(
        store if replica is None else replica.replica,  # writes and their checks: primary
        homed,
        read_check=admin.may_read_restricted,
        gate=gate,
        stages=() if routing is None else (routing,),
        on_error=None if routing is None else routing.count_error,
        reader_quota=partial(quotas.count_read, store) if quotas.enabled else None,
        # urn:oid:, ecode:, gs1: names map onto Handle names before resolution (docs/schemes.md)
        names=SchemeRegistry.from_settings(config.schemes, config.node.prefixes).to_handle,
    )
    node = NodeApp(
        config=config,
        store=store,
        site=site,
        private_key=private_key,
        runtime=runtime,
        homed=homed,
        resolver=resolver,
        admin=admin,
        replication=replication_source(config, store, private_key, runtime, admin),
    )
    node.read_replica = replica
    node.mirror = build_mirror(config, node, runtime)
    node.fence = build_fence(config, node)
    node.pruner = build_pruner(config, node, runtime)
    from idnode.transport.api_docs import OpenApiPart, docs_routes
    from idnode.transport.assets import asset_routes

    openapi_parts: list[OpenApiPart] = []
    if states is not None and gate is not None:
        from idnode.registry.api import MOUNT, UPLOADS, build_api
        from idnode.registry.api import routes as registry_routes
        from idnode.registry.service import Registry

        node.registry = Registry(
            directory=config.directory,
            node_name=config.node.name,
            node_prefixes=list(config.node.prefixes),
            store=store,
            admin=admin,
            homed=homed,
            states=states,
            gate=gate,
            clock=runtime.clock,
            random=runtime.random,
        )
        mgmt = build_api(node.registry)
        openapi_parts.append((MOUNT, mgmt.openapi))
        node.routes += registry_routes(
            node.registry, api=mgmt, metrics_allow=config.server.metrics_allow
        )
        node.streamed_uploads.update(UPLOADS)
        if features.console:
            from idnode.console.app import console_routes

            node.routes += console_routes(node, node.registry)
    # one OpenAPI document (the Handle REST API and the features' parts), Swagger UI and the
    # vendored browser assets, all served by the node itself
    node.routes += docs_routes(openapi_parts) + asset_routes()
    if features.hierarchy:
        from idnode.hierarchy.api import routes as hierarchy_routes
        from idnode.hierarchy.service import attach as attach_hierarchy

        node.hierarchy = await attach_hierarchy(node, routing)
        if node.hierarchy is not None and node.registry is not None:
            node.registry.stats.metrics.register(node.hierarchy)  # one /metrics
            node.registry.stats.refreshers.append(node.hierarchy.refresh_metrics)
        node.routes += hierarchy_routes(node)
    _replication_metrics(node)
    return node


def _replication_metrics(node: NodeApp) -> None:
    """Role, epoch, position and a mirror's lag in ``/metrics`` (the registry's, or a route
    of its own on a node without one: a mirror) and on the console's operations page."""
    from idnode.replication.setup import is_mirror
    from idnode.replication.status import ReplicationMetrics, metrics_route

    role = "mirror" if is_mirror(node.config) else "primary"
    node.replication_metrics = ReplicationMetrics(
        node.store, role, lambda: node.admin.refusal, replica=node.read_replica
    )
    if node.registry is not None:
        node.registry.stats.metrics.register(node.replication_metrics)
        node.registry.stats.refreshers.append(node.replication_metrics.refresh)
        return
    collectors: list[object] = [node.replication_metrics]
    refreshers = [node.replication_metrics.refresh]
    if node.hierarchy is not None:  # its own /metrics would come later and go unused
        collectors.append(node.hierarchy)
        refreshers.append(node.hierarchy.reload)
    route = metrics_route(collectors, refreshers, node.config.server.metrics_allow)
    node.routes.insert(0, route)


async def open_read_replica(config: Config, runtime: Runtime, primary: Store):
    """The streaming replica of ``[store] read_url``, opened; None when unset. At a first
    start the replica may not have replayed the schema the primary just created: wait."""
    if not config.store.read_url:
        return None
    from idnode.config import ConfigError
    from idnode.errors import IdnodeError
    from idnode.store.encrypted import configured_store
    from idnode.store.replica import ReadReplica

    if not config.store_url.startswith(("postgresql://", "postgres://")):
        raise ConfigError("[store] read_url needs a PostgreSQL store (url = postgresql://...)")
    for attempt in range(100):
        replica = configured_store(config, runtime, url=config.store.read_url)
        try:
            await replica.open()
            break
        except IdnodeError:
            if attempt == 99:
                raise
            await asyncio.sleep(0.1)
    return ReadReplica(primary, replica)


async def close_node(node: NodeApp) -> None:
    await node.close()
