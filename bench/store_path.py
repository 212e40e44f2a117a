"""Resolution where the response cache cannot help, as ratios to the Python floor (issue 16).

In one run, each server pinned to one core and each generator to the other (``taskset``
when present), on one machine:

1. **floor**: ``bench/udp_python_floor.py``, a uvloop server answering every datagram from a
   dict, no decoding and no store: what any Python UDP server on this machine can reach;
2. **UDP store path**: ``idnode serve --workers 1`` with the response cache off
   (``IDNODE_SERVER_CACHE_ENTRIES=0``), asked for all ``--count`` identifiers in a shuffled
   order (keys spread uniformly, every request a different record);
3. **UDP cached**: the same node with its cache on, asked for 10,000 identifiers after a
   warm-up;
4. **TCP store path** and **TCP cached**: ``bench/tcpblast.c``, 64 connections with one
   request in flight each, over the same identifiers;
5. **HTTP store path** and **HTTP cached**: ``wrk -t1 -c64`` cycling over the same
   identifiers (when ``wrk`` is installed).

The generators are C (``bench/udpblast.c``, 64 in flight; ``bench/tcpblast.c``), built with
the system compiler, so they are not what limits the figures. Prints figures and the
command; asserts nothing.

    .venv/bin/python bench/store_path.py [--count 1000000] [--seconds 5] [--node var-bench-store]
        [--store postgresql://postgres@127.0.0.1:5432/test?schema=bench_store]

The node directory is seeded once by ``idnode bench prepare`` (``idnode load``, the
documented path) and reused while its prefix and count match.
``--server-src DIR`` runs the node (and seeds it) from another source tree, e.g. an
earlier release unpacked with ``git archive``, for before/after figures in one run.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from idnode.codes import OpCode
from idnode.wire import bodies
from idnode.wire.envelope import Envelope
from idnode.wire.header import Header
from idnode.wire.message import Message, encode_message

HERE = Path(__file__).resolve().parent
PREFIX = "20.500.777"  # idnode bench prepare's default
HOT = 10_000  # identifiers of the cached runs
IDNODE = [sys.executable, "-m", "idnode"]
SERVER_CPU, CLIENT_CPU = "0", "1"


def pinned(cpu: str, argv: list[str]) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", cpu, *argv]
    return argv


def request(handle: str, request_id: int) -> bytes:
    """A plain resolution request, as any Handle client sends it (built by our encoder)."""
    return encode_message(
        Message(
            Header(opcode=OpCode.RESOLUTION),
            bodies.ResolutionRequest(handle),
            Envelope(request_id=request_id),
        )
    )


def request_file(path: Path, names: list[str]) -> None:
    """udpblast's REQFILE: [u16 length][request] records."""
    with path.open("wb") as fh:
        for n, name in enumerate(names, 1):
            r = request(name, n)
            fh.write(struct.pack("!H", len(r)) + r)


def build(tmp: Path, name: str) -> Path:
    """One of the C generators beside this file (udpblast, tcpblast), built here."""
    binary = tmp / name
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise SystemExit(f"no C compiler: cannot build bench/{name}.c")
    subprocess.run([compiler, "-O2", "-o", str(binary), str(HERE / f"{name}.c")], check=True)
    return binary


def blast(binary: Path, port: int, reqs: Path, seconds: float) -> tuple[float, int, int]:
    """(answers/s, answers, successes) of one closed-loop run, 64 in flight."""
    fields = generate(binary, port, reqs, seconds)
    return float(fields["rps"]), int(fields["replies"]), int(fields["ok"])


def tcp_blast(binary: Path, port: int, reqs: Path, seconds: float) -> tuple[float, int, int, str]:
    """``blast`` over TCP, 64 connections with one request in flight each, and the p99."""
    fields = generate(binary, port, reqs, seconds)
    p99 = f"{float(fields['p99_us']) / 1000:.2f}ms"
    return float(fields["rps"]), int(fields["replies"]), int(fields["ok"]), p99


def generate(binary: Path, port: int, reqs: Path, seconds: float) -> dict[str, str]:
    out = subprocess.run(
        pinned(CLIENT_CPU, [str(binary), "127.0.0.1", str(port), str(reqs), "64", str(seconds)]),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(f.split("=") for f in out.split())


def wrk(port: int, names: list[str], seconds: float, tmp: Path) -> tuple[float, str] | None:
    """(requests/s, p99) of ``wrk -t1 -c64`` cycling over ``names``; None without wrk."""
    if shutil.which("wrk") is None:
        return None
    script = tmp / f"cycle-{len(names)}.lua"
    script.write_text(
        f"local n = {len(names)}\nlocal i = 0\n"
        "request = function()\n  i = (i * 7919 + 1) % n\n"
        f'  return wrk.format("GET", "/api/handles/{PREFIX}/item-" .. i)\nend\n'
    )
    argv = ["wrk", "-t1", "-c64", f"-d{seconds:g}s", "--latency", "-s", str(script)]
    out = subprocess.run(
        pinned(CLIENT_CPU, [*argv, f"http://127.0.0.1:{port}"]),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s*([\d.]+)", out)[1])
    p99 = re.search(r"\s99%\s+(\S+)", out)[1]
    if "Non-2xx" in out:
        p99 += " (" + re.search(r"Non-2xx or 3xx responses: (\d+)", out)[1] + " non-2xx)"
    return rate, p99


def warm_page_cache(node: Path) -> None:
    """Read the node's SQLite files once, so that every path starts from the same page
    cache. UDP and TCP read only the wire index (migration 10): a REST run after them found
    the table's pages on disk after a while of other work, and its p99 was 270 ms instead
    of 3 ms (docs/performance.md, round 8). A PostgreSQL node has no such file here."""
    for path in sorted(node.glob("node.db*")):
        with path.open("rb") as fh:
            while fh.read(1 << 24):
                pass


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_udp(port: int, probe: bytes, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        while time.monotonic() < deadline:
            s.sendto(probe, ("127.0.0.1", port))
            try:
                s.recv(65536)
                return
            except OSError:
                continue
    raise SystemExit(f"nothing answers on UDP port {port}")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of process ``pid`` and its threads so far (/proc), so each
    path's cost per answer can be stated apart from how busy the machine was. The system
    part is the kernel's: on loopback a reply's ``sendmsg`` also delivers it and wakes the
    generator (``sock_def_readable``), which costs the slower server more (its generator
    sleeps between replies; the floor's seldom does)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


class Server:
    """A pinned server process, stopped on exit."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int, probe: bytes) -> None:
        self.process = subprocess.Popen(
            pinned(SERVER_CPU, argv), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            wait_udp(port, probe)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def measured(self, run):
        """``run()``'s result, and the server's (user, system) CPU µs during it."""
        pid = self.process.pid
        user, system = cpu_seconds(pid)
        result = run()
        after = cpu_seconds(pid)
        return result, ((after[0] - user) * 1e6, (after[1] - system) * 1e6)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def per(cpu_us: tuple[float, float], answers: float) -> str:
    """Server CPU per answer, and the kernel's part of it."""
    if not answers:
        return "no answers"
    user, system = cpu_us
    return f"{(user + system) / answers:.0f} µs CPU/answer ({system / answers:.0f} kernel)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--node", type=Path, default=Path("var-bench-store"))
    parser.add_argument("--server-src", type=Path, default=None)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after a start")
    parser.add_argument(
        "--store", default=None, help="store URL of a new node (default: SQLite in --node)"
    )
    args = parser.parse_args()
    env = dict(os.environ)
    if args.server_src is not None:
        env["PYTHONPATH"] = str(args.server_src.resolve())
    node = args.node.resolve()
    started = time.monotonic()
    store = ["--store", args.store] if args.store else []
    subprocess.run(
        [*IDNODE, "bench", "prepare", str(node), "--count", str(args.count), *store],
        check=True,
        env=env,
    )
    seeded = time.monotonic() - started
    warm_page_cache(node)
    config = tomllib.loads((node / "idnode.toml").read_text())["server"]
    udp, tcp, http = config["udp_port"], config["tcp_port"], config["http_port"]
    everyone = [f"{PREFIX}/item-{i}" for i in range(args.count)]
    random.Random(16).shuffle(everyone)  # uniform over all keys, in no key order
    hot = [f"{PREFIX}/item-{i}" for i in range(min(HOT, args.count))]
    probe = request(hot[0], 1)
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        blaster, tcp_blaster = build(tmp, "udpblast"), build(tmp, "tcpblast")
        all_reqs, hot_reqs = tmp / "all.bin", tmp / "hot.bin"
        request_file(all_reqs, everyone)
        request_file(hot_reqs, hot)

        port = free_udp_port()
        floor_argv = [sys.executable, str(HERE / "udp_python_floor.py"), str(port)]
        with Server(floor_argv, env, port, probe) as server:
            (floor, got, _), cpu = server.measured(
                lambda: blast(blaster, port, all_reqs, args.seconds)
            )
        rows.append(("UDP floor (Python, no decoding, no store)", floor, per(cpu, got)))

        serve = [*IDNODE, "serve", str(node), "--workers", "1"]
        off = {**env, "IDNODE_SERVER_CACHE_ENTRIES": "0"}
        with Server(serve, off, udp, probe) as server:
            time.sleep(args.settle)  # (the start's own work: filling answers of old records)
            (rate, got, ok), cpu = server.measured(
                lambda: blast(blaster, udp, all_reqs, args.seconds)
            )
            name = f"UDP store path, cache off, {args.count:,} ids"
            rows.append((name, rate, f"{per(cpu, got)}, {ok}/{got} ok"))
            (rate, got, ok, p99), cpu = server.measured(
                lambda: tcp_blast(tcp_blaster, tcp, all_reqs, args.seconds)
            )
            name = "TCP store path, cache off, 64 connections"
            rows.append((name, rate, f"{per(cpu, got)}, {ok}/{got} ok, p99 {p99}"))
            web, cpu = server.measured(lambda: wrk(http, everyone, args.seconds, tmp))
            if web is not None:
                name = "HTTP REST store path, cache off, wrk -c64"
                rows.append((name, web[0], f"{per(cpu, web[0] * args.seconds)}, p99 {web[1]}"))
        on = {**env, "IDNODE_SERVER_CACHE_ENTRIES": str(2 * HOT)}
        with Server(serve, on, udp, probe) as server:
            time.sleep(args.settle)
            blast(blaster, udp, hot_reqs, 2)  # warm-up: every hot answer computed once
            (rate, got, ok), cpu = server.measured(
                lambda: blast(blaster, udp, hot_reqs, args.seconds)
            )
            rows.append((f"UDP cached, {len(hot):,} ids", rate, f"{per(cpu, got)}, {ok}/{got} ok"))
            (rate, got, ok, p99), cpu = server.measured(
                lambda: tcp_blast(tcp_blaster, tcp, hot_reqs, args.seconds)
            )
            name = f"TCP cached, {len(hot):,} ids, 64 connections"
            rows.append((name, rate, f"{per(cpu, got)}, {ok}/{got} ok, p99 {p99}"))
            wrk(http, hot, 2, tmp)  # warm-up
            web, cpu = server.measured(lambda: wrk(http, hot, args.seconds, tmp))
            if web is not None:
                name = f"HTTP REST cached, {len(hot):,} ids, wrk -c64"
                rows.append((name, web[0], f"{per(cpu, web[0] * args.seconds)}, p99 {web[1]}"))
    pinning = "taskset: server on CPU 0, generator on CPU 1" if shutil.which("taskset") else ""
    print(f"\nstore path (issue 16), {os.cpu_count()} cores, {pinning}; node seeded/checked in "
          f"{seeded:.0f} s; {args.seconds:g} s per run, 64 in flight")  # fmt: skip
    print(f"{'path':<52} {'answers/s':>10} {'of floor':>9}  server CPU per answer, notes")
    for name, rate, note in rows:
        print(f"{name:<52} {rate:>10,.0f} {rate / floor:>8.0%}  {note}")
    src = f" --server-src {args.server_src}" if args.server_src else ""
    src += f" --store '{args.store}'" if args.store else ""
    print(
        f"reproduce: .venv/bin/python bench/store_path.py --count {args.count} "
        f"--seconds {args.seconds:g} --node {args.node}{src}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
