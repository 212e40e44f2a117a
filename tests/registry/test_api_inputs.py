"""No 500s from client input, no half-done writes, no path from a query parameter (issue 15,
item 5), and the management API's read rules (item 6): ``/metrics`` needs an operator or an
allow-listed address, the record history follows the record's own HS_ADMIN read rights.

Everything runs in process through the node's real HTTP app (``build_app`` with the
registry's routes). Against the code before the change each of these answered 500 (an
overflow, a decode error, a path built from ``format``), the account with a century-long TTL
left its key handle behind, ``/metrics`` answered anyone, and the history showed restricted
values to any member of the organisation.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from idnode.codes import Permission
from idnode.model import HS_ADMIN, HandleValue
from idnode.registry.errors import RegistryError
from idnode.transport.http import build_app
from idnode.wire.admin import AdminRecord, encode_admin
from tests.registry.conftest import CONTACT, FIELDS, VALID_CODE, Env, row

PREFIX = "88.123.4567"
HUGE = 10**25


@dataclass
class Api:
    env: Env
    client: httpx.AsyncClient
    operator: dict[str, str]
    org_admin: dict[str, str]
    org_id: int
    rest: dict[str, str]  # the organisation admin's Basic credentials for /api/handles


def _client(env: Env, host: str) -> httpx.AsyncClient:
    app = build_app(env.node, extra_routes=env.node.routes)
    transport = httpx.ASGITransport(app=app, client=(host, 1), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://node")


@pytest.fixture
async def api(env: Env) -> AsyncIterator[Api]:
    org = await env.allocated(PREFIX)
    _, op, _ = await env.reg.accounts.create("t", "op1", "operator")
    _, admin, extra = await env.reg.accounts.create("t", "orgadm", "org_admin", org["id"])
    basic = base64.b64encode(f"{extra['rest_basic_user']}:{admin}".encode()).decode()
    async with _client(env, "203.0.113.5") as client:
        yield Api(
            env,
            client,
            {"authorization": f"Bearer {op}"},
            {"authorization": f"Bearer {admin}"},
            org["id"],
            {"authorization": f"Basic {basic}"},
        )


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", f"/api/mgmt/organisations/{HUGE}"),
        ("POST", f"/api/mgmt/organisations/{HUGE}/approve"),
        ("POST", f"/api/mgmt/organisations/{HUGE}/reject"),
        ("GET", f"/api/mgmt/audit?since={HUGE}"),
        ("GET", f"/api/mgmt/audit?limit={HUGE}"),
        ("POST", f"/api/mgmt/imports?prefix={PREFIX}&batch_size={HUGE}"),
        ("GET", f"/api/handles?prefix={PREFIX}&page={HUGE}&pageSize=10"),
        ("GET", f"/api/handles?prefix={PREFIX}&page=1&pageSize={HUGE}"),
        ("DELETE", f"/api/handles/{PREFIX}/x?index={HUGE}"),
    ],
)
async def test_oversized_integers_are_client_errors(api: Api, method: str, path: str) -> None:
    rest = path.startswith("/api/handles")
    headers = api.rest if rest else api.operator
    if path.startswith("/api/mgmt/imports"):
        body = ",".join(FIELDS).encode() + b"\n" + ",".join(row(1)).encode() + b"\n"
        answer = await api.client.request(method, path, headers=headers, content=body)
    else:
        answer = await api.client.request(method, path, headers=headers, json={"reason": "r"})
    assert 400 <= answer.status_code < 500, answer.text


@pytest.mark.parametrize(
    "body",
    [
        {"name": "big", "role": "registrar", "org_id": HUGE},
        {"name": "big", "role": "registrar", "ttl_seconds": HUGE},
    ],
)
async def test_account_with_oversized_numbers_writes_nothing(api: Api, body: dict) -> None:
    store = api.env.node.store
    group = await store.get_handle(api.env.reg.accounts.group_handle(VALID_CODE))
    audit = await api.env.audit_count()
    body = {"org_id": api.org_id, **body}
    answer = await api.client.post("/api/mgmt/accounts", headers=api.operator, json=body)
    assert answer.status_code == 422 and answer.json()["error"]["field"] in (
        "org_id",
        "ttl_seconds",
    )
    assert await store.get_handle(api.env.reg.accounts.account_handle("big")) is None
    assert await store.get_handle(api.env.reg.accounts.group_handle(VALID_CODE)) == group
    assert await api.env.audit_count() == audit


async def test_the_account_service_checks_the_ttl_before_writing(api: Api) -> None:
    """The console path (no API model in front): the same check, the same nothing written."""
    reg = api.env.reg
    with pytest.raises(RegistryError) as refused:
        await reg.accounts.create("t", "forever", "registrar", api.org_id, ttl_seconds=HUGE)
    assert refused.value.field == "ttl_seconds"
    assert await reg.store.get_handle(reg.accounts.account_handle("forever")) is None


async def test_an_organisation_document_of_absurd_size_is_refused(api: Api) -> None:
    doc = {"name": "licence.pdf", "sha256": "0" * 64, "size": HUGE}
    body = {"legal_name": "Acme Ltd", "credit_code": VALID_CODE, "contact": CONTACT,
            "documents": [doc]}  # fmt: skip
    answer = await api.client.post("/api/mgmt/organisations", json=body)
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "documents.0.size"


async def test_a_non_utf8_import_is_refused_before_a_job_exists(api: Api) -> None:
    body = b"suffix,BATCH\nP1,B1\n" + b"P2,\xff\xfe\n"
    answer = await api.client.post(
        f"/api/mgmt/imports?prefix={PREFIX}", headers=api.operator, content=body
    )
    assert answer.status_code == 400 and "UTF-8" in answer.json()["error"]["message"]
    assert await api.env.reg.store.query("SELECT id FROM {s}.jobs") == []
    assert list(api.env.reg.imports.folder.iterdir()) == []  # the upload is gone too


async def test_the_import_format_never_becomes_part_of_a_path(api: Api) -> None:
    node_dir = api.env.node.config.directory
    answer = await api.client.post(
        f"/api/mgmt/imports?prefix={PREFIX}&format=../../escaped", headers=api.operator,
        content=b"suffix\nP1\n",
    )  # fmt: skip
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "query.format"
    assert not list(node_dir.parent.rglob("*escaped*"))


# -- reads ---------------------------------------------------------------------------------


async def test_metrics_need_an_operator_or_an_allow_listed_address(api: Api) -> None:
    assert (await api.client.get("/metrics")).status_code == 403
    assert (await api.client.get("/metrics", headers=api.org_admin)).status_code == 403
    shown = await api.client.get("/metrics", headers=api.operator)
    assert shown.status_code == 200 and "idnode_resolutions" in shown.text
    async with _client(api.env, "127.0.0.1") as local:  # [server] metrics_allow's default
        assert (await local.get("/metrics")).status_code == 200


async def test_history_follows_the_records_own_read_rights(api: Api) -> None:
    """A record of the organisation's prefix whose HS_ADMIN names the operator only: its
    restricted value is the operator's to read, not every member's of the organisation."""
    reg = api.env.reg
    handle = f"{PREFIX}/P-private"
    owner = encode_admin(AdminRecord(reg.operator.handle, reg.operator.index))
    private = Permission.ADMIN_READ | Permission.ADMIN_WRITE
    tmpl = reg.states.template_of(PREFIX)
    fields = dict(zip(FIELDS, row(1), strict=True))
    values = [
        HandleValue(tmpl.index_of(name), name, text.encode(),
                    permissions=private if name == "PART_NAME" else Permission(0x0E))
        for name, text in fields.items() if name != "suffix"
    ]  # fmt: skip
    await reg.admin.create_handle(
        reg.operator, handle, [*values, HandleValue(100, HS_ADMIN, owner)]
    )

    async def shown(headers: dict[str, str]) -> list[str]:
        answer = await api.client.get(f"/api/mgmt/history/{handle}", headers=headers)
        assert answer.status_code == 200, answer.text
        return [v["type"] for version in answer.json()["versions"] for v in version["values"]]

    assert "PART_NAME" in await shown(api.operator)
    member = await shown(api.org_admin)
    assert "PART_NUMBER" in member and "PART_NAME" not in member
    assert "PART_NAME" not in await shown({})
