"""CORS, the offline API docs and the console's sessions, in process (httpx ASGITransport
over the node's real ASGI app, one node per module, ManualClock for the timeouts)."""

from __future__ import annotations

import re

import httpx
import pytest
import pytest_asyncio
from babel.messages.extract import extract_from_dir

from idnode.app import open_node
from idnode.bootstrap import init_node
from idnode.console.i18n import LOCALE_DIR, translations
from idnode.registry.accounts import OPERATOR
from idnode.runtime import ManualClock, Runtime, SeededRandom
from idnode.transport.cors import CorsPolicy
from idnode.transport.http import build_app
from tests.registry.conftest import CONTACT, NOV_2_2026, VALID_CODE

pytestmark = pytest.mark.asyncio(loop_scope="module")  # one node, one loop, for the module
ORIGIN = "https://app.example.org"
PREFIX = "88.123.4567"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(tmp_path_factory):
    clock = ManualClock(NOV_2_2026)
    runtime = Runtime(clock, SeededRandom(7))
    tmp = tmp_path_factory.mktemp("console")
    cfg = await init_node(tmp / "node", name="t", prefixes=["88.123"], runtime=runtime)
    node = await open_node(cfg, runtime=runtime)
    reg = node.registry
    org = await reg.organisations.apply("t", "Fujian Auto Parts Co., Ltd.", VALID_CODE, CONTACT)
    await reg.organisations.approve("t", org["id"])
    await reg.prefixes.apply("t", PREFIX, org["id"], "auto-parts")
    await reg.prefixes.approve("t", PREFIX)
    await reg.prefixes.allocate("t", PREFIX)
    _, token, _ = await reg.accounts.create("t", "op", OPERATOR)
    app = build_app(node, extra_routes=node.routes)
    yield app, token, clock, node
    await node.close()


def client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node")


PATHS = [
    "/api/handles/88.123.4567/x",
    "/api/handles",
    "/api/sessions",
    "/api/sessions/this",
    "/api/mgmt/organisations",
    "/api/mgmt/identifiers/88.123.4567/x",
    "/88.123.4567/x",
]


@pytest.mark.parametrize("path", PATHS)
async def test_preflight_is_answered_on_every_path(env, path):
    """Was 405 (no OPTIONS route) and no Access-Control-Allow-Origin."""
    app, *_ = env
    async with client(app) as c:
        r = await c.options(
            path,
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
    assert r.status_code == 204, r.text
    assert r.headers["access-control-allow-origin"] == "*"
    assert "PUT" in r.headers["access-control-allow-methods"]
    assert r.headers["access-control-allow-headers"] == "authorization, content-type"


async def test_answers_carry_allow_origin_errors_included(env):
    app, *_ = env
    async with client(app) as c:
        ok = await c.get("/api/handles/0.NA/88.123", headers={"Origin": ORIGIN})
        denied = await c.put("/api/handles/88.123.4567/y", json=[], headers={"Origin": ORIGIN})
        plain = await c.get("/api/handles/0.NA/88.123")
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "*"
    assert denied.status_code == 401 and denied.headers["access-control-allow-origin"] == "*"
    assert "WWW-Authenticate" in denied.headers["access-control-expose-headers"]
    assert "access-control-allow-origin" not in plain.headers  # no Origin, no CORS


async def test_listed_origins_only(env):
    app, _, _, node = env
    node.config.server.cors_origins = [ORIGIN]
    try:
        listed = build_app(node, extra_routes=node.routes)
    finally:
        node.config.server.cors_origins = ["*"]
    async with client(listed) as c:
        pre = {"Access-Control-Request-Method": "GET"}
        good = await c.options("/api/handles", headers={"Origin": ORIGIN, **pre})
        bad = await c.options("/api/handles", headers={"Origin": "https://evil.example", **pre})
        get_bad = await c.get(
            "/api/handles/0.NA/88.123", headers={"Origin": "https://evil.example"}
        )
    assert good.status_code == 204 and good.headers["access-control-allow-origin"] == ORIGIN
    assert good.headers["vary"] == "Origin"
    assert bad.status_code == 403 and "access-control-allow-origin" not in bad.headers
    assert "access-control-allow-origin" not in get_bad.headers
    assert not CorsPolicy([]).enabled


async def test_docs_work_offline_with_the_nodes_own_assets(env):
    """Was a page loading Swagger UI from a CDN: blank without Internet."""
    app, *_ = env
    async with client(app) as c:
        page = await c.get("/api/docs")
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assets = [await c.get(s) for s in sources]
    assert page.status_code == 200
    assert sources and all(s.startswith("/") for s in sources), sources
    assert all(a.status_code == 200 and len(a.content) > 100 for a in assets)
    assert any("SwaggerUIBundle" in a.text for a in assets)


async def test_openapi_describes_the_handle_api_and_how_to_authorize(env):
    """Was the management API alone, without security schemes (no Authorize button)."""
    app, *_ = env
    async with client(app) as c:
        doc = (await c.get("/api/openapi.json")).json()
    paths = doc["paths"]
    for path in (
        "/api/handles/{handle}",
        "/api/handles",
        "/api/sessions",
        "/api/sessions/this",
        "/api/mgmt/organisations",
        "/api/mgmt/imports",
    ):
        assert path in paths, path
    assert set(paths["/api/handles/{handle}"]) == {"get", "put", "delete"}
    schemes = doc["components"]["securitySchemes"]
    assert {"bearerToken", "handleBasic", "handleSession"} <= set(schemes)
    assert paths["/api/mgmt/accounts"]["get"]["security"] == [{"bearerToken": []}]
    assert "security" not in paths["/api/mgmt/organisations"]["post"]  # anyone may apply
    assert doc["servers"] == [{"url": "/"}]


async def signed_in(c: httpx.AsyncClient, token: str) -> str:
    r = await c.post("/console/login", data={"token": token})
    assert r.status_code == 303, r.text
    page = await c.get("/console/register")
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


async def test_sign_in_csrf_and_timeouts(env):
    app, token, clock, _ = env
    async with client(app) as c:
        assert (await c.get("/console/")).status_code == 303  # to the sign-in page
        wrong = await c.post("/console/login", data={"token": "nope"})
        assert wrong.status_code == 401 and "Unknown, disabled or expired" in wrong.text
        csrf = await signed_in(c, token)
        assert (await c.get("/console/")).status_code == 200
        form = {"prefix": PREFIX, "suffix": "P1"}
        forged = await c.post("/console/register", data=form)
        assert forged.status_code == 403  # no CSRF token
        assert await node_has(env, "88.123.4567/P1") is False
        clock.advance(1801)  # past [console] idle_timeout
        expired = await c.get("/console/")
        assert expired.status_code == 303 and "/console/login" in expired.headers["location"]
        csrf = await signed_in(c, token)
        for _ in range(30):  # active, but the absolute timeout still ends it
            clock.advance(1500)
            await c.get("/console/")
        assert (await c.get("/console/")).status_code == 303
        assert csrf


async def node_has(env, handle: str) -> bool:
    return await env[3].store.get_handle(handle) is not None


async def test_registration_errors_in_the_readers_language(env):
    app, token, _, _ = env
    async with client(app) as c:
        csrf = await signed_in(c, token)
        fields = {
            "csrf": csrf,
            "prefix": PREFIX,
            "suffix": "P2",
            "PART_NUMBER": "bp 1",
            "PART_NAME": "Brake pad",
            "MODEL": "X1",
            "BATCH": "B1",
            "PRODUCTION_DATE": "2026-11-02",
            "MANUFACTURER": "Fujian Auto Parts",
        }
        zh = await c.post("/console/register", data=fields, headers={"Accept-Language": "zh-CN"})
        assert zh.status_code == 422
        assert 'lang="zh-CN"' in zh.text and "格式不符合要求" in zh.text
        assert await node_has(env, "88.123.4567/P2") is False
        fields["PART_NUMBER"] = "BP-1"
        done = await c.post("/console/register", data=fields)
        assert done.status_code == 303 and await node_has(env, "88.123.4567/P2")


async def test_every_console_string_has_a_chinese_translation():
    root = LOCALE_DIR.parent
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    keywords = {"_": None, "gettext": None, "N_": None, "ngettext": (1, 2)}
    found = {
        m[2] if isinstance(m[2], str) else m[2][0]
        for m in extract_from_dir(
            root,
            method_map,
            keywords=keywords,
            options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        )
    }
    zh = translations("zh-CN")
    untranslated = sorted(s for s in found if zh.gettext(s) == s)
    assert len(found) > 80 and untranslated == []
