"""Authorization headers: Basic (pyhandle) and Handle (REST sessions)."""

from __future__ import annotations

import base64

import pytest

from idnode.auth.headers import (
    handle_identity,
    parse_basic_authorization,
    parse_handle_authorization,
)
from idnode.auth.identity import Identity
from idnode.errors import InvalidCredential, MalformedAuthorization


def basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


# --------------------------------------------------------------------- Basic


def test_basic_as_pyhandle_sends_it():
    ident, secret = parse_basic_authorization(basic(b"300%3AP%2FADMIN:s3cret"))
    assert ident == Identity("P/ADMIN", 300)
    assert secret == b"s3cret"


def test_basic_percent_encoded_colon_only():
    ident, secret = parse_basic_authorization(basic(b"300%3A0.NA/20.500:pw"))
    assert (ident, secret) == (Identity("0.NA/20.500", 300), b"pw")


def test_basic_unencoded_id():
    ident, secret = parse_basic_authorization(basic(b"300:P/ADMIN:pw"))
    assert (ident, secret) == (Identity("P/ADMIN", 300), b"pw")


def test_basic_secret_may_contain_colons_and_binary():
    ident, secret = parse_basic_authorization(basic(b"300%3AP%2FADMIN:a:b:\xff\x00"))
    assert ident.index == 300 and secret == b"a:b:\xff\x00"
    ident, secret = parse_basic_authorization(basic(b"7:P/X:a:b"))
    assert (ident, secret) == (Identity("P/X", 7), b"a:b")


def test_basic_plus_is_not_a_space():
    ident, _ = parse_basic_authorization(basic(b"300%3AP%2Fa+b:pw"))
    assert ident.handle == "P/a+b"


def test_basic_utf8_handle():
    ident, _ = parse_basic_authorization(basic(b"1%3AP%2F%E6%A0%87%E8%AF%86:pw"))
    assert ident.handle == "P/标识"


def test_basic_scheme_case_and_spacing():
    header = "  bAsIc   " + base64.b64encode(b"1%3AP%2FX:pw").decode() + "  "
    assert parse_basic_authorization(header)[0] == Identity("P/X", 1)


def test_basic_unpadded_base64():
    token = base64.b64encode(b"1%3AP%2FX:pw1").decode().rstrip("=")
    assert parse_basic_authorization("Basic " + token)[1] == b"pw1"


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Basic",
        "Bearer abc",
        "Basic a b",
        "Basic !!!!",
        basic(b"no-colon-at-all"),
        basic(b"P%2FADMIN:pw"),  # no index (HSJ would take index 0)
        basic(b"0%3AP%2FADMIN:pw"),  # index 0
        basic(b"x%3AP%2FADMIN:pw"),
        basic(b"300:P/ADMIN"),  # unencoded id, no secret separator
        basic(b"300%3A:pw"),  # empty handle
        basic(b"300%3AP%2F%FF:pw"),  # percent-encoding of invalid UTF-8
        basic(b"\xff\xfe:pw"),
        "Basic " + "A" * 20000,
    ],
)
def test_basic_malformed(header):
    with pytest.raises(MalformedAuthorization) as err:
        parse_basic_authorization(header)
    assert isinstance(err.value, InvalidCredential) and err.value.code == 404
    assert err.value.message


def test_basic_not_a_string():
    with pytest.raises(MalformedAuthorization):
        parse_basic_authorization(None)  # type: ignore[arg-type]


# --------------------------------------------------------------------- Handle


def test_handle_header_full():
    header = (
        'Handle sessionId="abc123", id="300%3AP/ADMIN", type="HS_PUBKEY", '
        'cnonce="Y25vbmNl", alg="SHA256", signature="c2ln=="'
    )
    assert parse_handle_authorization(header) == {
        "sessionId": "abc123",
        "id": "300:P/ADMIN",
        "type": "HS_PUBKEY",
        "cnonce": "Y25vbmNl",
        "alg": "SHA256",
        "signature": "c2ln==",
    }


def test_handle_header_tokens_case_and_whitespace():
    header = "handle   SESSIONID = tok ,Id=300%3AP%2FX,,  VERSION=0\t, clientcert=true  "
    assert parse_handle_authorization(header) == {
        "sessionId": "tok",
        "id": "300:P/X",
        "version": "0",
        "clientCert": "true",
    }


def test_handle_header_escapes_and_unknown_names():
    header = r'Handle foo="ignored", sessionId="a\"b\\c", renegotiate=false'
    assert parse_handle_authorization(header) == {"sessionId": 'a"b\\c', "renegotiate": "false"}


def test_only_id_is_percent_decoded():
    params = parse_handle_authorization('Handle id="1%3AP%2Fx", signature="a%2Bb"')
    assert params == {"id": "1:P/x", "signature": "a%2Bb"}


def test_handle_identity():
    params = parse_handle_authorization('Handle id="300%3AP/ADMIN"')
    assert handle_identity(params) == Identity("P/ADMIN", 300)
    with pytest.raises(MalformedAuthorization):
        handle_identity({})
    with pytest.raises(MalformedAuthorization):
        handle_identity({"id": "P/ADMIN"})


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Handle",
        "Handle   ",
        "Basic abc",
        "Handle sessionId",
        'Handle sessionId="abc" id="x"',  # missing comma
        'Handle sessionId="unterminated',
        "Handle sessionId=a b",
        "Handle =x",
        'Handle id="1", ID="2"',  # repeated
        'Handle id="1%3AP%2F%FF"',
        "Handle id=" + "a" * 20000,
    ],
)
def test_handle_header_malformed(header):
    with pytest.raises(MalformedAuthorization):
        parse_handle_authorization(header)
