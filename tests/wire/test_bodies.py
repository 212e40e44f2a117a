"""Bodies: hand-written byte vectors from RFC 3652 / HSJ layouts, dispatch, round trips."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings

from idnode.codes import OpCode, ResponseCode
from idnode.encoding import Reader, Writer
from idnode.errors import MalformedMessage
from idnode.model import HandleValue, ValueReference
from idnode.wire import bodies as b
from tests.wire.msgwire_support import URL_VALUE, body_cases, hx


def decode(opcode: int, code: int, data: bytes, digest=None):
    return b.decode_body(opcode, code, data, digest)


# --------------------------------------------------------------------------- vectors

RESOLUTION_REQUEST = hx(
    """
    0000000b 302e4e412f32302e353030   # handle: length 11, "0.NA/20.500"
    00000000                          # index list: 0 entries (= all)
    00000001                          # type list: 1 entry
    00000007 48535f53495445           #   length 7, "HS_SITE"
    """
)


def test_resolution_request_vector():
    body = b.ResolutionRequest("0.NA/20.500", (), ("HS_SITE",))
    assert b.encode_body(body) == RESOLUTION_REQUEST
    assert decode(OpCode.RESOLUTION, 0, RESOLUTION_REQUEST) == body


def test_resolution_request_with_indexes_vector():
    data = hx(
        """
        00000005 32302f6162       # "20/ab"
        00000002 00000001 00000064  # indexes 1, 100
        00000000                  # no types
        """
    )
    assert decode(1, 0, data) == b.ResolutionRequest("20/ab", (1, 100), ())
    assert b.encode_body(b.ResolutionRequest("20/ab", (1, 100))) == data


RESOLUTION_RESPONSE = hx(
    """
    00000005 32302f6162           # handle "20/ab"
    00000001                      # 1 value
    00000001                      #   index 1
    5f5e1000                      #   timestamp
    00                            #   TTL type relative
    00015180                      #   TTL 86400
    0e                            #   permissions: admin read|write, public read
    00000003 55524c               #   type "URL"
    0000000a 687474703a2f2f612e62 #   data "http://a.b"
    00000000                      #   no references
    """
)


def test_resolution_response_vector():
    body = b.ResolutionResponse("20/ab", (URL_VALUE,))
    assert b.encode_body(body) == RESOLUTION_RESPONSE
    assert decode(1, 1, RESOLUTION_RESPONSE) == body


def test_error_response_vectors():
    plain = hx("00000009 6e6f7420666f756e64")  # "not found", as HSJ writes it
    assert decode(1, 100, plain) == b.ErrorResponse("not found")
    assert b.encode_body(b.ErrorResponse("not found")) == plain
    with_indexes = plain + hx("00000002 00000001 00000007")  # RFC 3652 index list
    assert decode(102, 201, with_indexes) == b.ErrorResponse("not found", (1, 7))
    assert b.encode_body(b.ErrorResponse("not found", (1, 7))) == with_indexes
    assert decode(1, 2, b"") == b.ErrorResponse("")  # 2.0 servers may send no body
    assert decode(1, 2, hx("00000002 ff41")).message == "\ufffdA"  # bad UTF-8 kept readable
    with pytest.raises(MalformedMessage):
        decode(1, 2, plain + b"\x00\x00")  # a partial index count


def test_site_info_and_get_site_info():
    assert decode(2, 0, b"") == b.GetSiteInfoRequest(None)  # RFC: no body
    assert decode(2, 0, hx("00000001 2f")) == b.GetSiteInfoRequest("/")  # HSJ: BLANK_HANDLE
    assert b.encode_body(b.GetSiteInfoRequest()) == b""
    raw_site = bytes(range(40))
    assert decode(2, 1, raw_site) == b.SiteInfoResponse(raw_site)  # rest of body, no length
    assert b.encode_body(b.SiteInfoResponse(raw_site)) == raw_site


def test_create_handle_response_forms():
    assert decode(100, 1, b"") == b.CreateHandleResponse(None)
    minted = hx("00000008 32302f3132333435")  # "20/12345" returned after MINT
    assert decode(100, 1, minted) == b.CreateHandleResponse("20/12345")
    assert b.encode_body(b.CreateHandleResponse("20/12345")) == minted


def test_remove_value_request_vector():
    data = hx("00000005 32302f6162 00000002 00000064 ffffffff")
    assert decode(103, 0, data) == b.RemoveValueRequest("20/ab", (100, -1))
    assert b.encode_body(b.RemoveValueRequest("20/ab", (100, -1))) == data


def test_prefix_bodies_and_lists():
    na = hx("0000000b 302e4e412f32302e353030")  # "0.NA/20.500"
    assert decode(105, 0, na) == b.ListHandlesRequest("0.NA/20.500")
    assert decode(106, 0, na) == b.ListNAsRequest("0.NA/20.500")
    assert decode(302, 0, na) == b.ListNAsRequest("0.NA/20.500")  # HSJ list-homed opcode
    assert decode(300, 0, na) == b.HomeNARequest("0.NA/20.500")
    assert decode(301, 0, na) == b.UnhomeNARequest("0.NA/20.500")
    listing = hx("00000002 00000004 32302f61 00000004 32302f62")
    assert decode(105, 1, listing) == b.ListHandlesResponse(("20/a", "20/b"))
    assert decode(302, 1, listing) == b.ListNAsResponse(("20/a", "20/b"))
    assert b.encode_body(b.ListHandlesResponse(("20/a", "20/b"))) == listing


def test_challenge_answer_request_vector():
    data = hx(
        """
        00000009 48535f5345434b4559   # auth type "HS_SECKEY"
        0000000b 302e4e412f32302e353030  # key handle "0.NA/20.500"
        0000012c                      # key index 300
        00000004 deadbeef             # answer bytes
        """
    )
    body = b.ChallengeAnswerRequest("HS_SECKEY", "0.NA/20.500", 300, bytes.fromhex("deadbeef"))
    assert decode(200, 0, data) == body
    assert b.encode_body(body) == data


def test_challenge_response_body():
    nonce = bytes(range(16))
    digest = b.RequestDigest(2, bytes(20))
    data = hx("00000010") + nonce  # nonce only: the digest is in the RD slot
    assert b.encode_body(b.ChallengeResponse(nonce, digest)) == data
    assert decode(101, 402, data, digest) == b.ChallengeResponse(nonce, digest)
    old = data + hx("00000010") + bytes(16)  # protocol 2.0: old-format digest after nonce
    assert decode(101, 402, old) == b.ChallengeResponse(nonce, b.RequestDigest(0, bytes(16)))
    with pytest.raises(MalformedMessage, match="digest"):
        decode(101, 402, data)


def test_verify_response_request_both_digest_forms():
    head = hx("00000004 32302f61 0000012c 00000002 abcd")  # "20/a", 300, nonce abcd
    sig = hx("00000001 ee")
    hsj_form = head + hx("00000010") + bytes(range(16)) + sig  # old format: length + MD5
    body = b.VerifyResponseRequest(
        "20/a", 300, bytes.fromhex("abcd"), b.RequestDigest(0, bytes(range(16))), b"\xee"
    )
    assert decode(201, 0, hsj_form) == body
    assert b.encode_body(body) == hsj_form
    typed = head + hx("03") + bytes(32) + sig  # id byte 3 = SHA-256, then 32 bytes
    assert decode(201, 0, typed).digest == b.RequestDigest(3, bytes(32))
    assert decode(201, 1, b"\x01") == b.VerifyResponseResponse(True)
    assert decode(201, 1, b"\x00") == b.VerifyResponseResponse(False)


def test_session_setup_request_hsj_trailing_bytes():
    # HSJ sizes the 2-byte mode as 4, so its body ends in two zero bytes
    data = hx(
        """
        0001                      # mode 1: client cipher (public key follows)
        00015180                  # timeout 86400
        00000004 32302f61         # identity handle "20/a"
        0000012c                  # identity index 300
        00000003 010203           # public key
        0000                      # HSJ's stray padding
        """
    )
    body = b.SessionSetupRequest(1, 86400, "20/a", 300, public_key=b"\x01\x02\x03")
    assert decode(400, 0, data) == body
    assert b.encode_body(body) == data[:-2]
    hdl = hx("0003 00000000 00000000 00000000 00000004 32302f6b 00000002")
    assert decode(400, 0, hdl) == b.SessionSetupRequest(
        3, exchange_key_handle="20/k", exchange_key_index=2
    )
    resp = hx("0002 00000002 abcd 0000")
    assert decode(400, 1, resp) == b.SessionSetupResponse(2, bytes.fromhex("abcd"))


def test_service_referral_forms():
    only_handle = hx("00000006 302e4e412f32")  # "0.NA/2"
    assert decode(1, 302, only_handle) == b.ServiceReferralResponse("0.NA/2", None)
    with_values = only_handle + hx("00000000")
    assert decode(1, 303, with_values) == b.ServiceReferralResponse("0.NA/2", ())
    assert b.encode_body(b.ServiceReferralResponse("0.NA/2", ())) == with_values


def test_generic_bodies():
    assert decode(101, 1, b"") == b.EmptyResponse()
    assert decode(401, 0, b"") == b.SessionTerminateRequest(None)
    assert decode(402, 0, b"") == b.SessionExchangeKeyRequest(None)
    assert decode(1003, 0, b"xyz") == b.RawBody(b"xyz")  # HSJ OC_BACKUP_SERVER: not understood
    with pytest.raises(MalformedMessage, match="trailing"):
        decode(101, 1, b"\x00")


@pytest.mark.parametrize(
    ("opcode", "code", "cls"),
    [
        (OpCode.RESOLUTION, ResponseCode.RESERVED, b.ResolutionRequest),
        (OpCode.RESOLUTION, ResponseCode.SUCCESS, b.ResolutionResponse),
        (OpCode.RESOLUTION, ResponseCode.HANDLE_NOT_FOUND, b.ErrorResponse),
        (OpCode.RESOLUTION, ResponseCode.SERVICE_REFERRAL, b.ServiceReferralResponse),
        (OpCode.RESOLUTION, ResponseCode.PREFIX_REFERRAL, b.ServiceReferralResponse),
        (OpCode.CREATE_HANDLE, ResponseCode.AUTHENTICATION_NEEDED, b.ChallengeResponse),
        (OpCode.DELETE_HANDLE, ResponseCode.SUCCESS, b.EmptyResponse),
        (OpCode.CHALLENGE_RESPONSE, ResponseCode.RESERVED, b.ChallengeAnswerRequest),
        (OpCode.SESSION_SETUP, ResponseCode.SUCCESS, b.SessionSetupResponse),
        (OpCode.RESERVED, ResponseCode.PROTOCOL_ERROR, b.ErrorResponse),
        (OpCode.RESERVED, ResponseCode.RESERVED, b.RawBody),
        (1001, ResponseCode.SUCCESS, b.RetrieveTxnResponse),
        (1003, ResponseCode.SUCCESS, b.RawBody),
    ],
)
def test_dispatch(opcode, code, cls):
    assert b.body_type(opcode, code) is cls


@pytest.mark.parametrize(
    ("opcode", "data"),
    [
        (1, RESOLUTION_REQUEST + b"\x00"),  # trailing byte
        (1, RESOLUTION_REQUEST[:-1]),  # truncated type string
        (1, hx("00000002 ff fe 00000000 00000000")),  # handle not UTF-8
        (1, hx("00000000 ffffffff")),  # index count far beyond the body
        (101, b""),  # delete needs a handle
        (400, hx("0001 00000000")),  # session setup cut short
    ],
)
def test_malformed_bodies(opcode, data):
    with pytest.raises(MalformedMessage):
        decode(opcode, 0, data)


# --------------------------------------------------------------------------- request digest


def test_digest_ids_and_sizes():
    assert [int(a) for a in b.DigestAlgorithm] == [0, 1, 2, 3]
    assert b.DIGEST_SIZES == {1: 16, 2: 20, 3: 32}


@pytest.mark.parametrize(
    ("algorithm", "hash_name"), [(0, "md5"), (1, "md5"), (2, "sha1"), (3, "sha256")]
)
def test_digest_request(algorithm, hash_name):
    payload = bytes(range(60))
    d = b.digest_request(payload, algorithm)
    assert d == b.RequestDigest(algorithm, hashlib.new(hash_name, payload).digest())


def test_digest_request_known_answer():
    d = b.digest_request(b"abc", b.DigestAlgorithm.SHA256)
    assert d.digest.hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_digest_algorithm_for_version():
    assert b.digest_algorithm_for((2, 11)) == b.DigestAlgorithm.SHA256
    assert b.digest_algorithm_for((2, 7)) == b.DigestAlgorithm.SHA256
    assert b.digest_algorithm_for((2, 6)) == b.DigestAlgorithm.SHA1
    assert b.digest_algorithm_for((2, 1)) == b.DigestAlgorithm.SHA1
    assert b.digest_algorithm_for((2, 0)) == b.DigestAlgorithm.MD5_OLD_FORMAT


def test_digest_wire_forms():
    sha1 = hx("02") + bytes(range(20))
    assert b.read_request_digest(Reader(sha1)) == b.RequestDigest(2, bytes(range(20)))
    old = hx("00000003 aabbcc")
    assert b.read_request_digest(Reader(old)) == b.RequestDigest(0, hx("aabbcc"))
    for d, wire in [
        (b.RequestDigest(2, bytes(range(20))), sha1),
        (b.RequestDigest(0, hx("aabbcc")), old),
    ]:
        w = Writer()
        b.write_request_digest(w, d)
        assert w.getvalue() == wire
    with pytest.raises(MalformedMessage, match="unknown digest"):
        b.read_request_digest(Reader(hx("09") + bytes(32)))
    with pytest.raises(MalformedMessage):
        b.read_request_digest(Reader(hx("03") + bytes(31)))


def test_request_digest_validation():
    with pytest.raises(ValueError):
        b.RequestDigest(3, bytes(20))
    with pytest.raises(ValueError):
        b.RequestDigest(7, b"")
    with pytest.raises(ValueError):
        b.digest_request(b"", 9)


# --------------------------------------------------------------------------- properties


@settings(max_examples=400)
@given(body_cases)
def test_every_body_round_trips(case):
    opcode, code, body = case
    data = b.encode_body(body)
    digest = body.digest if isinstance(body, b.ChallengeResponse) else None
    assert b.decode_body(opcode, code, data, digest) == body
    assert isinstance(body, b.body_type(opcode, code) | b.RawBody)


def test_every_body_class_is_covered_by_the_strategies():
    from tests.wire.msgwire_support import BODY_CASES

    drawn = {b.body_type(op, code) for op, code, _ in BODY_CASES}
    declared = set(b.Body.__args__)
    assert declared == drawn


def test_reference_round_trip_in_value():
    v = HandleValue(2, "HS_VLIST", b"", references=(ValueReference("20/x", 300),))
    body = b.AddValueRequest("20/x", (v,))
    assert b.decode_body(102, 0, b.encode_body(body)) == body
