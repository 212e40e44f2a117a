"""PUT /api/handles/{handle}: create, replace, add by index, mint -- and every refusal."""

from __future__ import annotations

import base64

import pytest

from idnode.model import HS_ADMIN
from tests.transport_http.support import (
    OTHER_SECRET,
    PREFIX,
    SECRET,
    admin_identity,
    basic,
    other_identity,
)

H = f"{PREFIX}/item-1"
ADMIN = basic(admin_identity(), SECRET)
URL_VALUE = {"index": 1, "type": "URL", "data": "https://example.com/a"}
# what pyhandle sends: admin index as a string, data of ordinary values as bare strings
PYHANDLE_ADMIN = {
    "index": 100,
    "type": "HS_ADMIN",
    "data": {
        "format": "admin",
        "value": {"index": "200", "handle": f"0.NA/{PREFIX}", "permissions": "011111110011"},
    },
}


def record(*values: dict) -> dict:
    return {"values": [PYHANDLE_ADMIN, *values]}


async def put(rest, handle=H, body=None, params=None, headers=ADMIN, **kw):
    return await rest.client.put(
        f"/api/handles/{handle}", json=body, params=params, headers=headers, **kw
    )


async def test_create_answers_201_and_the_record_reads_back_sorted_with_timestamps(rest):
    body = record({"index": 2, "type": "DESC", "data": "pump"}, URL_VALUE)
    resp = await put(rest, body=body, params={"overwrite": "false"})
    assert (resp.status_code, resp.json()) == (201, {"responseCode": 1, "handle": H})
    got = (await rest.client.get(f"/api/handles/{H}")).json()
    assert [v["index"] for v in got["values"]] == [1, 2, 100]
    assert all(v["timestamp"].endswith("Z") for v in got["values"])
    assert got["values"][0]["data"] == {"format": "string", "value": "https://example.com/a"}
    admin = got["values"][2]["data"]["value"]
    assert admin["index"] == 200 and admin["handle"] == f"0.NA/{PREFIX}"


async def test_put_accepts_a_bare_array_and_a_single_value(rest):
    resp = await put(rest, body=[PYHANDLE_ADMIN, URL_VALUE])
    assert resp.status_code == 201
    resp = await put(rest, body={**URL_VALUE, "data": "https://example.com/b"}, params={"index": 1})
    assert resp.status_code == 200
    values = (await rest.client.get(f"/api/handles/{H}", params={"index": 1})).json()["values"]
    assert values[0]["data"]["value"] == "https://example.com/b"


async def test_put_on_existing_handle_replaces_it_by_default_and_answers_200(rest):
    await put(rest, body=record(URL_VALUE))
    resp = await put(rest, body=record({"index": 3, "type": "EMAIL", "data": "a@b.c"}))
    assert (resp.status_code, resp.json()["responseCode"]) == (200, 1)
    got = (await rest.client.get(f"/api/handles/{H}")).json()
    assert [v["index"] for v in got["values"]] == [3, 100]


async def test_overwrite_false_on_existing_handle_is_409_101_and_changes_nothing(rest):
    await put(rest, body=record(URL_VALUE))
    before = await rest.snapshot()
    resp = await put(
        rest, body=record({"index": 3, "type": "EMAIL", "data": "x"}), params={"overwrite": "false"}
    )
    assert resp.status_code == 409
    assert resp.json() == {"responseCode": 101, "handle": H, "message": resp.json()["message"]}
    assert await rest.snapshot() == before


async def test_index_params_add_201_then_modify_200(rest):
    await put(rest, body=record(URL_VALUE))
    new = {"index": 4, "type": "EMAIL", "data": "ops@example.com"}
    resp = await put(rest, body={"values": [new]}, params={"index": 4, "overwrite": "false"})
    assert (resp.status_code, resp.json()) == (201, {"responseCode": 1, "handle": H})
    changed = {
        "index": 1,
        "type": "URL",
        "data": {"format": "string", "value": "https://c"},
        "ttl": 600,
    }
    resp = await put(
        rest,
        body={"values": [changed, new]},
        params=[("index", 1), ("index", 4), ("overwrite", "true")],
    )
    assert resp.status_code == 200
    got = {v["index"]: v for v in (await rest.client.get(f"/api/handles/{H}")).json()["values"]}
    assert got[1]["data"]["value"] == "https://c" and got[1]["ttl"] == 600
    assert sorted(got) == [1, 4, 100]


async def test_index_add_of_existing_value_without_overwrite_is_409_201(rest):
    await put(rest, body=record(URL_VALUE))
    before = await rest.snapshot()
    resp = await put(rest, body={"values": [URL_VALUE]}, params={"index": 1, "overwrite": "false"})
    assert (resp.status_code, resp.json()["responseCode"]) == (409, 201)
    assert await rest.snapshot() == before


async def test_index_various_numbers_values_sent_without_index(rest):
    await put(rest, body=record(URL_VALUE))
    extra_admin = {**PYHANDLE_ADMIN}
    del extra_admin["index"]
    body = {
        "values": [
            {"type": "DESC", "data": "d"},
            {"type": "EMAIL", "data": "e"},
            {"index": 7, "type": "X", "data": "x"},
            extra_admin,
        ]
    }
    resp = await put(rest, body=body, params={"index": "various"})
    assert (resp.status_code, resp.json()["responseCode"]) == (201, 1)
    got = {
        v["index"]: v["type"] for v in (await rest.client.get(f"/api/handles/{H}")).json()["values"]
    }
    assert got == {1: "URL", 2: "DESC", 3: "EMAIL", 7: "X", 100: HS_ADMIN, 101: HS_ADMIN}


async def test_mint_new_suffix_appends_a_server_suffix(rest):
    resp = await put(
        rest, handle=f"{PREFIX}/", body=record(URL_VALUE), params={"mintNewSuffix": "true"}
    )
    assert resp.status_code == 201
    minted = resp.json()["handle"]
    assert minted.startswith(f"{PREFIX}/") and len(minted) > len(PREFIX) + 10
    assert (await rest.client.get(f"/api/handles/{minted}")).status_code == 200
    resp = await put(
        rest, handle=f"{PREFIX}/batch-", body=record(URL_VALUE), params={"mintNewSuffix": ""}
    )  # a flag without value is true
    assert resp.json()["handle"].startswith(f"{PREFIX}/batch-")


BAD_REQUESTS = [
    # (description, handle, raw body, params, extra headers, status, response code)
    ("broken JSON", H, b'{"values": [', None, {}, 400, 4),
    ("not JSON content", H, b"values=1", None, {"Content-Type": "text/plain"}, 400, 4),
    ("empty entity", H, b"", None, {}, 400, 4),
    ("entity is a string", H, b'"hello"', None, {}, 400, 4),
    ("values not an array", H, b'{"values": {"index": 1}}', None, {}, 400, 4),
    (
        "handle in entity differs",
        H,
        b'{"handle": "20.500.77/other", "values": []}',
        None,
        {},
        400,
        4,
    ),
    ("index not an integer", H, b'{"values": []}', {"index": "one"}, {}, 400, 4),
    (
        "query indexes differ from values",
        H,
        b'{"values": [{"index": 2, "type": "URL", "data": "x"}]}',
        {"index": 3},
        {},
        400,
        4,
    ),
    ("value is not an object", H, b'{"values": [5]}', None, {}, 400, 202),
    (
        "type is not a string",
        H,
        b'{"values": [{"index": 1, "type": 7, "data": "x"}]}',
        None,
        {},
        400,
        202,
    ),
    (
        "index is negative",
        H,
        b'{"values": [{"index": -1, "type": "URL", "data": "x"}]}',
        None,
        {},
        400,
        202,
    ),
    ("index missing", H, b'{"values": [{"type": "URL", "data": "x"}]}', None, {}, 400, 202),
    (
        "duplicate index",
        H,
        b'{"values": [{"index": 1, "type": "URL", "data": "x"},'
        b' {"index": 1, "type": "DESC", "data": "y"}]}',
        None,
        {},
        400,
        202,
    ),
    (
        "admin data that is no admin",
        H,
        b'{"values": [{"index": 100, "type": "HS_ADMIN", "data": "me"}]}',
        None,
        {},
        400,
        202,
    ),
    (
        "unknown data format",
        H,
        b'{"values": [{"index": 1, "type": "URL", "data": {"format": "rot13", "value": "x"}}]}',
        None,
        {},
        400,
        202,
    ),
    (
        "bad permissions",
        H,
        b'{"values": [{"index": 1, "type": "URL", "data": "x", "permissions": "yes"}]}',
        None,
        {},
        400,
        202,
    ),
    (
        "ttl is not a number",
        H,
        b'{"values": [{"index": 1, "type": "URL", "data": "x", "ttl": [1]}]}',
        None,
        {},
        400,
        202,
    ),
    ("handle without a slash", "no-slash", b'{"values": []}', None, {}, 400, 102),
    (
        "prefix not homed here",
        "99.999/x",
        b'{"values": [{"index": 1, "type": "URL", "data": "x"}]}',
        None,
        {},
        400,
        301,
    ),
]


@pytest.mark.parametrize(
    ("handle", "raw", "params", "headers", "status", "code"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
async def test_bad_put_is_refused_with_its_code_and_changes_nothing(
    rest, handle, raw, params, headers, status, code
):
    await put(rest, body=record(URL_VALUE))
    before = await rest.snapshot()
    resp = await rest.client.put(
        f"/api/handles/{handle}",
        content=raw,
        params=params,
        headers={"Content-Type": "application/json", **ADMIN, **headers},
    )
    body = resp.json()
    assert (resp.status_code, body["responseCode"]) == (status, code), body
    assert body["handle"] == handle and body["message"]
    assert await rest.snapshot() == before


async def test_value_over_the_size_limit_is_refused_and_changes_nothing(rest):
    await put(rest, body=record(URL_VALUE))
    before = await rest.snapshot()
    big = {
        "index": 9,
        "type": "BLOB",
        "data": {"format": "base64", "value": base64.b64encode(b"x" * 65537).decode()},
    }
    resp = await put(rest, body={"values": [big]}, params={"index": 9})
    assert (resp.status_code, resp.json()["responseCode"]) == (400, 202)
    assert "65536" in resp.json()["message"]
    assert await rest.snapshot() == before


async def test_create_without_credentials_is_401_402_with_a_challenge(rest):
    before = await rest.snapshot()
    resp = await put(rest, body=record(URL_VALUE), headers={})
    assert resp.status_code == 401
    assert resp.json() == {"responseCode": 402, "handle": H, "message": resp.json()["message"]}
    challenges = resp.headers.get_list("www-authenticate")
    assert challenges[0] == 'Basic realm="handle"'
    assert challenges[1].startswith('Handle sessionId="') and 'nonce="' in challenges[1]
    assert await rest.snapshot() == before


@pytest.mark.parametrize(
    "headers",
    [
        basic(admin_identity(), "wrong"),
        basic(admin_identity(), ""),
        basic(f"301:{PREFIX}/ADMIN", SECRET),  # no key at that index
        basic(f"300:{PREFIX}/NOBODY", SECRET),  # no such handle
        basic("300:99.999/ELSEWHERE", SECRET),  # a key this node cannot check
        {"Authorization": "Basic !!!notbase64"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        {"Authorization": "Bearer abc"},
        {"Authorization": 'Handle sessionId="no-such-session"'},
    ],
    ids=[
        "wrong-secret",
        "empty-secret",
        "no-key-at-index",
        "unknown-handle",
        "not-homed",
        "bad-base64",
        "no-colon",
        "other-scheme",
        "unknown-session",
    ],
)
async def test_failed_authentication_is_401_and_changes_nothing(rest, headers):
    before = await rest.snapshot()
    resp = await put(rest, body=record(URL_VALUE), headers=headers)
    assert (resp.status_code, resp.json()["responseCode"]) == (401, 402)
    assert resp.json()["handle"] == H
    assert "www-authenticate" in resp.headers
    assert SECRET not in resp.text
    assert await rest.snapshot() == before


async def test_the_secret_is_never_echoed(rest):
    resp = await put(rest, body=record(URL_VALUE), headers=basic(admin_identity(), "Tr0ub4dor&3"))
    assert resp.status_code == 401
    assert "Tr0ub4dor" not in resp.text and "Tr0ub4dor" not in str(resp.headers)


async def test_a_stranger_with_a_valid_key_is_403_400_and_changes_nothing(rest):
    stranger = basic(other_identity(), OTHER_SECRET)
    before = await rest.snapshot()
    resp = await put(rest, body=record(URL_VALUE), headers=stranger)
    assert (resp.status_code, resp.json()["responseCode"]) == (403, 400)
    await put(rest, body=record(URL_VALUE))
    before = await rest.snapshot()
    hijack = {**URL_VALUE, "data": "https://evil.example"}
    for params in (None, {"index": 1}):
        body = record(hijack) if params is None else {"values": [hijack]}
        resp = await put(rest, body=body, params=params, headers=stranger)
        assert (resp.status_code, resp.json()["responseCode"]) == (403, 400)
    assert await rest.snapshot() == before
