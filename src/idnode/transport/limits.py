"""Abuse resistance shared by the UDP, TCP and HTTP faces: rate limits, size and depth bounds.

Why it lives in one module: a rule that protects the node (how fast one client may resolve,
how often it may try to authenticate, how much bigger than its question a UDP answer may be)
must hold the same way on every transport, and the settings come from one ``[limits]``
config section.

* ``TokenBucket`` / ``RateLimiter``: per-client buckets keyed by IP address, with the clock
  passed in (tests drive it by hand) and memory bounded by LRU eviction, so a flood of
  spoofed source addresses costs at most ``max_clients`` small entries.
* ``Limits``: the node's limiters -- resolution (generous), authentication attempts (much
  tighter: a brute-force of a secret key or a PBKDF2 CPU burn stops early) per address and
  failed proofs per identity, anonymous writes -- plus the exempt addresses and the UDP
  amplification factor.
* Budgets earned over UDP are kept apart. A UDP source address is whatever the sender wrote
  in the packet, so a budget UDP spends is the *claimed* address's, and an attacker could
  spend a victim's: UDP requests, session setups and failed proofs draw on buckets of their
  own (``resolve_udp``, ``auth_udp``, ``auth_identity_udp``), and nothing sent over UDP ever
  refuses a TCP, TLS or HTTP client, whose address the handshake verified.
* ``HttpLimits``: an ASGI middleware answering 413 for request bodies over the limit (checked
  on Content-Length first, then on the bytes actually received for chunked bodies) and 429 to
  a client over its rate, before any handler runs.
* Protocol bounds used by the wire handler and, later, the recursive resolver:
  ``MAX_RECURSION_COUNT`` and ``MAX_ALIAS_CHAIN``.

A limited client gets response code 3 (SERVER_BUSY) on the wire, HTTP 429 with a JSON error
``{"responseCode": 3, "message": ...}`` and ``Retry-After`` over HTTP. 429 rather than 503,
because the client (not the node) is the cause and 429 tells it to slow down; 503 stays
what uvicorn answers when the whole node is over ``http_max_concurrency``.
"""

from __future__ import annotations

import ipaddress
import math
import urllib.parse
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from idnode.auth.headers import parse_basic_authorization, parse_handle_authorization
from idnode.errors import IdnodeError

DEFAULT_MAX_CLIENTS = 100_000  # client addresses tracked per limiter (LRU beyond)

Clock = Callable[[], float]


@dataclass(slots=True)
class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` per second; a request costs one (or ``cost``)."""

    rate: float
    burst: float
    tokens: float
    stamp: float

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if there are that many, after refilling for elapsed time."""
        self.refill(now)
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.stamp)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.stamp = now

    def retry_after(self, cost: float = 1.0) -> float:
        """Seconds until ``cost`` tokens are back (after a refused ``take``)."""
        if self.rate <= 0:
            return math.inf
        return max(0.0, (cost - self.tokens) / self.rate)


class RateLimiter:
    """Token buckets per client key, at most ``max_clients`` of them (least recently used go).

    Evicting a bucket forgives that client (it starts again full): the bound is on memory,
    and an attacker who cycles through more addresses than ``max_clients`` can be limited by
    the network, not by us. ``rate <= 0`` disables the limiter (every request allowed).
    """

    def __init__(
        self,
        rate: float,
        burst: float,
        clock: Clock,
        *,
        max_clients: int = DEFAULT_MAX_CLIENTS,
    ) -> None:
        self.rate = float(rate)
        self.burst = float(max(burst, 1))
        self.clock = clock
        self.max_clients = max(1, max_clients)
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def _bucket(self, key: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, self.burst, now)
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket

    def allow(self, key: str, cost: float = 1.0) -> bool:
        """Charge ``key`` ``cost`` tokens; False when it has not got them (refused)."""
        if not self.enabled:
            return True
        return self._bucket(key, self.clock()).take(self.clock(), cost)

    def has_tokens(self, key: str, cost: float = 1.0) -> bool:
        """Whether ``key`` could spend ``cost`` now, without spending it."""
        if not self.enabled:
            return True
        bucket = self._buckets.get(key)
        if bucket is None:
            return True
        bucket.refill(self.clock())
        return bucket.tokens >= cost

    def retry_after(self, key: str) -> float:
        bucket = self._buckets.get(key)
        return 0.0 if bucket is None else bucket.retry_after()


def _off() -> RateLimiter:
    """A limiter that allows everything."""
    return RateLimiter(0, 1, lambda: 0.0)


@dataclass
class Limits:
    """The node's abuse limits, built from the ``[limits]`` section (``from_settings``).

    ``resolve`` and ``auth`` (per address) and ``auth_identity`` (per identity) are charged
    by clients whose address is verified (TCP, TLS, HTTP); the ``*_udp`` twins by UDP, which
    cannot be verified. ``anonymous_write`` counts HTTP requests that write without
    credentials (``POST /api/mgmt/organisations``)."""

    resolve: RateLimiter
    auth: RateLimiter
    exempt: frozenset[str] = frozenset()
    exempt_nets: tuple[Any, ...] = ()
    udp_amplification: int = 3
    tcp_read_deadline: float = 10.0
    tcp_max_connections_per_ip: int = 64
    http_max_connections_per_ip: int = 64
    max_connections: int = 0
    http_max_body: int = 16 * 1024 * 1024
    udp_fair_share: bool = True
    resolve_udp: RateLimiter = field(default_factory=_off)
    auth_udp: RateLimiter = field(default_factory=_off)
    auth_identity: RateLimiter = field(default_factory=_off)
    auth_identity_udp: RateLimiter = field(default_factory=_off)
    anonymous_write: RateLimiter = field(default_factory=_off)
    anonymous_write_daily: RateLimiter = field(default_factory=_off)
    _exempt_cache: dict[str, bool] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, section: Any, clock: Clock) -> Limits:
        """From a ``LimitsSection`` (or anything with the same attributes)."""
        max_clients = int(getattr(section, "max_clients", DEFAULT_MAX_CLIENTS))

        def limiter(rate: float, burst: float) -> RateLimiter:
            return RateLimiter(rate, burst, clock, max_clients=max_clients)

        def setting(name: str, default: Any) -> Any:
            return getattr(section, name, default)

        resolve = (section.resolve_rate, section.resolve_burst)
        auth = (section.auth_rate_per_minute / 60.0, section.auth_burst)
        identity = (
            setting("auth_identity_rate_per_minute", 30) / 60.0,
            setting("auth_identity_burst", 20),
        )
        writes = (
            setting("anonymous_write_rate_per_minute", 6) / 60.0,
            setting("anonymous_write_burst", 10),
        )
        hosts, nets = _parse_exempt(section.exempt)
        return cls(
            resolve=limiter(*resolve),
            auth=limiter(*auth),
            resolve_udp=limiter(*resolve),
            auth_udp=limiter(*auth),
            auth_identity=limiter(*identity),
            auth_identity_udp=limiter(*identity),
            anonymous_write=limiter(*writes),
            anonymous_write_daily=limiter(
                setting("anonymous_write_per_day", 50) / 86400.0,
                setting("anonymous_write_per_day", 50),
            ),
            exempt=hosts,
            exempt_nets=nets,
            udp_amplification=int(section.udp_amplification),
            tcp_read_deadline=float(section.tcp_read_deadline),
            tcp_max_connections_per_ip=int(section.tcp_max_connections_per_ip),
            http_max_connections_per_ip=int(setting("http_max_connections_per_ip", 64)),
            max_connections=int(setting("max_connections", 0)),
            http_max_body=int(section.http_max_body),
            udp_fair_share=bool(int(setting("udp_fair_share", 1))),
        )

    @classmethod
    def unlimited(cls) -> Limits:
        """No rate limits at all (the default of a bare ``WireHandler`` in unit tests)."""
        return cls(_off(), _off(), udp_amplification=0)

    def is_exempt(self, host: str) -> bool:
        """Exempt hosts (loopback by default) skip rate limits and amplification bounds."""
        if host in self.exempt:
            return True
        if not self.exempt_nets:
            return False
        cached = self._exempt_cache.get(host)
        if cached is None:
            try:
                addr = ipaddress.ip_address(host)
                cached = any(addr in net for net in self.exempt_nets)
            except ValueError:
                cached = False
            if len(self._exempt_cache) > 4096:
                self._exempt_cache.clear()
            self._exempt_cache[host] = cached
        return cached

    def allow_request(self, host: str, *, udp: bool = False) -> bool:
        """One resolution (or any other request): charge the resolution bucket."""
        return self.is_exempt(host) or (self.resolve_udp if udp else self.resolve).allow(host)

    def retry_after(self, host: str, *, udp: bool = False) -> float:
        return (self.resolve_udp if udp else self.resolve).retry_after(host)

    def allow_auth_attempt(self, host: str, *, udp: bool = False) -> bool:
        """Charge one authentication attempt of an address (a session setup)."""
        return self.is_exempt(host) or (self.auth_udp if udp else self.auth).allow(host)

    def may_try_auth(self, host: str, identity: str | None = None, *, udp: bool = False) -> bool:
        """Whether ``host`` may present credentials (for ``identity``, when known) now;
        failures are charged separately (``auth_failed``)."""
        if self.is_exempt(host):
            return True
        by_address = self.auth_udp if udp else self.auth
        by_identity = self.auth_identity_udp if udp else self.auth_identity
        return by_address.has_tokens(host) and (not identity or by_identity.has_tokens(identity))

    def auth_failed(self, host: str, identity: str | None = None, *, udp: bool = False) -> None:
        """A proof failed (or named no challenge): charge the address and the identity."""
        if self.is_exempt(host):
            return
        (self.auth_udp if udp else self.auth).allow(host)
        if identity:
            (self.auth_identity_udp if udp else self.auth_identity).allow(identity)

    def auth_retry_after(self, host: str, identity: str | None = None) -> float:
        wait = self.auth.retry_after(host)
        if identity:
            wait = max(wait, self.auth_identity.retry_after(identity))
        return wait

    def allow_anonymous_write(self, host: str) -> bool:
        """Charge one request that writes without credentials (HTTP only): the per-minute
        rate stops a burst, the daily bucket a slow trickle of applications from one address
        (an organisation's credit code can have one open application at a time anyway)."""
        if self.is_exempt(host):
            return True
        return self.anonymous_write.allow(host) and self.anonymous_write_daily.allow(host)

    def anonymous_write_retry_after(self, host: str) -> float:
        return max(
            self.anonymous_write.retry_after(host), self.anonymous_write_daily.retry_after(host)
        )

    def udp_answer_budget(self, host: str, request_size: int, verified: bool) -> int | None:
        """The largest UDP answer (bytes, all datagrams) ``host`` may get; None: no bound."""
        if verified or self.udp_amplification <= 0 or self.is_exempt(host):
            return None
        return self.udp_amplification * max(request_size, 1)


def _parse_exempt(entries: Iterable[str]) -> tuple[frozenset[str], tuple[Any, ...]]:
    hosts, nets = set(), []
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        if "/" in entry:
            nets.append(ipaddress.ip_network(entry, strict=False))
        else:
            hosts.add(entry)
    return frozenset(hosts), tuple(nets)


# -- HTTP ----------------------------------------------------------------------------------

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Any]


class _BodyTooLarge(Exception):
    pass


class HttpLimits:
    """ASGI middleware: per-client request rate and auth attempts (429), body size (413).

    Runs before routing, so an over-limit client costs no store read and no key check, and
    an oversized body is refused from its Content-Length without reading it, or as soon as
    the bytes received pass the limit when no length was sent. Authentication attempts are
    requests that present credentials (an ``Authorization`` header, or a session answer to
    ``/api/sessions/this``) or open a session (``POST /api/sessions``): a session setup is
    charged up front, a presented credential only when it fails (401), to its address and to
    the identity it names, so an admin sending valid Basic credentials on every request is
    never throttled, while guessing stops after ``auth_burst`` failures from one address or
    ``auth_identity_burst`` failures for one identity from anywhere. A request that writes
    without credentials (``POST``/``PUT``/``PATCH``/``DELETE``; in practice an organisation's
    application) spends an ``anonymous_write`` token first.
    """

    def __init__(
        self, app: ASGIApp, limits: Limits, streamed: Mapping[str, int] | None = None
    ) -> None:
        """``streamed``: paths whose POST bodies the handler streams to disk, with their own
        byte bound (an import file is larger than any request entity ``http_max_body``
        bounds, and never held in memory)."""
        self.app = app
        self.limits = limits
        self.streamed = dict(streamed or {})

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limits = self.limits
        host = (scope.get("client") or ("?", 0))[0]
        if not limits.allow_request(host):
            wait = limits.retry_after(host)
            await _send_json(send, 429, 3, "too many requests from this client", wait)
            return
        presents, setup = _auth_kind(scope)
        identity = claimed_identity(scope) if presents else None
        if presents or setup:
            refused = not limits.may_try_auth(host, identity) or (
                setup and not limits.allow_auth_attempt(host)
            )
            if refused:
                wait = limits.auth_retry_after(host, identity)
                await _send_json(send, 429, 3, "too many authentication attempts", wait)
                return
        elif scope.get("method") in _WRITES and not limits.allow_anonymous_write(host):
            wait = limits.anonymous_write_retry_after(host)
            message = "too many requests without credentials that write; slow down"
            await _send_json(send, 429, 3, message, wait)
            return
        maximum = limits.http_max_body
        if scope.get("method") == "POST":
            maximum = self.streamed.get(scope.get("path", "").rstrip("/"), maximum)
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > maximum):
            await _send_json(send, 413, 4, f"request body larger than {maximum} bytes")
            return
        received = 0
        status = 0

        async def counting_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > maximum:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not status:
                await _send_json(send, 413, 4, f"request body larger than {maximum} bytes")
        if presents and status == 401:
            limits.auth_failed(host, identity)  # a failed proof: charge it


_WRITES = frozenset(("POST", "PUT", "PATCH", "DELETE"))
_SESSION_ANSWER = frozenset(("PUT", "POST"))


def _auth_kind(scope: dict) -> tuple[bool, bool]:
    """(presents credentials, opens a session)."""
    path = scope.get("path", "").rstrip("/")
    method = scope.get("method")
    presents = _header(scope, b"authorization") is not None or (
        method in _SESSION_ANSWER and path == "/api/sessions/this"
    )
    setup = method == "POST" and path == "/api/sessions"
    return presents, setup


def claimed_identity(scope: dict) -> str | None:
    """The identity an ``Authorization`` header names (``index:handle``), if it names one:
    failed proofs are charged to it whatever address they come from."""
    header = _header(scope, b"authorization")
    if not header:
        return None
    scheme = header.split(None, 1)[0].lower()
    try:
        if scheme == "basic":
            return str(parse_basic_authorization(header)[0])
        if scheme == "handle":
            named = parse_handle_authorization(header).get("id")
            return urllib.parse.unquote(named)[:300] if named else None
    except IdnodeError:
        return None
    return None


def _header(scope: dict, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == wanted:
            return value.decode("latin-1").strip()
    return None


async def _send_json(send, status: int, code: int, message: str, retry: float = 0.0) -> None:
    body = orjson.dumps({"responseCode": code, "message": message})
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if status == 429:
        headers.append((b"retry-after", b"%d" % max(1, math.ceil(min(retry, 3600.0)))))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
