"""AdminService against a real SQLite store: every HS_ADMIN bit both grants and refuses."""

from __future__ import annotations

import pytest

from idnode.auth.acl import AccessControl
from idnode.auth.identity import Identity
from idnode.codes import AdminPermission as P
from idnode.codes import Permission
from idnode.errors import (
    AuthenticationNeeded,
    HandleAlreadyExists,
    InvalidValue,
    NotAuthorized,
    NotResponsible,
    ValueAlreadyExists,
    ValueNotFound,
)
from idnode.model import HandleValue
from idnode.names import PrefixSet
from idnode.runtime import SeededRandom, uuid4
from idnode.service.admin import AdminService
from idnode.service.resolve import ResolutionQuery, Resolver, Values
from idnode.store.sqlite import SQLiteStore
from idnode.wire.admin import AdminRecord, encode_admin

PREFIX = "20.500.1"
ITEM = f"{PREFIX}/item"
ALICE = Identity(f"{PREFIX}/alice", 300)
OPERATOR = Identity(f"0.NA/{PREFIX}", 300)
ALL = P(0xFFF)


def admin_value(index: int, who: Identity, perms: P) -> HandleValue:
    return HandleValue(index, "HS_ADMIN", encode_admin(AdminRecord(who.handle, who.index, perms)))


def url(index: int = 1, text: str = "https://example.com") -> HandleValue:
    return HandleValue(index, "URL", text.encode())


async def make_service(tmp_path, handle_perms: P, prefix_perms: P):
    store = SQLiteStore(str(tmp_path / "n.db"), clock=lambda: 1_700_000_000)
    await store.open()
    await store.home_prefix(PREFIX)
    await store.create_handle(f"0.NA/{PREFIX}", [admin_value(100, ALICE, prefix_perms)])
    await store.create_handle(
        ITEM,
        [
            url(1),
            HandleValue(
                5, "SECRET_NOTE", b"hidden", Permission.ADMIN_READ | Permission.ADMIN_WRITE
            ),
            admin_value(100, ALICE, handle_perms),
            admin_value(101, Identity(f"{PREFIX}/bob", 300), P.ADD_VALUE),
        ],
    )
    acl = AccessControl(store, operators=[OPERATOR], prefix_admins_inherit=False)
    service = AdminService(
        store, PrefixSet([PREFIX]), acl, clock=lambda: 1_800_000_000, random=SeededRandom(1)
    )
    return store, service


# Each case: (bit, where the bit is needed: "handle" or "prefix", the operation)
async def op_add_handle(s: AdminService) -> None:
    await s.create_handle(ALICE, f"{PREFIX}/new", [url()])


async def op_delete_handle(s: AdminService) -> None:
    await s.delete_handle(ALICE, ITEM)


async def op_add_value(s: AdminService) -> None:
    await s.add_values(ALICE, ITEM, [url(2)])


async def op_modify_value(s: AdminService) -> None:
    await s.modify_values(ALICE, ITEM, [url(1, "https://changed.example")])


async def op_remove_value(s: AdminService) -> None:
    await s.remove_values(ALICE, ITEM, [1])


async def op_add_admin(s: AdminService) -> None:
    await s.add_values(ALICE, ITEM, [admin_value(102, ALICE, P.ADD_VALUE)])


async def op_modify_admin(s: AdminService) -> None:
    await s.modify_values(ALICE, ITEM, [admin_value(101, ALICE, P.ADD_VALUE)])


async def op_remove_admin(s: AdminService) -> None:
    await s.remove_values(ALICE, ITEM, [101])


async def op_list_handles(s: AdminService) -> None:
    total, handles = await s.list_handles(ALICE, PREFIX)
    assert total == 1 and handles == [ITEM]


async def op_add_na(s: AdminService) -> None:
    await s.create_handle(ALICE, f"0.NA/{PREFIX}.7", [url()])


async def op_authorized_read(s: AdminService) -> None:
    answer = await Resolver(s.store, s.homed, s.may_read_restricted).resolve(
        ResolutionQuery(ITEM, indexes=(5,)), reader=ALICE
    )
    assert isinstance(answer, Values)
    assert [v.data for v in answer.values] == [b"hidden"]


CASES = [
    (P.ADD_HANDLE, "prefix", op_add_handle),
    (P.DELETE_HANDLE, "handle", op_delete_handle),
    (P.ADD_VALUE, "handle", op_add_value),
    (P.MODIFY_VALUE, "handle", op_modify_value),
    (P.REMOVE_VALUE, "handle", op_remove_value),
    (P.ADD_ADMIN, "handle", op_add_admin),
    (P.MODIFY_ADMIN, "handle", op_modify_admin),
    (P.REMOVE_ADMIN, "handle", op_remove_admin),
    (P.LIST_HANDLES, "prefix", op_list_handles),
    (P.ADD_NA, "prefix", op_add_na),
    (P.AUTHORIZED_READ, "handle", op_authorized_read),
]


def test_cases_cover_every_bit_but_delete_na():
    assert {bit for bit, _, _ in CASES} | {P.DELETE_NA} == set(P)


@pytest.mark.parametrize(("bit", "where", "op"), CASES, ids=[c[0].name for c in CASES])
async def test_bit_grants(tmp_path, bit, where, op):
    handle_perms = bit if where == "handle" else P(0)
    prefix_perms = bit if where == "prefix" else P(0)
    store, service = await make_service(tmp_path, handle_perms, prefix_perms)
    try:
        await op(service)
    finally:
        await store.close()


@pytest.mark.parametrize(("bit", "where", "op"), CASES, ids=[c[0].name for c in CASES])
async def test_bit_refuses(tmp_path, bit, where, op):
    store, service = await make_service(tmp_path, ALL & ~bit, ALL & ~bit)
    try:
        before = await store.serial()
        with pytest.raises(NotAuthorized):  # a restricted read too (service.resolve)
            await op(service)
        assert await store.serial() == before
    finally:
        await store.close()


@pytest.mark.parametrize("granted", [True, False])
async def test_delete_na(tmp_path, granted):
    store, service = await make_service(tmp_path, P(0), P(0))
    try:
        await service.create_handle(OPERATOR, f"0.NA/{PREFIX}.9", [url()])
        await store.modify_values(
            f"0.NA/{PREFIX}",
            [admin_value(100, ALICE, P.DELETE_NA if granted else ALL & ~P.DELETE_NA)],
        )
        if granted:
            await service.delete_handle(ALICE, f"0.NA/{PREFIX}.9")
            assert await store.get_handle(f"0.NA/{PREFIX}.9") is None
        else:
            with pytest.raises(NotAuthorized):
                await service.delete_handle(ALICE, f"0.NA/{PREFIX}.9")
    finally:
        await store.close()


async def test_anonymous_needs_authentication_and_operator_may_all(tmp_path):
    store, service = await make_service(tmp_path, P(0), P(0))
    try:
        with pytest.raises(AuthenticationNeeded):
            await service.add_values(None, ITEM, [url(2)])
        await service.add_values(OPERATOR, ITEM, [url(2)])
        assert len(await store.get_handle(ITEM)) == 5
    finally:
        await store.close()


async def test_write_rules(tmp_path):
    store, service = await make_service(tmp_path, ALL, ALL)
    try:
        with pytest.raises(HandleAlreadyExists):
            await service.create_handle(ALICE, ITEM, [url()])
        with pytest.raises(ValueAlreadyExists):
            await service.add_values(ALICE, ITEM, [url(1)])
        with pytest.raises(ValueNotFound):
            await service.modify_values(ALICE, ITEM, [url(9)])
        with pytest.raises(ValueNotFound):
            await service.remove_values(ALICE, ITEM, [9])
        with pytest.raises(InvalidValue):
            await service.add_values(ALICE, ITEM, [url(7), url(7)])
        with pytest.raises(InvalidValue):
            await service.add_values(ALICE, ITEM, [HandleValue(8, "HS_ADMIN", b"\x00")])
        with pytest.raises(InvalidValue):
            await service.add_values(ALICE, ITEM, [HandleValue(8, "DESC", b"x" * 70_000)])
        with pytest.raises(NotResponsible):
            await service.create_handle(ALICE, "99.1/x", [url()])
        # overwrite on add replaces the value at an existing index, in one transaction
        await service.add_values(ALICE, ITEM, [url(1, "https://new.example")], overwrite=True)
        values = {v.index: v for v in await store.get_handle(ITEM)}
        assert values[1].data == b"https://new.example"
        assert values[1].timestamp == 1_800_000_000  # the server stamps writes
        minted = await service.create_handle(ALICE, f"{PREFIX}/", [url()], mint=True)
        assert minted == f"{PREFIX}/{uuid4(SeededRandom(1))}"  # drawn from the node's source
    finally:
        await store.close()


async def test_value_without_admin_write_is_locked(tmp_path):
    store, service = await make_service(tmp_path, ALL, ALL)
    try:
        locked = HandleValue(9, "DESC", b"fixed", Permission.ADMIN_READ | Permission.PUBLIC_READ)
        await store.add_values(ITEM, [locked])
        with pytest.raises(NotAuthorized):
            await service.modify_values(ALICE, ITEM, [HandleValue(9, "DESC", b"changed")])
        with pytest.raises(NotAuthorized):
            await service.remove_values(ALICE, ITEM, [9])
    finally:
        await store.close()
