"""Global resolution from the root (``idnode get --from-root``, and the recursive node).

Like Handle.Net's global resolution, but walked down an identifier tree instead of asking one
global service for every prefix: start at the root's site (a ``root_info`` file), ask it for
``0.NA/88``, ask the site found there for ``0.NA/88.123``, and so on; where a prefix handle is
not found, the site reached so far serves the rest. Then ask that site for the handle,
following service and prefix referrals (codes 302/303: site values -- HS_SITE, HS_SITE.PREFIX,
HS_NA_DELEGATE -- or HS_SERV naming a service handle; ``idnode.wire.types`` classifies) and
HS_ALIAS values.

Every way this could run forever is bounded and named in the error: referrals and service
look-ups share a budget of ``MAX_RECURSION_COUNT`` hops, aliases stop at ``MAX_ALIAS_CHAIN``,
a site seen twice while answering one question is a loop, each upstream query has a timeout
and the whole resolution a deadline. The transport is injected, so tests need no sockets.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from idnode.client.resolve import request_tcp, request_udp, resolution_request
from idnode.codes import ResponseCode, TTLType
from idnode.errors import HandleNotFound, IdnodeError, InvalidValue, ValueNotFound
from idnode.hierarchy.cache import TTLCache
from idnode.hierarchy.selection import servers_for
from idnode.model import HS_ALIAS, NA_PREFIX, HandleValue, handle_key
from idnode.names import HandleName, check_handle, parent_prefix
from idnode.service.resolve import ResolutionQuery, select_values
from idnode.wire import bodies
from idnode.wire.header import MAX_RECURSION_COUNT
from idnode.wire.message import Message
from idnode.wire.site import (
    SP_HDL_TCP,
    SP_HDL_UDP,
    ServerRecord,
    SiteInfo,
    decode_site,
    site_from_json,
)
from idnode.wire.types import carries_site, names_service_handle

MAX_ALIAS_CHAIN = 8  # HS_ALIAS indirections a resolver follows before giving up

log = logging.getLogger("idnode.hierarchy.resolver")

MAX_PREFIX_DEPTH = 32  # dotted segments walked for one prefix

Transport = Callable[[ServerRecord, Message, float], Awaitable[Message]]


class ResolutionFailed(IdnodeError):
    """Global resolution could not finish."""


class ReferralLoop(ResolutionFailed):
    """Referrals or aliases came back to where they started."""


class RecursionBound(ResolutionFailed):
    """Too many referrals, service look-ups or aliases for one resolution."""

    code = ResponseCode.RECURSION_COUNT_TOO_HIGH


class UpstreamFailed(ResolutionFailed):
    """No server of the responsible site answered usefully (down, too slow, or garbage)."""


@dataclass(frozen=True, slots=True)
class Answer:
    handle: str
    values: tuple[HandleValue, ...]
    ttl: float  # seconds the answer may be cached
    via: str = ""  # the server that answered last


@dataclass
class ResolverStats:
    upstream_queries: int = 0
    upstream_errors: int = 0


@dataclass
class _Budget:
    """Hops left for one resolution (referrals and service look-ups)."""

    left: int
    trail: list[str] = field(default_factory=list)
    services: set[str] = field(default_factory=set)  # service handles being resolved

    def spend(self, what: str) -> None:
        self.trail.append(what)
        self.left -= 1
        if self.left < 0:
            raise RecursionBound(
                f"more than {MAX_RECURSION_COUNT} referrals: " + " -> ".join(self.trail[-4:])
            )


def describe(server: ServerRecord) -> str:
    ports = sorted({i.port for i in server.interfaces if i.query})
    return f"{server.connect_address}:{','.join(map(str, ports)) or '?'}"


async def network_transport(server: ServerRecord, message: Message, timeout: float) -> Message:
    """One query over UDP (TCP when the answer is truncated or the site offers no UDP)."""
    host = str(server.connect_address)
    udp = server.interface(SP_HDL_UDP)
    if udp is not None:
        return await request_udp(host, udp.port, message, timeout=timeout, attempts=1)
    tcp = server.interface(SP_HDL_TCP)
    if tcp is None:
        raise UpstreamFailed(f"server {describe(server)} has no UDP or TCP query interface")
    return await request_tcp(host, tcp.port, message, timeout=timeout)


def _site_key(sites: Iterable[SiteInfo]) -> frozenset[tuple[str, int]]:
    return frozenset(
        (str(s.connect_address), i.port)
        for site in sites
        for s in site.servers
        for i in s.interfaces
    )


def _segments(prefix: str) -> list[str]:
    parts = prefix.split(".")
    if len(parts) > MAX_PREFIX_DEPTH:
        raise InvalidValue(f"prefix {prefix!r} is deeper than {MAX_PREFIX_DEPTH} segments")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


class GlobalResolver:
    """Resolves any handle starting from the root's site(s).

    ``site_cache`` (optional) keeps the site found for each prefix for its HS_SITE TTL, and a
    "not delegated further" for ``negative_ttl``; the recursive node shares one across queries.
    """

    def __init__(
        self,
        root_sites: Iterable[SiteInfo],
        *,
        transport: Transport = network_transport,
        wall: Callable[[], float],
        timeout: float = 2.0,
        total_timeout: float | None = None,
        max_referrals: int = MAX_RECURSION_COUNT,
        max_aliases: int = MAX_ALIAS_CHAIN,
        site_cache: TTLCache | None = None,
        max_ttl: float = 86400.0,
        negative_ttl: float = 60.0,
    ) -> None:
        self.root_sites = tuple(root_sites)
        if not self.root_sites:
            raise InvalidValue("root info holds no site")
        self.transport = transport
        self.wall = wall
        self.timeout = timeout
        self.total_timeout = total_timeout if total_timeout is not None else 4 * timeout
        self.max_referrals = max_referrals
        self.max_aliases = max_aliases
        self.site_cache = site_cache
        self.max_ttl = max_ttl
        self.negative_ttl = negative_ttl
        self.stats = ResolverStats()

    async def resolve(self, handle: str) -> Answer:
        """Every public value of ``handle`` (aliases followed), or an IdnodeError."""
        check_handle(handle)
        try:
            async with asyncio.timeout(self.total_timeout):
                return await self._follow_aliases(handle)
        except TimeoutError:
            raise UpstreamFailed(
                f"resolving {handle} took longer than {self.total_timeout:g}s"
            ) from None

    async def _follow_aliases(self, handle: str) -> Answer:
        budget = _Budget(self.max_referrals)
        chain = [handle]
        ttl = self.max_ttl
        current = handle
        while True:
            answer = await self._resolve_one(current, budget)
            ttl = min(ttl, answer.ttl)
            alias = next((v for v in answer.values if v.type == HS_ALIAS), None)
            if alias is None:
                return Answer(handle, answer.values, ttl, answer.via)
            target = alias.data.decode("utf-8", "replace").strip()
            check_handle(target)
            if handle_key(target) in {handle_key(h) for h in chain}:
                raise ReferralLoop("alias loop: " + " -> ".join([*chain, target]))
            chain.append(target)
            if len(chain) - 1 > self.max_aliases:
                raise RecursionBound(
                    f"alias chain longer than {self.max_aliases}: "
                    + " -> ".join(chain[:4])
                    + " ..."
                )
            current = target

    async def _resolve_one(self, handle: str, budget: _Budget) -> Answer:
        name = HandleName(handle)
        named = name.named_prefix
        if named is not None:  # 0.NA/88.123 is kept by the site serving 88
            walk = parent_prefix(named.text)
        else:
            walk = name.prefix.text
        sites = await self.sites_for(walk, budget)
        values, ttl, via = await self._query(sites, handle, budget)
        return Answer(handle, values, ttl, via)

    async def sites_for(self, prefix: str, budget: _Budget | None = None) -> tuple[SiteInfo, ...]:
        """The sites serving ``prefix``: walk ``0.NA/<a>``, ``0.NA/<a.b>``, ... from the root."""
        budget = budget or _Budget(self.max_referrals)
        sites = self.root_sites
        if not prefix:
            return sites
        for segment in _segments(prefix):
            key = handle_key(segment)
            cached = self.site_cache.get(key) if self.site_cache is not None else None
            if cached is not None and cached.fresh(self.site_cache.clock()):  # type: ignore[union-attr]
                if cached.negative:
                    break
                sites = cached.value
                continue
            try:
                values, ttl, _ = await self._query(sites, NA_PREFIX + segment, budget)
            except (HandleNotFound, ValueNotFound):
                self._remember(key, None, self.negative_ttl)
                break
            except UpstreamFailed:
                if cached is None:  # a stale site beats no site while its parent is down
                    raise
                log.warning("using stale site information for %s: parent unreachable", segment)
                if cached.negative:
                    break
                sites = cached.value
                continue
            found = await self._sites_from_values(values, budget)
            if not found:  # a prefix handle without service information: served where it is
                self._remember(key, None, self.negative_ttl)
                break
            self._remember(key, found, ttl)
            sites = found
        return sites

    def _remember(self, key: str, sites: tuple[SiteInfo, ...] | None, ttl: float) -> None:
        if self.site_cache is not None:
            self.site_cache.put(key, sites, ttl, negative=sites is None)

    async def _sites_from_values(
        self, values: Iterable[HandleValue], budget: _Budget
    ) -> tuple[SiteInfo, ...]:
        """HS_SITE values (primary sites first), else the sites of an HS_SERV service handle."""
        values = list(values)
        sites: list[SiteInfo] = []
        for v in values:
            if carries_site(v.type):
                try:
                    sites.append(decode_site(v.data))
                except IdnodeError as exc:
                    log.warning("ignoring an undecodable %s value: %s", v.type, exc)
        if not sites:
            for v in values:
                if names_service_handle(v.type):
                    service = check_handle(v.data.decode("utf-8", "replace").strip())
                    if handle_key(service) in budget.services:
                        raise ReferralLoop(f"service loop: {service} needs itself to resolve")
                    budget.spend(f"{v.type} {service}")
                    budget.services.add(handle_key(service))
                    try:
                        answer = await self._resolve_one(service, budget)
                    finally:
                        budget.services.discard(handle_key(service))
                    sites.extend(await self._sites_from_values(
                        [x for x in answer.values if carries_site(x.type)], budget
                    ))  # fmt: skip
        sites.sort(key=lambda s: not s.is_primary)
        return tuple(sites)

    async def _query(
        self, sites: tuple[SiteInfo, ...], handle: str, budget: _Budget
    ) -> tuple[tuple[HandleValue, ...], float, str]:
        """Ask ``sites`` for ``handle``, following referrals; (values, ttl, server)."""
        visited: list[frozenset] = []
        while True:
            key = _site_key(sites)
            if key in visited:
                raise ReferralLoop(
                    f"referral loop resolving {handle}: referred back to a site already asked "
                    f"({', '.join(sorted(f'{h}:{p}' for h, p in key)[:3])})"
                )
            visited.append(key)
            msg, via = await self._ask(sites, handle)
            code, body = msg.response_code, msg.body
            if code == ResponseCode.SUCCESS:
                if not isinstance(body, bodies.ResolutionResponse):
                    raise UpstreamFailed(f"{via} answered garbage: no resolution body")
                if handle_key(body.handle) != handle_key(handle):
                    raise UpstreamFailed(f"{via} answered for {body.handle!r}, not {handle!r}")
                return body.values, self.ttl_of(body.values), via
            if code in (ResponseCode.SERVICE_REFERRAL, ResponseCode.PREFIX_REFERRAL):
                if not isinstance(body, bodies.ServiceReferralResponse):
                    raise UpstreamFailed(f"{via} answered garbage: a referral without a body")
                budget.spend(f"{via} refers {handle} to {body.handle}")
                sites = await self._sites_from_values(body.values or (), budget)
                if not sites:
                    service = await self._resolve_one(check_handle(body.handle), budget)
                    sites = await self._sites_from_values(service.values, budget)
                if not sites:
                    raise UpstreamFailed(f"{via} referred {handle} to {body.handle}, a dead end")
                continue
            text = getattr(body, "message", "") or ""
            if code == ResponseCode.HANDLE_NOT_FOUND:
                raise HandleNotFound(f"handle {handle} not found (answered by {via})")
            try:
                rc = ResponseCode(code)
            except ValueError:
                raise UpstreamFailed(f"{via} answered unknown code {code} for {handle}") from None
            raise IdnodeError(
                f"{via} answered {rc.name} for {handle}: {text}".rstrip(": "), code=rc
            )

    async def _ask(self, sites: tuple[SiteInfo, ...], handle: str) -> tuple[Message, str]:
        """The first answer from the sites' servers, hashed server first; errors collected."""
        errors: list[str] = []
        for site in sites:
            for server in servers_for(site, handle):
                via = describe(server)
                self.stats.upstream_queries += 1
                request = resolution_request(handle, public_only=True)
                try:
                    msg = await self.transport(server, request, self.timeout)
                except (IdnodeError, OSError, TimeoutError) as exc:
                    self.stats.upstream_errors += 1
                    errors.append(f"{via}: {exc or type(exc).__name__}")
                    continue
                if not msg.is_response or msg.request_id != request.request_id:
                    self.stats.upstream_errors += 1
                    errors.append(f"{via}: answered garbage (not an answer to our request)")
                    continue
                return msg, via
        if not errors:
            raise UpstreamFailed(f"no server with a query interface serves {handle}")
        raise UpstreamFailed(f"no server answered for {handle}: " + "; ".join(errors[:4]))

    def ttl_of(self, values: Iterable[HandleValue]) -> float:
        """The shortest TTL of the values (absolute TTLs counted from now), capped."""
        ttl = self.max_ttl
        for v in values:
            if v.ttl_type == TTLType.ABSOLUTE:
                ttl = min(ttl, v.ttl - self.wall())
            else:
                ttl = min(ttl, v.ttl)
        return max(0.0, float(ttl))


def load_root_info(path: str | Path) -> list[SiteInfo]:
    """Sites from a root-info file: binary HS_SITE data (what ``idnode root-info`` writes),
    or HSJ-style site JSON (one object or a list)."""
    data = Path(path).read_bytes()
    if data.lstrip()[:1] in (b"{", b"["):
        try:
            obj = json.loads(data)
        except ValueError as exc:
            raise InvalidValue(f"{path}: not JSON: {exc}") from None
        return [site_from_json(o, str(path)) for o in (obj if isinstance(obj, list) else [obj])]
    try:
        return [decode_site(data)]
    except IdnodeError as exc:
        raise InvalidValue(f"{path}: not HS_SITE data: {exc}") from None


def filter_values(
    handle: str, values: Iterable[HandleValue], indexes: tuple[int, ...], types: tuple[str, ...]
) -> list[HandleValue]:
    """The values a query asked for, as a server would select them."""
    values = list(values)
    query = ResolutionQuery(handle, indexes, types, public_only=True)
    selected = select_values(values, query, may_read_restricted=False)
    if not selected and values:
        raise ValueNotFound(f"no values of {handle} match the request")
    return selected


async def resolve_from_root(
    root_info: str | Path,
    handle: str,
    *,
    indexes: tuple[int, ...] = (),
    types: tuple[str, ...] = (),
    timeout: float = 2.0,
    wall: Callable[[], float],
) -> list[HandleValue]:
    """What ``idnode get --from-root`` prints; ``wall`` bounds the TTLs it trusts."""
    resolver = GlobalResolver(load_root_info(root_info), wall=wall, timeout=timeout)
    answer = await resolver.resolve(handle)
    return filter_values(handle, answer.values, indexes, types)
