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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from idnode.errors import InvalidHandle, InvalidValue
from idnode.model import HandleValue, ValueReference

SerialCallback = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class Transaction:
    """One committed write, as kept in the transaction log (used for replication and audit)."""

    serial: int
    timestamp: int
    action: str  # create | delete | add | modify | remove | home | unhome | load
    handle: str


class Store(abc.ABC):
    """Async storage of handle records."""

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
        self, handle: str, values: Sequence[HandleValue], *, overwrite: bool = False
    ) -> int:
        """Create ``handle``; with ``overwrite`` replace an existing record whole."""

    @abc.abstractmethod
    async def delete_handle(self, handle: str) -> int: ...

    @abc.abstractmethod
    async def add_values(self, handle: str, values: Sequence[HandleValue]) -> int:
        """Add values; an index already present raises ValueAlreadyExists."""

    @abc.abstractmethod
    async def modify_values(self, handle: str, values: Sequence[HandleValue]) -> int:
        """Replace values by index; a missing index raises ValueNotFound."""

    @abc.abstractmethod
    async def remove_values(self, handle: str, indexes: Sequence[int]) -> int:
        """Remove values by index; a missing index raises ValueNotFound."""

    @abc.abstractmethod
    async def home_prefix(self, prefix: str) -> int: ...

    @abc.abstractmethod
    async def unhome_prefix(self, prefix: str) -> int: ...

    async def subscribe(self, callback: SerialCallback) -> None:
        """Call ``callback(serial)`` on the event loop after every write committed from now on,
        by this process or any other sharing the store, so caches can be invalidated.

        Engines deliver it their own way (SQLite: at once for its own writes and by polling
        for other processes'; PostgreSQL: LISTEN/NOTIFY). Callbacks must be quick.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot announce writes")

    @abc.abstractmethod
    async def load(
        self, records: Iterable[tuple[str, Sequence[HandleValue]]], *, overwrite: bool = False
    ) -> int:
        """Bulk-create many handles in one transaction (all or nothing)."""


def open_store(url: str) -> Store:
    """Make (not yet open) the engine named by ``url``."""
    if url.startswith("sqlite://"):
        from idnode.store.sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite://"))
    if url.startswith(("postgresql://", "postgres://")):
        from idnode.store.postgres import PostgresStore

        return PostgresStore.from_url(url)
    raise ValueError(
        f"unknown store URL {url!r} (expected sqlite:///path or postgresql://user@host/db)"
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
        if not isinstance(v, HandleValue):
            raise InvalidValue(f"expected HandleValue, got {type(v).__name__}")
        _check_value(v)
        if v.index in seen:
            raise InvalidValue(f"index {v.index} given twice")
        seen.add(v.index)
    return out


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
