"""The node's own site information (HS_SITE) and server key, from its configuration.

Rebuilt at every start from the configuration and the server key, so the site information
answered on the wire can never drift from what the node really serves.

The same site is also *stored*: ``idnode init`` writes it into each prefix handle
``0.NA/<prefix>``, which is where a client that resolves the prefix (HSJ, a parent node's
referral) learns how to reach us. Ports overridden at start (``IDNODE_SERVER_*``) would leave
that copy naming the old ones, so ``publish_site`` -- called once by ``idnode serve`` when its
listeners are bound -- rewrites every stored HS_SITE that names this server (by its public
key) to describe the listeners actually serving, through the write service as the operator,
and bumps the site serial when anything changed: a client that cached the old site sees the
new serial in every answer's header and fetches it again (RFC 3652 §2.2.2.4).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from idnode.auth.identity import Identity
from idnode.config import Config, ConfigError
from idnode.crypto.keys import decode_public_key, encode_public_key, load_private_key_pem
from idnode.errors import IdnodeError
from idnode.model import HS_SITE, NA_PREFIX, HandleValue
from idnode.service.node import ADMIN_INDEX
from idnode.wire.site import PRIMARY_SITE, ServerRecord, SiteInfo, decode_site, encode_site

log = logging.getLogger("idnode.site")


def load_private_key(config: Config):
    path = config.private_key_path
    if not path.exists():
        raise ConfigError(f"server key {path} is missing (run `idnode init`)")
    return load_private_key_pem(path.read_bytes())


@dataclass(frozen=True, slots=True)
class Listeners:
    """The ports a serving process actually listens on (``None``: no such listener)."""

    udp: int | None
    tcp: int
    http: int | None


def build_site(
    config: Config, public_key, listeners: Listeners | None = None, serial: int | None = None
) -> bytes:
    """Our HS_SITE: one primary server answering queries and admin over TCP and HTTP and
    queries over UDP (HSJ's layout: administration needs a connection); the ports are the
    configured ones unless ``listeners`` gives those really bound."""
    srv = config.server
    ports = listeners or Listeners(srv.udp_port, srv.tcp_port, srv.http_port)
    site = SiteInfo.for_single_server(
        host=config.published_address,
        udp_port=ports.udp,
        tcp_port=ports.tcp,
        http_port=ports.http,
        public_key=encode_public_key(public_key),
        serial=config.node.site_serial if serial is None else serial,
        protocol_version=(2, 11),
        attributes=(("desc", config.node.name),),
    )
    return encode_site(site)


def _names_us(server: ServerRecord, our_key: bytes) -> bool:
    """Whether a stored server record is this node: its key is ours (in any encoding)."""
    try:
        return encode_public_key(decode_public_key(server.public_key)) == our_key
    except IdnodeError:
        return False


def _current(site: SiteInfo, ours: ServerRecord, our_key: bytes) -> SiteInfo:
    """``site`` with every record of this server replaced by ``ours`` (its id kept)."""
    servers = tuple(
        replace(ours, server_id=s.server_id) if _names_us(s, our_key) else s for s in site.servers
    )
    return replace(site, servers=servers)


async def publish_site(node, listeners: Listeners) -> int:
    """Make every stored HS_SITE that names this server describe ``listeners``; set
    ``node.site`` (the get-siteinfo answer) to match. Returns the site serial now published.

    Only HS_SITE values of prefix handles this node homes, and in them only the server
    records carrying this node's key, are touched: another server of a multi-server site,
    a delegated child's site, an address the operator published are left as they are. The
    serial becomes one above every stored one when anything changed, else stays the
    highest stored. Written through the write service as the prefix's operator, so the
    change is audited and announced like any other write.
    """
    config = node.config
    our_key = encode_public_key(node.private_key.public_key())
    live = decode_site(build_site(config, node.private_key.public_key(), listeners))
    ours = live.servers[0]
    serial = config.node.site_serial
    stale: list[tuple[str, HandleValue, SiteInfo]] = []
    for prefix in await node.store.homed_prefixes():
        sites = []
        for value in await node.store.get_handle(NA_PREFIX + prefix) or []:
            if value.type != HS_SITE:
                continue
            try:
                sites.append((value, decode_site(value.data)))
            except IdnodeError:
                continue
        # a promoted mirror finds its site listed as a mirror site: it becomes the primary
        # site, and the old primary's a mirror site (RFC 3652 §3.3: writes go to the primary)
        promoted = node.admin.refusal is None and any(
            not stored.is_primary and any(_names_us(s, our_key) for s in stored.servers)
            for _, stored in sites
        )
        for value, stored in sites:
            us = any(_names_us(s, our_key) for s in stored.servers)
            if not us and not promoted:
                continue
            wanted = _current(stored, ours, our_key) if us else stored
            if promoted:
                mask = stored.primary_mask & ~PRIMARY_SITE
                wanted = replace(wanted, primary_mask=mask | (PRIMARY_SITE if us else 0))
            serial = max(serial, stored.serial)
            if wanted != stored:
                stale.append((prefix, value, wanted))
    if stale and node.admin.refusal is not None:
        # a mirror (or a fenced primary) writes nothing of its own: the primary's records
        # are the primary's to publish, and replication brings them here
        stale = []
    if stale:
        serial = serial % 0xFFFF + 1  # a 16-bit field: wrap past 65535 to 1, never 0
        operators = set(config.node.prefixes)
        for prefix, value, wanted in stale:
            owner = prefix if prefix in operators else next(iter(operators), prefix)
            who = Identity(NA_PREFIX + owner, ADMIN_INDEX)
            data = encode_site(replace(wanted, serial=serial))
            await node.admin.modify_values(who, NA_PREFIX + prefix, [replace(value, data=data)])
            log.info("published HS_SITE %s of 0.NA/%s, serial %s", value.index, prefix, serial)
    node.site = encode_site(replace(live, serial=serial))
    return serial
