"""``idnode enrol``, ``idnode child allocate|list|suspend|resume`` and ``idnode root-info``.

``child`` commands work on the parent's store (its ``children`` table and the prefix handles,
written through the write service as the node operator) and may run while the parent
serves: the serving process learns of the change from the store's write announcements
(SQLite: within its poll interval; PostgreSQL: at once).

A child prefix in the parent's registry space (an enterprise prefix its coding rules accept)
is delegated only after the registry's review: ``idnode org apply|approve`` and ``idnode
prefix apply|approve`` first, then ``idnode child allocate``.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer

from idnode.cli_common import emit, fail, on_local_node

T = TypeVar("T")
child_app = typer.Typer(help="A parent node's children: allocate, list, suspend, resume.")
DirOpt = Annotated[Path, typer.Option("--dir", "-d", help="the parent's node directory")]


def _with_delegations(directory: Path, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(delegations)`` on the node's files, without starting any server work."""
    from idnode.config import ConfigError, load_config

    try:
        cfg = load_config(directory)
    except ConfigError as exc:
        fail(str(exc), 2)
    if not cfg.hierarchy.role:
        fail('this node has no [hierarchy] role; set one (e.g. role = "top-level")', 2)

    async def with_delegations(node: Any) -> T:
        if node.hierarchy is None or node.hierarchy.delegations is None:
            fail("this node homes no prefix, so it has no children")
        return await work(node.hierarchy.delegations)

    return on_local_node(directory, with_delegations)


@child_app.command("allocate")
def child_allocate(
    prefix: Annotated[str, typer.Argument(help="child prefix, e.g. 88.123 under 88")],
    directory: DirOpt = Path("."),
    ttl: Annotated[int | None, typer.Option(help="token lifetime in seconds")] = None,
) -> None:
    """Allocate a child prefix; prints its one-time enrolment token (shown only now).

    An enterprise prefix in this node's registry space must be approved first (``idnode
    prefix approve``); it is then ``delegated`` and the registry will not allocate it."""

    async def work(d: Any) -> dict[str, Any]:
        return await d.allocate(prefix, ttl=ttl)

    emit(_with_delegations(directory, work))


@child_app.command("list")
def child_list(directory: DirOpt = Path(".")) -> None:
    """The children of this node with their state and last report."""

    async def work(d: Any) -> list[dict[str, Any]]:
        return await d.list()

    emit(_with_delegations(directory, work))


@child_app.command("reports")
def child_reports_command(
    prefix: str,
    directory: DirOpt = Path("."),
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """What a child reported and when: its audit heads with their verdicts (extends,
    contradicts, ...), its last monthly report. Exit status 1 if any head contradicted."""
    from idnode.hierarchy.supervision import child_reports

    async def work(d: Any) -> dict[str, Any]:
        try:
            return await child_reports(d.store, prefix, limit)
        except LookupError as exc:
            fail(str(exc))

    out = _with_delegations(directory, work)
    emit(out)
    if out["contradictions"]:
        raise typer.Exit(1)


@child_app.command("suspend")
def child_suspend(
    prefix: str,
    directory: DirOpt = Path("."),
    reason: Annotated[str, typer.Option(help="why (kept in the store's state history)")] = "",
) -> None:
    """Stop referring to a child: its prefix handle is withdrawn until ``resume``."""

    async def work(d: Any) -> dict[str, Any]:
        row = await d.suspend(prefix, reason)
        return {"prefix": row["prefix"], "state": row["state"]}

    emit(_with_delegations(directory, work))


@child_app.command("resume")
def child_resume(prefix: str, directory: DirOpt = Path(".")) -> None:
    """Publish a suspended child's prefix handle again."""

    async def work(d: Any) -> dict[str, Any]:
        row = await d.resume(prefix)
        return {"prefix": row["prefix"], "state": row["state"]}

    emit(_with_delegations(directory, work))


def enrol(
    directory: Annotated[Path, typer.Argument(help="this (child) node's directory")],
    token: Annotated[str, typer.Option(help="the enrolment token the parent printed")],
    parent: Annotated[
        str, typer.Option(help="parent's HTTP API: URL, host:port or site file")
    ] = "",
    prefix: Annotated[str, typer.Option(help="the prefix to enrol (default: first homed)")] = "",
    timeout: float = 10.0,
) -> None:
    """Register this node with its parent: sends our HS_SITE and admin public key with the
    one-time token; keeps the report token the parent returns and records the parent."""
    from idnode.bootstrap import ADMIN_KEY_NAME
    from idnode.config import CONFIG_NAME, ConfigError, load_config, render_config
    from idnode.crypto.keys import load_private_key_pem, public_key_to_pem
    from idnode.hierarchy.roles import RoleError, parent_url
    from idnode.hierarchy.service import write_enrolment
    from idnode.service.site import build_site, load_private_key

    try:
        cfg = load_config(directory, env={})  # the file as written, not env overrides
        url = parent_url(parent or cfg.hierarchy.parent, directory)
    except (ConfigError, RoleError) as exc:
        fail(str(exc), 2)
    prefix = prefix or (cfg.node.prefixes[0] if cfg.node.prefixes else "")
    if not prefix:
        fail("this node homes no prefix to enrol", 2)
    site = build_site(cfg, load_private_key(cfg).public_key())
    admin_key = load_private_key_pem((directory / ADMIN_KEY_NAME).read_bytes())
    body = {
        "token": token,
        "prefix": prefix,
        "site": base64.b64encode(site).decode(),
        "public_key": public_key_to_pem(admin_key).decode(),
        "name": cfg.node.name,
        "role": cfg.hierarchy.role,
    }
    try:
        resp = httpx.post(url + "/api/hierarchy/enrol", json=body, timeout=timeout)
    except httpx.HTTPError as exc:
        fail(f"cannot reach the parent at {url}: {exc}")
    if resp.status_code != 200:
        try:
            message = resp.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = resp.text[:300]
        fail(f"the parent refused the enrolment ({resp.status_code}): {message}")
    answer = resp.json()
    write_enrolment(directory, url, answer["prefix"], answer["report_token"])
    if not cfg.hierarchy.parent or parent:
        cfg.hierarchy.parent = parent or url
        (directory / CONFIG_NAME).write_text(render_config(cfg), encoding="utf-8")
    emit({"enrolled": answer["prefix"], "published": answer["prefix_handle"], "parent": url})


def root_info(
    server: Annotated[str, typer.Option(help="host:port of the root node (UDP/TCP)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="file to write the root's HS_SITE")],
    timeout: float = 3.0,
) -> None:
    """Fetch a root node's site information into a root-info file for ``--from-root``."""
    from idnode.client.resolve import request_tcp, siteinfo_request
    from idnode.errors import IdnodeError
    from idnode.wire import bodies
    from idnode.wire.site import decode_site

    host, _, port = server.rpartition(":")
    if not port.isdigit():
        fail(f"{server!r} is not host:port", 2)
    try:
        reply = asyncio.run(request_tcp(host, int(port), siteinfo_request(), timeout=timeout))
        if not isinstance(reply.body, bodies.SiteInfoResponse):
            fail(f"{server} answered code {reply.header.response_code}, not site information")
        decode_site(reply.body.site)
    except (IdnodeError, OSError) as exc:
        fail(str(exc))
    out.write_bytes(reply.body.site)
    emit({"root_info": str(out), "bytes": len(reply.body.site)})


def register(app: typer.Typer) -> None:
    """Add the hierarchy's commands to the ``idnode`` app."""
    app.add_typer(child_app, name="child")
    app.command("enrol")(enrol)
    app.command("root-info")(root_info)
