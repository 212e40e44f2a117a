"""``idnode audit verify|export``: checking the audit chain needs no secret of the node.

``verify DIR`` reads the chain from the node's store alone (no server key, no storage key:
the audit table holds digests, never sealed values), so a copied node directory verifies
without the key files. ``export`` writes an archive whose head the server key signs, and
``verify --log FILE --public-key PEM`` checks such an archive with public material only
(``registry.audit_export``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from idnode.cli_common import RUNTIME, USAGE_ERROR, err, fail, node_config, out

audit_app = typer.Typer(help="The SM3-chained audit log.", no_args_is_help=True)


async def _chain(cfg: Any) -> tuple[int, list[Any], list[dict[str, Any]], str]:
    """(count, findings, rows, head) read from the node's store without opening the node."""
    from idnode.registry.audit import AuditLog
    from idnode.store import open_store

    store = open_store(cfg.store_url, clock=RUNTIME.clock)
    await store.open()
    try:
        log = AuditLog(store)
        rows, head = await log.rows(), await log.head()
    finally:
        await store.close()
    from idnode.store.audit_chain import verify_chain

    count, findings = verify_chain(rows, head)
    return count, findings, rows, head


def _report(count: int, findings: list[Any]) -> None:
    if findings:
        for f in findings:
            err.print(f"[bold red]audit:[/] {f}", highlight=False, markup=True)
        fail(f"audit log damaged: {len(findings)} problem(s) in {count} entries")
    out.print(f"audit log intact: {count} entries", highlight=False)


@audit_app.command("verify")
def audit_verify(
    directory: Annotated[Path, typer.Argument(help="node directory")] = Path("var"),
    log: Annotated[
        Path | None, typer.Option("--log", help="an `idnode audit export` file to verify")
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option(help="the node's server public key (PEM), with --log")
    ] = None,
) -> None:
    """Check the SM3 chain; exit 1 naming every edited, removed or reordered entry."""
    from idnode.errors import IdnodeError

    if log is None:
        if public_key is not None:
            fail("--public-key goes with --log (an exported copy)", USAGE_ERROR)
        cfg = node_config(directory)
        try:
            count, findings, _, _ = asyncio.run(_chain(cfg))
        except (IdnodeError, OSError) as exc:
            fail(f"cannot read the audit log of {directory}: {exc}")
        _report(count, findings)
        return
    if public_key is None:
        fail("--log needs --public-key: the node's server public key (PEM)", USAGE_ERROR)
    from idnode.crypto.keys import public_key_from_pem
    from idnode.registry.audit_export import verify_export

    try:
        key = public_key_from_pem(public_key.read_bytes())
    except OSError as exc:
        fail(f"cannot read {public_key}: {exc.strerror}", USAGE_ERROR)
    except (IdnodeError, ValueError) as exc:
        fail(f"{public_key}: not a public key: {exc}", USAGE_ERROR)
    try:
        with log.open("rb") as fh:
            count, findings = verify_export(fh, key)
    except OSError as exc:
        fail(f"cannot read {log}: {exc.strerror}", USAGE_ERROR)
    except IdnodeError as exc:
        fail(f"{log}: {exc}")
    _report(count, findings)


@audit_app.command("export")
def audit_export(
    directory: Annotated[Path, typer.Argument(help="node directory")] = Path("var"),
    output: Annotated[Path, typer.Option("--out", help="the archive to write")] = Path(
        "audit.jsonl"
    ),
) -> None:
    """Archive the chain with its head signed by the server key; writes OUT and OUT.pub."""
    from idnode.crypto.keys import public_key_to_pem
    from idnode.errors import IdnodeError
    from idnode.registry.audit_export import export_lines
    from idnode.service.site import load_private_key

    cfg = node_config(directory)
    try:
        key = load_private_key(cfg)
        count, findings, rows, head = asyncio.run(_chain(cfg))
    except (IdnodeError, OSError) as exc:
        fail(f"cannot export the audit log of {directory}: {exc}")
    if findings:  # never sign a damaged chain
        _report(count, findings)
    try:
        with output.open("wb") as fh:
            fh.writelines(export_lines(rows, head, cfg.node.name, key))
        output.with_name(output.name + ".pub").write_bytes(public_key_to_pem(key))
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}")
    out.print(f"exported {count} entries to {output} (public key {output}.pub)", highlight=False)
