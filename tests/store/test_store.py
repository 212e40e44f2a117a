"""The engine-neutral store suite: every engine in ``conftest.ENGINES`` must pass all of it.

Only the ``Store`` interface is used here, so "a failed write changes nothing" is checked by
comparing a snapshot of everything the interface can see before and after.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import pytest

from idnode.codes import Permission, TTLType
from idnode.errors import (
    HandleAlreadyExists,
    HandleNotFound,
    IdnodeError,
    InvalidHandle,
    InvalidValue,
    ValueAlreadyExists,
    ValueNotFound,
)
from idnode.model import HandleValue, ValueReference
from idnode.store.base import Store, Transaction

P1, P2 = "20.500.1", "20.500.2"


def v(index: int, data: bytes | str = b"x", type_: str = "URL", **kw) -> HandleValue:
    raw = data.encode() if isinstance(data, str) else data
    return HandleValue(index, type_, raw, timestamp=1_700_000_000, **kw)


async def snapshot(store: Store, prefixes=(P1, P2, "20.500.12")) -> tuple:
    """Everything observable through the interface, for before/after comparisons."""
    records = {}
    for prefix in prefixes:
        for h in await store.list_handles(prefix):
            records[h] = await store.get_handle(h)
    return (
        await store.serial(),
        await store.transactions(0, 1_000_000),
        await store.homed_prefixes(),
        records,
        [await store.count_handles(p) for p in prefixes],
    )


@pytest.fixture
async def seeded(store: Store) -> Store:
    await store.create_handle(f"{P1}/Alpha", [v(100, "admin", "HS_ADMIN"), v(1, "a"), v(2, "b")])
    await store.create_handle(f"{P1}/beta", [v(1, "b1")])
    await store.create_handle(f"{P2}/gamma", [v(1, "c1")])
    await store.home_prefix(P1)
    return store


# -- reads and simple writes ---------------------------------------------------------------------
async def test_empty_store(store: Store) -> None:
    assert await store.serial() == 0
    assert await store.transactions() == []
    assert await store.homed_prefixes() == []
    assert await store.get_handle(f"{P1}/none") is None
    assert await store.list_handles(P1) == []
    assert await store.count_handles(P1) == 0


async def test_create_and_get_sorted_by_index(store: Store) -> None:
    values = [v(100, "admin", "HS_ADMIN"), v(1, "one"), v(7, "seven", "EMAIL")]
    serial = await store.create_handle(f"{P1}/x", values)
    assert serial == 1
    got = await store.get_handle(f"{P1}/x")
    assert got == sorted(values, key=lambda x: x.index)
    assert [x.index for x in got] == [1, 7, 100]


async def test_every_value_field_round_trips(store: Store) -> None:
    value = HandleValue(
        index=2**31 - 1,
        type="HS_SITE.PREFIX",
        data=bytes(range(256)) * 3,  # NULs and high bytes
        permissions=Permission.ADMIN_READ | Permission.PUBLIC_WRITE,
        ttl_type=TTLType.ABSOLUTE,
        ttl=-5,
        timestamp=2**32 - 1,
        references=(ValueReference("20.500.9/ref", 3), ValueReference("0.NA/Zé", -1)),
    )
    others = [
        HandleValue(-(2**31), "", b""),  # empty type and data, lowest index
        HandleValue(0, "DESC", "Ünïcödé 标识".encode(), permissions=Permission(0)),
    ]
    await store.create_handle(f"{P1}/all-fields", [value, *others])
    got = await store.get_handle(f"{P1}/ALL-FIELDS")
    assert got == [*others, value]
    assert isinstance(got[2].permissions, Permission) and isinstance(got[2].ttl_type, TTLType)
    assert isinstance(got[2].data, bytes) and isinstance(got[2].references, tuple)


async def test_a_created_records_stored_answer_is_the_one_read_back_gives(
    answering_store: Store,
) -> None:
    """A create encodes its stored answer from the values it was given (not read back):
    whatever the order, types and fields given, it must be the answer the record as read
    back encodes to, as a later fill or edit would write it."""
    from idnode.wire.public_answer import ENCODER

    admin = HandleValue(100, "HS_ADMIN", b"\x0f\xff\x00\x00\x00\x0c0.NA/20.500.1\x00\x00\x01\x2c")
    records = {
        "shuffled": [v(7, "seven", "EMAIL"), admin, v(1, "one"), v(3, bytearray(b"ba"))],
        "fields": [
            HandleValue(
                2,
                "DESC",
                "标识 é".encode(),
                permissions=Permission.PUBLIC_READ | Permission.ADMIN_WRITE,
                ttl_type=TTLType.ABSOLUTE,
                ttl=-5,
                timestamp=2**32 - 1,
                references=(ValueReference(f"{P1}/ref", 3), ValueReference("0.NA/Zé", -1)),
            ),
            HandleValue(-(2**31), "", b""),
        ],
        "restricted": [v(2, "secret", permissions=Permission.ADMIN_READ), v(1, "open")],
        "all-restricted": [v(1, "secret", permissions=Permission.ADMIN_READ)],
        "empty": [],
    }
    for name, values in records.items():
        await answering_store.create_handle(f"{P1}/{name}", values)
    await answering_store.create_handle(f"{P1}/fields", [v(9, "nine"), v(4)], overwrite=True)
    for name in records:
        read_back = await answering_store.get_handle(f"{P1}/{name}")
        assert read_back is not None
        assert await answering_store.public_answer(f"{P1}/{name}") == ENCODER(read_back), name
    assert await answering_store.public_answer(f"{P1}/shuffled") is not None  # (served)


async def test_bytearray_data_comes_back_as_bytes(store: Store) -> None:
    await store.create_handle(f"{P1}/ba", [HandleValue(1, "URL", bytearray(b"abc"))])
    got = await store.get_handle(f"{P1}/ba")
    assert got is not None and got[0].data == b"abc" and type(got[0].data) is bytes


async def test_handle_without_values(store: Store) -> None:
    await store.create_handle(f"{P1}/empty", [])
    assert await store.get_handle(f"{P1}/empty") == []
    await store.create_handle(f"{P1}/one", [v(1)])
    await store.remove_values(f"{P1}/one", [1])
    assert await store.get_handle(f"{P1}/one") == []


async def test_lookup_is_case_insensitive_and_keeps_spelling(store: Store) -> None:
    await store.create_handle(f"{P1}/MixedCase", [v(1)])
    for spelling in (f"{P1}/mixedcase", f"{P1}/MIXEDCASE", f"{P1}/MixedCase"):
        assert await store.get_handle(spelling) == [v(1)]
    assert await store.list_handles(P1) == [f"{P1}/MixedCase"]
    with pytest.raises(HandleAlreadyExists):
        await store.create_handle(f"{P1}/MIXEDcase", [v(2)])
    await store.add_values(f"{P1}/mixedCASE", [v(2)])
    txs = await store.transactions()
    assert [t.handle for t in txs] == [f"{P1}/MixedCase"] * 2  # the log uses the stored spelling
    await store.delete_handle(f"{P1}/MIXEDCASE")
    assert await store.get_handle(f"{P1}/MixedCase") is None


async def test_non_ascii_letters_are_not_folded(store: Store) -> None:
    await store.create_handle(f"{P1}/é", [v(1)])
    assert await store.get_handle(f"{P1}/É") is None
    assert await store.get_handle(f"{P1}/é") == [v(1)]


async def test_overwrite_replaces_whole_record(store: Store) -> None:
    await store.create_handle(f"{P1}/ow", [v(1, "old"), v(2, "old")])
    serial = await store.create_handle(f"{P1}/OW", [v(3, "new")], overwrite=True)
    assert await store.get_handle(f"{P1}/ow") == [v(3, "new")]
    assert await store.list_handles(P1) == [f"{P1}/OW"]  # new spelling
    last = (await store.transactions())[-1]
    assert last == Transaction(serial, 1_700_000_000, "create", f"{P1}/OW")


async def test_overwrite_of_missing_handle_creates_it(store: Store) -> None:
    await store.create_handle(f"{P1}/new", [v(1)], overwrite=True)
    assert await store.get_handle(f"{P1}/new") == [v(1)]


async def test_delete(seeded: Store) -> None:
    await seeded.delete_handle(f"{P1}/alpha")
    assert await seeded.get_handle(f"{P1}/Alpha") is None
    assert await seeded.list_handles(P1) == [f"{P1}/beta"]
    # a re-created handle starts from nothing: the old values are gone
    await seeded.create_handle(f"{P1}/alpha", [v(5)])
    assert await seeded.get_handle(f"{P1}/alpha") == [v(5)]


async def test_add_modify_remove_values(seeded: Store) -> None:
    h = f"{P1}/Alpha"
    await seeded.add_values(h, [v(3, "c"), v(4, "d", "EMAIL")])
    assert [x.index for x in await seeded.get_handle(h)] == [1, 2, 3, 4, 100]
    await seeded.modify_values(h, [v(1, "A!", "DESC", ttl=60), v(4, "D!")])
    got = {x.index: x for x in await seeded.get_handle(h)}
    assert got[1] == v(1, "A!", "DESC", ttl=60) and got[4] == v(4, "D!") and got[2] == v(2, "b")
    await seeded.remove_values(h, [2, 3])
    assert [x.index for x in await seeded.get_handle(h)] == [1, 4, 100]
    actions = [t.action for t in await seeded.transactions()]
    assert actions[-3:] == ["add", "modify", "remove"]


async def test_homed_prefixes(store: Store) -> None:
    await store.home_prefix("20.500.B")
    await store.home_prefix("20.500.a")
    assert await store.homed_prefixes() == ["20.500.a", "20.500.B"]  # by key, as spelled
    with pytest.raises(HandleAlreadyExists):
        await store.home_prefix("20.500.A")
    await store.unhome_prefix("20.500.b")
    assert await store.homed_prefixes() == ["20.500.a"]
    with pytest.raises(HandleNotFound):
        await store.unhome_prefix("20.500.b")
    txs = await store.transactions()
    assert [(t.action, t.handle) for t in txs] == [
        ("home", "20.500.B"),
        ("home", "20.500.a"),
        ("unhome", "20.500.B"),
    ]


# -- listing -------------------------------------------------------------------------------------
async def test_list_handles_by_prefix_part(store: Store) -> None:
    await store.load(
        [
            (f"{P1}/b", [v(1)]),
            (f"{P1}/A", [v(1)]),
            (f"{P1}/c/d", [v(1)]),  # only the first '/' splits
            ("20.500.12/x", [v(1)]),  # P1 is a string prefix of it but not its prefix
            ("20.500.1.5/y", [v(1)]),  # derived prefix: not under P1 either
            (P1, [v(1)]),  # no '/': under no prefix
            (f"0.NA/{P1}", [v(1)]),
        ]
    )
    assert await store.list_handles(P1) == [f"{P1}/A", f"{P1}/b", f"{P1}/c/d"]
    assert await store.list_handles("20.500.1") == await store.list_handles("20.500.1".upper())
    assert await store.count_handles(P1) == 3
    assert await store.list_handles("0.na") == [f"0.NA/{P1}"]
    assert await store.list_handles("20.500") == []
    assert await store.count_handles("20.500.12") == 1


async def test_list_handles_paging(store: Store) -> None:
    names = [f"{P1}/h{i:03d}" for i in range(57)]
    await store.load((n, [v(1)]) for n in reversed(names))
    await store.create_handle(f"{P2}/other", [v(1)])
    assert await store.count_handles(P1) == 57
    assert await store.list_handles(P1) == names
    pages = [await store.list_handles(P1, offset=o, limit=10) for o in range(0, 60, 10)]
    assert [len(p) for p in pages] == [10, 10, 10, 10, 10, 7]
    assert [h for p in pages for h in p] == names
    assert await store.list_handles(P1, offset=55) == names[55:]
    assert await store.list_handles(P1, offset=100, limit=5) == []
    assert await store.list_handles(P1, limit=0) == []


# -- the transaction log -------------------------------------------------------------------------
async def test_serials_count_up_and_timestamps_come_from_clock(store: Store, clock) -> None:
    serials = []
    for i in range(5):
        clock.now = 1_800_000_000 + i * 10 + 0.9
        serials.append(await store.create_handle(f"{P1}/s{i}", [v(1)]))
        assert await store.serial() == serials[-1]
    assert serials == [1, 2, 3, 4, 5]
    txs = await store.transactions()
    assert txs == [
        Transaction(i + 1, 1_800_000_000 + i * 10, "create", f"{P1}/s{i}") for i in range(5)
    ]


async def test_transactions_paging(store: Store) -> None:
    await store.load((f"{P1}/t{i}", [v(1)]) for i in range(25))
    await store.delete_handle(f"{P1}/t3")
    seen: list[Transaction] = []
    since = 0
    while page := await store.transactions(since, limit=7):
        assert len(page) <= 7
        seen.extend(page)
        since = page[-1].serial
    assert [t.serial for t in seen] == list(range(1, 27))
    assert [t.action for t in seen] == ["load"] * 25 + ["delete"]
    assert await store.transactions(26) == []
    assert [t.serial for t in await store.transactions(24, limit=1000)] == [25, 26]


# -- load ----------------------------------------------------------------------------------------
async def test_load_one_log_row_per_handle(store: Store) -> None:
    serial = await store.load([(f"{P1}/l{i}", [v(1, str(i)), v(2)]) for i in range(10)])
    assert serial == 10 == await store.serial()
    txs = await store.transactions()
    assert [(t.action, t.handle) for t in txs] == [("load", f"{P1}/l{i}") for i in range(10)]
    assert await store.get_handle(f"{P1}/l7") == [v(1, "7"), v(2)]


async def test_load_overwrite(seeded: Store) -> None:
    await seeded.load([(f"{P1}/ALPHA", [v(9)]), (f"{P1}/new", [v(1)])], overwrite=True)
    assert await seeded.get_handle(f"{P1}/alpha") == [v(9)]
    assert await seeded.get_handle(f"{P1}/new") == [v(1)]


async def test_empty_load_writes_nothing(seeded: Store) -> None:
    before = await snapshot(seeded)
    assert await seeded.load([]) == before[0]
    assert await snapshot(seeded) == before


# -- every failed write changes nothing ----------------------------------------------------------
def _bad_records() -> Iterator[tuple[str, list[HandleValue]]]:
    yield f"{P1}/g1", [v(1)]
    yield f"{P1}/g2", [v(1)]
    raise RuntimeError("the source file broke")


FAILURES: list[tuple[str, Callable[[Store], Awaitable[object]], type[Exception]]] = [
    ("create existing", lambda s: s.create_handle(f"{P1}/ALPHA", [v(1)]), HandleAlreadyExists),
    ("create dup index", lambda s: s.create_handle(f"{P1}/n", [v(1), v(2), v(1)]), InvalidValue),
    (
        "overwrite dup index",
        lambda s: s.create_handle(f"{P1}/alpha", [v(1), v(1)], overwrite=True),
        InvalidValue,
    ),
    ("create empty name", lambda s: s.create_handle("", [v(1)]), InvalidHandle),
    (
        "create bad data",
        lambda s: s.create_handle(f"{P1}/n", [HandleValue(1, "URL", "str")]),  # type: ignore[arg-type]
        InvalidValue,
    ),
    (
        "create index too big",
        lambda s: s.create_handle(f"{P1}/n", [v(2**31)]),
        InvalidValue,
    ),
    ("create not a value", lambda s: s.create_handle(f"{P1}/n", [(1, "URL")]), InvalidValue),
    ("delete missing", lambda s: s.delete_handle(f"{P1}/missing"), HandleNotFound),
    ("add existing", lambda s: s.add_values(f"{P1}/alpha", [v(50), v(2)]), ValueAlreadyExists),
    ("add missing handle", lambda s: s.add_values(f"{P1}/missing", [v(1)]), HandleNotFound),
    ("add dup", lambda s: s.add_values(f"{P1}/alpha", [v(50), v(50)]), InvalidValue),
    ("add nothing", lambda s: s.add_values(f"{P1}/alpha", []), InvalidValue),
    ("modify missing", lambda s: s.modify_values(f"{P1}/alpha", [v(1), v(9)]), ValueNotFound),
    ("modify missing handle", lambda s: s.modify_values(f"{P1}/no", [v(1)]), HandleNotFound),
    ("modify dup", lambda s: s.modify_values(f"{P1}/alpha", [v(1), v(1)]), InvalidValue),
    ("remove missing", lambda s: s.remove_values(f"{P1}/alpha", [1, 9]), ValueNotFound),
    ("remove missing handle", lambda s: s.remove_values(f"{P1}/no", [1]), HandleNotFound),
    ("remove dup", lambda s: s.remove_values(f"{P1}/alpha", [1, 1]), InvalidValue),
    ("remove nothing", lambda s: s.remove_values(f"{P1}/alpha", []), InvalidValue),
    ("home twice", lambda s: s.home_prefix(P1), HandleAlreadyExists),
    ("home with slash", lambda s: s.home_prefix(f"0.NA/{P1}"), InvalidHandle),
    ("unhome missing", lambda s: s.unhome_prefix(P2), HandleNotFound),
    (
        "load bad value in middle",
        lambda s: s.load([(f"{P1}/l1", [v(1)]), (f"{P1}/l2", [v(1), v(1)]), (f"{P1}/l3", [])]),
        InvalidValue,
    ),
    (
        "load existing in middle",
        lambda s: s.load([(f"{P1}/l1", [v(1)]), (f"{P2}/GAMMA", [v(1)]), (f"{P1}/l3", [])]),
        HandleAlreadyExists,
    ),
    (
        "load same handle twice",
        lambda s: s.load([(f"{P1}/l1", [v(1)]), (f"{P1}/L1", [v(2)])]),
        HandleAlreadyExists,
    ),
    ("load source raises", lambda s: s.load(_bad_records()), RuntimeError),
]


@pytest.mark.parametrize("op,error", [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES])
async def test_failed_write_changes_nothing(seeded: Store, op, error) -> None:
    before = await snapshot(seeded)
    with pytest.raises(error):
        await op(seeded)
    assert await snapshot(seeded) == before
    # and the store still works, with the next serial following on directly
    assert await seeded.create_handle(f"{P1}/after", [v(1)]) == before[0] + 1


def test_errors_are_idnode_errors() -> None:
    for _, _, error in FAILURES:
        assert error is RuntimeError or issubclass(error, IdnodeError)


# -- concurrency ---------------------------------------------------------------------------------
async def test_concurrent_writers_and_readers(store: Store) -> None:
    n = 120
    names = [f"{P1}/c{i:03d}" for i in range(n)]
    values = [v(1, "u"), v(2, "e", "EMAIL"), v(100, "a", "HS_ADMIN")]

    async def read(name: str) -> list[HandleValue] | None:
        got = await store.get_handle(name)
        assert got is None or got == values  # never a half-written record
        return got

    results = await asyncio.gather(
        *(store.create_handle(name, values) for name in names),
        *(read(name) for name in names),
        *(store.serial() for _ in range(20)),
        *(store.list_handles(P1) for _ in range(5)),
    )
    serials = results[:n]
    assert sorted(serials) == list(range(1, n + 1))
    assert await store.serial() == n
    by_serial = {t.serial: t.handle for t in await store.transactions()}
    assert {by_serial[s] for s in serials} == set(names)
    assert all(by_serial[s] == name for s, name in zip(serials, names, strict=True))
    assert await store.count_handles(P1) == n


async def test_concurrent_value_edits_on_one_handle(store: Store) -> None:
    h = f"{P1}/shared"
    await store.create_handle(h, [])
    adds = await asyncio.gather(*(store.add_values(h, [v(i, str(i))]) for i in range(1, 41)))
    assert sorted(adds) == list(range(2, 42))
    assert [x.index for x in await store.get_handle(h)] == list(range(1, 41))
    mods = [store.modify_values(h, [v(i, "m")]) for i in range(1, 21)]
    rems = [store.remove_values(h, [i]) for i in range(21, 41)]
    await asyncio.gather(*mods, *rems)
    assert await store.get_handle(h) == [v(i, "m") for i in range(1, 21)]
    assert await store.serial() == 81


async def test_racing_creates_of_one_handle(store: Store) -> None:
    spellings = [f"{P1}/race", f"{P1}/RACE", f"{P1}/Race"] * 5
    results = await asyncio.gather(
        *(store.create_handle(s, [v(1, s)]) for s in spellings), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, int)]
    assert len(winners) == 1
    assert all(isinstance(r, HandleAlreadyExists) for r in results if not isinstance(r, int))
    assert await store.serial() == 1


# -- persistence ---------------------------------------------------------------------------------
async def test_reopen_keeps_everything(make_store, clock) -> None:
    first = make_store()
    await first.open()
    await first.create_handle(f"{P1}/Kept", [v(1, "k"), v(100, "a", "HS_ADMIN")])
    await first.home_prefix(P1)
    await first.load([(f"{P1}/l{i}", [v(1)]) for i in range(3)])
    await first.delete_handle(f"{P1}/l1")
    before = await snapshot(first)
    await first.close()

    second = make_store()
    async with second:
        assert await snapshot(second) == before
        assert await second.create_handle(f"{P1}/next", [v(1)]) == before[0] + 1
        assert await second.get_handle(f"{P1}/KEPT") == [v(1, "k"), v(100, "a", "HS_ADMIN")]


async def test_open_is_idempotent_and_context_manager_closes(make_store) -> None:
    s = make_store()
    async with s:
        await s.open()
        await s.create_handle(f"{P1}/x", [v(1)])
    async with make_store() as again:
        assert await again.get_handle(f"{P1}/x") == [v(1)]
