"""Online backups of a node and their restore (docs/replication.md, "Backups").

``backup(config, out)`` copies the node directory (configuration, keys, the storage key of
encryption at rest) into ``out/node`` and takes a consistent snapshot of the store while the
node keeps serving: SQLite's online backup API (``sqlite3.Connection.backup``, pages copied
under a read transaction, so concurrent commits are either wholly in or wholly out), or
``pg_dump`` of the node's schema for PostgreSQL (one snapshot; ``pg_restore`` loads it).
``out/manifest.json`` names the snapshot's transaction serial, its txn id on the wire
(``(epoch << 40) | serial``) and the SM3 digest of every file, so ``restore`` can refuse a
damaged or altered backup and a restored mirror resumes the primary's log right after it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes

from idnode.config import CONFIG_NAME, Config
from idnode.errors import IdnodeError
from idnode.wire import replication as rw

MANIFEST = "manifest.json"
FORMAT = 1
_SKIP = (".db-wal", ".db-shm", ".db-journal")


class BackupError(IdnodeError):
    """A backup could not be taken or restored (damaged, altered, or an engine failure)."""


@dataclass(frozen=True)
class Manifest:
    engine: str  # sqlite | postgresql
    store_file: str  # the snapshot, relative to the backup directory
    serial: int  # the last transaction in the snapshot
    epoch: int
    position: int  # a mirror's position in its source's log (0 on a primary)
    digests: dict[str, str]  # relative path -> SM3 hex
    created: int  # seconds since the epoch

    @property
    def txn_id(self) -> int:
        """Where a node restored from it resumes its source's log."""
        return self.position or rw.txn_id(self.epoch, self.serial)


def sm3_file(path: Path) -> str:
    h = hashes.Hash(hashes.SM3())
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.finalize().hex()


def _sqlite_path(config: Config) -> Path | None:
    url = config.store_url
    return Path(url.removeprefix("sqlite://")) if url.startswith("sqlite://") else None


def _meta_sqlite(conn: sqlite3.Connection) -> tuple[int, int, int]:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'txlog'").fetchone()
    meta = dict(
        conn.execute(
            "SELECT key, value FROM meta WHERE key IN ('replication.epoch', 'replication.position')"
        ).fetchall()
    )
    return (
        0 if row is None else int(row[0]),
        int(meta.get("replication.epoch", 0)),
        int(meta.get("replication.position", 0)),
    )


def backup(config: Config, out: Path, now: int) -> Manifest:
    """Snapshot the node of ``config`` into the new directory ``out``."""
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} exists and is not empty")
    node_dir = out / "node"
    db = _sqlite_path(config)
    ignore = shutil.ignore_patterns(*(f"*{s}" for s in _SKIP), *([db.name] if db else []))
    shutil.copytree(config.directory, node_dir, ignore=ignore)
    if db is not None:
        store_file = node_dir / db.name
        source = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        target = sqlite3.connect(store_file)
        try:
            source.backup(target)  # consistent: one read transaction over every page
            serial, epoch, position = _meta_sqlite(target)
        except sqlite3.Error as exc:
            raise BackupError(f"sqlite backup failed: {exc}") from None
        finally:
            target.close()
            source.close()
        engine = "sqlite"
    else:
        store_file = out / "store.pgdump"
        serial, epoch, position = _pg_dump(config.store_url, store_file)
        engine = "postgresql"
    digests = {
        str(p.relative_to(out)): sm3_file(p)
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    manifest = Manifest(
        engine, str(store_file.relative_to(out)), serial, epoch, position, digests, now
    )
    (out / MANIFEST).write_text(
        json.dumps({"format": FORMAT, **manifest.__dict__, "txn_id": manifest.txn_id}, indent=2)
    )
    return manifest


def read_manifest(backup_dir: Path) -> Manifest:
    """The manifest, after checking every file's SM3 digest."""
    try:
        raw = json.loads((backup_dir / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{backup_dir}: no readable {MANIFEST}: {exc}") from None
    if raw.get("format") != FORMAT:
        raise BackupError(f"{backup_dir}: backup format {raw.get('format')!r} not supported")
    fields = {k: raw[k] for k in Manifest.__dataclass_fields__}
    manifest = Manifest(**fields)
    for name, digest in manifest.digests.items():
        path = backup_dir / name
        if not path.is_file() or sm3_file(path) != digest:
            raise BackupError(f"{backup_dir}: {name} is missing or altered (SM3 mismatch)")
    return manifest


def restore(backup_dir: Path, directory: Path) -> Manifest:
    """Rebuild a node in the new directory ``directory`` from a checked backup (SQLite: the
    snapshot becomes its store; PostgreSQL: ``pg_restore`` into the configured schema)."""
    manifest = read_manifest(backup_dir)
    if directory.exists() and any(directory.iterdir()):
        raise BackupError(f"{directory} exists and is not empty")
    shutil.copytree(backup_dir / "node", directory, dirs_exist_ok=True)
    if manifest.engine == "postgresql":
        from idnode.config import load_config

        _pg_restore(load_config(directory).store_url, backup_dir / manifest.store_file)
    elif not (directory / CONFIG_NAME).is_file():
        raise BackupError(f"{backup_dir}: the backup holds no {CONFIG_NAME}")
    return manifest


# -- PostgreSQL ----------------------------------------------------------------------------------
def _pg_target(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    schema = parse_qs(parts.query).get("schema", ["idnode"])[0]
    return parts._replace(query="").geturl(), schema


def _run(args: list[str]) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise BackupError(f"{args[0]}: {exc}") from None
    if done.returncode != 0:
        raise BackupError(f"{args[0]} failed: {done.stderr.strip()[:500]}")
    return done.stdout


def _pg_dump(url: str, out: Path) -> tuple[int, int, int]:
    dsn, schema = _pg_target(url)
    _run(["pg_dump", "--dbname", dsn, "--schema", schema, "--format=custom", "--file", str(out)])
    # the serial and meta of the dump: read from the dump itself (its data is one snapshot)
    listing = _run(["pg_restore", "--data-only", "--table=meta", "--file=-", str(out)])
    meta = _copy_rows(listing, "meta")
    serials = _run(["pg_restore", "--data-only", "--table=txlog", "--file=-", str(out)])
    rows = _copy_rows(serials, "txlog")
    serial = max((int(r[0]) for r in rows), default=0)
    values = {r[0]: r[1] for r in meta}
    return (
        serial,
        int(values.get("replication.epoch", 0)),
        int(values.get("replication.position", 0)),
    )


def _copy_rows(script: str, table: str) -> list[list[str]]:
    rows, inside = [], False
    for line in script.splitlines():
        if line.startswith("COPY ") and f".{table} " in line:
            inside = True
        elif inside and line == "\\.":
            inside = False
        elif inside:
            rows.append(line.split("\t"))
    return rows


def _pg_restore(url: str, dump: Path) -> None:
    dsn, _schema = _pg_target(url)
    _run(["pg_restore", "--dbname", dsn, "--no-owner", str(dump)])
