"""Cached REST resolutions answered inside the HTTP protocol, before any ASGI work.

A hot ``GET /api/handles/{handle}`` from an anonymous client has the same answer for
everyone until the store changes, like a hot UDP resolution (``response_cache``). Through
uvicorn, Starlette, the limits middleware, authentication, the resolver and JSON rendering
it costs about 130 µs of Python; answered from here, a dict lookup and one write.

The full path fills the cache (``http.remembered`` calls ``remember``); the HTTP protocol asks
``answer`` once a request's head has arrived and, when it gets bytes back, writes them and
skips the ASGI cycle. Everything the full path would do differently for this request sends
it there instead:

* credentials (``Authorization``), a session cookie or a TLS connection: the answer may be
  personal;
* a client over its rate limit: the full path answers 429;
* the resolver's gate refusing the handle (a lifecycle tombstone): the full path answers it;
* HTTP/1.0, ``Connection: close``, ``Expect: 100-continue`` and any method but GET.

The key is the request target exactly as sent (path and query), so two requests share an
answer only when every parameter (``type``, ``index``, ``publicOnly``, ``pretty``,
``callback``) is the same. Off the REST API (the proxy) the key adds the variant the
request's ``Accept`` and ``Accept-Language`` ask for (``proxy_negotiation.cache_key``).
Found (200), not found (404) and the proxy's redirects (``GET /{handle}``, 302) are kept,
with the handle they answer for: every hit passes the resolver's gate, which counts it and
refuses a revoked identifier.

The store path, on a miss: ``GET /api/handles/{handle}`` with no query and nothing to
percent-decode, from an anonymous client, is answered from the record's stored public answer
(``Resolver.stored_answer_now``, ``wire.public_answer.rest_body``) when the store reads it
inline (SQLite): one keyed read and a JSON envelope, still inside the HTTP protocol. It is
the full path's answer (an anonymous caller gets the public values), and the cache keeps it.
When the read waits (PostgreSQL), the protocol starts a small ASGI app instead of the
node's (``answer_later``, ``StoredLater``): the same read awaited in uvicorn's cycle, the
same bytes, and the node's app only when there is no stored answer to give.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from idnode.service.resolve import Resolver
from idnode.transport.limits import Limits
from idnode.transport.proxy_negotiation import cache_key
from idnode.transport.response_cache import ResponseCache
from idnode.transport.turn_writes import Cork, turn_writer
from idnode.wire.public_answer import rest_body

# found, redirected (the proxy's GET /{handle}) and not found (negative caching): answers
# that are the same for every anonymous client until a write or a lifecycle change
_KEPT_STATUS = {
    code: b"HTTP/1.1 %d %s\r\n" % (code, HTTPStatus(code).phrase.encode())
    for code in (200, 302, 404)
}
CORK_LIMIT = 16  # cached answers held for one write at most
REST_RESOLUTION = b"/api/handles/"  # misses are counted for these only (not every GET)
# a browser app's request (``origin``) takes the full path, whose CORS middleware answers it
_PERSONAL_HEADERS = frozenset((b"authorization", b"cookie", b"origin"))
_JSON_HEAD = b"content-type: application/json\r\n\r\n"  # after content-length (Starlette's)


def request_target(scope: dict) -> bytes:
    """The request target as the client sent it (origin form), from an ASGI scope."""
    path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
    query: bytes = scope.get("query_string", b"")
    return path + b"?" + query if query else path


def anonymous(scope: dict) -> bool:
    """True when the request carries nothing that could make its answer personal."""
    if scope.get("scheme") != "http":
        return False
    return not any(name in _PERSONAL_HEADERS for name, _ in scope["headers"])


class CachedRestAnswers:
    """The REST side of the response cache: what to keep, and when a hit may be served."""

    def __init__(
        self,
        cache: ResponseCache | None,
        limits: Limits,
        resolver: Resolver,
    ) -> None:
        self.cache = cache  # None: no response cache ([server] cache_entries = 0), store path only
        self.limits = limits
        self.resolver = resolver  # its gate (statistics, lifecycle) sees every hit
        self._dated_for: object = None  # the default-headers list _dated was built from
        self._dated = b""

    # -- filled by the full path -------------------------------------------------------
    def generation(self) -> int:
        """Read before resolving; ``remember`` drops the answer if a write came in between."""
        return 0 if self.cache is None else self.cache.generation

    def remember(
        self, scope: dict, status: int, headers: list[tuple[bytes, bytes]], body: bytes,
        handle: str, generation: int,
    ) -> None:  # fmt: skip
        """Keep the answer to an anonymous GET for the next identical request."""
        if self.cache is None:
            return
        if status not in _KEPT_STATUS or scope.get("method") != "GET" or not anonymous(scope):
            return
        head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        answer = _KEPT_STATUS[status] + head + b"\r\n" + body
        key = cache_key(request_target(scope), scope["headers"])  # the proxy's variants
        self.cache.put(key, answer, generation, handle)

    # -- asked by the protocol ---------------------------------------------------------
    def answer(
        self,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        client_host: str,
        default_headers: list[tuple[bytes, bytes]] | None,
    ) -> bytes | None:
        """The whole HTTP response to a GET of ``target``, or None for the full path.

        ``headers`` are the request's (names lower-cased); ``default_headers`` are the
        server's ``date`` and ``server`` headers, which every answer starts with; None for
        the answer as stored, which ``with_server_headers`` completes later.
        """
        cache = self.cache
        key = cache_key(target, headers)
        if cache is None or not cache.contains(key):
            if target.startswith(REST_RESOLUTION):
                if cache is not None:
                    cache.stats.misses += 1
                return self._stored(target, key, headers, client_host, default_headers)
            return None
        for name, _ in headers:
            if name in _PERSONAL_HEADERS:
                return None
        if not self.limits.allow_request(client_host):
            return None  # the full path answers 429 with Retry-After
        hit = cache.peek(key)
        if hit is None:
            return None
        answer, handle = hit
        if not self.resolver.admits(handle, client_host):
            return None
        if default_headers is None:
            return answer  # as stored: status line, our headers, body
        return self.with_server_headers(answer, default_headers)

    def _stored(
        self,
        target: bytes,
        key: bytes,
        headers: list[tuple[bytes, bytes]],
        client_host: str,
        default_headers: list[tuple[bytes, bytes]] | None,
    ) -> bytes | None:
        """The store path of a REST resolution (the module docstring), or None."""
        handle = _plain_resolution(target, headers)
        if handle is None:
            return None
        generation = 0 if self.cache is None else self.cache.generation
        limits = self.limits  # spent only when the answer comes from here (the full path: 429)
        stored = self.resolver.stored_answer_now(
            handle, client_host, lambda _: limits.allow_request(client_host)
        )
        if stored is None:
            return None
        answer = self._kept_answer(key, handle, stored.json, generation)
        if default_headers is None:
            return answer
        return self.with_server_headers(answer, default_headers)

    def _kept_answer(self, key: bytes, handle: str, values_json: bytes, generation: int) -> bytes:
        body = rest_body(handle, values_json)
        answer = _KEPT_STATUS[200] + b"content-length: %d\r\n" % len(body) + _JSON_HEAD + body
        if self.cache is not None:
            self.cache.put(key, answer, generation, handle)
        return answer

    def answer_later(
        self, target: bytes, headers: list[tuple[bytes, bytes]], client_host: str, app: Any
    ) -> Any:
        """For a store whose read waits (PostgreSQL): an ASGI app that answers a plain REST
        resolution from its stored answer (``Resolver.stored_answer``) and hands anything
        else to ``app``, the full path; None when the request is not such a resolution or
        the store reads inline (``answer`` tried it). It runs in uvicorn's cycle, without
        Starlette's routing, middleware and JSON rendering."""
        if self.resolver.store.inline_answers or not target.startswith(REST_RESOLUTION):
            return None
        handle = _plain_resolution(target, headers)
        if handle is None:
            return None
        return StoredLater(self, cache_key(target, headers), handle, client_host, app)

    async def stored_later(self, key: bytes, handle: str, client_host: str) -> bytes | None:
        """``_stored`` with a read that waits: the answer without the server's headers."""
        generation = 0 if self.cache is None else self.cache.generation
        limits = self.limits
        stored = await self.resolver.stored_answer(
            handle, client_host, lambda _: limits.allow_request(client_host)
        )
        if stored is None:
            return None
        return self._kept_answer(key, handle, stored.json, generation)

    def with_server_headers(
        self, answer: bytes, default_headers: list[tuple[bytes, bytes]]
    ) -> bytes:
        """A stored answer with the server's headers after its status line."""
        split = answer.index(b"\r\n") + 2
        return answer[:split] + self._default_head(default_headers) + answer[split:]

    def _default_head(self, default_headers: list[tuple[bytes, bytes]]) -> bytes:
        # uvicorn replaces the list once a second (a new Date): encode it once per list
        if default_headers is not self._dated_for:
            self._dated = b"".join(n + b": " + v + b"\r\n" for n, v in default_headers)
            self._dated_for = default_headers
        return self._dated


def _plain_resolution(target: bytes, headers: list[tuple[bytes, bytes]]) -> str | None:
    """The handle of ``GET /api/handles/{handle}`` that the store path may answer: no
    parameters, nothing to percent-decode, nothing that makes the answer personal."""
    name = target[len(REST_RESOLUTION) :]
    if not name or not name.isascii():
        return None
    if b"?" in name or b"%" in name or b"#" in name:
        return None  # parameters, or a name the full path decodes first
    for header, _ in headers:
        if header in _PERSONAL_HEADERS:
            return None
    return name.decode("ascii")


class StoredLater:
    """The ASGI app ``CachedRestAnswers.answer_later`` gives: the stored answer, or the
    full path's app when there is none (no record, restricted values, a tombstone, a client
    over its limit)."""

    def __init__(
        self, answers: CachedRestAnswers, key: bytes, handle: str, client_host: str, app: Any
    ) -> None:
        self.answers, self.key, self.handle = answers, key, handle
        self.client_host, self.app = client_host, app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        answer = await self.answers.stored_later(self.key, self.handle, self.client_host)
        if answer is None:
            await self.app(scope, receive, send)
        elif not self._written_by_protocol(send, answer):
            await Replay(answer)(scope, receive, send)

    def _written_by_protocol(self, send: Any, answer: bytes) -> bool:
        """Hand the answer's bytes to the protocol (``answer_out``: corked with the turn's
        other answers) and complete uvicorn's cycle as its ``send`` would, instead of
        parsing the answer into ASGI messages for uvicorn to encode again (a third of this
        path's time). False, and ``Replay`` sends it: not uvicorn's cycle, output paused,
        or the connection closing after it."""
        cycle = getattr(send, "__self__", None)
        protocol = getattr(getattr(cycle, "on_response", None), "__self__", None)
        answer_out = getattr(protocol, "answer_out", None)
        if (
            answer_out is None
            or cycle.response_started
            or cycle.disconnected
            or not cycle.keep_alive
            or cycle.flow.write_paused
        ):
            return False
        cycle.response_started = cycle.response_complete = True
        answer_out(self.answers.with_server_headers(answer, cycle.default_headers))
        cycle.message_event.set()
        cycle.on_response()
        return True


class Replay:
    """A cached answer queued behind answers still being computed on its connection.

    The protocol writes it as soon as the answers before it are out (``on_response_complete``),
    without a task. It is also an ASGI app that sends the same answer, should uvicorn ever
    start it the usual way."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer  # status line, our headers, body: no date/server headers

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        head, _, body = self.answer.partition(b"\r\n\r\n")
        status_line, *lines = head.split(b"\r\n")
        headers = [tuple(line.split(b": ", 1)) for line in lines]
        status = int(status_line.split(b" ", 2)[1])
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def cached_answers_protocol(answers: CachedRestAnswers, base: type | None = None) -> type:
    """uvicorn's (httptools) HTTP protocol, answering cached GETs from ``answers``.

    Uses uvicorn's documented ``http=`` protocol-class option. A request answered here
    never gets an ASGI cycle: its response is written when the read that brought it has been
    parsed (with the answers to the other requests in it) and the connection carries on as
    after any response (keep-alive timer, next pipelined request).
    """
    if base is None:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        base = HttpToolsProtocol

    class CachedAnswersProtocol(base):  # type: ignore[misc, valid-type]
        _answered_here = False
        # the answers given here, written at the end of the loop's turn with every other
        # connection's (``turn_writes``): a client that pipelines N cached GETs costs one
        # system call, not N, and a load generator is woken once a turn, not once an answer
        _cork: Cork | None = None

        def connection_lost(self, exc: Exception | None) -> None:
            if self._cork is not None:
                self._cork.drop()
            super().connection_lost(exc)

        def output_full(self) -> bool:
            """Whether the client has not taken enough of its answers to be sent more;
            ``http_guard`` decides (without it: never)."""
            return False

        def answer_out(self, response: bytes) -> None:
            """Write an answer given here (or by ``StoredLater``) at the end of the turn."""
            cork = self._cork
            if cork is None:
                cork = self._cork = Cork(self.transport, turn_writer(self.loop))
            cork.write(response)
            if len(cork) >= CORK_LIMIT:
                cork.flush()  # output is bounded: see output_full

        def _flush_corked(self) -> None:
            """Before anything else is written on this connection, or a request is handed
            to uvicorn's full path: the answers given here go first."""
            if self._cork is not None:
                self._cork.flush()

        def send_400_response(self, msg: str) -> None:
            self._flush_corked()  # answers to earlier requests go first
            super().send_400_response(msg)

        def handle_websocket_upgrade(self) -> None:
            self._flush_corked()
            super().handle_websocket_upgrade()

        def on_headers_complete(self) -> None:
            if not self._cacheable_request() or self.output_full():
                # (a client not taking its answers gets the full path, which waits for it)
                self._flush_corked()
                super().on_headers_complete()
                return
            cycle = self.cycle
            idle = (cycle is None or cycle.response_complete) and not self.pipeline
            client = self.client
            response = answers.answer(
                self.url,
                self.headers,
                client[0] if client else "?",
                self.server_state.default_headers if idle else None,
            )
            if response is None:
                later = answers.answer_later(
                    self.url, self.headers, client[0] if client else "?", self.app
                )
                self._flush_corked()
                if later is None:
                    super().on_headers_complete()
                else:
                    self._queue_behind(later)  # started now, or after the answers before it
            elif idle:
                self._answered_here = True
                self.answer_out(response)
                self.after_cached_answer()
            else:
                # answers to earlier requests on this connection are still being computed:
                # queue this one behind them, as uvicorn queues pipelined requests, with an
                # app that only replays the cached answer (no routing, no resolution)
                self._queue_behind(Replay(response))

        def _queue_behind(self, app: object) -> None:
            own = self.app
            self.app = app
            try:
                super().on_headers_complete()  # queues (cycle, self.app) in self.pipeline
            finally:
                self.app = own

        def on_response_complete(self) -> None:
            # write the cached answers queued next, in order, then let uvicorn start the
            # next computed one (or arm its keep-alive timer)
            pipeline = self.pipeline
            while pipeline and isinstance(pipeline[-1][1], Replay):
                if self.transport.is_closing() or self.output_full():
                    break  # (uvicorn then runs the Replay as an app, which waits for output)
                cycle, replay = pipeline.pop()
                cycle.response_complete = True
                self.server_state.total_requests += 1
                default_headers = self.server_state.default_headers
                self.answer_out(answers.with_server_headers(replay.answer, default_headers))
            super().on_response_complete()

        def after_cached_answer(self) -> None:
            """What uvicorn does after any response (count it, arm the keep-alive timer);
            ``slow_clients`` overrides it with a cheaper watchdog."""
            self.on_response_complete()

        def _cacheable_request(self) -> bool:
            parser = self.parser
            return (
                parser.get_method() == b"GET"
                and self.scheme == "http"
                and not self.expect_100_continue
                and parser.get_http_version() == "1.1"
                and parser.should_keep_alive()
                and not parser.should_upgrade()
            )

        def on_body(self, body: bytes) -> None:
            if not self._answered_here:
                super().on_body(body)

        def on_message_complete(self) -> None:
            if self._answered_here:
                self._answered_here = False
                return
            super().on_message_complete()

    return CachedAnswersProtocol
