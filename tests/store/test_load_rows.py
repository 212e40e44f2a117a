"""``Store.load_rows``, bulk import's fast path: the same records, log, checks and errors as
``load`` (the slow path it must equal), on every engine and through the encrypting wrapper."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

import pytest

from idnode.codes import Permission, TTLType
from idnode.errors import HandleAlreadyExists, IdnodeError, InvalidHandle, InvalidValue
from idnode.model import HandleValue, ValueReference
from idnode.runtime import SeededRandom
from idnode.store.base import RowGroup, Store, _check_value, _plain_value_ok, check_values
from idnode.store.encrypted import EncryptedStore, is_sealed

from .test_encrypted import PRIVATE, PUBLIC, ring
from .test_store import P1, P2, snapshot, v

TS = 1_700_000_000


def lv(index: int, type_: str = "URL", **kw) -> HandleValue:
    """A layout slot: a value without data."""
    return HandleValue(index, type_, b"", timestamp=TS, **kw)


# Layouts that exercise every field and both ways the SQLite engine writes a layout: as
# literals in the statement, and bound row by row (text it cannot spell as a literal).
LAYOUTS: dict[str, tuple[HandleValue, ...]] = {
    "plain": (lv(1), lv(2, "EMAIL"), lv(100, "HS_ADMIN")),
    "every field": (
        HandleValue(
            2**31 - 1,
            'it\'s "quoted"',
            b"",
            Permission.ADMIN_READ,
            TTLType.ABSOLUTE,
            -(2**31),
            2**32 - 1,
            (ValueReference("0.NA/20.500", 300), ValueReference("x'y", -1)),
        ),
        lv(-(2**31), "标识", permissions=PRIVATE, ttl=0),
    ),  # fmt: skip
    "not printable": (
        lv(1, "URL\x07BEL"),
        lv(2, "TAB\ttype", references=(ValueReference("a\x01", 1),)),
    ),
    "no values": (),
}


def groups_for(prefix: str) -> list[RowGroup]:
    out = []
    for n, (name, layout) in enumerate(LAYOUTS.items()):
        rows = []
        for i in range(5):
            datas = tuple(f"{name} {i} {slot}".encode() for slot in range(len(layout)))
            rows.append((f"{prefix}/g{n}-r{i}", datas))
        out.append(RowGroup(layout, rows))
    out.append(
        RowGroup(
            LAYOUTS["plain"], [(f"{prefix}/Mixed-Case", (b"a", bytearray(b"b"), memoryview(b"c")))]
        )
    )
    out.append(RowGroup(LAYOUTS["plain"], [("no-slash-handle", (b"x", b"y", b"z"))]))
    return out  # fmt: skip


async def contents(store: Store, prefix: str) -> tuple:
    handles = await store.list_handles(prefix)
    records = {h.partition("/")[2]: await store.get_handle(h) for h in handles}
    return len(handles), await store.count_handles(prefix), records


async def test_load_rows_equals_load(store: Store) -> None:
    """The fast path and the expanded records through ``load`` give the same store."""
    slow = [record for g in groups_for(P1) for record in g.expand()]
    fast = groups_for(P2)
    fast[-1] = RowGroup(LAYOUTS["plain"], [])  # the prefix-less handle is loaded once, below
    assert await store.load(slow) == len(slow)
    assert await store.load_rows(fast) == len(slow) + len(slow) - 1
    assert await contents(store, P1) == await contents(store, P2)
    got = await store.get_handle(f"{P2}/g1-r3")
    assert got == sorted(
        [HandleValue(v.index, v.type, f"every field 3 {s}".encode(), v.permissions, v.ttl_type,
                     v.ttl, v.timestamp, v.references)
         for s, v in enumerate(LAYOUTS["every field"])],
        key=lambda x: x.index,
    )  # fmt: skip
    assert await store.get_handle(f"{P2}/mixed-case") == await store.get_handle(f"{P1}/MIXED-case")
    assert await store.get_handle("no-slash-handle") == [
        HandleValue(1, "URL", b"x", timestamp=TS),
        HandleValue(2, "EMAIL", b"y", timestamp=TS),
        HandleValue(100, "HS_ADMIN", b"z", timestamp=TS),
    ]
    log = await store.transactions(0, 1000)
    assert [t.serial for t in log] == list(range(1, len(log) + 1))
    assert {t.action for t in log} == {"load"}
    slow_log = [t.handle for t in log[: len(slow)]]
    fast_log = [t.handle for t in log[len(slow) :]]
    assert fast_log == [h.replace(P1, P2) for h in slow_log if h != "no-slash-handle"]


async def test_load_rows_is_one_transaction_with_one_log_row_per_record(store: Store) -> None:
    rows = [(f"{P1}/r{i}", (b"u", b"e", b"a")) for i in range(25)]
    serial = await store.load_rows(
        RowGroup(LAYOUTS["plain"], rows[i : i + 10]) for i in (0, 10, 20)
    )
    assert serial == 25 == await store.serial()
    assert await store.count_handles(P1) == 25
    assert [t.handle for t in await store.transactions()] == [h for h, _ in rows]


async def test_empty_load_rows_writes_nothing(store: Store) -> None:
    assert await store.load_rows([]) == 0
    assert await store.load_rows([RowGroup(LAYOUTS["plain"], [])]) == 0
    assert await store.transactions() == []


async def test_load_rows_overwrite(store: Store) -> None:
    await store.create_handle(f"{P1}/Alpha", [v(1, "old"), v(7, "gone")])
    layout = (lv(1), lv(2))
    serial = await store.load_rows(
        [
            RowGroup(layout, [(f"{P1}/ALPHA", (b"a1", b"a2")), (f"{P1}/new", (b"n1", b"n2"))]),
            RowGroup(layout[:1], [(f"{P1}/alpha", (b"last",))]),  # the last record wins
        ],
        overwrite=True,
    )
    assert serial == 4
    assert await store.get_handle(f"{P1}/alpha") == [HandleValue(1, "URL", b"last", timestamp=TS)]
    assert (await store.list_handles(P1)) == [f"{P1}/alpha", f"{P1}/new"]  # as load: last wins
    assert len(await store.get_handle(f"{P1}/new")) == 2


# -- every failure writes nothing, and raises what ``load`` raises -----------------------------
def _raising() -> Iterator[RowGroup]:
    yield RowGroup(LAYOUTS["plain"], [(f"{P1}/ok", (b"1", b"2", b"3"))])
    raise RuntimeError("the source file broke")


PLAIN = LAYOUTS["plain"]
ROW = (b"u", b"e", b"a")
RowFailure = tuple[str, Callable[[Store], Awaitable[object]], type[Exception], str]
ROW_FAILURES: list[RowFailure] = [
    (
        "existing in middle",
        lambda s: s.load_rows(
            [RowGroup(PLAIN, [(f"{P1}/l1", ROW), (f"{P2}/GAMMA", ROW), (f"{P1}/l3", ROW)])]
        ),  # fmt: skip
        HandleAlreadyExists,
        f"handle {P2}/GAMMA already exists",
    ),
    (
        "existing in second group",
        lambda s: s.load_rows(
            [RowGroup(PLAIN, [(f"{P1}/l1", ROW)]), RowGroup((lv(5),), [(f"{P1}/BETA", (b"x",))])]
        ),
        HandleAlreadyExists,
        f"handle {P1}/BETA already exists",
    ),
    (
        "same handle twice in a group",
        lambda s: s.load_rows([RowGroup(PLAIN, [(f"{P1}/l1", ROW), (f"{P1}/L1", ROW)])]),
        HandleAlreadyExists,
        f"handle {P1}/L1 already exists",
    ),
    (
        "same handle in two groups",
        lambda s: s.load_rows(
            [RowGroup(PLAIN, [(f"{P1}/l1", ROW)]), RowGroup((lv(1),), [(f"{P1}/L1", (b"x",))])]
        ),  # fmt: skip
        HandleAlreadyExists,
        f"handle {P1}/L1 already exists",
    ),
    (
        "layout repeats an index",
        lambda s: s.load_rows([RowGroup((lv(1), lv(1)), [(f"{P1}/l1", (b"a", b"b"))])]),
        InvalidValue,
        "index 1 given twice",
    ),
    (
        "layout index too big",
        lambda s: s.load_rows([RowGroup((lv(2**31),), [(f"{P1}/l1", (b"a",))])]),
        InvalidValue,
        "value 2147483648: index must be a 32-bit integer",
    ),
    (
        "data not bytes in a later row",
        lambda s: s.load_rows(
            [RowGroup(PLAIN, [(f"{P1}/l1", ROW), (f"{P1}/l2", (b"u", "e", b"a"))])]  # type: ignore[list-item]
        ),
        InvalidValue,
        "value 2: data must be bytes",
    ),
    (
        "too few data",
        lambda s: s.load_rows([RowGroup(PLAIN, [(f"{P1}/l1", ROW), (f"{P1}/l2", ROW[:2])])]),
        InvalidValue,
        f"record {P1}/l2: 2 data for 3 values",
    ),
    (
        "empty handle",
        lambda s: s.load_rows([RowGroup(PLAIN, [(f"{P1}/l1", ROW), ("", ROW)])]),
        InvalidHandle,
        "a handle must be a non-empty string",
    ),
    (
        "not a group",
        lambda s: s.load_rows([(f"{P1}/l1", [v(1)])]),  # type: ignore[list-item]
        InvalidValue,
        "expected RowGroup, got tuple",
    ),
    ("source raises", lambda s: s.load_rows(_raising()), RuntimeError, "the source file broke"),
]


@pytest.fixture
async def seeded(store: Store) -> Store:
    await store.create_handle(f"{P1}/beta", [v(1, "b1")])
    await store.create_handle(f"{P2}/gamma", [v(1, "c1")])
    return store


@pytest.mark.parametrize(
    "op,error,message", [f[1:] for f in ROW_FAILURES], ids=[f[0] for f in ROW_FAILURES]
)
async def test_failed_load_rows_changes_nothing(seeded: Store, op, error, message) -> None:
    before = await snapshot(seeded)
    with pytest.raises(error) as exc:
        await op(seeded)
    assert str(exc.value) == message
    assert await snapshot(seeded) == before
    assert await seeded.create_handle(f"{P1}/after", [v(1)]) == before[0] + 1


@pytest.mark.parametrize("name", ["existing in middle", "same handle twice in a group"])
async def test_load_rows_errors_are_those_of_load(seeded: Store, name: str) -> None:
    """The slow path (``load`` of the expanded records) raises the very same error."""
    op = dict((f[0], f[1]) for f in ROW_FAILURES)[name]
    calls: list[list[RowGroup]] = []

    class Recorder:
        async def load_rows(self, groups, **kw):
            calls.append(list(groups))

    await op(Recorder())  # type: ignore[arg-type]
    with pytest.raises(IdnodeError) as fast:
        await seeded.load_rows(calls[0])
    with pytest.raises(IdnodeError) as slow:
        await seeded.load([r for g in calls[0] for r in g.expand()])
    assert (type(fast.value), str(fast.value)) == (type(slow.value), str(slow.value))


# -- encryption at rest ---------------------------------------------------------------------------
async def test_encrypted_load_rows_seals_non_public_slots(make_store) -> None:
    inner = make_store()
    enc = EncryptedStore(inner, ring(), random=SeededRandom(2))
    await enc.open()
    try:
        layout = (lv(1, permissions=PUBLIC), lv(2, "NOTE", permissions=PRIVATE))
        rows = [(f"{P1}/s{i}", (b"public %d" % i, b"secret %d" % i)) for i in range(3)]
        assert await enc.load_rows([RowGroup(layout, rows)]) == 3
        raw = await inner.get_handle(f"{P1}/s1")
        assert raw[0].data == b"public 1" and is_sealed(raw[1].data)
        assert b"secret" not in raw[1].data
        assert await enc.get_handle(f"{P1}/s1") == [
            HandleValue(1, "URL", b"public 1", PUBLIC, timestamp=TS),
            HandleValue(2, "NOTE", b"secret 1", PRIVATE, timestamp=TS),
        ]
        # the same records through ``load`` read back identically
        await enc.load(
            (h.replace("/s", "/t"), records) for h, records in RowGroup(layout, rows).expand()
        )
        assert await enc.get_handle(f"{P1}/t2") == await enc.get_handle(f"{P1}/s2")
        with pytest.raises(InvalidValue, match="value 2: data must be bytes"):
            await enc.load_rows([RowGroup(layout, [(f"{P1}/bad", (b"x", "clear"))])])  # type: ignore[list-item]
        assert await enc.get_handle(f"{P1}/bad") is None
    finally:
        await enc.close()


# -- the fast value check decides nothing the full check would not ------------------------------
ODD_VALUES = [
    HandleValue(1, "URL", b"x"),
    HandleValue(True, "URL", b"x"),  # type: ignore[arg-type]
    HandleValue(1, "URL", b"x", permissions=16),  # type: ignore[arg-type]
    HandleValue(1, "URL", b"x", permissions=-1),  # type: ignore[arg-type]
    HandleValue(1, "URL", b"x", permissions=True),  # type: ignore[arg-type]
    HandleValue(1, "URL", b"x", ttl_type=2),  # type: ignore[arg-type]
    HandleValue(1, "URL", b"x", ttl_type=True),  # type: ignore[arg-type]
    HandleValue(1, "URL", b"x", ttl=2**31),
    HandleValue(1, "URL", b"x", ttl=1.0),  # type: ignore[arg-type]
    HandleValue(1, "URL", b"x", timestamp=-1),
    HandleValue(1, "URL", b"x", timestamp=2**32),
    HandleValue(1, "URL", bytearray(b"x")),  # type: ignore[arg-type]
    HandleValue(1, "URL", "x"),  # type: ignore[arg-type]
    HandleValue(1, b"URL", b"x"),  # type: ignore[arg-type]
    HandleValue(-(2**31), "URL", b"x"),
    HandleValue(2**31, "URL", b"x"),
    HandleValue(1, "URL", b"x", references=(ValueReference("a", 1),)),
    HandleValue(1, "URL", b"x", references=(("a", 1),)),  # type: ignore[arg-type]
]


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_plain_value_check_agrees_with_the_full_check(value: HandleValue) -> None:
    try:
        _check_value(value)
        full = True
    except InvalidValue:
        full = False
    if _plain_value_ok(value):
        assert full
    try:
        check_values([value])
        assert full
    except InvalidValue:
        assert not full
