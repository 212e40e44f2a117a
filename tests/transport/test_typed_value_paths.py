"""A typed value is refused alike over the binary protocol and over REST (issue 13).

Garbage HS_SITE.PREFIX and HS_NA_DELEGATE data used to be stored when sent over the wire
(``check_record`` knew HS_SITE only) and refused over REST (``wire.handlevalues`` knew all
three); lower-case type names split the same way. Now both paths ask the one registry, so the
response code and the message are the same, and the message never repeats the data.
"""

from __future__ import annotations

import base64

import httpx
import pytest

from idnode.client.admin import new_request
from idnode.codes import OpCode
from idnode.codes import ResponseCode as RC
from idnode.model import HS_ADMIN, HandleValue
from idnode.transport.http import build_app
from idnode.wire import bodies
from idnode.wire.admin import AdminRecord, encode_admin
from idnode.wire.site import SiteInfo, encode_site
from tests.transport.conftest import OPERATOR, PREFIX
from tests.transport_http.support import SECRET, admin_identity, basic, provision

GARBAGE = b"garbage!"  # 8 bytes: a site record needs more
SITE = encode_site(SiteInfo.for_single_server("192.0.2.7"))
REST_ADMIN = {
    "index": 100,
    "type": HS_ADMIN,
    "data": {
        "format": "admin",
        "value": {"index": "200", "handle": f"0.NA/{PREFIX}", "permissions": "011111110011"},
    },
}


async def over_wire(wn, handle: str, value: HandleValue) -> tuple[int, str]:
    ref_index, _, ref_handle = OPERATOR.partition(":")
    admin = HandleValue(100, HS_ADMIN, encode_admin(AdminRecord(ref_handle, int(ref_index))))
    request = new_request(OpCode.CREATE_HANDLE, bodies.CreateHandleRequest(handle, (admin, value)))
    async with wn.client() as client:
        reply = (await client.exchange(request))[-1]
    return reply.header.response_code, getattr(reply.body, "message", "")


async def over_rest(wn, handle: str, value: HandleValue) -> tuple[int, str]:
    await provision(wn.node.store)
    data = {"format": "base64", "value": base64.b64encode(value.data).decode()}
    body = {"values": [REST_ADMIN, {"index": value.index, "type": value.type, "data": data}]}
    transport = httpx.ASGITransport(app=build_app(wn.node))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        resp = await client.put(
            f"/api/handles/{handle}", json=body, headers=basic(admin_identity(), SECRET)
        )
    answer = resp.json()
    return answer["responseCode"], answer.get("message", "")


@pytest.mark.parametrize(
    "type_", ["HS_SITE.PREFIX", "HS_NA_DELEGATE", "hs_na_delegate", "HS_SITE", "hs_site.prefix"]
)
async def test_garbage_site_data_is_refused_alike_over_wire_and_rest(wire_node, type_: str):
    value = HandleValue(5, type_, GARBAGE)
    before = wire_node.dump()
    wire = await over_wire(wire_node, f"{PREFIX}/wire-1", value)
    assert wire_node.dump() == before
    rest = await over_rest(wire_node, f"{PREFIX}/rest-1", value)
    assert wire == rest
    code, message = wire
    assert code == RC.INVALID_VALUE
    assert message.startswith(f"value 5: not a valid {type_.upper()}: site.")
    assert "garbage" not in message


@pytest.mark.parametrize("type_", ["HS_SITE.PREFIX", "HS_NA_DELEGATE"])
async def test_real_site_data_is_stored_over_both(wire_node, type_: str):
    value = HandleValue(5, type_, SITE)
    assert (await over_wire(wire_node, f"{PREFIX}/wire-ok", value))[0] == RC.SUCCESS
    assert (await over_rest(wire_node, f"{PREFIX}/rest-ok", value))[0] == 1
    for handle in (f"{PREFIX}/wire-ok", f"{PREFIX}/rest-ok"):
        stored = await wire_node.node.store.get_handle(handle)
        assert [v.data for v in stored if v.index == 5] == [SITE]
