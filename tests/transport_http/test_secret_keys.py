"""A secret key is never world-readable, whatever path wrote it (issue 15, item 6).

HS_SECKEY sent over REST without ``permissions`` got the JSON default (PUBLIC_READ), so any
anonymous client could read it. The one write path (``service/admin.py``) now clears the
public bits of every HS_SECKEY it stores; against the code before the change the anonymous
GET below returned the secret.
"""

from __future__ import annotations

from idnode.codes import Permission
from idnode.model import HS_SECKEY, HandleValue
from tests.transport_http.support import PREFIX, SECRET, admin_identity, basic

H = f"{PREFIX}/with-a-key"
ADMIN = basic(admin_identity(), SECRET)
OWNER = {
    "index": 100,
    "type": "HS_ADMIN",
    "data": {
        "format": "admin",
        "value": {"index": "200", "handle": f"0.NA/{PREFIX}", "permissions": "011111111111"},
    },
}
KEY = {"index": 300, "type": "HS_SECKEY", "data": "never-tell-4711"}  # no permissions given


async def test_a_secret_key_put_without_permissions_is_not_public(rest) -> None:
    created = await rest.client.put(f"/api/handles/{H}", json=[OWNER, KEY], headers=ADMIN)
    assert created.status_code == 201, created.text
    anonymous = await rest.client.get(f"/api/handles/{H}")
    assert anonymous.status_code == 200
    assert "never-tell-4711" not in anonymous.text
    assert HS_SECKEY not in {v["type"] for v in anonymous.json()["values"]}
    stored = next(v for v in await rest.node.store.get_handle(H) if v.index == 300)
    assert not stored.permissions & (Permission.PUBLIC_READ | Permission.PUBLIC_WRITE)
    assert stored.permissions & Permission.ADMIN_READ  # still readable by its admins


async def test_every_write_path_keeps_secret_keys_private(rest) -> None:
    admin = rest.node.admin
    operator = next(iter(admin.acl.operators))
    public = Permission.PUBLIC_READ | Permission.ADMIN_READ | Permission.ADMIN_WRITE
    key = HandleValue(300, HS_SECKEY, b"s3cret", permissions=public)
    await admin.create_handle(operator, f"{PREFIX}/a", [key])
    await admin.add_values(operator, f"{PREFIX}/a", [HandleValue(301, HS_SECKEY, b"x")])
    await admin.modify_values(operator, f"{PREFIX}/a", [key])
    await admin.load(operator, [(f"{PREFIX}/b", [key])])
    for handle in (f"{PREFIX}/a", f"{PREFIX}/b"):
        for value in await rest.node.store.get_handle(handle):
            assert not value.public_read, (handle, value.index)
