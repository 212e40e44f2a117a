"""The node's own site information (HS_SITE) and server key, from its configuration.

Rebuilt at every start from the configuration and the server key, so the site information
answered on the wire can never drift from what the node really serves.
"""

from __future__ import annotations

from idnode.config import Config, ConfigError
from idnode.crypto.keys import encode_public_key, load_private_key_pem
from idnode.wire.site import SiteInfo, encode_site


def load_private_key(config: Config):
    path = config.private_key_path
    if not path.exists():
        raise ConfigError(f"server key {path} is missing (run `idnode init`)")
    return load_private_key_pem(path.read_bytes())


def build_site(config: Config, public_key) -> bytes:
    """Our HS_SITE: one primary server answering queries and admin over UDP, TCP and HTTP."""
    srv = config.server
    site = SiteInfo.for_single_server(
        host=config.published_address,
        udp_port=srv.udp_port,
        tcp_port=srv.tcp_port,
        http_port=srv.http_port,
        public_key=encode_public_key(public_key),
        serial=config.node.site_serial,
        protocol_version=(2, 11),
        attributes=(("desc", config.node.name),),
    )
    return encode_site(site)
