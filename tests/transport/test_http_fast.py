"""What ``CachedRestAnswers`` keeps and when it lets a hit be served (no sockets here;
tests/e2e/test_http_cache.py drives it through a real server)."""

from __future__ import annotations

from idnode.runtime import ManualClock
from idnode.transport.http_fast import CachedRestAnswers, request_target
from idnode.transport.limits import Limits, RateLimiter
from idnode.transport.response_cache import ResponseCache

TARGET = b"/api/handles/20.500.1/x?type=URL"
DATE = [(b"date", b"Wed, 25 Nov 2026 10:00:00 GMT"), (b"server", b"uvicorn")]
BODY = b'{"responseCode":1,"handle":"20.500.1/x","values":[]}'
JSON = [(b"content-length", str(len(BODY)).encode()), (b"content-type", b"application/json")]


class Resolver:
    def __init__(self) -> None:
        self.refused: set[str] = set()
        self.seen: list[str] = []

    def admits(self, handle: str, client: str = "") -> bool:
        self.seen.append(handle)
        return handle not in self.refused

    def stored_answer_now(self, name: str, client: str = "", admit=None):
        return None  # a store without public answers: every miss takes the full path


def scope(target: bytes = TARGET, headers=(), scheme: str = "http", method: str = "GET"):
    path, _, query = target.partition(b"?")
    return {
        "type": "http", "method": method, "scheme": scheme, "path": path.decode(),
        "raw_path": path, "query_string": query, "headers": list(headers),
    }  # fmt: skip


def answers(rate: int = 1000, burst: int = 1000) -> tuple[CachedRestAnswers, Resolver]:
    clock = ManualClock().monotonic
    limits = Limits(resolve=RateLimiter(rate, burst, clock), auth=RateLimiter(1, 1, clock))
    resolver = Resolver()
    return CachedRestAnswers(ResponseCache(100), limits, resolver), resolver


def fill(cached: CachedRestAnswers, **kw) -> None:
    for _ in range(2):  # admitted the second time it is computed
        cached.remember(scope(**kw), 200, JSON, BODY, "20.500.1/x", cached.generation())


def test_request_target_is_path_and_query_as_sent():
    assert request_target(scope()) == TARGET
    assert request_target(scope(b"/api/handles/20.500.1%2Fx")) == b"/api/handles/20.500.1%2Fx"


def test_a_remembered_answer_is_served_with_the_current_date():
    cached, resolver = answers()
    assert cached.answer(TARGET, [], "10.0.0.1", DATE) is None
    fill(cached)
    got = cached.answer(TARGET, [(b"host", b"x")], "10.0.0.1", DATE)
    assert got == (
        b"HTTP/1.1 200 OK\r\ndate: Wed, 25 Nov 2026 10:00:00 GMT\r\nserver: uvicorn\r\n"
        b"content-length: " + str(len(BODY)).encode() + b"\r\ncontent-type: application/json"
        b"\r\n\r\n" + BODY
    )
    later = [(b"date", b"Wed, 25 Nov 2026 10:00:01 GMT"), (b"server", b"uvicorn")]
    assert b"10:00:01" in cached.answer(TARGET, [], "10.0.0.1", later)
    assert resolver.seen == ["20.500.1/x", "20.500.1/x"]  # every hit is counted


def test_personal_or_unusual_requests_are_not_remembered():
    cached, _ = answers()
    fill(cached, headers=[(b"authorization", b"Basic eDp5")])
    fill(cached, headers=[(b"cookie", b"JSESSIONID=abc")])
    fill(cached, scheme="https")
    fill(cached, method="HEAD")
    for status in (303, 401, 500):
        for _ in range(2):
            cached.remember(scope(), status, JSON, BODY, "20.500.1/x", cached.generation())
    assert len(cached.cache) == 0


def test_not_found_is_kept_with_its_status_line():
    cached, resolver = answers()
    body = b'{"responseCode":100,"handle":"20.500.1/x","message":"handle not found"}'
    for _ in range(2):
        cached.remember(scope(), 404, JSON, body, "20.500.1/x", cached.generation())
    got = cached.answer(TARGET, [], "h", DATE)
    assert got.startswith(b"HTTP/1.1 404 Not Found\r\ndate: ") and got.endswith(body)
    assert resolver.seen == ["20.500.1/x"]


def test_personal_requests_are_not_served_from_the_cache():
    cached, _ = answers()
    fill(cached)
    assert cached.answer(TARGET, [(b"authorization", b"Basic eDp5")], "h", DATE) is None
    assert cached.answer(TARGET, [(b"cookie", b"JSESSIONID=abc")], "h", DATE) is None


def test_an_answer_computed_across_a_write_is_dropped():
    cached, _ = answers()
    generation = cached.generation()
    cached.cache.invalidate(7)  # a write commits while the answer is being computed
    for _ in range(2):
        cached.remember(scope(), 200, JSON, BODY, "20.500.1/x", generation)
    assert cached.answer(TARGET, [], "h", DATE) is None


def test_a_client_over_its_rate_goes_to_the_full_path():
    cached, _ = answers(rate=1, burst=2)
    fill(cached)
    assert cached.answer(TARGET, [], "10.0.0.9", DATE) is not None
    assert cached.answer(TARGET, [], "10.0.0.9", DATE) is not None
    assert cached.answer(TARGET, [], "10.0.0.9", DATE) is None  # the full path answers 429
    assert cached.answer(TARGET, [], "10.0.0.10", DATE) is not None


def test_a_gate_refusal_goes_to_the_full_path():
    cached, resolver = answers()
    fill(cached)
    resolver.refused.add("20.500.1/x")  # revoked after its answer was cached
    assert cached.answer(TARGET, [], "h", DATE) is None


def test_misses_are_counted_for_resolutions_only():
    cached, _ = answers()
    cached.answer(TARGET, [], "h", DATE)
    cached.answer(b"/healthz", [], "h", DATE)
    assert cached.cache.stats.misses == 1
