"""End-to-end resolution rate of one ``idnode serve`` process, over UDP, TCP and HTTP.

Reproduce:  .venv/bin/python bench/resolve.py [--seconds 5] [--concurrency 64]

Initialises a throw-away node with 10,000 identifiers, starts ``idnode serve`` on free
loopback ports, and drives it from this process (one asyncio client, closed loop with
``concurrency`` requests outstanding). The client shares the machine's cores with the server,
so the figures are a floor. Prints figures; asserts nothing. The full load generator with
several client processes and HDR histograms is ``idnode bench`` (speed issue).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

from idnode.transport.client import resolution_request
from idnode.wire.envelope import ENVELOPE_SIZE, decode_envelope
from idnode.wire.message import encode_message

IDNODE = [sys.executable, "-m", "idnode"]
PREFIX = "20.500.777"
COUNT = 10_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(sorted_values: list[float], p: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


def report(label: str, latencies: list[float], seconds: float, errors: int) -> None:
    latencies.sort()
    n = len(latencies)
    if not n:
        print(f"{label:5} no answers ({errors} errors)")
        return
    print(
        f"{label:5} {n / seconds:9.0f} answers/s   p50 {percentile(latencies, .5)*1e3:6.2f} ms"
        f"   p99 {percentile(latencies, .99)*1e3:6.2f} ms   max {latencies[-1]*1e3:6.2f} ms"
        f"   errors {errors}"
    )


class UDPLoad(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiting: dict[int, tuple[float, asyncio.Future]] = {}

    def datagram_received(self, data: bytes, addr) -> None:
        rid = decode_envelope(data[:ENVELOPE_SIZE]).request_id
        entry = self.waiting.pop(rid, None)
        if entry and not entry[1].done():
            entry[1].set_result(data)


async def udp_load(port: int, seconds: float, concurrency: int) -> None:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        UDPLoad, remote_addr=("127.0.0.1", port)
    )
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    counter = iter(range(1, 1 << 30))

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            rid = next(counter)
            msg = resolution_request(f"{PREFIX}/item-{random.randrange(COUNT)}", request_id=rid)
            fut = loop.create_future()
            t0 = time.perf_counter()
            proto.waiting[rid] = (t0, fut)
            transport.sendto(encode_message(msg))
            try:
                await asyncio.wait_for(fut, 1.0)
                latencies.append(time.perf_counter() - t0)
            except TimeoutError:
                proto.waiting.pop(rid, None)
                errors += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    report("udp", latencies, time.perf_counter() - start, errors)
    transport.close()


async def tcp_load(port: int, seconds: float, concurrency: int) -> None:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            msg = resolution_request(f"{PREFIX}/item-{random.randrange(COUNT)}")
            t0 = time.perf_counter()
            writer.write(encode_message(msg))
            head = await reader.readexactly(ENVELOPE_SIZE)
            await reader.readexactly(decode_envelope(head).message_length)
            latencies.append(time.perf_counter() - t0)
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, 32))))
    report("tcp", latencies, time.perf_counter() - start, 0)


async def http_load(port: int, seconds: float, concurrency: int) -> None:
    """Keep-alive HTTP/1.1 GETs over raw streams: a Python HTTP client library would be the
    bottleneck long before the server is."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            path = f"/api/handles/{PREFIX}/item-{random.randrange(COUNT)}"
            t0 = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            if head.startswith(b"HTTP/1.1 200"):
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, 32))))
    report("http", latencies, time.perf_counter() - start, errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        node = Path(tmp) / "node"
        port, http_port = free_port(), free_port()
        subprocess.run([*IDNODE, "init", str(node), "--prefix", PREFIX, "--udp-port", str(port),
                        "--tcp-port", str(port), "--http-port", str(http_port)],
                       check=True, capture_output=True)
        records = Path(tmp) / "records.jsonl"
        with records.open("wb") as fh:
            for i in range(COUNT):
                fh.write(orjson.dumps({"handle": f"{PREFIX}/item-{i}", "values": [
                    {"index": 1, "type": "URL", "data": f"https://example.org/item/{i}"},
                    {"index": 2, "type": "DESC", "data": "bench item"}]}) + b"\n")
        subprocess.run([*IDNODE, "load", str(node), str(records)], check=True,
                       capture_output=True)
        server = subprocess.Popen([*IDNODE, "serve", str(node)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    httpx.get(f"http://127.0.0.1:{http_port}/healthz", timeout=0.5)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
                  f"Python {platform.python_version()}; {COUNT} identifiers, one server process")
            asyncio.run(udp_load(port, args.seconds, args.concurrency))
            asyncio.run(tcp_load(port, args.seconds, args.concurrency))
            asyncio.run(http_load(http_port, args.seconds, args.concurrency))
        finally:
            server.terminate()
            server.wait(10)
    print(f"reproduce: .venv/bin/python bench/resolve.py --seconds {args.seconds:g} "
          f"--concurrency {args.concurrency}")


if __name__ == "__main__":
    main()
