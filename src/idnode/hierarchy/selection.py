"""Which server of a site answers a handle: kept in ``idnode.client.sites`` (every client
chooses the same way); re-exported here for the hierarchy's resolver and reporting."""

from idnode.client.sites import (
    handle_hash,
    hash_part,
    query_servers,
    server_number,
    servers_for,
)

__all__ = ["handle_hash", "hash_part", "query_servers", "server_number", "servers_for"]
