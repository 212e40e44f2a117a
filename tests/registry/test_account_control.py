"""Issue 20, account control: revoke a token, disable and re-enable an account, rotate its
key. Each change rewrites the management API token and the key handle's HS_SECKEY in one
transaction with its audit entry, so the old credential fails on every path at once.

In process through the node's real HTTP app (``build_app``) for the API's rules; the last
test serves the node (two workers) and writes over the binary protocol from the CLI."""

from __future__ import annotations

import base64
import subprocess

import httpx
import pytest

from idnode.errors import NotAuthorized
from idnode.model import HS_SECKEY, HandleValue, ValueReference
from idnode.registry.accounts import GROUP_INDEX, REGISTRAR
from idnode.transport.http import build_app
from idnode.wire.vlist import decode_vlist
from tests.conftest import IDNODE, free_port, serve_node, stop_node
from tests.registry.conftest import OTHER_CODE, Env

PREFIX = "88.123.4567"
FIELDS = {"PART_NUMBER": "BP-9", "PART_NAME": "Brake disc", "MODEL": "D1", "BATCH": "B9",
          "PRODUCTION_DATE": "2026-11-02", "MANUFACTURER": "Fujian Auto Parts"}  # fmt: skip


def client(env: Env) -> httpx.AsyncClient:
    app = build_app(env.node, extra_routes=env.node.routes)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 1),
                                    raise_app_exceptions=False)  # fmt: skip
    return httpx.AsyncClient(transport=transport, base_url="http://node")


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def values() -> list[HandleValue]:
    return [HandleValue(i, k, v.encode()) for i, (k, v) in enumerate(FIELDS.items(), 1)]


async def members(env: Env, code: str) -> list[ValueReference]:
    record = await env.reg.store.get_handle(env.reg.accounts.group_handle(code)) or []
    return list(next(decode_vlist(v.data) for v in record if v.index == GROUP_INDEX))


async def key_types(env: Env, name: str) -> list[str]:
    record = await env.reg.store.get_handle(env.reg.accounts.account_handle(name)) or []
    return [v.type for v in record]


async def actions(env: Env) -> list[str]:
    return [e["action"] for e in await env.reg.audit.entries(0, 1000)]


async def test_revoke_kills_the_token_and_the_key_and_rotate_issues_new_ones(env):
    org = await env.allocated(PREFIX)
    _, op, _ = await env.reg.accounts.create("t", "op1", "operator")
    _, token, _ = await env.reg.accounts.create("t", "line-7", REGISTRAR, org["id"])
    async with client(env) as c:
        assert (await c.get("/api/mgmt/whoami", headers=bearer(token))).status_code == 200
        r = await c.post("/api/mgmt/accounts/line-7/revoke-token", headers=bearer(op))
        assert r.status_code == 200, r.text
        assert r.json()["has_token"] is False and r.json()["disabled"] is False
        gone = await c.get("/api/mgmt/whoami", headers=bearer(token))
        assert gone.status_code == 401 and gone.json()["error"]["field"] == "Authorization"
        assert HS_SECKEY not in await key_types(env, "line-7")
        r = await c.post("/api/mgmt/accounts/line-7/rotate", headers=bearer(op))
        assert r.status_code == 200, r.text
        new = r.json()
        assert new["token"] != token and new["pbkdf2"]["iterations"] > 0
        assert (await c.get("/api/mgmt/whoami", headers=bearer(new["token"]))).status_code == 200
        assert (await c.get("/api/mgmt/whoami", headers=bearer(token))).status_code == 401
        assert HS_SECKEY in await key_types(env, "line-7")
        # REST Basic with the old secret fails, with the new one it writes
        handle_url = f"/api/handles/{PREFIX}/R-1"
        body = {"values": [{"index": i, "type": k, "data": {"format": "string", "value": v}}
                           for i, (k, v) in enumerate(FIELDS.items(), 1)]}  # fmt: skip

        def basic(secret: str) -> dict[str, str]:
            raw = f"{new['rest_basic_user']}:{secret}".encode()
            return {"authorization": "Basic " + base64.b64encode(raw).decode()}

        old_rest = await c.put(handle_url, json=body, headers=basic(token))
        assert old_rest.status_code == 401, old_rest.text
        made = await c.put(handle_url, json=body, headers=basic(new["token"]))
        assert made.status_code in (200, 201), made.text
    assert "account.rotate" in await actions(env)
    assert "account.revoke-token" in await actions(env)
    count, findings = await env.reg.audit.verify()
    assert not findings and count > 0


async def test_disable_removes_the_rights_and_enable_returns_with_a_new_token(env):
    org = await env.allocated(PREFIX)
    _, op, _ = await env.reg.accounts.create("t", "op1", "operator")
    account, token, _ = await env.reg.accounts.create("t", "line-7", REGISTRAR, org["id"])
    ref = ValueReference(account.identity.handle, account.identity.index)
    await env.reg.admin.create_handle(account.identity, f"{PREFIX}/D-1", values())
    async with client(env) as c:
        r = await c.post("/api/mgmt/accounts/line-7/disable", headers=bearer(op))
        assert r.status_code == 200 and r.json()["disabled"] is True, r.text
        assert (await c.get("/api/mgmt/whoami", headers=bearer(token))).status_code == 401
        again = await c.post("/api/mgmt/accounts/line-7/disable", headers=bearer(op))
        assert again.status_code == 409
        rotate = await c.post("/api/mgmt/accounts/line-7/rotate", headers=bearer(op))
        assert rotate.status_code == 409  # a disabled account is enabled, not rotated
        assert ref not in await members(env, org["credit_code"])
        # the identity (as a session opened before would carry it) has lost its rights
        with pytest.raises(NotAuthorized):
            await env.reg.admin.create_handle(account.identity, f"{PREFIX}/D-2", values())
        r = await c.post("/api/mgmt/accounts/line-7/enable", headers=bearer(op))
        assert r.status_code == 200, r.text
        fresh = r.json()["token"]
        assert fresh != token and r.json()["disabled"] is False
        assert (await c.get("/api/mgmt/whoami", headers=bearer(token))).status_code == 401
        assert (await c.get("/api/mgmt/whoami", headers=bearer(fresh))).status_code == 200
    assert ref in await members(env, org["credit_code"])
    await env.reg.admin.create_handle(account.identity, f"{PREFIX}/D-2", values())
    acts = await actions(env)
    assert acts.count("account.disable") == 1 and acts.count("account.enable") == 1


async def test_who_may_control_which_account(env):
    org = await env.allocated(PREFIX)
    other = await env.allocated("88.123.4568", OTHER_CODE)
    _, op, _ = await env.reg.accounts.create("t", "op1", "operator")
    _, adm, _ = await env.reg.accounts.create("t", "adm1", "org_admin", org["id"])
    _, reg1, _ = await env.reg.accounts.create("t", "reg1", REGISTRAR, org["id"])
    await env.reg.accounts.create("t", "reg2", REGISTRAR, other["id"])
    async with client(env) as c:
        no = await c.post("/api/mgmt/accounts/reg2/disable", headers=bearer(adm))
        assert no.status_code == 403 and no.json()["error"]["field"] == "name"
        for name, action, token, status in (
            ("op1", "disable", adm, 403),  # an org admin on an operator
            ("adm1", "disable", reg1, 403),  # a registrar on its admin
            ("op1", "disable", op, 403),  # an operator on itself
            ("nobody", "disable", op, 404),
            ("reg1", "explode", op, 404),
        ):
            r = await c.post(f"/api/mgmt/accounts/{name}/{action}", headers=bearer(token))
            assert r.status_code == status, (name, action, r.text)
        own = await c.post("/api/mgmt/accounts/reg1/rotate", headers=bearer(reg1))
        assert own.status_code == 200 and own.json()["token"] != reg1
        ok = await c.post("/api/mgmt/accounts/reg1/disable", headers=bearer(adm))
        assert ok.status_code == 200 and ok.json()["disabled"] is True
        # an operator's token rotates without touching the node's operator key
        before = await env.reg.store.get_handle(f"0.NA/{env.reg.node_prefix}")
        r = await c.post("/api/mgmt/accounts/op1/rotate", headers=bearer(op))
        assert r.status_code == 200 and "pbkdf2" not in r.json()
        assert await env.reg.store.get_handle(f"0.NA/{env.reg.node_prefix}") == before
        assert (await c.get("/api/mgmt/whoami", headers=bearer(op))).status_code == 401
        assert (await c.get("/api/mgmt/whoami",
                            headers=bearer(r.json()["token"]))).status_code == 200  # fmt: skip


def admin_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*IDNODE, "admin", *args], capture_output=True, text=True, timeout=120)


def idnode(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*IDNODE, *args], capture_output=True, text=True, timeout=120)


async def test_a_served_node_refuses_the_old_secret_on_the_wire_and_rest_at_once(env):
    """Two workers; the CLI rotates and disables through the API, then writes over the
    binary protocol with the old and the new secret."""
    import orjson

    org = await env.allocated(PREFIX)
    _, op, _ = await env.reg.accounts.create("t", "op1", "operator")
    _, token, extra = await env.reg.accounts.create("t", "line-7", REGISTRAR, org["id"])
    await env.node.close()
    port, http_port = free_port(), free_port()
    node = serve_node(env.tmp / "node", port, http_port, "88.123", serve_args=("--workers", "2"))
    api = ["--api", node.http_url, "--token", op]
    opts = [x for i, (k, v) in enumerate(FIELDS.items(), 1) for x in ("-v", f"{i}:{k}:{v}")]

    def write(handle: str, secret: str, p: dict) -> subprocess.CompletedProcess:
        path = env.tmp / "secret"
        path.write_text(secret + "\n")
        return admin_cli("create", handle, *opts, "--server", f"127.0.0.1:{port}",
                         "--id", extra["identity"], "--secret-file", str(path),
                         "--pbkdf2", f"{p['salt']}:{p['iterations']}:{p['bits']}")  # fmt: skip

    try:
        assert write(f"{PREFIX}/W-1", token, extra["pbkdf2"]).returncode == 0
        rotated = idnode("account", "rotate", "line-7", *api)
        assert rotated.returncode == 0, rotated.stderr
        new = orjson.loads(rotated.stdout)
        old = write(f"{PREFIX}/W-2", token, extra["pbkdf2"])
        assert old.returncode == 1 and f"{PREFIX}/W-2" not in old.stdout
        assert write(f"{PREFIX}/W-3", new["token"], new["pbkdf2"]).returncode == 0
        for _ in range(6):  # any worker answers: all refuse the old token
            r = httpx.get(node.http_url + "/api/mgmt/whoami", headers=bearer(token))
            assert r.status_code == 401
        assert idnode("account", "disable", "line-7", *api).returncode == 0
        assert write(f"{PREFIX}/W-4", new["token"], new["pbkdf2"]).returncode == 1
        for _ in range(6):
            r = httpx.get(node.http_url + "/api/mgmt/whoami", headers=bearer(new["token"]))
            assert r.status_code == 401
        bad = idnode("account", "disable", "line-7", *api)
        assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
    finally:
        stop_node(node)
