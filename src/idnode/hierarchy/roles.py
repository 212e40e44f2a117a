"""Roles of a node in the identifier tree and what each one defaults to.

Why a table and not scattered ``if role == ...``: ``idnode init --role`` and ``open_node``
must agree on what a role means (what it homes, whether it recurses, whether it reports),
and an operator reading ``docs/hierarchy.md`` should find the same table here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from idnode.config import Config

ROOT, TOP_LEVEL, SECONDARY, ENTERPRISE, RECURSIVE = (
    "root", "top-level", "secondary", "enterprise", "recursive",
)  # fmt: skip
ROLES = (ROOT, TOP_LEVEL, SECONDARY, ENTERPRISE, RECURSIVE)
ROOT_PREFIX = "0.NA"  # the root homes every prefix handle, as Handle.Net's global service does


class RoleError(ValueError):
    """A role, prefix set or parent that does not fit together."""


@dataclass(frozen=True, slots=True)
class RoleDefaults:
    homes_prefixes: bool  # must the node home at least one prefix?
    recursion: int  # answers REC requests for handles homed elsewhere
    reports: bool  # reports to a parent on a schedule
    delegates: bool  # allocates child prefixes
    report_interval: int


DEFAULTS: dict[str, RoleDefaults] = {
    ROOT: RoleDefaults(True, 0, False, True, 0),
    TOP_LEVEL: RoleDefaults(True, 0, True, True, 300),
    SECONDARY: RoleDefaults(True, 0, True, True, 300),
    ENTERPRISE: RoleDefaults(True, 0, True, False, 3600),
    RECURSIVE: RoleDefaults(False, 1, False, False, 0),
}


def check_role(role: str) -> str:
    role = role.strip().lower()
    if role and role not in ROLES:
        raise RoleError(f"unknown role {role!r}: use {', '.join(ROLES)}")
    return role


def prefixes_for(role: str, prefixes: list[str]) -> list[str]:
    """The prefixes ``idnode init --role`` homes: the root homes ``0.NA``; a recursive node
    homes nothing (it answers for everyone else's prefixes)."""
    role = check_role(role)
    if role == ROOT:
        return prefixes or [ROOT_PREFIX]
    if role == RECURSIVE:
        if prefixes:
            raise RoleError("a recursive node homes no prefix; drop --prefix")
        return []
    if role and not prefixes:
        raise RoleError(f"a {role} node homes a prefix: give --prefix")
    return prefixes


def apply_role(config: Config, role: str, *, parent: str = "", root_info: str = "") -> Config:
    """Fill ``[hierarchy]`` (and what the role implies elsewhere) with the role's defaults."""
    role = check_role(role)
    h = config.hierarchy
    h.role = role
    if not role:
        return config
    d = DEFAULTS[role]
    h.recursion = d.recursion
    h.report_interval = d.report_interval
    if parent:
        h.parent = parent
    if root_info:
        h.root_info = root_info
    if role == RECURSIVE:
        # the authoritative response cache would keep upstream answers past their TTL
        config.server.cache_entries = 0
    return config


def parent_url(parent: str, base: Path | None = None) -> str:
    """The parent's HTTP base URL from ``[hierarchy] parent``.

    Accepts ``http(s)://...``, ``host:port`` (the parent's HTTP port), or a path to the
    parent's HS_SITE file (binary or JSON), whose first HTTP interface is used.
    """
    text = parent.strip()
    if not text:
        raise RoleError("no parent configured: set [hierarchy] parent or pass --parent")
    if text.startswith(("http://", "https://")):
        return text.rstrip("/")
    path = Path(text) if base is None else base / text
    if path.exists():
        from idnode.hierarchy.resolver import load_root_info
        from idnode.wire.site import SP_HDL_HTTP, SP_HDL_HTTPS

        for site in load_root_info(path):
            for server in site.servers:
                for proto, scheme in ((SP_HDL_HTTPS, "https"), (SP_HDL_HTTP, "http")):
                    itf = server.interface(proto)
                    if itf is not None:
                        host = server.connect_address
                        shown = f"[{host}]" if host.version == 6 else str(host)
                        return f"{scheme}://{shown}:{itf.port}"
        raise RoleError(f"{path}: the parent's site has no HTTP interface")
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise RoleError(f"parent {text!r} is not a URL, host:port or site file")
    return f"http://{host}:{port}"
