"""``idnode``: the command line of a node (init, serve, get, load, keygen, admin).

Every command fails with a one-line message and a non-zero exit code, never a traceback,
when the operator's input is wrong.
"""

from __future__ import annotations

import asyncio
import base64
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.table import Table

from idnode import __version__
from idnode.cli_common import FAILURE, RUNTIME, USAGE_ERROR, err, fail, node_config, out  # noqa: F401

if TYPE_CHECKING:
    from idnode.config import Config

app = typer.Typer(
    name="idnode",
    help="A node for industrial internet identifiers speaking the Handle protocol.",
    no_args_is_help=True,
    add_completion=False,
)


def version_callback(value: bool) -> None:
    if value:
        out.print(f"idnode {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True)
    ] = False,
) -> None:
    """idnode command line."""


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="node directory to create")],
    name: Annotated[str, typer.Option(help="node name")] = "idnode",
    prefix: Annotated[list[str], typer.Option(help="prefix this node homes (repeatable)")] = [],  # noqa: B006
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    udp_port: int = 2641,
    tcp_port: int = 2641,
    http_port: int = 8000,
    demo: Annotated[bool, typer.Option(help="add a few demo identifiers")] = False,
    self_signed: Annotated[
        bool, typer.Option("--self-signed", help="make a development CA and TLS certificates")
    ] = False,
    https_port: Annotated[int, typer.Option(help="HTTPS port with --self-signed")] = 8443,
    tls_port: Annotated[int, typer.Option(help="TCP+TLS port with --self-signed (0: off)")] = 0,
    encrypt_at_rest: Annotated[
        bool, typer.Option(help="SM4-GCM for values without PUBLIC_READ (storage key file)")
    ] = True,
    role: Annotated[
        str, typer.Option(help="root, top-level, secondary, enterprise or recursive")
    ] = "",
    parent: Annotated[str, typer.Option(help="parent's HTTP API (URL or host:port)")] = "",
    store: Annotated[
        str, typer.Option(help="store URL: sqlite:///node.db (default) or postgresql://...")
    ] = "",
    root_info: Annotated[str, typer.Option(help="root-info file (recursive role)")] = "",
    primary: Annotated[
        list[str], typer.Option(help="mirror role: HOST:PORT of the primary, then others")
    ] = [],  # noqa: B006
    identity: Annotated[str, typer.Option(help="mirror role: identity to pull as")] = "",
    key: Annotated[str, typer.Option(help="mirror role: that identity's private key")] = "",
) -> None:
    """Create a node: idnode.toml, server and admin keys, the store, homed prefixes.

    ``--role mirror --primary HOST:PORT --identity 300:0.NA/P --key K``: a mirror that
    homes nothing of its own and follows the primary (docs/replication.md)."""
    from idnode.bootstrap import InitError, init_node
    from idnode.hierarchy.roles import RoleError, apply_role, prefixes_for

    mirror = role == "mirror"
    if mirror and prefix:
        fail("a mirror homes the prefixes it replicates: give no --prefix", USAGE_ERROR)
    if mirror:
        from idnode.replication.cli import check_mirror_args

        check_mirror_args(primary, identity, key)
    try:
        prefix = prefix if mirror else prefixes_for(role, prefix)
    except RoleError as exc:
        fail(str(exc), USAGE_ERROR)
    if root_info and Path(root_info).expanduser().is_file():
        # found from here: [hierarchy] paths are read against the node directory, so store
        # it absolute; a file not found here is kept as given, for the node directory
        root_info = str(Path(root_info).expanduser().resolve())
    elif root_info:
        err.print(f"note: {root_info} is not here; `serve` reads it in {directory}", markup=False)
    try:
        cfg = asyncio.run(
            init_node(
                directory,
                name=name,
                prefixes=prefix,
                host=host,
                udp_port=udp_port,
                tcp_port=tcp_port,
                http_port=http_port,
                demo=demo,
                self_signed=self_signed,
                https_port=https_port,
                tls_tcp_port=tls_port,
                encrypt_at_rest=encrypt_at_rest,
                store_url=store,
                runtime=RUNTIME,
            )
        )
    except InitError as exc:
        fail(str(exc), USAGE_ERROR)
    if mirror:  # issue 17: [replication]
        from idnode.config import CONFIG_NAME, render_config
        from idnode.replication.cli import set_mirror

        set_mirror(cfg, primary, identity, key)
        (directory / CONFIG_NAME).write_text(render_config(cfg), encoding="utf-8")
    elif role:  # issue 8: the role's defaults in [hierarchy]
        from idnode.config import CONFIG_NAME, render_config

        apply_role(cfg, role, parent=parent, root_info=root_info)
        (directory / CONFIG_NAME).write_text(render_config(cfg), encoding="utf-8")
    out.print(f"initialised node [bold]{cfg.node.name}[/] in {directory}")
    for p in cfg.node.prefixes:
        out.print(f"  homes prefix {p}" + (f"  (demo identifiers: {p}/demo-1..3)" if demo else ""))


@app.command()
def serve(
    directory: Annotated[Path, typer.Argument(help="node directory")] = Path("var"),
    host: Annotated[str | None, typer.Option(help="override [server] host")] = None,
    udp_port: Annotated[int | None, typer.Option(help="override [server] udp_port")] = None,
    tcp_port: Annotated[int | None, typer.Option(help="override [server] tcp_port")] = None,
    http_port: Annotated[int | None, typer.Option(help="override [server] http_port")] = None,
    workers: Annotated[
        int | None, typer.Option(help="processes sharing the ports; 0 = one per core")
    ] = None,
) -> None:
    """Serve resolution over UDP, TCP and HTTP until SIGTERM or Ctrl-C."""
    from idnode.logs import setup_logging
    from idnode.serve import serve as run_server

    cfg = node_config(directory)
    for attr, value in (
        ("host", host),
        ("udp_port", udp_port),
        ("tcp_port", tcp_port),
        ("http_port", http_port),
        ("workers", workers),
    ):
        if value is not None:
            setattr(cfg.server, attr, value)
    setup_logging(cfg.log.level, cfg.log.format)
    _check_root_info(cfg)
    tls = bool(cfg.tls.tcp_port or cfg.tls.https_port)
    if cfg.server.workers == 0 and tls:
        cfg.server.workers = 1  # "one per core" by default, but TLS ports take one process
    from idnode.workers import worker_count

    if worker_count(cfg.server.workers) > 1:
        from idnode.workers import Supervisor

        if tls:
            fail("TLS ports are served by one process: use --workers 1 with [tls]", USAGE_ERROR)
        raise typer.Exit(Supervisor(cfg, worker_count(cfg.server.workers), RUNTIME).run())
    _install_uvloop()
    from idnode.crypto.keyring import KeyringError

    try:
        asyncio.run(run_server(cfg, RUNTIME))
    except KeyringError as exc:  # missing/unreadable storage keys: say so, no traceback
        fail(str(exc), USAGE_ERROR)
    except OSError as exc:
        fail(f"cannot listen: {exc}")
    except KeyboardInterrupt:
        pass


def _check_root_info(cfg: Config) -> None:
    """A recursive node whose root-info file is missing fails here, in one line, before
    any worker starts: a worker would die on it at start-up and be restarted forever."""
    from idnode.errors import IdnodeError
    from idnode.hierarchy.service import load_configured_root_info

    try:
        load_configured_root_info(cfg)
    except IdnodeError as exc:
        fail(str(exc), USAGE_ERROR)


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def _site_servers(handle, servers, protocol, send, timeout) -> list[tuple[str, int]]:
    """The servers of the sites ``0.NA/<prefix>`` lists, asked of the first that answers."""
    from idnode.client.failover import prefix_sites
    from idnode.client.sites import site_plan
    from idnode.model import NA_PREFIX
    from idnode.names import prefix_part
    from idnode.wire.site import SP_HDL_TCP, SP_HDL_UDP

    found = await prefix_sites(handle, servers, send, timeout=timeout)
    kind = SP_HDL_UDP if protocol == "udp" else SP_HDL_TCP
    plan = site_plan(found, handle, kind)
    if not plan:
        fail(f"{NA_PREFIX + prefix_part(handle)} lists no site serving {protocol}")
    return plan


def _hostport(text: str, default_port: int) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host:
        return text, default_port
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        fail(f"invalid address {text!r}: expected host:port", USAGE_ERROR)


def _sender(protocol: str, ca_file: Path | None):
    """``client.request_udp`` / ``request_tcp``, the latter inside TLS for ``tls``."""
    from functools import partial

    from idnode import client

    if protocol == "udp":
        return client.request_udp
    if protocol == "tls":
        from idnode.transport.tls import client_context

        return partial(client.request_tcp, ssl=client_context(ca_file))
    return client.request_tcp


@app.command()
def get(
    handle: Annotated[str, typer.Argument(help="handle to resolve, e.g. 20.500.123/demo-1")],
    server: Annotated[
        list[str],
        typer.Option(help="host:port of the Handle server; repeat for the next when one is silent"),
    ] = ["127.0.0.1:2641"],  # noqa: B006
    protocol: Annotated[str, typer.Option(help="udp, tcp or http")] = "udp",
    http: Annotated[
        str, typer.Option(help="base URL for --protocol http")
    ] = "http://127.0.0.1:8000",
    type: Annotated[list[str], typer.Option("--type", "-t", help="only values of this type")] = [],  # noqa: B006
    index: Annotated[
        list[int], typer.Option("--index", "-i", help="only the value at this index")
    ] = [],  # noqa: B006
    json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    timeout: float = 3.0,
    verify: Annotated[
        bool, typer.Option("--verify", help="ask for a signed answer and refuse it unverified")
    ] = False,
    site: Annotated[
        Path | None, typer.Option(help="HS_SITE file or server public key PEM for --verify")
    ] = None,
    ca_file: Annotated[
        Path | None, typer.Option(help="CA for --protocol tls (TCP inside TLS)")
    ] = None,
    sites: Annotated[
        bool,
        typer.Option(
            "--sites",
            help="read the prefix's HS_SITE values from --server and ask its sites in turn",
        ),
    ] = False,
    from_root: Annotated[
        Path | None, typer.Option(help="root-info file: resolve globally from the root")
    ] = None,
) -> None:
    """Resolve a handle against a server over UDP, TCP (also inside TLS) or HTTP."""
    from idnode import client
    from idnode.errors import IdnodeError
    from idnode.wire.json import value_to_json

    protocol = protocol.lower()
    if protocol not in ("udp", "tcp", "tls", "http"):
        fail(f"unknown protocol {protocol!r}: use udp, tcp, tls or http", USAGE_ERROR)
    if verify and protocol == "http":
        fail("--verify needs the Handle protocol (udp, tcp or tls)", USAGE_ERROR)
    try:
        if from_root is not None:  # issue 8: walk the prefix handles down from the root
            from idnode.hierarchy.resolver import resolve_from_root

            found = resolve_from_root(
                from_root,
                handle,
                indexes=tuple(index),
                types=tuple(type),
                timeout=timeout,
                wall=RUNTIME.clock,
            )
            code, values, message = 1, [value_to_json(v) for v in asyncio.run(found)], ""
        elif protocol == "http":
            status, body = asyncio.run(
                client.resolve_http(
                    http, handle, indexes=tuple(index), types=tuple(type), timeout=timeout
                )
            )
            code, values = body.get("responseCode"), body.get("values", [])
            message = body.get("message", "")
        else:
            from idnode.client.failover import first_answer

            servers = [_hostport(s, 2641) for s in server]
            send = _sender(protocol, ca_file)
            if sites:  # RFC 3652 §3.3: the prefix's sites, the hashed server of each
                servers = asyncio.run(_site_servers(handle, servers, protocol, send, timeout))

            async def ask(host: str, port: int):
                request = client.resolution_request(
                    handle, indexes=tuple(index), types=tuple(type), certify=verify
                )
                if verify:
                    from idnode.transport.signing import certified_request

                    return await certified_request(
                        send, host, port, request, timeout=timeout, site_file=site
                    )
                return await send(host, port, request, timeout=timeout)

            def skipped(host: str, port: int, exc: Exception) -> None:
                if len(servers) > 1:
                    err.print(f"note: {host}:{port} did not answer; asking the next server")

            reply = asyncio.run(first_answer(servers, ask, skipped))
            code = reply.header.response_code
            body_obj = reply.body
            values = [value_to_json(v) for v in getattr(body_obj, "values", ())]
            message = getattr(body_obj, "message", "")
    except (IdnodeError, OSError) as exc:
        fail(str(exc))
    if code != 1:
        fail(f"{handle}: response code {code}" + (f": {message}" if message else ""))
    if json:
        sys.stdout.write(
            orjson.dumps({"handle": handle, "values": values}, option=orjson.OPT_INDENT_2).decode()
            + "\n"
        )
        return
    table = Table(title=handle)
    for col in ("index", "type", "data", "ttl", "timestamp"):
        table.add_column(col, overflow="fold")
    for v in values:
        data = v["data"]
        shown = data.get("value") if isinstance(data, dict) else data
        if not isinstance(shown, str):
            shown = orjson.dumps(shown).decode()
        table.add_row(str(v["index"]), v["type"], shown, str(v["ttl"]), v["timestamp"])
    out.print(table)


@app.command()
def load(
    directory: Annotated[
        Path, typer.Argument(help="node directory (or, with --server, the records file)")
    ],
    file: Annotated[
        Path | None, typer.Argument(help='JSON lines: {"handle": ..., "values": [...]}')
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="replace existing handles")] = False,
    server: Annotated[
        str | None, typer.Option(help="host:port: create each record over the wire instead")
    ] = None,
    protocol: Annotated[str, typer.Option(help="tcp or udp, with --server")] = "tcp",
    id: Annotated[str | None, typer.Option("--id", help="admin identity index:handle")] = None,
    key: Annotated[Path | None, typer.Option(help="private key of the identity")] = None,
    secret_file: Annotated[Path | None, typer.Option(help="secret key of the identity")] = None,
    secret_alg: Annotated[str, typer.Option(help="secret-key answer kind")] = "HMAC-SHA256",
    pbkdf2: Pbkdf2Opt = "",
    timeout: float = 10.0,
) -> None:
    """Load records from a JSON-lines file: into the local node, all or nothing, or with
    --server through the authenticated binary protocol, one session for all records.

    Locally the records go through the node's write service as its operator, like every
    other write: permissions, templates, lifecycle, history, audit and statistics apply."""
    from idnode.cli_common import on_local_node
    from idnode.service.node import node_operators

    if server is not None:
        if file is not None:
            fail("with --server give only the records file, not a node directory", USAGE_ERROR)
        conn = _Connection(server, protocol, id, key, secret_file, secret_alg, timeout, pbkdf2)
        _load_remote(conn, directory, overwrite)
        return
    if file is None:
        fail("give the node directory and the records file (or --server)", USAGE_ERROR)
    records = _read_records(file)

    async def run(node) -> int:
        operator = min(node_operators(node.config), key=str, default=None)
        await node.admin.load(operator, records, overwrite=overwrite)
        return len(records)

    count = on_local_node(directory, run, failure="nothing loaded: ")
    out.print(f"loaded {count} handles")


def _read_records(file: Path) -> list[tuple[str, list]]:
    """(handle, values) per JSON line; the first bad line fails the whole load."""
    from idnode.errors import IdnodeError
    from idnode.names import check_handle
    from idnode.wire.json import value_from_json

    if not file.exists():
        fail(f"{file}: no such file", USAGE_ERROR)
    now = int(RUNTIME.clock())
    records = []
    with file.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
                handle = check_handle(obj["handle"])
                values = [value_from_json(v, timestamp=now) for v in obj.get("values", [])]
            except (orjson.JSONDecodeError, KeyError, TypeError, IdnodeError) as exc:
                fail(f"{file}:{lineno}: {_describe(exc)}")
            records.append((handle, values))
    return records


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc) or exc.__class__.__name__


# --------------------------------------------------------------------------- keygen


@app.command()
def keygen(
    out_file: Annotated[Path, typer.Argument(help="private key file to write (PEM)")],
    alg: Annotated[str, typer.Option(help="rsa, dsa, sm2 or ed25519")] = "rsa",
    bits: Annotated[int, typer.Option(help="key size (rsa, dsa)")] = 2048,
    index: Annotated[int, typer.Option(help="index for the printed HS_PUBKEY value")] = 300,
) -> None:
    """Make a key pair: the private key as PEM, its public half as HS_PUBKEY bytes in
    OUT.pub (the Handle.Net encoding), and the HS_PUBKEY value printed as JSON."""
    from idnode.crypto.keys import encode_public_key, generate_key, save_private_key_pem
    from idnode.errors import IdnodeError

    if alg.lower() not in ("rsa", "dsa", "sm2", "ed25519"):
        fail(f"unknown algorithm {alg!r}: use rsa, dsa, sm2 or ed25519", USAGE_ERROR)
    if out_file.exists():
        fail(f"{out_file} exists; not overwriting a key", USAGE_ERROR)
    try:
        key = generate_key(alg, bits)
    except IdnodeError as exc:
        fail(str(exc), USAGE_ERROR)
    pub = encode_public_key(key)
    try:
        out_file.touch(mode=0o600)
        out_file.write_bytes(save_private_key_pem(key))
        _pub_path(out_file).write_bytes(pub)
    except OSError as exc:
        fail(f"cannot write the key: {exc}")
    value = {
        "index": index,
        "type": "HS_PUBKEY",
        "data": {"format": "base64", "value": base64.b64encode(pub).decode()},
    }
    sys.stdout.write(orjson.dumps(value).decode() + "\n")


def _pub_path(private: Path) -> Path:
    return private.with_name(private.name + ".pub")


# --------------------------------------------------------------------------- admin

from idnode.cli_keys import keys_app  # noqa: E402  (idnode keys status|rotate)

app.add_typer(keys_app, name="keys")

from idnode.verify.bench_cli import bench_app  # noqa: E402  (idnode bench run|prepare)

app.add_typer(bench_app, name="bench")

from idnode.verify.conformance.cli import verify_app  # noqa: E402  (idnode verify)

app.add_typer(verify_app, name="verify")

admin_app = typer.Typer(
    help="Administer handles on a Handle server over the authenticated binary protocol.",
    no_args_is_help=True,
)
app.add_typer(admin_app, name="admin")

ServerOpt = Annotated[str, typer.Option(help="host:port of the Handle server")]
ProtocolOpt = Annotated[str, typer.Option(help="tcp or udp")]
IdOpt = Annotated[
    str | None, typer.Option("--id", help="admin identity index:handle, e.g. 300:0.NA/20.500")
]
KeyOpt = Annotated[Path | None, typer.Option(help="private key (PEM or HSJ admpriv.bin)")]
SecretOpt = Annotated[Path | None, typer.Option(help="file holding the identity's secret key")]
SecretAlgOpt = Annotated[
    str, typer.Option(help="secret-key answer: HMAC-SHA256, SHA256, SHA1, PBKDF2-HMAC-SHA1")
]
Pbkdf2Opt = Annotated[
    str,
    typer.Option(
        help="SALT_HEX:ITERATIONS[:BITS] of the identity's stored PBKDF2 key (what account "
        "creation prints as pbkdf2): a registrar's token then answers challenges",
    ),
]
ValueOpt = Annotated[
    list[str],
    typer.Option(
        "--value",
        "-v",
        help="INDEX:TYPE:DATA; DATA @file reads bytes, {...} is REST JSON data, "
        "HS_ADMIN takes INDEX:HANDLE (all permissions)",
    ),
]
ValuesFileOpt = Annotated[
    Path | None, typer.Option(help="JSON file: a list of values in the REST shape")
]
SitesOpt = Annotated[
    bool,
    typer.Option(
        "--sites",
        help="read the prefix's HS_SITE values at --server (a mirror will do) and send the "
        "write to the primary site: the server the handle hashes to, the next when one is "
        "silent, never a mirror (TCP)",
    ),
]


class _Connection:
    """The options every ``idnode admin`` command shares, checked once."""

    def __init__(
        self, server, protocol, id, key, secret_file, secret_alg, timeout, pbkdf2="", sites=None
    ) -> None:
        from idnode.auth.identity import Identity
        from idnode.errors import IdnodeError

        self.host, self.port = _hostport(server, 2641)
        self.protocol = protocol.lower()
        if self.protocol not in ("tcp", "udp"):
            fail(f"unknown protocol {protocol!r}: use tcp or udp", USAGE_ERROR)
        if id is None:
            fail("--id is required (the admin identity, e.g. 300:0.NA/20.500)", USAGE_ERROR)
        try:
            self.identity = Identity.parse(id)
        except IdnodeError as exc:
            fail(str(exc), USAGE_ERROR)
        if (key is None) == (secret_file is None):
            fail("give exactly one of --key and --secret-file", USAGE_ERROR)
        self.private_key = _read_private_key(key) if key is not None else None
        self.secret = _read_secret(secret_file) if secret_file is not None else None
        self.secret_alg = secret_alg
        self.pbkdf2 = _parse_pbkdf2(pbkdf2) if pbkdf2 else None
        if self.pbkdf2 is not None:
            if self.secret is None:
                fail("--pbkdf2 goes with --secret-file (the account's token)", USAGE_ERROR)
            if secret_alg == "HMAC-SHA256":  # the default: the stored key answers only 0x22
                self.secret_alg = "PBKDF2-HMAC-SHA1"
            elif "PBKDF2" not in secret_alg.upper().replace("_", "-"):
                fail(f"--pbkdf2 needs --secret-alg PBKDF2-HMAC-SHA1, not {secret_alg}", USAGE_ERROR)
        self.timeout = timeout
        # None: the command takes no --sites (it is for the server named); else whether the
        # write goes to the prefix's primary site (RFC 3652 §3.3) rather than to --server
        self.sites: bool | None = sites

    def client(self, host: str | None = None, port: int | None = None):
        from idnode.client.admin import AdminClient

        return AdminClient(
            host or self.host,
            port or self.port,
            "tcp" if host is not None else self.protocol,
            self.identity,
            private_key=self.private_key,
            secret=self.secret,
            secret_alg=self.secret_alg,
            pbkdf2=self.pbkdf2,
            timeout=self.timeout,
        )

    def writer(self, *, session: bool = False):
        """The ``PrimaryWriter`` of ``--sites``: notes on stderr when a server is silent."""
        from idnode.client.admin import PrimaryWriter

        def skipped(host: str, port: int, exc: Exception) -> None:
            err.print(f"note: {host}:{port} did not answer; asking the next primary server")

        return PrimaryWriter(
            [(self.host, self.port)],
            self.client,
            timeout=self.timeout,
            session=session,
            on_skip=skipped,
        )

    def run(self, action, handle: str | None = None):
        """Run ``action(client)`` and turn every failure into one line and exit code 1; with
        ``--sites`` on a server of ``handle``'s primary site."""
        from idnode.errors import IdnodeError

        async def go():
            if self.sites and handle is not None:
                async with self.writer() as w:
                    return await w.write(handle, action)
            async with self.client() as c:
                return await action(c)

        try:
            return asyncio.run(go())
        except (IdnodeError, OSError) as exc:
            fail(str(exc) + self.hint(exc))

    def hint(self, exc: Exception) -> str:
        """What to add to a refusal: a mirror's 301 without ``--sites`` names the option."""
        from idnode.codes import ResponseCode

        refused = getattr(exc, "code", None) == ResponseCode.SERVER_NOT_RESPONSIBLE
        if self.sites is False and refused:
            return " (--sites sends writes to the prefix's primary site)"
        return ""


def _parse_pbkdf2(text: str) -> tuple[bytes, int, int]:
    """``SALT_HEX:ITERATIONS[:BITS]`` -> (salt, iterations, key bits), or a usage error.

    The server keeps an account's token only as PBKDF2(token, salt, iterations); a challenge
    answer verifies only when it is computed with those same parameters."""
    from idnode.auth.secrets import MAX_SALT, MAX_STORED_ITERATIONS, MIN_SALT

    parts = text.strip().split(":")
    usage = f"--pbkdf2 {text!r}: use SALT_HEX:ITERATIONS[:BITS], e.g. 9f3c...:10000:160"
    if len(parts) not in (2, 3):
        fail(usage, USAGE_ERROR)
    try:
        salt = bytes.fromhex(parts[0])
        iterations = int(parts[1])
        bits = int(parts[2]) if len(parts) == 3 else 160
    except ValueError:
        fail(usage, USAGE_ERROR)
    if not MIN_SALT <= len(salt) <= MAX_SALT:
        fail(f"--pbkdf2: the salt is {MIN_SALT}..{MAX_SALT} bytes, got {len(salt)}", USAGE_ERROR)
    if not 1 <= iterations <= MAX_STORED_ITERATIONS:
        fail(f"--pbkdf2: iterations must be 1..{MAX_STORED_ITERATIONS}", USAGE_ERROR)
    if bits <= 0 or bits % 8 or bits > 512:
        fail("--pbkdf2: key bits must be a multiple of 8 up to 512", USAGE_ERROR)
    return salt, iterations, bits


def _read_private_key(path: Path):
    from idnode.crypto.keys import decode_private_key_file, load_private_key_pem
    from idnode.errors import IdnodeError

    try:
        data = path.read_bytes()
    except OSError as exc:
        fail(f"cannot read key {path}: {exc.strerror}", USAGE_ERROR)
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return load_private_key_pem(data)
        return decode_private_key_file(data)
    except IdnodeError as exc:
        fail(f"{path}: {exc}", USAGE_ERROR)


def _read_secret(path: Path) -> bytes:
    try:
        secret = path.read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        fail(f"cannot read secret {path}: {exc.strerror}", USAGE_ERROR)
    if not secret:
        fail(f"{path} is empty", USAGE_ERROR)
    return secret


def _parse_values(specs: list[str], values_file: Path | None) -> list:
    """``--value`` strings and a values file -> HandleValues (usage error if malformed)."""
    from idnode.codes import Permission
    from idnode.errors import IdnodeError, InvalidValue
    from idnode.model import HS_ADMIN, HS_SECKEY, HandleValue
    from idnode.wire.admin import AdminRecord, encode_admin
    from idnode.wire.json import value_from_json
    from idnode.wire.types import from_json as value_data_from_json

    now = int(RUNTIME.clock())
    values = []
    for spec in specs:
        index_text, _, rest = spec.partition(":")
        type_, sep, data_text = rest.partition(":")
        if not sep or not index_text.isdigit() or not type_:
            fail(f"--value {spec!r}: expected INDEX:TYPE:DATA", USAGE_ERROR)
        try:
            if data_text.startswith("@"):
                data = Path(data_text[1:]).read_bytes()
                if type_ == HS_SECKEY:  # as --secret-file reads it: no trailing newline
                    data = data.rstrip(b"\r\n")
            elif data_text.startswith("{"):
                data = value_data_from_json(type_, orjson.loads(data_text))
            elif type_ == HS_ADMIN:
                ref_index, _, ref_handle = data_text.partition(":")
                if not ref_index.isdigit() or not ref_handle:
                    raise InvalidValue("HS_ADMIN data must be INDEX:HANDLE")
                data = encode_admin(AdminRecord(ref_handle, int(ref_index)))
            else:
                data = data_text.encode("utf-8")
        except (OSError, orjson.JSONDecodeError, IdnodeError) as exc:
            fail(f"--value {spec!r}: {_describe(exc)}", USAGE_ERROR)
        perms = Permission.ADMIN_READ | Permission.ADMIN_WRITE
        if type_ != HS_SECKEY:  # a secret key is never publicly readable
            perms |= Permission.PUBLIC_READ
        values.append(HandleValue(int(index_text), type_, data, perms, timestamp=now))
    if values_file is not None:
        try:
            raw = orjson.loads(values_file.read_bytes())
            items = raw.get("values", []) if isinstance(raw, dict) else raw
            values += [value_from_json(v, timestamp=now) for v in items]
        except (OSError, orjson.JSONDecodeError, IdnodeError, AttributeError) as exc:
            fail(f"{values_file}: {_describe(exc)}", USAGE_ERROR)
    return values


def _with_default_admin(values: list, identity) -> list:
    """A new handle administered by its creator, unless the values name admins already."""
    from idnode.model import HS_ADMIN, HandleValue
    from idnode.wire.admin import AdminRecord, encode_admin

    if any(v.type == HS_ADMIN for v in values):
        return values
    used = {v.index for v in values}
    index = next(i for i in range(100, 1 << 30) if i not in used)
    admin = encode_admin(AdminRecord(identity.handle, identity.index))
    return [*values, HandleValue(index, HS_ADMIN, admin, timestamp=int(RUNTIME.clock()))]


@admin_app.command("create")
def admin_create(
    handle: Annotated[str, typer.Argument(help="handle to create (with --mint: its start)")],
    value: ValueOpt = [],  # noqa: B006
    values_file: ValuesFileOpt = None,
    overwrite: Annotated[bool, typer.Option(help="replace the handle if it exists")] = False,
    mint: Annotated[bool, typer.Option(help="let the server append a new suffix")] = False,
    default_admin: Annotated[
        bool, typer.Option(help="add an HS_ADMIN naming --id when no value is one")
    ] = True,
    server: ServerOpt = "127.0.0.1:2641",
    protocol: ProtocolOpt = "tcp",
    id: IdOpt = None,
    key: KeyOpt = None,
    secret_file: SecretOpt = None,
    secret_alg: SecretAlgOpt = "HMAC-SHA256",
    pbkdf2: Pbkdf2Opt = "",
    timeout: float = 10.0,
    sites: SitesOpt = False,
) -> None:
    """Create a handle (opcode 100); prints the handle created."""
    conn = _Connection(server, protocol, id, key, secret_file, secret_alg, timeout, pbkdf2, sites)
    values = _parse_values(value, values_file)
    if default_admin:
        values = _with_default_admin(values, conn.identity)
    created = conn.run(
        lambda c: c.create_handle(handle, values, overwrite=overwrite, mint=mint), handle
    )
    out.print(created, highlight=False)


@admin_app.command("delete")
def admin_delete(
    handle: Annotated[str, typer.Argument(help="handle to delete")],
    server: ServerOpt = "127.0.0.1:2641",
    protocol: ProtocolOpt = "tcp",
    id: IdOpt = None,
    key: KeyOpt = None,
    secret_file: SecretOpt = None,
    secret_alg: SecretAlgOpt = "HMAC-SHA256",
    pbkdf2: Pbkdf2Opt = "",
    timeout: float = 10.0,
    sites: SitesOpt = False,
) -> None:
    """Delete a handle (opcode 101)."""
    conn = _Connection(server, protocol, id, key, secret_file, secret_alg, timeout, pbkdf2, sites)
    conn.run(lambda c: c.delete_handle(handle), handle)
    out.print(f"deleted {handle}", highlight=False)


@admin_app.command("add-value")
def admin_add_value(
    handle: Annotated[str, typer.Argument(help="handle to add values to")],
    value: ValueOpt = [],  # noqa: B006
    values_file: ValuesFileOpt = None,
    overwrite: Annotated[bool, typer.Option(help="replace values at taken indexes")] = False,
    server: ServerOpt = "127.0.0.1:2641",
    protocol: ProtocolOpt = "tcp",
    id: IdOpt = None,
    key: KeyOpt = None,
    secret_file: SecretOpt = None,
    secret_alg: SecretAlgOpt = "HMAC-SHA256",
    pbkdf2: Pbkdf2Opt = "",
    timeout: float = 10.0,
    sites: SitesOpt = False,
) -> None:
    """Add values to a handle (opcode 102)."""
    conn = _Connection(server, protocol, id, key, secret_file, secret_alg, timeout, pbkdf2, sites)
    values = _parse_values(value, values_file)
    if not values:
        fail("give at least one --value", USAGE_ERROR)
    conn.run(lambda c: c.add_values(handle, values, overwrite=overwrite), handle)
    out.print(f"added {len(values)} value(s) to {handle}", highlight=False)


@admin_app.command("modify-value")
def admin_modify_value(
    handle: Annotated[str, typer.Argument(help="handle whose values to replace")],
    value: ValueOpt = [],  # noqa: B006
    values_file: ValuesFileOpt = None,
    server: ServerOpt = "127.0.0.1:2641",
    protocol: ProtocolOpt = "tcp",
    id: IdOpt = None,
    key: KeyOpt = None,
    secret_file: SecretOpt = None,
    secret_alg: SecretAlgOpt = "HMAC-SHA256",
    pbkdf2: Pbkdf2Opt = "",
    timeout: float = 10.0,
    sites: SitesOpt = False,
) -> None:
    """Replace values of a handle by index (opcode 104)."""
    conn = _Connection(server, protocol, id, key, secret_file, secret_alg, timeout, pbkdf2, sites)
    values = _parse_values(value, values_file)
    if not values:
        fail("give at least one --value", USAGE_ERROR)
    conn.run(lambda c: c.modify_values(handle, values), handle)
    out.print(f"modified {len(values)} value(s) of {handle}", highlight=False)


@admin_app.command("remove-value")
def admin_remove_value(
    handle: Annotated[str, typer.Argument(help="handle to remove values from")],
    index: Annotated[list[int], typer.Option("--index", "-i", help="index to remove")] = [],  # noqa: B006
    server: ServerOpt = "127.0.0.1:2641",
    protocol: ProtocolOpt = "tcp",
    id: IdOpt = None,
    key: KeyOpt = None,
    secret_file: SecretOpt = None,
    secret_alg: SecretAlgOpt = "HMAC-SHA256",
    pbkdf2: Pbkdf2Opt = "",
    timeout: float = 10.0,
    sites: SitesOpt = False,
) -> None:
    """Remove values of a handle by index (opcode 103)."""
    conn = _Connection(server, protocol, id, key, secret_file, secret_alg, timeout, pbkdf2, sites)
    if not index:
        fail("give at least one --index", USAGE_ERROR)
    conn.run(lambda c: c.remove_values(handle, index), handle)
    out.print(f"removed {len(index)} value(s) of {handle}", highlight=False)


@admin_app.command("list")
def admin_list(
    prefix: Annotated[str, typer.Argument(help="prefix, e.g. 20.500.123 (or 0.NA/20.500.123)")],
    server: ServerOpt = "127.0.0.1:2641",
    protocol: ProtocolOpt = "tcp",
    id: IdOpt = None,
    key: KeyOpt = None,
    secret_file: SecretOpt = None,
    secret_alg: SecretAlgOpt = "HMAC-SHA256",
    pbkdf2: Pbkdf2Opt = "",
    timeout: float = 10.0,
) -> None:
    """List the handles under a prefix (opcode 105), one per line."""
    conn = _Connection(server, protocol, id, key, secret_file, secret_alg, timeout, pbkdf2)
    for handle in conn.run(lambda c: c.list_handles(prefix)):
        sys.stdout.write(handle + "\n")


@admin_app.command("prefixes")
def admin_prefixes(
    prefix: Annotated[
        str | None, typer.Argument(help="list its derived prefixes (else: homed prefixes)")
    ] = None,
    server: ServerOpt = "127.0.0.1:2641",
    protocol: ProtocolOpt = "tcp",
    id: IdOpt = None,
    key: KeyOpt = None,
    secret_file: SecretOpt = None,
    secret_alg: SecretAlgOpt = "HMAC-SHA256",
    pbkdf2: Pbkdf2Opt = "",
    timeout: float = 10.0,
) -> None:
    """List homed prefixes (opcode 302) or a prefix's derived prefixes (opcode 106)."""
    conn = _Connection(server, protocol, id, key, secret_file, secret_alg, timeout, pbkdf2)
    for name in conn.run(lambda c: c.list_prefixes(prefix)):
        sys.stdout.write(name + "\n")


@admin_app.command("home")
def admin_home(
    prefix: Annotated[str, typer.Argument(help="prefix this server should home")],
    server: ServerOpt = "127.0.0.1:2641",
    protocol: ProtocolOpt = "tcp",
    id: IdOpt = None,
    key: KeyOpt = None,
    secret_file: SecretOpt = None,
    secret_alg: SecretAlgOpt = "HMAC-SHA256",
    pbkdf2: Pbkdf2Opt = "",
    timeout: float = 10.0,
) -> None:
    """Home a prefix on the server (opcode 300; node operators only)."""
    conn = _Connection(server, protocol, id, key, secret_file, secret_alg, timeout, pbkdf2)
    conn.run(lambda c: c.home_prefix(prefix))
    out.print(f"homed {prefix}", highlight=False)


@admin_app.command("unhome")
def admin_unhome(
    prefix: Annotated[str, typer.Argument(help="prefix this server should stop homing")],
    server: ServerOpt = "127.0.0.1:2641",
    protocol: ProtocolOpt = "tcp",
    id: IdOpt = None,
    key: KeyOpt = None,
    secret_file: SecretOpt = None,
    secret_alg: SecretAlgOpt = "HMAC-SHA256",
    pbkdf2: Pbkdf2Opt = "",
    timeout: float = 10.0,
) -> None:
    """Unhome a prefix (opcode 301; node operators only)."""
    conn = _Connection(server, protocol, id, key, secret_file, secret_alg, timeout, pbkdf2)
    conn.run(lambda c: c.unhome_prefix(prefix))
    out.print(f"unhomed {prefix}", highlight=False)


@admin_app.command("load")
def admin_load(
    file: Annotated[Path, typer.Argument(help='JSON lines: {"handle": ..., "values": [...]}')],
    overwrite: Annotated[bool, typer.Option(help="replace existing handles")] = False,
    server: ServerOpt = "127.0.0.1:2641",
    protocol: ProtocolOpt = "tcp",
    id: IdOpt = None,
    key: KeyOpt = None,
    secret_file: SecretOpt = None,
    secret_alg: SecretAlgOpt = "HMAC-SHA256",
    pbkdf2: Pbkdf2Opt = "",
    timeout: float = 10.0,
    sites: SitesOpt = False,
) -> None:
    """Create every record of a JSON-lines file over the wire, in one authenticated session."""
    conn = _Connection(server, protocol, id, key, secret_file, secret_alg, timeout, pbkdf2, sites)
    _load_remote(conn, file, overwrite)


def _load_remote(conn: _Connection, file: Path, overwrite: bool) -> None:
    """One session, one create per record; stops at the first refusal and says how far."""
    from functools import partial

    from idnode.errors import IdnodeError

    records = _read_records(file)
    done = 0

    async def create(handle, values, c) -> None:
        await c.create_handle(handle, values, overwrite=overwrite)

    async def run() -> None:
        nonlocal done
        if conn.sites:  # each record to the primary server it hashes to, one session each
            async with conn.writer(session=True) as w:
                for handle, values in records:
                    await w.write(handle, partial(create, handle, values))
                    done += 1
            return
        async with conn.client() as c:
            await c.open_session()
            for handle, values in records:
                await create(handle, values, c)
                done += 1

    try:
        asyncio.run(run())
    except (IdnodeError, OSError) as exc:
        where = records[done][0] if done < len(records) else "?"
        fail(f"loaded {done} of {len(records)} handles; {where}: {exc}{conn.hint(exc)}")
    out.print(f"loaded {done} handles", highlight=False)


# --------------------------------------------------------------------------- registry (issue 6)
from idnode.registry.cli import register as _register_registry  # noqa: E402

_register_registry(app)
from idnode.hierarchy.cli import register as _register_hierarchy  # noqa: E402

_register_hierarchy(app)  # enrol, child, root-info (issue 8)
from idnode.cli_qr import register as _register_qr  # noqa: E402

_register_qr(app)  # idnode qr: QR labels (issue 19)
from idnode.cli_schemes import register as _register_schemes  # noqa: E402

_register_schemes(app)  # idnode scheme: GS1 / Ecode / OID names <-> Handle names (issue 19)
from idnode.replication.cli import register as _register_replication  # noqa: E402

_register_replication(app)  # idnode promote, attach, backup, restore (issue 17)
