"""Governance state lives in the store: effects commit with the change that causes them.

Runs against every engine (tests/store/conftest.py): SQLite and a real PostgreSQL server.
"""

from __future__ import annotations

import asyncio

import pytest

from idnode.errors import HandleAlreadyExists, IdnodeError
from idnode.model import HandleValue
from idnode.store.audit_chain import HEAD_KEY, state_digest, verify_chain
from idnode.store.effects import AuditEntry, Count, EffectRefused, Effects, Statement, Version
from idnode.store.governance import GET_META, STATE_VERSION_KEY, day_of

P = "20.500.1"
ORG = (
    "INSERT INTO {s}.organisations (legal_name, credit_code, contact, documents, state,"
    " created_at, updated_at) VALUES (?, ?, '{}', '[]', ?, 0, 0) RETURNING id"
)


def v(index: int, data: bytes = b"x") -> HandleValue:
    return HandleValue(index, "URL", data)


def audit(action: str, target: str, before=None, after=None) -> AuditEntry:
    return AuditEntry("tester", action, target, state_digest(before), state_digest(after))


async def audit_rows(store):
    return await store.query("SELECT * FROM {s}.audit ORDER BY seq")


async def test_a_write_and_its_effects_commit_together(store, clock):
    serial = await store.create_handle(
        f"{P}/a",
        [v(1)],
        effects=Effects(
            versions=(Version(f"{P}/a", "create", "tester", (v(1),)),),
            audit=(audit("handle.create", f"{P}/a", None, [1]),),
            counts=(Count(P, registrations=1),),
        ),
    )
    kept = await store.history(f"{P}/a")
    assert [(k.action, k.actor, k.values) for k in kept] == [("create", "tester", [v(1)])]
    rows = await audit_rows(store)
    assert [(r["seq"], r["action"], r["target"]) for r in rows] == [(1, "handle.create", f"{P}/a")]
    count, findings = verify_chain(rows, await store.query_value(GET_META, HEAD_KEY))
    assert (count, findings) == (1, [])
    stats = await store.query("SELECT day, prefix, registrations FROM {s}.stats_daily")
    assert stats == [{"day": day_of(clock()), "prefix": P.upper(), "registrations": 1}]
    assert (await store.transactions())[-1].serial == serial


async def test_a_refused_effect_rolls_the_write_back(store):
    guard = Statement("UPDATE {s}.meta SET value = 'x' WHERE key = ?", ("missing",), expect=1)
    with pytest.raises(EffectRefused):
        await store.create_handle(
            f"{P}/b", [v(1)], effects=Effects(statements=(guard,), audit=(audit("a", "b"),))
        )
    assert await store.get_handle(f"{P}/b") is None
    assert await audit_rows(store) == []
    assert await store.serial() == 0


async def test_a_failed_write_applies_no_effect(store):
    await store.create_handle(f"{P}/c", [v(1)])
    with pytest.raises(HandleAlreadyExists):
        await store.create_handle(
            f"{P}/c", [v(1)], effects=Effects(counts=(Count(P, registrations=1),))
        )
    assert await store.query("SELECT * FROM {s}.stats_daily") == []


async def test_the_audit_chain_continues_across_writes_and_governance(store):
    await store.create_handle(f"{P}/d", [v(1)], effects=Effects(audit=(audit("h", "d"),)))
    await store.apply(Effects(audit=(audit("org.apply", "org:1"), audit("org.approve", "org:1"))))
    rows = await audit_rows(store)
    assert [r["seq"] for r in rows] == [1, 2, 3]
    assert verify_chain(rows, await store.query_value(GET_META, HEAD_KEY)) == (3, [])
    assert (await store.transactions())[-1].action == "registry"


async def test_counts_add_up_per_day_and_prefix(store):
    for _ in range(3):
        await store.apply(Effects(counts=(Count(P, registrations=2, resolutions=5),)))
    await store.apply(Effects(counts=(Count("other", resolutions=1, day="2020-01-01"),)))
    rows = await store.query(
        "SELECT day, prefix, registrations, resolutions FROM {s}.stats_daily ORDER BY day"
    )
    assert [(r["prefix"], r["registrations"], r["resolutions"]) for r in rows] == [
        ("OTHER", 0, 1),
        (P.upper(), 6, 15),
    ]


async def test_a_first_only_version_is_kept_once(store):
    await store.create_handle(f"{P}/e", [v(1)])
    for data in (b"2", b"3"):
        await store.modify_values(
            f"{P}/e",
            [v(1, data)],
            effects=Effects(
                versions=(
                    Version(f"{P}/e", "original", "", (v(1),), first_only=True),
                    Version(f"{P}/e", "modify", "t", (v(1, data),)),
                )
            ),
        )
    assert [k.action for k in await store.history(f"{P}/e")] == ["original", "modify", "modify"]


async def test_atomic_reads_its_own_writes_and_rolls_back_whole(store):
    async with store.atomic("registry", "org") as tx:
        org_id = await tx.fetchval(ORG, "ACME", "91350100M000100Y43", "pending")
        row = await tx.fetchrow("SELECT legal_name FROM {s}.organisations WHERE id = ?", org_id)
        assert row == {"legal_name": "ACME"}
        await tx.apply(Effects(audit=(audit("org.apply", f"org:{org_id}"),), states_changed=True))
    assert await store.query_value(GET_META, STATE_VERSION_KEY) == str(tx.serial)
    with pytest.raises(IdnodeError, match="boom"):
        async with store.atomic() as tx:
            await tx.fetchval(ORG, "Other", "914403001922038216", "pending")
            raise IdnodeError("boom")
    names = await store.query("SELECT legal_name FROM {s}.organisations")
    assert names == [{"legal_name": "ACME"}]
    assert len(await audit_rows(store)) == 1


async def test_governance_changes_are_announced(store):
    seen: list[int] = []
    await store.subscribe(seen.append)
    serial = await store.apply(Effects(states_changed=True, target="prefix:88"))
    # PostgreSQL delivers NOTIFY on the listening connection in its own time: wait for the
    # event itself (bounded), never for a fixed delay.
    for _ in range(600):
        if serial in seen:
            break
        await asyncio.sleep(0.05)
    assert serial in seen


async def test_governance_is_shared_by_every_store_on_the_same_database(make_store):
    one, two = make_store(), make_store()
    await one.open()
    await two.open()
    try:
        await one.apply(Effects(statements=(Statement(ORG, ("ACME", "c1", "approved")),)))
        assert await two.query("SELECT legal_name, state FROM {s}.organisations") == [
            {"legal_name": "ACME", "state": "approved"}
        ]
    finally:
        await one.close()
        await two.close()
