"""Administration over the wire against a real ``idnode serve``, with the key ``idnode init``
made, over TCP and UDP; a refused write leaves node.db's rows exactly as they were."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from idnode.client.admin import AdminClient, AdminError
from idnode.codes import ResponseCode as RC
from idnode.crypto.keys import generate_key, load_private_key_pem
from idnode.model import URL, HandleValue
from tests.conftest import start_node, stop_node


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    node = start_node(tmp_path_factory.mktemp("wire-admin"))
    yield node
    stop_node(node)


def client(node, protocol: str, key=None) -> AdminClient:
    key = key or load_private_key_pem((node.directory / "admin_privkey.pem").read_bytes())
    return AdminClient(node.host, node.port, protocol, f"300:0.NA/{node.prefix}", private_key=key)


def dump(node) -> list[str]:
    with sqlite3.connect(node.directory / "node.db") as db:
        return list(db.iterdump())


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_admin_lifecycle_against_served_node(served, protocol):
    handle = f"{served.prefix}/e2e-{protocol}"

    async def go() -> None:
        async with client(served, protocol) as c:
            await c.create_handle(handle, [HandleValue(1, URL, b"https://example.com/1")])
            await c.add_values(handle, [HandleValue(2, "DESC", b"pump")])
            await c.modify_values(handle, [HandleValue(1, URL, b"https://example.com/2")])
            await c.remove_values(handle, [2])
            values = await c.resolve(handle)
            assert [(v.index, v.data) for v in values] == [(1, b"https://example.com/2")]
            assert handle in await c.list_handles(served.prefix)
            await c.delete_handle(handle)
            assert handle not in await c.list_handles(served.prefix)

    asyncio.run(go())


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_refused_writes_change_nothing(served, protocol):
    before = dump(served)

    async def refused(c_factory, action) -> int:
        async with c_factory() as c:
            with pytest.raises(AdminError) as exc:
                await action(c)
        return exc.value.code

    wrong = generate_key("rsa", 1024)
    new = [HandleValue(1, URL, b"https://x")]
    codes = asyncio.run(
        _all(
            refused(
                lambda: client(served, protocol, wrong),
                lambda c: c.create_handle(f"{served.prefix}/nope", new),
            ),
            refused(
                lambda: client(served, protocol),
                lambda c: c.add_values(f"{served.prefix}/demo-1", [HandleValue(1, URL, b"")]),
            ),
            refused(
                lambda: client(served, protocol), lambda c: c.create_handle("99.1/elsewhere", new)
            ),
        )
    )
    assert codes == [RC.AUTHENTICATION_FAILED, RC.VALUE_ALREADY_EXISTS, RC.SERVER_NOT_RESPONSIBLE]
    assert dump(served) == before


async def _all(*coros):
    return [await c for c in coros]
