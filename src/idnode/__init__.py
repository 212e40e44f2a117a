"""idnode: a node for industrial internet identifiers speaking the Handle protocol."""

__version__ = "0.1.0"
