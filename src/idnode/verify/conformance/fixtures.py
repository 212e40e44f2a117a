"""Test identifiers: written under --prefix before the checks that read them, removed after.

They give the resolution and permission checks records whose every byte is known: public
values at 1-3, a value only admins may read at 5, a 3000-byte value for the UDP/TCP size
checks, and a second identity (an HS_SECKEY we made up) that is an admin of nothing but one
ADD_VALUE grant, so permission checks can be made without a second real account.
"""

from __future__ import annotations

from idnode.auth.identity import Identity
from idnode.codes import AdminPermission, OpCode, OpFlag, Permission, ResponseCode
from idnode.model import DESC, EMAIL, HS_ADMIN, HS_SECKEY, URL, HandleValue
from idnode.runtime import token_hex
from idnode.verify.conformance.context import Context, Credentials, Fixtures

__all__ = ["Fixtures", "cleanup", "setup"]
from idnode.verify.conformance.describe import code_name
from idnode.verify.conformance.probes import ProbeError
from idnode.wire import bodies
from idnode.wire.admin import AdminRecord, encode_admin

PRIVATE = Permission.ADMIN_READ | Permission.ADMIN_WRITE
PUBLIC = PRIVATE | Permission.PUBLIC_READ
ALL = AdminPermission(0xFFF)
RESTRICTED_INDEX = 5
BIG_SIZE = 3000


def admin_value(identity: Identity, index: int = 100, perms: AdminPermission = ALL) -> HandleValue:
    data = encode_admin(AdminRecord(identity.handle, identity.index, perms))
    return HandleValue(index, HS_ADMIN, data, PUBLIC)


def record_values(ctx: Context) -> list[HandleValue]:
    creds = ctx.need_creds()
    return [
        HandleValue(1, URL, b"https://example.org/idnode-verify/" + ctx.run_id.encode(), PUBLIC),
        HandleValue(2, DESC, b"idnode verify fixture", PUBLIC),
        HandleValue(3, EMAIL, b"verify@example.org", PUBLIC),
        HandleValue(
            RESTRICTED_INDEX, "INTERNAL_NOTE", b"restricted-" + ctx.run_id.encode(), PRIVATE
        ),
        admin_value(creds.identity),
    ]


async def create(ctx: Context, handle: str, values: list[HandleValue]) -> None:
    """Create (overwriting) one record as --admin; raises RuntimeError saying why not."""
    body = bodies.CreateHandleRequest(handle, tuple(values))
    try:
        msg = await ctx.admin(OpCode.CREATE_HANDLE, body, OpFlag.OW)
    except ProbeError as exc:
        raise RuntimeError(f"creating {handle} failed: {exc}") from None
    code = msg.header.response_code
    if code != ResponseCode.SUCCESS:
        text = getattr(msg.body, "message", "")
        raise RuntimeError(
            f"creating {handle} as {ctx.need_creds().identity}: {code_name(code)} "
            f"{text!r} (wrong credential, or no ADD_HANDLE on the prefix?)"
        )


async def setup(ctx: Context) -> Fixtures:
    """Write the fixture records; the caller records a failure as ``ctx.fixture_error``."""
    creds = ctx.need_creds()
    secret = token_hex(ctx.random, 16).encode()  # the made-up identity's HS_SECKEY
    fx = Fixtures(
        record=ctx.new_name("rec"),
        big=ctx.new_name("big"),
        key_handle=ctx.new_name("key"),
        limited=ctx.new_name("lim"),
        big_data=bytes((i * 7 + 13) % 251 for i in range(BIG_SIZE)),
        restricted_data=b"restricted-" + ctx.run_id.encode(),
        stranger=Credentials(Identity(ctx.created[-2], 300), secret=secret),
    )
    values = record_values(ctx)
    fx.values = {v.index: (v.type, v.data) for v in values}
    await create(ctx, fx.record, values)
    await create(
        ctx,
        fx.big,
        [
            HandleValue(1, URL, b"https://example.org/big", PUBLIC),
            HandleValue(2, DESC, fx.big_data, PUBLIC),
            admin_value(creds.identity),
        ],
    )
    await create(
        ctx,
        fx.key_handle,
        [
            HandleValue(300, HS_SECKEY, secret, PRIVATE),
            admin_value(creds.identity),
        ],
    )
    await create(
        ctx,
        fx.limited,
        [
            HandleValue(1, URL, b"https://example.org/limited", PUBLIC),
            admin_value(creds.identity),
            admin_value(fx.stranger.identity, 101, AdminPermission.ADD_VALUE),
        ],
    )
    return fx


async def cleanup(ctx: Context) -> list[str]:
    """Delete every handle the run created; the names that could not be deleted."""
    left = []
    for handle in dict.fromkeys(ctx.created):
        try:
            msg = await ctx.admin(OpCode.DELETE_HANDLE, bodies.DeleteHandleRequest(handle))
        except Exception as exc:  # cleanup must try every name
            left.append(f"{handle} ({exc})")
            continue
        if msg.header.response_code not in (ResponseCode.SUCCESS, ResponseCode.HANDLE_NOT_FOUND):
            left.append(f"{handle} ({code_name(msg.header.response_code)})")
    return left
