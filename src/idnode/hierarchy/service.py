"""What ``open_node`` attaches: the node's hierarchy role at run time.

* ``HierarchyRouting`` is the resolver's routing stage (``service.resolve.RoutingStage``),
  built before the resolver (``routing_stage``) and passed to it: a handle homed elsewhere
  goes to the recursive resolver (role ``recursive``, or a client asking for recursion where
  ``recursion = 1``); a handle under a prefix delegated to a child is referred to the child
  (a ``Referral`` with the child's HS_SITE), or refused while the child is suspended. Every
  transport (UDP, TCP, REST, the proxy) gets these answers, as it takes the same resolver.
* ``Hierarchy``: the children (``delegation.Delegations``) and their reports
  (``reporting.ReportBook``), both in the node's store. Routing reads an in-memory copy of
  the enrolled and suspended children, because it runs on every request: this process
  updates the copy after each change it makes, and reloads it when the store announces
  another process's write (``idnode child suspend`` from the CLI, a report or enrolment
  taken by another worker) that bumped the hierarchy's version (``delegation.VERSION_KEY``).
* background tasks: following the store, the reporter (to the parent) and the health
  monitor (of the children).
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
from idnode.crypto.keys import load_private_key_pem
from idnode.errors import IdnodeError, NotResponsible
from idnode.hierarchy.cache import TTLCache
from idnode.hierarchy.delegation import SUSPENDED, VERSION_KEY, Delegations, LiveChild
from idnode.hierarchy.recursive import RecursiveResolver
from idnode.hierarchy.reporting import ReportBook, Reporter, walk
from idnode.hierarchy.resolver import GlobalResolver, filter_values, load_root_info
from idnode.hierarchy.roles import RECURSIVE, ROOT, ROOT_PREFIX
from idnode.hierarchy.shared_cache import StoreAnswers
from idnode.hierarchy.supervision import audit_evidence, signed
from idnode.model import HS_SITE, NA_PREFIX, HandleValue, handle_key
from idnode.names import parent_prefix, prefix_part, suffix_part
from idnode.service.node import node_operators
from idnode.service.resolve import Answer, Referral, ResolutionQuery, Values
from idnode.store.governance import GET_META, day_of

if TYPE_CHECKING:
    from idnode.config import Config
    from idnode.names import PrefixSet
    from idnode.runtime import Clock, Runtime
    from idnode.service.node import Node
    from idnode.store.base import Store
    from idnode.wire.site import SiteInfo

log = logging.getLogger("idnode.hierarchy")
ADMIN_KEY_NAME = "admin_privkey.pem"  # bootstrap's: the key the parent got at enrolment
ENROLMENT_FILE = "hierarchy_enrolment.json"  # parent URL + report token, mode 0600
REFRESH_SECONDS = 1.0  # how often routing re-copies the homed prefixes
REFERRAL_TTL = 3600  # seconds a client may keep a referral to a child


class HierarchyRouting:
    """The hierarchy's routing stage: referrals to delegated children, and recursion.

    It holds what routing needs and nothing else: the role, the homed prefixes, the recursive
    resolver (None when recursion is off) and an in-memory copy of the enrolled and
    suspended children, which ``Hierarchy`` keeps up to date from the store
    (``set_children``). ``Hierarchy`` shares its ``recursive`` and ``errors`` for reports
    and metrics.
    """

    def __init__(
        self,
        *,
        role: str,
        homed: PrefixSet,
        clock: Clock,
        recursive: RecursiveResolver | None,
    ) -> None:
        self.role = role
        self.homed = homed
        self.clock = clock
        self.recursive = recursive
        self.errors: dict[str, int] = {}  # failed resolutions per prefix, for the reports
        self._children: dict[str, LiveChild] = {}
        self._homed: set[str] = set()
        self._refreshed = float("-inf")

    def answers_locally(self, handle: str) -> bool:
        """A handle this node is responsible for is answered here unless a child serves it."""
        return self.delegated(handle) is None

    async def route(self, query: ResolutionQuery, *, recursion: bool) -> Answer | None:
        """A ``Referral`` to the child serving ``query.handle``, ``Values`` from the recursive
        resolver, or None when this node answers from its own store (or refuses).

        The recursive role recurses for every handle it does not home, asked or not (its
        clients know no other node); another node with ``recursion = 1`` only when asked.
        """
        handle = query.handle
        if not self.homed.responsible_for(handle):
            if self.recursive is not None and (self.role == RECURSIVE or recursion):
                return await self._recurse(query)
            return None
        child = self.delegated(handle)
        if child is None:
            return None
        if child.state == SUSPENDED:
            raise NotResponsible(f"prefix {child.prefix} is suspended by its parent")
        if query.do_not_refer:
            raise NotResponsible(f"{handle} is served by the child node of {child.prefix}")
        if self.recursive is not None and recursion:
            return await self._recurse(query)
        site = HandleValue(1, HS_SITE, child.site)
        expiration = int(self.clock()) + REFERRAL_TTL
        return Referral(NA_PREFIX + child.prefix, (site,), expiration)

    async def _recurse(self, query: ResolutionQuery) -> Values:
        """The public values upstream holds, selected as this node would select its own.
        Failures are counted by the resolver (``Resolver.on_error`` is ``count_error``)."""
        assert self.recursive is not None
        found = await self.recursive.lookup(query.handle)
        values = filter_values(query.handle, found.values, query.indexes, query.types)
        # stale: an expiration already past tells the client not to cache this answer
        expiration = int(self.clock()) if found.stale else int(found.expires)
        return Values(tuple(values), expiration, stale=found.stale)

    def delegated(self, handle: str) -> LiveChild | None:
        """The child whose delegated prefix covers ``handle`` (deeper than what we home)."""
        self._refresh()
        if not self._children:
            return None
        key = handle_key(prefix_part(handle))
        strict = False
        if key == handle_key(ROOT_PREFIX):  # 0.NA/88.123.x: the child serving 88.123 has it
            key, strict = handle_key(suffix_part(handle)), True
        while key:
            if key in self._children and not strict:
                return self._children[key]
            if key in self._homed and not strict:
                return None
            strict = False
            key = parent_prefix(key)
        return None

    def _refresh(self) -> None:
        now = self.clock.monotonic()
        if now - self._refreshed < REFRESH_SECONDS:
            return
        self._refreshed = now
        self._homed = set(self.homed)

    def set_children(self, children: dict[str, LiveChild]) -> None:
        """Replace the copy of the enrolled and suspended children (by prefix key) that
        ``delegated`` reads; ``Hierarchy`` calls it with what the store holds."""
        self._children = children

    def count_error(self, handle: str) -> None:
        """``Resolver.on_error``: one more failed resolution under the handle's prefix."""
        prefix = handle_key(prefix_part(handle))
        self.errors[prefix] = self.errors.get(prefix, 0) + 1


def routing_stage(
    config: Config, *, homed: PrefixSet, runtime: Runtime, store: Store | None = None
) -> HierarchyRouting | None:
    """The routing stage of a node with a hierarchy role or recursion, else None.

    With ``store`` (``open_node`` passes the node's), the recursive cache is kept there, so
    every worker of the node gives the same answer (``shared_cache``).

    Built from the node's parts before the resolver (which takes it as a stage) and before
    the ``Node`` (which ``attach`` then completes into a ``Hierarchy`` sharing this stage,
    and filling its copy of the children from the store).
    """
    cfg = config.hierarchy
    if not cfg.role and not cfg.recursion:
        return None
    return HierarchyRouting(
        role=cfg.role,
        homed=homed,
        clock=runtime.clock,
        recursive=_recursive_resolver(config, runtime.clock, store),
    )


class RootInfoError(IdnodeError):
    """The root-info file recursion starts from is missing or unreadable."""


def load_configured_root_info(config: Config) -> list[SiteInfo] | None:
    """The root's sites from ``[hierarchy] root_info`` (a path relative to the node
    directory, or absolute as ``idnode init --root-info`` stores it); None when the node
    does not recurse or names no file. ``idnode serve`` calls it before starting workers."""
    cfg = config.hierarchy
    if not (cfg.recursion or cfg.role == RECURSIVE) or not cfg.root_info:
        return None
    path = Path(config.directory) / cfg.root_info
    try:
        return load_root_info(path)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RootInfoError(f"[hierarchy] root_info {path}: {reason}") from None


def _recursive_resolver(
    config: Config, clock: Clock, store: Store | None = None
) -> RecursiveResolver | None:
    cfg = config.hierarchy
    if not (cfg.recursion or cfg.role == RECURSIVE):
        return None
    sites = load_configured_root_info(config)
    if sites is None:
        log.warning("recursion is on but [hierarchy] root_info is not set: recursion off")
        return None
    sites_cache = TTLCache(max(cfg.cache_entries, 1), clock, stale_for=cfg.stale_seconds)
    resolver = GlobalResolver(
        sites,
        wall=clock,
        timeout=float(cfg.upstream_timeout),
        site_cache=sites_cache,
        max_ttl=float(cfg.max_ttl),
        negative_ttl=float(cfg.negative_ttl),
    )
    return RecursiveResolver(
        resolver,
        clock=clock,
        max_entries=max(cfg.cache_entries, 1),
        negative_ttl=float(cfg.negative_ttl),
        stale_for=float(cfg.stale_seconds),
        max_ttl=float(cfg.max_ttl),
        cache=None
        if store is None
        else StoreAnswers(
            store, clock, max_entries=max(cfg.cache_entries, 1), stale_for=cfg.stale_seconds
        ),
    )


class Hierarchy:
    """The node's place in the tree: delegations, reports, health, metrics. Its routing is
    ``routing`` (the resolver's stage), whose copy of the children this object keeps.

    ``delegations`` (None on a node that homes no prefix) is built by ``attach`` with the
    node's write service, its operator identity and its registry (for the review a prefix in
    the registry's space needs before it is delegated).
    """

    def __init__(
        self, node: Node, routing: HierarchyRouting, delegations: Delegations | None = None
    ) -> None:
        self.node = node
        self.store = node.store
        self.clock = clock = node.runtime.clock
        cfg = node.config.hierarchy
        self.role = cfg.role
        self.routing = routing
        self.delegations = delegations
        if delegations is not None:
            delegations.on_change = self.reload
        # no configured limit: each child is judged by the interval it reports at (never by
        # this node's own, which is 0 at the root)
        timeout = float(cfg.health_timeout) if cfg.health_timeout > 0 else None
        self.book = ReportBook(node.store, clock=clock, health_timeout=timeout)
        self.recursive = routing.recursive
        self.errors = routing.errors  # the same dict: counted by the resolver, reported here
        self._tasks: list[asyncio.Task] = []
        self.reporter: Reporter | None = None
        self.version: str | None = None  # the hierarchy version the copies were loaded at
        self._rows: list[dict[str, Any]] = []  # the children's status rows, for /metrics
        self._stale = False  # the store announced a write since the last refresh began
        self._following: asyncio.Task | None = None

    def count_error(self, handle: str) -> None:
        self.routing.count_error(handle)

    # -- what this process keeps in memory --------------------------------------------------
    async def refresh_metrics(self) -> None:
        """Re-read the status rows ``collect`` judges (reports and health checks of any
        process): ``/metrics`` calls it before rendering, as the collector cannot wait."""
        if self.delegations is not None:
            self._rows = await self.book.rows()

    async def reload(self) -> None:
        """Re-read the children routing refers to and the status rows ``/metrics`` judges.

        The version is read first: a change committed while we read is then either in what
        we read or makes the version differ at the next announcement."""
        version = await self.store.query_value(GET_META, VERSION_KEY)
        if self.delegations is not None:
            self.routing.set_children(await self.delegations.live())
            self._rows = await self.book.rows()
        self.version = version

    async def refresh(self) -> bool:
        """Reload if any process changed the children or their reports since the last load
        (one query when nothing did); whether it reloaded."""
        if await self.store.query_value(GET_META, VERSION_KEY) == self.version:
            return False
        await self.reload()
        return True

    def _announced(self, serial: int) -> None:
        """``store.subscribe``: some write committed. Refresh in a task (callbacks must be
        quick); announcements arriving meanwhile make that task look once more."""
        self._stale = True
        if self._following is None or self._following.done():
            self._following = asyncio.get_running_loop().create_task(self._catch_up())

    async def _catch_up(self) -> None:
        while self._stale:
            self._stale = False
            try:
                await self.refresh()
            except Exception:  # the next announcement retries
                log.exception("reloading the hierarchy's children failed")

    # -- reporting ----------------------------------------------------------------------
    async def build_report(self) -> dict[str, Any]:
        node = self.node
        per: dict[str, dict[str, int]] = {}
        for row in await node.store.query(  # the registry's counts, shared through the store
            "SELECT prefix, sum(registrations) AS registrations,"
            " sum(resolutions) AS resolutions FROM {s}.stats_daily GROUP BY prefix"
        ):
            per[row["prefix"]] = {
                "registrations": int(row["registrations"]),
                "resolutions": int(row["resolutions"]),
            }
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
            "report_interval": node.config.hierarchy.report_interval,  # parent's health limit
            "prefixes": [{"prefix": p, "errors": 0, **f} for p, f in sorted(per.items())],
            "subtree": await self.book.status(),
            **await self.supervision_data(),
        }

    async def supervision_data(self) -> dict[str, Any]:
        """The monthly report (a registry node) and the audit head with the links after the
        seq the parent holds (``supervision.py``); ``build_report`` signs the whole."""
        registry = getattr(self.node, "registry", None)
        out: dict[str, Any] = {}
        if registry is not None:
            out["monthly"] = await registry.stats.monthly_report(day_of(self.clock())[:7])
        held = None if self.reporter is None else self.reporter.held_seq
        out["audit"] = await audit_evidence(self.node.store, held)
        return out

    async def signed_report(self) -> dict[str, Any]:
        """``build_report`` signed with the admin key the parent knows from enrolment."""
        report = await self.build_report()
        path = self.node.config.directory / ADMIN_KEY_NAME
        try:
            key = load_private_key_pem(path.read_bytes())
        except (OSError, ValueError, TypeError, IdnodeError) as exc:  # e.g. a passphrase key
            log.warning("report sent unsigned: cannot load %s: %s", path, exc)
            return report
        return signed(report, key)

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
        """Follow the store (other processes' changes to the children), report to the
        parent, monitor the children: a serving process's work."""
        cfg = self.node.config.hierarchy
        loop = asyncio.get_running_loop()
        if self.delegations is not None:
            self._tasks.append(loop.create_task(self._follow()))
        if cfg.report_interval > 0 and self.role not in (RECURSIVE, ROOT):
            self._tasks.append(loop.create_task(self._report_loop(cfg.report_interval)))
        if self.delegations is not None:
            interval = max(1, cfg.report_interval or 60)
            self._tasks.append(loop.create_task(self._monitor(interval)))

    async def _follow(self) -> None:
        """Subscribe to the store's write announcements, then catch up with what changed
        before the subscription began."""
        await self.store.subscribe(self._announced)
        self._announced(0)

    async def _report_loop(self, interval: float) -> None:
        """Report every ``interval`` once enrolled (the enrolment may come after start-up)."""
        while True:
            enrolment = self.enrolment()
            if enrolment is not None:
                token = enrolment["report_token"]
                if self.reporter is None or self.reporter.token != token:
                    self.reporter = Reporter(
                        enrolment["parent"], token, self.signed_report, interval
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
        tasks = [*self._tasks, *([self._following] if self._following is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

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
        status = self.book.status_of(self._rows, self.clock())  # rows kept: no query here
        for parent, entry in walk(status, own):
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


async def attach(node: Node, routing: HierarchyRouting | None) -> Hierarchy | None:
    """The hierarchy of ``node`` around its resolver's routing stage (``routing_stage``);
    None for a standalone node (no role, no recursion). Its background work starts with
    ``Hierarchy.start`` (a serving process only)."""
    if routing is None:
        return None
    config = node.config
    if config.hierarchy.role == RECURSIVE:
        config.server.cache_entries = 0  # upstream answers must expire by their TTL
    delegations = None
    if config.node.prefixes:
        operator = NA_PREFIX + config.node.prefixes[0]
        delegations = Delegations(
            node.store,
            node.admin,  # the one write path: permissions, policies, history, audit
            operator=next(o for o in node_operators(config) if o.handle == operator),
            own_site=node.site,
            homed=node.homed,
            clock=node.runtime.clock,
            random=node.runtime.random,
            token_ttl=config.hierarchy.token_ttl,
            review=getattr(node, "registry", None),  # the registry reviews its own space
        )
    hierarchy = Hierarchy(node, routing, delegations)
    await hierarchy.reload()
    return hierarchy


def write_enrolment(directory: Path, parent: str, prefix: str, report_token: str) -> None:
    path = Path(directory) / ENROLMENT_FILE
    path.touch(mode=0o600, exist_ok=True)
    os.chmod(path, 0o600)
    body = {"parent": parent, "prefix": prefix, "report_token": report_token}
    path.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
