"""Where to send load, and the loopback-only rule.

A load generator pointed at someone else's server by mistake is a denial of service, so
targets must resolve to loopback addresses unless ``--allow-remote`` says otherwise.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class TargetError(ValueError):
    """A target that cannot be parsed, resolved, or is remote without permission."""


def parse_target(text: str, protocol: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or (HTTP) ``http://host:port[/...]`` -> (host, port)."""
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme != "http":
            raise TargetError(f"{text}: only plain http:// URLs are supported")
        if not parts.hostname:
            raise TargetError(f"{text}: no host in the URL")
        return parts.hostname, parts.port or 80
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise TargetError(f"{protocol} target {text!r}: use host:port")
    host = host.strip("[]")
    if not host:
        raise TargetError(f"{protocol} target {text!r}: no host")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """True when every address ``host`` resolves to is a loopback address."""
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        raise TargetError(f"cannot resolve {host}: {exc}") from None
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(
        ipaddress.ip_address(a.split("%", 1)[0]).is_loopback for a in addresses
    )


def check_allowed(host: str, allow_remote: bool) -> None:
    if not allow_remote and not is_loopback(host):
        raise TargetError(
            f"{host} is not a loopback address: refusing to send load to it "
            "(pass --allow-remote if that node is yours to load)"
        )
