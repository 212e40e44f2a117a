"""``idnode template add|publish|list|show|bind|records|validate``: thin clients of the
management API routes in ``template_api.py`` (the running node keeps its catalog, so the
commands go through it). An error is one line on stderr and a non-zero exit status."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from idnode.cli_common import emit, fail

ApiOpt = Annotated[str, typer.Option(envvar="IDNODE_API", help="node HTTP base URL")]
TokenOpt = Annotated[str, typer.Option(envvar="IDNODE_TOKEN", help="API token")]
PrefixOpt = Annotated[str, typer.Option("--prefix", help="enterprise prefix, e.g. 88.123.1")]
DEFAULT_API = "http://127.0.0.1:8000"


def build(call: Callable[..., Any]) -> typer.Typer:
    """The ``template`` command group; ``call`` is ``registry.cli.call``."""
    app = typer.Typer(help="Sector templates: add, publish, bind, re-validate.",
                      no_args_is_help=True)  # fmt: skip

    @app.command("add")
    def add(file: Path, api: ApiOpt = DEFAULT_API, token: TokenOpt = "") -> None:
        """Store a draft from a template JSON file (the shipped ones are examples)."""
        try:
            document = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            fail(f"{file}: {exc}", 2)
        emit(call(api, token, "POST", "/templates", document))

    @app.command("publish")
    def publish(ref: str, api: ApiOpt = DEFAULT_API, token: TokenOpt = "") -> None:
        """Publish a draft (id@version); it never changes afterwards."""
        emit(call(api, token, "POST", f"/templates/{ref}/publish"))

    @app.command("list")
    def list_(api: ApiOpt = DEFAULT_API, token: TokenOpt = "") -> None:
        """Every template version, shipped and the operator's, with its state."""
        emit(call(api, token, "GET", "/template-versions"))

    @app.command("show")
    def show(ref: str, api: ApiOpt = DEFAULT_API, token: TokenOpt = "") -> None:
        """One template (id@version, or an id for its latest published) with its schema."""
        emit(call(api, token, "GET", f"/templates/{ref}/state"))

    @app.command("bind")
    def bind(prefix: str, ref: str, api: ApiOpt = DEFAULT_API, token: TokenOpt = "") -> None:
        """Check a prefix's later writes against a published version (records keep theirs)."""
        emit(call(api, token, "PUT", f"/prefixes/{prefix}/template", {"template": ref}))

    @app.command("records")
    def records(ref: str, prefix: PrefixOpt, limit: int = 1000, after: str = "",
                api: ApiOpt = DEFAULT_API, token: TokenOpt = "") -> None:  # fmt: skip
        """Identifiers of a prefix validated against REF (``any``: show each one's version)."""
        params = {"prefix": prefix, "limit": limit, "after": after}
        emit(call(api, token, "GET", f"/templates/{ref}/records", params=params))

    @app.command("validate")
    def validate(ref: str, prefix: PrefixOpt, limit: int = 10_000,
                 api: ApiOpt = DEFAULT_API, token: TokenOpt = "") -> None:  # fmt: skip
        """Report which records of other versions would fail REF; changes nothing. Exit
        status 1 if any would fail."""
        report = call(api, token, "POST", f"/templates/{ref}/validate",
                      {"prefix": prefix, "limit": limit})  # fmt: skip
        emit(report)
        if report.get("failed"):
            raise typer.Exit(1)

    return app
