"""What ``open_node`` attaches: the node's hierarchy role at run time.

* ``route`` is called by the wire handler before a resolution is answered locally: a handle
  homed elsewhere goes to the recursive resolver (role ``recursive``, or a REC request where
  ``recursion = 1``); a handle under a prefix delegated to a child is referred to the child
  (RC 302 with the child's HS_SITE), or refused while the child is suspended.
* background tasks: the reporter (to the parent) and the health monitor (of the children).
* ``collect`` feeds ``/metrics`` (subtree health, recursive cache figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from idnode import __version__
from idnode.codes import OpFlag, ResponseCode
from idnode.errors import IdnodeError, NotResponsible
from idnode.hierarchy.cache import TTLCache
from idnode.hierarchy.db import DB_NAME, HierarchyDB
from idnode.hierarchy.delegation import SUSPENDED, Delegations, LiveChild
from idnode.hierarchy.recursive import RecursiveResolver
from idnode.hierarchy.reporting import ReportBook, Reporter, walk
from idnode.hierarchy.resolver import GlobalResolver, filter_values, load_root_info
from idnode.hierarchy.roles import RECURSIVE, ROOT, ROOT_PREFIX
from idnode.model import HS_SITE, NA_PREFIX, HandleValue, handle_key
from idnode.wire import bodies
from idnode.wire.message import Message, make_response

if TYPE_CHECKING:
    from idnode.service.node import Node

log = logging.getLogger("idnode.hierarchy")
ENROLMENT_FILE = "hierarchy_enrolment.json"  # parent URL + report token, mode 0600
REFRESH_SECONDS = 1.0  # how soon the wire path sees `idnode child suspend` from the CLI
_REC, _DNRF = OpFlag.REC, OpFlag.DNRF


class Hierarchy:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.clock = clock = node.runtime.clock
        cfg = node.config.hierarchy
        self.role = cfg.role
        directory = node.config.directory
        self.db = HierarchyDB(Path(directory) / DB_NAME)
        prefixes = node.config.node.prefixes
        self.delegations: Delegations | None = None
        if prefixes:
            self.delegations = Delegations(
                self.db,
                node.store,
                own_site=node.site,
                homed=node.homed,
                operator_prefix=prefixes[0],
                clock=clock,
                random=node.runtime.random,
                token_ttl=cfg.token_ttl,
            )
        timeout = cfg.health_timeout or 3 * max(cfg.report_interval, 1)
        self.book = ReportBook(self.db, clock=clock, health_timeout=timeout)
        self.recursive = self._recursive()
        self.errors: dict[str, int] = {}
        self._children: dict[str, LiveChild] = {}
        self._homed: set[str] = set()
        self._version = -1
        self._refreshed = float("-inf")
        self._tasks: list[asyncio.Task] = []
        self.reporter: Reporter | None = None

    def _recursive(self) -> RecursiveResolver | None:
        cfg = self.node.config.hierarchy
        if not (cfg.recursion or self.role == RECURSIVE):
            return None
        if not cfg.root_info:
            log.warning("recursion is on but [hierarchy] root_info is not set: recursion off")
            return None
        path = Path(self.node.config.directory) / cfg.root_info
        sites_cache = TTLCache(max(cfg.cache_entries, 1), self.clock, stale_for=cfg.stale_seconds)
        resolver = GlobalResolver(
            load_root_info(path),
            wall=self.clock,
            timeout=float(cfg.upstream_timeout),
            site_cache=sites_cache,
            max_ttl=float(cfg.max_ttl),
            negative_ttl=float(cfg.negative_ttl),
        )
        return RecursiveResolver(
            resolver,
            clock=self.clock,
            max_entries=max(cfg.cache_entries, 1),
            negative_ttl=float(cfg.negative_ttl),
            stale_for=float(cfg.stale_seconds),
            max_ttl=float(cfg.max_ttl),
        )

    # -- the wire path ------------------------------------------------------------------
    async def route(self, request: Message, body: bodies.ResolutionRequest) -> Message | None:
        """An answer to a resolution this node does not answer from its own store, or None."""
        handle, flags = body.handle, request.header.flags
        if not self.node.homed.responsible_for(handle):
            if self.recursive is not None and (self.role == RECURSIVE or flags & _REC):
                return await self._recurse(request, body)
            return None
        child = self.delegated(handle)
        if child is None:
            return None
        if child.state == SUSPENDED:
            raise NotResponsible(f"prefix {child.prefix} is suspended by its parent")
        if flags & _DNRF:
            raise NotResponsible(f"{handle} is served by the child node of {child.prefix}")
        if self.recursive is not None and flags & _REC:
            return await self._recurse(request, body)
        site = HandleValue(1, HS_SITE, child.site)
        referral = bodies.ServiceReferralResponse(NA_PREFIX + child.prefix, (site,))
        return make_response(
            request,
            referral,
            code=ResponseCode.SERVICE_REFERRAL,
            site_serial=self.node.site_serial,
            expiration=int(self.clock()) + 3600,
        )

    async def _recurse(self, request: Message, body: bodies.ResolutionRequest) -> Message:
        assert self.recursive is not None
        try:
            found = await self.recursive.lookup(body.handle)
        except IdnodeError:
            self.count_error(body.handle)
            raise
        values = filter_values(body.handle, found.values, body.indexes, body.types)
        # stale: an expiration already past tells the client not to cache this answer
        expiration = int(self.clock()) if found.stale else int(found.expires)
        answer = bodies.ResolutionResponse(body.handle, tuple(values))
        return make_response(
            request, answer, site_serial=self.node.site_serial, expiration=expiration
        )

    def delegated(self, handle: str) -> LiveChild | None:
        """The child whose delegated prefix covers ``handle`` (deeper than what we home)."""
        self._refresh()
        if not self._children:
            return None
        prefix, _, suffix = handle.partition("/")
        key = handle_key(prefix)
        strict = False
        if key == handle_key(ROOT_PREFIX):  # 0.NA/88.123.x: the child serving 88.123 has it
            key, strict = handle_key(suffix), True
        while key:
            if key in self._children and not strict:
                return self._children[key]
            if key in self._homed and not strict:
                return None
            strict = False
            key = key.rpartition(".")[0]
        return None

    def _refresh(self) -> None:
        now = self.clock.monotonic()
        if now - self._refreshed < REFRESH_SECONDS:
            return
        self._refreshed = now
        self._homed = set(self.node.homed)
        version = self.db.data_version()
        if version != self._version and self.delegations is not None:
            self._version = version
            self._children = self.delegations.live()

    def count_error(self, handle: str) -> None:
        prefix = handle_key(handle.partition("/")[0])
        self.errors[prefix] = self.errors.get(prefix, 0) + 1

    # -- reporting ----------------------------------------------------------------------
    async def build_report(self) -> dict[str, Any]:
        node = self.node
        per: dict[str, dict[str, int]] = {}
        reg = node.registry
        if reg is not None:
            for row in reg.stats.daily():
                acc = per.setdefault(row["prefix"], {"registrations": 0, "resolutions": 0})
                acc["registrations"] += row["registrations"]
                acc["resolutions"] += row["resolutions"]
        for prefix in node.homed:
            per.setdefault(prefix, {"registrations": 0, "resolutions": 0})
        for prefix, n in self.errors.items():
            per.setdefault(prefix, {"registrations": 0, "resolutions": 0})["errors"] = n
        prefixes = node.config.node.prefixes
        return {
            "prefix": prefixes[0] if prefixes else "",
            "node": node.config.node.name,
            "role": self.role,
            "version": __version__,
            "time": int(self.clock()),
            "health": {"status": "ok", "store_serial": await node.store.serial()},
            "prefixes": [{"prefix": p, "errors": 0, **f} for p, f in sorted(per.items())],
            "subtree": self.book.status(),
        }

    def enrolment(self) -> dict[str, str] | None:
        """What ``idnode enrol`` kept: the parent's URL, our prefix and the report token."""
        path = Path(self.node.config.directory) / ENROLMENT_FILE
        try:
            data = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        if not isinstance(data, dict) or not data.get("parent") or not data.get("report_token"):
            return None
        return data

    # -- background work ------------------------------------------------------------------
    def start(self) -> None:
        cfg = self.node.config.hierarchy
        loop = asyncio.get_running_loop()
        if cfg.report_interval > 0 and self.role not in (RECURSIVE, ROOT):
            self._tasks.append(loop.create_task(self._report_loop(cfg.report_interval)))
        if self.delegations is not None:
            interval = max(1, cfg.report_interval or 60)
            self._tasks.append(loop.create_task(self._monitor(interval)))

    async def _report_loop(self, interval: float) -> None:
        """Report every ``interval`` once enrolled (the enrolment may come after start-up)."""
        while True:
            enrolment = self.enrolment()
            if enrolment is not None:
                token = enrolment["report_token"]
                if self.reporter is None or self.reporter.token != token:
                    self.reporter = Reporter(
                        enrolment["parent"], token, self.build_report, interval
                    )
                try:
                    await self.reporter.report_once()
                except (httpx.HTTPError, IdnodeError, OSError) as exc:
                    self.reporter.failures += 1
                    log.warning("report to parent %s failed: %s", enrolment["parent"], exc)
            await asyncio.sleep(interval)

    async def _monitor(self, interval: float) -> None:
        while True:
            try:
                await self.book.check_all()
            except Exception:  # keep monitoring; the next round retries
                log.exception("health check round failed")
            await asyncio.sleep(interval)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.db.close()

    # -- metrics ------------------------------------------------------------------------
    def collect(self) -> Iterator[Any]:
        healthy = GaugeMetricFamily(
            "idnode_hierarchy_child_healthy",
            "1 if a node of this node's subtree is healthy",
            labels=["prefix", "parent"],
        )
        age = GaugeMetricFamily(
            "idnode_hierarchy_child_report_age_seconds",
            "Seconds since a child's last report",
            labels=["prefix", "parent"],
        )
        own = ",".join(self.node.config.node.prefixes)
        for parent, entry in walk(self.book.status(), own):
            labels = [str(entry.get("prefix", "")), parent]
            healthy.add_metric(labels, 1.0 if entry.get("healthy") else 0.0)
            if entry.get("report_age") is not None:
                age.add_metric(labels, float(entry["report_age"]))
        yield healthy
        yield age
        if self.recursive is not None:
            s = self.recursive.stats
            for name, value, text in (
                ("hits", s.hits, "Answers served fresh from the cache"),
                ("negative_hits", s.negative_hits, "Not-found answers served from the cache"),
                ("misses", s.misses, "Lookups that went upstream"),
                ("coalesced", s.coalesced, "Lookups that joined an identical one in flight"),
                ("stale_served", s.stale_served, "Expired answers served, upstream down"),
                ("upstream_failures", s.upstream_failures, "Upstream resolutions that failed"),
                ("evictions", self.recursive.cache.evictions, "Entries evicted by size"),
            ):
                c = CounterMetricFamily(f"idnode_recursive_{name}", text)
                c.add_metric([], float(value))
                yield c
            ratio = GaugeMetricFamily("idnode_recursive_hit_ratio", "Cache hits / lookups")
            ratio.add_metric([], s.hit_ratio)
            yield ratio
            size = GaugeMetricFamily("idnode_recursive_cache_entries", "Answers cached")
            size.add_metric([], float(len(self.recursive.cache)))
            yield size


async def attach(node: Node, *, background: bool | None = None) -> Hierarchy | None:
    """The hierarchy of ``node``; None for a standalone node (no role, no recursion)."""
    cfg = node.config.hierarchy
    if not cfg.role and not cfg.recursion:
        return None
    if cfg.role == RECURSIVE:
        node.config.server.cache_entries = 0  # upstream answers must expire by their TTL
    hierarchy = Hierarchy(node)
    node.resolver.on_error = hierarchy.count_error
    if node.registry is not None:  # the subtree and cache figures join the node's /metrics
        node.registry.stats.metrics.register(hierarchy)
    from idnode.registry import service as registry_service

    if registry_service.BACKGROUND if background is None else background:
        hierarchy.start()
    return hierarchy


def write_enrolment(directory: Path, parent: str, prefix: str, report_token: str) -> None:
    path = Path(directory) / ENROLMENT_FILE
    path.touch(mode=0o600, exist_ok=True)
    os.chmod(path, 0o600)
    body = {"parent": parent, "prefix": prefix, "report_token": report_token}
    path.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
