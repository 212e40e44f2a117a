"""A receiver's share of its site (issue 17): a source sends a mirror server of an N-server
site only the handles that hash to it (RFC 3652 §3.4, HSJ ``RetrieveTxnRequest`` /
``DumpHandlesRequest`` ``rcvrHashType``, ``numServers``, ``serverNum``), by the same hash the
clients use (``client.sites.server_number``)."""

from __future__ import annotations

import pytest

from idnode.client.admin import AdminError
from idnode.client.sites import server_number
from idnode.codes import OpCode
from idnode.model import NA_PREFIX
from idnode.service.replication import position_of
from idnode.wire import bodies
from idnode.wire import replication as rw
from idnode.wire.site import HASH_BY_ALL, HASH_BY_PREFIX, HASH_BY_SUFFIX, decode_site
from tests.replication.test_mirror import URL, mirror_template, pair  # noqa: F401
from tests.transport.conftest import PREFIX, node_template, wire_node  # noqa: F401


async def _records(nodes, opcode: int, body: bodies.Body, dump: bool) -> tuple[list, list]:
    """(handles with values, other records: deletions, homed prefixes) of one stream."""
    loop = nodes.loop
    address = loop.sources[0]
    parser = rw.StreamParser(dump=dump, verify=loop._verifier(await loop._key(address)))
    handles, others = [], []
    async for chunk in loop.client(address).stream(opcode, body):
        for event in parser.feed(chunk):
            if isinstance(event, rw.DumpHandle):
                handles.append(event.handle)
            elif isinstance(event, rw.DumpPrefix):
                others.append(("prefix", event.handle))
            elif isinstance(event, rw.TxnRecord):
                if event.action in rw.WITH_VALUES:
                    handles.append(event.handle)
                else:
                    others.append((event.action, event.handle))
    assert parser.done
    return handles, others


@pytest.mark.parametrize("hash_type", [HASH_BY_ALL, HASH_BY_SUFFIX])
async def test_a_retrieve_for_two_servers_splits_the_log(pair, hash_type):  # noqa: F811
    await pair.loop.pull_once()
    since = await position_of(pair.mirror.store)
    async with pair.primary.client() as c:
        for n in range(24):
            await c.create_handle(f"{PREFIX}/share-{n}", [URL])
        await c.delete_handle(f"{PREFIX}/demo-1")

    async def share(num: int, index: int) -> tuple[list, list]:
        request = bodies.RetrieveTxnRequest(since, 0, hash_type, num, index)
        return await _records(pair, OpCode.RETRIEVE_TXN_LOG, request, dump=False)

    everything, deletions = await share(1, 0)
    assert len(everything) == 24 and deletions == [(rw.ACTION_DELETE, f"{PREFIX}/demo-1")]
    first, first_other = await share(2, 0)
    second, second_other = await share(2, 1)
    assert first and second  # 24 handles: both servers get some
    assert not set(first) & set(second)
    assert sorted(first + second) == sorted(everything)
    for index, got in ((0, first), (1, second)):
        assert all(server_number(h, hash_type, 2) == index for h in got)
    # a deletion goes to the server holding the handle
    owner = server_number(f"{PREFIX}/demo-1", hash_type, 2)
    assert (first_other, second_other)[owner] == deletions
    assert (first_other, second_other)[1 - owner] == []


async def test_a_dump_for_two_servers_splits_the_handles(pair):  # noqa: F811
    async with pair.primary.client() as c:
        for n in range(16):
            await c.create_handle(f"{PREFIX}/dump-{n}", [URL])

    async def share(num: int, index: int) -> tuple[list, list]:
        request = bodies.DumpHandlesRequest(HASH_BY_ALL, num, index)
        return await _records(pair, OpCode.DUMP_HANDLES, request, dump=True)

    everything, prefixes = await share(1, 0)
    first, first_prefixes = await share(2, 0)
    second, second_prefixes = await share(2, 1)
    assert first and second and not set(first) & set(second)
    assert sorted(first + second) == sorted(everything)
    assert all(server_number(h, HASH_BY_ALL, 2) == 0 for h in first)
    assert all(server_number(h, HASH_BY_ALL, 2) == 1 for h in second)
    # every server of the site homes the prefixes
    assert first_prefixes == second_prefixes == prefixes == [("prefix", NA_PREFIX + PREFIX)]


async def test_by_prefix_one_server_holds_the_whole_prefix(pair):  # noqa: F811
    owner = server_number(f"{PREFIX}/anything", HASH_BY_PREFIX, 2)
    shares = []
    for index in (0, 1):
        request = bodies.DumpHandlesRequest(HASH_BY_PREFIX, 2, index)
        shares.append(await _records(pair, OpCode.DUMP_HANDLES, request, dump=True))
    under = [h for h in shares[owner][0] if h.startswith(PREFIX + "/")]
    assert under and not [h for h in shares[1 - owner][0] if h.startswith(PREFIX + "/")]


@pytest.mark.parametrize(("hash_type", "num", "index"), [(2, 2, 2), (2, 2, -1), (7, 2, 0)])
async def test_a_share_that_is_no_share_is_refused(pair, hash_type, num, index):  # noqa: F811
    request = bodies.DumpHandlesRequest(hash_type, num, index)
    with pytest.raises(AdminError, match="server"):
        await _records(pair, OpCode.DUMP_HANDLES, request, dump=True)


async def test_the_mirror_asks_for_its_own_share(pair):  # noqa: F811
    """Our mirror's site is one server (``service.site.build_site``, what ``publish-mirror``
    publishes): it asks for everything, naming its site's hash option."""
    site = decode_site(pair.mirror.site)
    assert pair.loop.share == (site.hash_option, len(site.servers), 0) == (HASH_BY_ALL, 1, 0)
    seen = []
    original = pair.loop.client(pair.loop.sources[0]).stream

    def spy(opcode, body):
        seen.append(body)
        return original(opcode, body)

    pair.loop.client(pair.loop.sources[0]).stream = spy
    await pair.loop.pull_once()
    retrieve = [b for b in seen if isinstance(b, bodies.RetrieveTxnRequest)]
    dump = [b for b in seen if isinstance(b, bodies.DumpHandlesRequest)]
    assert retrieve and dump
    for body in retrieve + dump:
        assert (body.hash_type, body.num_servers, body.server_num) == pair.loop.share
