"""``idnode org|prefix|account|import|audit|stats``: the registry's command line.

Review commands (org, prefix, identifier state) talk to the running node's management API
(``--api``, ``--token``, or ``IDNODE_API`` / ``IDNODE_TOKEN``), because allocation changes what
the serving process homes. Commands that only need the node's files run locally on the node
directory: ``account create-operator`` (the first token), ``import`` (bulk registration
straight into the store, the fastest path), ``audit verify`` and ``stats report``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import orjson
import typer

from idnode.cli_common import emit, fail, on_local_node
from idnode.registry.audit_cli import audit_app
from idnode.registry.control_cli import add_commands as add_control_commands
from idnode.registry.template_cli import build as build_template_app

T = TypeVar("T")

ApiOpt = Annotated[str, typer.Option(envvar="IDNODE_API", help="node HTTP base URL")]
TokenOpt = Annotated[str, typer.Option(envvar="IDNODE_TOKEN", help="API token")]
DirOpt = Annotated[Path, typer.Option("--dir", help="node directory")]
DEFAULT_API = "http://127.0.0.1:8000"
UPLOAD_CHUNK = 1024 * 1024  # bytes per piece of a streamed import file
POLL_SECONDS = 0.5  # between two looks at a running import job

org_app = typer.Typer(help="Organisations and real-name review.", no_args_is_help=True)
prefix_app = typer.Typer(help="Enterprise prefixes.", no_args_is_help=True)
account_app = typer.Typer(help="Management API accounts.", no_args_is_help=True)
stats_app = typer.Typer(help="Statistics and monthly reports.", no_args_is_help=True)
handle_app = typer.Typer(help="Identifier lifecycle.", no_args_is_help=True)


def call(api: str, token: str, method: str, path: str, body: Any = None, **kw: Any) -> Any:
    """One management API call; a JSON error becomes one line naming the field."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        r = httpx.request(
            method,
            api.rstrip("/") + "/api/mgmt" + path,
            json=body,
            headers=headers,
            timeout=60,
            **kw,
        )
    except httpx.HTTPError as exc:
        fail(f"cannot reach {api}: {exc}")
    return _answer(r)


def _answer(r: httpx.Response) -> Any:
    """The JSON (or text) of a management API answer; an error becomes one line."""
    if r.status_code >= 400:
        try:
            e = r.json()["error"]
            fail(f"{e['field']}: {e['message']}" if e.get("field") else e["message"])
        except (ValueError, KeyError, TypeError):
            fail(f"HTTP {r.status_code}: {r.text[:200]}")
    return r.json() if "json" in r.headers.get("content-type", "") else r.text


def local(directory: Path, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(registry)`` on the node directory, without any server work."""

    async def with_registry(node: Any) -> T:
        if node.registry is None:
            fail("this node homes no prefix, so it has no registry")
        return await work(node.registry)

    return on_local_node(directory, with_registry)


# -- organisations ------------------------------------------------------------------------
@org_app.command("apply")
def org_apply(
    name: Annotated[str, typer.Option(help="legal name")],
    code: Annotated[str, typer.Option(help="unified social credit code")],
    contact_name: Annotated[str, typer.Option()],
    contact_phone: Annotated[str, typer.Option()],
    contact_email: Annotated[str, typer.Option()],
    document: Annotated[
        list[str], typer.Option(help="NAME:SHA256 of a supporting document (repeatable)")
    ] = [],  # noqa: B006
    api: ApiOpt = DEFAULT_API,
) -> None:
    """Apply as an enterprise (no account needed)."""
    docs = []
    for d in document:
        n, _, digest = d.rpartition(":")
        docs.append({"name": n, "sha256": digest})
    contact = {"name": contact_name, "phone": contact_phone, "email": contact_email}
    body = {"legal_name": name, "credit_code": code, "contact": contact, "documents": docs}
    emit(call(api, "", "POST", "/organisations", body))


@org_app.command("approve")
def org_approve(
    org_id: int, admin_name: str = "", api: ApiOpt = DEFAULT_API, token: TokenOpt = ""
) -> None:
    """Approve; prints the organisation admin's token (shown once)."""
    params = {"admin_name": admin_name} if admin_name else None
    emit(call(api, token, "POST", f"/organisations/{org_id}/approve", params=params))


@org_app.command("reject")
def org_reject(
    org_id: int,
    reason: Annotated[str, typer.Option()],
    api: ApiOpt = DEFAULT_API,
    token: TokenOpt = "",
) -> None:
    emit(call(api, token, "POST", f"/organisations/{org_id}/reject", {"reason": reason}))


@org_app.command("list")
def org_list(state: str = "", api: ApiOpt = DEFAULT_API, token: TokenOpt = "") -> None:
    emit(call(api, token, "GET", "/organisations", params={"state": state} if state else None))


# -- prefixes -----------------------------------------------------------------------------
@prefix_app.command("apply")
def prefix_apply(
    prefix: str,
    template: Annotated[str, typer.Option(help="e.g. auto-parts")],
    org_id: Annotated[int | None, typer.Option(help="operators: for which organisation")] = None,
    api: ApiOpt = DEFAULT_API,
    token: TokenOpt = "",
) -> None:
    body = {"prefix": prefix, "template": template, "org_id": org_id}
    emit(call(api, token, "POST", "/prefixes", body))


def _prefix_action(action: str, needs_reason: bool) -> Callable[..., None]:
    def command(
        prefix: str,
        reason: Annotated[str, typer.Option(help="why (suspend, revoke, reject)")] = "",
        api: ApiOpt = DEFAULT_API,
        token: TokenOpt = "",
    ) -> None:
        if needs_reason and not reason:
            fail("--reason is required", 2)
        emit(call(api, token, "POST", f"/prefixes/{prefix}/{action}", {"reason": reason}))

    command.__doc__ = f"{action.capitalize()} an enterprise prefix (operator)."
    return command


for _action, _reason in (
    ("approve", False), ("reject", True), ("allocate", False), ("suspend", True),
    ("reinstate", False), ("revoke", True),
):  # fmt: skip
    prefix_app.command(_action)(_prefix_action(_action, _reason))


# -- identifiers --------------------------------------------------------------------------
@handle_app.command("state")
def handle_state(
    handle: str,
    state: Annotated[str, typer.Argument(help="active | suspended | revoked")],
    reason: str = "",
    api: ApiOpt = DEFAULT_API,
    token: TokenOpt = "",
) -> None:
    """Suspend, reactivate or revoke one identifier."""
    emit(call(api, token, "POST", f"/identifiers/{handle}/state/{state}", {"reason": reason}))


# -- accounts -----------------------------------------------------------------------------
@account_app.command("create-operator")
def account_create_operator(
    directory: Annotated[Path, typer.Argument(help="node directory")],
    name: Annotated[str, typer.Option(help="account name")] = "operator",
    ttl: Annotated[int | None, typer.Option(help="token lifetime in seconds")] = None,
) -> None:
    """Make a node-operator account on the node's files; prints its token (once)."""
    from idnode.registry.accounts import OPERATOR

    async def work(reg: Any) -> dict[str, Any]:
        account, token, _ = await reg.accounts.create("console", name, OPERATOR, ttl_seconds=ttl)
        return {**account.describe(), "token": token}

    emit(local(directory, work))


# -- import -------------------------------------------------------------------------------
def import_command(
    file: Annotated[Path, typer.Argument(help="CSV (header: suffix + fields) or .jsonl")],
    prefix: Annotated[str, typer.Option(help="enterprise prefix, e.g. 88.123.4567")],
    template: Annotated[str | None, typer.Option(help="must match the prefix's")] = None,
    directory: DirOpt = Path("var"),
    format: Annotated[str | None, typer.Option(help="csv | jsonl (default: by suffix)")] = None,
    strict: Annotated[bool, typer.Option(help="import nothing if any row is bad")] = False,
    batch_size: int = 10_000,
    report: Annotated[Path | None, typer.Option(help="write rejected rows (CSV) here")] = None,
    resume: Annotated[str | None, typer.Option(help="resume this job id")] = None,
    api: Annotated[
        str, typer.Option(help="node HTTP base URL: import through its management API")
    ] = "",
    token: TokenOpt = "",
) -> None:
    """Bulk-register identifiers: into the node directory's store as the node operator, or
    with --api through the management API as the token's account (the file is streamed).
    Exits 1 when the job fails or when every row was rejected."""
    from idnode.registry.imports import sniff_format

    if not file.exists():
        fail(f"{file}: no such file", 2)
    fmt = format or sniff_format(file)
    if api:
        if resume:
            fail("--resume works on the node directory; an API job resumes by itself", 2)
        job = api_import(api, token, file, prefix, fmt, template, strict, batch_size)
        if report is not None:
            text = call(api, token, "GET", f"/imports/{job['id']}/rejects")
            report.write_text(text, encoding="utf-8")
        emit(job)
        _judge(job)
        return

    async def work(reg: Any) -> dict[str, Any]:
        if resume:
            job_id = resume
        else:
            job = await reg.imports.create(
                reg.operator,
                "console",
                prefix,
                file,
                fmt,
                template,
                batch_size=batch_size,
                strict=strict,
                origin="console",
            )
            job_id = job["id"]
        monotonic = reg.clock.monotonic
        started = monotonic()
        job = await reg.imports.run(job_id)
        job["seconds"] = round(monotonic() - started, 3)
        if report is not None:
            report.write_text(await reg.imports.rejects_csv(job_id), encoding="utf-8")
        return job

    job = local(directory, work)
    emit(job)
    _judge(job)


def _judge(job: dict[str, Any]) -> None:
    """Exit 1 unless the job finished and registered something (or had nothing to do)."""
    if job["state"] != "done":
        fail(f"import {job['id']} {job['state']}: {job['error']}")
    if not job.get("imported") and job.get("rejected"):
        fail(f"import {job['id']}: every row was rejected ({job['rejected']}); see --report")


def api_import(
    api: str,
    token: str,
    file: Path,
    prefix: str,
    fmt: str,
    template: str | None,
    strict: bool,
    batch_size: int,
) -> dict[str, Any]:
    """Stream ``file`` to ``POST /api/mgmt/imports`` and wait for the job to finish."""
    params: dict[str, Any] = {"prefix": prefix, "format": fmt, "strict": str(strict).lower(),
                              "batch_size": batch_size}  # fmt: skip
    if template:
        params["template"] = template
    headers = {"content-length": str(file.stat().st_size), "content-type": "text/plain"}
    if token:
        headers["authorization"] = f"Bearer {token}"

    def chunks() -> Iterator[bytes]:
        with file.open("rb") as fh:
            while chunk := fh.read(UPLOAD_CHUNK):
                yield chunk

    try:
        r = httpx.post(api.rstrip("/") + "/api/mgmt/imports", params=params, content=chunks(),
                       headers=headers, timeout=httpx.Timeout(60, write=600))  # fmt: skip
    except httpx.HTTPError as exc:
        fail(f"cannot reach {api}: {exc}")
    job = _answer(r)
    while job["state"] not in ("done", "failed"):
        time.sleep(POLL_SECONDS)
        job = call(api, token, "GET", f"/imports/{job['id']}")
    return job


# -- statistics (audit: registry.audit_cli) ------------------------------------------------
@stats_app.command("report")
def stats_report(
    month: Annotated[str, typer.Option(help="YYYY-MM")],
    directory: Annotated[Path, typer.Argument(help="node directory")] = Path("var"),
    format: Annotated[str, typer.Option(help="json | csv")] = "json",
    output: Annotated[Path | None, typer.Option("--out", help="file to write")] = None,
) -> None:
    """The monthly report a secondary node sends its top-level node."""
    from idnode.registry.stats import report_csv

    if format not in ("json", "csv"):
        fail("--format must be json or csv", 2)

    async def work(reg: Any) -> dict[str, Any]:
        return await reg.stats.monthly_report(month)

    data = local(directory, work)
    text = (
        report_csv(data)
        if format == "csv"
        else orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n"
    )
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


def register(app: typer.Typer) -> None:
    """Add the registry's commands to the ``idnode`` app."""
    app.add_typer(org_app, name="org")
    app.add_typer(prefix_app, name="prefix")
    app.add_typer(account_app, name="account")
    app.add_typer(handle_app, name="handle")
    app.add_typer(audit_app, name="audit")
    app.add_typer(stats_app, name="stats")
    app.command("import")(import_command)
    add_control_commands(call, org_app, account_app, handle_app, app)
    app.add_typer(build_template_app(call), name="template")
