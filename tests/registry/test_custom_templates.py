"""Issue 20, custom templates: operators add, publish and bind their own template versions
(the store keeps them; published ones never change), every record keeps the version it was
validated against (single writes and bulk import), a new version never invalidates stored
records silently, and re-validation reports which would fail. SQLite and PostgreSQL through
the node's real HTTP app; the last test drives the CLI against a served node."""

from __future__ import annotations

import copy
import json

import orjson

from idnode.model import handle_key
from idnode.registry.states import GovernanceStates
from idnode.registry.templates import TemplateCatalog
from tests.conftest import free_port, serve_node, stop_node
from tests.registry.test_account_control import bearer, client
from tests.registry.test_registry_work import MGMT, PREFIX, idnode, sqlite_work, work

__all__ = ["sqlite_work", "work"]  # fixtures, imported for pytest


def version_2() -> dict:
    """auto-parts, version 2: batches become ``B<n>-<year>``, and a new optional COLOUR."""
    doc = copy.deepcopy(TemplateCatalog.shipped().get("auto-parts@1").describe())
    schema = doc["schema"]
    schema["properties"]["BATCH"]["pattern"] = "^B[0-9]+-[0-9]{4}$"
    schema["properties"]["COLOUR"] = {"type": "string", "x-index": 14, "maxLength": 32}
    return {"id": "auto-parts", "name": "Auto parts v2", "schema": schema}


async def refs(work) -> dict[str, str]:
    rows = await work.env.reg.store.query("SELECT handle, template FROM {s}.record_templates")
    return {r["handle"]: r["template"] for r in rows}


async def actions(work) -> list[str]:
    return [e["action"] for e in await work.env.reg.audit.entries(0, 1000)]


FIELDS = {"PART_NUMBER": "BP-1", "PART_NAME": "Brake pad", "MODEL": "X1",
          "PRODUCTION_DATE": "2026-11-01", "MANUFACTURER": "Fujian Auto Parts"}  # fmt: skip


async def test_a_new_version_is_published_bound_and_old_records_are_revalidated(work):
    imported = await refs(work)  # bulk import recorded the version of each row
    assert len(imported) == 10 and set(imported.values()) == {"auto-parts@1"}
    async with client(work.env) as c:
        op, reg_h = bearer(work.op), bearer(work.registrar)
        r = await c.post(f"{MGMT}/templates", json=version_2(), headers=reg_h)
        assert r.status_code == 403
        r = await c.post(f"{MGMT}/templates", json=version_2(), headers=op)
        assert r.status_code == 201 and r.json() == {
            "ref": "auto-parts@2", "state": "draft", "replaced_draft": False}  # fmt: skip
        r = await c.put(f"{MGMT}/prefixes/{PREFIX}/template", json={"template": "auto-parts@2"},
                        headers=op)  # fmt: skip
        assert r.status_code == 400 and r.json()["error"]["field"] == "ref"  # draft: not yet
        again = {**version_2(), "version": 2, "description": "second draft"}
        r = await c.post(f"{MGMT}/templates", json=again, headers=op)
        assert r.json()["replaced_draft"] is True
        assert (await c.post(f"{MGMT}/templates/auto-parts@2/publish", headers=op)).status_code \
            == 200  # fmt: skip
        # published: immutable
        r = await c.post(f"{MGMT}/templates", json=again, headers=op)
        assert r.status_code == 409 and r.json()["error"]["field"] == "version"
        r = await c.post(f"{MGMT}/templates/auto-parts@2/publish", headers=op)
        assert r.status_code == 409
        listed = (await c.get(f"{MGMT}/template-versions", headers=op)).json()
        states = {t["ref"]: (t["state"], t["origin"]) for t in listed}
        assert states["auto-parts@2"] == ("published", "operator")
        assert states["auto-parts@1"] == ("published", "shipped") and len(states) == 6
        shown = (await c.get(f"{MGMT}/templates/auto-parts@2/state", headers=op)).json()
        assert shown["description"] == "second draft" and "COLOUR" in shown["optional"]

        r = await c.put(f"{MGMT}/prefixes/{PREFIX}/template", json={"template": "auto-parts@2"},
                        headers=op)  # fmt: skip
        assert r.json() == {"prefix": PREFIX, "template": "auto-parts@2", "was": "auto-parts@1"}
        assert await refs(work) == imported  # binding changed no record
        old = await work.env.reg.store.get_handle(f"{PREFIX}/P00000")
        assert old is not None and any(v.data == b"B1" for v in old)

        # later writes are checked against version 2 and say so
        bad = await c.put(f"{MGMT}/identifiers/{PREFIX}/N1", headers=reg_h,
                          json={"fields": {**FIELDS, "BATCH": "B1"}})  # fmt: skip
        assert bad.status_code == 400 and "BATCH" in bad.json()["error"]["message"]
        good = await c.put(
            f"{MGMT}/identifiers/{PREFIX}/N1",
            headers=reg_h,
            json={"fields": {**FIELDS, "BATCH": "B7-2026", "COLOUR": "red"}},
        )
        assert good.status_code == 201, good.text
        assert (await refs(work))[f"{PREFIX}/N1"] == "auto-parts@2"

        on_1 = await c.get(f"{MGMT}/templates/auto-parts@1/records",
                           params={"prefix": PREFIX}, headers=reg_h)  # fmt: skip
        assert len(on_1.json()["records"]) == 10
        stranger = await c.get(
            f"{MGMT}/templates/auto-parts@1/records",
            params={"prefix": PREFIX},
            headers=bearer(work.stranger),
        )
        assert stranger.status_code == 403

        report = (await c.post(f"{MGMT}/templates/auto-parts@2/validate",
                               json={"prefix": PREFIX}, headers=reg_h)).json()  # fmt: skip
        assert report["checked"] == 10 and report["passed"] == 0
        assert {f["field"] for f in report["failed"]} == {"BATCH"}
        assert report["on_versions"] == {"auto-parts@1": 10} and report["complete"]
        assert await refs(work) == {**imported, f"{PREFIX}/N1": "auto-parts@2"}  # no change

        # fixing one record through the write path moves it to version 2
        fix = await c.patch(f"{MGMT}/identifiers/{PREFIX}/P00000", headers=reg_h,
                            json={"fields": {"BATCH": "B1-2026"}})  # fmt: skip
        assert fix.status_code == 200, fix.text
        assert (await refs(work))[f"{PREFIX}/P00000"] == "auto-parts@2"
        report = (await c.post(f"{MGMT}/templates/auto-parts@2/validate",
                               json={"prefix": PREFIX}, headers=reg_h)).json()  # fmt: skip
        assert report["checked"] == 9 and len(report["failed"]) == 9
    done = await actions(work)
    for action in ("template.add", "template.publish", "prefix.template", "template.validate"):
        assert action in done
    # another process loading the store sees the version and the binding
    fresh = GovernanceStates(TemplateCatalog.shipped())
    await fresh.load(work.env.reg.store)
    assert fresh.template_of(PREFIX).ref == "auto-parts@2"
    await work.env.reg.admin.delete_handle(work.env.reg.operator, f"{PREFIX}/N1")
    assert handle_key(f"{PREFIX}/N1") not in {handle_key(h) for h in await refs(work)}


async def test_bad_template_documents_are_refused_naming_the_field(sqlite_work):
    work = sqlite_work
    before = await work.env.reg.audit.count()
    good = version_2()
    hs = copy.deepcopy(good)
    hs["schema"]["properties"]["HS_ADMIN"] = {"type": "string", "x-index": 15}
    dup = copy.deepcopy(good)
    dup["schema"]["properties"]["COLOUR"]["x-index"] = 1
    broken = copy.deepcopy(good)
    broken["schema"]["properties"]["COLOUR"]["type"] = "strin"
    open_ = copy.deepcopy(good)
    open_["schema"]["additionalProperties"] = True
    cases = [
        (hs, 400, "HS_ADMIN"),
        (dup, 400, "COLOUR"),
        (broken, 400, "schema"),
        (open_, 400, "schema.additionalProperties"),
        ({**good, "id": "Auto Parts"}, 400, "id"),
        ({**good, "version": 1}, 409, "version"),  # the shipped one
        ({**good, "version": "2"}, 400, "version"),
        ([1, 2], 422, ""),
    ]
    async with client(work.env) as c:
        for doc, status, field in cases:
            r = await c.post(f"{MGMT}/templates", json=doc, headers=bearer(work.op))
            assert r.status_code == status, (field, r.text)
            if field:
                assert r.json()["error"]["field"] == field, r.text
        for ref, status in (("auto-parts", 400), ("nope@3", 404)):
            r = await c.post(f"{MGMT}/templates/{ref}/publish", headers=bearer(work.op))
            assert r.status_code == status, r.text
    assert await work.env.reg.store.query("SELECT id FROM {s}.templates") == []
    assert await work.env.reg.audit.count() == before


async def test_the_cli_adds_publishes_binds_and_reports(sqlite_work, tmp_path):
    work = sqlite_work
    await work.env.node.close()
    node = serve_node(work.env.tmp / "node", free_port(), free_port(), "88.123")
    api = ["--api", node.http_url, "--token", work.op]
    doc = tmp_path / "auto-parts.v2.json"
    doc.write_text(json.dumps(version_2()))
    try:
        added = idnode("template", "add", str(doc), *api)
        assert added.returncode == 0, added.stderr
        assert orjson.loads(added.stdout)["ref"] == "auto-parts@2"
        assert idnode("template", "publish", "auto-parts@2", *api).returncode == 0
        listed = orjson.loads(idnode("template", "list", *api).stdout)
        assert ["auto-parts@1", "auto-parts@2"] == [t["ref"] for t in listed
                                                   if t["id"] == "auto-parts"]  # fmt: skip
        shown = orjson.loads(idnode("template", "show", "auto-parts@2", *api).stdout)
        assert shown["state"] == "published"
        bound = idnode("template", "bind", PREFIX, "auto-parts@2", *api)
        assert orjson.loads(bound.stdout)["was"] == "auto-parts@1", bound.stderr
        on_1 = idnode("template", "records", "auto-parts@1", "--prefix", PREFIX, *api)
        assert len(orjson.loads(on_1.stdout)["records"]) == 10
        report = idnode("template", "validate", "auto-parts@2", "--prefix", PREFIX, *api)
        assert report.returncode == 1 and len(orjson.loads(report.stdout)["failed"]) == 10
        again = idnode("template", "add", str(doc), *api)  # no version: the next, 3
        assert orjson.loads(again.stdout)["ref"] == "auto-parts@3"
        doc.write_text("{not json")
        bad = idnode("template", "add", str(doc), *api)
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
        denied = idnode("template", "publish", "auto-parts@3", "--api", node.http_url,
                        "--token", work.registrar)  # fmt: skip
        assert denied.returncode == 1 and denied.stderr.startswith("error: Authorization")
    finally:
        stop_node(node)
