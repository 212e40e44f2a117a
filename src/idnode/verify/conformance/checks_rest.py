"""The REST API (Handle.Net technical manual ch. 14, docs/compatibility.md): shapes, status
codes and error bodies, as pyhandle and b2handle rely on them.

Writes authenticate with Basic (an HS_SECKEY identity) or a signed session (HS_PUBKEY), the
two ways Handle.Net clients do.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

import httpx

from idnode.auth.rest import make_rest_session_authorization
from idnode.verify.conformance.catalogue import SHOULD, check
from idnode.verify.conformance.context import CheckFailed, Context, Credentials
from idnode.verify.conformance.fixtures import RESTRICTED_INDEX

REF = "REST API"
API = "/api/handles/"
ADMIN = ("http", "admin")
VALUE_FIELDS = ("index", "type", "data", "ttl", "timestamp")


def _json(ctx: Context, resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CheckFailed("a JSON body", f"HTTP {resp.status_code} {resp.text[:120]!r}") from None
    ctx.expect(isinstance(body, dict), "a JSON object", type(body).__name__)
    return body


def _status(ctx: Context, resp: httpx.Response, statuses: tuple[int, ...], what: str) -> None:
    ctx.expect(
        resp.status_code in statuses,
        f"HTTP {' or '.join(map(str, statuses))} ({what})",
        f"HTTP {resp.status_code} {resp.text[:160]!r}",
    )


def _error_shape(ctx: Context, body: dict, code: int | tuple[int, ...]) -> None:
    codes = (code,) if isinstance(code, int) else code
    ctx.expect(
        body.get("responseCode") in codes, f"responseCode {codes}", f"{body.get('responseCode')!r}"
    )
    if "message" in body:  # optional in HANDLE.NET's REST API: checked only when sent
        ctx.expect(isinstance(body["message"], str), "a string 'message'", f"{body['message']!r}")


async def _get(ctx: Context, handle: str, **params: Any) -> httpx.Response:
    pairs = [(k, str(x)) for k, v in params.items() for x in (v if isinstance(v, list) else [v])]
    return await ctx.probe.http("GET", API + handle, params=pairs)


async def auth_headers(ctx: Context, creds: Credentials | None = None) -> dict[str, str]:
    """Basic for a secret key, else a session signed with the private key."""
    creds = creds or ctx.need_creds()
    ident = quote(str(creds.identity), safe="/")
    if creds.secret is not None:
        token = base64.b64encode(ident.encode() + b":" + creds.secret).decode()
        return {"Authorization": f"Basic {token}"}
    resp = await ctx.probe.http("POST", "/api/sessions")
    _status(ctx, resp, (200, 201), "opening a session")
    body = _json(ctx, resp)
    nonce = base64.b64decode(body.get("nonce", ""))
    header = make_rest_session_authorization(
        body["sessionId"], creds.identity, nonce, private_key=creds.private_key
    )
    resp = await ctx.probe.http("PUT", "/api/sessions/this", headers={"Authorization": header})
    _status(ctx, resp, (200,), "authenticating the session")
    return {"Authorization": f'Handle sessionId="{body["sessionId"]}"'}


@check(
    "REST-001",
    "GET of a handle: 200 with responseCode 1, handle and values",
    REF,
    category="rest",
    needs=("http",),
)
async def get_shape(ctx: Context) -> None:
    handle = ctx.read_handle
    resp = await _get(ctx, handle)
    _status(ctx, resp, (200,), "an existing handle")
    body = _json(ctx, resp)
    ctx.expect(body.get("responseCode") == 1, "responseCode 1", f"{body.get('responseCode')!r}")
    ctx.expect(body.get("handle") == handle, f"handle {handle!r}", f"{body.get('handle')!r}")
    ctx.expect(
        isinstance(body.get("values"), list) and body["values"],
        "a non-empty values list",
        f"{body.get('values')!r}"[:120],
    )


@check(
    "REST-002",
    "Every value has index, type, data{format,value}, ttl and timestamp",
    REF,
    category="rest",
    needs=("http",),
)
async def value_shape(ctx: Context) -> None:
    body = _json(ctx, await _get(ctx, ctx.read_handle))
    for v in body.get("values", []):
        missing = [f for f in VALUE_FIELDS if f not in v]
        ctx.expect(not missing, f"fields {VALUE_FIELDS}", f"value {v.get('index')} lacks {missing}")
        data = v["data"]
        ctx.expect(
            isinstance(data, dict) and "format" in data and "value" in data,
            "data as {format, value}",
            f"{data!r}"[:120],
        )


@check(
    "REST-003", "Values are sorted by index", REF, severity=SHOULD, category="rest", needs=("http",)
)
async def sorted_values(ctx: Context) -> None:
    body = _json(ctx, await _get(ctx, ctx.read_handle))
    indexes = [v.get("index") for v in body.get("values", [])]
    ctx.expect(indexes == sorted(indexes), "indexes in ascending order", f"{indexes}")


@check(
    "REST-004",
    "An unknown handle: 404 with responseCode 100 and the handle",
    REF,
    category="rest",
    needs=("http",),
)
async def not_found(ctx: Context) -> None:
    prefix = ctx.prefix or ctx.read_handle.split("/", 1)[0]
    handle = f"{prefix}/idnode-verify-missing-{ctx.run_id}"
    resp = await _get(ctx, handle)
    _status(ctx, resp, (404,), "no such handle")
    body = _json(ctx, resp)
    _error_shape(ctx, body, 100)
    ctx.expect(body.get("handle") == handle, f"handle {handle!r} echoed", f"{body.get('handle')!r}")


@check("REST-005", "?type= returns only values of that type", REF, category="rest", needs=("http",))
async def type_param(ctx: Context) -> None:
    every = _json(ctx, await _get(ctx, ctx.read_handle)).get("values", [])
    ctx.expect(every, "values", "none")
    wanted = every[0]["type"]
    body = _json(ctx, await _get(ctx, ctx.read_handle, type=wanted))
    got = {v.get("type") for v in body.get("values", [])}
    ctx.expect(got == {wanted}, f"only {wanted}", f"{sorted(map(str, got))}")


@check("REST-006", "?index= returns only that index", REF, category="rest", needs=("http",))
async def index_param(ctx: Context) -> None:
    every = _json(ctx, await _get(ctx, ctx.read_handle)).get("values", [])
    ctx.expect(every, "values", "none")
    wanted = every[-1]["index"]
    body = _json(ctx, await _get(ctx, ctx.read_handle, index=wanted))
    got = [v.get("index") for v in body.get("values", [])]
    ctx.expect(got == [wanted], f"only index {wanted}", f"{got}")


@check(
    "REST-007",
    "Anonymous GET withholds values without PUBLIC_READ",
    REF,
    category="rest",
    needs=ADMIN,
)
async def withheld(ctx: Context) -> None:
    fx = ctx.need_fixtures()
    body = _json(ctx, await _get(ctx, fx.record))
    got = [v.get("index") for v in body.get("values", [])]
    ctx.expect(RESTRICTED_INDEX not in got, f"no value {RESTRICTED_INDEX}", f"indexes {got}")


@check(
    "REST-008",
    "A prefix not homed here: 4xx JSON error, never 200",
    REF,
    category="rest",
    needs=("http",),
)
async def elsewhere(ctx: Context) -> None:
    resp = await _get(ctx, "99.99999.424242/idnode-verify-elsewhere")
    _status(ctx, resp, (400, 404), "not responsible (400/301) or not found (404/100)")
    _error_shape(ctx, _json(ctx, resp), (301, 100))


@check("REST-009", "Answers are served as application/json", REF, category="rest", needs=("http",))
async def content_type(ctx: Context) -> None:
    resp = await _get(ctx, ctx.read_handle)
    ctype = resp.headers.get("content-type", "")
    ctx.expect(
        ctype.split(";")[0].strip() == "application/json",
        "Content-Type application/json",
        repr(ctype),
    )


@check(
    "REST-010",
    "?callback= wraps the answer for JSONP",
    REF,
    severity=SHOULD,
    category="rest",
    needs=("http",),
)
async def jsonp(ctx: Context) -> None:
    resp = await _get(ctx, ctx.read_handle, callback="idnodeVerify")
    text = resp.text.strip()
    ctx.expect(
        text.startswith("idnodeVerify(") and text.rstrip(";").endswith(")"),
        "idnodeVerify({...});",
        repr(text[:80]),
    )


@check(
    "REST-011",
    "HTTP and UDP return the same public values",
    REF,
    category="rest",
    needs=("http", "udp"),
)
async def agrees_with_udp(ctx: Context) -> None:
    handle = ctx.read_handle
    udp = ctx.expect_code(await ctx.probe.udp(ctx.resolution(handle)), 1)
    want = sorted((v.index, v.type) for v in udp.body.values)  # type: ignore[union-attr]
    body = _json(ctx, await _get(ctx, handle))
    got = sorted((v.get("index"), v.get("type")) for v in body.get("values", []))
    ctx.expect(got == want, f"{want}", f"{got}")


@check(
    "REST-012",
    "publicOnly=false without credentials: 401 with a challenge",
    REF,
    category="rest",
    needs=ADMIN,
)
async def restricted_401(ctx: Context) -> None:
    fx = ctx.need_fixtures()
    resp = await _get(ctx, fx.record, publicOnly="false")
    _status(ctx, resp, (401,), "restricted values asked for anonymously")
    ctx.expect(
        "www-authenticate" in resp.headers,
        "a WWW-Authenticate header",
        f"headers {sorted(resp.headers)}",
    )
    _error_shape(ctx, _json(ctx, resp), 402)


@check(
    "REST-013",
    "Wrong Basic credentials: 401 with responseCode 402",
    REF,
    category="rest",
    needs=("http",),
)
async def wrong_basic(ctx: Context) -> None:
    ident = str(ctx.creds.identity) if ctx.creds else f"300:0.NA/{ctx.need_prefix()}"
    token = base64.b64encode(quote(ident, safe="/").encode() + b":idnode-verify-wrong").decode()
    resp = await ctx.probe.http(
        "GET", API + ctx.read_handle, headers={"Authorization": f"Basic {token}"}
    )
    _status(ctx, resp, (401,), "a wrong secret must not fall back to anonymous")
    _error_shape(ctx, _json(ctx, resp), 402)


@check(
    "REST-014",
    "PUT without credentials: 401 and nothing created",
    REF,
    category="rest",
    needs=("http",),
)
async def put_anonymous(ctx: Context) -> None:
    handle = f"{ctx.need_prefix()}/idnode-verify-{ctx.run_id}-anon-put"
    entity = {"values": [{"index": 1, "type": "URL", "data": "https://example.org/x"}]}
    resp = await ctx.probe.http(
        "PUT",
        API + handle,
        content=json.dumps(entity).encode(),
        headers={"Content-Type": "application/json"},
    )
    _status(ctx, resp, (401, 403), "no credentials")
    ctx.expect((await _get(ctx, handle)).status_code == 404, f"{handle} not created", "it exists")


@check(
    "REST-015",
    "Authenticated PUT creates (201) and GET shows the values",
    REF,
    category="rest",
    needs=ADMIN,
)
async def put_create(ctx: Context) -> None:
    headers = await auth_headers(ctx)
    handle = ctx.new_name("rest-put")
    admin = {
        "index": 100,
        "type": "HS_ADMIN",
        "data": {
            "format": "admin",
            "value": {
                "handle": ctx.need_creds().identity.handle,
                "index": ctx.need_creds().identity.index,
                "permissions": "111111111111",
            },
        },
    }
    entity = {"values": [{"index": 1, "type": "URL", "data": "https://example.org/rest"}, admin]}
    resp = await ctx.probe.http(
        "PUT",
        API + handle,
        content=json.dumps(entity).encode(),
        headers={**headers, "Content-Type": "application/json"},
    )
    _status(ctx, resp, (201,), "a new handle")
    body = _json(ctx, resp)
    ctx.expect(
        body.get("responseCode") == 1 and body.get("handle") == handle,
        f"responseCode 1 and handle {handle!r}",
        f"{body}",
    )
    got = _json(ctx, await _get(ctx, handle)).get("values", [])
    ctx.expect(
        [v.get("index") for v in got] == [1, 100],
        "values 1 and 100",
        f"{[v.get('index') for v in got]}",
    )


@check(
    "REST-016",
    "Authenticated DELETE removes the handle; GET then gives 404",
    REF,
    category="rest",
    needs=ADMIN,
)
async def delete_handle(ctx: Context) -> None:
    from idnode.codes import OpCode
    from idnode.model import URL, HandleValue
    from idnode.verify.conformance.fixtures import PUBLIC, admin_value
    from idnode.wire import bodies

    handle = ctx.new_name("rest-del")
    values = (
        HandleValue(1, URL, b"https://example.org/d", PUBLIC),
        admin_value(ctx.need_creds().identity),
    )
    made = await ctx.admin(OpCode.CREATE_HANDLE, bodies.CreateHandleRequest(handle, values))
    ctx.expect(
        made.header.response_code == 1,
        "the handle created over the wire",
        f"code {int(made.header.response_code)}",
    )
    headers = await auth_headers(ctx)
    resp = await ctx.probe.http("DELETE", API + handle, headers=headers)
    _status(ctx, resp, (200, 204), "deleting")
    _status(ctx, await _get(ctx, handle), (404,), "GET after DELETE")


@check(
    "REST-017",
    "Malformed JSON in PUT: 400 with a JSON error body",
    REF,
    category="rest",
    needs=ADMIN,
)
async def bad_json(ctx: Context) -> None:
    headers = await auth_headers(ctx)
    handle = ctx.new_name("rest-bad")
    resp = await ctx.probe.http(
        "PUT",
        API + handle,
        content=b"{not json",
        headers={**headers, "Content-Type": "application/json"},
    )
    _status(ctx, resp, (400,), "an entity that is not JSON")
    _error_shape(ctx, _json(ctx, resp), (4, 202))


@check(
    "REST-018",
    "Authenticated DELETE of a missing handle: 404 with responseCode 100",
    REF,
    category="rest",
    needs=ADMIN,
)
async def delete_missing(ctx: Context) -> None:
    headers = await auth_headers(ctx)
    handle = f"{ctx.need_prefix()}/idnode-verify-{ctx.run_id}-never"
    resp = await ctx.probe.http("DELETE", API + handle, headers=headers)
    _status(ctx, resp, (404,), "no such handle")
    _error_shape(ctx, _json(ctx, resp), 100)


@check(
    "REST-019",
    "Listing ?prefix= gives responseCode, prefix, totalCount and handles",
    REF,
    category="rest",
    needs=ADMIN,
)
async def listing(ctx: Context) -> None:
    fx = ctx.need_fixtures()
    headers = await auth_headers(ctx)
    prefix = ctx.need_prefix()
    resp = await ctx.probe.http("GET", "/api/handles", params=[("prefix", prefix)], headers=headers)
    _status(ctx, resp, (200,), "listing as --admin")
    body = _json(ctx, resp)
    missing = [f for f in ("responseCode", "prefix", "totalCount", "handles") if f not in body]
    ctx.expect(not missing, "responseCode, prefix, totalCount, handles", f"missing {missing}")
    names = {str(h).lower() for h in body["handles"]}
    ctx.expect(fx.record.lower() in names, f"{fx.record} listed", f"{len(names)} handles")


@check(
    "REST-020",
    "An unsupported method gets 405 with a JSON body",
    REF,
    severity=SHOULD,
    category="rest",
    needs=("http",),
)
async def bad_method(ctx: Context) -> None:
    resp = await ctx.probe.http("PATCH", API + ctx.read_handle, content=b"{}")
    _status(ctx, resp, (405, 501), "PATCH is not part of the API")
    _json(ctx, resp)
