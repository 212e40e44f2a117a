"""Non-public values never leave the node unauthenticated: not in an answer, a list, an error
message, an HTTP header, nor a line of the server's log (issue 7, item 4).

One real ``idnode serve`` per module, its stdout+stderr going to a file, at DEBUG level so
every log line there is checked too. Hypothesis draws records -- random types and data, a
mix of public values and values without PUBLIC_READ whose data carries a distinctive
random marker -- stores each through the REST API (authenticated, Basic), then drives
unauthenticated requests at it over UDP, TCP and HTTP: every value, index and type filters,
the PO flag on and off, the proxy, a listing, error paths. No non-public marker may appear
in any byte that comes back. At the end the whole server log is searched for every marker
and for the administrator's secret.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idnode.bootstrap import init_node
from idnode.client.resolve import request_tcp, request_udp, resolution_request
from idnode.config import load_config
from idnode.runtime import ManualClock, system
from idnode.store import open_store
from idnode.wire.message import Message, encode_message
from tests.conftest import IDNODE, free_port, wait_http
from tests.transport_http.support import PREFIX, SECRET, admin_identity, basic, provision

ADMIN = basic(admin_identity(), SECRET)
HS_ADMIN_VALUE = {
    "index": 100,
    "type": "HS_ADMIN",
    "data": {
        "format": "admin",
        "value": {"index": "200", "handle": f"0.NA/{PREFIX}", "permissions": "011111110011"},
    },
}
PUBLIC, PRIVATE = "1110", "1100"  # admin read, admin write, public read, public write
TYPES = ["URL", "EMAIL", "DESC", "X_NOTE", "INTERNAL", "10320/loc"]


@dataclass
class Node:
    host: str
    port: int
    http_url: str
    process: subprocess.Popen
    log_path: Path
    markers: set[str] = field(default_factory=set)  # every non-public marker ever stored

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> Iterator[Node]:
    directory = tmp_path_factory.mktemp("leaks") / "node"
    port, http_port = free_port(), free_port()
    config = asyncio.run(
        init_node(
            directory,
            name="leaks",
            prefixes=[PREFIX],
            udp_port=port,
            tcp_port=port,
            http_port=http_port,
            runtime=system(),
        )
    )

    async def setup() -> None:
        async with open_store(
            load_config(directory, env={}).store_url, clock=ManualClock()
        ) as store:
            await provision(store)

    asyncio.run(setup())
    log_path = directory / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [*IDNODE, "serve", str(directory), "--workers", "1"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "IDNODE_LOG_FORMAT": "json", "IDNODE_LOG_LEVEL": "DEBUG"},
        )
    running = Node(config.server.host, port, f"http://127.0.0.1:{http_port}", proc, log_path)
    try:
        wait_http(running.http_url, proc)
        yield running
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- what Hypothesis draws -----------------------------------------------------------------

_TOKEN = st.text("0123456789abcdef", min_size=16, max_size=16)
_PUBLIC_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@st.composite
def records(draw) -> list[dict]:
    """1-6 values at distinct indexes; at least one without PUBLIC_READ."""
    count = draw(st.integers(1, 6))
    indexes = draw(st.lists(st.integers(1, 99), min_size=count, max_size=count, unique=True))
    private_at = draw(st.sampled_from(indexes))
    values = []
    for index in indexes:
        private = index == private_at or draw(st.booleans())
        kind = draw(st.sampled_from(TYPES))
        if private:
            data = f"LEAK{draw(_TOKEN)}K" + draw(st.text("xyz -_.", max_size=10))
        else:
            data = draw(_PUBLIC_TEXT).replace("LEAK", "leak")
        values.append(
            {
                "index": index,
                "type": kind,
                "data": {"format": "string", "value": data},
                "permissions": PRIVATE if private else PUBLIC,
            }
        )
    return values


def _private_markers(values: list[dict]) -> list[str]:
    out = []
    for v in values:
        if v["permissions"] == PRIVATE:
            text = v["data"]["value"]
            out.append(text[: text.index("K", 4) + 1])
    return out


@st.composite
def queries(draw, values: list[dict]) -> dict:
    indexes = draw(st.lists(st.sampled_from([v["index"] for v in values] + [7, 500]), max_size=3))
    types = draw(
        st.lists(st.sampled_from([v["type"] for v in values] + ["URL", "NOPE"]), max_size=2)
    )
    return {"indexes": tuple(indexes), "types": tuple(types), "po": draw(st.booleans())}


# -- asking ----------------------------------------------------------------------------------


def _wire_bytes(message: Message) -> bytes:
    """Everything a decoded wire answer holds, as bytes to search."""
    return encode_message(message) + repr(message).encode("utf-8", "replace")


async def _wire(node: Node, handle: str, q: dict) -> list[bytes]:
    out = []
    for public_only in (q["po"], not q["po"]):
        for ask in (request_udp, request_tcp):
            request = resolution_request(
                handle, indexes=q["indexes"], types=q["types"], public_only=public_only
            )
            out.append(_wire_bytes(await ask(node.host, node.port, request)))
    return out


def _http(client: httpx.Client, handle: str, q: dict) -> list[bytes]:
    params: list[tuple[str, str]] = [("index", str(i)) for i in q["indexes"]]
    params += [("type", t) for t in q["types"]]
    path = quote(handle, safe="/")
    answers = [
        client.get(f"/api/handles/{path}", params=params),
        client.get(f"/api/handles/{path}", params=[*params, ("publicOnly", "false")]),
        client.get(f"/api/handles/{path}", params=[*params, ("publicOnly", "true")]),
        client.get(f"/api/handles/{path}", params=[("index", "x")]),  # error path
        client.get(f"/api/handles/{path}", headers={"Authorization": "Basic Zm9vOmJhcg=="}),
        client.get(f"/{path}"),  # the proxy
        client.get("/api/handles", params={"prefix": PREFIX}),  # listing, no auth
        client.get(f"/api/handles/{path}", params={"callback": "cb", "pretty": ""}),
        client.delete(f"/api/handles/{path}"),  # refused: no auth
    ]
    out = []
    for r in answers:
        headers = "\n".join(f"{k}: {v}" for k, v in r.headers.items())
        out.append(headers.encode() + b"\n" + r.content)
    return out


def _assert_clean(blobs: list[bytes], markers: list[str]) -> None:
    for blob in blobs:
        for marker in markers:
            assert marker.encode() not in blob, f"non-public value {marker} leaked: {blob[:400]!r}"


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), values=records())
def test_no_unauthenticated_path_shows_non_public_values(node: Node, data, values) -> None:
    handle = f"{PREFIX}/leak-{data.draw(st.integers(0, 10**9))}"
    markers = _private_markers(values)
    node.markers.update(markers)
    with httpx.Client(base_url=node.http_url, timeout=10) as client:
        put = client.put(
            f"/api/handles/{handle}", json={"values": [HS_ADMIN_VALUE, *values]}, headers=ADMIN
        )
        assert put.status_code in (200, 201), put.text
        owner = client.get(f"/api/handles/{handle}", params={"publicOnly": "false"}, headers=ADMIN)
        assert all(m in owner.text for m in markers)  # the markers are really there
        q = data.draw(queries(values))
        blobs = _http(client, handle, q)
    blobs += asyncio.run(_wire(node, handle, q))
    _assert_clean(blobs, markers)


def test_server_log_holds_no_value_and_no_secret(node: Node) -> None:
    """Runs after the property test in this module: the log of everything it did."""
    with httpx.Client(base_url=node.http_url, timeout=10) as client:  # a failed login too
        client.get("/api/handles?prefix=" + PREFIX, headers=basic(admin_identity(), "hunter2x"))
    assert node.markers, "the property test must run first"
    text = node.log_text()
    assert text.strip(), "the server logged nothing: is the log captured?"
    for marker in node.markers:
        assert marker not in text, f"non-public value {marker} in the server log"
    assert SECRET not in text and "hunter2x" not in text
    assert "PRIVATE KEY" not in text
