"""Storage of handles, values, homed prefixes and the transaction log.

``Store`` is the engine-neutral interface; ``open_store(url)`` picks an engine from a URL
(``sqlite:///path/to/node.db``).
"""

from idnode.store.base import Store, Transaction, open_store

__all__ = ["Store", "Transaction", "open_store"]
