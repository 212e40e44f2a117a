"""Encryption at rest of every value without PUBLIC_READ, for any engine: a Store wrapper.

Why a wrapper: the rule (what is encrypted, with which key, bound to what) is the same for
SQLite and PostgreSQL, so it lives once, above both; the engines store opaque bytes and need
no change. Only ``data`` is encrypted: handle names, indexes, types, permissions, TTLs and
references stay clear because the engines index and filter on them.

Sealed value data (SM4 in GCM mode, ``cryptography`` over OpenSSL)::

    "IDN1" (4) || key id (4) || nonce (12, random) || ciphertext || tag (16)

    AAD = "idnode/value/1" 0x00 || handle_key(handle) (UTF-8) 0x00 || index (4, signed)
          || permissions (1) || type (UTF-8)

The AAD binds a ciphertext to its handle, index, permissions and type: copied to another
value, or made PUBLIC_READ behind the node's back, it no longer decrypts. Values with
PUBLIC_READ are stored clear (anyone may read them; encrypting them protects nothing and
costs every resolution). Reads decrypt sealed data whatever its key id, so a value written
before, during or after a rotation reads the same; data without the "IDN1" mark is returned
as it is (a node that switched encryption on; ``idnode keys rotate`` seals such values).

Rotation (``reencrypt``) walks every handle the transaction log names and re-seals, with the
active key, each non-public value under another key or none. Within this process writes and
the rotation's read-then-write of a handle are serialised, so no update is lost. Against a
*different* process writing the same handle (``idnode keys rotate`` beside a serving node)
the handle is re-read just before the write and skipped if it changed (tried again in the
next pass); a concurrent change landing inside that sub-millisecond window could still be
overwritten by the same logical data it replaced -- documented in docs/crypto.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from idnode.codes import Permission
from idnode.crypto.keyring import Keyring, KeyringError
from idnode.model import HandleValue, PublicAnswer, handle_key
from idnode.runtime import Random, Runtime
from idnode.store.base import (
    AnswerEncoder,
    Atomic,
    KeptVersion,
    RowGroup,
    SerialCallback,
    Store,
    Transaction,
    check_handle_name,
    check_row,
    check_row_group,
    check_values,
)
from idnode.store.effects import NO_EFFECTS, Effects

MAGIC = b"IDN1"
NONCE_BYTES = 12
TAG_BYTES = 16
HEADER_BYTES = len(MAGIC) + 4 + NONCE_BYTES
_AAD_LABEL = b"idnode/value/1\0"


_HANDLES_AFTER = "SELECT key, handle FROM {s}.handles WHERE key > ? ORDER BY key LIMIT ?"


def configured_store(
    config, runtime: Runtime, answers: AnswerEncoder | None = None, url: str | None = None
) -> Store:
    """The (unopened) store of a node: its engine, wrapped when a storage key is configured
    (``[security] storage_key_file`` or ``IDNODE_STORAGE_KEY``). Every command that opens a
    node's store goes through here, so none writes a non-public value clear by mistake.
    ``answers``: the engine keeps each record's public answer (``Store.public_answer``).
    ``url``: another copy of the same store (a streaming replica, ``[store] read_url``)."""
    from idnode.crypto.keyring import load_keyring
    from idnode.store import open_store

    store = open_store(url or config.store_url, clock=runtime.clock, answers=answers)
    keyring = load_keyring(config.path(config.security.storage_key_file), clock=runtime.clock)
    return store if keyring is None else EncryptedStore(store, keyring, random=runtime.random)


class StorageKeyError(KeyringError):
    """A stored value cannot be decrypted: unknown key id, wrong key, or altered data.

    The message names the handle and index, never the data.
    """


def is_sealed(data: bytes) -> bool:
    return len(data) >= HEADER_BYTES + TAG_BYTES and bytes(data[:4]) == MAGIC


def sealed_key_id(data: bytes) -> bytes | None:
    return bytes(data[4:8]) if is_sealed(data) else None


def _aad(handle: str, v: HandleValue) -> bytes:
    return b"".join(
        (
            _AAD_LABEL,
            handle_key(handle).encode("utf-8"),
            b"\0",
            int(v.index).to_bytes(4, "big", signed=True),
            bytes([int(v.permissions) & 0xFF]),
            v.type.encode("utf-8"),
        )
    )


def seal(
    keyring: Keyring,
    handle: str,
    v: HandleValue,
    random: Random,
) -> bytes:
    key = keyring.active
    nonce = bytes(random(NONCE_BYTES))
    enc = Cipher(algorithms.SM4(key.key), modes.GCM(nonce)).encryptor()
    enc.authenticate_additional_data(_aad(handle, v))
    body = enc.update(bytes(v.data)) + enc.finalize()
    return MAGIC + key.id + nonce + body + enc.tag


def unseal(keyring: Keyring, handle: str, v: HandleValue) -> bytes:
    data = bytes(v.data)
    kid = data[4:8]
    key = keyring.get(kid)
    where = f"value {v.index} of {handle}"
    if key is None:
        raise StorageKeyError(
            f"{where} is encrypted with storage key {kid.hex()}, which this node's keyring "
            f"lacks (holds {', '.join(k.hex() for k in keyring.ids())}): wrong key file or "
            "IDNODE_STORAGE_KEY?"
        )
    nonce = data[8:HEADER_BYTES]
    body, tag = data[HEADER_BYTES:-TAG_BYTES], data[-TAG_BYTES:]
    try:
        dec = Cipher(algorithms.SM4(key.key), modes.GCM(nonce, tag)).decryptor()
        dec.authenticate_additional_data(_aad(handle, v))
        return dec.update(body) + dec.finalize()
    except InvalidTag:
        raise StorageKeyError(
            f"{where} fails authentication under storage key {kid.hex()}: the stored bytes "
            "were altered or moved from another value"
        ) from None


_PUBLIC_READ = int(Permission.PUBLIC_READ)


def needs_seal(v: HandleValue) -> bool:
    # int(): Flag.__and__ builds a new enum member per call, the cost of this whole test
    return not (int(v.permissions) & _PUBLIC_READ)


@dataclass
class RotationReport:
    active: str
    handles: int = 0
    values_resealed: int = 0
    passes: int = 0
    remaining: dict[str, int] = field(default_factory=dict)  # key id (or "clear") -> values


class EncryptedStore(Store):
    """``inner`` with non-public value data sealed on every write and opened on every read."""

    def __init__(
        self,
        inner: Store,
        keyring: Keyring,
        *,
        random: Random,
    ) -> None:
        self.inner, self.keyring, self._random = inner, keyring, random
        # the store path's read, every uncached resolution over UDP and TCP: public values
        # are never sealed, so it is the engine's own bound method, with no call in between
        self.public_wire_now = inner.public_wire_now  # type: ignore[method-assign]
        self.inline_answers = inner.inline_answers  # (fixed when the engine is made)
        self._rotating = False
        self._inflight = 0
        self._write_lock = asyncio.Lock()

    async def subscribe(self, callback: SerialCallback) -> None:
        """Write announcements come from the engine underneath; encryption changes none."""
        await self.inner.subscribe(callback)

    def __getattr__(self, name: str):
        # engine extras (e.g. PostgreSQL change notifications) pass through unchanged
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    # -- sealing -----------------------------------------------------------------------------
    def _seal_values(self, handle: str, values: Iterable[HandleValue]) -> list[HandleValue]:
        out = check_values(values)
        return [
            replace(v, data=seal(self.keyring, handle, v, self._random)) if needs_seal(v) else v
            for v in out
        ]

    def _open_values(self, handle: str, values: list[HandleValue]) -> list[HandleValue]:
        return [
            replace(v, data=unseal(self.keyring, handle, v))
            if needs_seal(v) and is_sealed(v.data)
            else v
            for v in values
        ]

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[None]:
        """Writes run freely, except while a rotation runs: then one at a time with it."""
        if self._rotating:
            async with self._write_lock:
                yield
            return
        self._inflight += 1
        try:
            yield
        finally:
            self._inflight -= 1

    # -- lifecycle and reads -------------------------------------------------------------------
    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    # public answers hold public values only, which are never sealed: the engine's as they are
    # (``inline_answers`` and ``public_wire_now`` are the engine's own, set in __init__)
    async def public_answer(self, handle: str) -> PublicAnswer | None:
        return await self.inner.public_answer(handle)

    def public_answer_now(self, handle: str) -> PublicAnswer | None:
        return self.inner.public_answer_now(handle)

    async def fill_public_answers(self, after: str = "", batch: int = 1000) -> str | None:
        return await self.inner.fill_public_answers(after, batch)

    async def get_handle(self, handle: str) -> list[HandleValue] | None:
        values = await self.inner.get_handle(handle)
        return None if values is None else self._open_values(handle, values)

    async def list_handles(
        self, prefix: str, *, offset: int = 0, limit: int | None = None
    ) -> list[str]:
        return await self.inner.list_handles(prefix, offset=offset, limit=limit)

    async def count_handles(self, prefix: str) -> int:
        return await self.inner.count_handles(prefix)

    async def homed_prefixes(self) -> list[str]:
        return await self.inner.homed_prefixes()

    async def serial(self) -> int:
        return await self.inner.serial()

    async def transactions(self, since: int = 0, limit: int = 1000) -> list[Transaction]:
        return await self.inner.transactions(since, limit)

    # -- writes ----------------------------------------------------------------------------------
    # The history keeps versions of records: their non-public values are sealed like the
    # record's own (``_seal_effects``), so no copy of a private value is ever stored clear.
    async def create_handle(
        self,
        handle: str,
        values: Sequence[HandleValue],
        *,
        overwrite: bool = False,
        effects: Effects = NO_EFFECTS,
    ) -> int:
        sealed = self._seal_values(check_handle_name(handle), values)
        async with self._writing():
            return await self.inner.create_handle(
                handle, sealed, overwrite=overwrite, effects=self._seal_effects(effects)
            )

    async def delete_handle(self, handle: str, *, effects: Effects = NO_EFFECTS) -> int:
        async with self._writing():
            return await self.inner.delete_handle(handle, effects=self._seal_effects(effects))

    async def add_values(
        self, handle: str, values: Sequence[HandleValue], *, effects: Effects = NO_EFFECTS
    ) -> int:
        sealed = self._seal_values(check_handle_name(handle), values)
        async with self._writing():
            return await self.inner.add_values(handle, sealed, effects=self._seal_effects(effects))

    async def modify_values(
        self, handle: str, values: Sequence[HandleValue], *, effects: Effects = NO_EFFECTS
    ) -> int:
        sealed = self._seal_values(check_handle_name(handle), values)
        async with self._writing():
            return await self.inner.modify_values(
                handle, sealed, effects=self._seal_effects(effects)
            )

    async def remove_values(
        self, handle: str, indexes: Sequence[int], *, effects: Effects = NO_EFFECTS
    ) -> int:
        async with self._writing():
            return await self.inner.remove_values(
                handle, indexes, effects=self._seal_effects(effects)
            )

    async def home_prefix(self, prefix: str, *, effects: Effects = NO_EFFECTS) -> int:
        return await self.inner.home_prefix(prefix, effects=self._seal_effects(effects))

    async def unhome_prefix(self, prefix: str, *, effects: Effects = NO_EFFECTS) -> int:
        return await self.inner.unhome_prefix(prefix, effects=self._seal_effects(effects))

    async def load(
        self,
        records: Iterable[tuple[str, Sequence[HandleValue]]],
        *,
        overwrite: bool = False,
        effects: Effects = NO_EFFECTS,
    ) -> int:
        # lazily, so a streamed import stays streamed (the engine may consume it on a thread)
        sealed = ((h, self._seal_values(check_handle_name(h), vs)) for h, vs in records)
        async with self._writing():
            return await self.inner.load(
                sealed, overwrite=overwrite, effects=self._seal_effects(effects)
            )

    async def load_rows(
        self,
        groups: Iterable[RowGroup],
        *,
        overwrite: bool = False,
        effects: Effects = NO_EFFECTS,
    ) -> int:
        """Seal the slots whose layout value is not PUBLIC_READ: decided once per group."""
        sealed = (self._seal_group(g) for g in groups)  # lazily, as in ``load``
        async with self._writing():
            return await self.inner.load_rows(
                sealed, overwrite=overwrite, effects=self._seal_effects(effects)
            )

    # -- governance --------------------------------------------------------------------------------
    async def apply(self, effects: Effects, *, logged: bool = True) -> int:
        async with self._writing():
            return await self.inner.apply(self._seal_effects(effects), logged=logged)

    @asynccontextmanager
    async def atomic(self, action: str = "registry", target: str = "") -> AsyncIterator[Atomic]:
        async with self._writing(), self.inner.atomic(action, target) as inner:
            yield _SealingAtomic(self, inner)

    async def query(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return await self.inner.query(sql, *args)

    async def query_point(self, sql: str, *args: Any) -> dict[str, Any] | None:
        return await self.inner.query_point(sql, *args)

    async def reseed_ids(self) -> None:
        await self.inner.reseed_ids()

    async def history(self, handle: str) -> list[KeptVersion]:
        return [
            replace(v, values=None if v.values is None else self._open_values(handle, v.values))
            for v in await self.inner.history(handle)
        ]

    def _seal_effects(self, effects: Effects) -> Effects:
        if not effects.versions:
            return effects
        versions = tuple(
            v
            if v.values is None
            else replace(v, values=tuple(self._seal_values(v.handle, v.values)))
            for v in effects.versions
        )
        return replace(effects, versions=versions)

    def _seal_group(self, group: RowGroup) -> RowGroup:
        layout = check_row_group(group).layout
        slots = [(i, v) for i, v in enumerate(layout) if needs_seal(v)]
        if not slots:
            return group  # the engine checks the rows, as it does for any group
        rows = []
        for handle, datas in group.rows:
            handle, datas = check_row(handle, datas, layout)
            out = list(datas)
            for i, v in slots:
                out[i] = seal(self.keyring, handle, replace(v, data=out[i]), self._random)
            rows.append((handle, tuple(out)))
        return RowGroup(layout, rows)

    # -- rotation ---------------------------------------------------------------------------------
    async def all_handles(self, page: int = 1000) -> AsyncIterator[str]:
        """Every handle the store holds, in key order, a page at a time. Read from the
        handles themselves, not the transaction log: retention prunes the log
        (``replication.retention``), and a record whose log rows are gone still holds
        sealed values that a rotation must re-seal."""
        after = ""
        while True:
            rows = await self.inner.query(_HANDLES_AFTER, after, page)
            for row in rows:
                yield row["handle"]
            if len(rows) < page:
                return
            after = rows[-1]["key"]

    async def census(self) -> dict[str, int]:
        """Non-public values per key id (hex), ``clear`` for unsealed ones (``keys status``)."""
        counts: dict[str, int] = {}
        async for handle in self.all_handles():
            for v in await self.inner.get_handle(handle) or ():
                if needs_seal(v):
                    kid = sealed_key_id(v.data)
                    name = kid.hex() if kid is not None else "clear"
                    counts[name] = counts.get(name, 0) + 1
        return counts

    async def reencrypt(
        self,
        *,
        batch: int = 200,
        max_passes: int = 5,
        on_progress: Callable[[RotationReport], None] | None = None,
    ) -> RotationReport:
        """Re-seal every non-public value not under the active key; pass again until none is
        left (a value another process wrote with an old key mid-pass is caught next pass)."""
        self.keyring.refresh(force=True)  # a key just added to the file becomes active now
        report = RotationReport(active=self.keyring.active.id.hex())
        self._rotating = True
        try:
            while self._inflight:  # writes begun before the flag must finish first
                await asyncio.sleep(0.001)
            for _ in range(max_passes):
                report.passes += 1
                changed = await self._reencrypt_pass(report, batch, on_progress)
                if not changed:
                    break
        finally:
            self._rotating = False
        report.remaining = {k: n for k, n in (await self.census()).items() if k != report.active}
        return report

    async def _reencrypt_pass(
        self,
        report: RotationReport,
        batch: int,
        on_progress: Callable[[RotationReport], None] | None,
    ) -> int:
        active = self.keyring.active.id
        changed = 0
        done = 0
        async for handle in self.all_handles():
            async with self._write_lock:
                changed += await self._reseal_handle(handle, active, report)
            done += 1
            if done % batch == 0:
                report.handles = max(report.handles, done)
                if on_progress is not None:
                    on_progress(report)
                await asyncio.sleep(0)  # let readers and writers in between batches
        report.handles = max(report.handles, done)
        return changed

    async def _reseal_handle(self, handle: str, active: bytes, report: RotationReport) -> int:
        raw = await self.inner.get_handle(handle)
        if not raw:
            return 0
        stale = [v for v in raw if needs_seal(v) and sealed_key_id(v.data) != active]
        if not stale:
            return 0
        fresh = [replace(v, data=self._reseal(handle, v)) for v in stale]
        if await self.inner.get_handle(handle) != raw:  # another process wrote meanwhile
            return 1  # counted as a change, so another pass looks again
        await self.inner.modify_values(handle, fresh)
        report.values_resealed += len(fresh)
        return len(fresh)

    def _reseal(self, handle: str, v: HandleValue) -> bytes:
        clear = unseal(self.keyring, handle, v) if is_sealed(v.data) else bytes(v.data)
        return seal(self.keyring, handle, replace(v, data=clear), self._random)


class _SealingAtomic:
    """The engine's ``Atomic``, with the versions its effects keep sealed."""

    def __init__(self, store: EncryptedStore, inner: Atomic) -> None:
        self._store, self._inner = store, inner
        self.serial = inner.serial

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._inner.execute(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return await self._inner.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any] | None:
        return await self._inner.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._inner.fetchval(sql, *args)

    async def apply(self, effects: Effects) -> None:
        await self._inner.apply(self._store._seal_effects(effects))
