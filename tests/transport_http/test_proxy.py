"""The proxy (``GET|HEAD /{handle}``) as HANDLE.NET's, against a real ``idnode serve``.

Each of issue 19's bugs has its test here, which failed before the proxy was rebuilt:
10320/LOC ignored (it redirected to the first URL value), locatt / noredirect / urlappend /
showvalues ignored, JSON where hdl.handle.net shows an HTML page, ``/history`` shadowing a
handle, and unknown ``/api/*`` paths answered 400 "not responsible".
"""

from __future__ import annotations

import re
import socket
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import stop_node
from tests.transport_http.proxy_node import (
    HISTORY,
    LOC,
    NO_URL,
    PAYLOAD,
    PREFIX,
    SPACE,
    XSS,
    start_proxy_node,
)

BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
JSON = {"accept": "application/json"}


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    running = start_proxy_node(tmp_path_factory.mktemp("proxy") / "node")
    yield running
    stop_node(running)


@pytest.fixture
def client(node):
    with httpx.Client(base_url=node.http_url, follow_redirects=False) as c:
        yield c


def test_a_10320_loc_record_redirects_to_its_location_not_the_first_url(client):
    answer = client.get(f"/{LOC}", headers=BROWSER)
    assert answer.status_code == 302
    # weighted: the only location of weight > 0 (the URL at index 1 is not used)
    assert answer.headers["location"] == "https://primary.example.org/a"


@pytest.mark.parametrize(
    ("query", "location"),
    [
        ("locatt=country:cn", "https://cn.example.cn/a"),
        ("locatt=view:json", "https://example.org/a.json"),
        ("view=json", "https://example.org/a.json"),
        ("locatt=country:fr", "https://primary.example.org/a"),  # no match: all candidates
        ("urlappend=/spec.pdf", "https://primary.example.org/a/spec.pdf"),
        ("locatt=country:cn&urlappend=%3Flang%3Dzh", "https://cn.example.cn/a?lang=zh"),
    ],
)
def test_locatt_view_and_urlappend_choose_and_extend_the_target(client, query, location):
    answer = client.get(f"/{LOC}?{query}", headers=BROWSER)
    assert answer.status_code == 302
    assert answer.headers["location"] == location


@pytest.mark.parametrize("query", ["noredirect", "action=showvalues", "noredirect=true"])
def test_noredirect_and_showvalues_show_the_values_page(client, query):
    answer = client.get(f"/{LOC}?{query}", headers=BROWSER)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "https://first-url.example.org/" in answer.text
    assert "parts@example.org" in answer.text
    assert answer.headers["content-security-policy"].startswith("default-src 'none'")


def test_a_record_without_url_is_an_html_page_not_json(client):
    answer = client.get(f"/{NO_URL}", headers=BROWSER)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert "<table" in answer.text and "泵 7 号 pump seven" in answer.text
    # curl's */* is a person too
    assert client.get(f"/{NO_URL}").headers["content-type"].startswith("text/html")


def test_the_page_speaks_chinese_or_english(client):
    zh = client.get(f"/{NO_URL}", headers={**BROWSER, "accept-language": "zh-CN,zh;q=0.9"})
    assert '<html lang="zh">' in zh.text and "索引" in zh.text
    assert zh.headers["content-language"] == "zh"
    en = client.get(f"/{NO_URL}", headers={**BROWSER, "accept-language": "en-GB,zh;q=0.5"})
    assert '<html lang="en">' in en.text and "Index" in en.text
    forced = client.get(f"/{NO_URL}?lang=zh", headers={**BROWSER, "accept-language": "en"})
    assert "索引" in forced.text


def test_values_are_escaped_on_the_page(client):
    text = client.get(f"/{XSS}", headers=BROWSER).text
    assert "<script>" not in text and 'onerror="' not in text
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in text
    assert 'href="javascript:' not in text  # a link only of http(s) URLs
    assert PAYLOAD not in text


def test_accept_json_gets_the_rest_json(client):
    answer = client.get(f"/{LOC}", headers=JSON)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["responseCode"], body["handle"]) == (1, LOC)
    assert [v["index"] for v in body["values"]] == [1, 2, 3]
    missing = client.get(f"/{PREFIX}/nothing-here", headers=JSON)
    assert missing.status_code == 404 and missing.json()["responseCode"] == 100


def test_type_and_index_filters(client):
    by_type = client.get(f"/{LOC}?type=EMAIL", headers=JSON).json()
    assert [v["type"] for v in by_type["values"]] == ["EMAIL"]
    by_index = client.get(f"/{LOC}?index=1&index=3", headers=JSON).json()
    assert [v["index"] for v in by_index["values"]] == [1, 3]
    # filtered to no URL and no 10320/LOC: nowhere to go, so the page of what is left
    page = client.get(f"/{LOC}?type=EMAIL", headers=BROWSER)
    assert page.status_code == 200 and "parts@example.org" in page.text
    assert "primary.example.org" not in page.text
    # only the URL value: redirected to it
    url_only = client.get(f"/{LOC}?type=URL", headers=BROWSER)
    assert url_only.headers["location"] == "https://first-url.example.org/"


def test_head_answers_the_headers_without_a_body(client):
    head = client.head(f"/{NO_URL}", headers=BROWSER)
    get = client.get(f"/{NO_URL}", headers=BROWSER)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(get.content))
    assert client.head(f"/{LOC}", headers=BROWSER).status_code == 302


@pytest.mark.parametrize(
    "path",
    [f"/hdl:{LOC}", f"/HDL:{LOC}", f"/doi:{LOC}", f"/{LOC}"],
)
def test_hdl_and_doi_forms_name_the_same_handle(client, path):
    answer = client.get(path, headers=BROWSER)
    assert answer.headers["location"] == "https://primary.example.org/a"


def test_an_escaped_handle_name_resolves(client):
    answer = client.get("/" + quote(SPACE, safe="/"), headers=BROWSER)
    assert answer.headers["location"] == "https://example.org/space"


def test_not_found_is_an_html_404_for_people(client):
    answer = client.get(f"/{PREFIX}/nothing-here?lang=zh", headers=BROWSER)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "错误 100" in answer.text


@pytest.mark.parametrize("query", ["locatt=nocolon", "index=x", "index=99999999999"])
def test_bad_parameters_are_400_with_a_message(client, query):
    page = client.get(f"/{LOC}?{query}", headers=BROWSER)
    assert page.status_code == 400 and "<h1>" in page.text
    answer = client.get(f"/{LOC}?{query}", headers=JSON)
    assert answer.status_code == 400
    assert answer.json()["responseCode"] == 4 and answer.json()["message"]


def test_a_handle_ending_in_history_is_not_shadowed(client):
    answer = client.get(f"/api/handles/{HISTORY}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["handle"] == HISTORY
    assert body["values"][0]["data"]["value"] == "https://example.org/pump-history-page"
    # the record history moved out of the handle namespace
    history = client.get(f"/api/mgmt/history/{HISTORY}")
    assert history.status_code == 200, history.text
    assert history.json()["handle"] == HISTORY and history.json()["versions"]


@pytest.mark.parametrize("path", ["/api/nope", "/api/handlez/x", "/api/hierarchy-typo"])
def test_unknown_api_paths_are_404_json(client, path):
    answer = client.get(path)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/json"
    assert "no such API endpoint" in answer.json()["message"]


def _raw_get(node, target: str, headers: dict[str, str]) -> bytes:
    """One GET on its own connection, the whole response as bytes (cache hits included)."""
    lines = [f"GET {target} HTTP/1.1", f"Host: {node.host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    with socket.create_connection((node.host, node.http_port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
        while len(body) < length:
            body += sock.recv(65536)
    return head.split(b"\r\n", 1)[0] + b"\n" + body


def _hits(client) -> float:
    text = client.get("/metrics").text
    return float(re.search(r'^idnode_response_cache_hits_total\{face="http"\} (\S+)$',
                           text, re.M).group(1))  # fmt: skip


def test_cached_answers_keep_their_variant(node, client):
    """A browser's redirect, a JSON client's JSON and a Chinese page share a target but never
    a cached answer; repeated, each gets its own from the cache."""
    target = f"/{LOC}?locatt=country:cn"
    variants = [BROWSER, JSON, {**BROWSER, "accept-language": "zh"}]
    before = _hits(client)
    rounds = [[_raw_get(node, target, h) for h in variants] for _ in range(3)]
    assert rounds[0] == rounds[1] == rounds[2]
    redirect, json_answer, _ = rounds[0]
    assert redirect.startswith(b"HTTP/1.1 302")
    assert json_answer.startswith(b"HTTP/1.1 200") and b'"responseCode":1' in json_answer
    assert _hits(client) - before >= 6  # the second and third rounds were hits


def test_auth_is_never_answered_from_the_cache(node, client):
    target = f"/{NO_URL}?auth"
    before = _hits(client)
    answers = [client.get(target, headers=BROWSER) for _ in range(3)]
    assert all(a.status_code == 200 and "pump seven" in a.text for a in answers)
    assert answers[0].headers["cache-control"] == "no-store"
    assert _hits(client) == before
