"""Write ``tests/fuzz/corpus/<target>/*.bin``: valid inputs made by our own encoders.

Why from encoders: the fuzzer mutates what is valid, so it reaches deep into each decoder
instead of failing on the first length field. Rerun after a wire change and check in the
result: ``.venv/bin/python -m tests.fuzz.make_corpus``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson

from idnode.auth.secrets import hash_secret
from idnode.config import Config
from idnode.crypto.keys import encode_private_key, encode_public_key, generate_key
from idnode.model import HandleValue, ValueReference
from idnode.service.site import build_site
from idnode.wire.admin import AdminRecord, encode_admin
from idnode.wire.envelope import ENVELOPE_SIZE, decode_envelope
from idnode.wire.framing import split_datagrams
from idnode.wire.json import value_to_json
from idnode.wire.types.handle_ref import encode_handle_ref
from idnode.wire.types.hs_seckey import encode_secret_key
from idnode.wire.values import encode_value
from idnode.wire.vlist import encode_vlist
from tests.fuzz.targets import JSON_TYPES, OPCODES
from tests.wire.test_fuzz import CORPUS as MESSAGES

HERE = Path(__file__).resolve().parent / "corpus"


def corpus() -> dict[str, list[bytes]]:
    keys = [generate_key("rsa", 1024), generate_key("dsa", 1024), generate_key("ed25519")]
    site = build_site(Config(directory=Path(".")), keys[0].public_key())
    admin = encode_admin(AdminRecord("0.NA/20.500", 200, 0x0FFF))
    vlist = encode_vlist([ValueReference("0.NA/20.500", 300), ValueReference("20.500/a", 1)])
    values = [
        HandleValue(1, "URL", b"https://example.com/a"),
        HandleValue(100, "HS_ADMIN", admin),
        HandleValue(200, "HS_VLIST", vlist),
        HandleValue(1, "HS_SITE", site),
        HandleValue(300, "HS_PUBKEY", encode_public_key(keys[0])),
        HandleValue(2, "HS_ALIAS", encode_handle_ref("20.500/b")),
    ]
    payloads = [m[ENVELOPE_SIZE:] for m in MESSAGES]
    udp = []
    for m in MESSAGES:
        env = decode_envelope(m[:ENVELOPE_SIZE])
        udp.append(b"\xfe\xfd".join(split_datagrams(env, m[ENVELOPE_SIZE:] + bytes(600))))
        udp.append(m)
    kinds = {t: i for i, t in enumerate(JSON_TYPES)}
    json = [bytes([kinds["URL"]]) + orjson.dumps(value_to_json(v)) for v in values]
    json.append(
        bytes([kinds["HS_ADMIN"]]) + b'{"format":"admin","value":{"handle":"0.NA/1",'
        b'"index":200,"permissions":"011111110011"}}'
    )
    json.append(
        bytes([kinds["HS_VLIST"]]) + b'{"format":"vlist","value":[{"index":300,"handle":"0.NA/1"}]}'
    )
    return {
        "message": list(MESSAGES),
        "payload": payloads,
        "envelope_header": list(MESSAGES),
        "body": [bytes([OPCODES.index(1) if 1 in OPCODES else 0, 1]) + p[24:] for p in payloads],
        "tcp": [bytes([7]) + b"".join(MESSAGES[:3]), bytes([63]) + MESSAGES[0]],
        "udp": udp,
        "value": [encode_value(v) for v in values],
        "handle_values": [
            admin,
            vlist,
            site,
            encode_handle_ref("20.500/x"),
            encode_secret_key(b"s3cret", hashed=True),
        ],
        "keys": [encode_public_key(k) for k in keys]
        + [encode_private_key(k) for k in keys]
        + [hash_secret("s3cret", iterations=10)],
        "json": json,
        "auth_headers": [
            b"Basic MzAwJTNBMC5OQS8yMC41MDA6czNjcmV0",
            b'Handle sessionId="abc", id="300%3A0.NA/20.500", type="HS_SECKEY", '
            b'cnonce="AAAA", alg="SHA256", signature="AAAA"',
        ],
    }


def main() -> None:
    for name, items in corpus().items():
        folder = HERE / name
        folder.mkdir(parents=True, exist_ok=True)
        for data in items:
            (folder / (hashlib.sha1(data).hexdigest()[:16] + ".bin")).write_bytes(data)
    print(f"corpus written to {HERE}")


if __name__ == "__main__":
    main()
