"""Abuse resistance: token buckets, a UDP flood, auth throttling, anti-amplification,
slowloris and oversized bodies -- against a real ``idnode serve`` with tight limits.

Every client here is on loopback; binding the client socket to 127.0.0.2, .3, ... gives each
test its own client address (Linux routes all of 127/8 to lo), so one test's exhausted
bucket does not leak into the next.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from idnode.app import close_node, open_node
from idnode.bootstrap import init_node
from idnode.client.resolve import request_tcp, request_udp, resolution_request
from idnode.codes import OpCode, ResponseCode
from idnode.config import LimitsSection, load_config
from idnode.model import URL, HandleValue
from idnode.runtime import ManualClock, Runtime, SystemRandom, system
from idnode.store import open_store
from idnode.transport.http import build_app
from idnode.transport.limits import Limits, RateLimiter, TokenBucket
from idnode.transport.udp import serve_udp
from idnode.transport.wire_handler import WireHandler
from idnode.wire import bodies
from idnode.wire.envelope import ENVELOPE_SIZE, Envelope, decode_envelope
from idnode.wire.framing import is_truncated_answer
from idnode.wire.header import MAX_RECURSION_COUNT, Header, decode_header
from idnode.wire.message import Message, decode_message_bytes, encode_message
from tests.conftest import IDNODE, RunningNode, free_port, stop_node, wait_http
from tests.transport_http.support import basic

PREFIX = "20.500.91"
BIG = f"{PREFIX}/big"
SMALL = f"{PREFIX}/small"
TIGHT = {
    "IDNODE_LIMITS_EXEMPT": "",
    "IDNODE_LIMITS_RESOLVE_RATE": "300",
    "IDNODE_LIMITS_RESOLVE_BURST": "300",
    "IDNODE_LIMITS_AUTH_RATE_PER_MINUTE": "6",
    "IDNODE_LIMITS_AUTH_BURST": "3",
    "IDNODE_LIMITS_TCP_READ_DEADLINE": "1",
    "IDNODE_LIMITS_TCP_MAX_CONNECTIONS_PER_IP": "4",
    "IDNODE_LIMITS_HTTP_MAX_BODY": "65536",
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- token buckets ---------------------------------------------------------------------------


def test_token_bucket_spends_refills_and_caps() -> None:
    bucket = TokenBucket(rate=2.0, burst=3.0, tokens=3.0, stamp=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.retry_after() == pytest.approx(0.5)
    assert bucket.take(0.5) and not bucket.take(0.5)
    assert bucket.take(100.0) and bucket.tokens == pytest.approx(2.0)  # capped at the burst


def test_rate_limiter_per_client_with_fake_clock() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1.0, 2, clock)
    assert limiter.allow("a") and limiter.allow("a") and not limiter.allow("a")
    assert limiter.allow("b")  # another client has its own bucket
    clock.now += 1.0
    assert limiter.allow("a") and not limiter.allow("a")
    assert not limiter.has_tokens("a") and limiter.has_tokens("never-seen")


def test_rate_limiter_memory_is_bounded_lru() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1.0, 1, clock, max_clients=3)
    assert limiter.allow("keep") and not limiter.allow("keep")
    for i in range(1000):
        limiter.allow(f"10.0.{i // 256}.{i % 256}")
        limiter.has_tokens("keep")  # reading does not refresh; only charging does
    assert len(limiter) == 3
    assert limiter.allow("keep")  # evicted long ago: forgiven, starts full


def test_disabled_limiter_and_exemptions() -> None:
    assert all(RateLimiter(0, 1, FakeClock()).allow("x") for _ in range(10_000))
    section = replace(LimitsSection(), exempt=["192.0.2.7", "10.9.0.0/16"], resolve_burst=1)
    limits = Limits.from_settings(section, FakeClock())
    assert limits.is_exempt("192.0.2.7") and limits.is_exempt("10.9.3.4")
    assert not limits.is_exempt("10.8.0.1") and not limits.is_exempt("not-an-ip")
    assert all(limits.allow_request("10.9.3.4") for _ in range(50))
    assert limits.allow_request("10.8.0.1") and not limits.allow_request("10.8.0.1")
    assert limits.udp_answer_budget("10.8.0.1", 60, verified=False) == 180
    assert limits.udp_answer_budget("10.8.0.1", 60, verified=True) is None
    assert limits.udp_answer_budget("10.9.0.1", 60, verified=False) is None


def test_defaults_are_generous_and_auth_much_tighter() -> None:
    d = LimitsSection()
    assert "127.0.0.1" in d.exempt and d.udp_amplification == 3
    assert d.resolve_rate * 60 >= 1000 * d.auth_rate_per_minute


# -- in-process: the wire handler and the ASGI app -------------------------------------------


@pytest.fixture(scope="module")
def node_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("limits") / "node"
    config = asyncio.run(
        init_node(directory, name="limits", prefixes=[PREFIX], demo=False, runtime=system())
    )

    async def load() -> None:
        async with open_store(config.store_url, clock=ManualClock()) as store:
            big = [HandleValue(i, URL, b"https://example.com/" + b"x" * 400) for i in range(1, 21)]
            await store.create_handle(BIG, big)
            await store.create_handle(SMALL, [HandleValue(1, URL, b"https://e.com/")])

    asyncio.run(load())
    return directory


def _tight_limits(clock: FakeClock) -> Limits:
    section = replace(LimitsSection(), exempt=[], resolve_burst=5, resolve_rate=1, auth_burst=2)
    return Limits.from_settings(section, clock)


def _frame(message: Message) -> tuple[Envelope, bytes]:
    raw = encode_message(message)
    return decode_envelope(raw[:ENVELOPE_SIZE]), raw[ENVELOPE_SIZE:]


async def _ask(handler: WireHandler, message: Message, peer: str) -> Message:
    answer = await handler.answer(*_frame(message), peer=peer)
    assert answer is not None
    return decode_message_bytes(answer)


async def test_wire_auth_throttled_long_before_resolution(node_dir) -> None:
    node = await open_node(load_config(node_dir, env={}), runtime=system())
    try:
        clock = FakeClock()
        handler = WireHandler(node, limits=_tight_limits(clock))
        peer = "198.51.100.9:4000"
        setup = Message(
            Header(OpCode.SESSION_SETUP),
            bodies.SessionSetupRequest(0, 60, f"0.NA/{PREFIX}", 300, b""),
            Envelope(request_id=1),
        )
        codes = [(await _ask(handler, setup, peer)).header.response_code for _ in range(3)]
        assert codes[:2] == [ResponseCode.AUTHENTICATION_NEEDED] * 2
        assert codes[2] == ResponseCode.SERVER_BUSY  # the third session setup: throttled
        resolved = await _ask(handler, resolution_request(SMALL), peer)
        assert resolved.header.response_code == ResponseCode.SUCCESS  # resolution still fine
        # a stray challenge answer is a failed proof; the bucket stays empty
        answer = Message(
            Header(OpCode.CHALLENGE_RESPONSE),
            bodies.ChallengeAnswerRequest("HS_PUBKEY", f"0.NA/{PREFIX}", 300, bytes(64)),
            Envelope(request_id=2, session_id=12345),
        )
        busy = await _ask(handler, answer, peer)
        assert busy.header.response_code == ResponseCode.SERVER_BUSY
        other = await _ask(handler, setup, "198.51.100.10:4000")  # another client is not
        assert other.header.response_code == ResponseCode.AUTHENTICATION_NEEDED
        # resolution bucket: burst 5, three spent above, then busy until the clock moves
        codes = [
            (await _ask(handler, resolution_request(SMALL), peer)).header.response_code
            for _ in range(4)
        ]
        assert ResponseCode.SERVER_BUSY in codes
        clock.now += 2.0
        again = await _ask(handler, resolution_request(SMALL), peer)
        assert again.header.response_code == ResponseCode.SUCCESS
    finally:
        await node.store.close()


async def test_recursion_count_bound(node_dir) -> None:
    node = await open_node(load_config(node_dir, env={}), runtime=system())
    try:
        handler = WireHandler(node)
        deep = resolution_request(SMALL)
        deep.header = replace(deep.header, recursion_count=MAX_RECURSION_COUNT + 1)
        answer = await _ask(handler, deep, "127.0.0.1:1")
        assert answer.header.response_code == ResponseCode.RECURSION_COUNT_TOO_HIGH
        ok = resolution_request(SMALL)
        ok.header = replace(ok.header, recursion_count=MAX_RECURSION_COUNT)
        assert (await _ask(handler, ok, "127.0.0.1:1")).header.response_code == 1
    finally:
        await node.store.close()


async def test_http_rate_limit_is_429_json(node_dir) -> None:
    node = await open_node(load_config(node_dir, env={}), runtime=system())
    try:
        clock = FakeClock()
        app = build_app(node, limits=_tight_limits(clock))
        transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 999))
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            statuses = [(await client.get(f"/api/handles/{SMALL}")).status_code for _ in range(7)]
            assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429]
            refused = await client.get(f"/api/handles/{SMALL}")
            assert refused.json()["responseCode"] == 3 and "retry-after" in refused.headers
            clock.now += 1.0
            assert (await client.get(f"/api/handles/{SMALL}")).status_code == 200
    finally:
        await node.store.close()


# -- a real node with tight limits -----------------------------------------------------------


@pytest.fixture(scope="module")
def tight_node(node_dir, tmp_path_factory) -> Iterator[RunningNode]:
    port, http_port = free_port(), free_port()
    env = {
        **os.environ,
        **TIGHT,
        "IDNODE_LOG_FORMAT": "json",
        "IDNODE_SERVER_UDP_PORT": str(port),
        "IDNODE_SERVER_TCP_PORT": str(port),
        "IDNODE_SERVER_HTTP_PORT": str(http_port),
    }
    proc = subprocess.Popen(
        [*IDNODE, "serve", str(node_dir), "--workers", "1"],  # limits are per process
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    node = RunningNode(node_dir, "127.0.0.1", port, http_port, proc, PREFIX)
    wait_http(node.http_url, proc)
    yield node
    stop_node(node)


def _udp_from(source: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return sock


def _codes(sock: socket.socket, wait: float) -> list[int]:
    """Response codes of every datagram that arrives within ``wait`` seconds of quiet."""
    codes = []
    sock.settimeout(wait)
    try:
        while True:
            data = sock.recv(65536)
            codes.append(decode_header(data[ENVELOPE_SIZE:]).response_code)
    except TimeoutError:
        return codes


def _http(source: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=5)


async def test_udp_flood_is_shed_then_served(node_dir) -> None:
    """A flood from one address gets its burst, then busy answers; another client is served
    meanwhile; once the node's clock has moved, the flooder is served again.

    The node runs in process on a ``ManualClock``: its buckets refill only when the test
    moves the clock, so no figure here depends on how fast this machine sends or answers.
    """
    clock = ManualClock()
    config = load_config(node_dir, env={})
    config.limits = replace(config.limits, exempt=[], resolve_rate=300, resolve_burst=300)
    node = await open_node(config, runtime=Runtime(clock, SystemRandom()))
    handler = WireHandler(node)
    transport, _ = await serve_udp(handler, "127.0.0.1", 0)
    addr = transport.get_extra_info("sockname")
    flood, other = _udp_from("127.0.0.2"), _udp_from("127.0.0.3")
    request = encode_message(resolution_request(SMALL, request_id=7))
    try:
        codes: list[int] = []
        for _ in range(12):  # 600 requests, 50 in flight (a socket buffer holds ~250)
            for _ in range(50):
                flood.sendto(request, addr)
            codes += await _answers(flood, until=50)
        # the clock stood still: the burst of 300 served, every request after it refused
        assert codes == [ResponseCode.SUCCESS] * 300 + [ResponseCode.SERVER_BUSY] * 300
        other.sendto(encode_message(resolution_request(SMALL, request_id=8)), addr)
        assert await _answers(other, until=1) == [ResponseCode.SUCCESS]
        flood.sendto(request, addr)
        assert await _answers(flood, until=1) == [ResponseCode.SERVER_BUSY]  # still empty
        clock.advance(1.0)  # 300 tokens a second: the flooder's bucket is full again
        flood.sendto(request, addr)
        assert await _answers(flood, until=1) == [ResponseCode.SUCCESS]
    finally:
        flood.close()
        other.close()
        transport.close()
        await close_node(node)


async def _answers(sock: socket.socket, *, until: int) -> list[int]:
    """The response codes of the next ``until`` datagrams on ``sock`` (the event loop serves
    the in-process node meanwhile); a generous bound turns a lost answer into a failure."""
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    async with asyncio.timeout(60):
        return [
            decode_header((await loop.sock_recv(sock, 65536))[ENVELOPE_SIZE:]).response_code
            for _ in range(until)
        ]


def test_http_auth_failures_throttled_before_resolution(tight_node: RunningNode) -> None:
    wrong = basic(f"300:0.NA/{PREFIX}", "wrong secret")
    with _http("127.0.0.4") as client:
        url = f"{tight_node.http_url}/api/handles/{SMALL}"
        statuses = [client.get(url, headers=wrong).status_code for _ in range(5)]
        assert statuses[:3] == [401] * 3 and statuses[3:] == [429, 429]
        refused = client.get(url, headers=wrong)
        assert refused.json()["responseCode"] == 3
        assert client.get(url).status_code == 200  # plain resolution is still served
        assert client.post(f"{tight_node.http_url}/api/sessions").status_code == 429
    with _http("127.0.0.14") as client:  # session setups are attempts too
        posts = [client.post(f"{tight_node.http_url}/api/sessions").status_code for _ in range(4)]
        assert posts == [201, 201, 201, 429]


async def test_udp_answer_never_amplifies_and_client_falls_back(tight_node) -> None:
    host, port = tight_node.host, tight_node.port
    request = resolution_request(BIG)
    size = len(encode_message(request))
    sock = _udp_from("127.0.0.5")
    sock.sendto(encode_message(request), (host, port))
    sock.settimeout(2)
    data = sock.recv(65536)
    assert len(data) <= 3 * size
    env = decode_envelope(data[:ENVELOPE_SIZE])
    assert env.truncated and is_truncated_answer(env)
    assert decode_header(data[ENVELOPE_SIZE:]).response_code == ResponseCode.SUCCESS
    with pytest.raises(TimeoutError):
        sock.settimeout(0.3)
        sock.recv(65536)  # one datagram, nothing more
    sock.close()

    cut = await request_udp(host, port, resolution_request(BIG), tcp_fallback=False)
    assert is_truncated_answer(cut.envelope) and cut.body == bodies.RawBody(b"")
    full = await request_tcp(host, port, resolution_request(BIG))
    assert len(full.body.values) == 20
    fallback = await request_udp(host, port, resolution_request(BIG))
    assert fallback.body.values == full.body.values
    small = await request_udp(host, port, resolution_request(SMALL), tcp_fallback=False)
    assert not small.envelope.truncated and len(small.body.values) == 1


async def test_slowloris_closed_while_others_are_served(tight_node) -> None:
    """Bytes trickling in (one every 0.1 s) never finish a message: closed after the 1 s
    read deadline, although each byte resets the 60 s idle timer's notion of activity."""
    host, port = tight_node.host, tight_node.port
    slow = socket.create_connection((host, port), source_address=("127.0.0.6", 0))
    slow.settimeout(0.05)
    start = time.monotonic()
    closed_after = None
    partial = encode_message(resolution_request(SMALL))[:-1]
    try:
        for byte in partial:
            try:
                slow.sendall(bytes([byte]))
                if slow.recv(10) == b"":
                    raise ConnectionResetError
            except TimeoutError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - start
                break
            answer = await request_tcp(host, port, resolution_request(SMALL), timeout=2)
            assert answer.header.response_code == ResponseCode.SUCCESS  # others served
            await asyncio.sleep(0.1)
    finally:
        slow.close()
    # never before the 1 s deadline; the upper bound only catches a connection never closed
    assert closed_after is not None and 0.9 < closed_after < 30


def test_connections_per_ip_bounded(tight_node: RunningNode) -> None:
    addr = (tight_node.host, tight_node.port)
    held = [socket.create_connection(addr, source_address=("127.0.0.7", 0)) for _ in range(4)]
    try:
        extra = socket.create_connection(addr, source_address=("127.0.0.7", 0))
        extra.settimeout(2)
        try:
            assert extra.recv(10) == b""  # closed at once
        except ConnectionResetError:
            pass
        extra.close()
        fine = socket.create_connection(addr, source_address=("127.0.0.8", 0))
        fine.sendall(encode_message(resolution_request(SMALL)))
        fine.settimeout(2)
        assert len(fine.recv(65536)) > ENVELOPE_SIZE
        fine.close()
    finally:
        for s in held:
            s.close()


def test_oversized_put_is_413_json(tight_node: RunningNode) -> None:
    url = f"{tight_node.http_url}/api/handles/{PREFIX}/new"
    with _http("127.0.0.9") as client:
        big = client.put(
            url, content=b"[" + b" " * 100_000 + b"]", headers={"content-type": "application/json"}
        )
        assert big.status_code == 413 and big.json()["responseCode"] == 4

        def chunks():
            for _ in range(20):
                yield b" " * 8192

        chunked = client.put(url, content=chunks(), headers={"content-type": "application/json"})
        assert chunked.status_code == 413 and chunked.json()["responseCode"] == 4
        assert client.get(f"{tight_node.http_url}/api/handles/{SMALL}").status_code == 200
