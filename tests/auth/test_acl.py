"""AccessControl against a real SQLite store: HS_ADMIN, HS_VLIST groups, prefixes, operators."""

from __future__ import annotations

import pytest

from idnode.auth.acl import AccessControl, governing_prefix_handle, is_prefix_handle
from idnode.auth.identity import Identity
from idnode.codes import AdminPermission as P
from idnode.errors import AuthenticationNeeded, NotAuthorized
from idnode.model import HS_ADMIN, HS_PUBKEY, HS_SECKEY, HS_VLIST, URL, HandleValue
from idnode.model import ValueReference as Ref
from idnode.runtime import ManualClock
from idnode.store.sqlite import SQLiteStore
from idnode.wire.admin import ALL_PERMISSIONS, AdminRecord, encode_admin
from idnode.wire.vlist import encode_vlist

ALICE = Identity("20.500/alice", 300)
BOB = Identity("20.500/bob", 300)
ROOT = Identity("0.NA/20.500", 300)
BITS = list(P)


def admin(index: int, handle: str, ref_index: int, perms: int = ALL_PERMISSIONS) -> HandleValue:
    return HandleValue(index, HS_ADMIN, encode_admin(AdminRecord(handle, ref_index, P(perms))))


def vlist(index: int, *refs: Ref) -> HandleValue:
    return HandleValue(index, HS_VLIST, encode_vlist(refs))


def pubkey(index: int) -> HandleValue:
    return HandleValue(index, HS_PUBKEY, b"pretend key")


@pytest.fixture
async def store(tmp_path):
    async with SQLiteStore(str(tmp_path / "n.db"), clock=ManualClock()) as s:
        await s.create_handle("20.500/alice", [pubkey(300), HandleValue(1, URL, b"x")])
        await s.create_handle("20.500/bob", [HandleValue(300, HS_SECKEY, b"pw")])
        yield s


@pytest.fixture
def acl(store):
    return AccessControl(store)


# --------------------------------------------------------------------- direct admins


async def test_direct_admin(acl):
    values = [admin(100, "20.500/alice", 300), HandleValue(1, URL, b"x")]
    assert await acl.is_admin(ALICE, values, P.ADD_VALUE)
    assert not await acl.is_admin(BOB, values, P.ADD_VALUE)
    assert not await acl.is_admin(Identity("20.500/alice", 301), values, P.ADD_VALUE)


async def test_handle_compared_case_insensitively(acl):
    values = [admin(100, "20.500/ALICE", 300)]
    assert await acl.is_admin(Identity("20.500/Alice", 300), values, P.DELETE_HANDLE)


async def test_admin_reference_index_zero_means_any_key(acl):
    values = [admin(100, "20.500/alice", 0)]
    assert await acl.is_admin(Identity("20.500/alice", 7), values, P.DELETE_HANDLE)


async def test_no_admin_values(acl):
    assert not await acl.is_admin(ALICE, [], P.ADD_VALUE)
    assert not await acl.is_admin(ALICE, [HandleValue(1, URL, b"20.500/alice")], P.ADD_VALUE)


async def test_damaged_admin_value_grants_nothing(acl):
    values = [HandleValue(100, HS_ADMIN, b"\x0f\xff\x00"), admin(101, "20.500/bob", 300)]
    assert not await acl.is_admin(ALICE, values, P.ADD_VALUE)
    assert await acl.is_admin(BOB, values, P.ADD_VALUE)


@pytest.mark.parametrize("bit", BITS, ids=lambda b: b.name)
async def test_each_bit_grants_only_itself(acl, bit):
    only = [admin(100, "20.500/alice", 300, bit)]
    assert await acl.is_admin(ALICE, only, bit)
    for other in BITS:
        if other is not bit:
            assert not await acl.is_admin(ALICE, only, other)
    all_but = [admin(100, "20.500/alice", 300, ALL_PERMISSIONS & ~bit)]
    assert not await acl.is_admin(ALICE, all_but, bit)
    for other in BITS:
        if other is not bit:
            assert await acl.is_admin(ALICE, all_but, other)


@pytest.mark.parametrize("bit", BITS, ids=lambda b: b.name)
async def test_each_bit_through_authorize(acl, bit):
    """Own bits come from the handle's admins, ADD_NA / DELETE_NA from the parent prefix's."""
    na = bit in (P.ADD_NA, P.DELETE_NA)
    handle = "0.NA/20.500.1" if na else "20.500/h"
    grant = [admin(100, "20.500/alice", 300, bit)]
    others = [admin(100, "20.500/alice", 300, ALL_PERMISSIONS & ~bit)]
    if na:
        await acl.authorize(ALICE, handle, bit, record=others, prefix_record=grant)
        refused = {"record": grant, "prefix_record": others}
    else:
        await acl.authorize(ALICE, handle, bit, record=grant, prefix_record=[])
        refused = {"record": others, "prefix_record": others}
    with pytest.raises(NotAuthorized):
        await acl.authorize(ALICE, handle, bit, **refused)
    with pytest.raises(NotAuthorized):
        await acl.authorize(BOB, handle, bit, record=grant, prefix_record=grant)


async def test_needed_bits_must_come_from_one_value(acl):
    values = [
        admin(100, "20.500/alice", 300, P.ADD_VALUE),
        admin(101, "20.500/alice", 300, P.REMOVE_VALUE),
    ]
    assert await acl.is_admin(ALICE, values, P.ADD_VALUE)
    assert not await acl.is_admin(ALICE, values, P.ADD_VALUE | P.REMOVE_VALUE)
    both = [admin(102, "20.500/alice", 300, P.ADD_VALUE | P.REMOVE_VALUE)]
    assert await acl.is_admin(ALICE, both, P.ADD_VALUE | P.REMOVE_VALUE)


# --------------------------------------------------------------------- groups


async def test_admin_via_vlist(store, acl):
    await store.create_handle("20.500/group", [vlist(200, Ref("20.500/alice", 300))])
    values = [admin(100, "20.500/group", 200)]
    assert await acl.is_admin(ALICE, values, P.ADD_VALUE)
    assert not await acl.is_admin(BOB, values, P.ADD_VALUE)


async def test_vlist_member_index_zero(store, acl):
    await store.create_handle("20.500/group", [vlist(200, Ref("20.500/ALICE", 0))])
    assert await acl.is_admin(
        Identity("20.500/alice", 42), [admin(100, "20.500/group", 200)], P.ADD_VALUE
    )


async def test_group_permissions_come_from_the_admin_value(store, acl):
    await store.create_handle("20.500/group", [vlist(200, Ref("20.500/alice", 300))])
    values = [admin(100, "20.500/group", 200, P.ADD_VALUE)]
    assert not await acl.is_admin(ALICE, values, P.DELETE_HANDLE)


async def test_nested_vlist(store, acl):
    await store.create_handle("20.500/outer", [vlist(200, Ref("20.500/inner", 201))])
    await store.create_handle(
        "20.500/inner", [vlist(201, Ref("20.500/nobody", 300), Ref("20.500/bob", 300))]
    )
    values = [admin(100, "20.500/outer", 200)]
    assert await acl.is_admin(BOB, values, P.ADD_VALUE)
    assert not await acl.is_admin(ALICE, values, P.ADD_VALUE)


async def test_loop_terminates(store, acl):
    await store.create_handle("20.500/a", [vlist(200, Ref("20.500/b", 200))])
    await store.create_handle(
        "20.500/b", [vlist(200, Ref("20.500/a", 200), Ref("20.500/B", 200), Ref("20.500/c", 200))]
    )
    await store.create_handle(
        "20.500/c", [vlist(200, Ref("20.500/a", 200), Ref("20.500/bob", 300))]
    )
    values = [admin(100, "20.500/a", 200)]
    assert not await acl.is_admin(ALICE, values, P.ADD_VALUE)
    assert await acl.is_admin(BOB, values, P.ADD_VALUE)


async def test_self_referencing_group(store, acl):
    await store.create_handle("20.500/self", [vlist(200, Ref("20.500/self", 200))])
    assert not await acl.is_admin(ALICE, [admin(100, "20.500/self", 200)], P.ADD_VALUE)


async def chain(store, length: int) -> list[HandleValue]:
    """g0 -> g1 -> ... -> g(length-1) -> alice; returns the HS_ADMIN naming g0."""
    for i in range(length):
        nxt = Ref(f"20.500/g{i + 1}", 200) if i + 1 < length else Ref("20.500/alice", 300)
        await store.create_handle(f"20.500/g{i}", [vlist(200, nxt)])
    return [admin(100, "20.500/g0", 200)]


async def test_depth_bound(store):
    values = await chain(store, 4)
    assert await AccessControl(store, max_depth=4).is_admin(ALICE, values, P.ADD_VALUE)
    assert not await AccessControl(store, max_depth=3).is_admin(ALICE, values, P.ADD_VALUE)
    assert not await AccessControl(store, max_depth=0).is_admin(ALICE, values, P.ADD_VALUE)


async def test_default_depth_is_eight(store):
    values = await chain(store, 9)
    assert not await AccessControl(store).is_admin(ALICE, values, P.ADD_VALUE)
    await store.delete_handle("20.500/g0")
    values = [admin(100, "20.500/g1", 200)]  # the same chain, one shorter
    assert await AccessControl(store).is_admin(ALICE, values, P.ADD_VALUE)


async def test_lookup_bound(store):
    members = [Ref(f"20.500/m{i}", 200) for i in range(10)] + [Ref("20.500/alice", 300)]
    await store.create_handle("20.500/wide", [vlist(200, *members)])
    for i in range(10):
        await store.create_handle(f"20.500/m{i}", [vlist(200, Ref("20.500/x", 1))])
    await store.create_handle("20.500/top", [vlist(200, Ref("20.500/wide", 200))])
    deep = [admin(100, "20.500/top", 200)]
    assert await AccessControl(store).is_admin(ALICE, deep, P.ADD_VALUE)
    # alice sits in "wide" (second lookup), so two lookups suffice and one does not
    assert await AccessControl(store, max_lookups=2).is_admin(ALICE, deep, P.ADD_VALUE)
    assert not await AccessControl(store, max_lookups=1).is_admin(ALICE, deep, P.ADD_VALUE)
    assert not await AccessControl(store, max_lookups=5).is_admin(BOB, deep, P.ADD_VALUE)


async def test_group_references_that_are_not_groups(store, acl):
    await store.create_handle(
        "20.500/odd", [HandleValue(200, URL, b"20.500/alice"), HandleValue(201, HS_VLIST, b"\x00")]
    )
    for values in (
        [admin(100, "20.500/odd", 200)],  # not an HS_VLIST
        [admin(100, "20.500/odd", 201)],  # damaged HS_VLIST
        [admin(100, "20.500/odd", 999)],  # no such index
        [admin(100, "20.500/missing", 200)],  # no such handle
        [admin(100, "20.500/odd", 0)],  # index 0 names no group
    ):
        assert not await acl.is_admin(ALICE, values, P.ADD_VALUE)


# --------------------------------------------------------------------- keys


async def test_key_values(acl):
    assert (await acl.key_values(ALICE)).type == HS_PUBKEY
    assert (await acl.key_values(BOB)).data == b"pw"
    assert await acl.key_values(Identity("20.500/alice", 1)) is None  # a URL, not a key
    assert await acl.key_values(Identity("20.500/alice", 5)) is None
    assert await acl.key_values(Identity("20.500/nobody", 300)) is None


async def test_find_keys(store, acl):
    await store.add_values("20.500/alice", [pubkey(301), HandleValue(302, HS_SECKEY, b"s")])
    assert [v.index for v in await acl.find_keys("20.500/alice", 0, HS_PUBKEY)] == [300, 301]
    assert [v.index for v in await acl.find_keys("20.500/alice", 301, HS_PUBKEY)] == [301]
    assert await acl.find_keys("20.500/alice", 302, HS_PUBKEY) == []
    assert await acl.find_keys("20.500/none", 0, HS_PUBKEY) == []


# --------------------------------------------------------------------- authorize


def test_governing_prefix_handle():
    assert governing_prefix_handle("20.500.1/abc") == "0.NA/20.500.1"
    assert governing_prefix_handle("20.500.1/a/b") == "0.NA/20.500.1"
    assert governing_prefix_handle("0.NA/20.500.1") == "0.NA/20.500"
    assert governing_prefix_handle("0.na/20.500") == "0.NA/20"
    assert governing_prefix_handle("0.NA/20") == "0.NA/0.NA"
    assert governing_prefix_handle("0.NA/0.NA") == "0.NA/0.NA"
    assert governing_prefix_handle("20") == "0.NA/20"
    assert (
        is_prefix_handle("0.na/x") and not is_prefix_handle("0.NA/") and not is_prefix_handle("x/y")
    )


async def test_anonymous_needs_authentication(acl):
    with pytest.raises(AuthenticationNeeded) as err:
        await acl.authorize(None, "20.500/alice", P.ADD_VALUE)
    assert err.value.code == 402


async def test_not_authorized_code(acl):
    with pytest.raises(NotAuthorized) as err:
        await acl.authorize(BOB, "20.500/alice", P.ADD_VALUE)
    assert err.value.code == 400
    assert "ADD_VALUE" in err.value.message and "300:20.500/bob" in err.value.message


async def test_existing_handle_governed_by_own_admins(store, acl):
    await store.create_handle("20.500/h", [admin(100, "20.500/alice", 300, P.MODIFY_VALUE)])
    await acl.authorize(ALICE, "20.500/h", P.MODIFY_VALUE)  # read from the store
    with pytest.raises(NotAuthorized):
        await acl.authorize(ALICE, "20.500/h", P.DELETE_HANDLE)
    with pytest.raises(NotAuthorized):
        await acl.authorize(BOB, "20.500/h", P.MODIFY_VALUE)


async def test_create_governed_by_prefix_admins(store, acl):
    await store.create_handle("0.NA/20.500", [admin(100, "20.500/alice", 300, P.ADD_HANDLE)])
    await acl.authorize(ALICE, "20.500/new", P.ADD_HANDLE)
    await acl.authorize(ALICE, "20.500/new", P.ADD_HANDLE, record=None)
    with pytest.raises(NotAuthorized):
        await acl.authorize(BOB, "20.500/new", P.ADD_HANDLE)
    with pytest.raises(NotAuthorized):  # prefix admin without ADD_HANDLE
        await acl.authorize(
            ALICE,
            "20.500/new",
            P.ADD_HANDLE,
            record=None,
            prefix_record=[admin(100, "20.500/alice", 300, P.DELETE_HANDLE)],
        )
    with pytest.raises(NotAuthorized):  # no prefix handle at all
        await acl.authorize(ALICE, "20.501/new", P.ADD_HANDLE)


async def test_create_via_prefix_group(store, acl):
    await store.create_handle("20.500/admins", [vlist(200, Ref("20.500/bob", 300))])
    await store.create_handle("0.NA/20.500", [admin(100, "20.500/admins", 200, P.ADD_HANDLE)])
    await acl.authorize(BOB, "20.500/new", P.ADD_HANDLE)


async def test_prefix_admins_inherit(store):
    await store.create_handle("0.NA/20.500", [admin(100, "20.500/alice", 300, P.MODIFY_VALUE)])
    await store.create_handle("20.500/h", [admin(100, "20.500/bob", 300)])
    await AccessControl(store).authorize(ALICE, "20.500/h", P.MODIFY_VALUE)
    with pytest.raises(NotAuthorized):  # the prefix admin lacks DELETE_HANDLE
        await AccessControl(store).authorize(ALICE, "20.500/h", P.DELETE_HANDLE)
    strict = AccessControl(store, prefix_admins_inherit=False)
    with pytest.raises(NotAuthorized):
        await strict.authorize(ALICE, "20.500/h", P.MODIFY_VALUE)
    await strict.authorize(BOB, "20.500/h", P.MODIFY_VALUE)


async def test_missing_handle_other_bits_only_by_prefix_admins(store):
    await store.create_handle("0.NA/20.500", [admin(100, "20.500/alice", 300, P.DELETE_HANDLE)])
    await AccessControl(store).authorize(ALICE, "20.500/gone", P.DELETE_HANDLE)
    with pytest.raises(NotAuthorized):
        await AccessControl(store, prefix_admins_inherit=False).authorize(
            ALICE, "20.500/gone", P.DELETE_HANDLE
        )


async def test_derived_prefix_needs_parent_admins(store, acl):
    await store.create_handle(
        "0.NA/20.500", [admin(100, "20.500/alice", 300, P.ADD_NA | P.ADD_HANDLE)]
    )
    await acl.authorize(ALICE, "0.NA/20.500.7", P.ADD_NA)
    with pytest.raises(NotAuthorized):
        await acl.authorize(BOB, "0.NA/20.500.7", P.ADD_NA)
    # the derived prefix's own admins cannot delete it: DELETE_NA comes from the parent
    await store.create_handle("0.NA/20.500.7", [admin(100, "20.500/bob", 300)])
    with pytest.raises(NotAuthorized):
        await acl.authorize(BOB, "0.NA/20.500.7", P.DELETE_NA)
    with pytest.raises(NotAuthorized):  # alice has ADD_NA, not DELETE_NA
        await acl.authorize(ALICE, "0.NA/20.500.7", P.DELETE_NA)


async def test_na_bits_and_own_bits_together(store, acl):
    await store.create_handle("0.NA/20.500", [admin(100, "20.500/alice", 300, P.DELETE_NA)])
    await store.create_handle("0.NA/20.500.7", [admin(100, "20.500/alice", 300, P.DELETE_HANDLE)])
    await acl.authorize(ALICE, "0.NA/20.500.7", P.DELETE_NA | P.DELETE_HANDLE)
    strict = AccessControl(store, prefix_admins_inherit=False)
    await strict.authorize(ALICE, "0.NA/20.500.7", P.DELETE_NA | P.DELETE_HANDLE)
    with pytest.raises(NotAuthorized):
        await strict.authorize(ALICE, "0.NA/20.500.7", P.DELETE_NA | P.ADD_VALUE)


async def test_operators_may_do_everything(store):
    acl = AccessControl(store, operators=[Identity("0.na/20.500", 300)])
    for bit in BITS:
        await acl.authorize(ROOT, "20.500/anything", bit, record=[], prefix_record=[])
    assert acl.is_operator(ROOT) and not acl.is_operator(ALICE) and not acl.is_operator(None)
    with pytest.raises(AuthenticationNeeded):
        await acl.authorize(None, "20.500/anything", P.ADD_VALUE)


async def test_list_handles_on_prefix_handle(store, acl):
    await store.create_handle("0.NA/20.500", [admin(100, "20.500/alice", 300, P.LIST_HANDLES)])
    await acl.authorize(ALICE, "0.NA/20.500", P.LIST_HANDLES)
    with pytest.raises(NotAuthorized):
        await acl.authorize(BOB, "0.NA/20.500", P.LIST_HANDLES)
