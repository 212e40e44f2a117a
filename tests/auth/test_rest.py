"""REST session authentication: the ``Authorization: Handle`` answer to a session nonce."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from idnode.auth.acl import AccessControl
from idnode.auth.headers import parse_handle_authorization
from idnode.auth.identity import Identity
from idnode.auth.rest import (
    authenticate_basic,
    authenticate_rest_session,
    make_rest_session_authorization,
    rest_answer_bytes,
    verify_rest_session_answer,
)
from idnode.auth.secrets import hash_secret
from idnode.auth.sessions import SessionTable
from idnode.crypto.keys import encode_public_key, verify
from idnode.errors import AuthenticationFailed, MalformedAuthorization, SessionTimeout
from idnode.model import HS_PUBKEY, HS_SECKEY, HandleValue
from idnode.runtime import ManualClock
from idnode.store.sqlite import SQLiteStore

NONCE = bytes(range(16))
CNONCE = bytes(range(50, 66))
SECRET = b"rest secret"
SALT = bytes(range(16))
ALICE = Identity("0.NA/20.500", 300)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def seckey(data: bytes = SECRET) -> HandleValue:
    return HandleValue(300, HS_SECKEY, data)


def header_params(**fields: str) -> dict[str, str]:
    base = {"sessionId": "s", "id": "300:0.NA/20.500", "cnonce": b64(CNONCE)}
    return {**base, **fields}


# --------------------------------------------------------------------- hand-made headers


def test_seckey_sha256_by_hand():
    """What an HSJ-compatible client sends: the MAC without the code byte."""
    mac = hashlib.sha256(SECRET + NONCE + CNONCE + SECRET).digest()
    params = header_params(type=HS_SECKEY, alg="SHA256", signature=b64(mac))
    assert rest_answer_bytes(params) == (CNONCE, b"\x03" + mac)
    assert verify_rest_session_answer(params, NONCE, seckey())
    assert not verify_rest_session_answer(params, bytes(16), seckey())
    assert not verify_rest_session_answer(params, NONCE, seckey(b"other"))


def test_seckey_hmac_by_hand():
    mac = hmac.new(SECRET, NONCE + CNONCE, hashlib.sha256).digest()
    params = header_params(type=HS_SECKEY, alg="HMAC-SHA256", signature=b64(mac))
    assert verify_rest_session_answer(params, NONCE, seckey())


def test_seckey_pbkdf2_by_hand():
    derived = hashlib.pbkdf2_hmac("sha1", SECRET, SALT, 10000, 20)
    mac = hmac.new(derived, NONCE + CNONCE, hashlib.sha1).digest()
    params = header_params(
        type=HS_SECKEY,
        alg="PBKDF2-HMAC-SHA1",
        signature=b64(mac),
        salt=b64(SALT),
        iterations="10000",
        length="160",
    )
    assert verify_rest_session_answer(params, NONCE, seckey())
    params["iterations"] = "9999"
    assert not verify_rest_session_answer(params, NONCE, seckey())


def test_pubkey_signature_over_nonce_and_cnonce(rsa_key):
    header = make_rest_session_authorization(
        "s", ALICE, NONCE, private_key=rsa_key, alg="SHA256", cnonce=CNONCE
    )
    params = parse_handle_authorization(header)
    assert params["type"] == HS_PUBKEY and params["alg"] == "SHA256"
    signature = base64.b64decode(params["signature"])
    assert verify(rsa_key.public_key(), signature, NONCE + CNONCE, "SHA256")
    key = HandleValue(300, HS_PUBKEY, encode_public_key(rsa_key))
    assert verify_rest_session_answer(params, NONCE, key)
    assert not verify_rest_session_answer(params, bytes(16), key)


# --------------------------------------------------------------------- round trips


@pytest.mark.parametrize("alg", ["SHA1", "SHA256", "HMAC-SHA1", "HMAC-SHA256", "PBKDF2-HMAC-SHA1"])
def test_seckey_round_trip(alg, rand):
    header = make_rest_session_authorization(
        "tok", ALICE, NONCE, secret=SECRET, alg=alg, random_bytes=rand
    )
    params = parse_handle_authorization(header)
    assert params["sessionId"] == "tok" and params["id"] == "300:0.NA/20.500"
    assert header.startswith('Handle sessionId="tok", id="300%3A0.NA/20.500"')
    assert verify_rest_session_answer(params, NONCE, seckey())
    assert not verify_rest_session_answer(params, NONCE, seckey(b"wrong"))
    assert not verify_rest_session_answer(params, b"x" * 16, seckey())


@pytest.mark.parametrize("key_name", ["rsa_key", "dsa_key"])
@pytest.mark.parametrize("alg", ["SHA1", "SHA256"])
def test_pubkey_round_trip(request, key_name, alg):
    key = request.getfixturevalue(key_name)
    header = make_rest_session_authorization("tok", ALICE, NONCE, private_key=key, alg=alg)
    params = parse_handle_authorization(header)
    value = HandleValue(300, HS_PUBKEY, encode_public_key(key))
    assert verify_rest_session_answer(params, NONCE, value)
    assert not verify_rest_session_answer(params, bytes(16), value)


def test_hashed_store_with_matching_pbkdf2_parameters():
    stored = hash_secret(SECRET, iterations=2000, salt=SALT)
    header = make_rest_session_authorization(
        "tok", ALICE, NONCE, secret=SECRET, alg="PBKDF2-HMAC-SHA1", salt=SALT, iterations=2000
    )
    params = parse_handle_authorization(header)
    assert verify_rest_session_answer(params, NONCE, seckey(stored))
    hsj_like = make_rest_session_authorization("tok", ALICE, NONCE, secret=SECRET, alg="PBKDF2")
    assert not verify_rest_session_answer(
        parse_handle_authorization(hsj_like), NONCE, seckey(stored)
    )


def test_key_type_must_match(rsa_key):
    header = make_rest_session_authorization("tok", ALICE, NONCE, secret=SECRET, alg="SHA256")
    params = parse_handle_authorization(header)
    assert not verify_rest_session_answer(params, NONCE, HandleValue(300, HS_PUBKEY, b"k"))
    assert not verify_rest_session_answer(params, NONCE, None)


def test_client_needs_exactly_one_key(rsa_key):
    with pytest.raises(ValueError):
        make_rest_session_authorization("s", ALICE, NONCE)
    with pytest.raises(ValueError):
        make_rest_session_authorization("s", ALICE, NONCE, secret=b"x", private_key=rsa_key)


@pytest.mark.parametrize(
    "fields",
    [
        {"type": HS_SECKEY, "alg": "SHA256"},  # no signature
        {"type": "HS_CERT", "alg": "SHA256", "signature": "AAAA"},
        {"type": HS_SECKEY, "alg": "SHA512", "signature": "AAAA"},
        {"type": HS_SECKEY, "alg": "MD5-OLD", "signature": "AAAA"},
        {"type": HS_PUBKEY, "alg": "MD5", "signature": "AAAA"},
        {"type": HS_SECKEY, "alg": "SHA256", "signature": "!!!"},
        {"type": HS_SECKEY, "alg": "SHA256", "signature": "AAAA", "version": "1"},
        {
            "type": HS_SECKEY,
            "alg": "PBKDF2",
            "signature": "AAAA",
            "salt": "AAAA",
            "iterations": "ten",
            "length": "160",
        },
        {"type": HS_SECKEY, "alg": "SHA256", "signature": "AAAA", "cnonce": ""},
        {"type": HS_SECKEY, "alg": "SHA256", "signature": "AAAA", "cnonce": b64(bytes(2000))},
    ],
)
def test_malformed_answers(fields):
    with pytest.raises(MalformedAuthorization):
        verify_rest_session_answer(header_params(**fields), NONCE, seckey())


# --------------------------------------------------------------------- the whole flow


@pytest.fixture
async def setup(tmp_path, clock, rand, rsa_key):
    async with SQLiteStore(str(tmp_path / "n.db"), clock=ManualClock()) as store:
        await store.create_handle(
            "0.NA/20.500",
            [
                HandleValue(300, HS_SECKEY, SECRET),
                HandleValue(301, HS_PUBKEY, encode_public_key(rsa_key)),
            ],
        )
        yield SessionTable(clock, rand, timeout=60), AccessControl(store)


async def test_rest_flow_secret_key(setup, clock):
    table, acl = setup
    session = table.open_rest()
    header = make_rest_session_authorization(
        session.token, ALICE, session.nonce, secret=SECRET, alg="HMAC-SHA256"
    )
    params = parse_handle_authorization(header)
    assert await authenticate_rest_session(table, acl, params) == ALICE
    assert table.get(session.id) == ALICE
    assert table.by_token(session.token).identity == ALICE
    # the same header again is fine: the session token already carries the identity
    assert await authenticate_rest_session(table, acl, params) == ALICE
    # the answer is useless for another session (another nonce)
    other = table.open_rest()
    with pytest.raises(AuthenticationFailed):
        await authenticate_rest_session(table, acl, {**params, "sessionId": other.token})
    clock.now += 61
    with pytest.raises(SessionTimeout):
        await authenticate_rest_session(table, acl, params)


async def test_rest_flow_public_key(setup, rsa_key):
    table, acl = setup
    session = table.open_rest()
    who = Identity("0.NA/20.500", 301)
    header = make_rest_session_authorization(session.token, who, session.nonce, private_key=rsa_key)
    assert await authenticate_rest_session(table, acl, parse_handle_authorization(header)) == who


async def test_rest_flow_failures(setup):
    table, acl = setup
    session = table.open_rest()
    wrong = make_rest_session_authorization(session.token, ALICE, session.nonce, secret=b"no")
    with pytest.raises(AuthenticationFailed):
        await authenticate_rest_session(table, acl, parse_handle_authorization(wrong))
    assert table.get(session.id) is None
    # a key index that is not a key, or another identity once bound
    nokey = make_rest_session_authorization(
        session.token, Identity("0.NA/20.500", 999), session.nonce, secret=SECRET
    )
    with pytest.raises(AuthenticationFailed):
        await authenticate_rest_session(table, acl, parse_handle_authorization(nokey))
    good = make_rest_session_authorization(session.token, ALICE, session.nonce, secret=SECRET)
    await authenticate_rest_session(table, acl, parse_handle_authorization(good))
    with pytest.raises(AuthenticationFailed):
        await authenticate_rest_session(table, acl, parse_handle_authorization(nokey))
    with pytest.raises(SessionTimeout):
        await authenticate_rest_session(table, acl, {"sessionId": "nope"})
    with pytest.raises(MalformedAuthorization):
        await authenticate_rest_session(table, acl, {"sessionId": session.token, "id": "1:x"})


# --------------------------------------------------------------------- HTTP Basic


def basic(user: bytes, secret: bytes) -> str:
    return "Basic " + b64(user + b":" + secret)


async def test_basic_against_raw_and_hashed_keys(setup):
    _, acl = setup
    store = acl.store
    assert await authenticate_basic(acl, basic(b"300%3A0.NA%2F20.500", SECRET)) == ALICE
    await store.add_values(
        "0.NA/20.500",
        [
            HandleValue(302, HS_SECKEY, hash_secret(SECRET, iterations=100, salt=SALT)),
            HandleValue(303, HS_SECKEY, hash_secret(SECRET, "SHA1-HEX")),
        ],
    )
    for index in (b"302", b"303"):
        who = await authenticate_basic(acl, basic(index + b"%3A0.NA%2F20.500", SECRET))
        assert who.index == int(index)


@pytest.mark.parametrize(
    "user, secret",
    [
        (b"300%3A0.NA%2F20.500", b"wrong"),
        (b"301%3A0.NA%2F20.500", SECRET),  # an HS_PUBKEY, not a secret key
        (b"999%3A0.NA%2F20.500", SECRET),  # no such value
        (b"300%3A0.NA%2F20.999", SECRET),  # no such handle
    ],
)
async def test_basic_refused(setup, user, secret):
    _, acl = setup
    with pytest.raises(AuthenticationFailed):
        await authenticate_basic(acl, basic(user, secret))


async def test_basic_malformed(setup):
    _, acl = setup
    with pytest.raises(MalformedAuthorization):
        await authenticate_basic(acl, "Basic !!!")
