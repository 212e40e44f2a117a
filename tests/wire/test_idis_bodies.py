"""The IDIS SDK's body layouts (Teleinfo id-pointer-sdk), byte for byte."""

from __future__ import annotations

import pytest

from idnode.codes import OpCode
from idnode.errors import MalformedMessage
from idnode.wire import bodies as b


def hx(text: str) -> bytes:
    return bytes.fromhex("".join(line.split("#")[0] for line in text.splitlines()))


# Encoder.encodeResolutionRequest: handle, indexes, types, then authBytes (always present)
SDK_RESOLUTION = hx(
    """
    0000000c 38382e313030302f61626364   # handle "88.1000/abcd"
    00000000                            # no indexes
    00000001 00000003 55524c            # one type, "URL"
    00000000                            # authBytes: empty
    """
)


def test_the_sdk_trailing_auth_field_is_read_and_kept():
    body = b.decode_body(OpCode.RESOLUTION, 0, SDK_RESOLUTION)
    assert body == b.ResolutionRequest("88.1000/abcd", (), ("URL",), b"")
    assert b.encode_body(body) == SDK_RESOLUTION
    with_auth = SDK_RESOLUTION[:-4] + hx("00000003 616263")
    assert b.decode_body(OpCode.RESOLUTION, 0, with_auth).auth == b"abc"


def test_handle_net_resolutions_have_no_auth_field():
    hsj = SDK_RESOLUTION[:-4]
    body = b.decode_body(OpCode.RESOLUTION, 0, hsj)
    assert body.auth is None and b.encode_body(body) == hsj


@pytest.mark.parametrize(
    "data",
    [
        SDK_RESOLUTION + b"\x00",  # a byte after the auth field
        SDK_RESOLUTION[:-4] + b"\x00\x00",  # half a length
        SDK_RESOLUTION[:-4] + hx("00000009 61"),  # auth longer than the body
    ],
)
def test_anything_else_after_the_types_is_still_refused(data):
    with pytest.raises(MalformedMessage):
        b.decode_body(OpCode.RESOLUTION, 0, data)


# MsgConverter.convertLoginIDSystemReqToBytes: the user's handle, then its index
SDK_LOGIN = hx("0000000e 302e4e412f38382e313030302e31 0000012c")  # "0.NA/88.1000.1", 300


def test_the_2001_login_body():
    body = b.decode_body(OpCode.LOGIN_ID_SYSTEM, 0, SDK_LOGIN)
    assert body == b.LoginIdSystemRequest("0.NA/88.1000.1", 300)
    assert b.encode_body(body) == SDK_LOGIN
    # the SDK's own server decodes it as a generic request (a handle only): accept that too
    assert b.decode_body(OpCode.LOGIN_ID_SYSTEM, 0, SDK_LOGIN[:-4]).index == 0
    # its success answer carries nothing the SDK reads
    assert b.body_type(OpCode.LOGIN_ID_SYSTEM, 1) is b.EmptyResponse
