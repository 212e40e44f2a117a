"""Issue 17 end to end: a primary and two mirrors as real ``idnode serve`` processes.

Writes on the primary reach both mirrors (the latency is printed); a client resolving
continuously with failover loses no answer while the primary is killed with SIGKILL; a
mirror is promoted and takes writes, the other mirror follows it; the old primary comes back
fenced, refuses writes, and is re-attached as a mirror; a backup taken online is restored
into a fresh node that catches up from the primary's log without a dump.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from pathlib import Path

import pytest

from idnode.client.admin import AdminClient, AdminError
from idnode.client.resolve import ClientTimeout, request_udp, resolution_request
from idnode.codes import ResponseCode
from idnode.crypto.keys import load_private_key_pem
from idnode.model import HandleValue
from tests.conftest import IDNODE, RunningNode, eventually, free_port, serve_node, stop_node

PREFIX = "20.500.170"
OPERATOR = f"300:0.NA/{PREFIX}"
URL = HandleValue(1, "URL", b"https://example.com/r")


def idnode(*args: str) -> str:
    done = subprocess.run([*IDNODE, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def init(directory: Path, port: int, http: int, *extra: str) -> None:
    ports = ("--udp-port", str(port), "--tcp-port", str(port), "--http-port", str(http))
    idnode("init", str(directory), *ports, *extra)


def resolves(port: int, handle: str, timeout: float = 0.5) -> bool:
    try:
        reply = asyncio.run(
            request_udp("127.0.0.1", port, resolution_request(handle), timeout=timeout, attempts=1)
        )
    except (ClientTimeout, OSError):
        return False
    return reply.header.response_code == ResponseCode.SUCCESS


async def write(port: int, key, handles: list[str]) -> list[float]:
    """Create ``handles`` on the server at ``port``; the time each write was acknowledged."""
    done = []
    async with AdminClient("127.0.0.1", port, "tcp", OPERATOR, key) as c:
        await c.open_session()
        for h in handles:
            await c.create_handle(h, [URL])
            done.append(time.monotonic())
    return done


class Resolver(threading.Thread):
    """A client resolving continuously, trying the site's servers in turn (as HSJ's
    resolver does): counts answers and the requests no server answered."""

    def __init__(self, ports: list[int], handle: str) -> None:
        super().__init__(daemon=True)
        self.ports, self.handle = ports, handle
        self.answered = self.lost = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            if any(resolves(p, self.handle, 0.3) for p in self.ports):
                self.answered += 1
            else:
                self.lost += 1


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    ports = {n: (free_port(), free_port()) for n in ("p", "m1", "m2")}
    tcp = {n: f"127.0.0.1:{ports[n][0]}" for n in ports}
    init(root / "p", *ports["p"], "--prefix", PREFIX)
    key_file = root / "p" / "admin_privkey.pem"
    mirror = ("--role", "mirror", "--identity", OPERATOR, "--key", str(key_file))
    init(root / "m1", *ports["m1"], *mirror, "--primary", tcp["p"], "--primary", tcp["m2"])
    init(root / "m2", *ports["m2"], *mirror, "--primary", tcp["p"], "--primary", tcp["m1"])
    peers = {"IDNODE_REPLICATION_PEERS": f"{tcp['m1']},{tcp['m2']}"}
    nodes = {
        "p": serve_node(root / "p", *ports["p"], PREFIX, env=peers),
        "m1": serve_node(root / "m1", *ports["m1"], PREFIX),
        "m2": serve_node(root / "m2", *ports["m2"], PREFIX),
    }
    state = {"root": root, "ports": ports, "tcp": tcp, "nodes": nodes, "peers": peers,
             "key": load_private_key_pem(key_file.read_bytes()), "key_file": key_file}  # fmt: skip
    yield state
    for node in state["nodes"].values():
        if node.process.poll() is None:
            stop_node(node)


def test_writes_reach_both_mirrors(site):
    ports, key = site["ports"], site["key"]
    handles = [f"{PREFIX}/w-{i}" for i in range(20)]
    acked = asyncio.run(write(ports["p"][0], key, handles[:1]))
    eventually(lambda: resolves(ports["m1"][0], handles[0]), "the first dump of m1", 20)
    eventually(lambda: resolves(ports["m2"][0], handles[0]), "the first dump of m2", 20)
    latencies = []
    for h in handles[1:]:
        acked = asyncio.run(write(ports["p"][0], key, [h]))
        for m in ("m1", "m2"):
            seen = lambda m=m, h=h: resolves(ports[m][0], h)  # noqa: E731
            eventually(seen, f"{h} on {m}", 10, interval=0.01)
            latencies.append(time.monotonic() - acked[0])
    latencies.sort()
    print(
        f"\nreplication latency over {len(latencies)} writes x mirrors: median "
        f"{latencies[len(latencies) // 2] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms "
        "(pull interval 200 ms)"
    )
    # a write sent to a mirror is refused with 301, naming the primary
    with pytest.raises(AdminError, match="mirror") as caught:
        asyncio.run(write(ports["m1"][0], key, [f"{PREFIX}/to-a-mirror"]))
    assert caught.value.code == ResponseCode.SERVER_NOT_RESPONSIBLE


def test_a_backup_restored_catches_up_from_the_log(site):
    root, ports, key = site["root"], site["ports"], site["key"]
    asyncio.run(write(ports["p"][0], key, [f"{PREFIX}/before-backup"]))
    out = idnode("backup", str(root / "p"), str(root / "bk"))  # while the primary serves
    assert "serial" in out
    later = [f"{PREFIX}/after-backup-{i}" for i in range(5)]
    asyncio.run(write(ports["p"][0], key, later))
    identity = ("--identity", OPERATOR, "--key", str(site["key_file"]))
    idnode("restore", str(root / "bk"), str(root / "r"), "--primary", site["tcp"]["p"], *identity)
    port, http = free_port(), free_port()
    restored = serve_node(root / "r", port, http, PREFIX)
    try:
        eventually(lambda: all(resolves(port, h) for h in later), "the restored node's catch-up")
        assert resolves(port, f"{PREFIX}/before-backup")  # from the backup itself
    finally:
        output = stop_node(restored)
    assert "dumped" not in output  # it resumed the log after the backup's serial


def test_failover_promotion_fence_and_reattach(site):
    root, ports, tcp, nodes, key = (site[k] for k in ("root", "ports", "tcp", "nodes", "key"))
    asked = f"{PREFIX}/resolved-throughout"
    asyncio.run(write(ports["p"][0], key, [asked]))
    for n in ("m1", "m2"):
        eventually(lambda n=n: resolves(ports[n][0], asked), f"{asked} on {n}", 20)
    client = Resolver([ports[n][0] for n in ("p", "m1", "m2")], asked)
    client.start()
    time.sleep(0.3)
    killed = time.monotonic()
    nodes["p"].process.kill()  # kill -9 of the primary
    nodes["p"].process.wait()
    # `idnode get` given the site's servers fails over from the dead primary to a mirror
    got = subprocess.run(
        [*IDNODE, "get", asked, "--server", tcp["p"], "--server", tcp["m2"], "--timeout", "0.5",
         "--json"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert got.returncode == 0 and asked in got.stdout, got.stderr
    assert f"{tcp['p']} did not answer; asking the next server" in got.stderr
    stop_node(nodes["m1"])
    idnode("promote", str(root / "m1"))
    nodes["m1"] = serve_node(root / "m1", *ports["m1"], PREFIX)
    asyncio.run(write(ports["m1"][0], key, [f"{PREFIX}/after-failover"]))
    failover = time.monotonic() - killed
    client.stop.set()
    client.join()
    print(
        f"\nfailover: first write on the promoted mirror {failover:.1f} s after kill -9 "
        f"(stop, promote, start); resolving client: {client.answered} answers, "
        f"{client.lost} lost"
    )
    assert client.lost == 0 and client.answered > 0
    # the other mirror follows the promoted one (a newer epoch: it dumps from it)
    eventually(lambda: resolves(ports["m2"][0], f"{PREFIX}/after-failover"), "m2 following m1")

    # the old primary comes back: it finds the newer epoch at a peer and refuses writes
    nodes["p"] = serve_node(root / "p", *ports["p"], PREFIX, env=site["peers"])
    with pytest.raises(AdminError, match="fenced") as caught:
        asyncio.run(write(ports["p"][0], key, [f"{PREFIX}/split-brain"]))
    assert caught.value.code == ResponseCode.SERVER_NOT_RESPONSIBLE
    stop_node(nodes["p"])
    identity = ("--identity", OPERATOR, "--key", str(site["key_file"]))
    idnode("attach", str(root / "p"), "--primary", tcp["m1"], *identity)
    nodes["p"] = serve_node(root / "p", *ports["p"], PREFIX)
    eventually(lambda: resolves(ports["p"][0], f"{PREFIX}/after-failover"), "p re-attached")
    asyncio.run(write(ports["m1"][0], key, [f"{PREFIX}/after-reattach"]))
    for n in ("p", "m2"):
        eventually(lambda n=n: resolves(ports[n][0], f"{PREFIX}/after-reattach"), f"{n} follows")


assert RunningNode  # the fixture's nodes
