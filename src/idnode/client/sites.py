"""Which site and which of its servers answers a handle (RFC 3652 sections 3.3-3.4; HSJ
``SiteInfo.getHandleHash`` / ``determineServerNum``).

A prefix's ``0.NA`` record may list several HS_SITE values: a primary site and mirror sites
(one per city, say). A client reads them, asks one site and, when it is silent, the next;
writes go to a primary site only (mirrors refuse them).

A site spreads handles over its servers by the MD5 of the upper-cased prefix, suffix or
whole handle (the site's hash option). A resolver must pick the same server the site's
operators loaded the handle on, or it gets "not found" from a healthy site -- so this is
bit-for-bit HSJ: the last 4 digest bytes as a signed big-endian int, Java ``Math.abs``,
then Java ``%`` (which keeps the sign of a negative dividend). The hash itself lives with the
site format (``wire.site.server_number``), so a replication source shares a receiving
site's handles out by the very same rule; it is re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable

from idnode.errors import IdnodeError
from idnode.model import HandleValue
from idnode.wire.site import (
    SP_HDL_TCP,
    SP_HDL_UDP,
    ServerRecord,
    SiteInfo,
    decode_site,
    handle_hash,
    hash_part,
    server_number,
)
from idnode.wire.types import carries_site


def query_servers(site: SiteInfo) -> list[ServerRecord]:
    """Servers with a query interface over UDP or TCP, in site order."""
    return [
        s
        for s in site.servers
        if s.interface(SP_HDL_UDP) is not None or s.interface(SP_HDL_TCP) is not None
    ]


def servers_for(site: SiteInfo, handle: str) -> list[ServerRecord]:
    """The server the handle hashes to first, then the site's other servers as fallbacks.

    The hash is taken over *all* servers, as HSJ does, so a site's numbering holds even if
    one server offers no query interface (that one is then skipped, not renumbered).
    """
    if not site.servers:
        return []
    first = site.servers[server_number(handle, site.hash_option, len(site.servers))]
    usable = query_servers(site)
    ordered = [first] if first in usable else []
    ordered += [s for s in usable if s is not first]
    return ordered


def sites_of(values: Iterable[HandleValue]) -> list[SiteInfo]:
    """The HS_SITE (and HS_SITE.PREFIX) values of a prefix record, primary sites first, in
    record order otherwise; values that do not decode are skipped."""
    sites = []
    for v in values:
        if carries_site(v.type):
            try:
                sites.append(decode_site(v.data))
            except IdnodeError:
                continue
    sites.sort(key=lambda s: not s.is_primary)
    return sites


def site_plan(
    sites: Iterable[SiteInfo], handle: str, protocol: int, *, write: bool = False
) -> list[tuple[str, int]]:
    """``(host, port)`` to ask in turn for ``handle`` over ``protocol`` (``SP_HDL_UDP`` or
    ``SP_HDL_TCP``): per site the server the handle hashes to (then the site's others), the
    sites in order; with ``write`` only primary sites' servers with an admin interface."""
    out: list[tuple[str, int]] = []
    for site in sites:
        if write and not site.is_primary:
            continue
        for server in servers_for(site, handle):
            interface = server.interface(protocol, admin=write)
            if interface is None:
                continue
            address = (str(server.connect_address), interface.port)
            if address not in out:
                out.append(address)
    return out


__all__ = [
    "handle_hash",
    "hash_part",
    "query_servers",
    "server_number",
    "servers_for",
    "site_plan",
    "sites_of",
]
