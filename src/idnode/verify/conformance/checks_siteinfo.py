"""Get-siteinfo (RFC 3652 §3.1) and the well-formedness of HS_SITE (RFC 3651 §3.2.2).

A client bootstraps from the site record: if it does not decode, or names no server that
answers queries, no client can find its way to the server, however well it resolves.
"""

from __future__ import annotations

from idnode.codes import OpCode, ResponseCode
from idnode.crypto.keys import decode_public_key
from idnode.model import HS_SITE
from idnode.verify.conformance.catalogue import SHOULD, check
from idnode.verify.conformance.context import CheckFailed, Context, Skip
from idnode.verify.conformance.probes import Probe, ProbeError
from idnode.wire import bodies
from idnode.wire.envelope import ENVELOPE_SIZE
from idnode.wire.message import encode_message
from idnode.wire.site import SP_HDL_HTTP, SP_HDL_TCP, SP_HDL_UDP, SiteInfo, decode_site

REF = "RFC 3652 §3.1"
SITE_REF = "RFC 3651 §3.2.2"
HDL_MIME_TYPE = "application/x-hdl-message"  # HANDLE.NET's HDL-over-HTTP
_HDL_HEADERS = {"Content-Type": HDL_MIME_TYPE, "Accept": HDL_MIME_TYPE}
_PROTOCOL_NAMES = {SP_HDL_UDP: "UDP", SP_HDL_TCP: "TCP", SP_HDL_HTTP: "HTTP"}


async def _site_udp(ctx: Context) -> tuple[SiteInfo, bytes]:
    reply = await ctx.probe.udp(ctx.request(OpCode.GET_SITEINFO, bodies.GetSiteInfoRequest()))
    msg = ctx.expect_code(reply, ResponseCode.SUCCESS)
    raw = msg.body.site  # type: ignore[union-attr]
    try:
        return decode_site(raw), raw
    except Exception as exc:  # any decoding error is the finding
        raise CheckFailed("an HS_SITE record that decodes", f"{exc}") from None


@check("SITE-001", "Get-siteinfo is answered with SUCCESS over UDP", REF, category="siteinfo")
async def siteinfo_udp(ctx: Context) -> None:
    reply = await ctx.probe.udp(ctx.request(OpCode.GET_SITEINFO, bodies.GetSiteInfoRequest()))
    msg = ctx.expect_code(reply, ResponseCode.SUCCESS)
    ctx.expect(msg.header.opcode == OpCode.GET_SITEINFO, "opcode 2", f"{int(msg.header.opcode)}")


@check("SITE-002", "The site record decodes as HS_SITE", SITE_REF, category="siteinfo")
async def site_decodes(ctx: Context) -> None:
    await _site_udp(ctx)


@check(
    "SITE-003",
    "Site data format version is 1 and protocol version is 2.x",
    SITE_REF,
    category="siteinfo",
)
async def site_versions(ctx: Context) -> None:
    site, _ = await _site_udp(ctx)
    ctx.expect(site.version == 1, "data format version 1", f"{site.version}")
    ctx.expect(
        site.protocol_version[0] == 2,
        "protocol version 2.x",
        "{}.{}".format(*site.protocol_version),
    )


@check(
    "SITE-004",
    "Hash option is 0, 1 or 2 and the site names at least one server",
    SITE_REF,
    category="siteinfo",
)
async def site_servers(ctx: Context) -> None:
    site, _ = await _site_udp(ctx)
    ctx.expect(site.hash_option in (0, 1, 2), "hash option 0, 1 or 2", f"{site.hash_option}")
    ctx.expect(site.servers, "at least one server", "no servers")


@check(
    "SITE-005",
    "Every server interface is well-formed and answers the binary protocol",
    SITE_REF,
    category="siteinfo",
)
async def site_interfaces(ctx: Context) -> None:
    """A client goes to the interfaces the site advertises, not to the port it was given:
    each one in service must answer a get-siteinfo in its protocol (HTTP: HDL-over-HTTP,
    as HSJ's ``sendHttpOrHttpsRequest`` posts it), or clients reach a dead port."""
    site, _ = await _site_udp(ctx)
    for server in site.servers:
        ctx.expect(server.interfaces, f"interfaces for server {server.server_id}", "none")
        for itf in server.interfaces:
            ctx.expect(
                itf.service_type in (0, 1, 2, 3)
                and itf.protocol in (0, 1, 2, 3)
                and 0 < itf.port < 65536,
                "type 0-3, protocol 0-3, port 1-65535",
                f"type {itf.service_type} protocol {itf.protocol} port {itf.port}",
            )
        for itf in server.interfaces:
            if itf.service_type != 0 and itf.protocol in (SP_HDL_UDP, SP_HDL_TCP, SP_HDL_HTTP):
                await _interface_answers(ctx, _host(ctx, server.connect_address), itf)


def _host(ctx: Context, address: object) -> str:
    """Where to reach an advertised address; an unspecified one means the target itself."""
    if getattr(address, "is_unspecified", False):
        return (ctx.probe.udp_addr or ctx.probe.tcp_addr or ("127.0.0.1", 0))[0]
    return str(address)


async def _interface_answers(ctx: Context, host: str, itf: object) -> None:
    port, protocol = itf.port, itf.protocol  # type: ignore[attr-defined]
    ask = ctx.request(OpCode.GET_SITEINFO, bodies.GetSiteInfoRequest())
    what = f"the advertised {_PROTOCOL_NAMES[protocol]} interface {host}:{port}"
    clock = ctx.probe.clock
    try:
        if protocol == SP_HDL_HTTP:
            probe = Probe(None, None, f"http://{host}:{port}", ctx.probe.timeout, clock=clock)
            probe.log = ctx.probe.log
            resp = await probe.http("POST", "/", headers=_HDL_HEADERS, content=encode_message(ask))
            ctx.expect(
                resp.status_code == 200
                and resp.headers.get("content-type", "").startswith(HDL_MIME_TYPE)
                and len(resp.content) >= ENVELOPE_SIZE,
                f"{what}: HTTP 200 with an {HDL_MIME_TYPE} answer",
                f"HTTP {resp.status_code} {resp.headers.get('content-type')!r}",
            )
            return
        addr = (host, port)
        probe = Probe(addr, addr, None, ctx.probe.timeout, clock=clock)
        probe.log = ctx.probe.log
        reply = await (probe.udp(ask) if protocol == SP_HDL_UDP else probe.tcp(ask))
    except ProbeError as exc:
        raise CheckFailed(f"{what} answers", f"{exc}") from None
    ctx.expect(
        reply.envelope.request_id == ask.envelope.request_id,
        f"{what}: an answer to request {ask.envelope.request_id}",
        f"request id {reply.envelope.request_id}",
    )


@check(
    "SITE-006",
    "The site lists a query interface on the port that was asked",
    SITE_REF,
    severity=SHOULD,
    category="siteinfo",
)
async def site_lists_us(ctx: Context) -> None:
    """Behind NAT or a proxy the ports may legitimately differ, hence "should"."""
    site, _ = await _site_udp(ctx)
    assert ctx.probe.udp_addr is not None
    port = ctx.probe.udp_addr[1]
    ports = [(i.protocol_name, i.port) for s in site.servers for i in s.interfaces if i.query]
    ctx.expect(
        any(
            p == port and i.protocol == SP_HDL_UDP
            for s in site.servers
            for i in s.interfaces
            for p in [i.port]
            if i.query
        ),
        f"a UDP query interface on port {port}",
        f"query interfaces {ports}",
    )


@check(
    "SITE-007",
    "Server public keys in the site record decode",
    SITE_REF,
    severity=SHOULD,
    category="siteinfo",
)
async def site_keys(ctx: Context) -> None:
    site, _ = await _site_udp(ctx)
    for server in site.servers:
        if server.public_key:
            try:
                decode_public_key(server.public_key)
            except Exception as exc:
                raise CheckFailed(
                    f"an HS_PUBKEY for server {server.server_id}", f"undecodable key ({exc})"
                ) from None


@check(
    "SITE-008",
    "The answer's SiteInfoSerial equals the record's serial number",
    REF,
    severity=SHOULD,
    category="siteinfo",
)
async def site_serial_header(ctx: Context) -> None:
    reply = await ctx.probe.udp(ctx.request(OpCode.GET_SITEINFO, bodies.GetSiteInfoRequest()))
    msg = ctx.expect_code(reply, ResponseCode.SUCCESS)
    site = decode_site(msg.body.site)  # type: ignore[union-attr]
    ctx.expect(
        msg.header.site_serial == site.serial,
        f"header serial {site.serial}",
        f"{msg.header.site_serial}",
    )


@check(
    "SITE-009",
    "Get-siteinfo over TCP returns the same record as over UDP",
    REF,
    category="siteinfo",
    needs=("udp", "tcp"),
)
async def site_tcp(ctx: Context) -> None:
    _, raw = await _site_udp(ctx)
    reply = await ctx.probe.tcp(ctx.request(OpCode.GET_SITEINFO, bodies.GetSiteInfoRequest()))
    msg = ctx.expect_code(reply, ResponseCode.SUCCESS)
    got = msg.body.site  # type: ignore[union-attr]
    ctx.expect(got == raw, f"the {len(raw)}-byte UDP record", f"{len(got)} different bytes")
    assert ctx.probe.tcp_addr is not None
    site = decode_site(got)
    ports = [i.port for s in site.servers for i in s.interfaces if i.protocol == SP_HDL_TCP]
    ctx.expect(ports, "a TCP interface in the site", "none")


@check(
    "SITE-010",
    "The prefix's stored HS_SITE decodes and describes the live site",
    SITE_REF,
    category="siteinfo",
)
async def prefix_site_values(ctx: Context) -> None:
    """Clients that resolve ``0.NA/<prefix>`` go where its HS_SITE says: a stored record
    naming other ports or an older serial than the site the server reports (get-siteinfo)
    sends them to listeners that are gone. One of the stored HS_SITE values must name this
    site's serial and interfaces."""
    prefix = ctx.need_prefix()
    reply = await ctx.probe.udp(ctx.resolution("0.NA/" + prefix, types=[HS_SITE]))
    msg = reply.decoded()
    if msg.header.response_code != ResponseCode.SUCCESS:
        raise Skip(f"0.NA/{prefix} has no public HS_SITE on this server")
    live, _ = await _site_udp(ctx)
    want = (live.serial, _interfaces(live))
    stored = []
    for v in msg.body.values:  # type: ignore[union-attr]
        try:
            site = decode_site(v.data)
        except Exception as exc:
            raise CheckFailed(f"HS_SITE value {v.index} that decodes", f"{exc}") from None
        ctx.expect(site.servers, f"servers in HS_SITE value {v.index}", "none")
        stored.append((site.serial, _interfaces(site)))
    ctx.expect(
        want in stored,
        f"an HS_SITE value with the live serial {live.serial} and interfaces {want[1]}",
        "; ".join(f"serial {s} interfaces {i}" for s, i in stored) or "none",
    )


def _interfaces(site: SiteInfo) -> list[tuple[int, int, int]]:
    """(protocol, port, type) of every interface of every server, sorted."""
    return sorted(
        (i.protocol, i.port, i.service_type) for server in site.servers for i in server.interfaces
    )
