"""Issue 16: the store path answers from each record's pre-encoded public answer; it must be
byte for byte the full path's answer after every kind of write, and never a stale one.

Each engine (SQLite, the real PostgreSQL) gets one node; one test walks a record through
every write path (create, modify, add, remove, overwrite, bulk load, bulk import rows, the
encryption key's rotation-style rewrite, delete) and after each step compares, for the wire
(a datagram read inline, and a frame) and for REST, the stored answer with what the full
path (``WireHandler._answer_message``, ``Resolver.resolve``) answers the same request.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator

import orjson
import pytest

from idnode.app import open_node
from idnode.bootstrap import init_node
from idnode.codes import OpCode, OpFlag, Permission, ResponseCode
from idnode.config import load_config
from idnode.errors import IdnodeError
from idnode.model import URL, HandleValue, handle_key
from idnode.runtime import ManualClock, Runtime, SystemRandom, system
from idnode.service.resolve import ResolutionQuery
from idnode.store.base import RowGroup
from idnode.store.effects import Effects, Statement
from idnode.store.postgres import PostgresStore
from idnode.transport.http import answer_json
from idnode.transport.http_fast import CachedRestAnswers
from idnode.transport.limits import Limits
from idnode.transport.wire_handler import WireHandler
from idnode.wire import bodies
from idnode.wire.envelope import Envelope, decode_envelope
from idnode.wire.header import Header
from idnode.wire.message import Message, decode_message_bytes, encode_message
from tests.store.conftest import drop_pg_schema, pg_connect, pg_schema_for

PREFIX = "20.500.16"
H = f"{PREFIX}/pump-1"
PUBLIC = Permission.ADMIN_READ | Permission.ADMIN_WRITE | Permission.PUBLIC_READ
SECRET = Permission.ADMIN_READ | Permission.ADMIN_WRITE  # an authorised reader's only
PG_URL = "postgresql://postgres@127.0.0.1:5432/test?schema="


def request(handle: str, flags: int = 0, request_id: int = 7, **body) -> bytes:
    msg = Message(
        Header(opcode=OpCode.RESOLUTION, flags=OpFlag(flags)),
        bodies.ResolutionRequest(handle, **body),
        Envelope(request_id=request_id),
    )
    return encode_message(msg)


class Node:
    """A node on a manual clock, its wire handler (no response cache) and REST store path."""

    def __init__(self, app) -> None:
        self.app = app
        self.handler = WireHandler(app, limits=Limits.unlimited())
        self.rest = CachedRestAnswers(None, Limits.unlimited(), app.resolver)
        self.operator = min(app.admin.acl.operators, key=str)

    async def full_wire(self, datagram: bytes) -> bytes:
        env = decode_envelope(datagram[:20])
        msg = await self.handler._answer_message(env, datagram[20:], "127.0.0.1:9", busy="")
        return self.handler._encode(msg)

    async def full_rest(self, handle: str) -> bytes:
        query = ResolutionQuery(handle, public_only=True, omit_unreadable=True)
        status, body = answer_json(handle, await self.app.resolver.resolve(query))
        assert status == 200
        return orjson.dumps(body)

    async def stored_wire(self, datagram: bytes) -> tuple[bytes | None, bytes | None]:
        """(the inline datagram path's answer, the frame path's) — None: full path. The
        inline TCP frame path answers as the inline datagram path does."""
        inline = self.handler.answer_datagram_stored(datagram, "127.0.0.1")
        envelope = decode_envelope(datagram[:20])
        inline_frame = self.handler.answer_frame_stored(envelope, datagram[20:], "127.0.0.1")
        assert inline_frame == inline
        framed = await self.handler._answer_stored(envelope, datagram[20:], "127.0.0.1")
        return inline, framed

    def stored_rest(self, handle: str) -> bytes | None:
        answer = self.rest.answer(f"/api/handles/{handle}".encode(), [], "127.0.0.1", None)
        return None if answer is None else answer.partition(b"\r\n\r\n")[2]

    async def stored_rest_later(self, handle: str) -> bytes | None:
        """The REST store path of a store whose read waits (PostgreSQL): the answer its ASGI
        app (``StoredLater``) sends, or None when it hands the request to the full path."""
        target = f"/api/handles/{handle}".encode()
        app = self.rest.answer_later(target, [], "127.0.0.1", _full_path)
        if app is None:
            return None
        sent: list[dict] = []

        async def send(message: dict) -> None:
            sent.append(message)

        await app({"type": "http"}, None, send)
        if sent[0].get("full path"):
            return None
        assert sent[0]["status"] == 200
        return sent[1]["body"]

    async def check(self, handle: str, *, served: bool = True) -> None:
        """The store path answers exactly as the full path does (or leaves it the request)."""
        datagram = request(handle)
        inline, framed = await self.stored_wire(datagram)
        if self.inline:
            assert inline == framed
        else:
            assert inline is None  # (PostgreSQL: read in the request's task, not inline)
        if not served:
            assert framed is None and self.stored_rest(handle) is None
            assert self.inline or await self.stored_rest_later(handle) is None
            return
        assert framed == await self.full_wire(datagram)
        if self.inline:
            assert self.stored_rest(handle) == await self.full_rest(handle)
        else:
            assert self.stored_rest(handle) is None  # (read later, in a task)
            assert await self.stored_rest_later(handle) == await self.full_rest(handle)

    @property
    def inline(self) -> bool:
        return self.app.store.inline_answers


async def _full_path(scope: dict, receive, send) -> None:
    """Stands for the node's ASGI app: says it was asked."""
    await send({"full path": True})


@pytest.fixture(params=["sqlite", "postgres"])
async def node(request, tmp_path) -> AsyncIterator[Node]:
    directory = tmp_path / "node"
    url = ""
    if request.param == "postgres":
        await drop_pg_schema(directory)
        url = PG_URL + pg_schema_for(directory)
    await init_node(directory, name="stored", prefixes=[PREFIX], runtime=system(), store_url=url)
    clock = ManualClock()
    app = await open_node(load_config(directory, env={}), runtime=Runtime(clock, SystemRandom()))
    try:
        yield Node(app)
    finally:
        await app.close()
        if request.param == "postgres":
            await drop_pg_schema(directory)
        shutil.rmtree(directory, ignore_errors=True)


def url(index: int, text: str, perms: Permission = PUBLIC) -> HandleValue:
    return HandleValue(index, URL, text.encode(), perms, timestamp=1_700_000_000 + index)


async def test_every_write_keeps_the_stored_answer_the_full_paths(node: Node) -> None:
    admin, op = node.app.admin, node.operator
    await node.check(H, served=False)  # no such handle: the full path says 100
    await admin.create_handle(op, H, [url(2, "https://b"), url(1, "https://a")])
    await node.check(H)
    await admin.modify_values(op, H, [url(1, "https://a-modified")])
    await node.check(H)
    assert b"a-modified" in (await node.stored_wire(request(H)))[1]
    await admin.add_values(op, H, [url(5, "https://e")])
    await node.check(H)
    await admin.remove_values(op, H, [2])
    await node.check(H)
    assert b"https://b" not in (await node.stored_wire(request(H)))[1]
    await admin.create_handle(op, H, [url(9, "https://over")], overwrite=True)
    await node.check(H)
    await admin.load(op, [(H, [url(3, "https://loaded")])], overwrite=True)
    await node.check(H)
    assert b"loaded" in (await node.stored_wire(request(H)))[1]
    rows = RowGroup(
        (url(1, ""), url(2, "")), [(f"{PREFIX}/row-{n}", (b"u%d" % n, b"d")) for n in range(3)]
    )
    await admin.load_rows(op, [rows])
    for n in range(3):
        await node.check(f"{PREFIX}/row-{n}")
    await admin.delete_handle(op, H)
    await node.check(H, served=False)  # deleted: never its last answer


async def test_restricted_values_are_the_full_paths(node: Node) -> None:
    """A record with a value only an authorised reader may read: an anonymous wire query
    without PO is challenged by the full path, so the store path leaves it; with PO, and
    over REST (anonymous callers get public values), the public answer is served."""
    admin, op = node.app.admin, node.operator
    name = f"{PREFIX}/mixed"
    await admin.create_handle(op, name, [url(1, "https://pub"), url(2, "https://sec", SECRET)])
    datagram = request(name)
    inline, framed = await node.stored_wire(datagram)
    assert inline is None and framed is None
    challenge = decode_message_bytes(await node.full_wire(datagram))
    assert challenge.header.response_code == ResponseCode.AUTHENTICATION_NEEDED
    po = request(name, flags=OpFlag.PO)
    inline, framed = await node.stored_wire(po)
    assert framed is not None and framed == await node.full_wire(po)
    assert b"https://sec" not in framed
    if node.inline:
        assert inline == framed
        assert node.stored_rest(name) == await node.full_rest(name)
    # only secret values: anonymous resolution is VALUES_NOT_FOUND or a challenge, not ours
    only = f"{PREFIX}/secret"
    await admin.create_handle(op, only, [url(1, "https://sec", SECRET)])
    assert (await node.stored_wire(request(only, flags=OpFlag.PO)))[1] is None
    # typed and indexed queries take the full path
    assert (await node.stored_wire(request(name, types=("URL",))))[1] is None
    assert (await node.stored_wire(request(name, indexes=(1,))))[1] is None


async def test_a_write_without_the_encoder_drops_the_stored_answer(node: Node) -> None:
    """Another process writing without an encoder (an older tool, ``open_store`` without
    ``answers``) cannot leave the record's old answer behind: it drops it."""
    admin, op = node.app.admin, node.operator
    name = f"{PREFIX}/elsewhere"
    await admin.create_handle(op, name, [url(1, "https://first")])
    assert await node.app.store.public_answer(name) is not None
    engine = getattr(node.app.store, "inner", node.app.store)
    encoder, engine._answers = engine._answers, None
    try:
        await node.app.store.modify_values(name, [url(1, "https://second")])
    finally:
        engine._answers = encoder
    assert await node.app.store.public_answer(name) is None
    await node.check(name, served=False)
    full = decode_message_bytes(await node.full_wire(request(name)))
    assert full.body.values[0].data == b"https://second"


async def test_records_written_before_the_answers_are_filled_in(node: Node) -> None:
    """The migration leaves existing records without a stored answer (the full path serves
    them); ``fill_public_answers`` (run by ``idnode serve``) encodes them, batch by batch,
    and skips records already done or not servable."""
    store, op = node.app.store, node.operator
    engine = getattr(store, "inner", store)
    names = [f"{PREFIX}/old-{n}" for n in range(5)]
    encoder, engine._answers = engine._answers, None  # as an idnode before this release wrote
    try:
        for name in names:
            await store.create_handle(name, [url(1, f"https://{name}")])
        await store.create_handle(f"{PREFIX}/old-secret", [url(1, "https://s", SECRET)])
    finally:
        engine._answers = encoder
    for name in names:
        await node.check(name, served=False)
    after, batches = "", 0
    while after is not None:
        after = await store.fill_public_answers(after, batch=2)
        batches += 1
    assert batches >= 3  # the batch bound holds
    for name in names:
        await node.check(name)
    assert await store.public_answer(f"{PREFIX}/old-secret") is None  # looked at, not servable
    assert await store.fill_public_answers("", batch=2) is None  # nothing left to fill
    await node.app.admin.modify_values(op, names[0], [url(1, "https://renewed")])
    await node.check(names[0])


async def fill(store, batch: int = 2) -> int:
    """``fill_public_answers`` from the start to the end, as ``idnode serve`` runs it; the
    number of calls it took."""
    after, calls = "", 0
    while after is not None:
        after = await store.fill_public_answers(after, batch=batch)
        calls += 1
    return calls


async def lose_answer(store, name: str) -> None:
    """Drop a stored answer behind the write paths' back: only a walk of the handles (a
    fill that does not trust the mark) would put it back."""
    sql = "DELETE FROM {s}.public_answers WHERE key = ?"
    await store.apply(Effects(statements=(Statement(sql, (handle_key(name),)),)), logged=False)


async def test_a_filled_store_starts_without_walking_its_handles(node: Node) -> None:
    """Once a fill has looked at every record the store says so, in the transaction of the
    fill's last batch, and the next start's fill reads that mark instead of walking every
    handle; any record written without its answer clears the mark, so the fill after it
    walks again, and so does one that such a write interrupted."""
    store = node.app.store
    engine = getattr(store, "inner", store)
    await fill(store)
    kept, lost = f"{PREFIX}/filled-kept", f"{PREFIX}/filled-lost"
    for name in (kept, lost):
        await store.create_handle(name, [url(1, f"https://{name}")])  # with its answer
    await lose_answer(store, lost)
    assert await fill(store) == 1  # the mark: no walk, so the lost answer stays lost
    await fill(store)
    assert await store.public_answer(lost) is None
    encoder, engine._answers = engine._answers, None  # a tool writing without an encoder
    try:
        await store.create_handle(f"{PREFIX}/filled-bare", [url(1, "https://bare")])
    finally:
        engine._answers = encoder
    await fill(store)  # the write cleared the mark: this fill walks (the lost one is back)
    for name in (kept, lost, f"{PREFIX}/filled-bare"):
        await node.check(name)
    # a fill interrupted by such a write leaves no mark: the next one walks again
    await lose_answer(store, lost)
    assert await store.fill_public_answers("", batch=1) is None  # marked: nothing to do
    encoder, engine._answers = engine._answers, None
    try:
        await store.modify_values(kept, [url(1, "https://kept-again")])  # clears the mark
    finally:
        engine._answers = encoder
    first = await store.fill_public_answers("", batch=1)  # walks: starts a fill
    assert first is not None
    encoder, engine._answers = engine._answers, None
    try:
        await store.create_handle(f"{PREFIX}/filled-meanwhile", [url(1, "https://m")])
    finally:
        engine._answers = encoder
    after = first
    while after is not None:
        after = await store.fill_public_answers(after, batch=1)
    await lose_answer(store, lost)
    await fill(store)  # the interrupted fill left no mark: this one walks (lost is back)
    for name in (kept, lost, f"{PREFIX}/filled-meanwhile"):
        await node.check(name)


async def test_reads_asked_together_are_answered_alike_and_together(node: Node) -> None:
    """Many store-path reads at once (PostgreSQL sends those of one turn as one query,
    ``store.batched_reads``): each caller gets its own record's answer, a missing or
    repeated name included, exactly as one read alone gives it."""
    admin, op = node.app.admin, node.operator
    names = [f"{PREFIX}/batch-{n}" for n in range(40)]
    for n, name in enumerate(names):
        await admin.create_handle(op, name, [url(1, f"https://e.com/{n}")])
    asked = [*names, f"{PREFIX}/never-made", names[3], names[3], "20.500.16/nul\x00"]
    store = node.app.store
    alone = [await store.public_answer(name) for name in asked]
    engine = getattr(store, "inner", store)
    postgres = isinstance(engine, PostgresStore)
    sent = engine._answer_reads.queries if postgres else 0
    together = await asyncio.gather(*(store.public_answer(name) for name in asked))
    assert list(together) == alone
    assert [a is None for a in alone[-4:]] == [True, False, False, True]
    assert b"https://e.com/3" in together[3].wire and together[3] == together[41]
    if postgres:  # one query for the whole turn, and a failed one fails every caller
        assert engine._answer_reads.queries - sent == 1
        conn = await pg_connect()
        table = f"{engine.schema}.public_answers"
        try:
            await conn.execute(f"ALTER TABLE {table} RENAME TO hidden_answers")
            failed = await asyncio.gather(
                *(store.public_answer(name) for name in names), return_exceptions=True
            )
        finally:
            await conn.execute(
                f"ALTER TABLE {engine.schema}.hidden_answers RENAME TO public_answers"
            )
            await conn.close()
        assert all(isinstance(f, IdnodeError) and "public_answers" in str(f) for f in failed)
        assert await store.public_answer(names[0]) == alone[0]  # and the next batch works
