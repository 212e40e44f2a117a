"""Write announcements: what response caches rely on to never serve a stale answer."""

from __future__ import annotations

import asyncio

from idnode.model import HandleValue


async def wait_for(seen: list[int], serial: int, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not seen or seen[-1] < serial:
            await asyncio.sleep(0.01)


async def test_own_writes_are_announced_in_order(store):
    seen: list[int] = []
    await store.subscribe(seen.append)
    s1 = await store.create_handle("20.500.1/a", [HandleValue(1, "URL", b"x")])
    s2 = await store.add_values("20.500.1/a", [HandleValue(2, "URL", b"y")])
    await wait_for(seen, s2)
    assert s1 < s2 and seen == sorted(seen) and seen[-1] == s2


async def test_another_store_instance_writes_are_announced(make_store):
    reader, writer = make_store(), make_store()
    await reader.open()
    await writer.open()
    try:
        seen: list[int] = []
        await reader.subscribe(seen.append)
        serial = await writer.create_handle("20.500.1/b", [HandleValue(1, "URL", b"x")])
        await wait_for(seen, serial)
        assert seen[-1] == serial
    finally:
        await writer.close()
        await reader.close()


async def test_failed_write_is_not_announced(store):
    seen: list[int] = []
    await store.create_handle("20.500.1/c", [HandleValue(1, "URL", b"x")])
    await store.subscribe(seen.append)
    try:
        await store.create_handle("20.500.1/c", [HandleValue(1, "URL", b"x")])
    except Exception:
        pass
    await asyncio.sleep(0.2)
    assert seen == []
