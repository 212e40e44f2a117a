"""``idnode init``: a new node directory with its configuration, keys, store and prefixes.

The prefixes and their prefix handles are written through the node's write service as its
operator, like any later write, so the history and the audit chain start with them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from idnode.codes import AdminPermission, Permission
from idnode.config import CONFIG_NAME, Config, NodeSection, ServerSection, render_config
from idnode.crypto.keys import (
    encode_public_key,
    generate_key,
    save_private_key_pem,
)
from idnode.model import (
    DEFAULT_PERMISSIONS,
    DESC,
    EMAIL,
    HS_ADMIN,
    HS_PUBKEY,
    HS_SITE,
    NA_PREFIX,
    URL,
    HandleValue,
)
from idnode.runtime import Runtime, utc
from idnode.service.node import ADMIN_INDEX
from idnode.service.site import build_site
from idnode.wire.admin import AdminRecord, encode_admin

ADMIN_KEY_NAME = "admin_privkey.pem"
STORAGE_KEY_NAME = "storage_keys.json"  # SM4 keys for values without PUBLIC_READ
ALL_ADMIN_PERMISSIONS = AdminPermission(0xFFF)


class InitError(Exception):
    """The node directory cannot be initialised as asked."""


def prefix_handle_values(
    prefix: str, site: bytes, admin_public_key: bytes, now: int
) -> list[HandleValue]:
    """The ``0.NA/<prefix>`` record: where the prefix is served and who administers it."""
    na_handle = NA_PREFIX + prefix
    admin = AdminRecord(na_handle, ADMIN_INDEX, ALL_ADMIN_PERMISSIONS)
    return [
        HandleValue(1, HS_SITE, site, timestamp=now),
        HandleValue(100, HS_ADMIN, encode_admin(admin), timestamp=now),
        HandleValue(ADMIN_INDEX, HS_PUBKEY, admin_public_key, timestamp=now),
    ]


def demo_records(prefix: str, now: int) -> list[tuple[str, list[HandleValue]]]:
    """A few identifiers to resolve right after ``make serve``."""
    admin = encode_admin(AdminRecord(NA_PREFIX + prefix, ADMIN_INDEX, ALL_ADMIN_PERMISSIONS))
    private = Permission.ADMIN_READ | Permission.ADMIN_WRITE

    def record(suffix: str, url: str, desc: str) -> tuple[str, list[HandleValue]]:
        return (
            f"{prefix}/{suffix}",
            [
                HandleValue(1, URL, url.encode(), timestamp=now),
                HandleValue(2, DESC, desc.encode(), timestamp=now),
                HandleValue(3, EMAIL, b"operator@example.com", timestamp=now),
                HandleValue(5, "INTERNAL_NOTE", b"supplier contract 42", private, timestamp=now),
                HandleValue(100, HS_ADMIN, admin, DEFAULT_PERMISSIONS, timestamp=now),
            ],
        )

    return [
        record("demo-1", "https://example.com/products/pump-7", "Centrifugal pump, model P7"),
        record("demo-2", "https://example.com/products/valve-3", "Ball valve, batch 2026-11"),
        record("demo-3", "https://example.com/parts/bearing-608", "Bearing 608-2RS, serial 1001"),
    ]


async def init_node(
    directory: str | Path,
    *,
    name: str,
    prefixes: Iterable[str],
    host: str = "127.0.0.1",
    udp_port: int = 2641,
    tcp_port: int = 2641,
    http_port: int = 8000,
    demo: bool = False,
    runtime: Runtime,
    self_signed: bool = False,
    https_port: int = 8443,
    tls_tcp_port: int = 0,
    encrypt_at_rest: bool = True,
    store_url: str = "",
) -> Config:
    """``store_url`` picks the store (default: SQLite ``node.db`` in the directory);
    ``runtime`` stamps the first records and draws the storage key."""
    directory = Path(directory)
    if (directory / CONFIG_NAME).exists():
        raise InitError(f"{directory} already holds a node ({CONFIG_NAME} exists)")
    prefixes = [p.strip() for p in prefixes if p.strip()]
    for p in prefixes:
        if "/" in p or not p:
            raise InitError(f"invalid prefix {p!r}: a prefix has no slash, e.g. 20.500.123")
    directory.mkdir(parents=True, exist_ok=True)
    config = Config(
        directory=directory,
        node=NodeSection(name=name, prefixes=prefixes),
        server=ServerSection(host=host, udp_port=udp_port, tcp_port=tcp_port, http_port=http_port),
    )
    if store_url:
        if not store_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise InitError(f"unknown store URL {store_url!r}: sqlite:///path or postgresql://...")
        config.store.url = store_url
    server_key = generate_key("rsa", 2048)
    admin_key = generate_key("rsa", 2048)
    _write_private(config.private_key_path, save_private_key_pem(server_key))
    _write_private(directory / ADMIN_KEY_NAME, save_private_key_pem(admin_key))
    site = build_site(config, server_key.public_key())
    now = int(runtime.clock())
    if encrypt_at_rest:  # before the first write, so no non-public value is ever stored clear
        from idnode.crypto.keyring import create_key_file

        config.security.storage_key_file = STORAGE_KEY_NAME
        create_key_file(directory / STORAGE_KEY_NAME, runtime.random, runtime.clock)
    await _write_prefixes(config, runtime, prefixes, admin_key, site, now, demo)
    if self_signed:
        _self_signed_tls(config, admin_key, https_port, tls_tcp_port, utc(runtime.clock))
    (directory / CONFIG_NAME).write_text(render_config(config), encoding="utf-8")
    return config


async def _write_prefixes(
    config: Config, runtime: Runtime, prefixes, admin_key, site: bytes, now: int, demo: bool
) -> None:
    """Home each prefix and write its prefix handle (and the demo records) through the write
    service as the node operator, like any other write: history and audit begin here."""
    from idnode.app import open_node
    from idnode.service.node import node_operators

    node = await open_node(config, runtime=runtime)
    try:
        for prefix in prefixes:
            operator = next(o for o in node_operators(config) if o.handle == NA_PREFIX + prefix)
            await node.admin.home_prefix(operator, prefix)
            values = prefix_handle_values(
                prefix, site, encode_public_key(admin_key.public_key()), now
            )
            await node.admin.create_handle(operator, NA_PREFIX + prefix, values, overwrite=True)
            if demo:
                await node.admin.load(operator, demo_records(prefix, now), overwrite=True)
    finally:
        await node.close()


def _self_signed_tls(
    config: Config, admin_key, https_port: int, tcp_port: int, now: dt.datetime
) -> None:
    """``--self-signed``: a development CA, server certificate and the operator's client
    certificate (``300:0.NA/<first prefix>``), wired into ``[tls]``."""
    from idnode.crypto.certs import write_dev_pki

    prefixes = config.node.prefixes
    identity = f"{ADMIN_INDEX}:{NA_PREFIX}{prefixes[0]}" if prefixes else None
    hosts = dict.fromkeys(["127.0.0.1", "localhost", config.published_address])
    pki = write_dev_pki(config.directory, identity, admin_key, hosts, now=now)
    tls = config.tls
    tls.cert_file, tls.key_file, tls.client_ca_file = pki.server_cert, pki.server_key, pki.ca_cert
    tls.https_port, tls.tcp_port = https_port, tcp_port


def _write_private(path: Path, data: bytes) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(data)
