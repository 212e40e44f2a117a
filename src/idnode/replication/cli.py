"""``idnode promote``, ``idnode attach``, ``idnode backup``, ``idnode restore``
(docs/replication.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from idnode.cli_common import RUNTIME, USAGE_ERROR, fail, node_config, out


def check_mirror_args(sources: list[str], identity: str, key: str) -> None:
    """A usage error before anything is written, unless a mirror can be set up."""
    from idnode.auth.identity import Identity
    from idnode.client.replication import parse_address

    if not sources or not identity or not key:
        fail("a mirror needs --primary HOST:PORT, --identity and --key", USAGE_ERROR)
    for s in sources:
        try:
            parse_address(s)
        except ValueError as exc:
            fail(str(exc), USAGE_ERROR)
    try:
        Identity.parse(identity)
    except Exception as exc:  # noqa: BLE001 - its message names what is wrong
        fail(f"--identity: {exc}", USAGE_ERROR)


def set_mirror(cfg, sources: list[str], identity: str, key: str) -> None:
    """``[replication]`` of a mirror following ``sources`` as ``identity``."""
    check_mirror_args(sources, identity, key)
    r = cfg.replication
    r.role, r.sources, r.identity = "mirror", list(sources), identity
    # a mirror homes what it replicates: no prefixes of its own, so it neither publishes
    # its site into them nor runs their registry (the primary's is replicated)
    cfg.node.prefixes = []
    r.key = str(Path(key).expanduser().resolve())
    if identity not in r.admins:
        r.admins.append(identity)  # once promoted, the same identity pulls from us


def _write_config(cfg) -> None:
    from idnode.config import CONFIG_NAME, render_config

    (cfg.directory / CONFIG_NAME).write_text(render_config(cfg), encoding="utf-8")


def register(app: typer.Typer) -> None:
    @app.command()
    def promote(
        directory: Annotated[Path, typer.Argument(help="the mirror's node directory")],
    ) -> None:
        """Make a mirror the primary: a new epoch (the fence), then writes are taken.

        Run it with the mirror stopped, then start it again; the other mirrors follow it
        (it serves the newest epoch), and an old primary that comes back fences itself."""
        from idnode.replication.promotion import promote_store

        cfg = node_config(directory)
        epoch, serial = asyncio.run(promote_store(cfg, RUNTIME))
        cfg.replication.role = "primary"
        _write_config(cfg)
        out.print(f"promoted {directory}: epoch {epoch}, serial {serial}", highlight=False)

    @app.command()
    def attach(
        directory: Annotated[Path, typer.Argument(help="node directory (an old primary)")],
        primary: Annotated[list[str], typer.Option(help="HOST:PORT to follow (repeatable)")],
        identity: Annotated[str, typer.Option(help="identity to pull as, 300:0.NA/P")],
        key: Annotated[Path, typer.Option(help="that identity's private key (PEM)")],
    ) -> None:
        """Re-attach a node as a mirror of ``--primary``: it drops its fence, dumps the
        primary's data over its own on the next start and follows its log."""
        from idnode.replication.promotion import clear_for_mirror

        cfg = node_config(directory)
        set_mirror(cfg, primary, identity, str(key))
        asyncio.run(clear_for_mirror(cfg, RUNTIME))
        _write_config(cfg)
        out.print(f"{directory} now mirrors {', '.join(primary)}", highlight=False)

    @app.command("publish-mirror")
    def publish_mirror(
        directory: Annotated[Path, typer.Argument(help="the primary's node directory")],
        server: Annotated[str, typer.Option(help="HOST:PORT (TCP) of the mirror to publish")],
        timeout: Annotated[float, typer.Option(help="seconds to wait for the mirror")] = 5.0,
    ) -> None:
        """List a mirror's site in the primary's prefix records (HS_SITE, not primary), so
        clients fail over to it; its site information is asked of the mirror itself."""
        from idnode.client.replication import parse_address
        from idnode.client.resolve import request_tcp, siteinfo_request
        from idnode.errors import IdnodeError
        from idnode.wire import bodies

        try:
            host, port = parse_address(server)
        except ValueError as exc:
            fail(str(exc), USAGE_ERROR)
        cfg = node_config(directory)
        if not cfg.node.prefixes:
            fail(f"{directory} names no prefix of its own (is it a mirror?)", USAGE_ERROR)

        async def run() -> list[str]:
            from idnode.app import open_node
            from idnode.replication.sites import publish_mirror_site

            reply = await request_tcp(host, port, siteinfo_request(), timeout=timeout)
            if not isinstance(reply.body, bodies.SiteInfoResponse):
                raise IdnodeError(f"{server} answered no site information")
            node = await open_node(cfg, runtime=RUNTIME)
            try:
                return await publish_mirror_site(node, reply.body.site)
            finally:
                await node.close()

        try:
            changed = asyncio.run(run())
        except (IdnodeError, OSError) as exc:
            fail(str(exc))
        out.print(f"published the site of {server} in {', '.join(changed)}", highlight=False)

    @app.command("prune-log")
    def prune_log(
        directory: Annotated[Path, typer.Argument(help="node directory (may be serving)")],
        keep_days: Annotated[
            int | None,
            typer.Option(help="days to keep (default: [replication] keep_log_days; 0: all)"),
        ] = None,
    ) -> None:
        """Delete transaction-log entries and governance changes older than the retention,
        in short batches (a serving node does it every hour); a mirror further behind is
        told to redump."""
        from idnode.errors import IdnodeError
        from idnode.replication.retention import prune
        from idnode.replication.setup import keep_log_days
        from idnode.store.encrypted import configured_store

        cfg = node_config(directory)
        if keep_days is not None:
            cfg.replication.keep_log_days = keep_days
        try:
            days = keep_log_days(cfg)
        except ValueError as exc:
            fail(str(exc), USAGE_ERROR)
        if not days:
            out.print(f"{directory} keeps its logs for ever (keep_log_days = 0)", highlight=False)
            return

        async def run():
            store = configured_store(cfg, RUNTIME)  # the store alone: no node, no site
            await store.open()
            try:
                clock = RUNTIME.clock
                return await prune(store, now=clock(), keep_days=days, monotonic=clock.monotonic)
            finally:
                await store.close()

        try:
            report = asyncio.run(run())
        except IdnodeError as exc:
            fail(str(exc))
        assert report is not None
        out.print(
            f"deleted {report.transactions} transactions and {report.changes} governance "
            f"changes older than {days} days from {directory} in {report.batches} batches "
            f"(longest {report.longest_batch * 1000:.1f} ms); the log is kept after serial "
            f"{report.log_horizon}",
            highlight=False,
        )

    @app.command("backup")
    def backup_cmd(
        directory: Annotated[Path, typer.Argument(help="node directory (may be serving)")],
        output: Annotated[Path, typer.Argument(help="new backup directory")],
    ) -> None:
        """A consistent online snapshot with its serial and SM3 digests (manifest.json)."""
        from idnode.replication.backup import BackupError, backup

        cfg = node_config(directory)
        try:
            m = backup(cfg, output, int(RUNTIME.clock()))
        except BackupError as exc:
            fail(str(exc))
        out.print(
            f"backup of {directory} in {output}: {m.engine}, serial {m.serial}, "
            f"txn id {m.txn_id}, {len(m.digests)} files (SM3)",
            highlight=False,
        )

    @app.command("restore")
    def restore_cmd(
        backup_dir: Annotated[Path, typer.Argument(help="a backup directory")],
        directory: Annotated[Path, typer.Argument(help="new node directory")],
        primary: Annotated[
            list[str], typer.Option(help="follow this primary from the backup on (repeatable)")
        ] = [],  # noqa: B006
        identity: Annotated[str, typer.Option(help="identity to pull as")] = "",
        key: Annotated[Path | None, typer.Option(help="that identity's private key")] = None,
    ) -> None:
        """Rebuild a node from a backup; with ``--primary`` it becomes a mirror that catches
        up from the primary's log right after the backup's transaction."""
        from idnode.replication.backup import BackupError, restore
        from idnode.replication.promotion import resume_at

        try:
            m = restore(backup_dir, directory)
        except BackupError as exc:
            fail(str(exc))
        cfg = node_config(directory)
        if primary:
            set_mirror(cfg, primary, identity, str(key or ""))
            asyncio.run(resume_at(cfg, RUNTIME, m.txn_id))
            _write_config(cfg)
        out.print(
            f"restored {directory} at serial {m.serial}"
            + (f"; it resumes {', '.join(primary)} after txn id {m.txn_id}" if primary else ""),
            highlight=False,
        )
