"""Publishing a mirror's site in the primary's prefix records (RFC 3652 §3.3: several HS_SITE
values, one marked primary).

``idnode publish-mirror DIR --server H:P`` asks the mirror for its site information
(GET_SITEINFO, as HSJ's admin tool does), marks it a mirror site (no primary bit) and adds it
to ``0.NA/<prefix>`` of every prefix the primary names as its own, through the write
service as the prefix's operator; a site already listed (a server with the same key) is
replaced, not added twice. The records replicate to the mirrors like any other, and clients
that read them (``idnode get --sites``, the hierarchy's resolver, recursive nodes) then
know where to go when the primary is silent, and where writes go.
"""

from __future__ import annotations

from dataclasses import replace

from idnode.auth.identity import Identity
from idnode.crypto.keys import decode_public_key, encode_public_key
from idnode.errors import IdnodeError, InvalidValue
from idnode.model import HS_SITE, NA_PREFIX, HandleValue
from idnode.service.node import ADMIN_INDEX
from idnode.wire.site import MULTI_PRIMARY, PRIMARY_SITE, SiteInfo, decode_site, encode_site

FIRST_SITE_INDEX = 1


def _keys(site: SiteInfo) -> set[bytes]:
    out = set()
    for server in site.servers:
        try:
            out.add(encode_public_key(decode_public_key(server.public_key)))
        except IdnodeError:
            continue
    return out


def as_mirror_site(site_data: bytes) -> SiteInfo:
    """The mirror's site as the primary publishes it: not primary, not multi-primary."""
    site = decode_site(site_data)
    if not site.servers:
        raise InvalidValue("the mirror's site information lists no server")
    return replace(site, primary_mask=site.primary_mask & ~(PRIMARY_SITE | MULTI_PRIMARY) & 0xFF)


def with_site(values: list[HandleValue], site: SiteInfo) -> tuple[HandleValue | None, int]:
    """(the stored HS_SITE value naming the same servers, or None; a free index)."""
    wanted = _keys(site)
    used = {v.index for v in values}
    for v in values:
        if v.type != HS_SITE:
            continue
        try:
            stored = decode_site(v.data)
        except IdnodeError:
            continue
        if wanted & _keys(stored):
            return v, v.index
    index = FIRST_SITE_INDEX
    while index in used:
        index += 1
    return None, index


async def publish_mirror_site(node, site_data: bytes) -> list[str]:
    """Add (or refresh) the mirror's site in every own prefix record; the records changed."""
    site = as_mirror_site(site_data)
    changed = []
    for prefix in node.config.node.prefixes:
        handle = NA_PREFIX + prefix
        values = await node.store.get_handle(handle)
        if values is None:
            raise InvalidValue(f"{handle} does not exist on this node")
        who = Identity(handle, ADMIN_INDEX)
        stored, index = with_site(values, site)
        if stored is None:
            value = HandleValue(index, HS_SITE, b"")
            site = replace(site, serial=max(site.serial, 1))
            await node.admin.add_values(who, handle, [replace(value, data=encode_site(site))])
        else:
            data = encode_site(replace(site, serial=decode_site(stored.data).serial % 0xFFFF + 1))
            await node.admin.modify_values(who, handle, [replace(stored, data=data)])
        changed.append(handle)
    return changed
