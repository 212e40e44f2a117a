"""The sessions API and the Authorization: Handle scheme (manual 14.6-14.7)."""

from __future__ import annotations

import base64

import pytest

from idnode.auth.identity import Identity
from idnode.auth.rest import make_rest_session_authorization
from idnode.crypto.keys import verify
from tests.transport_http.support import (
    OTHER_SECRET,
    PREFIX,
    SECRET,
    admin_identity,
    basic,
    other_identity,
)

OPERATOR = Identity(f"0.NA/{PREFIX}", 300)
RECORD = {"values": [{"index": 1, "type": "URL", "data": "https://example.com/s"}]}


async def open_session(rest, **kw) -> dict:
    resp = await rest.client.post("/api/sessions", **kw)
    assert resp.status_code == 201
    assert resp.headers["location"] == "/api/sessions/this"
    return resp.json()


def answer(session: dict, identity: Identity, **kw) -> dict[str, str]:
    nonce = base64.b64decode(session["nonce"])
    return {
        "Authorization": make_rest_session_authorization(
            session["sessionId"], identity, nonce, **kw
        )
    }


async def test_public_key_session_then_requests_with_the_session_id(rest):
    session = await open_session(rest)
    assert set(session) == {"sessionId", "nonce", "authenticated"} and not session["authenticated"]
    resp = await rest.client.put(
        "/api/sessions/this", headers=answer(session, OPERATOR, private_key=rest.operator_key)
    )
    assert resp.status_code == 200
    assert resp.json()["authenticated"] is True and resp.json()["id"] == str(OPERATOR)
    by_id = {"Authorization": f'Handle sessionId="{session["sessionId"]}"'}
    rest.client.cookies.clear()  # the header alone must do
    resp = await rest.client.put(f"/api/handles/{PREFIX}/s1", json=RECORD, headers=by_id)
    assert (resp.status_code, resp.json()["responseCode"]) == (201, 1)
    status = await rest.client.get("/api/sessions/this", headers=by_id)
    assert status.json()["authenticated"] is True and status.json()["id"] == str(OPERATOR)
    resp = await rest.client.delete("/api/sessions/this", headers=by_id)
    assert resp.status_code == 204
    before = await rest.snapshot()
    resp = await rest.client.delete(f"/api/handles/{PREFIX}/s1", headers=by_id)
    assert (resp.status_code, resp.json()["responseCode"]) == (401, 402)
    assert (await rest.client.get("/api/sessions/this", headers=by_id)).status_code == 403
    assert await rest.snapshot() == before


@pytest.mark.parametrize("alg", ["SHA1", "SHA256", "HMAC-SHA256", "PBKDF2-HMAC-SHA1"])
async def test_secret_key_session_answers(rest, alg):
    session = await open_session(rest)  # OTHER's secret is stored raw: every alg verifies
    resp = await rest.client.put(
        "/api/sessions/this",
        headers=answer(session, other_identity(), secret=OTHER_SECRET, alg=alg),
    )
    assert resp.status_code == 200 and resp.json()["id"] == str(other_identity())


async def test_wrong_answer_is_401_and_the_nonce_is_not_reusable(rest):
    session = await open_session(rest)
    good = answer(session, other_identity(), secret=OTHER_SECRET)
    bad = answer(session, other_identity(), secret="guess")
    resp = await rest.client.put("/api/sessions/this", headers=bad)
    assert resp.status_code == 401
    body = resp.json()
    assert body["authenticated"] is False and body["error"] and body["responseCode"] == 402
    assert body["nonce"] != session["nonce"]  # a fresh nonce to answer
    # the right answer to the old nonce comes too late: that nonce was spent
    late = await rest.client.put("/api/sessions/this", headers=good)
    assert late.status_code == 401
    fresh = answer(
        {**session, "nonce": late.json()["nonce"]}, other_identity(), secret=OTHER_SECRET
    )
    assert (await rest.client.put("/api/sessions/this", headers=fresh)).status_code == 200


async def test_answer_in_a_json_entity_with_an_unencoded_id(rest):
    session = await open_session(rest)
    header = answer(session, other_identity(), secret=OTHER_SECRET)["Authorization"]
    fields = dict(part.split("=", 1) for part in header[len("Handle ") :].split(", "))
    entity = {k: v.strip('"') for k, v in fields.items()}
    entity["id"] = str(other_identity())
    rest.client.cookies.clear()
    resp = await rest.client.put("/api/sessions/this", json=entity)
    assert resp.status_code == 200 and resp.json()["authenticated"] is True


async def test_basic_on_post_authenticates_the_session_and_the_cookie_carries_it(rest):
    session = await open_session(rest, headers=basic(admin_identity(), SECRET))
    assert session["authenticated"] is True and session["id"] == str(admin_identity())
    assert "JSESSIONID" in rest.client.cookies
    body = {
        "values": [
            {
                "index": 100,
                "type": "HS_ADMIN",
                "data": {
                    "format": "admin",
                    "value": {
                        "index": 200,
                        "handle": f"0.NA/{PREFIX}",
                        "permissions": "011111110011",
                    },
                },
            }
        ]
    }
    resp = await rest.client.put(f"/api/handles/{PREFIX}/by-cookie", json=body)
    assert resp.status_code == 201
    wrong = await rest.client.post("/api/sessions", headers=basic(admin_identity(), "no"))
    assert wrong.status_code == 201 and wrong.json()["authenticated"] is False
    assert wrong.json()["error"]


async def test_server_signature_when_the_client_sends_a_cnonce_first(rest):
    cnonce = b"0123456789abcdef"
    session = await open_session(rest, json={"cnonce": base64.b64encode(cnonce).decode()})
    assert session["serverAlg"] == "SHA256"
    signed = base64.b64decode(session["nonce"]) + cnonce
    public = rest.operator_key.public_key()  # not the server key: must not verify
    signature = base64.b64decode(session["serverSignature"])
    assert not verify(public, signature, signed, "SHA256")
    assert verify(rest.node.private_key.public_key(), signature, signed, "SHA256")


async def test_session_api_refusals(rest):
    resp = await rest.client.post(
        "/api/sessions", headers={"Authorization": 'Handle sessionId="x"'}
    )
    assert (resp.status_code, resp.json()["responseCode"]) == (400, 4)
    assert (await rest.client.get("/api/sessions")).status_code == 405
    rest.client.cookies.clear()
    assert (
        await rest.client.put("/api/sessions/this", json={"sessionId": "nope"})
    ).status_code == 403
    assert (await rest.client.delete("/api/sessions/this")).status_code == 403
    assert (await rest.client.get("/api/sessions/this")).json() == {"authenticated": False}
    resp = await rest.client.put(
        "/api/sessions/this", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400
    session = await open_session(rest)
    resp = await rest.client.put(
        "/api/sessions/this",
        headers={
            "Authorization": f'Handle sessionId="{session["sessionId"]}", id="300%3A{PREFIX}/OTHER"'
        },
    )
    assert resp.status_code == 401  # an incomplete answer


async def test_handle_answer_on_an_ordinary_request_authenticates_in_place(rest):
    session = await open_session(rest)
    rest.client.cookies.clear()
    headers = answer(session, OPERATOR, private_key=rest.operator_key)
    resp = await rest.client.put(f"/api/handles/{PREFIX}/inline", json=RECORD, headers=headers)
    assert resp.status_code == 201
    # the same header again is "seen before" in its (now authenticated) session
    resp = await rest.client.put(f"/api/handles/{PREFIX}/inline", json=RECORD, headers=headers)
    assert resp.status_code == 200
    without_session = {
        "Authorization": headers["Authorization"].replace(
            f'sessionId="{session["sessionId"]}", ', ""
        )
    }
    resp = await rest.client.put(
        f"/api/handles/{PREFIX}/inline", json=RECORD, headers=without_session
    )
    assert (resp.status_code, resp.json()["responseCode"]) == (401, 402)
