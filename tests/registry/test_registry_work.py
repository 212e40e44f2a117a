"""Issue 20, registry work: search identifiers by template field, date range and state
(keyset pages), update an identifier's fields through the management API (template-checked,
history kept, through the write service), recall by query with a dry run and one audit
entry, and the list of import jobs. On SQLite and a real PostgreSQL server, in process
through the node's real HTTP app; the last test drives the CLI against a served node."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from idnode.app import open_node
from idnode.bootstrap import init_node
from idnode.registry.accounts import REGISTRAR
from idnode.registry.states import IdentifierGone
from idnode.runtime import ManualClock, Runtime, SeededRandom
from tests.conftest import IDNODE, free_port, serve_node, stop_node
from tests.registry.conftest import NOV_2_2026, OTHER_CODE, Env
from tests.registry.test_account_control import bearer, client
from tests.store.conftest import PG_DSN, drop_pg_schema, pg_schema_for

PREFIX = "88.123.4567"
MGMT = "/api/mgmt"
COLUMNS = (
    "suffix",
    "PART_NUMBER",
    "PART_NAME",
    "MODEL",
    "BATCH",
    "SERIAL",
    "PRODUCTION_DATE",
    "MANUFACTURER",
)


@dataclass
class Work:
    env: Env
    op: str
    admin: str
    registrar: str
    stranger: str  # org admin of another organisation
    job: str
    engine: str


@pytest.fixture(params=["sqlite", "postgres"])
async def work(request, tmp_path) -> AsyncIterator[Work]:
    async with made(tmp_path, request.param) as w:
        yield w


@pytest.fixture
async def sqlite_work(tmp_path) -> AsyncIterator[Work]:
    async with made(tmp_path, "sqlite") as w:
        yield w


@asynccontextmanager
async def made(tmp_path: Path, engine: str) -> AsyncIterator[Work]:
    """A node on ``engine`` with two organisations, four accounts and ten imported
    identifiers of auto-parts (batches B1 and B2, serials, dates 2026-10-10 ... 19)."""
    runtime = Runtime(ManualClock(NOV_2_2026), SeededRandom(0))
    url = ""
    if engine == "postgres":
        await drop_pg_schema(tmp_path)
        url = f"{PG_DSN}?schema={pg_schema_for(tmp_path)}"
    cfg = await init_node(tmp_path / "node", name="t", prefixes=["88.123"], runtime=runtime,
                          store_url=url)  # fmt: skip
    node = await open_node(cfg, runtime=runtime)
    env = Env(node, node.registry, runtime.clock, tmp_path)
    try:
        reg = env.reg
        org = await env.allocated(PREFIX)
        other = await env.allocated("88.123.4568", OTHER_CODE)
        _, op, _ = await reg.accounts.create("t", "op1", "operator")
        _, admin, _ = await reg.accounts.create("t", "adm1", "org_admin", org["id"])
        _, registrar, _ = await reg.accounts.create("t", "reg1", REGISTRAR, org["id"])
        _, stranger, _ = await reg.accounts.create("t", "adm2", "org_admin", other["id"])
        path = tmp_path / "rows.csv"
        lines = [",".join(COLUMNS)]
        for i in range(10):
            lines.append(",".join((f"P{i:05d}", "BP-1", "Brake pad", "X1" if i % 2 else "X2",
                                   "B1" if i < 5 else "B2", f"S{i}", f"2026-10-{i + 10:02d}",
                                   "Fujian Auto Parts")))  # fmt: skip
        path.write_text("\n".join(lines) + "\n")
        job = await reg.imports.create(reg.operator, "console", PREFIX, path, "csv",
                                       origin="console")  # fmt: skip
        done = await reg.imports.run(job["id"])
        assert done["imported"] == 10, done
        yield Work(env, op, admin, registrar, stranger, job["id"], engine)
    finally:
        await node.close()
        if engine == "postgres":
            await drop_pg_schema(tmp_path)


def handles(page: dict) -> list[str]:
    return [i["handle"] for i in page["items"]]


async def test_search_by_field_date_and_state_in_keyset_pages(work):
    async with client(work.env) as c:
        h = bearer(work.registrar)

        async def search(**params) -> httpx.Response:
            return await c.get(f"{MGMT}/identifiers", params={"prefix": PREFIX, **params},
                               headers=h)  # fmt: skip

        b1 = (await search(batch="B1")).json()
        assert handles(b1) == [f"{PREFIX}/P{i:05d}" for i in range(5)]
        assert b1["items"][0]["fields"]["BATCH"] == "B1" and b1["items"][0]["state"] == "active"
        both = (await search(field=["BATCH=B2", "MODEL=X1"])).json()
        assert handles(both) == [f"{PREFIX}/P00005", f"{PREFIX}/P00007", f"{PREFIX}/P00009"]
        assert handles((await search(serial="S3")).json()) == [f"{PREFIX}/P00003"]
        dated = (await search(**{"from": "2026-10-12", "to": "2026-10-14"})).json()
        assert handles(dated) == [f"{PREFIX}/P0000{i}" for i in (2, 3, 4)]
        await work.env.reg.lifecycle.set_state(None, f"{PREFIX}/P00006", "suspended", "check")
        assert handles((await search(state="suspended")).json()) == [f"{PREFIX}/P00006"]
        assert len(handles((await search(state="active", limit=100)).json())) == 9
        seen, after = [], ""
        while True:
            page = (await search(limit=3, after=after)).json() if after else \
                (await search(limit=3)).json()  # fmt: skip
            seen += handles(page)
            if page["next"] is None:
                break
            after = page["next"]
        assert seen == [f"{PREFIX}/P{i:05d}" for i in range(10)]
        for params, field in (({"field": ["COLOUR=red"]}, "COLOUR"),
                              ({"field": ["BATCH"]}, "field"),
                              ({"from": "2026-13-01"}, "from"),
                              ({"state": "lost"}, "state")):  # fmt: skip
            bad = await search(**params)
            assert bad.status_code == 400 and bad.json()["error"]["field"] == field, bad.text
        foreign = await c.get(f"{MGMT}/identifiers", params={"prefix": PREFIX},
                              headers=bearer(work.stranger))  # fmt: skip
        assert foreign.status_code == 403


async def test_updating_fields_checks_the_template_and_keeps_the_history(work):
    handle = f"{PREFIX}/P00001"
    reg = work.env.reg
    async with client(work.env) as c:
        h = bearer(work.registrar)
        url = f"{MGMT}/identifiers/{handle}"
        original = await reg.store.get_handle(handle)
        audit = await work.env.audit_count()
        for fields, field in (({"COLOUR": "red"}, "COLOUR"), ({"BATCH": "bad batch!"}, ""),
                              ({"MODEL": ""}, "")):  # fmt: skip
            r = await c.patch(url, json={"fields": fields}, headers=h)
            assert r.status_code in (400, 403), r.text
            if field:
                assert r.json()["error"]["field"] == field
        assert await reg.store.get_handle(handle) == original  # nothing half-changed
        assert await work.env.audit_count() == audit
        r = await c.patch(url, json={"fields": {"BATCH": "B7", "MATERIAL": "steel",
                                                "SERIAL": ""}}, headers=h)  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json()["fields"]["BATCH"] == "B7" and r.json()["fields"]["MATERIAL"] == "steel"
        assert "SERIAL" not in r.json()["fields"]
        assert await work.env.audit_count() == audit + 1
        hist = (await c.get(f"{MGMT}/history/{handle}", headers=h)).json()
        assert [v["action"] for v in hist["versions"]] == ["original", "create"]
        old = {v["type"]: v["data"]["value"] for v in hist["versions"][0]["values"]}
        assert old["BATCH"] == "B1" and old["SERIAL"] == "S1"
        foreign = await c.patch(url, json={"fields": {"BATCH": "B8"}},
                                headers=bearer(work.stranger))  # fmt: skip
        assert foreign.status_code == 403


async def test_a_recall_by_query_previews_then_changes_all_in_one_audit_entry(work):
    reg = work.env.reg
    async with client(work.env) as c:
        body = {"prefix": PREFIX, "fields": {"BATCH": "B1"}, "state": "suspended",
                "reason": "recall 2026-11"}  # fmt: skip
        audit = await work.env.audit_count()
        preview = await c.post(f"{MGMT}/bulk/state", json=body, headers=bearer(work.registrar))
        assert preview.status_code == 200, preview.text
        assert preview.json()["matched"] == 5 and preview.json()["changes"] == 5
        assert preview.json()["dry_run"] is True
        assert await work.env.audit_count() == audit
        reg.gate(f"{PREFIX}/P00000")  # still active
        no_reason = await c.post(f"{MGMT}/bulk/state", json={**body, "reason": "",
                                 "dry_run": False}, headers=bearer(work.registrar))  # fmt: skip
        assert no_reason.status_code == 400 and no_reason.json()["error"]["field"] == "reason"
        revoke = await c.post(f"{MGMT}/bulk/state", json={**body, "state": "revoked",
                              "dry_run": False}, headers=bearer(work.registrar))  # fmt: skip
        assert revoke.status_code == 403
        done = await c.post(f"{MGMT}/bulk/state", json={**body, "dry_run": False},
                            headers=bearer(work.registrar))  # fmt: skip
        assert done.json()["changes"] == 5, done.text
        assert await work.env.audit_count() == audit + 1
        last = (await reg.audit.entries(0, 1000))[-1]
        assert last["action"] == "handle.bulk.suspended"
        for i in range(5):
            with pytest.raises(IdentifierGone, match="recall 2026-11"):
                reg.gate(f"{PREFIX}/P{i:05d}")
        reg.gate(f"{PREFIX}/P00005")  # batch B2 untouched
        again = await c.post(f"{MGMT}/bulk/state", json={**body, "dry_run": False},
                             headers=bearer(work.registrar))  # fmt: skip
        assert again.json()["changes"] == 0 and await work.env.audit_count() == audit + 1
        hist = await reg.lifecycle.history(f"{PREFIX}/P00002")
        assert hist["state"] == "suspended"
        assert [v["action"] for v in hist["versions"]] == ["original", "lifecycle.suspended"]
        back = await c.post(f"{MGMT}/bulk/state", json={**body, "state": "active",
                            "where_state": "suspended", "dry_run": False},
                            headers=bearer(work.admin))  # fmt: skip
        assert back.json()["changes"] == 5
        reg.gate(f"{PREFIX}/P00000")
        foreign = await c.post(f"{MGMT}/bulk/state", json=body, headers=bearer(work.stranger))
        assert foreign.status_code == 403
    count, findings = await reg.audit.verify()
    assert not findings


async def test_the_list_of_import_jobs_shows_each_job_to_whom_it_belongs(work):
    async with client(work.env) as c:
        mine = (await c.get(f"{MGMT}/imports", headers=bearer(work.admin))).json()
        assert [j["id"] for j in mine["jobs"]] == [work.job] and mine["total"] == 1
        assert mine["jobs"][0]["state"] == "done" and mine["jobs"][0]["imported"] == 10
        assert (await c.get(f"{MGMT}/imports", headers=bearer(work.stranger))).json() == {
            "jobs": [],
            "total": 0,
        }
        done = await c.get(f"{MGMT}/imports", params={"state": "failed"},
                           headers=bearer(work.op))  # fmt: skip
        assert done.json()["total"] == 0
        bad = await c.get(f"{MGMT}/imports", params={"state": "lost"}, headers=bearer(work.op))
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "state"
        big = await c.get(f"{MGMT}/imports", params={"limit": 10**30}, headers=bearer(work.op))
        assert big.status_code == 422


def idnode(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*IDNODE, *args], capture_output=True, text=True, timeout=120)


async def test_the_cli_searches_recalls_updates_and_lists_jobs_on_a_served_node(sqlite_work):
    work = sqlite_work
    await work.env.node.close()
    node = serve_node(work.env.tmp / "node", free_port(), free_port(), "88.123")
    api = ["--api", node.http_url, "--token", work.admin]
    try:
        found = idnode("handle", "search", PREFIX, "--batch", "B2", "--limit", "2", *api)
        assert found.returncode == 0, found.stderr
        page = orjson.loads(found.stdout)
        assert handles(page) == [f"{PREFIX}/P00005", f"{PREFIX}/P00006"] and page["next"]
        preview = idnode("handle", "bulk-state", PREFIX, "suspended", "--field", "BATCH=B2",
                         "--reason", "recall", *api)  # fmt: skip
        assert orjson.loads(preview.stdout)["dry_run"] is True
        applied = idnode("handle", "bulk-state", PREFIX, "suspended", "--field", "BATCH=B2",
                         "--reason", "recall", "--apply", *api)  # fmt: skip
        assert orjson.loads(applied.stdout)["changes"] == 5, applied.stderr
        r = httpx.get(f"{node.http_url}/api/handles/{PREFIX}/P00005")
        assert r.json()["responseCode"] == 100
        upd = idnode("handle", "update", f"{PREFIX}/P00001", "--field", "MODEL=X9", *api)
        assert upd.returncode == 0 and orjson.loads(upd.stdout)["fields"]["MODEL"] == "X9"
        bad = idnode("handle", "update", f"{PREFIX}/P00001", "--field", "COLOUR=red", *api)
        assert bad.returncode == 1 and bad.stderr.strip().startswith("error: COLOUR:")
        jobs = idnode("imports", "list", *api)
        assert orjson.loads(jobs.stdout)["jobs"][0]["id"] == work.job
    finally:
        stop_node(node)
