"""Administration and RFC 3652 authentication over real UDP and TCP sockets (in-process node).

Each failure is checked for its Handle response code and, where it matters, for leaving the
store exactly as it was (``WireNode.dump`` is the SQLite file's rows as SQL).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from idnode.auth.answers import make_public_key_answer
from idnode.client.admin import AdminClient, AdminError, new_request
from idnode.codes import AdminPermission as P
from idnode.codes import OpCode, OpFlag, Permission
from idnode.codes import ResponseCode as RC
from idnode.crypto.keys import encode_public_key, generate_key
from idnode.model import HS_ADMIN, HS_PUBKEY, HS_SECKEY, URL, HandleValue
from idnode.transport.wire_handler import split_listing
from idnode.wire import bodies
from idnode.wire.admin import AdminRecord, encode_admin
from idnode.wire.message import make_response
from tests.transport.conftest import CHALLENGE_TTL, PREFIX

PROTOCOLS = ["tcp", "udp"]
SECRET = b"correct horse battery staple"
DSA_KEY = generate_key("dsa", 1024)
OTHER_RSA = generate_key("rsa", 1024)
PRIVATE = Permission.ADMIN_READ | Permission.ADMIN_WRITE
ALL = P(0xFFF)


def admin_value(index: int, ref: str, perms: P = ALL) -> HandleValue:
    ref_index, _, ref_handle = ref.partition(":")
    return HandleValue(
        index, HS_ADMIN, encode_admin(AdminRecord(ref_handle, int(ref_index), perms))
    )


async def add_identity(wn, name: str, key_value: HandleValue, na_index: int, perms: P) -> str:
    """Make ``P/name`` hold a key at 300 and give 300:P/name ``perms`` on the prefix."""
    identity = f"300:{PREFIX}/{name}"
    async with wn.client() as op:
        await op.create_handle(f"{PREFIX}/{name}", [key_value, admin_value(100, identity)])
        await op.add_values(f"0.NA/{PREFIX}", [admin_value(na_index, identity, perms)])
    return identity


async def dsa_identity(wn) -> str:
    return await add_identity(
        wn, "admin-dsa", HandleValue(300, HS_PUBKEY, encode_public_key(DSA_KEY)), 101, P(0xFFF)
    )


async def secret_identity(wn, perms: P = ALL) -> str:
    value = HandleValue(300, HS_SECKEY, SECRET, PRIVATE)
    return await add_identity(wn, "admin-sec", value, 102, perms)


async def lifecycle(c: AdminClient, name: str) -> None:
    """Create, add, modify, remove, list, delete: every admin operation once."""
    handle = f"{PREFIX}/{name}"
    identity = f"{c.identity.index}:{c.identity.handle}"
    created = await c.create_handle(
        handle, [HandleValue(1, URL, b"https://example.com/a"), admin_value(100, identity)]
    )
    assert created == handle
    await c.add_values(handle, [HandleValue(2, "DESC", b"first")])
    await c.modify_values(handle, [HandleValue(2, "DESC", b"second")])
    values = {v.index: v.data for v in await c.resolve(handle)}
    assert values[2] == b"second"
    await c.remove_values(handle, [2])
    assert 2 not in {v.index for v in await c.resolve(handle)}
    assert handle in await c.list_handles(PREFIX)
    await c.delete_handle(handle)
    assert handle not in await c.list_handles(PREFIX)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_rsa_operator_key_from_init(wire_node, protocol):
    async with wire_node.client(protocol) as c:
        await lifecycle(c, f"rsa-{protocol}")


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_dsa_public_key(wire_node, protocol):
    identity = await dsa_identity(wire_node)
    async with wire_node.client(protocol, identity, private_key=DSA_KEY) as c:
        await lifecycle(c, f"dsa-{protocol}")


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("alg", ["SHA256", "HMAC-SHA256", "SHA1", "PBKDF2-HMAC-SHA1"])
async def test_secret_key_answers(wire_node, protocol, alg):
    identity = await secret_identity(wire_node)
    async with wire_node.client(protocol, identity, secret=SECRET, secret_alg=alg) as c:
        await lifecycle(c, f"sec-{protocol}-{alg.lower()}")


async def test_mint_and_overwrite_flags(wire_node):
    async with wire_node.client() as c:
        minted = await c.create_handle(f"{PREFIX}/", [HandleValue(1, URL, b"u")], mint=True)
        assert minted.startswith(f"{PREFIX}/") and len(minted) > len(PREFIX) + 10
        with pytest.raises(AdminError) as exc:
            await c.create_handle(minted, [HandleValue(1, URL, b"v")])
        assert exc.value.code == RC.HANDLE_ALREADY_EXISTS
        await c.create_handle(minted, [HandleValue(1, URL, b"v")], overwrite=True)
        assert (await c.resolve(minted))[0].data == b"v"


async def test_listing_of_prefixes_and_home_unhome(wire_node):
    async with wire_node.client("udp") as c:
        assert await c.list_prefixes() == [f"0.NA/{PREFIX}"]
        await c.home_prefix("20.500.88")
        assert "0.NA/20.500.88" in await c.list_prefixes()
        await c.create_handle("20.500.88/x", [HandleValue(1, URL, b"u")])
        await c.unhome_prefix("0.NA/20.500.88")
        with pytest.raises(AdminError) as exc:
            await c.create_handle("20.500.88/y", [HandleValue(1, URL, b"u")])
        assert exc.value.code == RC.SERVER_NOT_RESPONSIBLE
        await c.create_handle(f"0.NA/{PREFIX}.5", [HandleValue(1, URL, b"u")])
        assert await c.list_prefixes(PREFIX) == [f"0.NA/{PREFIX}.5"]


async def test_session_authenticates_once(wire_node):
    async with wire_node.client("udp") as c:
        session_id = await c.open_session()
        # a request in the session is executed at once: no 402 comes back
        request = new_request(
            OpCode.CREATE_HANDLE,
            bodies.CreateHandleRequest(f"{PREFIX}/in-session", (HandleValue(1, URL, b"u"),)),
            session_id=session_id,
        )
        (reply,) = await c._roundtrip(request)
        assert reply.header.response_code == RC.SUCCESS
        assert len(wire_node.handler.pending.book) == 0
        await c.close()  # terminates the session
    # the ended session is refused, as HSJ refuses an unknown one
    async with wire_node.client("tcp") as c:
        request.envelope = replace(request.envelope, request_id=7)
        (reply,) = await c._roundtrip(request)
        assert reply.header.response_code == RC.SESSION_TIMEOUT


async def test_a_session_setup_that_cannot_be_served_is_501(wire_node):
    """A DH key that is no key, and a mode HSJ does not know: SESSION_FAILED, HSJ's code
    (DH sessions themselves: tests/handle_peer)."""
    before = len(wire_node.handler.sessions.table)
    async with wire_node.client() as c:
        for mode, key in ((bodies.KEY_EXCHANGE_DH, b"k"), (7, b"")):
            body = bodies.SessionSetupRequest(mode, 0, f"0.NA/{PREFIX}", 300, key)
            (reply,) = await c._roundtrip(new_request(OpCode.SESSION_SETUP, body))
            assert reply.header.response_code == RC.SESSION_FAILED
    assert len(wire_node.handler.sessions.table) == before


async def test_session_for_another_identity_is_refused(wire_node):
    identity = await secret_identity(wire_node)
    async with wire_node.client("tcp", identity, secret=SECRET) as c:
        body = bodies.SessionSetupRequest(bodies.KEY_EXCHANGE_NONE, 0, f"0.NA/{PREFIX}", 300)
        (reply,) = await c.exchange(new_request(OpCode.SESSION_SETUP, body))
        assert reply.header.response_code == RC.SESSION_FAILED


# --------------------------------------------------------------------------- failures


async def expect_code(wn, client: AdminClient, code: RC, action) -> None:
    before = wn.dump()
    async with client as c:
        with pytest.raises(AdminError) as exc:
            await action(c)
    assert exc.value.code == code, exc.value
    assert wn.dump() == before  # nothing changed, row for row


def new_handle(c: AdminClient, name: str = "new"):
    return c.create_handle(f"{PREFIX}/{name}", [HandleValue(1, URL, b"https://x")])


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_wrong_public_key_fails_403(wire_node, protocol):
    client = wire_node.client(protocol, private_key=OTHER_RSA)
    await expect_code(wire_node, client, RC.AUTHENTICATION_FAILED, new_handle)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_wrong_secret_fails_403(wire_node, protocol):
    identity = await secret_identity(wire_node)
    client = wire_node.client(protocol, identity, secret=b"wrong")
    await expect_code(wire_node, client, RC.AUTHENTICATION_FAILED, new_handle)


async def test_unknown_admin_fails_403(wire_node):
    client = wire_node.client("udp", f"300:{PREFIX}/nobody", secret=SECRET)
    await expect_code(wire_node, client, RC.AUTHENTICATION_FAILED, new_handle)


async def test_key_on_a_prefix_not_homed_here_is_406(wire_node):
    client = wire_node.client("tcp", "300:0.NA/99.999", secret=SECRET)
    await expect_code(wire_node, client, RC.UNABLE_TO_AUTHENTICATE, new_handle)


async def test_missing_permission_is_400(wire_node):
    identity = await secret_identity(wire_node, perms=P.LIST_HANDLES)
    client = wire_node.client("tcp", identity, secret=SECRET)
    await expect_code(wire_node, client, RC.NOT_AUTHORIZED, new_handle)
    async with wire_node.client("tcp", identity, secret=SECRET) as c:
        assert f"{PREFIX}/demo-1" in await c.list_handles(PREFIX)


async def test_duplicate_index_prefix_not_homed_and_bad_admin_data(wire_node):
    dup = [HandleValue(1, "DESC", b"again")]
    await expect_code(
        wire_node,
        wire_node.client(),
        RC.VALUE_ALREADY_EXISTS,
        lambda c: c.add_values(f"{PREFIX}/demo-1", dup),
    )
    await expect_code(
        wire_node,
        wire_node.client("udp"),
        RC.SERVER_NOT_RESPONSIBLE,
        lambda c: c.create_handle("11.222/x", [HandleValue(1, URL, b"u")]),
    )
    bad_admin = [HandleValue(100, HS_ADMIN, b"\x00\x01")]
    await expect_code(
        wire_node,
        wire_node.client(),
        RC.INVALID_VALUE,
        lambda c: c.create_handle(f"{PREFIX}/bad-admin", bad_admin),
    )


async def challenged(c: AdminClient, request):
    (challenge,) = await c._roundtrip(request)
    assert challenge.header.response_code == RC.AUTHENTICATION_NEEDED
    assert challenge.envelope.session_id != 0
    return challenge


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_replayed_answer_is_405_and_runs_once(wire_node, protocol):
    async with wire_node.client(protocol) as c:
        request = new_request(
            OpCode.CREATE_HANDLE,
            bodies.CreateHandleRequest(f"{PREFIX}/once", (HandleValue(1, URL, b"u"),)),
        )
        answer = c.answer_for(request, await challenged(c, request))
        (first,) = await c._roundtrip(answer)
        assert first.header.response_code == RC.SUCCESS
        assert first.header.opcode == OpCode.CREATE_HANDLE  # the original opcode
        assert first.envelope.request_id == answer.envelope.request_id
        before = wire_node.dump()
        (again,) = await c._roundtrip(answer)
        assert again.header.response_code == RC.AUTHEN_TIMEOUT
        assert wire_node.dump() == before


async def test_tampered_request_digest_is_403(wire_node):
    async with wire_node.client() as c:
        request = new_request(OpCode.DELETE_HANDLE, bodies.DeleteHandleRequest(f"{PREFIX}/demo-2"))
        challenge = await challenged(c, request)
        before = wire_node.dump()
        tampered = bytes(b ^ 0xFF for b in challenge.body.digest.digest)
        answer = c.sign_challenge(request, challenge, challenge.body.nonce, tampered)
        (reply,) = await c._roundtrip(answer)
        assert reply.header.response_code == RC.AUTHENTICATION_FAILED
        assert reply.header.opcode == OpCode.DELETE_HANDLE
        assert wire_node.dump() == before


async def test_client_refuses_to_sign_a_challenge_for_another_request(wire_node):
    async with wire_node.client() as c:
        request = new_request(OpCode.DELETE_HANDLE, bodies.DeleteHandleRequest(f"{PREFIX}/demo-2"))
        challenge = await challenged(c, request)
        other = new_request(OpCode.DELETE_HANDLE, bodies.DeleteHandleRequest(f"{PREFIX}/demo-3"))
        with pytest.raises(AdminError):
            c.answer_for(other, challenge)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_expired_nonce_is_405(wire_node, protocol):
    async with wire_node.client(protocol) as c:
        request = new_request(OpCode.DELETE_HANDLE, bodies.DeleteHandleRequest(f"{PREFIX}/demo-2"))
        answer = c.answer_for(request, await challenged(c, request))
        before = wire_node.dump()
        wire_node.clock.advance(CHALLENGE_TTL + 1)
        (reply,) = await c._roundtrip(answer)
        assert reply.header.response_code == RC.AUTHEN_TIMEOUT
        assert wire_node.dump() == before


async def test_unknown_auth_type_is_404(wire_node):
    async with wire_node.client() as c:
        request = new_request(OpCode.DELETE_HANDLE, bodies.DeleteHandleRequest(f"{PREFIX}/demo-2"))
        challenge = await challenged(c, request)
        answer = c.answer_for(request, challenge)
        answer.body = replace(answer.body, auth_type="HS_PASSWORD")
        (reply,) = await c._roundtrip(answer)
        assert reply.header.response_code == RC.INVALID_CREDENTIAL


async def test_public_key_index_zero_means_any_key_of_the_handle(wire_node):
    async with wire_node.client("tcp", f"300:0.NA/{PREFIX}") as c:
        request = new_request(OpCode.DELETE_HANDLE, bodies.DeleteHandleRequest(f"{PREFIX}/demo-3"))
        challenge = await challenged(c, request)
        signature = make_public_key_answer(
            wire_node.admin_key, challenge.body.nonce, challenge.body.digest
        )
        answer = c.answer_for(request, challenge)
        answer.body = bodies.ChallengeAnswerRequest(HS_PUBKEY, f"0.NA/{PREFIX}", 0, signature)
        (reply,) = await c._roundtrip(answer)
        assert reply.header.response_code == RC.SUCCESS


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_restricted_values_need_authorized_read(wire_node, protocol):
    handle = f"{PREFIX}/demo-1"
    async with wire_node.client(protocol) as c:
        # without the PO flag, restricted values are challenged for (HSJ checkReadAccess)
        request = new_request(OpCode.RESOLUTION, bodies.ResolutionRequest(handle, (), ()))
        await challenged(c, request)
        # with PO, the public values come back at once
        public = new_request(OpCode.RESOLUTION, bodies.ResolutionRequest(handle, (), ()), OpFlag.PO)
        (reply,) = await c._roundtrip(public)
        assert 5 not in {v.index for v in reply.body.values}
        # the prefix operator holds AUTHORIZED_READ
        assert 5 in {v.index for v in await c.resolve(handle)}
    identity = await dsa_identity(wire_node)  # admin of the prefix, not of demo-1
    async with wire_node.client(protocol, identity, private_key=DSA_KEY) as c:
        with pytest.raises(AdminError) as exc:
            await c.resolve(handle)
        assert exc.value.code == RC.NOT_AUTHORIZED
        assert [v.index for v in await c.resolve(handle, indexes=(1,))] == [1]


async def test_long_listing_streams_in_pieces_of_50(wire_node):
    request = new_request(OpCode.LIST_HANDLES, bodies.ListHandlesRequest(f"0.NA/{PREFIX}"))
    names = tuple(f"{PREFIX}/h{i}" for i in range(120))
    response = make_response(request, bodies.ListHandlesResponse(names))
    parts = split_listing(response)
    assert [len(p.body.handles) for p in parts] == [50, 50, 20]
    assert [bool(p.header.flags & OpFlag.CN) for p in parts] == [True, True, False]
    async with wire_node.client("tcp") as c:  # the client reads every CN part
        for i in range(60):
            await c.create_handle(f"{PREFIX}/bulk-{i:02d}", [HandleValue(1, URL, b"u")])
        assert len(await c.list_handles(PREFIX)) == 63


async def test_answer_messages_streams_a_listing_for_tcp(wire_node):
    from idnode.wire.envelope import ENVELOPE_SIZE
    from idnode.wire.message import decode_message_bytes, encode_message

    async with wire_node.client("tcp") as c:
        for i in range(55):
            await c.create_handle(f"{PREFIX}/s-{i:02d}", [HandleValue(1, URL, b"u")])
        session_id = await c.open_session()
        request = new_request(
            OpCode.LIST_HANDLES,
            bodies.ListHandlesRequest(f"0.NA/{PREFIX}"),
            session_id=session_id,
        )
        raw = encode_message(request)
        envelope = decode_message_bytes(raw).envelope
        parts = await wire_node.handler.answer_messages(
            envelope, raw[ENVELOPE_SIZE:], peer="127.0.0.1:40000"
        )
        decoded = [decode_message_bytes(p) for p in parts]
        assert [len(m.body.handles) for m in decoded] == [50, 8]
        assert [bool(m.header.flags & OpFlag.CN) for m in decoded] == [True, False]
