"""Handle clients: resolution over UDP, TCP and HTTP (``resolve``) and administration with
challenge-response and sessions (``admin``). They speak through the same sans-I/O codec as the
server (``idnode.wire``), so what they send is exactly what the server parses; the node's
features (hierarchy reports, recursion), ``idnode get``/``idnode admin`` and the verification
kit use them, and none of them imports the server."""

from idnode.client.resolve import (
    ClientTimeout,
    request_tcp,
    request_udp,
    resolution_request,
    resolve_http,
    siteinfo_request,
)

__all__ = [
    "ClientTimeout",
    "request_tcp",
    "request_udp",
    "resolution_request",
    "resolve_http",
    "siteinfo_request",
]
