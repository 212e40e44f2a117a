"""TLS for the node's listeners, and who a client certificate proves the caller to be.

Handle.Net defines no TLS for the binary protocol: HSJ speaks plain TCP on 2641 and protects
messages with RFC 3652 credentials (signed answers, session MACs). idnode offers TLS for the
binary protocol as an option on a port of its own (``[tls] tcp_port``), so plain HSJ clients
keep working on the usual port. The HTTP API gets HTTPS on ``[tls] https_port``.

Client certificates (HTTPS only): the handshake asks for one (``CERT_OPTIONAL``) when
``[tls] client_ca_file`` is set; OpenSSL refuses any certificate that does not chain to that
CA or is expired, before a byte of HTTP is read. HSJ instead accepts any certificate whose
key is the identity's (its ``X509HSTrustManager`` replaces chain validation); Python's
``ssl`` cannot ask for a certificate without validating its chain, so idnode requires both:
an operator-issued certificate *and* a key that matches (``certificate_caller``).

uvicorn does not put the peer certificate in the ASGI scope. ``tls_scope_protocol`` wraps
its HTTP protocol class so every request on a TLS connection carries the ASGI TLS extension
(``scope["extensions"]["tls"]``, with ``client_cert_chain`` as PEM strings): the one place
that knows about uvicorn, using only its documented ``http=`` protocol-class option and the
protocol's ``app`` attribute.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509

from idnode.auth.identity import Identity
from idnode.config import Config
from idnode.crypto.certs import certificate_identity, load_certificate, spki
from idnode.crypto.keys import decode_public_key, encode_public_key
from idnode.errors import IdnodeError
from idnode.model import HS_PUBKEY, HS_SITE, HandleValue
from idnode.names import PrefixSet
from idnode.store.base import Store
from idnode.wire.site import decode_site

log = logging.getLogger("idnode.tls")

MIN_VERSION = ssl.TLSVersion.TLSv1_2


class CertificateRefused(Exception):
    """A client certificate that passed the handshake but does not prove its identity."""


# --- contexts ---------------------------------------------------------------------------------


def server_context(
    cert_file: str | Path, key_file: str | Path, client_ca_file: str | Path | None = None
) -> ssl.SSLContext:
    """TLS 1.2+ server context; asks for (but does not demand) a client certificate when
    ``client_ca_file`` names the CA(s) that issue them."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = MIN_VERSION
    ctx.load_cert_chain(str(cert_file), str(key_file))
    if client_ca_file:
        ctx.load_verify_locations(str(client_ca_file))
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def client_context(
    ca_file: str | Path | None = None,
    cert_file: str | Path | None = None,
    key_file: str | Path | None = None,
) -> ssl.SSLContext:
    """A verifying client context: the server certificate must chain to ``ca_file`` (or the
    system store) and name the host; optionally presents a client certificate."""
    ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    ctx.minimum_version = MIN_VERSION
    if cert_file:
        ctx.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
    return ctx


# --- the peer certificate in the ASGI scope ---------------------------------------------------


def tls_extension(transport: Any) -> dict[str, Any] | None:
    """The ASGI TLS extension for a connection, or None for plain TCP."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
    version = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}.get(ssl_object.version() or "")
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": version,
        "cipher_suite": None,
    }


def tls_scope_protocol(base: type | None = None) -> type:
    """uvicorn's HTTP protocol class, adding the TLS extension to every request scope."""
    if base is None:
        from uvicorn.protocols.http.auto import AutoHTTPProtocol

        base = AutoHTTPProtocol

    class TLSScopeProtocol(base):  # type: ignore[misc, valid-type]
        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            tls = tls_extension(transport)
            if tls is None:
                return
            inner = self.app

            async def app(scope, receive, send):
                scope.setdefault("extensions", {})
                scope["extensions"] = {**scope["extensions"], "tls": tls}
                return await inner(scope, receive, send)

            self.app = app

    return TLSScopeProtocol


def peer_certificate(scope: dict[str, Any]) -> x509.Certificate | None:
    """The client's certificate from the ASGI TLS extension, if it sent one."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    if not chain:
        return None
    return load_certificate(chain[0].encode("ascii"))


# --- what the certificate proves -------------------------------------------------------------


async def certificate_caller(
    cert: x509.Certificate,
    store: Store,
    homed: PrefixSet,
    clock: Callable[[], float],
) -> Identity:
    """The identity a (chain-validated) client certificate proves.

    HSJ ``X509HSTrustManager.authenticate``: the subject names ``index:handle``; the value at
    that index (any HS_PUBKEY value for index 0) must hold the certificate's public key, or
    be an HS_SITE naming a server with that key. Raises ``CertificateRefused`` otherwise.
    """
    now = dt.datetime.fromtimestamp(clock(), dt.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise CertificateRefused("the client certificate is expired or not yet valid")
    try:
        named = certificate_identity(cert)
    except IdnodeError as exc:
        raise CertificateRefused(exc.message) from None
    if not homed.responsible_for(named.handle):
        raise CertificateRefused(f"{named}: this node does not home that identity's handle")
    values = await store.get_handle(named.handle) or []
    key = cert.public_key()
    for value in sorted(values, key=lambda v: v.index):
        if named.index and value.index != named.index:
            continue
        if not named.index and value.type != HS_PUBKEY:
            continue
        if _holds_key(value, key):
            return Identity(named.handle, value.index)
    raise CertificateRefused(f"{named}: the certificate key is not that identity's HS_PUBKEY")


def _holds_key(value: HandleValue, key: Any) -> bool:
    if value.type == HS_PUBKEY:
        return same_public_key(value.data, key)
    if value.type == HS_SITE:
        try:
            return any(same_public_key(s.public_key, key) for s in decode_site(value.data).servers)
        except IdnodeError:
            return False
    return False


def same_public_key(hs_pubkey: bytes, key: Any) -> bool:
    """Whether HS_PUBKEY data holds ``key``: compared as SubjectPublicKeyInfo, or, for key
    types the certificate library cannot express, as HS_PUBKEY bytes (HSJ compares bytes)."""
    try:
        return spki(decode_public_key(hs_pubkey)) == spki(key)
    except Exception:  # noqa: BLE001 - any undecodable or foreign key simply does not match
        pass
    try:
        return encode_public_key(key) == bytes(hs_pubkey)
    except Exception:  # noqa: BLE001
        return False


# --- the listeners ----------------------------------------------------------------------------


class TlsListeners:
    """The TLS TCP listener and the HTTPS server ``idnode serve`` runs beside the plain ones."""

    def __init__(self) -> None:
        self.tcp: asyncio.AbstractServer | None = None
        self.https: Any = None  # uvicorn.Server
        self.https_task: asyncio.Task | None = None
        self.banner: list[str] = []

    async def close(self) -> None:
        if self.tcp is not None:
            self.tcp.close()
        if self.https is not None:
            self.https.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.https_task, timeout=5)  # type: ignore[arg-type]
        if self.tcp is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.tcp.wait_closed(), timeout=2)


def https_config(http_config: Any, config: Config) -> Any:
    """The HTTP server's uvicorn settings (limits included) on the HTTPS port, with TLS."""
    from uvicorn.config import HTTP_PROTOCOLS
    from uvicorn.importer import import_from_string

    tls = config.tls
    clone = copy.copy(http_config)
    clone.loaded = False  # load() again: the TLS context and our protocol class
    base = http_config.http
    if isinstance(base, str):
        base = import_from_string(HTTP_PROTOCOLS[base])
    clone.http = tls_scope_protocol(base)
    clone.port = tls.https_port
    clone.ssl_certfile = str(config.path(tls.cert_file))
    clone.ssl_keyfile = str(config.path(tls.key_file))
    ca = config.path(tls.client_ca_file)
    clone.ssl_ca_certs = str(ca) if ca else None
    clone.ssl_cert_reqs = ssl.CERT_OPTIONAL if ca else ssl.CERT_NONE
    clone.ssl_ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM"  # TLS 1.2 AEAD; 1.3 apart
    return clone


async def start_tls(
    config: Config, handler: Any, http_config: Any, *, budget: Any = None
) -> TlsListeners:
    """Start what ``[tls]`` asks for; raises ``OSError``/``ssl.SSLError`` on a bad setup.
    ``budget``: the process's ``ConnectionBudget``, which the TLS listeners share (the HTTPS
    one through ``http_config``'s protocol class)."""
    import uvicorn

    from idnode.transport.tcp import serve_tcp

    out = TlsListeners()
    tls, host = config.tls, config.server.host
    if not (tls.tcp_port or tls.https_port):
        return out
    if not (tls.cert_file and tls.key_file):
        raise ssl.SSLError("[tls] needs cert_file and key_file to open a TLS port")
    if tls.tcp_port:
        ctx = server_context(config.path(tls.cert_file), config.path(tls.key_file))  # type: ignore[arg-type]
        out.tcp = await serve_tcp(handler, host, tls.tcp_port, ssl=ctx, budget=budget)
        out.banner.append(f"TCP+TLS {host}:{tls.tcp_port}")
    if tls.https_port:
        out.https = uvicorn.Server(https_config(http_config, config))
        out.https.install_signal_handlers = lambda: None
        out.https_task = asyncio.create_task(out.https.serve())
        while not out.https.started and not out.https_task.done():
            await asyncio.sleep(0.01)
        if out.https_task.done():
            await out.close()
            out.https_task.result()  # re-raise a bind or certificate failure
            raise OSError(f"HTTPS server on port {tls.https_port} did not start")
        out.banner.append(f"HTTPS https://{host}:{tls.https_port}/")
    return out
