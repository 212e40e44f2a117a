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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from idnode.model import HandleValue


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
    async def list_handles(self, prefix: str, *, offset: int = 0, limit: int | None = None) -> list[str]:
        """Handles under ``prefix`` (``prefix/...``), sorted by key."""

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
    raise ValueError(f"unknown store URL {url!r} (expected sqlite:///path)")
