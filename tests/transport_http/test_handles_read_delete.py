"""GET (resolution options, restricted values), DELETE and the prefix listing."""

from __future__ import annotations

import orjson
import pytest

from tests.transport_http.support import (
    OTHER_SECRET,
    PREFIX,
    SECRET,
    admin_identity,
    basic,
    other_identity,
)

ADMIN = basic(admin_identity(), SECRET)
STRANGER = basic(other_identity(), OTHER_SECRET)
DEMO = f"{PREFIX}/demo-1"  # has a value without PUBLIC_READ at index 5


ITEM = f"{PREFIX}/item-9"
ITEM_RECORD = {
    "values": [
        {"index": 1, "type": "URL", "data": "https://example.com/9"},
        {"index": 2, "type": "DESC", "data": "nine"},
        {"index": 5, "type": "NOTE", "data": "private", "permissions": "1100"},
        {
            "index": 100,
            "type": "HS_ADMIN",
            "data": {
                "format": "admin",
                "value": {
                    "index": "200",
                    "handle": f"0.NA/{PREFIX}",
                    "permissions": "011111110011",
                },
            },
        },
    ]
}


async def make_item(rest) -> None:
    resp = await rest.client.put(f"/api/handles/{ITEM}", json=ITEM_RECORD, headers=ADMIN)
    assert resp.status_code == 201


async def test_anonymous_get_hides_restricted_values_and_authenticated_admin_sees_them(rest):
    await make_item(rest)
    anonymous = (await rest.client.get(f"/api/handles/{ITEM}")).json()
    assert [v["index"] for v in anonymous["values"]] == [1, 2, 100]
    admin = await rest.client.get(f"/api/handles/{ITEM}", headers=ADMIN)
    assert [v["index"] for v in admin.json()["values"]] == [1, 2, 5, 100]
    assert admin.json()["values"][2]["permissions"] == "1100"
    public_only = await rest.client.get(
        f"/api/handles/{ITEM}", headers=ADMIN, params={"publicOnly": "true"}
    )
    assert 5 not in [v["index"] for v in public_only.json()["values"]]
    stranger = await rest.client.get(f"/api/handles/{ITEM}", headers=STRANGER)
    assert 5 not in [v["index"] for v in stranger.json()["values"]]


async def test_anonymous_public_only_false_on_restricted_values_is_401(rest):
    resp = await rest.client.get(f"/api/handles/{DEMO}", params={"publicOnly": "false"})
    assert (resp.status_code, resp.json()["responseCode"]) == (401, 402)
    resp = await rest.client.get(
        f"/api/handles/{PREFIX}/demo-2", params={"publicOnly": "false", "type": "URL"}
    )
    assert resp.status_code == 200  # nothing restricted asked for: no challenge


async def test_public_only_false_follows_the_wires_rule_for_authenticated_readers(rest):
    """An explicit publicOnly=false is the wire's strict rule (service.resolve): a reader
    without AUTHORIZED_READ is refused (it was quietly given the public values only), an
    administrator gets the restricted values, and asking only for public ones is no problem."""
    await make_item(rest)
    strict = {"publicOnly": "false"}
    stranger = await rest.client.get(f"/api/handles/{ITEM}", headers=STRANGER, params=strict)
    assert (stranger.status_code, stranger.json()["responseCode"]) == (403, 400)
    assert "private" not in stranger.text
    admin = await rest.client.get(f"/api/handles/{ITEM}", headers=ADMIN, params=strict)
    assert [v["index"] for v in admin.json()["values"]] == [1, 2, 5, 100]
    public = await rest.client.get(
        f"/api/handles/{ITEM}", headers=STRANGER, params={**strict, "index": "1"}
    )
    assert [v["index"] for v in public.json()["values"]] == [1]


async def test_get_of_wrong_credentials_is_401_even_for_public_data(rest):
    resp = await rest.client.get(f"/api/handles/{DEMO}", headers=basic(admin_identity(), "x"))
    assert (resp.status_code, resp.json()["responseCode"]) == (401, 402)


async def test_values_not_found_in_resolution_is_200_200(rest):
    resp = await rest.client.get(f"/api/handles/{DEMO}", params={"type": "NOTHING"})
    assert resp.status_code == 200
    assert resp.json() == {"responseCode": 200, "handle": DEMO, "values": []}


async def test_pretty_and_jsonp_callback(rest):
    resp = await rest.client.get(f"/api/handles/{DEMO}", params={"pretty": ""})
    assert resp.text.startswith("{\n  ")
    resp = await rest.client.get(f"/api/handles/{DEMO}", params={"callback": "show<x>"})
    assert resp.headers["content-type"].startswith("application/javascript")
    assert resp.text.startswith("show_x_(") and resp.text.endswith(");")
    assert orjson.loads(resp.text[len("show_x_(") : -2])["handle"] == DEMO
    missing = await rest.client.get(f"/api/handles/{PREFIX}/none", params={"callback": "cb"})
    assert missing.status_code == 404 and missing.text.startswith("cb(")


async def test_unknown_method_and_empty_handle(rest):
    resp = await rest.client.post(f"/api/handles/{DEMO}", json={})
    assert (resp.status_code, resp.json()["responseCode"]) == (405, 4)
    resp = await rest.client.get("/api/handles/")
    assert (resp.status_code, resp.json()["responseCode"]) == (400, 102)


async def test_delete_values_then_handle(rest):
    await make_item(rest)
    resp = await rest.client.delete(
        f"/api/handles/{ITEM}", params=[("index", 2), ("index", 5)], headers=ADMIN
    )
    assert (resp.status_code, resp.json()) == (200, {"responseCode": 1, "handle": ITEM})
    got = await rest.client.get(f"/api/handles/{ITEM}", headers=ADMIN)
    assert [v["index"] for v in got.json()["values"]] == [1, 100]
    resp = await rest.client.delete(f"/api/handles/{ITEM}", headers=ADMIN)
    assert (resp.status_code, resp.json()) == (200, {"responseCode": 1, "handle": ITEM})
    got = await rest.client.get(f"/api/handles/{ITEM}")
    assert (got.status_code, got.json()["responseCode"], got.json()["handle"]) == (404, 100, ITEM)


@pytest.mark.parametrize(
    ("handle", "params", "headers", "status", "code"),
    [
        (ITEM, {"index": 42}, ADMIN, 400, 200),
        (ITEM, {"index": "x"}, ADMIN, 400, 4),
        (f"{PREFIX}/none", None, ADMIN, 404, 100),
        ("99.999/x", None, ADMIN, 400, 301),
        (ITEM, None, {}, 401, 402),
        (ITEM, {"index": 1}, {}, 401, 402),
        (ITEM, None, basic(admin_identity(), "nope"), 401, 402),
        (ITEM, None, STRANGER, 403, 400),
        (ITEM, {"index": 1}, STRANGER, 403, 400),
    ],
    ids=[
        "missing-index",
        "bad-index",
        "no-handle",
        "not-homed",
        "no-auth",
        "no-auth-index",
        "wrong-secret",
        "stranger",
        "stranger-index",
    ],
)
async def test_refused_delete_changes_nothing(rest, handle, params, headers, status, code):
    await make_item(rest)
    before = await rest.snapshot()
    resp = await rest.client.delete(f"/api/handles/{handle}", params=params, headers=headers)
    assert (resp.status_code, resp.json()["responseCode"]) == (status, code)
    assert resp.json()["handle"] == handle and resp.json()["message"]
    assert await rest.snapshot() == before


async def test_list_handles_of_a_prefix_with_paging(rest):
    resp = await rest.client.get("/api/handles", params={"prefix": PREFIX}, headers=ADMIN)
    body = resp.json()
    everything = [
        f"{PREFIX}/ADMIN",
        f"{PREFIX}/demo-1",
        f"{PREFIX}/demo-2",
        f"{PREFIX}/demo-3",
        f"{PREFIX}/OTHER",
    ]
    assert resp.status_code == 200
    assert body == {
        "responseCode": 1,
        "prefix": PREFIX,
        "totalCount": "5",
        "handles": body["handles"],
    }
    assert sorted(body["handles"], key=str.upper) == sorted(everything, key=str.upper)
    page0 = (
        await rest.client.get(
            "/api/handles", headers=ADMIN, params={"prefix": PREFIX, "page": 0, "pageSize": 2}
        )
    ).json()
    page2 = (
        await rest.client.get(
            "/api/handles", headers=ADMIN, params={"prefix": PREFIX, "page": 2, "pageSize": 2}
        )
    ).json()
    assert (page0["page"], page0["pageSize"], page0["totalCount"]) == (0, 2, "5")
    assert page0["handles"] + page2["handles"] == body["handles"][:2] + body["handles"][4:]
    count = (
        await rest.client.get(
            "/api/handles",
            headers=ADMIN,
            params={"prefix": f"0.NA/{PREFIX}", "page": 0, "pageSize": 0},
        )
    ).json()
    assert (count["totalCount"], count["handles"]) == ("5", [])
    beyond = (
        await rest.client.get(
            "/api/handles", headers=ADMIN, params={"prefix": PREFIX, "page": 9, "pageSize": 2}
        )
    ).json()
    assert beyond["handles"] == []


@pytest.mark.parametrize(
    ("params", "headers", "status", "code"),
    [
        ({"prefix": PREFIX}, {}, 401, 402),
        ({"prefix": PREFIX}, basic(admin_identity(), "bad"), 401, 402),
        ({"prefix": PREFIX}, STRANGER, 403, 400),
        ({"prefix": "99.999"}, ADMIN, 400, 301),
        ({}, ADMIN, 400, 102),
        ({"prefix": PREFIX, "page": "first", "pageSize": 2}, ADMIN, 400, 4),
    ],
    ids=["no-auth", "wrong-secret", "stranger", "not-homed", "no-prefix", "bad-page"],
)
async def test_list_refusals(rest, params, headers, status, code):
    resp = await rest.client.get("/api/handles", params=params, headers=headers)
    assert (resp.status_code, resp.json()["responseCode"]) == (status, code)
    assert resp.json()["message"]
