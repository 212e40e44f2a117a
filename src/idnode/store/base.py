"""The storage interface every engine implements.

Rules every engine keeps:

* Handles are looked up by ``idnode.model.handle_key`` (case-insensitive ASCII) but stored
  and returned with the spelling they were created with.
* Every write is one transaction: it either happens whole, with one new row in the
  transaction log whose ``serial`` is one more than the last, or raises and changes nothing.
* Errors are ``idnode.errors`` exceptions (HandleNotFound, HandleAlreadyExists,
  ValueNotFound, ValueAlreadyExists, ...), never engine exceptions.
* Values come back sorted by index.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from typing import Any, Protocol

from idnode.codes import Permission, TTLType
from idnode.errors import InvalidHandle, InvalidValue
from idnode.model import HandleValue, PublicAnswer, StoredWire, ValueReference, handle_key
from idnode.store.effects import NO_EFFECTS, Effects
from idnode.store.governance import SELECT_VERSIONS
from idnode.store.rows import decode_record

SerialCallback = Callable[[int], None]


# kept for a record whose anonymous answer is not a list of values (the encoder said None), so
# that ``fill_public_answers`` knows it was looked at; read back as None (the full path)
NOT_SERVED = PublicAnswer(b"", b"", True)


class AnswerEncoder(Protocol):
    """Encodes a record's public answer (``wire.public_answer``, given to the engine by the
    composition root: the store does not speak the wire). ``layout`` does the same for the
    records of one bulk-load row group, encoding what they share once. Values may come in
    any order (a create passes them as given, not read back): the answer lists them in
    index order."""

    def __call__(self, values: Sequence[HandleValue]) -> PublicAnswer | None: ...

    def layout(
        self, layout: Sequence[HandleValue]
    ) -> Callable[[Sequence[bytes]], PublicAnswer | None]: ...


@functools.lru_cache(maxsize=64)
def layout_answers(
    answers: AnswerEncoder, layout: tuple[HandleValue, ...]
) -> Callable[[Sequence[bytes]], PublicAnswer | None]:
    """``answers.layout(layout)``, built once per layout and encoder (a load's groups repeat
    a few layouts many times, and building one costs far more than using it)."""
    return answers.layout(layout)


@dataclass(frozen=True, slots=True)
class RowGroup:
    """Records that share every value field but the data: the unit of a fast bulk load.

    Bulk import writes millions of records built from one template, which differ only in
    their handles and value data. Checking and encoding index, type, permissions, TTL,
    timestamp and references once per group instead of once per value is what lets a load
    keep pace with the engine. ``layout`` holds one value per slot (its ``data`` is ignored);
    each row is ``(handle, data of each slot)``. The record it stands for is the layout with
    each slot's data filled in (see ``expand``).
    """

    layout: tuple[HandleValue, ...]
    rows: Sequence[tuple[str, tuple[bytes, ...]]]

    def expand(self) -> Iterator[tuple[str, list[HandleValue]]]:
        """The records as ``load`` takes them (the slow path, and the reference for tests)."""
        layout = self.layout
        for handle, datas in self.rows:
            if len(datas) != len(layout):
                raise InvalidValue(_row_width_message(handle, len(datas), len(layout)))
            yield handle, [replace(v, data=d) for v, d in zip(layout, datas, strict=True)]


@dataclass(frozen=True, slots=True)
class Transaction:
    """One committed write, as kept in the transaction log (used for replication and audit)."""

    serial: int
    timestamp: int
    action: str  # create | delete | add | modify | remove | home | unhome | load
    handle: str


@dataclass(frozen=True, slots=True)
class KeptVersion:
    """One version of a record from the history (``values`` None: deleted or a state)."""

    time: int
    actor: str
    action: str
    values: list[HandleValue] | None


class Atomic(Protocol):
    """A governance transaction opened by ``Store.atomic``: portable SQL (``store.portable``)
    read and written in one transaction whose log row is ``serial``; ``apply`` adds effects
    (versions, audit entries, counts) to it. All or nothing, like every write."""

    serial: int

    async def execute(self, sql: str, *args: Any) -> int:
        """Run a statement; the rows it touched."""

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]: ...

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any] | None: ...

    async def fetchval(self, sql: str, *args: Any) -> Any: ...

    async def apply(self, effects: Effects) -> None: ...


class Store(abc.ABC):
    """Async storage of handle records and of everything else a node knows (governance)."""

    # -- lifecycle -------------------------------------------------------------------------
    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and create or migrate the schema."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- reads -----------------------------------------------------------------------------
    # Pre-encoded public answers (``model.PublicAnswer``). An engine given an ``AnswerEncoder``
    # keeps one beside every record it writes, in the same transaction, and every write that
    # changes a record replaces or drops it, so one is never older than its record. None
    # means "take the full path": no such handle, no encoder, a record written before the
    # answers existed, or one whose anonymous answer is not a list of values.
    inline_answers = False  # whether ``public_answer_now`` reads without waiting

    async def public_answer(self, handle: str) -> PublicAnswer | None:
        """The stored public answer of ``handle``, or None (engines without them: always)."""
        return None

    def public_answer_now(self, handle: str) -> PublicAnswer | None:
        """``public_answer`` without an await, for engines whose ``inline_answers`` is True
        (the caller checks it first; the others answer None)."""
        return None

    def public_wire_now(self, handle: str) -> StoredWire | None:
        """The wire half of ``public_answer_now``: what a resolution over UDP or TCP needs.
        Engines that can read it alone (SQLite: a covering index, one B-tree descent instead
        of the key's and then the row's) override it."""
        answer = self.public_answer_now(handle)
        return None if answer is None else StoredWire(answer.wire, answer.restricted)

    async def fill_public_answers(self, after: str = "", batch: int = 1000) -> str | None:
        """Encode the public answers of up to ``batch`` records after key ``after`` (in key
        order) that have none: records written before the answers existed (the migration
        adds an empty table). One transaction per batch, serialised with every write to
        those records, so a write meanwhile is never overwritten by an older answer. Returns
        the last key looked at (pass it back), or None when every record was looked at.
        Engines without answers, or without an encoder, have nothing to fill."""
        return None

    @abc.abstractmethod
    async def get_handle(self, handle: str) -> list[HandleValue] | None:
        """All values of ``handle`` sorted by index, or None when it does not exist."""

    @abc.abstractmethod
    async def list_handles(
        self, prefix: str, *, offset: int = 0, limit: int | None = None
    ) -> list[str]:
        """Handles under ``prefix`` (``prefix/...``, case-insensitive), sorted by key.

        Only handles with a ``/`` are under a prefix; ``limit=None`` means all.
        """

    @abc.abstractmethod
    async def count_handles(self, prefix: str) -> int: ...

    @abc.abstractmethod
    async def homed_prefixes(self) -> list[str]:
        """Prefixes (naming authorities) this node is responsible for, e.g. ``20.500.123``."""

    @abc.abstractmethod
    async def serial(self) -> int:
        """Serial of the last committed transaction (0 for an empty log)."""

    @abc.abstractmethod
    async def transactions(self, since: int = 0, limit: int = 1000) -> list[Transaction]:
        """Log entries with serial > ``since``, oldest first."""

    # -- writes (each returns the serial of its transaction) -------------------------------
    @abc.abstractmethod
    async def create_handle(
        self,
        handle: str,
        values: Sequence[HandleValue],
        *,
        overwrite: bool = False,
        effects: Effects = NO_EFFECTS,
    ) -> int:
        """Create ``handle``; with ``overwrite`` replace an existing record whole.

        Every write method applies ``effects`` in its own transaction, after the change and
        its log row: the change and what it causes commit together or not at all."""

    @abc.abstractmethod
    async def delete_handle(self, handle: str, *, effects: Effects = NO_EFFECTS) -> int: ...

    @abc.abstractmethod
    async def add_values(
        self, handle: str, values: Sequence[HandleValue], *, effects: Effects = NO_EFFECTS
    ) -> int:
        """Add values; an index already present raises ValueAlreadyExists."""

    @abc.abstractmethod
    async def modify_values(
        self, handle: str, values: Sequence[HandleValue], *, effects: Effects = NO_EFFECTS
    ) -> int:
        """Replace values by index; a missing index raises ValueNotFound."""

    @abc.abstractmethod
    async def remove_values(
        self, handle: str, indexes: Sequence[int], *, effects: Effects = NO_EFFECTS
    ) -> int:
        """Remove values by index; a missing index raises ValueNotFound."""

    @abc.abstractmethod
    async def home_prefix(self, prefix: str, *, effects: Effects = NO_EFFECTS) -> int: ...

    @abc.abstractmethod
    async def unhome_prefix(self, prefix: str, *, effects: Effects = NO_EFFECTS) -> int: ...

    # -- governance: portable SQL over the same database ----------------------------------------
    @abc.abstractmethod
    async def apply(self, effects: Effects, *, logged: bool = True) -> int:
        """A change that writes no identifier (``effects.action``/``target`` name its log row),
        in one transaction; its serial.

        ``logged=False``: no log row and no announcement, for what no process caches and no
        mirror needs in order (resolution counts, children's reports and health checks), so
        writing it clears nobody's response cache."""

    @abc.abstractmethod
    def atomic(
        self, action: str = "registry", target: str = ""
    ) -> AbstractAsyncContextManager[Atomic]:
        """A governance transaction for changes that must read inside it (a new row's id, a
        guarded state). Commits when the block ends, rolls back if it raises."""

    @abc.abstractmethod
    async def query(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Rows of a portable read-only statement (``store.portable``), as dicts."""

    async def query_one(self, sql: str, *args: Any) -> dict[str, Any] | None:
        rows = await self.query(sql, *args)
        return rows[0] if rows else None

    async def query_point(self, sql: str, *args: Any) -> dict[str, Any] | None:
        """The row of a primary-key read (``query_one``), for reads on a request's path:
        an engine may run it inline rather than on a worker thread (SQLite, as
        ``get_handle``), so it must stay one indexed lookup."""
        return await self.query_one(sql, *args)

    async def query_value(self, sql: str, *args: Any) -> Any:
        row = await self.query_one(sql, *args)
        return None if row is None else next(iter(row.values()))

    async def reseed_ids(self) -> None:
        """Move every numbered table's id generator past the ids it holds: rows a mirror
        copied from its primary came with their ids (``store.capture``), and a promoted
        mirror's next organisation must not reuse one. SQLite's AUTOINCREMENT follows
        explicit ids by itself."""
        return None

    async def history(self, handle: str) -> list[KeptVersion]:
        """The versions the history keeps of ``handle``, oldest first."""
        rows = await self.query(SELECT_VERSIONS, handle_key(handle))
        return [
            KeptVersion(
                r["time"], r["actor"], r["action"],
                None if r["record"] is None else decode_record(r["record"]),
            )
            for r in rows
        ]  # fmt: skip

    async def subscribe(self, callback: SerialCallback) -> None:
        """Call ``callback(serial)`` on the event loop after every write committed from now on,
        by this process or any other sharing the store, so caches can be invalidated.

        Engines deliver it their own way (SQLite: at once for its own writes and by polling
        for other processes'; PostgreSQL: LISTEN/NOTIFY). Callbacks must be quick.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot announce writes")

    @abc.abstractmethod
    async def load(
        self,
        records: Iterable[tuple[str, Sequence[HandleValue]]],
        *,
        overwrite: bool = False,
        effects: Effects = NO_EFFECTS,
    ) -> int:
        """Bulk-create many handles in one transaction (all or nothing)."""

    async def load_rows(
        self,
        groups: Iterable[RowGroup],
        *,
        overwrite: bool = False,
        effects: Effects = NO_EFFECTS,
    ) -> int:
        """``load`` of the records the groups stand for, in one transaction (all or nothing).

        The same checks, errors and one log row per record as ``load``; records are logged
        group by group. Engines override it with a path that checks each layout once; this
        default simply expands the groups, so every engine supports it.
        """
        return await self.load(
            (record for group in groups for record in check_row_group(group).expand()),
            overwrite=overwrite,
            effects=effects,
        )


# -- input checks every engine shares ----------------------------------------------------------
# They live here, not in an engine, so SQLite and PostgreSQL reject exactly the same inputs with
# exactly the same errors. Ranges are the wire's (RFC 3651 3.1): anything stored must be sendable.

_INT32 = range(-(1 << 31), 1 << 31)
_UINT32 = range(0, 1 << 32)


def check_handle_name(handle: object) -> str:
    """A handle name an engine may store: a non-empty string."""
    if not isinstance(handle, str) or not handle:
        raise InvalidHandle("a handle must be a non-empty string")
    return handle


def check_prefix(prefix: object) -> str:
    """A homeable prefix: non-empty and without ``/`` (``0.NA/x`` is a handle, ``x`` a prefix)."""
    if not isinstance(prefix, str) or not prefix or "/" in prefix:
        raise InvalidHandle("a prefix must be a non-empty string without '/'")
    return prefix


def check_values(values: Iterable[HandleValue], *, allow_empty: bool = True) -> list[HandleValue]:
    """The values as a list, after checking types, wire ranges and that no index repeats.

    Messages name the index only, never the data (it may not be public).
    """
    out = list(values)
    if not out and not allow_empty:
        raise InvalidValue("no values given")
    seen: set[int] = set()
    for v in out:
        if v.__class__ is not HandleValue:
            if not isinstance(v, HandleValue):
                raise InvalidValue(f"expected HandleValue, got {type(v).__name__}")
            _check_value(v)
        elif not _plain_value_ok(v):
            _check_value(v)  # raises the message naming what is wrong, or passes
        if v.index in seen:
            raise InvalidValue(f"index {v.index} given twice")
        seen.add(v.index)
    return out


# Exact classes a plain-int field may have: the common case is decided by class identity and
# int comparisons, with no isinstance chains and no Flag arithmetic (each of those costs more
# than the whole check; bulk loads run this for every value).
_INT_CLASSES = frozenset((int, Permission, TTLType))


def _plain_value_ok(v: HandleValue) -> bool:
    """True for the usual value (ints in range, str type, bytes data, no references).

    Anything else, valid or not, goes to ``_check_value``: True here implies it would pass.
    """
    i, p, ttl, ts = v.index, v.permissions, v.ttl, v.timestamp
    return (
        i.__class__ is int
        and -0x80000000 <= i <= 0x7FFFFFFF
        and v.type.__class__ is str
        and v.data.__class__ is bytes
        and p.__class__ in _INT_CLASSES
        and 0 <= p <= 0x0F
        and v.ttl_type.__class__ in _INT_CLASSES
        and 0 <= v.ttl_type <= 1
        and ttl.__class__ is int
        and -0x80000000 <= ttl <= 0x7FFFFFFF
        and ts.__class__ is int
        and 0 <= ts <= 0xFFFFFFFF
        and not v.references
    )


def check_row_group(group: object) -> RowGroup:
    """A group whose layout passes ``check_values``; the rows are checked by ``check_row``."""
    if not isinstance(group, RowGroup):
        raise InvalidValue(f"expected RowGroup, got {type(group).__name__}")
    check_values(group.layout)
    return group


def check_row(
    handle: object, datas: Sequence[bytes], layout: tuple[HandleValue, ...]
) -> tuple[str, tuple[bytes, ...]]:
    """One row of a checked group: its handle name and one byte string per layout slot.

    Raises what ``load`` raises for the expanded record; ``bytearray``/``memoryview`` data
    come back as ``bytes``, as the engines store them.
    """
    handle = check_handle_name(handle)
    if type(datas) is not tuple:
        datas = tuple(datas)
    if len(datas) != len(layout):
        raise InvalidValue(_row_width_message(handle, len(datas), len(layout)))
    for d in datas:
        if type(d) is not bytes:
            return handle, _coerce_datas(datas, layout)
    return handle, datas  # type: ignore[return-value]


def _coerce_datas(datas: tuple[object, ...], layout: tuple[HandleValue, ...]) -> tuple[bytes, ...]:
    out = []
    for d, v in zip(datas, layout, strict=True):
        if not isinstance(d, bytes | bytearray | memoryview):
            raise InvalidValue(f"value {v.index!r}: data must be bytes")
        out.append(bytes(d))
    return tuple(out)


def _row_width_message(handle: str, got: object, width: int) -> str:
    return f"record {handle}: {got} data for {width} values"


def check_indexes(indexes: Iterable[int]) -> list[int]:
    """Indexes to remove: int32s, none twice, at least one."""
    out = list(indexes)
    if not out:
        raise InvalidValue("no indexes given")
    if not all(_is_int(i) and i in _INT32 for i in out):
        raise InvalidValue("indexes must be 32-bit integers")
    if len(set(out)) != len(out):
        raise InvalidValue("an index is given twice")
    return out


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_value(v: HandleValue) -> None:
    where = f"value {v.index!r}"
    if not (_is_int(v.index) and v.index in _INT32):
        raise InvalidValue(f"{where}: index must be a 32-bit integer")
    if not isinstance(v.type, str):
        raise InvalidValue(f"{where}: type must be a string")
    if not isinstance(v.data, bytes | bytearray | memoryview):
        raise InvalidValue(f"{where}: data must be bytes")
    if not (_is_int(v.permissions) and 0 <= v.permissions <= 0x0F):
        raise InvalidValue(f"{where}: permissions must be 4 bits")
    if v.ttl_type not in (0, 1):
        raise InvalidValue(f"{where}: ttl_type must be 0 (relative) or 1 (absolute)")
    if not (_is_int(v.ttl) and v.ttl in _INT32):
        raise InvalidValue(f"{where}: ttl must be a 32-bit integer")
    if not (_is_int(v.timestamp) and v.timestamp in _UINT32):
        raise InvalidValue(f"{where}: timestamp must be an unsigned 32-bit integer")
    for ref in v.references:
        if not (
            isinstance(ref, ValueReference)
            and isinstance(ref.handle, str)
            and _is_int(ref.index)
            and ref.index in _INT32
        ):
            raise InvalidValue(f"{where}: references must be ValueReference(handle, int32)")
