"""The catalogue of deliberate breakages, each with the checks it must make fail.

Every check id in the suite's catalogue appears under at least one fault; the tests assert
that, so no check can pass vacuously.
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import replace

from idnode.codes import OpCode, OpFlag, Permission, ResponseCode
from idnode.model import HS_SITE, HandleValue
from idnode.verify.conformance.context import Fixtures
from idnode.wire import bodies
from idnode.wire.envelope import ENVELOPE_SIZE, decode_envelope, encode_envelope
from idnode.wire.message import Message, encode_message, make_error

from .faulty import DROP, Fault

ADMIN_OPS = (100, 101, 102, 103, 104)


def patch(raw: bytes, offset: int, fmt: str, value: int) -> bytes:
    data = bytearray(raw)
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


def env_change(**kw):
    def on_response(req, resp, raw, transport):
        env = replace(decode_envelope(raw[:ENVELOPE_SIZE]), **kw)
        return encode_envelope(env) + raw[ENVELOPE_SIZE:]

    return on_response


def msg_change(fn, transports=("udp", "tcp")):
    """A response hook that edits the decoded response (None from ``fn``: unchanged)."""

    def on_response(req, resp, raw, transport):
        if resp is None or transport not in transports:
            return raw
        new = fn(req, resp)
        return raw if new is None else encode_message(new)

    return on_response


def header(**kw):
    return msg_change(lambda req, m: replace(m, header=replace(m.header, **kw)))


def answer_error(req: Message, code: int, text: str = "broken on purpose") -> Message:
    return make_error(req.envelope, req.header, code, text)


def _values_edit(fn, transports=("udp", "tcp")):
    def edit(req, m):
        if not isinstance(m.body, bodies.ResolutionResponse):
            return None
        return replace(m, body=replace(m.body, values=tuple(fn(list(m.body.values)))))

    return msg_change(edit, transports)


def _req_edit(fn):
    def on_request(req, raw):
        if req is None:
            return raw
        out = fn(req)
        if out is None:
            return raw
        return (
            out
            if isinstance(out, Message) and out.header.response_code
            else (encode_message(out) if isinstance(out, Message) else out)
        )

    return on_request


def _site(version=1, proto=(2, 10), serial=1, hash_opt=2, servers=()) -> bytes:
    out = struct.pack(">HBBHBB", version, proto[0], proto[1], serial, 0x80, hash_opt)
    out += struct.pack(">I", 0) + struct.pack(">I", 0)  # hash filter, no attributes
    out += struct.pack(">I", len(servers))
    for sid, key, itfs in servers:
        out += struct.pack(">I", sid) + b"\0" * 12 + bytes([127, 0, 0, 1])
        out += struct.pack(">I", len(key)) + key + struct.pack(">I", len(itfs))
        for t, p, port in itfs:
            out += struct.pack(">BBI", t, p, port)
    return out


def _site_fault(data: bytes, transports=("udp", "tcp")):
    def edit(req, m):
        if isinstance(m.body, bodies.SiteInfoResponse):
            return replace(m, body=bodies.SiteInfoResponse(data))
        return None

    return msg_change(edit, transports)


def _json_edit(fn, only=lambda method, target: True):
    def http_response(method, target, status, headers, body):
        if not only(method, target):
            return status, headers, body
        try:
            doc = json.loads(body)
        except ValueError:
            return status, headers, body
        new = fn(doc)
        return status, headers, json.dumps(doc if new is None else new).encode()

    return http_response


def build(fx: Fixtures) -> list[tuple[Fault, set[str]]]:
    """Every fault, parametrised with the fixtures (a leak needs to know what to leak)."""
    restricted = HandleValue(
        5, "INTERNAL_NOTE", fx.restricted_data, Permission.ADMIN_READ | Permission.ADMIN_WRITE
    )
    now = int(time.time())

    def leak(req, m):
        if req is None or not isinstance(req.body, bodies.ResolutionRequest):
            return None
        if req.body.handle != fx.record:
            return None
        values = getattr(m.body, "values", ())
        body = bodies.ResolutionResponse(fx.record, tuple(values) + (restricted,))
        return replace(m, header=replace(m.header, response_code=1), body=body, request_digest=None)

    def accept_answers(req, m):
        if req is None or req.header.opcode != OpCode.CHALLENGE_RESPONSE:
            return None
        if m.header.response_code == 1:
            return None
        body = bodies.ResolutionResponse(fx.record, (restricted,))
        return Message(replace(m.header, opcode=1, response_code=1), body, m.envelope)

    def reject_answers(req, m):
        if (
            req is not None
            and req.header.opcode == OpCode.CHALLENGE_RESPONSE
            and m.header.response_code == 1
        ):
            return make_error(m.envelope, m.header, ResponseCode.AUTHENTICATION_FAILED, "no")
        return None

    def wrong_codes(req, m):
        code = m.header.response_code
        if code in (1, 2, 402):
            return None
        return make_error(m.envelope, m.header, ResponseCode.ERROR, "something")

    def silent_errors(req, resp, raw, transport):
        if resp is not None and resp.header.response_code not in (1, 402):
            return None
        if resp is None:
            return None
        return raw

    def no_challenge(req, m):
        if m.header.response_code == 402:
            return make_error(m.envelope, m.header, ResponseCode.ACCESS_DENIED, "go away")
        return None

    def fixed_nonce(req, m):
        if isinstance(m.body, bodies.ChallengeResponse):
            return replace(m, body=replace(m.body, nonce=b"0123456789abcdef"))
        return None

    def bad_digest(req, m):
        body = m.body
        if isinstance(body, bodies.ChallengeResponse):
            d = body.digest
            flipped = bodies.RequestDigest(d.algorithm, bytes([d.digest[0] ^ 1]) + d.digest[1:])
            return replace(m, body=replace(body, digest=flipped))
        if m.request_digest is not None:
            d = m.request_digest
            flipped = bodies.RequestDigest(d.algorithm, bytes([d.digest[0] ^ 1]) + d.digest[1:])
            return replace(m, request_digest=flipped)
        return None

    def ignore_permissions(req, m):
        if m.header.response_code in (400, 401) and m.header.opcode in ADMIN_OPS:
            return Message(replace(m.header, response_code=1), bodies.EmptyResponse(), m.envelope)
        return None

    def admin_noop(opcodes):
        def on_request(req, raw):
            if req is None or req.header.opcode not in opcodes:
                return raw
            from idnode.wire.message import make_response

            body = (
                bodies.CreateHandleResponse()
                if req.header.opcode == 100
                else bodies.EmptyResponse()
            )
            return make_response(req, body)

        return on_request

    def list_empty(req, m):
        if isinstance(m.body, bodies.ListHandlesResponse):
            return replace(m, body=bodies.ListHandlesResponse(()))
        return None

    def strip_filters(req):
        if isinstance(req.body, bodies.ResolutionRequest) and (req.body.indexes or req.body.types):
            return replace(
                req, body=bodies.ResolutionRequest(req.body.handle, (), ()), header_body=None
            )
        return None

    def case_sensitive(req, raw):
        if req is None or not isinstance(req.body, bodies.ResolutionRequest):
            return raw
        handle = req.body.handle
        if handle.startswith("0.na/"):
            return answer_error(req, ResponseCode.HANDLE_NOT_FOUND)
        suffix = handle.split("/", 1)[-1]
        if suffix != suffix.lower() and not handle.upper().startswith("0.NA/"):
            return raw + b""  # forwarded; the response hook drops a value
        return raw

    def case_drop(req, m):
        if req is None or not isinstance(req.body, bodies.ResolutionRequest):
            return None
        suffix = req.body.handle.split("/", 1)[-1]
        if suffix != suffix.lower() and isinstance(m.body, bodies.ResolutionResponse):
            return replace(m, body=replace(m.body, values=m.body.values[1:]))
        return None

    def lenient(req, raw):
        data = bytearray(raw)
        data[0], data[1] = 2, 1
        data[2] &= ~0xC0
        data[2] &= 0xFF
        return bytes(data)

    def reflect(req, raw):
        if req is not None and req.header.response_code != 0:
            return make_error(
                req.envelope, replace(req.header, response_code=0), ResponseCode.ERROR, "reflected"
            )
        return raw

    def refuse_rec(req, raw):
        if req is not None and req.header.flags & OpFlag.REC:
            return answer_error(req, ResponseCode.OPERATION_NOT_SUPPORTED)
        return raw

    def no_siteinfo(req, raw):
        if req is not None and req.header.opcode == OpCode.GET_SITEINFO:
            return answer_error(req, ResponseCode.OPERATION_NOT_SUPPORTED)
        return raw

    def bad_prefix_site(req, m):
        if isinstance(m.body, bodies.ResolutionResponse):
            vals = tuple(
                replace(v, data=b"junk") if v.type == HS_SITE else v for v in m.body.values
            )
            return replace(m, body=replace(m.body, values=vals))
        return None

    def tcp_site_differs(req, m):
        if isinstance(m.body, bodies.SiteInfoResponse):
            data = bytearray(m.body.site)
            data[5] ^= 0x7  # the serial number
            return replace(m, body=bodies.SiteInfoResponse(bytes(data)))
        return None

    # -- HTTP -----------------------------------------------------------------------------
    def http_status_200(method, target, status, headers, body):
        return (200 if 400 <= status < 500 else status), headers, body

    def http_text(method, target, status, headers, body):
        return status, {**headers, "content-type": "text/plain"}, body

    def http_strip_query(method, target, headers, body):
        return method, target.split("?", 1)[0], headers, body

    def http_leak(doc):
        if doc.get("handle") == fx.record and "values" in doc:
            doc["values"].append(
                {
                    "index": 5,
                    "type": "INTERNAL_NOTE",
                    "ttl": 86400,
                    "timestamp": "2026-01-01T00:00:00Z",
                    "data": {"format": "string", "value": "secret"},
                }
            )

    def http_write_noop(method, target, headers, body):
        if method in ("PUT", "DELETE") and target.startswith("/api/handles/"):
            handle = target.split("?", 1)[0][len("/api/handles/") :]
            doc = {"responseCode": 1, "handle": handle}
            return (
                (201 if method == "PUT" else 200),
                {"content-type": "application/json"},
                json.dumps(doc).encode(),
            )
        return None

    def drop_key(key, inner=False):
        def fn(doc):
            if inner:
                for v in doc.get("values", []):
                    v.pop(key, None)
            else:
                doc.pop(key, None)

        return fn

    def reverse(doc):
        if "values" in doc:
            doc["values"].reverse()

    # -- IDIS (checks_idis): servers that do not, or wrongly, speak the SDK's dialect -------
    def handle_net_only(req, raw):
        """A plain Handle.Net server: strict bodies, no 2001, no client-chosen sessions."""
        if req is None:
            return raw
        if isinstance(req.body, bodies.ResolutionRequest) and req.body.auth is not None:
            return answer_error(req, ResponseCode.PROTOCOL_ERROR, "4 unexpected trailing bytes")
        if req.header.opcode == OpCode.LOGIN_ID_SYSTEM:
            return answer_error(req, ResponseCode.OPERATION_NOT_SUPPORTED)
        if req.envelope.session_id and req.header.opcode != OpCode.CHALLENGE_RESPONSE:
            return answer_error(req, ResponseCode.SESSION_TIMEOUT, "unknown session")
        return raw

    def auth_string_trusted(req, m):
        """Takes a resolution's auth string for the identity it names."""
        body = getattr(req, "body", None)
        if isinstance(body, bodies.ResolutionRequest) and body.auth:
            return leak(req, m)
        return None

    def login_unchallenged(req, raw):
        if req is not None and req.header.opcode == OpCode.LOGIN_ID_SYSTEM:
            from idnode.wire.message import make_response

            return make_response(req, bodies.EmptyResponse())
        return raw

    def session_id_trusted(req, m):
        """Serves a client-chosen session id as logged in wherever it comes from."""
        if req is None or not req.envelope.session_id or m.header.response_code != 402:
            return None
        if req.header.opcode in (OpCode.CREATE_HANDLE, OpCode.DELETE_HANDLE):
            from idnode.wire.message import make_response

            return make_response(req, bodies.EmptyResponse())
        return None

    def login_accepts_anything(req, m):
        if (
            req is not None
            and req.header.opcode == OpCode.CHALLENGE_RESPONSE
            and m.header.opcode == OpCode.LOGIN_ID_SYSTEM
            and m.header.response_code != 1
        ):
            header = replace(m.header, response_code=1)
            return Message(header, bodies.EmptyResponse(), m.envelope)
        return None

    F = Fault
    return [
        (F("wrong_version", on_response=env_change(major=5, minor=0)), {"ENV-001", "ENV-002"}),
        (
            F("wrong_request_id", on_response=lambda q, r, raw, t: patch(raw, 8, ">I", 4242)),
            {
                "ENV-003",
                "ENV-004",
                "ENV-011",
                "AUTH-005",
                "ERR-001",
                "ERR-003",
                "ERR-004",
                "ERR-005",
            },
        ),
        (
            F(
                "bad_length",
                on_response=lambda q, r, raw, t: (
                    patch(raw, 16, ">I", len(raw) - 17) if t == "udp" else raw
                ),
            ),
            {"ENV-005"},
        ),
        (
            F(
                "bad_body_length",
                on_response=lambda q, r, raw, t: patch(
                    raw, 40, ">I", struct.unpack_from(">I", raw, 40)[0] + 2
                ),
            ),
            {"ENV-006"},
        ),
        (
            F("compressed", on_response=lambda q, r, raw, t: patch(raw, 2, ">B", raw[2] | 0x80)),
            {"ENV-007"},
        ),
        (F("session_junk", on_response=env_change(session_id=777)), {"ENV-008"}),
        (F("bad_sequence", on_response=env_change(sequence=3)), {"ENV-009"}),
        (
            F("drop_multipacket", on_request=lambda q, raw: DROP if len(raw) > 512 else raw),
            {"ENV-010"},
        ),
        (F("wrong_opcode", on_response=lambda q, r, raw, t: patch(raw, 20, ">I", 99)), {"HDR-001"}),
        (F("zero_code", on_response=lambda q, r, raw, t: patch(raw, 24, ">I", 0)), {"HDR-002"}),
        (
            F("strip_flags", on_response=lambda q, r, raw, t: patch(raw, 28, ">I", 0)),
            {"HDR-003", "HDR-004"},
        ),
        (F("bad_digest", on_response=msg_change(bad_digest)), {"HDR-004", "AUTH-002"}),
        (F("wrong_serial", on_response=header(site_serial=999)), {"HDR-005", "SITE-008"}),
        (F("expired", on_response=header(expiration=now - 3600)), {"REC-001"}),
        (F("recursion_zero", on_response=header(recursion_count=0)), {"REC-002"}),
        (F("refuse_recursive", on_request=refuse_rec), {"REC-003"}),
        (
            F(
                "future_timestamps",
                on_response=_values_edit(
                    lambda vs: [replace(v, timestamp=now + 30 * 86400) for v in vs]
                ),
            ),
            {"REC-004"},
        ),
        (
            F(
                "wrong_handle",
                on_response=msg_change(
                    lambda q, m: (
                        replace(m, body=replace(m.body, handle="0.NA/other"))
                        if isinstance(m.body, bodies.ResolutionResponse)
                        else None
                    )
                ),
            ),
            {"RES-001"},
        ),
        (F("tcp_drop_value", on_response=_values_edit(lambda vs: vs[:-1], ("tcp",))), {"RES-002"}),
        (
            F(
                "corrupt_data",
                on_response=_values_edit(
                    lambda vs: [
                        replace(v, data=bytes([v.data[0] ^ 1]) + v.data[1:]) if v.data else v
                        for v in vs
                    ]
                ),
            ),
            {"RES-004", "RES-018", "RES-019"},
        ),
        (
            F(
                "missing_values",
                on_response=_values_edit(lambda vs: [v for v in vs if v.index != 3]),
            ),
            {"RES-003"},
        ),
        (
            F("ignore_filters", on_request=_req_edit(strip_filters)),
            {"RES-005", "RES-006", "RES-007", "RES-008", "RES-011"},
        ),
        (
            F("leak_private", on_response=msg_change(leak)),
            {"RES-009", "RES-010", "RES-011", "RES-012"},
        ),
        (
            F("wrong_codes", on_response=msg_change(wrong_codes)),
            {
                "RES-008",
                "RES-013",
                "RES-014",
                "RES-015",
                "ERR-001",
                "ERR-002",
                "ERR-005",
                "ERR-009",
                "ADM-002",
                "ADM-004",
                "ADM-006",
                "ADM-008",
                "ADM-009",
                "ADM-012",
                "ADM-013",
                "ADM-014",
                "ADM-016",
                "ADM-017",
                "AUTH-006",
                "AUTH-007",
                "AUTH-008",
                "AUTH-009",
                "AUTH-010",
                "AUTH-011",
            },
        ),
        (
            F("case_sensitive", on_request=case_sensitive, on_response=msg_change(case_drop)),
            {"RES-016", "RES-017"},
        ),
        (F("truncate_udp", udp_out=lambda ds: ds[:1]), {"RES-018"}),
        (
            F("no_siteinfo", on_request=no_siteinfo),
            {
                "SITE-001",
                "SITE-002",
                "SITE-003",
                "SITE-004",
                "SITE-005",
                "SITE-006",
                "SITE-007",
                "SITE-008",
                "SITE-009",
                "HDR-005",
            },
        ),
        (F("garbage_site", on_response=_site_fault(b"\x00\x01junk")), {"SITE-002"}),
        (
            F("bad_site_header", on_response=_site_fault(_site(9, (7, 0), hash_opt=9))),
            {"SITE-003", "SITE-004"},
        ),
        (
            F(
                "bad_site_servers",
                on_response=_site_fault(_site(servers=[(1, b"\0\0\0\x03BAD", [(9, 9, 0)])])),
            ),
            {"SITE-005", "SITE-006", "SITE-007"},
        ),
        (F("tcp_site_differs", on_response=msg_change(tcp_site_differs, ("tcp",))), {"SITE-009"}),
        (F("bad_prefix_site", on_response=msg_change(bad_prefix_site)), {"SITE-010"}),
        (F("silent_errors", on_response=silent_errors), {"ERR-003", "ERR-004", "ERR-013"}),
        (F("lenient_requests", on_request=lenient), {"ERR-006", "ERR-007"}),
        (F("reflect", on_request=reflect), {"ERR-008"}),
        (F("crash_after_malformed", kills_on_malformed=True), {"ERR-010", "ERR-011", "ERR-012"}),
        (
            F("no_challenge", on_response=msg_change(no_challenge)),
            {f"AUTH-{i:03d}" for i in range(1, 12) if i != 5},
        ),
        (F("fixed_nonce", on_response=msg_change(fixed_nonce)), {"AUTH-003"}),
        (F("reject_answers", on_response=msg_change(reject_answers)), {"AUTH-004", "AUTH-007"}),
        (
            F("accept_answers", on_response=msg_change(accept_answers)),
            {"AUTH-006", "AUTH-007", "AUTH-008", "AUTH-009", "AUTH-010", "AUTH-011"},
        ),
        (
            F("admin_noop", on_request=admin_noop(ADMIN_OPS)),
            {"ADM-001", "ADM-003", "ADM-005", "ADM-007", "ADM-011", "ADM-015"},
        ),
        (F("delete_noop", on_request=admin_noop((101,))), {"ADM-008"}),
        (F("list_empty", on_response=msg_change(list_empty)), {"ADM-010"}),
        (
            F("ignore_permissions", on_response=msg_change(ignore_permissions)),
            {"ADM-012", "ADM-013", "ADM-014", "ADM-016"},
        ),
        (
            F("http_drop_handle", http_response=_json_edit(drop_key("handle"))),
            {"REST-001", "REST-004", "REST-015"},
        ),
        (
            F("http_drop_timestamp", http_response=_json_edit(drop_key("timestamp", True))),
            {"REST-002"},
        ),
        (F("http_reverse_values", http_response=_json_edit(reverse)), {"REST-003"}),
        (
            F("http_ignore_query", http_request=http_strip_query),
            {"REST-005", "REST-006", "REST-010", "REST-012", "REST-019"},
        ),
        (F("http_leak", http_response=_json_edit(http_leak)), {"REST-007", "REST-011"}),
        (
            F("http_wrong_status", http_response=http_status_200),
            {
                "REST-004",
                "REST-008",
                "REST-012",
                "REST-013",
                "REST-014",
                "REST-017",
                "REST-018",
                "REST-020",
            },
        ),
        (F("http_text_plain", http_response=http_text), {"REST-009"}),
        (F("http_write_noop", http_request=http_write_noop), {"REST-015", "REST-016"}),
        (F("slow", delay=0.5), {"TIME-001", "TIME-002", "TIME-003", "TIME-004"}),
        (F("drop_some", drop_every=7), {"TIME-005"}),
        (
            F("handle_net_only", on_request=handle_net_only),
            {f"IDIS-{i:03d}" for i in (1, 2, 3, 4, 10, 11, 12, 13, 14)},
        ),
        (F("auth_string_trusted", on_response=msg_change(auth_string_trusted)), {"IDIS-004"}),
        (
            F("login_unchallenged", on_request=login_unchallenged),
            {"IDIS-011", "IDIS-012", "IDIS-013", "IDIS-014"},
        ),
        (
            F("session_id_trusted", on_response=msg_change(session_id_trusted)),
            {"IDIS-013", "IDIS-014"},
        ),
        (
            F("login_accepts_anything", on_response=msg_change(login_accepts_anything)),
            {"IDIS-014"},
        ),
    ]


# -- issue 14: what the kit missed, and where it was stricter than the RFCs --------------------


def _site_edit(fn):
    """A get-siteinfo answer whose decoded HS_SITE ``fn`` rewrites."""
    from idnode.wire.site import decode_site, encode_site

    def edit(req, m):
        if isinstance(m.body, bodies.SiteInfoResponse):
            site = fn(decode_site(m.body.site))
            return replace(m, body=bodies.SiteInfoResponse(encode_site(site)))
        return None

    return msg_change(edit)


def _moved_interfaces(site):
    """Every advertised port moved to one nobody listens on (port 9: discard, closed here)."""
    servers = tuple(
        replace(s, interfaces=tuple(replace(i, port=9) for i in s.interfaces)) for s in site.servers
    )
    return replace(site, servers=servers)


def _later_serial(site):
    """The site reported live has moved on (a new serial); the stored record has not."""
    return replace(site, serial=site.serial + 7)


def _zero_expiration_on_failures(req, m):
    """HSJ's GOT_EXPIRED_MESSAGE: idnode's old answers stamped 0 on everything but success."""
    if m.header.response_code != ResponseCode.SUCCESS:
        return replace(m, header=replace(m.header, expiration=0))
    return None


def _no_dh_sessions(req, raw):
    """A server without keyed sessions (RFC 3652 allows 503): HSJ's admin tools fail on it."""
    if isinstance(getattr(req, "body", None), bodies.SessionSetupRequest):
        if req.body.mode == bodies.KEY_EXCHANGE_DH:
            return answer_error(req, ResponseCode.SESSION_NO_SUPPORT, "no DH sessions")
    return raw


def build_missed(fx: Fixtures) -> list[tuple[Fault, set[str]]]:
    """Faults the kit passed before issue 14 and must catch now."""
    F = Fault
    return [
        (
            F("zero_expiration_on_failures", on_response=msg_change(_zero_expiration_on_failures)),
            {"REC-001"},
        ),
        (F("stale_live_serial", on_response=_site_edit(_later_serial)), {"SITE-010"}),
        (F("dead_interfaces", on_response=_site_edit(_moved_interfaces)), {"SITE-005"}),
        (F("no_dh_sessions", on_request=_no_dh_sessions), {"SESS-001"}),
    ]


def _unknown_challenge_500(req, m):
    """HANDLE.NET's answer to a challenge answer naming no pending challenge: 500."""
    if (
        req is not None
        and req.header.opcode == OpCode.CHALLENGE_RESPONSE
        and m.header.response_code == ResponseCode.AUTHEN_TIMEOUT
    ):
        return replace(m, header=replace(m.header, response_code=ResponseCode.SESSION_TIMEOUT))
    return None


def _without_message(doc):
    if isinstance(doc, dict) and "responseCode" in doc and doc.get("responseCode") != 1:
        doc.pop("message", None)


def build_lenient(fx: Fixtures) -> list[tuple[Fault, set[str]]]:
    """Nodes that behave as the RFCs allow (and HANDLE.NET does) and that the kit failed
    before issue 14: every listed check must pass against them."""
    F = Fault
    return [
        (
            F("one_request_per_connection", one_request_per_connection=True),
            {"ENV-011", "AUTH-002", "AUTH-004", "AUTH-006", "AUTH-008", "SESS-001", "ADM-011"},
        ),
        (F("unknown_challenge_500", on_response=msg_change(_unknown_challenge_500)), {"AUTH-008"}),
        (
            F("rest_errors_without_message", http_response=_json_edit(_without_message)),
            {"REST-004", "REST-008"},
        ),
    ]
