"""What form of the proxy's answer a client wants, and the response-cache key that follows.

The proxy (``GET /{handle}``) answers one target three ways: REST JSON to a client whose
``Accept`` prefers ``application/json`` to ``text/html``, otherwise a redirect or an HTML
page in the client's language (``proxy_page.language``). The response cache
(``http_fast``) keys answers by the request target; for the proxy that is not enough, so
``cache_key`` adds the variant (JSON, or HTML and a language) derived from the request's
headers -- the same function when an answer is kept and when a request is looked up, so a
browser never gets a cached JSON answer nor a JSON client a cached redirect.
"""

from __future__ import annotations

from collections.abc import Sequence

from idnode.transport.proxy_page import language

API_PREFIX = b"/api/"  # the REST API's answers depend on the target alone


def _accept_q(accept: str, wanted: str) -> float:
    """The q value ``accept`` gives ``wanted`` (exact type beats ``type/*`` beats ``*/*``)."""
    major = wanted.split("/", 1)[0]
    best_rank, best_q = -1, 0.0
    for part in accept.split(","):
        name, *params = (p.strip() for p in part.split(";"))
        name = name.lower()
        rank = 2 if name == wanted else 1 if name == f"{major}/*" else 0 if name == "*/*" else -1
        if rank < 0 or rank < best_rank:
            continue
        q = 1.0
        for param in params:
            key, _, raw = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(raw)
                except ValueError:
                    q = 0.0
        best_rank, best_q = rank, q
    return best_q


def wants_json(accept: str | None) -> bool:
    """True when ``Accept`` names JSON and ranks it above HTML (``*/*`` alone is a browser
    or curl: they get the redirect or the page, as from HANDLE.NET's proxy)."""
    if not accept or "json" not in accept.lower():
        return False
    return _accept_q(accept, "application/json") > _accept_q(accept, "text/html")


def variant(accept: str | None, accept_language: str | None) -> bytes:
    """``json``, or ``html-<lang>``: what distinguishes two proxy answers to one target."""
    if wants_json(accept):
        return b"json"
    return b"html-" + language(None, accept_language).encode("ascii")


def cache_key(target: bytes, headers: Sequence[tuple[bytes, bytes]]) -> bytes:
    """The response-cache key of a request: its target, plus the variant off the REST API."""
    if target.startswith(API_PREFIX):
        return target
    accept = accept_language = None
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"accept":
            accept = value.decode("latin-1")
        elif lowered == b"accept-language":
            accept_language = value.decode("latin-1")
    return target + b"\x00" + variant(accept, accept_language)


__all__ = ["cache_key", "variant", "wants_json"]
