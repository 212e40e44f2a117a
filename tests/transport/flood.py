"""A UDP flood from many addresses and a light client beside it (issue 15, item 8).

Shared by ``tests/transport/test_udp_fairness.py`` and ``bench/udp_fairness.py``. The flood
runs in its own process, round-robin over 127.0.0.x source addresses (Linux routes 127/8 to
lo), sending resolution requests as fast as one core allows and reading nothing. The light
client sends one request at a time and waits for its answer: what it gets back, out of what
it asked, is the figure. Counts, never time, decide the outcome; the wait for one answer
only bounds how long a lost one is waited for.
"""

from __future__ import annotations

import multiprocessing as mp
import socket
from dataclasses import dataclass

from idnode.codes import OpCode, OpFlag
from idnode.wire import bodies
from idnode.wire.envelope import ENVELOPE_SIZE, Envelope, decode_envelope
from idnode.wire.header import Header, decode_header
from idnode.wire.message import Message, encode_message


def resolution(handle: str, request_id: int) -> bytes:
    return encode_message(
        Message(
            Header(OpCode.RESOLUTION, flags=OpFlag.PO),
            bodies.ResolutionRequest(handle, (), ()),
            Envelope(request_id=request_id),
        )
    )


def _flood(
    target: tuple[str, int], sources: list[str], handle: str, stop, started, sent, burst: int
) -> None:
    socks = []
    for source in sources:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((source, 0))
        sock.setblocking(False)
        socks.append(sock)
    # "{handle}" asks for one cached answer; "{handle}-{n}" for identifiers that do not
    # exist, a store read each (the costly flood): 50,000 of them, so the cache cannot help
    many = "{" in handle
    datagrams = [resolution(handle.format(n=n), 7) for n in range(50_000 if many else 1)]
    count = 0
    started.release()
    while not stop.is_set():
        for sock in socks:
            for _ in range(burst):
                try:
                    sock.sendto(datagrams[count % len(datagrams)], target)
                    count += 1
                except (BlockingIOError, OSError):
                    break
        if burst < 64:
            stop.wait(0.001)  # paced: overload the node, not the kernel's loopback queue
    sent.value = count


@dataclass
class Flood:
    """``with Flood(...)``: the flood runs in a child process for the block's duration."""

    target: tuple[str, int]
    sources: list[str]
    handle: str
    processes: int = 1
    burst: int = 64  # datagrams per source per round; below 64 a round ends with a pause
    sent: int = 0

    def __enter__(self) -> Flood:
        ctx = mp.get_context("spawn")
        self._stop = ctx.Event()
        started = ctx.Semaphore(0)
        self._counts = [ctx.Value("q", 0) for _ in range(self.processes)]
        self._procs = [
            ctx.Process(
                target=_flood,
                args=(
                    self.target,
                    self.sources[i :: self.processes],
                    self.handle,
                    self._stop,
                    started,
                    c,
                    self.burst,
                ),
                daemon=True,
            )
            for i, c in enumerate(self._counts)
        ]
        for proc in self._procs:
            proc.start()
        for _ in self._procs:  # the flood is on before the block starts
            if not started.acquire(timeout=60):
                raise RuntimeError("the flood did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for proc in self._procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join()
        self.sent = sum(c.value for c in self._counts)


# HANDLE.NET's resolver (HSJ ``HandleResolver.udpRetryScheme``): three tries over UDP,
# waiting 0.5 s, then 1 s, then 1.5 s for an answer
HSJ_UDP_WAITS = (0.5, 1.0, 1.5)


def light_client(
    target: tuple[str, int],
    source: str,
    handle: str,
    count: int,
    wait: float = 0.5,
    tries: int = 1,
    waits: tuple[float, ...] | None = None,
) -> tuple[int, int]:
    """``count`` requests one at a time from ``source``, each sent up to ``tries`` times
    (``wait`` seconds apart), or once per entry of ``waits`` (waiting that long each time,
    as a resolver retries); (answered, of them successfully)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source, 0))
    answered = ok = 0
    try:
        for n in range(count):
            request_id = 100_000 + n
            request = resolution(handle, request_id)
            code = _ask(sock, target, request, request_id, waits or (wait,) * tries)
            if code is not None:
                answered += 1
                ok += code == 1
    finally:
        sock.close()
    return answered, ok


def _ask(
    sock: socket.socket,
    target: tuple[str, int],
    request: bytes,
    request_id: int,
    waits: tuple[float, ...],
) -> int | None:
    """The response code of the answer to ``request``, or None after every wait ran out."""
    for wait in waits:
        sock.settimeout(wait)
        sock.sendto(request, target)
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if decode_envelope(data[:ENVELOPE_SIZE]).request_id != request_id:
                continue  # a late answer to an earlier request
            return decode_header(data[ENVELOPE_SIZE:]).response_code
    return None
