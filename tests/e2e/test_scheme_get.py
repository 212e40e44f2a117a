"""``idnode get`` with a scheme's name (urn:oid:, ecode:, gs1:) against a real ``idnode
serve`` over UDP, TCP and HTTP, and a Digital Link scan over a real socket: each reaches the
mapped Handle identifier through the node's one resolver; a malformed name is a one-line
error and a non-zero exit."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator

import httpx
import orjson
import pytest

from idnode.app import open_node
from idnode.auth.identity import Identity
from idnode.config import load_config
from idnode.model import URL, HandleValue
from idnode.runtime import system
from tests.conftest import IDNODE, RunningNode, free_port, serve_node, stop_node

PREFIX = "20.500.124"
RECORDS = {
    f"{PREFIX}/oid/1.2.156.10011.7": "https://e.com/oid",
    f"{PREFIX}/ecode/100011234567890": "https://e.com/ecode",
    f"{PREFIX}/01/09506000134352": "https://e.com/gtin",
}


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> Iterator[RunningNode]:
    directory = tmp_path_factory.mktemp("schemes") / "node"
    port, http_port = free_port(), free_port()
    subprocess.run(
        [*IDNODE, "init", str(directory), "--name", "schemes", "--prefix", PREFIX],
        check=True, capture_output=True, text=True,
    )  # fmt: skip

    async def write() -> None:  # through the one write path, as the node's operator
        app = await open_node(load_config(directory, env={}), runtime=system())
        try:
            for handle, url in RECORDS.items():
                values = [HandleValue(1, URL, url.encode())]
                await app.admin.create_handle(Identity(f"0.NA/{PREFIX}", 300), handle, values)
        finally:
            await app.close()

    asyncio.run(write())
    running = serve_node(directory, port, http_port, PREFIX)
    yield running
    stop_node(running)


def get(node: RunningNode, name: str, protocol: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*IDNODE, "get", name, "--json", "--protocol", protocol,
         "--server", f"127.0.0.1:{node.port}", "--http", node.http_url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize("protocol", ["udp", "tcp", "http"])
@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("urn:oid:1.2.156.10011.7", "https://e.com/oid"),
        ("ecode:100011234567890", "https://e.com/ecode"),
        ("gs1:01/09506000134352", "https://e.com/gtin"),
        ("https://id.gs1.org/01/09506000134352", "https://e.com/gtin"),
    ],
)
def test_get_accepts_each_schemes_form(node, protocol, name, url):
    done = get(node, name, protocol)
    assert done.returncode == 0, done.stderr
    values = orjson.loads(done.stdout)["values"]
    assert values[0]["data"]["value"] == url


@pytest.mark.parametrize("protocol", ["udp", "http"])
def test_a_malformed_name_is_one_line_and_a_failed_exit(node, protocol):
    done = get(node, "urn:oid:1.02.3", protocol)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "response code 102" in lines[0], done.stderr  # INVALID_HANDLE
    assert "arc '02' is not a decimal number without leading zeros" in lines[0]


def test_a_digital_link_scan_over_a_socket(node):
    with httpx.Client(base_url=node.http_url) as http:
        r = http.get("/01/09506000134352/21/777")  # no serial record: the product's link
        assert (r.status_code, r.headers["location"]) == (307, "https://e.com/gtin")
        r = http.get("/01/09506000134351")
        assert r.status_code == 400 and "check digit 1 is wrong, expected 2" in r.json()["message"]
        assert http.get("/.well-known/gs1resolver").json()["name"] == "schemes"
