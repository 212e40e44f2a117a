"""What a node shows of its replication: its role, epoch and position and, for a mirror,
how far it is behind its source; for the console's operations page and ``/metrics``.

Read from the store, so every worker shows the same figures: a mirror's pull loop (worker 0)
keeps the source's next txn id in ``meta`` (``SOURCE_KEY``) whenever it changes, and the
position is written with every applied transaction.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from idnode.service.replication import (
    SOURCE_KEY,
    epoch_of,
    governance_position_of,
    position_of,
    read_meta,
)
from idnode.store.base import Store
from idnode.wire import replication as rw


@dataclass(frozen=True)
class ReplicationStatus:
    role: str  # primary | mirror
    epoch: int
    serial: int  # a primary's last serial; a mirror's position in its source's log
    fenced: str = ""
    source: str = ""  # a mirror's source at its last pull
    source_serial: int = 0  # the source's last serial then
    lag: int = 0  # transactions the mirror had not applied
    governance_position: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def read_status(store: Store, role: str, fenced: str | None = None) -> ReplicationStatus:
    epoch = await epoch_of(store)
    if role != "mirror":
        return ReplicationStatus(role, epoch, await store.serial(), fenced or "")
    position = await position_of(store)
    pos_epoch, pos_serial = rw.split_txn_id(position)
    source, source_serial, lag = "", 0, 0
    text = await read_meta(store, SOURCE_KEY)
    if text:
        next_id, _, source = text.partition(" ")
        src_epoch, source_serial = rw.split_txn_id(max(int(next_id) - 1, 0))
        lag = max(0, source_serial - pos_serial) if src_epoch == pos_epoch else source_serial
    gov = rw.split_txn_id(await governance_position_of(store))[1]
    return ReplicationStatus(
        role, max(epoch, pos_epoch), pos_serial, "", source, source_serial, lag, gov
    )


class ReplicationMetrics:
    """A Prometheus collector of the last status read (``refresh`` before collecting:
    the collector runs inside prometheus-client's synchronous code)."""

    def __init__(self, store: Store, role: str, fenced=lambda: None, replica=None) -> None:
        self.store, self.role, self.fenced = store, role, fenced
        self.replica = replica  # store.replica.ReadReplica: [store] read_url
        self.status: ReplicationStatus | None = None
        self.replica_lag: tuple[int, int] | None = None

    async def refresh(self) -> None:
        self.status = await read_status(self.store, self.role, self.fenced())
        if self.replica is not None:
            self.replica_lag = await self.replica.lag()

    def collect(self) -> Iterator[Metric]:
        s = self.status
        if s is None:
            return
        info = GaugeMetricFamily(
            "idnode_replication_role", "This node's replication role", labels=["role"]
        )
        info.add_metric([s.role], 1)
        yield info
        yield GaugeMetricFamily(
            "idnode_replication_epoch", "Replication epoch (raised by promotion)", value=s.epoch
        )
        yield GaugeMetricFamily(
            "idnode_replication_position",
            "Last serial of the log: a primary's own, a mirror's position in its source's",
            value=s.serial,
        )
        if s.role == "mirror":
            yield GaugeMetricFamily(
                "idnode_mirror_lag_transactions",
                "Transactions the source had at the mirror's last pull that it had not applied",
                value=s.lag,
            )
            yield GaugeMetricFamily(
                "idnode_mirror_source_position",
                "The source's last serial at the mirror's last pull",
                value=s.source_serial,
            )

        if self.replica_lag is not None:
            yield GaugeMetricFamily(
                "idnode_store_replica_lag_transactions",
                "Transactions the read replica ([store] read_url) has not replayed",
                value=self.replica_lag[0],
            )
            yield GaugeMetricFamily(
                "idnode_store_replica_lag_bytes",
                "WAL bytes the read replica received but has not replayed",
                value=self.replica_lag[1],
            )

    def describe(self) -> Iterator[Metric]:
        return iter(())


def metrics_route(collectors: list[Any], refreshers: list[Any], allow: list[str]) -> BaseRoute:
    """``/metrics`` of a node without a registry (a mirror): these collectors, for the
    addresses in ``[server] metrics_allow`` (a mirror has no accounts to hold tokens)."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    nets = []
    for text in allow:
        try:
            nets.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            continue

    async def metrics(request: Request) -> Response:
        host = (request.scope.get("client") or ("", 0))[0]
        try:
            allowed = any(ipaddress.ip_address(host) in net for net in nets)
        except ValueError:
            allowed = host in allow
        if not allowed:
            return JSONResponse(
                {"error": "forbidden", "message": "an address in [server] metrics_allow"},
                status_code=403,
            )
        for refresh in refreshers:
            await refresh()
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")

    return Route("/metrics", metrics)
