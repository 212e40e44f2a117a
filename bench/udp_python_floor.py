"""The Python floor of UDP resolution on this machine (issue 16's marks are ratios to it).

A uvloop datagram server that answers every request with a fixed 330-byte answer found in a
dict keyed by the request bytes after the envelope: no decoding, no store, no idnode code.
Whatever idnode adds above it is its own cost. ``bench/store_path.py`` runs it pinned to one
core against ``bench/udpblast.c`` on the other. From the project's shared measuring tools
(``udp_baseline.py``), the same server.

    .venv/bin/python bench/udp_python_floor.py PORT
"""

from __future__ import annotations

import asyncio
import sys

import uvloop

REPLY_BODY = b"\x00" * 310


class Floor(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.cache: dict[bytes, bytes] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        reply = self.cache.get(data[20:])
        if reply is None:
            reply = self.cache[data[20:]] = REPLY_BODY
        self.transport.sendto(data[:20] + reply, addr)


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(Floor, local_addr=("127.0.0.1", port))
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))
