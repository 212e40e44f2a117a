"""`make soak`: valid traffic beside every attack of issue 15, against one node, bounded in time.

One ``idnode serve`` (one worker, no exempt addresses: every client is rate-limited) while,
for ``--seconds`` (default 180, at most 600):

* a valid client on 127.0.1.1 resolves over UDP (up to 3 tries, as resolvers do), TCP and
  HTTP, one request at a time, and counts its answers;
* attackers: TCP and HTTP clients pipelining requests and never reading (item 1); idle TCP
  connections and half-sent HTTP requests from many addresses (2); 8 MiB HTTP headers (3);
  spoofed UDP session setups "from" the valid client's address (4); oversized integers,
  disconnects mid-body and wrong credentials (5, 6); anonymous organisation applications
  (6); a UDP flood of uncached resolutions from 64 addresses (8).

Every 10 s it prints the server's RSS and descriptors; at the end the valid client's
answers, the errors it saw, and the verdict. Exit 1 if the valid client lost more than 1 %
of its answers, or the server's RSS grew by more than ``--rss-growth`` MiB (default 200)
from its level after the warm-up.

    .venv/bin/python bench/soak.py [--seconds 180] [--rss-growth 200]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import platform
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.transport helpers

from tests.transport.flood import Flood, resolution  # noqa: E402
from tests.transport.served import (  # noqa: E402
    BIG,
    PREFIX,
    SMALL,
    MiB,
    connect,
    open_fds,
    rss,
    seeded_node_dir,
    send_until_refused,
    serve,
    stop,
)

from idnode.client.resolve import request_tcp, resolution_request  # noqa: E402
from idnode.wire.envelope import ENVELOPE_SIZE, decode_envelope  # noqa: E402
from idnode.wire.header import decode_header  # noqa: E402
from idnode.wire.message import encode_message  # noqa: E402

VALID = "127.0.1.1"


@dataclass
class Where:
    """What the valid client needs of the node (a ``RunningNode`` holds a process)."""

    host: str
    port: int
    http_url: str


class Valid:
    """The valid client: one request at a time over UDP, TCP and HTTP, round-robin."""

    def __init__(self, node) -> None:
        self.node = node
        self.asked = Counter()
        self.answered = Counter()
        self.first_try = Counter()
        self.errors = Counter()

    def run(self, until: float) -> None:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((VALID, 0))
        udp.settimeout(0.5)
        http = httpx.Client(transport=httpx.HTTPTransport(local_address=VALID), timeout=10)
        n = 0
        try:
            while time.monotonic() < until:
                n += 1
                for proto, ask in (("udp", self._udp), ("tcp", self._tcp), ("http", self._http)):
                    self.asked[proto] += 1
                    try:
                        tries = ask(udp if proto == "udp" else http, n)
                        self.answered[proto] += 1
                        self.first_try[proto] += tries == 1
                    except Exception as exc:  # a lost answer: counted, the run goes on
                        self.errors[f"{proto}: {exc.__class__.__name__}: {exc}"[:120]] += 1
        finally:
            udp.close()
            http.close()

    def _udp(self, sock: socket.socket, n: int) -> int:
        for tries in (1, 2, 3):
            sock.sendto(resolution(SMALL, n), (self.node.host, self.node.port))
            try:
                while True:
                    data = sock.recv(65536)
                    if decode_envelope(data[:ENVELOPE_SIZE]).request_id == n:
                        code = decode_header(data[ENVELOPE_SIZE:]).response_code
                        if code != 1:
                            raise RuntimeError(f"code {code}")
                        return tries
            except TimeoutError:
                continue
        raise TimeoutError("no answer in 3 tries")

    def _tcp(self, _: object, n: int) -> int:
        answer = asyncio.run(
            request_tcp(self.node.host, self.node.port, resolution_request(SMALL, request_id=n))
        )
        if answer.header.response_code != 1:
            raise RuntimeError(f"code {answer.header.response_code}")
        return 1

    def _http(self, client: httpx.Client, n: int) -> int:
        response = client.get(f"{self.node.http_url}/api/handles/{SMALL}")
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")
        return 1


def _valid_process(node, until: float, out) -> None:
    """The valid client in a process of its own: the attackers' threads do not slow it."""
    valid = Valid(node)
    valid.run(until)
    valid.node = None
    out.put(valid)


def _attack_loop(name: str, until: float, step, counts: Counter) -> None:
    n = 0
    while time.monotonic() < until:
        n += 1
        try:
            step(n)
            counts[name] += 1
        except Exception:
            counts[name + " (refused or reset)"] += 1


def attacks(node) -> dict[str, object]:
    """Each attack as one step; ``_attack_loop`` repeats it until the end."""
    big_request = encode_message(resolution_request(BIG, request_id=7))
    http_get = f"GET /api/handles/{BIG} HTTP/1.1\r\nHost: n\r\n\r\n".encode()

    def non_reading_tcp(n: int) -> None:
        sock = connect(node, f"127.0.2.{n % 50 + 1}", SO_RCVBUF=16 * 1024)
        try:
            send_until_refused(sock, big_request * 500, 8 * MiB, stall=1.0)
        finally:
            sock.close()

    def non_reading_http(n: int) -> None:
        sock = connect(node, f"127.0.3.{n % 50 + 1}", node.http_port, SO_RCVBUF=16 * 1024)
        try:
            send_until_refused(sock, http_get * 200, 8 * MiB, stall=1.0)
        finally:
            sock.close()

    held: list[socket.socket] = []

    def hoard(n: int) -> None:  # idle TCP and half-sent HTTP from 100 addresses
        source = f"127.0.4.{n % 100 + 1}"
        tcp = connect(node, source)
        http = connect(node, source, node.http_port)
        http.sendall(b"GET /healthz HTTP/1.1\r\nHost: n\r\nX-Slow: ")
        held.extend((tcp, http))
        while len(held) > 3000:
            held.pop(0).close()
        time.sleep(0.002)

    def huge_header(n: int) -> None:
        sock = connect(node, f"127.0.5.{n % 50 + 1}", node.http_port)
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: n\r\nX-Big: ")
            send_until_refused(sock, b"a" * 65536, 8 * MiB, stall=1.0)
        finally:
            sock.close()

    spoof = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    spoof.bind((VALID, 0))  # a spoofed packet looks like this to the server
    setup = _session_setup()

    def spoofed_setups(n: int) -> None:
        spoof.sendto(setup, (node.host, node.port))
        time.sleep(0.05)

    bad = httpx.Client(timeout=10)

    def bad_input(n: int) -> None:
        source = f"127.0.6.{n % 50 + 1}"
        mgmt = f"{node.http_url}/api/mgmt"
        with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=10) as c:
            c.get(f"{mgmt}/audit?since={10**30}")
            c.get(f"{mgmt}/organisations/{10**30}")
            c.post(f"{mgmt}/organisations", json={"legal_name": "x", "credit_code": str(n)})
            c.get(f"{node.http_url}/api/handles/{SMALL}", auth=(f"300:{PREFIX}/ADMIN", "guess"))
            c.get(f"{node.http_url}/metrics")
        sock = connect(node, source, node.http_port)  # hang up mid-body
        head = b"POST /api/mgmt/organisations HTTP/1.1\r\nHost: n\r\nContent-Length: 9999\r\n"
        sock.sendall(head + b"Content-Type: application/json\r\n\r\n{")
        sock.close()

    return {
        "tcp pipelining, never reading": non_reading_tcp,
        "http pipelining, never reading": non_reading_http,
        "idle / half-sent connections": hoard,
        "8 MiB headers": huge_header,
        "spoofed UDP session setups": spoofed_setups,
        "bad input, 401s, applications": bad_input,
        "_cleanup": lambda: ([s.close() for s in held], spoof.close(), bad.close()),
    }


def _session_setup() -> bytes:
    from idnode.codes import OpCode
    from idnode.wire import bodies
    from idnode.wire.envelope import Envelope
    from idnode.wire.header import Header
    from idnode.wire.message import Message

    body = bodies.SessionSetupRequest(0, 60, f"0.NA/{PREFIX}", 300, b"")
    return encode_message(Message(Header(OpCode.SESSION_SETUP), body, Envelope(request_id=1)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 180)))
    parser.add_argument("--rss-growth", type=float, default=200.0, help="MiB allowed")
    parser.add_argument("--skip", default="", help="attacks left out: comma-separated words")
    args = parser.parse_args()
    seconds = min(max(args.seconds, 20.0), 600.0)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; soak {seconds:.0f} s", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        node = serve(seeded_node_dir(Path(tmp) / "node"), {"IDNODE_LIMITS_EXEMPT": ""}, log)
        try:
            return _soak(node, seconds, args.rss_growth, [w for w in args.skip.split(",") if w])
        finally:
            out = stop(node, log)
            tracebacks = out.count("Traceback")
            print(f"server log: {len(out.splitlines())} lines, {tracebacks} tracebacks")
            if tracebacks:
                Path("soak-server.log").write_text(out)
                print("server log kept in soak-server.log")


def _soak(node, seconds: float, allowed_growth: float, skip: list[str]) -> int:
    Valid(Where(node.host, node.port, node.http_url)).run(time.monotonic() + 3)  # warm-up
    base_rss, base_fds = rss(node), open_fds(node)
    print(f"after warm-up: RSS {base_rss / MiB:.0f} MiB, {base_fds} fds", flush=True)
    until = time.monotonic() + seconds
    counts: Counter = Counter()
    steps = attacks(node)
    cleanup = steps.pop("_cleanup")
    steps = {name: step for name, step in steps.items() if not any(w in name for w in skip)}
    sources = 0 if "flood" in skip else 64
    threads = [
        threading.Thread(target=_attack_loop, args=(name, until, step, counts), daemon=True)
        for name, step in steps.items()
    ]
    ctx = mp.get_context("spawn")
    result = ctx.Queue()
    where = Where(node.host, node.port, node.http_url)
    checker = ctx.Process(target=_valid_process, args=(where, until, result), daemon=True)
    peak_rss, peak_fds = base_rss, base_fds
    flood_from = [f"127.0.7.{i}" for i in range(1, sources + 1)]
    with Flood((node.host, node.port), flood_from, SMALL + "-{n}", burst=1) as flood:
        checker.start()
        for thread in threads:
            thread.start()
        while time.monotonic() < until:
            time.sleep(min(10.0, max(0.0, until - time.monotonic())))
            now_rss, now_fds = rss(node), open_fds(node)
            peak_rss, peak_fds = max(peak_rss, now_rss), max(peak_fds, now_fds)
            print(f"  RSS {now_rss / MiB:.0f} MiB, {now_fds} fds", flush=True)
        for thread in threads:
            thread.join(30)
        valid = result.get(timeout=120)
        checker.join(30)
    cleanup()
    asked, answered = sum(valid.asked.values()), sum(valid.answered.values())
    lost = 1 - answered / max(asked, 1)
    growth = (peak_rss - base_rss) / MiB
    print(f"UDP flood: {flood.sent} datagrams from {len(flood_from)} addresses")
    for name, count in sorted(counts.items()):
        print(f"attack {name}: {count}")
    for proto in ("udp", "tcp", "http"):
        print(f"valid {proto}: {valid.answered[proto]}/{valid.asked[proto]} answered "
              f"({valid.first_try[proto]} at the first try)")  # fmt: skip
    for error, count in valid.errors.most_common(10):
        print(f"valid client error x{count}: {error}")
    print(f"RSS peak {peak_rss / MiB:.0f} MiB (+{growth:.0f} MiB, bound +{allowed_growth:.0f}),"
          f" fds peak {peak_fds} (from {base_fds})")  # fmt: skip
    ok = lost <= 0.01 and growth <= allowed_growth
    print(f"{'PASS' if ok else 'FAIL'}: valid client lost {lost:.2%} of {asked} answers")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
