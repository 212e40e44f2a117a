"""Resolution latency while a node is busy with something else (an import, a write load).

A process of its own sends anonymous UDP resolutions one at a time at a steady, light
rate and reports each answer's latency: what a resolver sees of the node meanwhile. Used by
``import_bulk.py --serve`` and ``writes.py --probe``; asserts nothing.
"""

from __future__ import annotations

import multiprocessing
import socket
import time
from typing import Any

PROBE_RATE = 200.0  # resolutions a second: a light, steady load


def probe(port: int, names: list[str], rate: float, stop: Any, out: Any) -> None:
    """Body of the resolver process: anonymous UDP resolutions of ``names`` round robin,
    paced at ``rate`` a second, one at a time, until ``stop`` is set; sends back each
    request's latency in seconds (None: no answer within a second)."""
    from idnode.codes import OpCode
    from idnode.wire import bodies
    from idnode.wire.envelope import Envelope
    from idnode.wire.header import Header
    from idnode.wire.message import Message, encode_message

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(1.0)
    latencies: list[float | None] = []
    n, start = 0, time.monotonic()
    while not stop.is_set():
        body = bodies.ResolutionRequest(names[n % len(names)])
        msg = Message(Header(opcode=OpCode.RESOLUTION), body, Envelope(request_id=n + 1))
        sent = time.monotonic()
        sock.sendto(encode_message(msg), ("127.0.0.1", port))
        try:
            while int.from_bytes(sock.recv(65536)[8:12], "big") != n + 1:
                pass  # a late answer to an earlier request
            latencies.append(time.monotonic() - sent)
        except TimeoutError:
            latencies.append(None)
        n += 1
        ahead = start + n / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    out.put(latencies)


class Prober:
    """Runs ``probe`` in a spawned process between ``start()`` and ``stop()``."""

    def __init__(self, port: int, names: list[str], rate: float = PROBE_RATE) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.rate = rate
        self._stop, self._out = ctx.Event(), ctx.Queue()
        self._process = ctx.Process(target=probe, args=(port, names, rate, self._stop, self._out))

    def start(self) -> None:
        self._process.start()

    def stop(self) -> list[float | None]:
        self._stop.set()
        latencies = self._out.get(timeout=30)
        self._process.join()
        return latencies

    def summary(self, latencies: list[float | None]) -> str:
        answered = sorted(x for x in latencies if x is not None)
        lost = len(latencies) - len(answered)
        if not answered:
            return f"{len(latencies):,} resolutions at {self.rate:g}/s, none answered"
        p50, p99 = answered[len(answered) // 2], answered[int(len(answered) * 0.99)]
        return (
            f"{len(latencies):,} resolutions at {self.rate:g}/s, p50 {p50 * 1e3:.2f} ms,"
            f" p99 {p99 * 1e3:.2f} ms, max {answered[-1] * 1e3:.2f} ms,"
            f" {lost} unanswered within 1 s"
        )
