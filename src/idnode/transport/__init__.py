"""asyncio adapters between sockets and the sans-I/O protocol core and services."""
