"""``idnode verify``: run the conformance suite against any Handle server.

Exit codes: 0 every must-check passed; 1 the verification ran and a must-check failed (an
unreachable or garbage-answering target, or a wrong credential, ends here too, with a
message per check); 2 the command line itself was wrong.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from idnode import cli_common
from idnode.verify.conformance.catalogue import all_checks, markdown, select
from idnode.verify.conformance.context import Credentials
from idnode.verify.conformance.probes import parse_hostport
from idnode.verify.conformance.runner import Options, Target, run

OK, FAILED, USAGE = 0, 1, 2

verify_app = typer.Typer(
    help="Run the conformance suite against a Handle server (ours or anyone's).",
    add_completion=False,
    no_args_is_help=False,
)


def usage(message: str) -> NoReturn:
    Console(stderr=True).print(f"[red]usage error:[/] {message}")
    raise typer.Exit(USAGE)


def _credentials(
    admin: str | None, secret_file: Path | None, private_key: Path | None, passphrase: str | None
) -> Credentials | None:
    from idnode.auth.identity import Identity
    from idnode.errors import IdnodeError

    if admin is None:
        if secret_file or private_key:
            usage("--secret-key-file / --private-key need --admin INDEX:HANDLE")
        return None
    try:
        identity = Identity.parse(admin)
    except IdnodeError as exc:
        usage(f"--admin: {exc}")
    if (secret_file is None) == (private_key is None):
        usage("--admin needs exactly one of --secret-key-file and --private-key")
    if secret_file is not None:
        try:
            secret = secret_file.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            usage(f"cannot read {secret_file}: {exc.strerror}")
        if not secret:
            usage(f"{secret_file} is empty")
        return Credentials(identity, secret=secret)
    assert private_key is not None
    return Credentials(identity, private_key=_load_key(private_key, passphrase))


def _load_key(path: Path, passphrase: str | None):
    from idnode.crypto.keys import decode_private_key_file, load_private_key_pem
    from idnode.errors import IdnodeError

    try:
        data = path.read_bytes()
    except OSError as exc:
        usage(f"cannot read {path}: {exc.strerror}")
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return load_private_key_pem(data, passphrase)
        return decode_private_key_file(data, passphrase)
    except (IdnodeError, ValueError, TypeError) as exc:
        usage(f"{path} is not a usable private key: {exc}")


@verify_app.callback(invoke_without_command=True)
def verify(
    udp: Annotated[str | None, typer.Option(help="UDP endpoint host:port")] = None,
    tcp: Annotated[str | None, typer.Option(help="TCP endpoint host:port")] = None,
    http: Annotated[str | None, typer.Option(help="HTTP base URL, e.g. http://host:8000")] = None,
    admin: Annotated[
        str | None, typer.Option(help="identity for the admin checks, e.g. 300:0.NA/20.500")
    ] = None,
    secret_key_file: Annotated[
        Path | None, typer.Option(help="file holding the HS_SECKEY secret of --admin")
    ] = None,
    private_key: Annotated[
        Path | None, typer.Option(help="private key (PEM or HSJ file) of --admin's HS_PUBKEY")
    ] = None,
    passphrase: Annotated[str | None, typer.Option(help="passphrase of --private-key")] = None,
    prefix: Annotated[
        str | None,
        typer.Option(help="prefix to write test identifiers under (default: from --admin)"),
    ] = None,
    handle: Annotated[
        str | None, typer.Option(help="an existing handle for read-only checks")
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option(help="check ids, id prefixes (ENV) or categories")
    ] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for one answer")] = 2.0,
    check_timeout: Annotated[float, typer.Option(help="seconds one check may take")] = 30.0,
    bound: Annotated[float, typer.Option(help="timing bound for one answer, seconds")] = 1.0,
    junit: Annotated[Path | None, typer.Option(help="write JUnit XML here")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write JSON here")] = None,
    html: Annotated[Path | None, typer.Option(help="write the HTML report here")] = None,
    load_report: Annotated[
        Path | None, typer.Option(help="an `idnode bench` JSON report for the HTML page")
    ] = None,
    sample: Annotated[bool, typer.Option(help="take the built-in timing sample")] = True,
    idis: Annotated[
        bool, typer.Option("--idis", help="the target serves the IDIS SDK: run the idis checks")
    ] = False,
    list_checks: Annotated[
        bool, typer.Option("--list", help="print the catalogue (Markdown) and exit")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="list passes too")] = False,
) -> None:
    checks = select(all_checks(), only or [])
    if list_checks:
        typer.echo(markdown(checks))
        raise typer.Exit(OK)
    if only and not checks:
        usage(f"--only {only} matches no check")
    if not (udp or tcp or http):
        usage("give at least one of --udp, --tcp, --http")
    try:
        target = Target(
            parse_hostport(udp) if udp else None,
            parse_hostport(tcp) if tcp else None,
            http.rstrip("/") if http else None,
        )
    except ValueError as exc:
        usage(str(exc))
    if http and not http.startswith(("http://", "https://")):
        usage(f"--http must be a URL starting with http:// or https://, got {http!r}")
    creds = _credentials(
        admin, secret_file=secret_key_file, private_key=private_key, passphrase=passphrase
    )
    if prefix is None and creds is not None and creds.identity.handle.upper().startswith("0.NA/"):
        prefix = creds.identity.handle[5:]
    loaded = None
    if load_report is not None:
        try:
            loaded = json.loads(load_report.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            usage(f"cannot read --load-report {load_report}: {exc}")
    for path in (junit, json_out, html):
        if path is not None and not path.parent.exists():
            usage(f"directory {path.parent} does not exist")
    opts = Options(
        target,
        prefix,
        handle,
        creds,
        timeout,
        check_timeout,
        bound,
        sample,
        idis,
        runtime=cli_common.RUNTIME,  # the process's real clock and entropy
    )
    code = execute(checks, opts, junit, json_out, html, loaded, verbose)
    raise typer.Exit(code)


def execute(checks, opts: Options, junit, json_out, html, loaded, verbose: bool) -> int:
    """Run and write the reports; the exit code."""
    from idnode.verify.conformance import reports

    console = Console(stderr=False)
    report = asyncio.run(run(checks, opts))
    reports.print_summary(report, console, verbose)
    if json_out:
        reports.write_json(report, json_out, loaded)
    if junit:
        reports.write_junit(report, junit)
    if html:
        reports.write_html(report, html, loaded)
    return OK if report.ok else FAILED


def main() -> None:
    verify_app(prog_name="idnode verify")


if __name__ == "__main__":
    main()
    sys.exit(0)
