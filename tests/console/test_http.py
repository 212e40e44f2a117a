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


# -- the second round: import, prefix review, editing, operations, Handle sign-in, fixes ----
CSV = (
    "suffix,PART_NUMBER,PART_NAME,MODEL,BATCH,PRODUCTION_DATE,MANUFACTURER\n"
    "IMP-1,BP-1,Brake pad,X1,B9,2026-11-02,Fujian Auto Parts\n"
    "IMP-2,bad part,Brake pad,X1,B9,2026-11-02,Fujian Auto Parts\n"
    "IMP-3,BP-3,Brake pad,X1,B9,2026-11-02,Fujian Auto Parts\n"
)


async def test_an_import_runs_reports_its_rejects_and_resumes(env):
    app, token, _, node = env
    reg = node.registry
    async with client(app) as c:
        csrf = await signed_in(c, token)
        started = await c.post(
            "/console/imports",
            data={"csrf": csrf, "prefix": PREFIX},
            files={"file": ("parts.csv", CSV.encode(), "text/csv")},
        )
        assert started.status_code == 303, started.text
        job_url = started.headers["location"]
        job_id = job_url.rsplit("/", 1)[1]
        await reg.imports.tasks[job_id]
        polled = await c.get(job_url, headers={"HX-Request": "true"})
        assert "every 1s" not in polled.text  # done: the polling stops
        assert 'max="3" value="3"' in polled.text and "2 imported, 1 rejected" in polled.text
        report = await c.get(job_url + "/rejects")
        assert report.headers["content-type"].startswith("text/csv")
        assert report.text.splitlines()[1].startswith("3,PART_NUMBER,")
        assert await node_has(env, f"{PREFIX}/IMP-3") and not await node_has(env, f"{PREFIX}/IMP-2")

        # a job its process left behind: queued, no task; the console offers to resume it
        bad = await c.post(
            "/console/imports",
            data={"csrf": csrf, "prefix": PREFIX},
            files={"file": ("x.csv", b"suffix,NOPE\nA,1\n", "text/csv")},
        )
        assert bad.status_code == 422 and "The file was not accepted" in bad.text
        source = node.config.directory / "resume.csv"
        source.write_text(CSV.replace("IMP-", "RES-"))
        job = await reg.imports.create(
            (await reg.accounts.authenticate(token)).identity,
            "op", PREFIX, source, "csv", batch_size=1, origin="api",
        )  # fmt: skip
        page = await c.get(f"/console/imports/{job['id']}")
        assert "interrupted" in page.text and 'id="resume"' in page.text
        resumed = await c.post(f"/console/imports/{job['id']}/resume", data={"csrf": csrf})
        assert "The import is resumed." in resumed.text
        await reg.imports.tasks[job["id"]]
        assert (await reg.imports.get(job["id"]))["imported"] == 2
        listing = await c.get("/console/imports")
        assert job["id"] in listing.text and job_id in listing.text


async def test_prefix_applications_are_approved_allocated_or_rejected(env):
    app, token, _, node = env
    reg = node.registry
    org = (await reg.organisations.list("approved"))[0]
    await reg.prefixes.apply("t", "88.123.7777", org["id"], "auto-parts")
    await reg.prefixes.apply("t", "88.123.7778", org["id"], "auto-parts")
    async with client(app) as c:
        csrf = await signed_in(c, token)
        queue = await c.get("/console/review")
        assert "88.123.7777" in queue.text and "credit code valid" in queue.text
        no_reason = await c.post("/console/review/prefix/88.123.7778/reject", data={"csrf": csrf})
        assert "A reason is required." in no_reason.text
        assert (await reg.prefixes.get("88.123.7778"))["state"] == "applied"
        await c.post("/console/review/prefix/88.123.7778/reject",
                     data={"csrf": csrf, "reason": "duplicate"})  # fmt: skip
        ok = await c.post("/console/review/prefix/88.123.7777/approve", data={"csrf": csrf})
        assert "Prefix 88.123.7777 is approved." in ok.text
        await c.post("/console/review/prefix/88.123.7777/allocate", data={"csrf": csrf})
    assert (await reg.prefixes.get("88.123.7777"))["state"] == "allocated"
    assert (await reg.prefixes.get("88.123.7778"))["state"] == "rejected"
    assert (await reg.prefixes.get("88.123.7778"))["reason"] == "duplicate"


async def test_a_record_is_edited_through_its_template_form_with_history(env):
    app, token, _, node = env
    handle = f"{PREFIX}/P2"  # registered by test_registration_errors_in_the_readers_language
    assert await node_has(env, handle)
    async with client(app) as c:
        csrf = await signed_in(c, token)
        form = (await c.get(f"/console/edit/{handle}")).text
        assert 'value="B1"' in form
        fields = {"csrf": csrf, "PART_NUMBER": "BP-1", "PART_NAME": "Brake pad",
                  "MODEL": "X1", "BATCH": "B2", "PRODUCTION_DATE": "2026-13-40",
                  "MANUFACTURER": "Fujian Auto Parts"}  # fmt: skip
        bad = await c.post(f"/console/edit/{handle}", data=fields)
        assert bad.status_code == 422 and "YYYY-MM-DD" in bad.text
        fields["PRODUCTION_DATE"] = "2026-11-03"
        saved = await c.post(f"/console/edit/{handle}", data=fields)
        assert saved.status_code == 303
        page = await c.get(saved.headers["location"])
    record = {v.type: v.data for v in await node.store.get_handle(handle)}
    assert record["BATCH"] == b"B2" and record["PRODUCTION_DATE"] == b"2026-11-03"
    assert "previous version is in the history" in page.text
    kept = await node.store.history(handle)
    old = {v.type: v.data for v in kept[0].values}
    assert len(kept) >= 2 and old["BATCH"] == b"B1"


async def test_the_qr_label_only_when_the_identifier_resolves(env):
    """Was a broken image: /qr refuses a suspended identifier."""
    app, token, _, node = env
    handle = f"{PREFIX}/IMP-1"
    async with client(app) as c:
        await signed_in(c, token)
        active = await c.get(f"/console/handle/{handle}")
        assert f'src="/qr/{handle}.svg' in active.text
        await node.registry.lifecycle.set_state(None, handle, "suspended", "recall")
        page = await c.get(f"/console/handle/{handle}")
        assert (await c.get(f"/qr/{handle}.svg")).status_code != 200
    assert "/qr/" not in page.text and 'id="no-qr"' in page.text


async def test_operations_show_cache_rate_and_the_verified_audit_chain(env):
    app, token, _, node = env
    from idnode.serve import watch_caches
    from idnode.transport.response_cache import ResponseCache

    cache = ResponseCache(10)
    cache.stats.hits, cache.stats.misses = 3, 1
    watch_caches(node, {"http": cache})
    async with client(app) as c:
        await signed_in(c, token)
        page = await c.get("/console/operations")
        zh = await c.get("/console/operations", headers={"Accept-Language": "zh-CN"})
    assert page.status_code == 200
    assert re.search(r"<td>http</td><td class=\"num\">3</td><td class=\"num\">1</td>"
                     r"<td class=\"num\">75.0%</td>", page.text)  # fmt: skip
    count = await node.registry.audit.count()
    assert f"The chain is intact: {count:,} entries verified." in page.text
    assert "handle.suspended" in page.text and "审计" in zh.text
    # this node's replication: a primary, its epoch and its position in its own log
    serial = await node.store.serial()
    assert re.search(r'id="replication".*?<td>primary</td>', page.text, re.S)
    assert f'<td class="num">{serial:,}</td>' in page.text
    assert "复制" in zh.text and "主节点" in zh.text


async def test_sign_in_with_a_handle_admin_identity(env):
    app, _, _, node = env
    from idnode.codes import AdminPermission
    from idnode.model import HS_ADMIN, HS_SECKEY, HandleValue
    from idnode.wire.admin import AdminRecord, encode_admin

    reg = node.registry
    admin_handle, theirs, other = f"{PREFIX}/ADMIN-1", f"{PREFIX}/MINE", f"{PREFIX}/IMP-3"
    await node.store.create_handle(admin_handle, [HandleValue(300, HS_SECKEY, b"s3cret")])
    admin = encode_admin(AdminRecord(admin_handle, 300, AdminPermission(0xFFF)))
    fields = [HandleValue(1, "PART_NUMBER", b"BP-9"), HandleValue(100, HS_ADMIN, admin)]
    await node.store.create_handle(theirs, fields)
    async with client(app) as c:
        wrong = await c.post(
            "/console/login/handle", data={"handle": admin_handle, "index": "300", "secret": "nope"}
        )
        assert wrong.status_code == 401 and "did not check out" in wrong.text
        ok = await c.post(
            "/console/login/handle",
            data={"handle": admin_handle, "index": "300", "secret": "s3cret"},
        )
        assert ok.status_code == 303
        mine = await c.get(f"/console/handle/{theirs}")
        assert mine.status_code == 200 and "300:" in mine.text
        assert (await c.get(f"/console/handle/{other}")).status_code == 404
        assert (await c.get("/console/review")).status_code == 403
        csrf = re.search(r'name="csrf" value="([^"]+)"', mine.text).group(1)
        done = await c.post(
            f"/console/state/{theirs}", data={"csrf": csrf, "state": "suspended", "reason": "check"}
        )
        assert "The identifier is suspended." in done.text
        refused = await c.post(
            f"/console/state/{other}", data={"csrf": csrf, "state": "suspended", "reason": "x"}
        )
        assert "The identifier is suspended." not in refused.text
        # a new key ends the session
        await node.store.create_handle(
            admin_handle, [HandleValue(300, HS_SECKEY, b"other")], overwrite=True
        )
        assert (await c.get(f"/console/handle/{theirs}")).status_code == 303
    assert reg.lifecycle.state_of(theirs)["state"] == "suspended"
    assert reg.lifecycle.state_of(other)["state"] == "active"


@pytest.mark.parametrize("form", ["admpriv.bin", "admpriv.bin+passphrase", "pem"])
async def test_sign_in_with_a_private_key_file(env, form):
    """The key file is read for one check by the node: HSJ's ``admpriv.bin`` (clear or
    PBKDF2 + AES) or PEM; a wrong passphrase or another identity's key is refused."""
    app, _, _, node = env
    from idnode.codes import AdminPermission
    from idnode.crypto.keys import (
        encode_private_key_file,
        encode_public_key,
        generate_key,
        private_key_to_pem,
    )
    from idnode.model import HS_ADMIN, HS_PUBKEY, HandleValue
    from idnode.wire.admin import AdminRecord, encode_admin

    admin_handle, theirs = f"{PREFIX}/KEY-ADMIN-{form}", f"{PREFIX}/KEYED-{form}"
    kind = "rsa" if form == "pem" else "ed25519" if form == "admpriv.bin" else "sm2"
    key, stranger = generate_key(kind), generate_key(kind)
    await node.store.create_handle(
        admin_handle, [HandleValue(300, HS_PUBKEY, encode_public_key(key))]
    )
    admin = encode_admin(AdminRecord(admin_handle, 300, AdminPermission(0xFFF)))
    await node.store.create_handle(theirs, [HandleValue(100, HS_ADMIN, admin)])
    passphrase = "open sesame" if form.endswith("passphrase") else ""
    if form == "pem":
        blob, wrong_blob = private_key_to_pem(key), private_key_to_pem(stranger)
    else:
        blob = encode_private_key_file(key, passphrase or None)
        wrong_blob = encode_private_key_file(stranger, passphrase or None)

    async def sign_in(c: httpx.AsyncClient, data: bytes, phrase: str) -> httpx.Response:
        return await c.post(
            "/console/login/handle",
            data={"handle": admin_handle, "index": "300", "passphrase": phrase},
            files={"keyfile": ("key", data, "application/octet-stream")},
        )

    async with client(app) as c:
        assert (await sign_in(c, wrong_blob, passphrase)).status_code == 401
        if passphrase:
            assert (await sign_in(c, blob, "not it")).status_code == 401
        assert (await c.get(f"/console/handle/{theirs}")).status_code == 303  # not signed in
        assert (await sign_in(c, blob, passphrase)).status_code == 303
        page = await c.get(f"/console/handle/{theirs}")
        assert page.status_code == 200 and theirs in page.text


async def test_the_session_cookie_is_secure_over_https(env):
    app, token, _, _ = env
    for base, secure in (("http://node", False), ("https://node", True)):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base) as c:
            answer = await c.post("/console/login", data={"token": token})
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert ("; secure" in cookie) is secure
