"""What a check may use: the probe, the credentials, the fixtures, and how to fail.

The context also carries the run's clock and random source (``idnode.runtime``), given by
the caller: checks read the time and draw request ids and names from them, never from the
machine, so a run can be replayed against a manual clock and seeded bytes.

A check fails by raising ``CheckFailed(expected, got)``; the runner adds what was sent and
what came back from the probe's log. ``Skip`` marks a check that cannot run with the options
given (no endpoint, no credentials); a skip is reported, never counted as a pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from idnode.auth.identity import Identity
from idnode.client.admin import AdminClient
from idnode.codes import OpCode, OpFlag, ResponseCode
from idnode.crypto.keys import PrivateKey
from idnode.runtime import Clock, Random, randbits, token_hex
from idnode.verify.conformance.describe import code_name
from idnode.verify.conformance.probes import Garbage, Probe, Reply
from idnode.wire import bodies
from idnode.wire.envelope import Envelope
from idnode.wire.header import Header
from idnode.wire.message import Message

NO_FLAGS = OpFlag(0)


class CheckFailed(Exception):
    """The target answered, but not as the reference says it must."""

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(f"expected {expected}; got {got}")
        self.expected, self.got = expected, got


class Skip(Exception):
    """The check cannot run with the options given."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """An identity and the key that proves it (exactly one of private_key and secret)."""

    identity: Identity
    private_key: PrivateKey | None = None
    secret: bytes | None = None


@dataclass
class Fixtures:
    """The identifiers the suite wrote for this run, and what it wrote into them."""

    record: str
    big: str
    key_handle: str
    limited: str
    big_data: bytes
    restricted_data: bytes
    stranger: Credentials
    values: dict[int, tuple[str, bytes]] = field(default_factory=dict)


@dataclass
class Context:
    """Everything a check sees. One per run; the probe log is cleared per check."""

    probe: Probe
    prefix: str | None = None
    handle: str | None = None
    creds: Credentials | None = None
    bound: float = 1.0
    run_id: str = ""  # default: 8 hex digits drawn from ``random``
    fixtures: Fixtures | None = None
    fixture_error: str | None = None
    created: list[str] = field(default_factory=list)
    clock: Clock = field(kw_only=True)  # wall time for checks of dates, monotonic for timing
    random: Random = field(kw_only=True)  # request ids, the run id, made-up secrets

    def __post_init__(self) -> None:
        if not self.run_id:
            self.run_id = token_hex(self.random, 4)

    # -- building requests ----------------------------------------------------------------
    def request(
        self,
        opcode: int,
        body: bodies.Body,
        flags: OpFlag = NO_FLAGS,
        *,
        request_id: int | None = None,
        version: tuple[int, int] = (2, 1),
        suggest: tuple[int, int] = (2, 11),
        session_id: int = 0,
        recursion: int = 0,
    ) -> Message:
        """A request as an HSJ client would build it (2.1 suggesting 2.11, random request
        id)."""
        env = Envelope(
            major=version[0],
            minor=version[1],
            suggest_major=suggest[0],
            suggest_minor=suggest[1],
            session_id=session_id,
            request_id=randbits(self.random, 31) if request_id is None else request_id,
        )
        header = Header(opcode=opcode, flags=flags, recursion_count=recursion)
        return Message(header, body, env)

    def resolution(
        self,
        handle: str,
        indexes: Sequence[int] = (),
        types: Sequence[str] = (),
        flags: OpFlag = OpFlag.PO,
        **kw: object,
    ) -> Message:
        body = bodies.ResolutionRequest(handle, tuple(indexes), tuple(types))
        return self.request(OpCode.RESOLUTION, body, flags, **kw)  # type: ignore[arg-type]

    # -- failing ------------------------------------------------------------------------
    @staticmethod
    def expect(condition: object, expected: str, got: str) -> None:
        if not condition:
            raise CheckFailed(expected, got)

    def expect_code(self, reply: Reply, codes: int | Sequence[int], what: str = "") -> Message:
        """The decoded answer, failing unless its response code is one of ``codes``."""
        msg = reply.decoded()
        wanted = (codes,) if isinstance(codes, int) else tuple(codes)
        got = msg.header.response_code
        if got not in wanted:
            names = " or ".join(code_name(c) for c in wanted)
            raise CheckFailed(
                f"response code {names}" + (f" ({what})" if what else ""),
                f"{code_name(got)}" + _error_text(msg),
            )
        return msg

    # -- what to read -------------------------------------------------------------------
    @property
    def read_handle(self) -> str:
        """A handle that exists: our fixture, else --handle, else the prefix handle."""
        if self.fixtures is not None:
            return self.fixtures.record
        if self.handle:
            return self.handle
        if self.prefix:
            return "0.NA/" + self.prefix
        raise Skip("needs --handle, --prefix or --admin to know a handle that exists")

    def need_fixtures(self) -> Fixtures:
        if self.fixtures is not None:
            return self.fixtures
        if self.fixture_error:
            raise CheckFailed("test identifiers written under --prefix", self.fixture_error)
        raise Skip("needs --admin credentials and --prefix to write test identifiers")

    def need_creds(self) -> Credentials:
        if self.creds is None:
            raise Skip("needs --admin credentials")
        return self.creds

    def need_prefix(self) -> str:
        if not self.prefix:
            raise Skip("needs --prefix (or --admin 300:0.NA/PREFIX)")
        return self.prefix

    def new_name(self, label: str) -> str:
        """A fresh handle under --prefix, deleted again when the run ends."""
        name = f"{self.need_prefix()}/idnode-verify-{self.run_id}-{label}"
        self.created.append(name)
        return name

    # -- authenticated exchanges ----------------------------------------------------------
    def signer(self, creds: Credentials) -> AdminClient:
        """An ``AdminClient`` used only to sign answers (never to send)."""
        return AdminClient(
            "0.0.0.0",
            0,
            "tcp",
            creds.identity,
            private_key=creds.private_key,
            secret=creds.secret,
        )

    async def as_identity(
        self, msg: Message, creds: Credentials | None = None, *, frames: int = 1
    ) -> list[Reply]:
        """Send ``msg`` over TCP (UDP if no TCP), answer a 402 as ``creds``; the answers."""
        creds = creds or self.need_creds()
        signer = self.signer(creds)
        from idnode.wire.message import encode_message

        if self.probe.tcp_addr is None:
            first = await self.probe.udp(msg)
            if _code(first) != ResponseCode.AUTHENTICATION_NEEDED:
                return [first]
            answer = signer.answer_for(msg, first.decoded())
            return [await self.probe.udp(answer)]
        async with self.probe.tcp_connection() as conn:
            from idnode.verify.conformance.describe import describe

            replies = await conn.exchange(encode_message(msg), describe(msg), frames=1)
            if _code(replies[0]) != ResponseCode.AUTHENTICATION_NEEDED:
                return await _more(conn, replies)
            answer = signer.answer_for(msg, replies[0].decoded())
            replies = await conn.exchange(encode_message(answer), describe(answer))
            return await _more(conn, replies)

    async def admin(
        self,
        opcode: int,
        body: bodies.Body,
        flags: OpFlag = NO_FLAGS,
        creds: Credentials | None = None,
    ) -> Message:
        """One administration request as ``creds`` (default: --admin); the last answer."""
        replies = await self.as_identity(self.request(opcode, body, flags), creds)
        return replies[-1].decoded()


def _code(reply: Reply) -> int:
    return reply.decoded().header.response_code


async def _more(conn, replies: list[Reply]) -> list[Reply]:
    """Read on while the last answer carries the CN (continuous) flag."""
    while (
        replies[-1].message is not None
        and replies[-1].message.header.flags & OpFlag.CN
        and len(replies) < 10_000
    ):
        replies += await conn.exchange(b"", "(continuation)")
    return replies


def _error_text(msg: Message) -> str:
    text = getattr(msg.body, "message", "")
    return f" ({text[:160]!r})" if text else ""


def set_envelope(msg: Message, **changes: object) -> Message:
    return replace(msg, envelope=replace(msg.envelope, **changes))  # type: ignore[arg-type]


__all__ = [
    "CheckFailed",
    "Context",
    "Credentials",
    "Fixtures",
    "Garbage",
    "Skip",
]
