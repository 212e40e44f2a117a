"""``idnode keys status|rotate``: the storage keys that encrypt non-public values at rest.

Kept out of ``cli.py`` so the main command file stays a table of contents.

Online rotation, step by step (``rotate``):

1. a fresh key is appended to the key file and made active (atomic rename);
2. wait ``--grace`` seconds: a serving node re-reads a changed key file within one second, so
   after this every value it writes is sealed with the new key;
3. every non-public value under another key (or stored clear) is re-sealed with the new one,
   in batches, while the node goes on serving: a value read mid-rotation opens with whichever
   key id it carries, old or new;
4. when a final pass finds no value left under an old key, the old keys are removed from the
   file (``--keep-old`` keeps them, e.g. for restoring older backups).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

import typer

from idnode.cli_common import RUNTIME, USAGE_ERROR, fail, node_config

keys_app = typer.Typer(
    help="Storage keys: SM4-GCM encryption at rest of values without PUBLIC_READ.",
    no_args_is_help=True,
)


def _keyring_and_path(directory: Path):
    from idnode.crypto.keyring import KeyringError, load_keyring

    cfg = node_config(directory)
    path = cfg.path(cfg.security.storage_key_file)
    try:
        keyring = load_keyring(path, clock=RUNTIME.clock)
    except KeyringError as exc:
        fail(str(exc), USAGE_ERROR)
    if keyring is None:
        fail(
            f"{directory}: encryption at rest is off ([security] storage_key_file is empty "
            "and IDNODE_STORAGE_KEY is unset)",
            USAGE_ERROR,
        )
    return cfg, path, keyring


def _encrypted_store(cfg, keyring):
    from idnode.store import open_store
    from idnode.store.encrypted import EncryptedStore
    from idnode.wire.public_answer import ENCODER

    engine = open_store(cfg.store_url, clock=RUNTIME.clock, answers=ENCODER)
    return EncryptedStore(engine, keyring, random=RUNTIME.random)


@keys_app.command()
def status(directory: Annotated[Path, typer.Argument(help="node directory")]) -> None:
    """The keys, which is active, and how many non-public values each one seals."""
    from idnode.errors import IdnodeError

    cfg, path, keyring = _keyring_and_path(directory)

    async def run() -> dict[str, int]:
        async with _encrypted_store(cfg, keyring) as store:
            return await store.census()

    try:
        counts = asyncio.run(run())
    except (IdnodeError, OSError) as exc:
        fail(str(exc))
    active = keyring.active.id.hex()
    typer.echo(f"key source: {'IDNODE_STORAGE_KEY' if keyring.from_env else path}")
    for kid in keyring.ids():
        mark = " (active)" if kid.hex() == active else ""
        typer.echo(f"key {kid.hex()}{mark}: {counts.pop(kid.hex(), 0)} values")
    for name, n in sorted(counts.items()):
        what = "stored clear" if name == "clear" else f"under unknown key {name}"
        typer.echo(f"{n} values {what}")


@keys_app.command()
def rotate(
    directory: Annotated[Path, typer.Argument(help="node directory")],
    grace: Annotated[float, typer.Option(help="seconds for serving nodes to see the key")] = 2.0,
    batch: Annotated[int, typer.Option(help="handles per batch")] = 200,
    keep_old: Annotated[bool, typer.Option(help="keep the old keys in the file")] = False,
) -> None:
    """Add a new active key and re-encrypt every non-public value with it, online."""
    from idnode.crypto.keyring import KeyringError, add_active_key, drop_keys_except
    from idnode.errors import IdnodeError

    cfg, path, keyring = _keyring_and_path(directory)
    if keyring.from_env or path is None or not path.exists():
        fail("the active key comes from IDNODE_STORAGE_KEY: rotate by giving a new one there")
    try:
        new = add_active_key(path, RUNTIME.random, RUNTIME.clock)
        keyring.refresh(force=True)
    except KeyringError as exc:
        fail(str(exc))
    typer.echo(f"new active key {new.id.hex()}; waiting {grace:g}s for serving nodes")
    time.sleep(max(grace, 0.0))

    def progress(report) -> None:
        typer.echo(
            f"  pass {report.passes}: {report.handles} handles, "
            f"{report.values_resealed} values re-encrypted"
        )

    async def run():
        async with _encrypted_store(cfg, keyring) as store:
            return await store.reencrypt(batch=batch, on_progress=progress)

    try:
        report = asyncio.run(run())
    except (IdnodeError, OSError) as exc:
        fail(f"rotation stopped, old keys kept (run it again): {exc}")
    typer.echo(f"re-encrypted {report.values_resealed} values in {report.passes} pass(es)")
    if report.remaining:
        left = ", ".join(f"{n} under {k}" for k, n in report.remaining.items())
        fail(f"values still not under the new key ({left}); old keys kept, run it again")
    if not keep_old:
        dropped = drop_keys_except(path, {new.id})
        if dropped:
            typer.echo("removed old keys " + ", ".join(k.id.hex() for k in dropped))
