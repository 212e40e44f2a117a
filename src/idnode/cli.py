"""``idnode``: the command line of a node (init, serve, get, load).

Every command fails with a one-line message and a non-zero exit code, never a traceback,
when the operator's input is wrong.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Annotated, NoReturn

import orjson
import typer
from rich.console import Console
from rich.table import Table

from idnode import __version__
from idnode.config import ConfigError, load_config

app = typer.Typer(
    name="idnode",
    help="A node for industrial internet identifiers speaking the Handle protocol.",
    no_args_is_help=True,
    add_completion=False,
)
err = Console(stderr=True)
out = Console()

USAGE_ERROR = 2  # bad arguments or configuration
FAILURE = 1  # the command ran but what it asked for failed


def fail(message: str, code: int = FAILURE) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


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
) -> None:
    """Create a node: idnode.toml, server and admin keys, the store, homed prefixes."""
    from idnode.bootstrap import InitError, init_node

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
            )
        )
    except InitError as exc:
        fail(str(exc), USAGE_ERROR)
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
) -> None:
    """Serve resolution over UDP, TCP and HTTP until SIGTERM or Ctrl-C."""
    from idnode.logs import setup_logging
    from idnode.transport.server import serve as run_server

    cfg = _config(directory)
    for attr, value in (
        ("host", host),
        ("udp_port", udp_port),
        ("tcp_port", tcp_port),
        ("http_port", http_port),
    ):
        if value is not None:
            setattr(cfg.server, attr, value)
    setup_logging(cfg.log.level, cfg.log.format)
    _install_uvloop()
    try:
        asyncio.run(run_server(cfg))
    except OSError as exc:
        fail(f"cannot listen: {exc}")
    except KeyboardInterrupt:
        pass


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _config(directory: Path):
    try:
        return load_config(directory)
    except ConfigError as exc:
        fail(str(exc), USAGE_ERROR)


def _hostport(text: str, default_port: int) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host:
        return text, default_port
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        fail(f"invalid address {text!r}: expected host:port", USAGE_ERROR)


@app.command()
def get(
    handle: Annotated[str, typer.Argument(help="handle to resolve, e.g. 20.500.123/demo-1")],
    server: Annotated[str, typer.Option(help="host:port of the Handle server")] = "127.0.0.1:2641",
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
) -> None:
    """Resolve a handle against a server over UDP, TCP or HTTP."""
    from idnode.errors import IdnodeError
    from idnode.transport import client
    from idnode.transport.json_values import value_to_json

    protocol = protocol.lower()
    if protocol not in ("udp", "tcp", "http"):
        fail(f"unknown protocol {protocol!r}: use udp, tcp or http", USAGE_ERROR)
    try:
        if protocol == "http":
            status, body = asyncio.run(
                client.resolve_http(
                    http, handle, indexes=tuple(index), types=tuple(type), timeout=timeout
                )
            )
            code, values = body.get("responseCode"), body.get("values", [])
            message = body.get("message", "")
        else:
            host, port = _hostport(server, 2641)
            request = client.resolution_request(handle, indexes=tuple(index), types=tuple(type))
            send = client.request_udp if protocol == "udp" else client.request_tcp
            reply = asyncio.run(send(host, port, request, timeout=timeout))
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
    directory: Annotated[Path, typer.Argument(help="node directory")],
    file: Annotated[Path, typer.Argument(help='JSON lines: {"handle": ..., "values": [...]}')],
    overwrite: Annotated[bool, typer.Option(help="replace existing handles")] = False,
) -> None:
    """Load records from a JSON-lines file into the local store, all or nothing."""
    from idnode.errors import IdnodeError
    from idnode.service.names import PrefixSet, check_handle
    from idnode.store import open_store
    from idnode.transport.json_values import value_from_json

    cfg = _config(directory)
    if not file.exists():
        fail(f"{file}: no such file", USAGE_ERROR)
    now = int(time.time())
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

    async def run() -> int:
        async with open_store(cfg.store_url) as store:
            homed = PrefixSet(await store.homed_prefixes())
            for handle, _ in records:
                if not homed.responsible_for(handle):
                    raise IdnodeError(f"{handle}: prefix not homed by this node")
            await store.load(records, overwrite=overwrite)
            return len(records)

    try:
        count = asyncio.run(run())
    except IdnodeError as exc:
        fail(f"nothing loaded: {exc}")
    out.print(f"loaded {count} handles")


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc) or exc.__class__.__name__
