"""``/api/handles/{name}`` takes a name in each scheme's form (urn:oid:, ecode:, gs1:) and
answers the record of the Handle identifier it maps to, through the one resolver; a
malformed name is a 400 with the scheme's reason, and changes nothing."""

from __future__ import annotations

import pytest

from idnode.auth.identity import Identity
from idnode.model import URL, HandleValue
from idnode.service.resolve import ResolutionQuery
from tests.transport_http.support import PREFIX

OPERATOR = Identity(f"0.NA/{PREFIX}", 300)
OID = f"{PREFIX}/oid/1.2.156.10011.7"
ECODE = f"{PREFIX}/ecode/100011234567890"


@pytest.fixture
async def named(rest):
    await rest.node.admin.create_handle(OPERATOR, OID, [HandleValue(1, URL, b"https://e.com/o")])
    await rest.node.admin.create_handle(OPERATOR, ECODE, [HandleValue(1, URL, b"https://e.com/e")])
    return rest


@pytest.mark.parametrize(
    ("name", "handle", "url"),
    [
        ("urn:oid:1.2.156.10011.7", OID, "https://e.com/o"),
        ("oid:1.2.156.10011.7", OID, "https://e.com/o"),
        ("ecode:100011234567890", ECODE, "https://e.com/e"),
        (OID, OID, "https://e.com/o"),  # the Handle name itself, unchanged
    ],
)
async def test_each_form_resolves_the_mapped_handle(named, name, handle, url):
    r = await named.client.get(f"/api/handles/{name}")
    assert r.status_code == 200, r.text
    assert r.json()["values"][0]["data"]["value"] == url
    direct = await named.node.resolver.resolve(ResolutionQuery(handle=handle))
    mapped = await named.node.resolver.resolve(ResolutionQuery(handle=name))
    assert mapped == direct


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("urn:oid:1.40.1", "under arc 1 the second arc is at most 39"),
        ("ecode:5000112345", "unknown version digit '5'"),
        ("gs1:01/09506000134353", "check digit 3 is wrong, expected 2"),
    ],
)
async def test_malformed_names_are_400_with_the_reason(named, name, message):
    before = await named.snapshot()
    r = await named.client.get(f"/api/handles/{name}")
    assert r.status_code == 400
    assert message in r.json()["message"]
    assert await named.snapshot() == before


async def test_an_unregistered_name_is_404(named):
    r = await named.client.get("/api/handles/urn:oid:1.2.156.99")
    assert r.status_code == 404


async def test_the_gate_judges_the_mapped_identifier(named):
    """A suspended identifier stays refused under every form, a cached answer's check
    (``admits``) included: the gate is asked about the Handle name, never the OID text."""
    from idnode.config import SchemesSection
    from idnode.errors import HandleNotFound
    from idnode.schemes.registry import SchemeRegistry
    from idnode.service.resolve import Resolver

    asked: list[str] = []

    def gate(handle: str, client: str) -> None:
        asked.append(handle)
        if handle == OID:
            raise HandleNotFound(f"{handle} is suspended")

    names = SchemeRegistry.from_settings(SchemesSection(), [PREFIX]).to_handle
    resolver = Resolver(named.node.store, named.node.homed, gate=gate, names=names)
    assert resolver.admits("urn:oid:1.2.156.10011.7") is False
    assert resolver.admits("ecode:100011234567890") is True
    with pytest.raises(HandleNotFound, match="suspended"):
        await resolver.resolve(ResolutionQuery(handle="oid:1.2.156.10011.7"))
    assert asked == [OID, ECODE, OID]
