"""Fuzz targets: one function per decoder, bytes in, and only ``IdnodeError`` may come out.

Why that oracle: every decoder faces bytes (or JSON, or a header) from the network, and the
transports turn ``IdnodeError`` subclasses into a response code or a JSON error. Anything
else -- IndexError, struct.error, UnicodeDecodeError, a ValueError from a library -- would
be a 500, a dropped connection or a logged traceback: a crash, for the fuzzer.

``TARGETS`` is the list the drivers (``driver.py``: Atheris for long runs, a seeded
mutation loop in CI) and the corpus generator (``make_corpus.py``) share.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from idnode.auth.headers import parse_basic_authorization, parse_handle_authorization
from idnode.auth.secrets import parse_hashed
from idnode.crypto import keys
from idnode.errors import IdnodeError
from idnode.wire import bodies
from idnode.wire.admin import admin_from_json, decode_admin
from idnode.wire.envelope import ENVELOPE_SIZE, Envelope, decode_envelope
from idnode.wire.framing import TcpFramer, UdpReassembler
from idnode.wire.header import HEADER_SIZE, decode_header
from idnode.wire.json import value_from_json
from idnode.wire.message import decode_message, decode_message_bytes
from idnode.wire.site import decode_site, site_from_json
from idnode.wire.types import from_json as value_data_from_json
from idnode.wire.types.handle_ref import decode_handle_ref
from idnode.wire.types.hs_seckey import decode_secret_key
from idnode.wire.values import decode_value
from idnode.wire.vlist import decode_vlist, vlist_from_json

Target = Callable[[bytes], object]
JSON_TYPES = (
    "URL",
    "EMAIL",
    "HS_ADMIN",
    "HS_VLIST",
    "HS_SITE",
    "HS_PUBKEY",
    "HS_SECKEY",
    "HS_ALIAS",
    "HS_SERV",
    "DESC",
    "10320/loc",
)
OPCODES = sorted({*bodies.REQUEST_BODIES, *bodies.SUCCESS_BODIES, 1, 2, 101, 105, 200, 400})
CODES = (0, 1, 2, 100, 200, 302, 303, 402)


def _message(data: bytes) -> None:
    decode_message_bytes(data)


def _payload(data: bytes) -> None:
    decode_message(Envelope(message_length=len(data)), data)


def _envelope_header(data: bytes) -> None:
    decode_envelope(data)
    decode_header(data[ENVELOPE_SIZE:] if len(data) >= ENVELOPE_SIZE + HEADER_SIZE else data)


def _body(data: bytes) -> None:
    """First two bytes choose the opcode and response code, the rest is the body."""
    if len(data) < 2:
        return
    opcode = OPCODES[data[0] % len(OPCODES)]
    code = CODES[data[1] % len(CODES)]
    bodies.decode_body(opcode, code, data[2:])


def _tcp(data: bytes) -> None:
    """A stream cut at every ``step`` bytes (the first byte); frames are decoded too."""
    if not data:
        return
    step, stream = data[0] % 64 + 1, data[1:]
    framer = TcpFramer(max_message=1 << 16)
    for i in range(0, len(stream), step):
        for env, payload in framer.feed(stream[i : i + step]):
            try:
                decode_message(env, payload)
            except IdnodeError:
                pass


def _udp(data: bytes) -> None:
    """Datagrams separated by the two bytes ``\\xfe\\xfd``, from up to 3 peers."""
    reasm = UdpReassembler(max_message=1 << 16, max_pending=4)
    for n, datagram in enumerate(data.split(b"\xfe\xfd")):
        try:
            frame = reasm.feed(datagram, n * 0.5, peer=n % 3)
        except IdnodeError:
            continue
        if frame is not None:
            try:
                decode_message(*frame)
            except IdnodeError:
                pass


def _values(data: bytes) -> None:
    decode_value(data)


def _handle_values(data: bytes) -> None:
    """The typed decoders of value data: HS_ADMIN, HS_VLIST, HS_SITE, HS_ALIAS, HS_SECKEY."""
    for decode in (decode_admin, decode_vlist, decode_site, decode_handle_ref, decode_secret_key):
        try:
            decode(data)
        except IdnodeError:
            pass


def _keys(data: bytes) -> None:
    """HS_PUBKEY and private key encodings, PEM, and hashed secrets."""
    for decode in (
        keys.decode_public_key,
        keys.decode_private_key,
        keys.public_key_from_pem,
        lambda d: keys.private_key_from_pem(d),
        parse_hashed,
    ):
        try:
            decode(data)
        except IdnodeError:
            pass


def _json(data: bytes) -> None:
    """JSON value parsing: the first byte picks a type for value_data_from_json."""
    if not data:
        return
    kind, text = JSON_TYPES[data[0] % len(JSON_TYPES)], data[1:]
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return
    for parse in (
        lambda o: value_from_json(o, timestamp=0),
        lambda o: value_data_from_json(kind, o),
        admin_from_json,
        vlist_from_json,
        site_from_json,
        lambda o: keys.public_key_from_jwk(o),
    ):
        try:
            parse(obj)
        except IdnodeError:
            pass


def _auth_headers(data: bytes) -> None:
    text = data.decode("latin-1")
    for parse in (parse_basic_authorization, parse_handle_authorization):
        try:
            parse(text)
        except IdnodeError:
            pass


TARGETS: dict[str, Target] = {
    "message": _message,
    "payload": _payload,
    "envelope_header": _envelope_header,
    "body": _body,
    "tcp": _tcp,
    "udp": _udp,
    "value": _values,
    "handle_values": _handle_values,
    "keys": _keys,
    "json": _json,
    "auth_headers": _auth_headers,
}


def run_one(name: str, data: bytes) -> None:
    """Run target ``name``; an ``IdnodeError`` is a refusal, anything else propagates."""
    try:
        TARGETS[name](data)
    except IdnodeError:
        pass
