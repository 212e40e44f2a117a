"""Administration (RFC 3652 §3.6-3.8): each operation, its error codes and its permissions.

Every write is judged by reading back, so a server that says SUCCESS and does nothing
fails. Permission checks use the stranger identity the fixtures created: it can prove who it
is but administers nothing except one ADD_VALUE grant on the "lim" fixture.
"""

from __future__ import annotations

from idnode.codes import OpCode, OpFlag, ResponseCode
from idnode.model import DESC, URL, HandleValue
from idnode.verify.conformance.catalogue import check
from idnode.verify.conformance.context import Context
from idnode.verify.conformance.describe import code_name, describe
from idnode.verify.conformance.fixtures import PUBLIC, admin_value
from idnode.wire import bodies
from idnode.wire.message import Message

REF = "RFC 3652 §3.7"
NEEDS = ("tcp", "admin")
DENIED = (ResponseCode.NOT_AUTHORIZED, ResponseCode.ACCESS_DENIED)


def _code(ctx: Context, msg: Message, codes: int | tuple[int, ...], what: str) -> None:
    wanted = (codes,) if isinstance(codes, int) else codes
    got = msg.header.response_code
    text = getattr(msg.body, "message", "")
    ctx.expect(
        got in wanted,
        " or ".join(code_name(c) for c in wanted) + f" ({what})",
        f"{code_name(got)} {text!r}",
    )


async def _values(ctx: Context, handle: str) -> dict[int, tuple[str, bytes]]:
    """The record as --admin reads it (all values), {} when it does not exist."""
    replies = await ctx.as_identity(ctx.resolution(handle, flags=OpFlag(0)))
    msg = replies[-1].decoded()
    if msg.header.response_code == ResponseCode.HANDLE_NOT_FOUND:
        return {}
    _code(ctx, msg, ResponseCode.SUCCESS, f"reading {handle} back")
    return {v.index: (v.type, v.data) for v in msg.body.values}  # type: ignore[union-attr]


async def _fresh(ctx: Context, label: str) -> str:
    """A new handle with URL 1 and HS_ADMIN 100 (--admin), created by --admin."""
    handle = ctx.new_name(label)
    values = (
        HandleValue(1, URL, b"https://example.org/" + label.encode(), PUBLIC),
        admin_value(ctx.need_creds().identity),
    )
    msg = await ctx.admin(OpCode.CREATE_HANDLE, bodies.CreateHandleRequest(handle, values))
    _code(ctx, msg, ResponseCode.SUCCESS, f"creating {handle}")
    return handle


def _desc(data: bytes) -> tuple[HandleValue, ...]:
    return (HandleValue(2, DESC, data, PUBLIC),)


@check(
    "ADM-001",
    "Create handle stores exactly the values sent",
    "RFC 3652 §3.7.1",
    category="admin",
    needs=NEEDS,
)
async def create(ctx: Context) -> None:
    handle = await _fresh(ctx, "create")
    got = await _values(ctx, handle)
    ctx.expect(
        got.get(1, ("", b""))[0] == URL and 100 in got,
        "values 1:URL and 100:HS_ADMIN",
        f"{sorted(got)}",
    )


@check(
    "ADM-002",
    "Creating an existing handle without OW gives HANDLE_ALREADY_EXISTS",
    "RFC 3652 §3.7.1",
    category="admin",
    needs=NEEDS,
)
async def create_twice(ctx: Context) -> None:
    fx = ctx.need_fixtures()
    values = (admin_value(ctx.need_creds().identity),)
    msg = await ctx.admin(OpCode.CREATE_HANDLE, bodies.CreateHandleRequest(fx.limited, values))
    _code(ctx, msg, ResponseCode.HANDLE_ALREADY_EXISTS, "no overwrite flag")
    got = await _values(ctx, fx.limited)
    ctx.expect(1 in got, f"{fx.limited} unchanged (value 1 still there)", f"{sorted(got)}")


@check("ADM-003", "Add value adds the value", "RFC 3652 §3.7.3", category="admin", needs=NEEDS)
async def add_value(ctx: Context) -> None:
    handle = await _fresh(ctx, "add")
    msg = await ctx.admin(OpCode.ADD_VALUE, bodies.AddValueRequest(handle, _desc(b"added")))
    _code(ctx, msg, ResponseCode.SUCCESS, "adding value 2")
    got = await _values(ctx, handle)
    ctx.expect(got.get(2) == (DESC, b"added"), "value 2 = DESC 'added'", f"{got.get(2)}")


@check(
    "ADM-004",
    "Adding at a taken index gives VALUE_ALREADY_EXISTS",
    "RFC 3652 §3.7.3",
    category="admin",
    needs=NEEDS,
)
async def add_taken(ctx: Context) -> None:
    fx = ctx.need_fixtures()
    value = (HandleValue(1, DESC, b"clash", PUBLIC),)
    msg = await ctx.admin(OpCode.ADD_VALUE, bodies.AddValueRequest(fx.limited, value))
    _code(ctx, msg, ResponseCode.VALUE_ALREADY_EXISTS, "index 1 is taken")


@check(
    "ADM-005",
    "Modify value replaces the value's data",
    "RFC 3652 §3.7.5",
    category="admin",
    needs=NEEDS,
)
async def modify(ctx: Context) -> None:
    handle = await _fresh(ctx, "modify")
    new = (HandleValue(1, URL, b"https://example.org/modified", PUBLIC),)
    msg = await ctx.admin(OpCode.MODIFY_VALUE, bodies.ModifyValueRequest(handle, new))
    _code(ctx, msg, ResponseCode.SUCCESS, "modifying value 1")
    got = await _values(ctx, handle)
    ctx.expect(
        got.get(1) == (URL, b"https://example.org/modified"),
        "value 1 = the new URL",
        f"{got.get(1)}",
    )


@check(
    "ADM-006",
    "Modifying a missing index gives VALUES_NOT_FOUND",
    "RFC 3652 §3.7.5",
    category="admin",
    needs=NEEDS,
)
async def modify_missing(ctx: Context) -> None:
    fx = ctx.need_fixtures()
    new = (HandleValue(77, DESC, b"nothing here", PUBLIC),)
    msg = await ctx.admin(OpCode.MODIFY_VALUE, bodies.ModifyValueRequest(fx.limited, new))
    _code(ctx, msg, ResponseCode.VALUES_NOT_FOUND, "index 77 does not exist")


@check(
    "ADM-007", "Remove value removes the value", "RFC 3652 §3.7.4", category="admin", needs=NEEDS
)
async def remove(ctx: Context) -> None:
    handle = await _fresh(ctx, "remove")
    msg = await ctx.admin(OpCode.REMOVE_VALUE, bodies.RemoveValueRequest(handle, (1,)))
    _code(ctx, msg, ResponseCode.SUCCESS, "removing value 1")
    got = await _values(ctx, handle)
    ctx.expect(1 not in got and 100 in got, "value 1 gone, 100 kept", f"{sorted(got)}")


@check(
    "ADM-008", "Delete handle deletes the record", "RFC 3652 §3.7.2", category="admin", needs=NEEDS
)
async def delete(ctx: Context) -> None:
    handle = await _fresh(ctx, "delete")
    msg = await ctx.admin(OpCode.DELETE_HANDLE, bodies.DeleteHandleRequest(handle))
    _code(ctx, msg, ResponseCode.SUCCESS, "deleting")
    reply = await ctx.probe.tcp(ctx.resolution(handle))
    ctx.expect_code(reply, ResponseCode.HANDLE_NOT_FOUND, "resolving the deleted handle")


@check(
    "ADM-009",
    "Deleting a missing handle gives HANDLE_NOT_FOUND",
    "RFC 3652 §3.7.2",
    category="admin",
    needs=NEEDS,
)
async def delete_missing(ctx: Context) -> None:
    handle = f"{ctx.need_prefix()}/idnode-verify-{ctx.run_id}-never-created"
    msg = await ctx.admin(OpCode.DELETE_HANDLE, bodies.DeleteHandleRequest(handle))
    _code(ctx, msg, ResponseCode.HANDLE_NOT_FOUND, "the handle never existed")


@check(
    "ADM-010",
    "List handles names the handles under the prefix",
    "RFC 3652 §3.8",
    category="admin",
    needs=NEEDS,
)
async def list_handles(ctx: Context) -> None:
    fx = ctx.need_fixtures()
    req = ctx.request(OpCode.LIST_HANDLES, bodies.ListHandlesRequest("0.NA/" + ctx.need_prefix()))
    replies = await ctx.as_identity(req)
    names: set[str] = set()
    for r in replies:
        msg = r.decoded()
        _code(ctx, msg, ResponseCode.SUCCESS, "listing as --admin")
        names |= {n.lower() for n in getattr(msg.body, "handles", ())}
    want = {fx.record.lower(), fx.big.lower(), fx.limited.lower()}
    ctx.expect(want <= names, f"the fixtures {sorted(want)}", f"{len(names)} names without them")


@check(
    "ADM-011",
    "An administration request without credentials is challenged",
    "RFC 3652 §3.5",
    category="admin",
    needs=NEEDS,
)
async def anonymous_write(ctx: Context) -> None:
    handle = ctx.new_name("anon")
    values = (admin_value(ctx.need_creds().identity),)
    req = ctx.request(OpCode.CREATE_HANDLE, bodies.CreateHandleRequest(handle, values))
    reply = await ctx.probe.tcp(req)
    ctx.expect_code(reply, (ResponseCode.AUTHENTICATION_NEEDED, *DENIED), "no credentials")
    got = await _values(ctx, handle)
    ctx.expect(not got, f"{handle} not created", f"values {sorted(got)}")


async def _as_stranger(ctx: Context, opcode: int, body: bodies.Body) -> Message:
    fx = ctx.need_fixtures()
    return await ctx.admin(opcode, body, creds=fx.stranger)


@check(
    "ADM-012",
    "An identity without ADD_HANDLE on the prefix cannot create",
    "RFC 3651 §3.2.1",
    category="admin",
    needs=NEEDS,
)
async def stranger_create(ctx: Context) -> None:
    fx = ctx.need_fixtures()
    handle = ctx.new_name("stranger")
    values = (admin_value(fx.stranger.identity),)
    msg = await _as_stranger(ctx, OpCode.CREATE_HANDLE, bodies.CreateHandleRequest(handle, values))
    _code(ctx, msg, DENIED, f"{fx.stranger.identity} is no admin of the prefix")
    ctx.expect(not await _values(ctx, handle), f"{handle} not created", "it exists")


@check(
    "ADM-013",
    "An identity without MODIFY_VALUE cannot modify",
    "RFC 3651 §3.2.1",
    category="admin",
    needs=NEEDS,
)
async def stranger_modify(ctx: Context) -> None:
    fx = ctx.need_fixtures()
    new = (HandleValue(1, URL, b"https://example.org/hijacked", PUBLIC),)
    msg = await _as_stranger(ctx, OpCode.MODIFY_VALUE, bodies.ModifyValueRequest(fx.record, new))
    _code(ctx, msg, DENIED, "the stranger administers nothing here")
    got = await _values(ctx, fx.record)
    ctx.expect(got.get(1) == fx.values[1], "value 1 unchanged", f"{got.get(1)}")


@check(
    "ADM-014",
    "An identity without DELETE_HANDLE cannot delete",
    "RFC 3651 §3.2.1",
    category="admin",
    needs=NEEDS,
)
async def stranger_delete(ctx: Context) -> None:
    fx = ctx.need_fixtures()
    msg = await _as_stranger(ctx, OpCode.DELETE_HANDLE, bodies.DeleteHandleRequest(fx.record))
    _code(ctx, msg, DENIED, "the stranger administers nothing here")
    ctx.expect(await _values(ctx, fx.record), f"{fx.record} still there", "it was deleted")


@check(
    "ADM-015",
    "An ADD_VALUE grant lets its holder add a value",
    "RFC 3651 §3.2.1",
    category="admin",
    needs=NEEDS,
)
async def limited_add(ctx: Context) -> None:
    fx = ctx.need_fixtures()
    index = 1000 + int(ctx.run_id, 16) % 8000  # a fresh index per run: fixtures may be shared
    data = f"by the stranger {ctx.run_id}".encode()
    value = (HandleValue(index, DESC, data, PUBLIC),)
    msg = await _as_stranger(ctx, OpCode.ADD_VALUE, bodies.AddValueRequest(fx.limited, value))
    _code(ctx, msg, ResponseCode.SUCCESS, "HS_ADMIN 101 grants ADD_VALUE")
    got = await _values(ctx, fx.limited)
    ctx.expect(got.get(index) == (DESC, data), f"value {index} added", f"{got.get(index)}")


@check(
    "ADM-016",
    "An ADD_VALUE grant does not allow REMOVE_VALUE",
    "RFC 3651 §3.2.1",
    category="admin",
    needs=NEEDS,
)
async def limited_remove(ctx: Context) -> None:
    fx = ctx.need_fixtures()
    msg = await _as_stranger(ctx, OpCode.REMOVE_VALUE, bodies.RemoveValueRequest(fx.limited, (1,)))
    _code(ctx, msg, DENIED, "HS_ADMIN 101 grants ADD_VALUE only")
    got = await _values(ctx, fx.limited)
    ctx.expect(1 in got, "value 1 still there", f"{sorted(got)}")


@check(
    "ADM-017",
    "Creating outside the homed prefixes is refused",
    "RFC 3652 §3.7.1",
    category="admin",
    needs=NEEDS,
)
async def create_elsewhere(ctx: Context) -> None:
    handle = f"99.99999.424242/idnode-verify-{ctx.run_id}"
    values = (admin_value(ctx.need_creds().identity),)
    msg = await ctx.admin(OpCode.CREATE_HANDLE, bodies.CreateHandleRequest(handle, values))
    _code(
        ctx,
        msg,
        (ResponseCode.SERVER_NOT_RESPONSIBLE, *DENIED, ResponseCode.INVALID_HANDLE),
        "a prefix this server does not home",
    )
    ctx.expect(msg.header.response_code != ResponseCode.SUCCESS, "no success", describe(msg))
