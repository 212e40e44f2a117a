"""Resolution (RFC 3652 §3.2): values, filters, public-only, not-found codes, case, size.

Checks that need known content read the fixture record the suite wrote (``fixtures``);
the others work on any existing handle.
"""

from __future__ import annotations

from idnode.codes import OpFlag, ResponseCode
from idnode.verify.conformance.catalogue import SHOULD, check
from idnode.verify.conformance.context import Context
from idnode.verify.conformance.fixtures import RESTRICTED_INDEX
from idnode.wire.message import Message

REF = "RFC 3652 §3.2"
OK, NOT_FOUND, NO_VALUES = ResponseCode.SUCCESS, ResponseCode.HANDLE_NOT_FOUND, 200


def _values(msg: Message) -> list:
    return list(getattr(msg.body, "values", ()))


def _ids(msg: Message) -> list[str]:
    return [f"{v.index}:{v.type}" for v in _values(msg)]


async def _resolve(ctx: Context, handle: str, **kw: object) -> Message:
    msg = ctx.resolution(handle, **kw)  # type: ignore[arg-type]
    return ctx.expect_code(await ctx.probe.udp(msg), OK)


@check("RES-001", "An existing handle resolves over UDP, naming the handle", REF)
async def resolve_udp(ctx: Context) -> None:
    handle = ctx.read_handle
    msg = await _resolve(ctx, handle)
    got = getattr(msg.body, "handle", None)
    ctx.expect(got == handle, f"handle {handle!r} in the answer body", f"{got!r}")
    ctx.expect(_values(msg), "at least one value", "no values")


@check("RES-002", "UDP and TCP answers hold the same values", REF, needs=("udp", "tcp"))
async def udp_tcp_agree(ctx: Context) -> None:
    handle = ctx.read_handle
    udp = await _resolve(ctx, handle)
    tcp = ctx.expect_code(await ctx.probe.tcp(ctx.resolution(handle)), OK)
    a = sorted((v.index, v.type, v.data) for v in _values(udp))
    b = sorted((v.index, v.type, v.data) for v in _values(tcp))
    ctx.expect(a == b, f"the UDP values {_ids(udp)}", f"TCP values {_ids(tcp)}")


@check("RES-003", "Every public value of a record is returned", REF, needs=("udp", "admin"))
async def all_public_values(ctx: Context) -> None:
    fx = ctx.need_fixtures()
    msg = await _resolve(ctx, fx.record)
    got = {v.index for v in _values(msg)}
    want = {i for i in fx.values if i != RESTRICTED_INDEX}
    ctx.expect(want <= got, f"values at indexes {sorted(want)}", f"indexes {sorted(got)}")


@check(
    "RES-004",
    "Value types and data come back byte for byte as written",
    "RFC 3651 §3.1",
    needs=("udp", "admin"),
)
async def exact_values(ctx: Context) -> None:
    fx = ctx.need_fixtures()
    msg = await _resolve(ctx, fx.record)
    for v in _values(msg):
        if v.index in fx.values:
            want = fx.values[v.index]
            ctx.expect(
                (v.type, v.data) == want,
                f"value {v.index} = {want[0]} {want[1][:60]!r}",
                f"{v.type} {v.data[:60]!r}",
            )


@check("RES-005", "A type filter returns only values of that type", REF + ".1")
async def type_filter(ctx: Context) -> None:
    handle = ctx.read_handle
    every = _values(await _resolve(ctx, handle))
    ctx.expect(every, "values to filter", "none")
    wanted = every[0].type
    msg = await _resolve(ctx, handle, types=[wanted])
    got = {v.type for v in _values(msg)}
    ctx.expect(got == {wanted}, f"only {wanted} values", f"{_ids(msg)}")


@check("RES-006", "An index filter returns only that index", REF + ".1")
async def index_filter(ctx: Context) -> None:
    handle = ctx.read_handle
    every = _values(await _resolve(ctx, handle))
    ctx.expect(every, "values to filter", "none")
    wanted = every[-1].index
    msg = await _resolve(ctx, handle, indexes=[wanted])
    got = [v.index for v in _values(msg)]
    ctx.expect(got == [wanted], f"only index {wanted}", f"{_ids(msg)}")


@check("RES-007", "Index and type filters combine as a union", REF + ".1", needs=("udp", "admin"))
async def filter_union(ctx: Context) -> None:
    fx = ctx.need_fixtures()
    msg = await _resolve(ctx, fx.record, indexes=[2], types=["URL"])
    got = sorted(v.index for v in _values(msg))
    ctx.expect(got == [1, 2], "indexes [1, 2] (type URL or index 2)", f"{_ids(msg)}")


@check("RES-008", "A filter that matches nothing gives VALUES_NOT_FOUND", REF)
async def filter_nothing(ctx: Context) -> None:
    msg = ctx.resolution(ctx.read_handle, types=["IDNODE-VERIFY-NO-SUCH-TYPE"])
    answer = ctx.expect_code(await ctx.probe.udp(msg), NO_VALUES)
    ctx.expect(not _values(answer), "no values", f"{_ids(answer)}")


@check("RES-009", "Public-only answers hold no value lacking PUBLIC_READ", "RFC 3651 §3.1")
async def public_only_bits(ctx: Context) -> None:
    msg = await _resolve(ctx, ctx.read_handle, flags=OpFlag.PO)
    hidden = [f"{v.index}:{v.type}" for v in _values(msg) if not v.public_read]
    ctx.expect(not hidden, "only values with the PUBLIC_READ bit", f"non-public {hidden}")


@check(
    "RES-010",
    "A value without PUBLIC_READ is withheld from anonymous clients",
    "RFC 3651 §3.1",
    needs=("udp", "admin"),
)
async def restricted_withheld(ctx: Context) -> None:
    fx = ctx.need_fixtures()
    msg = await _resolve(ctx, fx.record, flags=OpFlag.PO)
    leaked = [
        v for v in _values(msg) if v.index == RESTRICTED_INDEX or v.data == fx.restricted_data
    ]
    ctx.expect(not leaked, f"value {RESTRICTED_INDEX} withheld", f"{_ids(msg)}")


@check(
    "RES-011",
    "Asking for a restricted index by number does not reveal it",
    "RFC 3651 §3.1",
    needs=("udp", "admin"),
)
async def restricted_by_index(ctx: Context) -> None:
    fx = ctx.need_fixtures()
    reply = await ctx.probe.udp(ctx.resolution(fx.record, indexes=[RESTRICTED_INDEX]))
    msg = reply.decoded()
    leaked = [v for v in _values(msg) if v.data == fx.restricted_data]
    ctx.expect(not leaked, f"no data of value {RESTRICTED_INDEX}", f"{_ids(msg)}")
    ctx.expect(
        msg.header.response_code != OK or not _values(msg),
        "VALUES_NOT_FOUND, a challenge or a refusal",
        f"code {int(msg.header.response_code)} with {_ids(msg)}",
    )


@check(
    "RES-012",
    "Without PO, restricted values are challenged, not sent",
    "RFC 3652 §3.5",
    needs=("udp", "admin"),
)
async def restricted_non_po(ctx: Context) -> None:
    fx = ctx.need_fixtures()
    reply = await ctx.probe.udp(ctx.resolution(fx.record, flags=OpFlag(0)))
    msg = reply.decoded()
    leaked = [v for v in _values(msg) if v.data == fx.restricted_data]
    ctx.expect(not leaked, "no restricted data to an anonymous client", f"{_ids(msg)}")
    ctx.expect_code(
        reply,
        (ResponseCode.AUTHENTICATION_NEEDED, ResponseCode.SUCCESS, ResponseCode.NOT_AUTHORIZED),
    )


@check("RES-013", "An unknown handle under a homed prefix gives HANDLE_NOT_FOUND", REF)
async def not_found(ctx: Context) -> None:
    prefix = ctx.prefix or ctx.read_handle.split("/", 1)[0]
    msg = ctx.resolution(f"{prefix}/idnode-verify-does-not-exist-{ctx.run_id}")
    ctx.expect_code(await ctx.probe.udp(msg), NOT_FOUND)


@check("RES-014", "A handle under a prefix the server does not home is not answered as found", REF)
async def not_responsible(ctx: Context) -> None:
    msg = ctx.resolution("99.99999.424242/idnode-verify-elsewhere")
    ctx.expect_code(
        await ctx.probe.udp(msg),
        (
            NOT_FOUND,
            ResponseCode.SERVER_NOT_RESPONSIBLE,
            ResponseCode.SERVICE_REFERRAL,
            ResponseCode.PREFIX_REFERRAL,
        ),
    )


@check("RES-015", "A name that is not prefix/suffix is refused", "RFC 3651 §2.1")
async def invalid_handle(ctx: Context) -> None:
    msg = ctx.resolution("idnode-verify-no-slash")
    ctx.expect_code(
        await ctx.probe.udp(msg),
        (ResponseCode.INVALID_HANDLE, NOT_FOUND, ResponseCode.SERVER_NOT_RESPONSIBLE),
    )


@check("RES-016", "The 0.NA prefix handle resolves whatever the case of 'NA'", "RFC 3651 §2.1")
async def na_case(ctx: Context) -> None:
    prefix = ctx.need_prefix()
    upper = await _resolve(ctx, "0.NA/" + prefix)
    lower = ctx.expect_code(
        await ctx.probe.udp(ctx.resolution("0.na/" + prefix)),
        OK,
        "naming authorities are ASCII case-insensitive",
    )
    ctx.expect(
        sorted(_ids(upper)) == sorted(_ids(lower)), f"the values of 0.NA/{prefix}", f"{_ids(lower)}"
    )


@check(
    "RES-017",
    "A suffix in another case resolves to the same record or to nothing",
    "RFC 3651 §2.1",
    severity=SHOULD,
    needs=("udp", "admin"),
)
async def suffix_case(ctx: Context) -> None:
    """Suffixes are case-sensitive by default but a service may fold them; either is fine,
    a different record or an error is not."""
    fx = ctx.need_fixtures()
    base = await _resolve(ctx, fx.record)
    prefix, suffix = fx.record.split("/", 1)
    reply = await ctx.probe.udp(ctx.resolution(f"{prefix}/{suffix.upper()}"))
    msg = ctx.expect_code(reply, (OK, NOT_FOUND))
    if msg.header.response_code == OK:
        ctx.expect(
            sorted(_ids(msg)) == sorted(_ids(base)), f"the values {_ids(base)}", f"{_ids(msg)}"
        )


@check(
    "RES-018",
    "A record too large for one datagram arrives whole over UDP or is flagged",
    "RFC 3652 §2.3.1",
    needs=("udp", "admin"),
)
async def big_udp(ctx: Context) -> None:
    """Either several 512-byte datagrams that reassemble to the full record (HSJ), or the
    truncated flag telling the client to retry over TCP."""
    fx = ctx.need_fixtures()
    reply = await ctx.probe.udp(ctx.resolution(fx.big))
    if reply.envelope.truncated and len(reply.raw) == 1:
        return
    msg = ctx.expect_code(reply, OK)
    data = {v.index: v.data for v in _values(msg)}
    ctx.expect(
        data.get(2) == fx.big_data,
        f"value 2 = the {len(fx.big_data)} bytes written",
        f"{len(data.get(2, b''))} bytes, equal={data.get(2) == fx.big_data}",
    )


@check(
    "RES-019", "A large record resolves whole over TCP", "RFC 3652 §2.3.2", needs=("tcp", "admin")
)
async def big_tcp(ctx: Context) -> None:
    fx = ctx.need_fixtures()
    msg = ctx.expect_code(await ctx.probe.tcp(ctx.resolution(fx.big)), OK)
    data = {v.index: v.data for v in _values(msg)}
    ctx.expect(
        data.get(2) == fx.big_data,
        f"value 2 = the {len(fx.big_data)} bytes written",
        f"{len(data.get(2, b''))} bytes, equal={data.get(2) == fx.big_data}",
    )
