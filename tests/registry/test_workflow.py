"""Governance through the registry's services, in process: every bad input of issue 6 gives an
error naming the field or row and leaves nothing half-written."""

from __future__ import annotations

import pytest

from idnode.auth.identity import Identity
from idnode.codes import ResponseCode
from idnode.errors import IdnodeError, NotAuthorized
from idnode.model import HS_ADMIN, HandleValue
from idnode.registry.errors import RegistryError, Unauthenticated
from idnode.registry.prefixes import RECORD_RIGHTS
from idnode.registry.states import IdentifierGone
from idnode.registry.templates import TemplateViolation
from idnode.service.resolve import ResolutionQuery

from .conftest import CONTACT, OTHER_CODE, VALID_CODE, row


async def count(env, table: str) -> int:
    return await env.reg.store.query_value(f"SELECT count(*) FROM {{s}}.{table}")


async def test_malformed_credit_code_writes_nothing(env):
    before = await env.audit_count()
    with pytest.raises(RegistryError) as exc:
        await env.reg.organisations.apply("t", "ACME Ltd", VALID_CODE[:17] + "0", CONTACT)
    assert exc.value.field == "credit_code"
    assert await count(env, "organisations") == 0 and await env.audit_count() == before


async def test_bad_contact_names_the_field(env):
    with pytest.raises(RegistryError) as exc:
        await env.reg.organisations.apply("t", "ACME Ltd", VALID_CODE, {**CONTACT, "email": "x"})
    assert exc.value.field == "contact.email"
    assert await count(env, "organisations") == 0


async def test_unapproved_organisation_cannot_hold_a_prefix(env):
    reg = env.reg
    org = await reg.organisations.apply("t", "ACME Ltd", VALID_CODE, CONTACT)
    with pytest.raises(RegistryError) as exc:
        await reg.prefixes.apply("t", "88.123.4567", org["id"], "auto-parts")
    assert exc.value.field == "org_id" and "not approved" in exc.value.message
    await reg.organisations.reject("op", org["id"], "licence copy unreadable")
    with pytest.raises(RegistryError, match="not approved"):
        await reg.prefixes.apply("t", "88.123.4567", org["id"], "auto-parts")
    assert await count(env, "prefixes") == 0
    states = [h["to_state"] for h in await reg.organisations.history(org["id"])]
    assert states == ["pending", "rejected"]


@pytest.mark.parametrize(
    ("prefix", "says"),
    [
        ("86.100.4567", "outside this node's prefix space"),
        ("88.1234.4567", "outside this node's prefix space"),
        ("88.123", "outside this node's prefix space"),
        ("88.123.45", "breaks the coding rule"),
        ("88.123.4567.1", "at most 1 segment"),
        ("88.123.4567/x", "dotted prefix"),
    ],
)
async def test_prefix_outside_the_node_space(env, prefix, says):
    reg = env.reg
    org = await reg.organisations.apply("t", "ACME Ltd", VALID_CODE, CONTACT)
    await reg.organisations.approve("t", org["id"])
    with pytest.raises(RegistryError) as exc:
        await reg.prefixes.apply("t", prefix, org["id"], "auto-parts")
    assert exc.value.field == "prefix" and says in exc.value.message
    assert await count(env, "prefixes") == 0


async def test_allocation_makes_the_organisation_admin(env):
    org = await env.allocated()
    reg = env.reg
    assert reg.homed.homes_prefix("88.123.4567")
    assert "88.123.4567" in await reg.store.homed_prefixes()
    account, token, extra = await reg.accounts.create("t", "bot", "registrar", org["id"])
    assert (await reg.accounts.authenticate(token)).identity == account.identity
    assert account.identity == Identity("88.123/acct-bot", 300)
    admin = reg.admin_value(reg.accounts.group_handle(org["credit_code"]), RECORD_RIGHTS)
    good = [HandleValue(1, "PART_NUMBER", b"BP-1"), HandleValue(2, "PART_NAME", b"Pad"),
            HandleValue(3, "MODEL", b"X"), HandleValue(4, "BATCH", b"B1"),
            HandleValue(6, "PRODUCTION_DATE", b"2026-11-02"),
            HandleValue(7, "MANUFACTURER", b"ACME"), HandleValue(100, HS_ADMIN, admin)]  # fmt: skip
    # the registrar's identity holds the organisation's rights (the same on REST and wire)
    await reg.admin.create_handle(account.identity, "88.123.4567/ok-1", good)
    await reg.admin.modify_values(account.identity, "88.123.4567/ok-1",
                                  [HandleValue(4, "BATCH", b"B2")])  # fmt: skip
    # ... and no rights anywhere else
    other = await env.allocated("88.123.7654", OTHER_CODE)
    outsider, _, _ = await reg.accounts.create("t", "other-bot", "registrar", other["id"])
    with pytest.raises(NotAuthorized):
        await reg.admin.create_handle(outsider.identity, "88.123.4567/ok-2", good)
    with pytest.raises(NotAuthorized):
        await reg.admin.modify_values(outsider.identity, "88.123.4567/ok-1",
                                      [HandleValue(4, "BATCH", b"B3")])  # fmt: skip
    hist = await reg.lifecycle.history("88.123.4567/ok-1")
    assert [v["action"] for v in hist["versions"]] == ["create", "modify"]


async def test_template_violation_on_the_write_path_writes_nothing(env):
    await env.allocated()
    reg = env.reg
    audit, versions = await env.audit_count(), await count(env, "versions")
    values = [HandleValue(1, "PART_NUMBER", b"BP-1"), HandleValue(6, "PRODUCTION_DATE", b"x")]
    with pytest.raises(TemplateViolation) as exc:  # what wire and REST creates call
        await reg.admin.create_handle(reg.operator, "88.123.4567/bad", values)
    assert exc.value.code == ResponseCode.INVALID_VALUE
    assert "field PART_NAME: required field is missing" in exc.value.message
    assert await reg.store.get_handle("88.123.4567/bad") is None
    assert await env.audit_count() == audit and await count(env, "versions") == versions


async def test_expired_token(env):
    reg = env.reg
    _, token, _ = await reg.accounts.create("t", "op2", "operator", ttl_seconds=60)
    assert (await reg.accounts.authenticate(token)).name == "op2"
    env.clock.advance(61)
    with pytest.raises(Unauthenticated) as exc:
        await reg.accounts.authenticate(token)
    assert exc.value.field == "Authorization" and "expired" in exc.value.message
    with pytest.raises(Unauthenticated, match="unknown"):
        await reg.accounts.authenticate(token + "x")


async def test_csv_broken_rows_are_reported_and_never_half_written(env):
    await env.allocated()
    reg = env.reg
    rows = [row(1), row(2, BATCH=""), row(3)[:4], row(4, PRODUCTION_DATE="2026-02-30"),
            row(1), row(5)]  # fmt: skip
    src = env.csv(rows)
    job = await reg.imports.create(reg.operator, "console", "88.123.4567", src, "csv", batch_size=2)
    job = await reg.imports.run(job["id"])
    assert (job["state"], job["imported"], job["rejected"]) == ("done", 2, 4)
    report = (await reg.imports.rejects_csv(job["id"])).splitlines()
    assert report == [
        "row,field,message",
        "3,BATCH,required field is missing",
        '4,row,"has 4 cells, header has 7"',
        "5,PRODUCTION_DATE,is not a valid date",
        "6,suffix,repeats the suffix of row 2",
    ]
    assert await reg.store.count_handles("88.123.4567") == 2


async def test_strict_import_with_a_broken_row_writes_nothing(env):
    await env.allocated()
    reg = env.reg
    src = env.csv([row(1), row(2), row(3)[:2], row(4)])
    job = await reg.imports.create(reg.operator, "console", "88.123.4567", src, "csv",
                                   strict=True)  # fmt: skip
    job = await reg.imports.run(job["id"])
    assert job["state"] == "failed"
    assert job["error"].startswith("row 4: 1 row(s) rejected, nothing imported")
    assert await reg.store.count_handles("88.123.4567") == 0


async def test_import_refuses_unknown_columns_and_other_templates(env):
    await env.allocated()
    reg = env.reg
    src = env.tmp / "cols.csv"
    src.write_text("suffix,PART_NUMBER,COLOUR\nP1,BP-1,red\n")
    with pytest.raises(RegistryError) as exc:
        await reg.imports.create(reg.operator, "console", "88.123.4567", src, "csv")
    assert exc.value.field == "row 1" and "COLOUR" in exc.value.message
    with pytest.raises(RegistryError) as exc:
        await reg.imports.create(reg.operator, "console", "88.123.4567", src, "csv",
                                 "pharmaceuticals")  # fmt: skip
    assert exc.value.field == "template"
    assert await count(env, "jobs") == 0


async def test_import_resumes_after_a_crash_without_duplicates(env, monkeypatch):
    """A batch commits with its progress, audit entry and counts: a crash between batches
    loses nothing and the resumed run writes nothing twice."""
    await env.allocated()
    reg = env.reg
    src = env.csv([row(i) for i in range(10)])
    job = await reg.imports.create(reg.operator, "console", "88.123.4567", src, "csv", batch_size=3)
    commit, done = reg.imports._commit, []

    async def crash_after_two(*args, **kw):
        if len(done) == 2:
            raise KeyboardInterrupt  # the process dies here
        await commit(*args, **kw)
        done.append(1)

    monkeypatch.setattr(reg.imports, "_commit", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        await reg.imports.run(job["id"])
    crashed = await reg.imports.get(job["id"])
    assert (crashed["state"], crashed["batches_done"], crashed["imported"]) == ("running", 2, 6)
    assert await reg.store.count_handles("88.123.4567") == 6
    monkeypatch.undo()
    job = await reg.imports.run(job["id"])
    assert (job["state"], job["imported"], job["rejected"]) == ("done", 10, 0)
    assert await reg.store.count_handles("88.123.4567") == 10
    stats = await reg.stats.daily("88.123.4567")
    assert sum(r["registrations"] for r in stats) == 10


async def test_revoked_identifier_is_a_tombstone(env):
    org = await env.allocated()
    reg = env.reg
    src = env.csv([row(1), row(2)])
    job = await reg.imports.create(reg.operator, "console", "88.123.4567", src, "csv")
    await reg.imports.run(job["id"])
    admin, _, _ = await reg.accounts.create("t", "boss", "org_admin", org["id"])
    clerk, _, _ = await reg.accounts.create("t", "clerk", "registrar", org["id"])
    with pytest.raises(RegistryError, match="only an organisation admin"):
        await reg.lifecycle.set_state(clerk, "88.123.4567/P00001", "revoked", "recall")
    with pytest.raises(RegistryError) as exc:
        await reg.lifecycle.set_state(admin, "88.123.4567/P00001", "revoked", "")
    assert exc.value.field == "reason"
    await reg.lifecycle.set_state(admin, "88.123.4567/P00001", "revoked", "recalled")
    resolver = env.node.resolver
    with pytest.raises(IdentifierGone) as gone:
        await resolver.resolve(ResolutionQuery("88.123.4567/p00001"))
    assert gone.value.code == ResponseCode.HANDLE_NOT_FOUND
    assert gone.value.message.startswith("revoked: 88.123.4567/p00001 was revoked on 2026-11-0")
    assert await resolver.resolve(ResolutionQuery("88.123.4567/P00002"))
    with pytest.raises(IdnodeError, match="revoked"):  # no rewrite on any path
        await reg.admin.modify_values(reg.operator, "88.123.4567/P00001",
                                      [HandleValue(4, "BATCH", b"B9")])  # fmt: skip
    with pytest.raises(IdnodeError, match="revoked"):  # nor a deletion
        await reg.admin.delete_handle(reg.operator, "88.123.4567/P00001")
    with pytest.raises(RegistryError, match="final"):
        await reg.lifecycle.set_state(None, "88.123.4567/P00001", "active", "")
    hist = await reg.lifecycle.history("88.123.4567/P00001")
    assert hist["state"] == "revoked"
    assert hist["versions"][0]["values"][0]["type"] == "PART_NUMBER"


async def test_suspended_prefix_answers_tombstones_and_refuses_writes(env):
    await env.allocated()
    reg = env.reg
    src = env.csv([row(1)])
    await reg.imports.run((await reg.imports.create(reg.operator, "c", "88.123.4567", src,
                                                    "csv"))["id"])  # fmt: skip
    await reg.prefixes.suspend("op", "88.123.4567", "licence under review")
    with pytest.raises(IdentifierGone, match="suspended: prefix 88.123.4567 is suspended"):
        await env.node.resolver.resolve(ResolutionQuery("88.123.4567/P00001"))
    with pytest.raises(IdnodeError, match="no writes are accepted"):
        await reg.admin.modify_values(
            reg.operator, "88.123.4567/P00001", [HandleValue(4, "BATCH", b"B9")]
        )
    with pytest.raises(IdnodeError, match="no writes are accepted"):
        await reg.admin.delete_handle(reg.operator, "88.123.4567/P00001")
    assert await reg.store.get_handle("88.123.4567/P00001")  # still there
    await reg.prefixes.reinstate("op", "88.123.4567")
    assert await env.node.resolver.resolve(ResolutionQuery("88.123.4567/P00001"))


async def test_statistics_and_monthly_report(env):
    await env.allocated()
    reg = env.reg
    src = env.csv([row(i) for i in range(5)])
    await reg.imports.run((await reg.imports.create(reg.operator, "c", "88.123.4567", src,
                                                    "csv"))["id"])  # fmt: skip
    for _ in range(3):
        await env.node.resolver.resolve(ResolutionQuery("88.123.4567/P00001"))
    resolved = "SELECT sum(resolutions) FROM {s}.stats_daily"
    assert await reg.store.query_value(resolved) == 0  # nothing written per request
    text = (await reg.stats.render()).decode()
    assert 'idnode_resolutions_total{prefix="88.123.4567"} 3.0' in text
    report = await reg.stats.monthly_report("2026-11")
    (p,) = report["prefixes"]
    assert (p["registrations"], p["resolutions"], p["identifiers"]) == (5, 3, 5)
    assert report["audit_head"]
    with pytest.raises(RegistryError) as exc:
        await reg.stats.monthly_report("2026-1")
    assert exc.value.field == "month"
