"""HTTP request handling under random input: the ASGI app must never answer 500, and every
error it writes is JSON (``responseCode`` + ``message``), whatever the path, query, headers
or entity -- except the proxy's error page, HTML as HANDLE.NET's proxy writes it, for a client
that does not ask for JSON (a browser); the API namespace (``/api``...) is JSON whatever the
client accepts. In-process (httpx's ASGI transport), so hundreds of requests take seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idnode.app import open_node
from idnode.bootstrap import init_node
from idnode.config import load_config
from idnode.runtime import system
from idnode.transport.http import build_app
from tests.transport_http.support import PREFIX, SECRET, admin_identity, basic, provision

SEGMENTS = st.sampled_from(
    [
        "api",
        "handles",
        "sessions",
        "this",
        PREFIX,
        "0.NA",
        f"0.NA%2F{PREFIX}",
        "%00",
        "%ff",
        "..",
        "",
        "demo",
        "a b",
        "%2e%2e",
        "\u00e9",
        "healthz",
        "x" * 300,
    ]
)
METHODS = st.sampled_from(["GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "GET", "PUT"])
PARAMS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "index",
                "type",
                "publicOnly",
                "overwrite",
                "mintNewSuffix",
                "pretty",
                "callback",
                "prefix",
                "page",
                "pageSize",
                "auth",
                "sessionId",
            ]
        ),
        st.text(max_size=12),
    ),
    max_size=4,
)
AUTH = st.one_of(
    st.none(),
    st.just(basic(admin_identity(), SECRET)["Authorization"]),
    st.just(basic(admin_identity(), "wrong")["Authorization"]),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60).map(
        lambda t: "Handle " + t
    ),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(
        lambda t: "Basic " + t
    ),
)
JSON_BODIES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "values",
                    "index",
                    "type",
                    "data",
                    "format",
                    "value",
                    "permissions",
                    "ttl",
                    "handle",
                    "sessionId",
                    "id",
                    "signature",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
BODIES = st.one_of(st.binary(max_size=200), JSON_BODIES.map(orjson.dumps))


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[object]:
    directory: Path = tmp_path_factory.mktemp("httpfuzz") / "node"
    loop = asyncio.new_event_loop()
    config = loop.run_until_complete(
        init_node(directory, name="fuzz", prefixes=[PREFIX], demo=True, runtime=system())
    )
    node = loop.run_until_complete(
        open_node(load_config(config.directory, env={}), runtime=system())
    )
    loop.run_until_complete(provision(node.store))
    yield loop, build_app(node)
    loop.run_until_complete(node.store.close())
    loop.close()


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=METHODS,
    segments=st.lists(SEGMENTS, min_size=0, max_size=4),
    params=PARAMS,
    auth=AUTH,
    content_type=st.sampled_from([None, "application/json", "text/plain", "application/json; x"]),
    body=BODIES,
    accept=st.sampled_from([None, "application/json", "text/html", "*/*"]),
)
def test_random_requests_never_500_and_errors_are_json(
    app, method, segments, params, auth, content_type, body, accept
) -> None:
    loop, asgi = app
    headers = {}
    if accept is not None:
        headers["Accept"] = accept
    if auth is not None:
        headers["Authorization"] = auth
    if content_type is not None:
        headers["Content-Type"] = content_type
    path = "/" + "/".join(segments)

    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(app=asgi, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            return await client.request(
                method,
                "http://node" + path,  # absolute: "//x" alone would read as a host name
                params=params,
                headers=headers,
                content=body if method in ("PUT", "POST", "PATCH") else None,
            )

    response = loop.run_until_complete(ask())
    assert response.status_code != 500, (method, path, params, response.text[:300])
    if response.status_code >= 400:
        text = response.text
        media = response.headers.get("content-type", "")
        if media.startswith("text/html"):
            # the proxy's page for a browser: never for the API, never to a JSON client
            assert accept != "application/json" and segments[:1] != ["api"], (method, path)
            assert "<html" in text.lower(), text[:300]
            return
        if media.startswith("application/javascript"):
            text = text[text.index("(") + 1 : text.rindex(")")]
        payload = orjson.loads(text)
        assert "responseCode" in payload and "message" in payload, payload


def test_regression_405_on_the_proxy_route_is_json(app) -> None:
    """Found by this fuzzer: ``PUT /`` hit Starlette's plain-text 405."""
    loop, asgi = app

    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(app=asgi, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            return await client.put("/", content=b"")

    response = loop.run_until_complete(ask())
    assert response.status_code == 405
    assert orjson.loads(response.content)["responseCode"] == 4
