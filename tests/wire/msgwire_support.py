"""Shared test support for the message layer: byte-vector helpers, the reference request
vector, and Hypothesis strategies for envelopes, headers, every body and whole messages."""

from __future__ import annotations

from hypothesis import strategies as st

from idnode.codes import OpCode, OpFlag, Permission, TTLType
from idnode.model import HandleValue, ValueReference
from idnode.wire import bodies as b
from idnode.wire.credential import Credential
from idnode.wire.envelope import Envelope
from idnode.wire.header import Header


def hx(text: str) -> bytes:
    """Hex with spaces, newlines and ``#`` comments allowed."""
    lines = [line.split("#", 1)[0] for line in text.splitlines()]
    return bytes.fromhex("".join(lines))


URL_VALUE = HandleValue(
    index=1,
    type="URL",
    data=b"http://a.b",
    permissions=Permission.ADMIN_READ | Permission.ADMIN_WRITE | Permission.PUBLIC_READ,
    ttl_type=TTLType.RELATIVE,
    ttl=86400,
    timestamp=0x5F5E1000,
)

# A complete resolution request for 0.NA/20.500, type filter HS_SITE, as an HSJ 2.11
# client sends it (with RD so the answer carries a digest of it).
REQUEST = hx(
    """
    # ---- envelope (20 bytes)
    02 0a                     # protocol 2.10
    02 0b                     # flags 0 | suggested major 2, suggested minor 11
    00000000                  # session id
    00001234                  # request id
    00000000                  # sequence number
    0000003e                  # message length: 24 header + 34 body + 4 credential = 62
    # ---- header (24 bytes)
    00000001                  # opcode RESOLUTION
    00000000                  # response code 0 (request)
    19800000                  # REC | CA | PO | RD
    ffff                      # site info serial (-1)
    00                        # recursion count
    00                        # reserved
    5f5e1000                  # expiration
    00000022                  # body length 34
    # ---- body (34 bytes)
    0000000b 302e4e412f32302e353030   # handle "0.NA/20.500"
    00000000                          # no indexes
    00000001 00000007 48535f53495445  # types: ["HS_SITE"]
    # ---- credential
    00000000                  # credential length 0: unsigned
    """
)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
i32 = st.integers(-(1 << 31), (1 << 31) - 1)
i64 = st.integers(-(1 << 63), (1 << 63) - 1)
text = st.text(max_size=24)
blob = st.binary(max_size=48)
handles = st.text(min_size=1, max_size=24)
ints = st.lists(i32, max_size=5).map(tuple)
strings = st.lists(text, max_size=5).map(tuple)

references = st.builds(ValueReference, handle=text, index=i32)
values = st.builds(
    HandleValue,
    index=i32,
    type=text,
    data=blob,
    permissions=st.integers(0, 15).map(Permission),
    ttl_type=st.sampled_from(TTLType),
    ttl=i32,
    timestamp=u32,
    references=st.lists(references, max_size=2).map(tuple),
)
value_lists = st.lists(values, max_size=3).map(tuple)

digests = st.one_of(
    st.builds(b.RequestDigest, st.just(1), st.binary(min_size=16, max_size=16)),
    st.builds(b.RequestDigest, st.just(2), st.binary(min_size=20, max_size=20)),
    st.builds(b.RequestDigest, st.just(3), st.binary(min_size=32, max_size=32)),
    st.builds(b.RequestDigest, st.just(0), st.binary(max_size=32)),
)

envelopes = st.builds(
    Envelope,
    major=st.just(2),
    minor=u8,
    suggest_major=st.integers(1, 3),
    suggest_minor=u8,
    compressed=st.just(False),
    encrypted=st.just(False),
    truncated=st.booleans(),
    session_id=u32,
    request_id=u32,
    sequence=st.just(0),
    message_length=st.just(0),
)

credentials = st.builds(
    Credential,
    type=text,
    digest_algorithm=text,
    signature=blob,
    signer=references,
    version=u8,
    options=u16,
)

session_setups = st.one_of(
    st.builds(
        b.SessionSetupRequest,
        mode=st.sampled_from([b.KEY_EXCHANGE_CIPHER_CLIENT, b.KEY_EXCHANGE_DH]),
        timeout=u32,
        identity_handle=text,
        identity_index=i32,
        public_key=blob,
    ),
    st.builds(
        b.SessionSetupRequest,
        mode=st.just(b.KEY_EXCHANGE_CIPHER_HDL),
        timeout=u32,
        identity_handle=text,
        identity_index=i32,
        exchange_key_handle=text,
        exchange_key_index=i32,
    ),
    st.builds(
        b.SessionSetupRequest,
        mode=st.sampled_from([b.KEY_EXCHANGE_NONE, b.KEY_EXCHANGE_CIPHER_SERVER]),
        timeout=u32,
        identity_handle=text,
        identity_index=i32,
    ),
)

# (opcode, response code, body strategy): one entry per body class / dispatch route
BODY_CASES: list[tuple[int, int, st.SearchStrategy]] = [
    (OpCode.RESOLUTION, 0, st.builds(b.ResolutionRequest, handles, ints, strings)),
    # the IDIS SDK's resolution, with its trailing auth field, and its 2001 login
    (OpCode.RESOLUTION, 0, st.builds(b.ResolutionRequest, handles, ints, strings, blob)),
    (OpCode.LOGIN_ID_SYSTEM, 0, st.builds(b.LoginIdSystemRequest, handles, i32)),
    (OpCode.RESOLUTION, 1, st.builds(b.ResolutionResponse, handles, value_lists)),
    (OpCode.GET_SITEINFO, 0, st.builds(b.GetSiteInfoRequest, st.none() | text)),
    (OpCode.GET_SITEINFO, 1, st.builds(b.SiteInfoResponse, blob)),
    (OpCode.CREATE_HANDLE, 0, st.builds(b.CreateHandleRequest, handles, value_lists)),
    (OpCode.CREATE_HANDLE, 1, st.builds(b.CreateHandleResponse, st.none() | text)),
    (OpCode.DELETE_HANDLE, 0, st.builds(b.DeleteHandleRequest, handles)),
    (OpCode.ADD_VALUE, 0, st.builds(b.AddValueRequest, handles, value_lists)),
    (OpCode.REMOVE_VALUE, 0, st.builds(b.RemoveValueRequest, handles, ints)),
    (OpCode.MODIFY_VALUE, 0, st.builds(b.ModifyValueRequest, handles, value_lists)),
    (OpCode.LIST_HANDLES, 0, st.builds(b.ListHandlesRequest, handles)),
    (OpCode.LIST_HANDLES, 1, st.builds(b.ListHandlesResponse, strings)),
    (OpCode.LIST_NAS, 0, st.builds(b.ListNAsRequest, handles)),
    (b.OP_LIST_HOMED_NAS, 0, st.builds(b.ListNAsRequest, handles)),
    (b.OP_LIST_HOMED_NAS, 1, st.builds(b.ListNAsResponse, strings)),
    (OpCode.HOME_NA, 0, st.builds(b.HomeNARequest, handles)),
    (OpCode.UNHOME_NA, 0, st.builds(b.UnhomeNARequest, handles)),
    (OpCode.HOME_NA, 1, st.builds(b.EmptyResponse)),
    (OpCode.CHALLENGE_RESPONSE, 0, st.builds(b.ChallengeAnswerRequest, text, text, i32, blob)),
    (OpCode.DELETE_HANDLE, 402, st.builds(b.ChallengeResponse, blob, digests)),
    (
        OpCode.VERIFY_RESPONSE,
        0,
        st.builds(b.VerifyResponseRequest, text, i32, blob, digests, blob),
    ),
    (OpCode.VERIFY_RESPONSE, 1, st.builds(b.VerifyResponseResponse, st.booleans())),
    (OpCode.SESSION_SETUP, 0, session_setups),
    (OpCode.SESSION_SETUP, 1, st.builds(b.SessionSetupResponse, u16, blob)),
    (OpCode.SESSION_TERMINATE, 0, st.builds(b.SessionTerminateRequest, st.none() | text)),
    (OpCode.SESSION_EXCHANGEKEY, 0, st.builds(b.SessionExchangeKeyRequest, st.none() | blob)),
    (
        OpCode.RESOLUTION,
        302,
        st.builds(b.ServiceReferralResponse, handles, st.none() | value_lists),
    ),
    (
        OpCode.RESOLUTION,
        303,
        st.builds(b.ServiceReferralResponse, handles, st.none() | value_lists),
    ),
    (OpCode.RESOLUTION, 100, st.builds(b.ErrorResponse, text, ints)),
    (OpCode.RESERVED, 4, st.builds(b.ErrorResponse, text, ints)),
    # replication (HSJ net.handle.server.replication; docs/replication.md)
    (OpCode.GET_NEXT_TXN_ID, 0, st.builds(b.NextTxnIdRequest)),
    (OpCode.GET_NEXT_TXN_ID, 1, st.builds(b.NextTxnIdResponse, i64)),
    (
        OpCode.RETRIEVE_TXN_LOG,
        0,
        st.builds(b.RetrieveTxnRequest, i64, i64, u8, i32, i32, st.booleans()),
    ),
    (OpCode.RETRIEVE_TXN_LOG, 1, st.builds(b.RetrieveTxnResponse, st.booleans())),
    (
        OpCode.DUMP_HANDLES,
        0,
        st.builds(b.DumpHandlesRequest, u8, i32, i32)
        | st.builds(b.DumpHandlesRequest, u8, i32, i32, blob, i32),
    ),
    (OpCode.RETRIEVE_GOVERNANCE, 0, st.builds(b.RetrieveGovernanceRequest, i64)),
    (1003, 0, st.builds(b.RawBody, blob)),
    (1003, 1, st.builds(b.RawBody, blob)),
]

body_cases = st.sampled_from(BODY_CASES).flatmap(
    lambda case: st.tuples(st.just(case[0]), st.just(case[1]), case[2])
)

flags = st.integers(0, 0xFFFFFFFF).map(OpFlag)


@st.composite
def messages(draw):
    """A Message whose header matches its body (and a digest on some responses)."""
    from idnode.wire.message import Message

    opcode, code, body = draw(body_cases)
    header = Header(
        opcode=opcode,
        response_code=code,
        flags=draw(flags),
        site_serial=draw(u16),
        recursion_count=draw(u8),
        expiration=draw(u32),
    )
    digest = None
    if isinstance(body, b.ChallengeResponse):
        digest = body.digest
    elif code != 0 and draw(st.booleans()):
        digest = draw(digests)
    return Message(
        header=header,
        body=body,
        envelope=draw(envelopes),
        credential=draw(st.none() | credentials),
        request_digest=digest,
    )
