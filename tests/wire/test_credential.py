"""The credential section (RFC 3652 2.2.4, as HSJ signMessage writes it) and signing input."""

from __future__ import annotations

import pytest
from hypothesis import given

from idnode.encoding import Reader, Writer
from idnode.errors import MalformedMessage
from idnode.model import ValueReference
from idnode.wire.credential import (
    Credential,
    read_credential_section,
    signing_input,
    write_credential_section,
)
from idnode.wire.envelope import Envelope
from tests.wire.msgwire_support import credentials, hx

HSJ_SIGNED = hx(
    """
    00                        # version 0
    00                        # reserved
    0000                      # options
    00000000                  # signer handle: empty (HSJ)
    00000005                  # signer index: HSJ's session counter
    00000009 48535f5349474e4544   # type "HS_SIGNED"
    00000012                  # SignedInfo length 18
    00000007 5348412d323536   #   digest algorithm "SHA-256"
    00000003 aabbcc           #   signed data
    """
)


def test_hsj_vector():
    assert HSJ_SIGNED[25:29] == hx("00000012")
    cred = Credential("HS_SIGNED", "SHA-256", hx("aabbcc"), ValueReference("", 5))
    assert Credential.decode(HSJ_SIGNED) == cred
    assert cred.encode() == HSJ_SIGNED


def test_section_with_length():
    w = Writer()
    write_credential_section(w, Credential.decode(HSJ_SIGNED))
    assert w.getvalue() == len(HSJ_SIGNED).to_bytes(4, "big") + HSJ_SIGNED
    assert read_credential_section(Reader(w.getvalue())) == Credential.decode(HSJ_SIGNED)
    w = Writer()
    write_credential_section(w, None)
    assert w.getvalue() == bytes(4)
    assert read_credential_section(Reader(bytes(4))) is None
    assert read_credential_section(Reader(b"")) is None


@pytest.mark.parametrize(
    "data",
    [
        HSJ_SIGNED[:-1],  # signature cut short
        HSJ_SIGNED + b"\x00",  # trailing byte
        HSJ_SIGNED[:25] + hx("00000013") + HSJ_SIGNED[29:],  # SignedInfo length too long
        HSJ_SIGNED[:25] + hx("00000011") + HSJ_SIGNED[29:],  # SignedInfo length too short
        b"\x00\x00",
    ],
)
def test_malformed(data):
    with pytest.raises(MalformedMessage):
        Credential.decode(data)


def test_section_length_beyond_message():
    with pytest.raises(MalformedMessage):
        read_credential_section(Reader(hx("000000ff 00")))
    with pytest.raises(MalformedMessage):
        read_credential_section(Reader(hx("0000")))


@given(credentials)
def test_round_trip(cred):
    assert Credential.decode(cred.encode()) == cred


HB = hx("00000001 00000001")  # stands for an encoded header + body


def env(minor: int, suggest_minor: int | None = None) -> Envelope:
    return Envelope(
        major=2,
        minor=minor,
        suggest_major=2,
        suggest_minor=minor if suggest_minor is None else suggest_minor,
        session_id=0x0A0B0C0D,
        request_id=0x1234,
    )


def test_signing_input_2_1_is_header_and_body():
    assert signing_input(env(1, 11), HB, 5) == HB
    assert signing_input(env(1), HB, 5, mac=True) == HB


def test_signing_input_2_8_and_later_include_suggested_version():
    expected = hx("02 0b 02 0b 0a0b0c0d 00001234 00000005") + HB
    assert signing_input(env(11), HB, 5) == expected
    assert signing_input(env(11), HB, 5, mac=True) == expected
    assert signing_input(env(10, 11), HB, 5)[:4] == hx("02 0a 02 0b")


def test_signing_input_2_7():
    expected = hx("02 07 0a0b0c0d 00001234 00000005") + HB
    assert signing_input(env(7), HB, 5) == expected
    assert signing_input(env(7), HB, 5, mac=True) == expected


def test_signing_input_2_6_reproduces_hsj_offset_bug():
    # session id at bytes 2-5, request id then counter both written at bytes 4-7
    expected = hx("02 06 0a0b 00000005 000000000000") + HB
    assert signing_input(env(6), HB, 5) == expected
    with pytest.raises(ValueError):
        signing_input(env(6), HB, 5, mac=True)


def test_signing_input_negative_counter():
    assert signing_input(env(11), HB, -1)[12:16] == hx("ffffffff")
