"""Storage of everything a node knows: handles, values, homed prefixes, the transaction log,
and the governance tables beside them.

``Store`` is the engine-neutral interface; ``open_store(url)`` picks an engine from a URL
(``sqlite:///path/to/node.db`` or ``postgresql://user@host/db``).
"""

from collections.abc import Callable

from idnode.store.base import AnswerEncoder, Store, Transaction

__all__ = ["Store", "Transaction", "open_store"]


def open_store(
    url: str, *, clock: Callable[[], float], answers: AnswerEncoder | None = None
) -> Store:
    """Make (not yet open) the engine named by ``url``; ``clock`` stamps its transaction log;
    ``answers`` encodes the public answers it keeps (``Store.public_answer``)."""
    if url.startswith("sqlite://"):
        from idnode.store.sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite://"), clock=clock, answers=answers)
    if url.startswith(("postgresql://", "postgres://")):
        from idnode.store.postgres import PostgresStore

        return PostgresStore.from_url(url, clock=clock, answers=answers)
    raise ValueError(
        f"unknown store URL {url!r} (expected sqlite:///path or postgresql://user@host/db)"
    )
