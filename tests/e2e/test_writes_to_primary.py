"""Issue 17, item 2, for writes: ``idnode admin ... --sites`` sends a write to the prefix's
primary site, whatever server it was pointed at.

Real ``idnode serve`` processes: a primary and a mirror; the primary publishes the mirror's
site and the prefix record then lists the mirror's HS_SITE *first* (lower index), so a client
that took the first listed site would write to the mirror. Pointed at the mirror with
``--sites``, every write reaches the primary (RFC 3652 §3.3: writes go to a primary site)
and comes back to the mirror by replication; without ``--sites`` the mirror's refusal says
what to do. With the primary down the write fails in one line with a non-zero exit, and
nothing lands on the mirror.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from idnode.client.admin import AdminClient
from idnode.client.resolve import ClientTimeout, request_udp, resolution_request
from idnode.client.sites import sites_of
from idnode.codes import ResponseCode
from idnode.crypto.keys import load_private_key_pem
from idnode.model import HS_SITE, NA_PREFIX
from tests.conftest import IDNODE, eventually, free_port, serve_node, stop_node

PREFIX = "20.500.172"
OPERATOR = f"300:0.NA/{PREFIX}"
RECORD = NA_PREFIX + PREFIX


def idnode(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*IDNODE, *args], capture_output=True, text=True, timeout=60)


def ok(*args: str) -> str:
    done = idnode(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def answer(port: int, handle: str):
    try:
        return asyncio.run(
            request_udp("127.0.0.1", port, resolution_request(handle), timeout=0.5, attempts=1)
        )
    except (ClientTimeout, OSError):
        return None


def values(port: int, handle: str) -> dict[int, bytes] | None:
    """``{index: data}`` of ``handle`` at the server on ``port``, None unless found."""
    reply = answer(port, handle)
    if reply is None or reply.header.response_code != ResponseCode.SUCCESS:
        return None
    return {v.index: v.data for v in reply.body.values}


def listed_sites(port: int) -> list[bool]:
    """Whether each HS_SITE of the prefix record is primary, in index order."""
    reply = answer(port, RECORD)
    if reply is None or reply.header.response_code != ResponseCode.SUCCESS:
        return []
    stored = sorted((v for v in reply.body.values if v.type == HS_SITE), key=lambda v: v.index)
    return [sites_of([v])[0].is_primary for v in stored]


async def mirror_site_first(port: int, key) -> None:
    """Swap the two HS_SITE values of the prefix record: the mirror's gets the lower index."""
    async with AdminClient("127.0.0.1", port, "tcp", OPERATOR, key) as c:
        stored = [v for v in await c.resolve(RECORD) if v.type == HS_SITE]
        first, second = sorted(stored, key=lambda v: v.index)
        await c.modify_values(
            RECORD,
            [replace(first, data=second.data), replace(second, data=first.data)],
        )


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root: Path = tmp_path_factory.mktemp("writes-primary")
    ports = {n: (free_port(), free_port()) for n in ("p", "m")}
    for name, extra in (("p", ("--prefix", PREFIX)), ("m", ())):
        port, http = ports[name]
        args = ("--udp-port", str(port), "--tcp-port", str(port), "--http-port", str(http))
        if name == "m":
            key_file = root / "p" / "admin_privkey.pem"
            extra = ("--role", "mirror", "--primary", f"127.0.0.1:{ports['p'][0]}",
                     "--identity", OPERATOR, "--key", str(key_file))  # fmt: skip
        ok("init", str(root / name), *args, *extra)
    nodes = {n: serve_node(root / n, *ports[n], PREFIX) for n in ("p", "m")}
    key_file = root / "p" / "admin_privkey.pem"
    state = {"root": root, "ports": ports, "nodes": nodes, "key_file": key_file}
    try:
        ok("publish-mirror", str(root / "p"), "--server", f"127.0.0.1:{ports['m'][0]}")
        eventually(lambda: listed_sites(ports["p"][0]) == [True, False], "the mirror published")
        asyncio.run(mirror_site_first(ports["p"][0], load_private_key_pem(key_file.read_bytes())))
        # the mirror holds the reordered record too: its own site is listed first
        eventually(lambda: listed_sites(ports["m"][0]) == [False, True], "the record replicated")
        yield state
    finally:
        for node in nodes.values():
            if node.process.poll() is None:
                stop_node(node)


def admin(site, command: str, *args: str, sites: bool = True) -> subprocess.CompletedProcess:
    """``idnode admin COMMAND ...`` pointed at the mirror, as the prefix's operator."""
    mirror = f"127.0.0.1:{site['ports']['m'][0]}"
    auth = ("--server", mirror, "--id", OPERATOR, "--key", str(site["key_file"]))
    return idnode("admin", command, *args, *auth, *(("--sites",) if sites else ()))


def test_writes_pointed_at_the_mirror_reach_the_primary(site, tmp_path):
    p, m = site["ports"]["p"][0], site["ports"]["m"][0]
    handle = f"{PREFIX}/via-sites"
    done = admin(site, "create", handle, "--value", "1:URL:https://example.com/one")
    assert done.returncode == 0, done.stderr
    assert values(p, handle) is not None  # on the primary as soon as it was acknowledged
    done = admin(site, "add-value", handle, "--value", "2:EMAIL:ops@example.com")
    assert done.returncode == 0, done.stderr
    done = admin(site, "modify-value", handle, "--value", "1:URL:https://example.com/two")
    assert done.returncode == 0, done.stderr
    done = admin(site, "remove-value", handle, "--index", "2")
    assert done.returncode == 0, done.stderr
    on_primary = values(p, handle)
    assert on_primary is not None and on_primary[1] == b"https://example.com/two"
    assert 2 not in on_primary
    # replication brings the write back to the mirror
    eventually(lambda: values(m, handle) == on_primary, "the write replicated to the mirror", 20)

    # a bulk load goes the same way, each record to the primary server it hashes to
    lines = [{"handle": f"{PREFIX}/loaded-{i}", "values": [
        {"index": 1, "type": "URL", "data": {"format": "string", "value": f"https://e.com/{i}"}}
    ]} for i in range(3)]  # fmt: skip
    file = tmp_path / "records.jsonl"
    file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    done = admin(site, "load", str(file))
    assert done.returncode == 0, done.stderr
    assert all(values(p, f"{PREFIX}/loaded-{i}") for i in range(3))

    done = admin(site, "delete", handle)
    assert done.returncode == 0, done.stderr
    assert values(p, handle) is None
    eventually(lambda: values(m, handle) is None, "the deletion replicated", 20)


def test_without_sites_the_mirror_refuses_and_says_what_to_do(site):
    done = admin(site, "create", f"{PREFIX}/to-the-mirror", "--value", "1:URL:x", sites=False)
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert "mirror" in line and "--sites" in line
    print(f"\npointed at the mirror without --sites: {line}")
    assert values(site["ports"]["p"][0], f"{PREFIX}/to-the-mirror") is None


def test_with_the_primary_down_the_write_fails_in_one_line(site):
    p, m = site["ports"]["p"][0], site["ports"]["m"][0]
    stop_node(site["nodes"]["p"])
    handle = f"{PREFIX}/while-down"
    done = admin(site, "create", handle, "--value", "1:URL:https://example.com/x",
                 "--timeout", "1")  # fmt: skip
    assert done.returncode == 1, done.stdout
    (line,) = done.stderr.strip().splitlines()
    assert "primary" in line and f"127.0.0.1:{p}" in line, line
    print(f"\nthe primary down: {line}")
    assert "Traceback" not in done.stderr
    reply = answer(m, handle)  # the mirror answers, and holds no such handle
    assert reply is not None and reply.header.response_code == ResponseCode.HANDLE_NOT_FOUND
