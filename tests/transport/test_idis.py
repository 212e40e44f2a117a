"""The IDIS SDK against idnode, unchanged: resolution, the 2001 login, administration, quotas.

Driven by ``tests/idis_peer``, an encoder written from the SDK's public source (not from
idnode's ``wire`` codec), over real TCP on 127.0.0.1 to an in-process node on a manual clock.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from idnode.app import open_node
from idnode.auth.identity import Identity
from idnode.bootstrap import ADMIN_KEY_NAME
from idnode.client.admin import AdminClient, AdminError
from idnode.codes import AdminPermission as P
from idnode.codes import ResponseCode as RC
from idnode.config import ConfigError, load_config
from idnode.crypto.keys import encode_public_key, load_private_key_pem
from idnode.crypto.sm2 import SM2PrivateKey
from idnode.model import HS_ADMIN, HS_PUBKEY, URL, HandleValue
from idnode.runtime import ManualClock, Runtime, SystemRandom
from idnode.service.quotas import REGISTRATIONS, holder_key, used
from idnode.transport.idis import AUTO, IDIS, IdisDialect, StreamSession, check_profile
from idnode.transport.tcp import serve_tcp
from idnode.transport.udp import serve_udp
from idnode.transport.wire_handler import WireHandler
from idnode.wire.admin import AdminRecord, encode_admin
from idnode.wire.envelope import Envelope
from idnode.wire.message import make_error
from tests.conftest import free_port
from tests.idis_peer import codec
from tests.idis_peer.auth import PublicKeyAuth
from tests.idis_peer.codec import Value
from tests.idis_peer.peer import ANSWER_WAIT, LoginFailed, SdkConnection, next_session_id
from tests.transport.conftest import OPERATOR, PREFIX, WireNode

RECORD = f"{PREFIX}/idis-record"
RESTRICTED = 3
SM2_KEY = SM2PrivateKey.generate()
SM2_ADMIN = f"{PREFIX}/sm2-admin"
OTHER_SM2 = SM2PrivateKey.generate()


@pytest.fixture
def serve(node_template, tmp_path) -> Callable:
    """``serve(**env)``: the module's node, copied, with ``IDNODE_*`` overrides, on real
    UDP and TCP sockets; ``second=True`` also opens a second node on the same store (another
    worker) on its own port."""

    @asynccontextmanager
    async def run(**env: str) -> AsyncIterator[WireNode]:
        directory = tmp_path / "node"
        if not directory.exists():
            shutil.copytree(node_template, directory)
        clock = ManualClock()
        node = await open_node(
            load_config(directory, env=dict(env)), runtime=Runtime(clock, SystemRandom())
        )
        handler = WireHandler(node, challenge_ttl=30.0)
        port = free_port()
        udp, _ = await serve_udp(handler, "127.0.0.1", port)
        tcp = await serve_tcp(handler, "127.0.0.1", port)
        key = load_private_key_pem((directory / ADMIN_KEY_NAME).read_bytes())
        try:
            yield WireNode(node, handler, clock, "127.0.0.1", port, directory, key)
        finally:
            udp.close()
            tcp.close()
            await tcp.wait_closed()
            await node.store.close()

    return run


def operator_auth(wn: WireNode) -> PublicKeyAuth:
    index, _, handle = OPERATOR.partition(":")
    return PublicKeyAuth(handle, int(index), wn.admin_key)


def sm2_auth(key: SM2PrivateKey = SM2_KEY) -> PublicKeyAuth:
    return PublicKeyAuth(SM2_ADMIN, 300, key)


def admin_value(index: int, ref: str, perms: P) -> HandleValue:
    ref_index, _, ref_handle = ref.partition(":")
    return HandleValue(
        index, HS_ADMIN, encode_admin(AdminRecord(ref_handle, int(ref_index), perms))
    )


async def seed(wn: WireNode) -> None:
    """A record with a restricted value, and an SM2 identity allowed to create, delete and
    add prefixes under the node's prefix (it is no operator, so quotas apply to it)."""
    async with wn.client() as op:
        await op.create_handle(
            RECORD,
            [
                HandleValue(1, URL, b"https://example.cn/a"),
                HandleValue(2, "EMAIL", b"a@example.cn"),
                HandleValue(RESTRICTED, "SECRET", b"not for you", P(0)),  # no PUBLIC_READ
                admin_value(100, OPERATOR, P(0xFFF)),
            ],
        )
        await op.create_handle(
            SM2_ADMIN,
            [
                HandleValue(300, HS_PUBKEY, encode_public_key(SM2_KEY.public_key())),
                admin_value(100, OPERATOR, P(0xFFF)),
            ],
        )
        rights = P.ADD_HANDLE | P.DELETE_HANDLE | P.ADD_NA | P.DELETE_NA
        await op.add_values(f"0.NA/{PREFIX}", [admin_value(120, f"300:{SM2_ADMIN}", rights)])


def values_of(reply: codec.Reply) -> dict[int, bytes]:
    return {v.index: v.data for v in reply.values}


def url(n: int, admin: str = f"300:{SM2_ADMIN}") -> list[Value]:
    """A record as an SDK user writes one: a URL, and an HS_ADMIN naming its writer."""
    index, _, handle = admin.partition(":")
    return [
        Value(1, b"URL", f"https://example.cn/{n}".encode()),
        Value(100, b"HS_ADMIN", codec.admin_record(handle, int(index))),
    ]


# ------------------------------------------------------------------------ resolution (item 1)


async def test_resolution_with_the_sdk_trailing_auth_field(serve):
    async with serve() as wn:
        await seed(wn)
        async with await SdkConnection.open(wn.host, wn.port, session_id=0) as sdk:
            found = await sdk.resolve(RECORD)
            assert found.code == codec.RC_SUCCESS, found.message
            got = values_of(found)
            assert got[1] == b"https://example.cn/a" and got[2] == b"a@example.cn"
            assert RESTRICTED not in got  # the SDK sets PO: public values only
            assert found.handle == RECORD and found.expiration != 0

            typed = await sdk.resolve(RECORD, types=("URL",))
            assert typed.code == codec.RC_SUCCESS and values_of(typed) == {
                1: b"https://example.cn/a"
            }
            indexed = await sdk.resolve(RECORD, indexes=(2,))
            assert values_of(indexed) == {2: b"a@example.cn"}

            missing = await sdk.resolve(f"{PREFIX}/no-such-thing")
            assert missing.code == RC.HANDLE_NOT_FOUND
            elsewhere = await sdk.resolve("99.1000/x")
            assert elsewhere.code == RC.SERVER_NOT_RESPONSIBLE
            # every answer dates itself (issue 14, item 1), errors included
            assert missing.expiration != 0 and elsewhere.expiration != 0


async def sdk_datagram(wn: WireNode, request: codec.Request) -> codec.Reply:
    """One SDK request in one UDP datagram (``MessagePacketsManager``: a message that fits
    is one packet, the same envelope and bytes as on TCP), and its one-datagram answer."""
    loop = asyncio.get_running_loop()
    answers: asyncio.Queue[bytes] = asyncio.Queue()

    class _Peer(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            answers.put_nowait(data)

    transport, _ = await loop.create_datagram_endpoint(_Peer, remote_addr=(wn.host, wn.port))
    try:
        transport.sendto(request.encode())
        data = await asyncio.wait_for(answers.get(), ANSWER_WAIT)
    finally:
        transport.close()
    env, message = codec.split_envelope(data)
    return codec.decode_reply(env, message)


async def test_resolution_with_the_trailing_auth_field_over_udp(serve):
    """The SDK resolves over UDP too: same body, auth field and all (old code: 4, "4
    unexpected trailing bytes")."""
    async with serve() as wn:
        await seed(wn)

        def resolution(handle: str, types: tuple[str, ...] = ()) -> codec.Request:
            body = codec.resolution_body(handle, types)
            assert body.endswith(b"\x00\x00\x00\x00")  # the empty auth field is sent
            return codec.Request(codec.OC_RESOLUTION, body, request_id=7)

        found = await sdk_datagram(wn, resolution(RECORD))
        assert found.code == codec.RC_SUCCESS, found.message
        assert values_of(found)[1] == b"https://example.cn/a" and RESTRICTED not in values_of(found)
        typed = await sdk_datagram(wn, resolution(RECORD, ("EMAIL",)))
        assert typed.code == codec.RC_SUCCESS and values_of(typed) == {2: b"a@example.cn"}
        missing = await sdk_datagram(wn, resolution(f"{PREFIX}/no-such-thing"))
        assert missing.code == RC.HANDLE_NOT_FOUND and missing.expiration != 0
        elsewhere = await sdk_datagram(wn, resolution("99.1000/x"))
        assert elsewhere.code == RC.SERVER_NOT_RESPONSIBLE and elsewhere.expiration != 0


async def test_a_non_empty_auth_string_is_data_not_a_credential(serve):
    """``resolveHandle(handle, types, indexes, authString)``: the string (and the recursion-
    auth flag 0x4 the SDK sets with it) is for a server that recurses on the user's behalf;
    idnode proves nobody with it: the answer is the anonymous one."""
    async with serve() as wn:
        await seed(wn)
        async with await SdkConnection.open(wn.host, wn.port, session_id=0) as sdk:
            reply = await sdk.resolve(RECORD, auth_string=f"300:{SM2_ADMIN}")
            assert reply.code == codec.RC_SUCCESS, reply.message
            assert RESTRICTED not in values_of(reply)


# ------------------------------------------------------------------------ login (items 3, 4)


@pytest.mark.parametrize("kind", ["rsa", "sm2"])
async def test_login_then_create_and_delete_on_the_connection(serve, kind):
    async with serve() as wn:
        await seed(wn)
        auth = operator_auth(wn) if kind == "rsa" else sm2_auth()
        async with await SdkConnection.open(wn.host, wn.port) as sdk:
            assert sdk.session_id > 10000
            site = await sdk.get_site_info()
            assert site.code == codec.RC_SUCCESS and site.session_id == sdk.session_id
            done = await sdk.login(auth)
            assert (done.opcode, done.code) == (codec.OC_LOGIN_ID_SYSTEM, codec.RC_SUCCESS)
            assert done.session_id == sdk.session_id and done.expiration != 0

            handle = f"{PREFIX}/sdk-{kind}"
            created = await sdk.create(handle, url(1))
            assert created.code == codec.RC_SUCCESS, created.message
            found = await sdk.resolve(handle)
            assert values_of(found)[1] == b"https://example.cn/1"
            deleted = await sdk.delete(handle)
            assert deleted.code == codec.RC_SUCCESS, deleted.message
            assert (await sdk.resolve(handle)).code == RC.HANDLE_NOT_FOUND


async def test_the_login_challenge_is_what_the_sdk_checks(serve):
    """402 to the 2001 itself, SHA-256 digest of the login as sent, the client's session id."""
    async with serve() as wn:
        async with await SdkConnection.open(wn.host, wn.port) as sdk:
            await sdk.get_site_info()
            login = sdk.request(codec.OC_LOGIN_ID_SYSTEM, codec.login_body(*OPERATOR_PARTS))
            login.flags = codec.FLAG_RECU | codec.FLAG_RRDG
            challenge = await sdk.send(login)
            assert challenge.code == RC.AUTHENTICATION_NEEDED
            assert challenge.opcode == codec.OC_LOGIN_ID_SYSTEM
            assert challenge.session_id == sdk.session_id
            assert challenge.digest_type == codec.HASH_CODE_SHA256
            assert challenge.digest == codec.digest_of(login, codec.HASH_CODE_SHA256)
            assert len(challenge.nonce) >= 16 and challenge.expiration != 0


OPERATOR_PARTS = (OPERATOR.partition(":")[2], int(OPERATOR.partition(":")[0]))


async def test_a_login_is_bound_to_its_connection(serve):
    """Another connection, or a UDP datagram, with the same client-chosen session id is not
    logged in: the id means nothing off its connection."""
    async with serve() as wn:
        await seed(wn)
        sid = next_session_id()
        async with await SdkConnection.open(wn.host, wn.port, session_id=sid) as first:
            await first.login(sm2_auth())
            async with await SdkConnection.open(wn.host, wn.port, session_id=sid) as second:
                await second.get_site_info()
                refused = await second.create(f"{PREFIX}/intruder", url(2))
                assert refused.code == RC.AUTHENTICATION_NEEDED  # challenged, not served
            async with AdminClient(wn.host, wn.port, "udp") as udp:
                udp.session_id = sid  # as if the id were a session of the node's
                with pytest.raises(AdminError) as exc:
                    await udp.resolve(RECORD)
                udp.session_id = 0
            assert exc.value.code == RC.SESSION_TIMEOUT
            assert (await first.create(f"{PREFIX}/mine", url(3))).code == codec.RC_SUCCESS
        async with wn.client() as op:
            assert await op.resolve(f"{PREFIX}/mine")
            with pytest.raises(AdminError) as missing:
                await op.resolve(f"{PREFIX}/intruder")
            assert missing.value.code == RC.HANDLE_NOT_FOUND


async def test_a_wrong_key_fails_the_login_and_leaves_the_connection_anonymous(serve):
    async with serve() as wn:
        await seed(wn)
        async with await SdkConnection.open(wn.host, wn.port) as sdk:
            with pytest.raises(LoginFailed) as failed:
                await sdk.login(sm2_auth(OTHER_SM2))
            assert failed.value.reply.code == RC.AUTHENTICATION_FAILED
            assert failed.value.reply.opcode == codec.OC_LOGIN_ID_SYSTEM
            refused = await sdk.create(f"{PREFIX}/nope", url(4))
            assert refused.code == RC.AUTHENTICATION_NEEDED


async def test_handle_profile_keeps_handle_net_behaviour(serve):
    async with serve(IDNODE_PROTOCOL_PROFILE="handle") as wn:
        async with await SdkConnection.open(wn.host, wn.port) as sdk:
            assert (await sdk.get_site_info()).code == RC.SESSION_TIMEOUT  # as HSJ
            login = sdk.request(codec.OC_LOGIN_ID_SYSTEM, codec.login_body(*OPERATOR_PARTS))
            assert (await sdk.send(login)).code == RC.SESSION_TIMEOUT
            login.session_id = 0
            assert (await sdk.send(login)).code == RC.OPERATION_NOT_SUPPORTED


async def test_auto_profile_serves_both_kinds_of_client_at_once(serve):
    """An HSJ client's unknown session id is still 500 while an SDK connection is logged in."""
    async with serve() as wn:
        await seed(wn)
        async with await SdkConnection.open(wn.host, wn.port) as sdk:
            await sdk.login(operator_auth(wn))
            async with wn.client("tcp") as hsj:
                hsj.session_id = sdk.session_id  # an id the node never issued
                with pytest.raises(AdminError) as exc:
                    await hsj.resolve(RECORD)
                assert exc.value.code == RC.SESSION_TIMEOUT
                hsj.session_id = 0
                await hsj.create_handle(f"{PREFIX}/by-hsj", [HandleValue(1, URL, b"u")])
            assert (await sdk.delete(f"{PREFIX}/by-hsj")).code == codec.RC_SUCCESS


async def test_idis_profile_adopts_any_first_session_id(serve):
    async with serve(IDNODE_PROTOCOL_PROFILE="idis") as wn:
        await seed(wn)
        async with await SdkConnection.open(wn.host, wn.port) as sdk:
            found = await sdk.resolve(RECORD)  # no get-siteinfo first: still its session
            assert found.code == codec.RC_SUCCESS and found.session_id == sdk.session_id
            await sdk.login(sm2_auth())
            assert (await sdk.create(f"{PREFIX}/idis-profile", url(5))).code == codec.RC_SUCCESS


# ------------------------------------------------------------------------ encryption (item 5)


async def test_an_sm4_encrypted_connection(serve):
    """``TransportEncryptHandler``: a mode-3 setup before the login gets an SM4 key under
    SM2; get-siteinfo, the login and everything after go SM4-CBC encrypted both ways."""
    async with serve() as wn:
        await seed(wn)
        async with await SdkConnection.open(wn.host, wn.port) as sdk:
            setup = await sdk.encrypt_connection(sm2_auth())
            assert setup.code == codec.RC_SUCCESS, setup.message
            assert setup.session_id == sdk.session_id and not setup.encrypted
            assert setup.expiration != 0  # a session answer dates itself (item 2)
            done = await sdk.login(sm2_auth())
            assert done.encrypted and done.code == codec.RC_SUCCESS
            created = await sdk.create(f"{PREFIX}/sealed", url(6))
            assert created.encrypted and created.code == codec.RC_SUCCESS, created.message
            found = await sdk.resolve(f"{PREFIX}/sealed")
            assert found.encrypted and values_of(found)[1] == b"https://example.cn/6"
            assert (await sdk.delete(f"{PREFIX}/sealed")).code == codec.RC_SUCCESS


async def test_an_encrypted_connection_is_its_own(serve):
    """The session key is the connection's: another connection under the same session id
    cannot send under it."""
    async with serve() as wn:
        await seed(wn)
        sid = next_session_id()
        async with await SdkConnection.open(wn.host, wn.port, session_id=sid) as sdk:
            await sdk.encrypt_connection(sm2_auth())
            await sdk.login(sm2_auth())
            async with await SdkConnection.open(wn.host, wn.port, session_id=sid) as other:
                other.encrypt, other.decrypt = sdk.encrypt, sdk.decrypt  # a stolen key
                reply = await other.send_raw(
                    other.request(codec.OC_RESOLUTION, codec.resolution_body(RECORD)).encode(
                        other.encrypt
                    )
                )
                assert reply.code != codec.RC_SUCCESS


# ------------------------------------------------------------------------ quotas (item 6)


async def test_daily_request_limit_603_then_the_next_day(serve):
    async with serve(IDNODE_QUOTAS_DAILY_REQUESTS="3") as wn:
        await seed(wn)
        async with await SdkConnection.open(wn.host, wn.port) as sdk:
            await sdk.login(sm2_auth())
            assert (await sdk.create(f"{PREFIX}/q1", url(1))).code == codec.RC_SUCCESS
            assert (await sdk.resolve(f"{PREFIX}/q1")).code == codec.RC_SUCCESS  # counted
            assert (await sdk.create(f"{PREFIX}/q2", url(2))).code == codec.RC_SUCCESS
            refused = await sdk.create(f"{PREFIX}/q3", url(3))
            assert refused.code == RC.REQUEST_LIMIT_DAILY, refused.message
            assert refused.code in codec.SDK_KNOWN_CODES
            assert (await sdk.resolve(f"{PREFIX}/q1")).code == RC.REQUEST_LIMIT_DAILY
            wn.clock.advance(86400)
            assert (await sdk.create(f"{PREFIX}/q3", url(3))).code == codec.RC_SUCCESS
        async with wn.client() as op:  # the operator has no quota; q3 exists once
            assert await op.resolve(f"{PREFIX}/q3")


async def test_registration_limit_604_is_per_prefix(serve):
    async with serve(IDNODE_QUOTAS_REGISTRATIONS_PER_PREFIX="2") as wn:
        await seed(wn)
        async with await SdkConnection.open(wn.host, wn.port) as sdk:
            await sdk.login(sm2_auth())
            for n in (1, 2):
                assert (await sdk.create(f"{PREFIX}/r{n}", url(n))).code == codec.RC_SUCCESS
            before = wn.dump()
            refused = await sdk.create(f"{PREFIX}/r3", url(3))
            assert refused.code == RC.REGISTER_COUNT_LIMIT, refused.message
            assert wn.dump() == before  # nothing written, not even a count
            assert (await sdk.delete(f"{PREFIX}/r1")).code == codec.RC_SUCCESS
            again = await sdk.create(f"{PREFIX}/r1", url(1))  # deleting gives nothing back
            assert again.code == RC.REGISTER_COUNT_LIMIT
        holder = holder_key(Identity(SM2_ADMIN, 300))
        assert await used(wn.node.store, holder, REGISTRATIONS, PREFIX.lower()) == 2


async def test_prefix_limit_605(serve):
    async with serve(IDNODE_QUOTAS_PREFIXES_PER_ORGANISATION="1") as wn:
        await seed(wn)
        async with await SdkConnection.open(wn.host, wn.port) as sdk:
            await sdk.login(sm2_auth())
            admin = [Value(100, b"HS_ADMIN", codec.admin_record(SM2_ADMIN, 300))]
            first = await sdk.create(f"0.NA/{PREFIX}.1", admin)
            assert first.code == codec.RC_SUCCESS, first.message
            refused = await sdk.create(f"0.NA/{PREFIX}.2", admin)
            assert refused.code == RC.PREFIX_LIMIT, refused.message


async def test_workers_on_one_store_share_the_counts(serve):
    """Two nodes on the same store (two workers): the second sees what the first used."""
    async with serve(IDNODE_QUOTAS_DAILY_REQUESTS="2") as one:
        await seed(one)
        async with await SdkConnection.open(one.host, one.port) as sdk:
            await sdk.login(sm2_auth())
            assert (await sdk.create(f"{PREFIX}/w1", url(1))).code == codec.RC_SUCCESS
        async with serve(IDNODE_QUOTAS_DAILY_REQUESTS="2") as two:
            async with await SdkConnection.open(two.host, two.port) as sdk:
                await sdk.login(sm2_auth())
                assert (await sdk.create(f"{PREFIX}/w2", url(2))).code == codec.RC_SUCCESS
                refused = await sdk.create(f"{PREFIX}/w3", url(3))
                assert refused.code == RC.REQUEST_LIMIT_DAILY


async def test_a_handle_net_client_gets_a_code_it_knows(serve):
    """HSJ's decoder has no 603: a Handle.Net client is sent ERROR (2), the code in the text."""
    async with serve(IDNODE_QUOTAS_DAILY_REQUESTS="1") as wn:
        await seed(wn)
        identity = Identity(SM2_ADMIN, 300)
        async with AdminClient(wn.host, wn.port, "udp", identity, private_key=SM2_KEY) as hsj:
            await hsj.create_handle(f"{PREFIX}/h1", [HandleValue(1, URL, b"u")])
            with pytest.raises(AdminError) as exc:
                await hsj.create_handle(f"{PREFIX}/h2", [HandleValue(1, URL, b"u")])
        assert exc.value.code == RC.ERROR
        assert "603" in str(exc.value)


async def test_both_kinds_of_client_at_once_each_get_codes_they_know(serve):
    """One node, one identity over its quota: the logged-in SDK connection is told 603 while,
    at the same time, a Handle.Net client (whose decoder has no 603) is told ERROR (2)."""
    async with serve(IDNODE_QUOTAS_DAILY_REQUESTS="1") as wn:
        await seed(wn)
        identity = Identity(SM2_ADMIN, 300)
        async with await SdkConnection.open(wn.host, wn.port) as sdk:
            await sdk.login(sm2_auth())
            assert (await sdk.create(f"{PREFIX}/m1", url(1))).code == codec.RC_SUCCESS
            async with AdminClient(wn.host, wn.port, "tcp", identity, private_key=SM2_KEY) as hsj:
                with pytest.raises(AdminError) as exc:
                    await hsj.create_handle(f"{PREFIX}/m2", [HandleValue(1, URL, b"u")])
                refused = await sdk.create(f"{PREFIX}/m3", url(3))  # the SDK, meanwhile
                assert refused.code == RC.REQUEST_LIMIT_DAILY, refused.message
                with pytest.raises(AdminError) as again:
                    await hsj.create_handle(f"{PREFIX}/m4", [HandleValue(1, URL, b"u")])
        for err in (exc.value, again.value):
            assert err.code == RC.ERROR and "603" in str(err)


# ------------------------------------------------------------------------ codes and profiles


def test_codes_outside_the_clients_decoder_become_error():
    """The SDK (and HSJ) throw on a code their decoder does not list: send ERROR instead,
    the original code kept in the text."""
    dialect = IdisDialect(AUTO, ManualClock(), SystemRandom(), 30.0)
    quota = make_error(Envelope(), None, RC.REQUEST_LIMIT_DAILY, "used up")
    to_hsj = dialect.outgoing(quota, StreamSession())
    assert to_hsj.header.response_code == RC.ERROR and "603" in to_hsj.body.message
    idis = StreamSession(session_id=10001)
    assert dialect.outgoing(quota, idis) is quota
    forwarded = make_error(Envelope(), None, RC.FORWARDED, "elsewhere")
    assert dialect.outgoing(forwarded, idis).header.response_code == RC.ERROR
    everyone = IdisDialect(IDIS, ManualClock(), SystemRandom(), 30.0)
    assert everyone.outgoing(quota, None) is quota  # UDP too, under the idis profile


def test_an_unknown_profile_stops_the_node():
    with pytest.raises(ConfigError, match="profile"):
        check_profile("hsj")
