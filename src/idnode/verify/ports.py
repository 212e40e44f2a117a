"""Ports for the nodes that tests and benchmarks start on the loopback address.

Asking the kernel for port 0 and closing the socket hands back a port from the ephemeral
range, and the kernel hands the same range out to every outgoing connection: between the
pick and the child's ``bind`` a client socket may take it (CI saw ``address already in
use`` on a port picked this way). Ports below the ephemeral range are never given out
implicitly, so a port picked there stays free unless someone names it, and a per-process
cursor keeps two picks of one process apart.
"""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Iterator
from pathlib import Path

HOST = "127.0.0.1"
LOWEST = 10_000
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _first_ephemeral() -> int:
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # the Linux default; BSDs and macOS start higher still


def _candidates() -> Iterator[int]:
    top = _first_ephemeral()
    span = top - LOWEST
    if span < 1_000:  # an unusual range: fall back to the kernel's choice
        while True:
            yield 0
    start = (os.getpid() * 7_919) % span  # concurrent runs start far apart
    for step in itertools.count():
        yield LOWEST + (start + step) % span


_CURSOR = _candidates()


def _bindable(kind: int, port: int) -> int | None:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return None
        return s.getsockname()[1]


def free_port() -> int:
    """A port free for both TCP and UDP on the loopback address, never given out twice."""
    for _ in range(2_000):
        port = _bindable(socket.SOCK_STREAM, next(_CURSOR))
        if port and _bindable(socket.SOCK_DGRAM, port):
            return port
    raise OSError("no free port on the loopback address")
