"""Issue 20, organisation control: suspend, reinstate, edit and dissolve an approved
organisation; its prefixes follow (suspended -> its identifiers answer the tombstone and
refuse writes; dissolved -> its prefixes are withdrawn and its accounts disabled), and the
organisation's change and its prefixes' commit in one transaction with their audit entries.
In process through the node's real HTTP app."""

from __future__ import annotations

import pytest

from idnode.errors import InvalidValue
from idnode.model import HS_SECKEY
from idnode.registry.accounts import REGISTRAR
from idnode.registry.states import IdentifierGone
from tests.registry.conftest import OTHER_CODE, Env
from tests.registry.test_account_control import bearer, client, key_types, values

PREFIX, SECOND = "88.123.4567", "88.123.4569"


async def setup(env: Env) -> tuple[dict, str, str, object]:
    org = await env.allocated(PREFIX)
    await env.reg.prefixes.apply("t", SECOND, org["id"], "auto-parts")
    await env.reg.prefixes.approve("t", SECOND)
    await env.reg.prefixes.allocate("t", SECOND)
    _, op, _ = await env.reg.accounts.create("t", "op1", "operator")
    account, token, _ = await env.reg.accounts.create("t", "line-7", REGISTRAR, org["id"])
    await env.reg.admin.create_handle(account.identity, f"{PREFIX}/S-1", values())
    return org, op, token, account


async def test_suspending_an_organisation_closes_its_prefixes_and_reinstating_reopens_them(env):
    org, op, token, account = await setup(env)
    other = await env.allocated("88.123.4568", OTHER_CODE)
    await env.reg.prefixes.suspend("t", SECOND, "unpaid fee")  # the operator's own suspension
    audit_before = await env.audit_count()
    async with client(env) as c:
        r = await c.post(f"/api/mgmt/organisations/{org['id']}/suspend", headers=bearer(op),
                         json={"reason": "licence withdrawn"})  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "suspended" and r.json()["prefixes"] == {PREFIX: "suspended"}
        # one entry for the organisation, one per prefix, in the same transaction
        assert await env.audit_count() == audit_before + 2
        with pytest.raises(IdentifierGone, match="suspended"):
            env.reg.gate(f"{PREFIX}/S-1")
        with pytest.raises(InvalidValue, match="suspended"):
            await env.reg.admin.create_handle(env.reg.operator, f"{PREFIX}/S-2", values())
        env.reg.gate("88.123.4568/anything")  # another organisation's prefix is untouched
        assert (await c.get("/api/mgmt/whoami", headers=bearer(token))).status_code == 401
        assert (await c.post(f"/api/mgmt/organisations/{org['id']}/suspend", headers=bearer(op),
                             json={"reason": "x"})).status_code == 400  # fmt: skip
        empty = await c.post(f"/api/mgmt/organisations/{other['id']}/suspend",
                             headers=bearer(op), json={"reason": " "})  # fmt: skip
        assert empty.status_code == 400 and empty.json()["error"]["field"] == "reason"
        r = await c.post(f"/api/mgmt/organisations/{org['id']}/reinstate", headers=bearer(op))
        assert r.status_code == 200 and r.json()["state"] == "approved", r.text
        assert r.json()["prefixes"] == {PREFIX: "allocated"}
    env.reg.gate(f"{PREFIX}/S-1")
    assert (await env.reg.prefixes.get(SECOND))["state"] == "suspended"  # stays as it was
    history = [h["to_state"] for h in await env.reg.organisations.history(org["id"])]
    assert history[-2:] == ["suspended", "approved"]


async def test_dissolving_withdraws_the_prefixes_and_disables_every_account(env):
    org, op, token, account = await setup(env)
    _, adm, _ = await env.reg.accounts.create("t", "adm1", "org_admin", org["id"])
    await env.reg.prefixes.apply("t", "88.123.4570", org["id"], "auto-parts")  # still applied
    async with client(env) as c:
        no = await c.post(f"/api/mgmt/organisations/{org['id']}/dissolve", headers=bearer(adm),
                          json={"reason": "merged"})  # fmt: skip
        assert no.status_code == 403
        r = await c.post(f"/api/mgmt/organisations/{org['id']}/dissolve", headers=bearer(op),
                         json={"reason": "merged into another group"})  # fmt: skip
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["state"] == "dissolved"
        assert body["prefixes"] == {PREFIX: "revoked", SECOND: "revoked",
                                    "88.123.4570": "rejected"}  # fmt: skip
        assert sorted(body["accounts_disabled"]) == ["adm1", "line-7"]
        for t in (token, adm):
            assert (await c.get("/api/mgmt/whoami", headers=bearer(t))).status_code == 401
        assert HS_SECKEY not in await key_types(env, "line-7")
        with pytest.raises(IdentifierGone, match="revoked"):
            env.reg.gate(f"{PREFIX}/S-1")
        again = await c.post(f"/api/mgmt/organisations/{org['id']}/reinstate", headers=bearer(op))
        assert again.status_code == 400
        edit = await c.patch(f"/api/mgmt/organisations/{org['id']}", headers=bearer(op),
                             json={"legal_name": "New name"})  # fmt: skip
        assert edit.status_code == 400
        enable = await c.post("/api/mgmt/accounts/line-7/enable", headers=bearer(op))
        assert enable.status_code == 400 and "dissolved" in enable.json()["error"]["message"]
    count, findings = await env.reg.audit.verify()
    assert not findings


async def test_editing_an_organisation_checks_every_field_and_changes_nothing_when_wrong(env):
    org, op, _, _ = await setup(env)
    async with client(env) as c:
        url = f"/api/mgmt/organisations/{org['id']}"
        bad = await c.patch(
            url,
            headers=bearer(op),
            json={
                "legal_name": "Fujian Auto Parts Group",
                "contact": {"name": "Chen", "phone": "+86 591 1234567", "email": "not-mail"},
            },
        )
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "contact.email"
        assert (await env.reg.organisations.get(org["id"]))["legal_name"] == org["legal_name"]
        before = await env.audit_count()
        ok = await c.patch(url, headers=bearer(op), json={"legal_name": "Fujian Auto Parts Group"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["legal_name"] == "Fujian Auto Parts Group"
        assert ok.json()["credit_code"] == org["credit_code"]
        assert await env.audit_count() == before + 1
        code = await c.patch(url, headers=bearer(op), json={"credit_code": "x"})
        assert code.status_code in (400, 422)
        empty = await c.patch(url, headers=bearer(op), json={})
        assert empty.status_code == 400
