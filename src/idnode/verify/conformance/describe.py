"""One-line descriptions of messages and bytes, for failure messages a human can act on.

A failure says what was sent, what came back and what was expected; these functions turn
the first two into text without dumping whole records.
"""

from __future__ import annotations

from idnode.codes import OpCode, OpFlag, ResponseCode
from idnode.wire import bodies
from idnode.wire.message import Message

HEX_LIMIT = 48


def code_name(code: int) -> str:
    try:
        return f"{int(code)} {ResponseCode(code).name}"
    except ValueError:
        return str(int(code))


def opcode_name(opcode: int) -> str:
    try:
        return f"{int(opcode)} {OpCode(opcode).name}"
    except ValueError:
        return str(int(opcode))


def flag_names(flags: int) -> str:
    names = [f.name for f in OpFlag if f.name and int(flags) & int(f)]
    return "|".join(names) or "-"


def hexdump(data: bytes, limit: int = HEX_LIMIT) -> str:
    head = data[:limit].hex(" ")
    return f"{len(data)} bytes: {head}" + (" ..." if len(data) > limit else "")


def _values(values: tuple) -> str:
    return "[" + ", ".join(f"{v.index}:{v.type}" for v in values) + "]"


def body_summary(body: object) -> str:
    match body:
        case bodies.ResolutionRequest():
            extra = ""
            if body.indexes:
                extra += f" indexes={list(body.indexes)[:8]}"
            if body.types:
                extra += f" types={list(body.types)[:8]}"
            return f"handle={body.handle!r}{extra}"
        case bodies.ResolutionResponse():
            return f"handle={body.handle!r} values={_values(body.values)}"
        case bodies.ErrorResponse():
            return f"message={body.message[:120]!r}"
        case bodies.ChallengeResponse():
            return f"nonce={len(body.nonce)} bytes digest-alg={body.digest.algorithm}"
        case bodies.ChallengeAnswerRequest():
            return f"{body.auth_type} {body.key_index}:{body.key_handle}"
        case bodies.SiteInfoResponse():
            return f"HS_SITE {len(body.site)} bytes"
        case bodies.ListHandlesResponse():
            return f"{len(body.handles)} handles"
        case bodies.RawBody():
            return hexdump(body.data, 24)
    handle = getattr(body, "handle", None)
    return f"handle={handle!r}" if handle else type(body).__name__


def describe(msg: Message) -> str:
    """``RESOLUTION request id=7 v2.1 flags=PO handle='20.500/x'`` and the like."""
    env, hdr = msg.envelope, msg.header
    kind = "request" if hdr.response_code == 0 else f"code {code_name(hdr.response_code)}"
    return (
        f"{opcode_name(hdr.opcode)} {kind} id={env.request_id} v{env.major}.{env.minor} "
        f"flags={flag_names(hdr.flags)} {body_summary(msg.body)}"
    )
