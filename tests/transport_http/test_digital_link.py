"""GS1 Digital Link on the HTTP face (transport/digital_link.py) against a real node and
store: redirects (307) by link type, language and media type, the RFC 9264 linkset, the
resolver description, 400s with their reasons, and the Handle name and the Digital Link path
reaching one record through the one resolver."""

from __future__ import annotations

import jsonschema
import orjson
import pytest

from idnode.auth.identity import Identity
from idnode.model import URL, HandleValue
from idnode.schemes.gs1_links import LINKSET
from tests.transport_http.support import PREFIX

OPERATOR = Identity(f"0.NA/{PREFIX}", 300)
GTIN = "09506000134352"
PRODUCT = f"{PREFIX}/01/{GTIN}"
BATCH = f"{PREFIX}/01/{GTIN}/10/ABC"

# RFC 9264 section 4.2: the JSON linkset, as a JSON Schema
LINKSET_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["linkset"],
    "additionalProperties": False,
    "properties": {
        "linkset": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/context"}},
    },
    "$defs": {
        "context": {
            "type": "object",
            "properties": {"anchor": {"type": "string", "format": "uri"}},
            # every other member is a relation type (a registered name or a URI) -> targets
            "propertyNames": {"pattern": "^(anchor|[a-z][a-z0-9.-]*|[A-Za-z][A-Za-z0-9+.-]*:.+)$"},
            "additionalProperties": {
                "type": "array",
                "minItems": 1,
                "items": {"$ref": "#/$defs/target"},
            },
        },
        "target": {
            "type": "object",
            "required": ["href"],
            "properties": {
                "href": {"type": "string", "format": "uri-reference"},
                "hreflang": {"type": "array", "items": {"type": "string"}},
                "media": {"type": "string"},
                "title": {"type": "string"},
                "title*": {
                    "type": "array",
                    "items": {"type": "object", "required": ["value"]},
                },
                "type": {"type": "string"},
            },
            # extension target attributes are arrays (section 4.2.4.3)
            "additionalProperties": {"type": "array"},
        },
    },
}


def link(index: int, kind: str, href: str, **attrs) -> HandleValue:
    data = orjson.dumps({"href": href, **attrs}) if attrs else href.encode()
    return HandleValue(index, kind, data)


@pytest.fixture
async def product(rest):
    """A GTIN homed on the node: its product record and one batch's record."""
    await rest.node.admin.create_handle(
        OPERATOR,
        PRODUCT,
        [
            link(1, "gs1:defaultLink", "https://example.com/en/product", hreflang="en"),
            link(2, "gs1:defaultLinkMulti", "https://example.com/zh/product", hreflang=["zh"]),
            link(
                3,
                "gs1:pip",
                "https://example.com/pip.pdf",
                type="application/pdf",
                title="Product information",
            ),  # fmt: skip
            link(4, "gs1:pip", "https://example.com/pip.html", type="text/html"),
            link(5, "gs1:certificationInfo", "https://example.com/cert", context="cn"),
        ],
    )
    await rest.node.admin.create_handle(
        OPERATOR, BATCH, [link(1, "gs1:recallStatus", "https://example.com/recall/ABC")]
    )
    return rest


async def test_the_default_link_is_a_307_chosen_by_language(product):
    client = product.client
    r = await client.get(f"/01/{GTIN}")
    assert r.status_code == 307
    assert r.headers["location"] == "https://example.com/en/product"
    assert 'rel="linkset"' in r.headers["link"] and LINKSET in r.headers["link"]
    r = await client.get(f"/01/{GTIN}", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert r.headers["location"] == "https://example.com/zh/product"
    r = await client.get(f"/01/{GTIN}", headers={"Accept-Language": "fr, en;q=0.1"})
    assert r.headers["location"] == "https://example.com/en/product"
    assert "Accept-Language" in r.headers["vary"]


async def test_a_link_type_is_chosen_by_media_type(product):
    client = product.client
    r = await client.get(f"/01/{GTIN}?linkType=gs1:pip", headers={"Accept": "application/pdf"})
    assert (r.status_code, r.headers["location"]) == (307, "https://example.com/pip.pdf")
    r = await client.get(
        f"/01/{GTIN}?linkType=https://gs1.org/voc/pip", headers={"Accept": "text/html"}
    )
    assert r.headers["location"] == "https://example.com/pip.html"
    # a link type the record lacks falls back to the default link
    r = await client.get(f"/01/{GTIN}?linkType=gs1:smartLabel")
    assert (r.status_code, r.headers["location"]) == (307, "https://example.com/en/product")


async def test_link_type_all_is_an_rfc9264_linkset(product):
    r = await product.client.get(f"/01/{GTIN}?linkType=all")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(LINKSET)
    body = r.json()
    jsonschema.validate(body, LINKSET_SCHEMA, format_checker=jsonschema.FormatChecker())
    context = body["linkset"][0]
    assert context["anchor"] == f"http://node/01/{GTIN}"
    pip = context["https://gs1.org/voc/pip"]
    assert [t["href"] for t in pip] == [
        "https://example.com/pip.pdf",
        "https://example.com/pip.html",
    ]
    assert pip[0] == {"href": "https://example.com/pip.pdf", "title": "Product information",
                      "type": "application/pdf"}  # fmt: skip
    assert context["https://gs1.org/voc/defaultLinkMulti"][0]["hreflang"] == ["zh"]
    assert context["https://gs1.org/voc/certificationInfo"][0]["context"] == ["cn"]
    # the same linkset to a client that asks for it by media type
    r = await product.client.get(f"/01/{GTIN}", headers={"Accept": LINKSET})
    assert r.status_code == 200 and r.json() == body


def test_the_schema_itself_refuses_what_rfc9264_forbids():
    for broken in (
        {"links": []},
        {"linkset": [{"anchor": "https://a", "https://gs1.org/voc/pip": {"href": "x"}}]},
        {"linkset": [{"anchor": "https://a", "https://gs1.org/voc/pip": [{"title": "no href"}]}]},
        {"linkset": [{"https://gs1.org/voc/pip": [{"href": "h", "context": "not an array"}]}]},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, LINKSET_SCHEMA)


async def test_qualifiers_reach_the_most_specific_record(product):
    client = product.client
    r = await client.get(f"/01/{GTIN}/10/ABC?linkType=gs1:recallStatus")
    assert r.headers["location"] == "https://example.com/recall/ABC"
    # a serial with no record of its own: the batch's; an unknown batch: the product's
    r = await client.get(f"/01/{GTIN}/10/ABC/21/123?linkType=all")
    assert r.json()["linkset"][0]["anchor"] == f"http://node/01/{GTIN}/10/ABC"
    r = await client.get(f"/01/{GTIN}/10/XYZ/21/9")
    assert r.headers["location"] == "https://example.com/en/product"


async def test_the_handle_name_and_the_digital_link_reach_one_record(product):
    client = product.client
    by_handle = (await client.get(f"/api/handles/{PRODUCT}")).json()
    by_form = (await client.get(f"/api/handles/gs1:01/{GTIN}")).json()
    assert by_handle["values"] == by_form["values"] and len(by_form["values"]) == 5
    element = (await client.get("/api/handles/gs1:(01)09506000134352(10)ABC")).json()
    assert element["values"][0]["type"] == "gs1:recallStatus"
    # a record written for the proxy (a URL value) answers a Digital Link scan as well
    gln = f"{PREFIX}/414/9520123456788"
    await product.node.admin.create_handle(
        OPERATOR, gln, [HandleValue(1, URL, b"https://example.com/site")]
    )
    r = await client.get("/414/9520123456788")
    assert (r.status_code, r.headers["location"]) == (307, "https://example.com/site")


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        (f"/01/{GTIN[:-1]}3", 400, "check digit 3 is wrong, expected 2"),
        (f"/01/{GTIN}/99/ABC", 400, "unknown GS1 application identifier 99"),
        (f"/01/{GTIN}/21/1/10/ABC", 400, "10 (BATCH/LOT) must come before 21 (SERIAL)"),
        (f"/01/{GTIN}?17=261399", 400, "17 (USE BY OR EXPIRY)"),
        (f"/01/{GTIN}?linkType=https://schema.org/url", 400, "unknown linkType"),
        ("/01/04012345000009", 404, "no record for the GS1 key /01/04012345000009"),
        ("/00/106141412345678908", 404, "no record"),
    ],
)
async def test_bad_and_unknown_keys_are_json_errors(product, path, status, message):
    before = await product.snapshot()
    r = await product.client.get(path)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    assert message in r.json()["message"]
    assert await product.snapshot() == before


async def test_a_key_without_links_is_404(product):
    await product.node.admin.create_handle(
        OPERATOR, f"{PREFIX}/8004/0952123abc", [HandleValue(1, "DESC", b"a pump")]
    )
    r = await product.client.get("/8004/0952123abc")
    assert r.status_code == 404 and "has no gs1:defaultLink link" in r.json()["message"]


async def test_the_resolver_description(product):
    r = await product.client.get("/.well-known/gs1resolver")
    body = r.json()
    assert r.status_code == 200
    assert body["name"] == "rest-test" and body["resolverRoot"] == "http://node"
    assert {"01", "00", "414", "8003", "8004"} <= set(body["supportedPrimaryKeys"])
    assert body["supportedLinkType"] == [{"namespace": "https://gs1.org/voc/", "prefix": "gs1:"}]
    assert body["linkTypeDefaultCanBeLinkset"] is True
