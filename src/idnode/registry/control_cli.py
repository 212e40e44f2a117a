"""``idnode account revoke-token|disable|enable|rotate``, ``idnode org suspend|reinstate|edit|
dissolve``, ``idnode handle search|update|bulk-state`` and ``idnode imports list``: thin
clients of the management API routes in ``control_api.py``, added to the registry's command
groups by ``registry.cli.register``. An error is one line on stderr and exit status 1."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from idnode.cli_common import emit, fail

ApiOpt = Annotated[str, typer.Option(envvar="IDNODE_API", help="node HTTP base URL")]
TokenOpt = Annotated[str, typer.Option(envvar="IDNODE_TOKEN", help="API token")]
DEFAULT_API = "http://127.0.0.1:8000"
FieldOpt = Annotated[list[str], typer.Option("--field", help="NAME=VALUE (repeatable)")]


def _pairs(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name:
            fail(f"--field {item!r}: want NAME=VALUE", 2)
        out[name] = value
    return out


def add_commands(
    call: Callable[..., Any],
    org_app: typer.Typer,
    account_app: typer.Typer,
    handle_app: typer.Typer,
    app: typer.Typer,
) -> None:
    """Add the commands; ``call`` is ``registry.cli.call`` (one API request)."""

    def account_action(action: str) -> Callable[..., None]:
        def command(name: str, api: ApiOpt = DEFAULT_API, token: TokenOpt = "") -> None:
            emit(call(api, token, "POST", f"/accounts/{name}/{action}"))

        command.__doc__ = {
            "revoke-token": "Revoke an account's token now (REST and binary protocol).",
            "disable": "Disable an account: every token and key of it is refused at once.",
            "enable": "Re-enable an account; prints its new token (shown once).",
            "rotate": "Rotate an account's token and key; prints the new token (once).",
        }[action]
        return command

    for action in ("revoke-token", "disable", "enable", "rotate"):
        account_app.command(action)(account_action(action))

    @org_app.command("suspend")
    def org_suspend(org_id: int, reason: Annotated[str, typer.Option()],
                    api: ApiOpt = DEFAULT_API, token: TokenOpt = "") -> None:  # fmt: skip
        """Suspend an organisation; its allocated prefixes are suspended with it."""
        emit(call(api, token, "POST", f"/organisations/{org_id}/suspend", {"reason": reason}))

    @org_app.command("reinstate")
    def org_reinstate(org_id: int, api: ApiOpt = DEFAULT_API, token: TokenOpt = "") -> None:
        """Reinstate a suspended organisation and the prefixes its suspension closed."""
        emit(call(api, token, "POST", f"/organisations/{org_id}/reinstate"))

    @org_app.command("dissolve")
    def org_dissolve(org_id: int, reason: Annotated[str, typer.Option()],
                     api: ApiOpt = DEFAULT_API, token: TokenOpt = "") -> None:  # fmt: skip
        """Dissolve (final): prefixes withdrawn, accounts disabled."""
        emit(call(api, token, "POST", f"/organisations/{org_id}/dissolve", {"reason": reason}))

    @org_app.command("edit")
    def org_edit(
        org_id: int,
        name: Annotated[str, typer.Option(help="new legal name")] = "",
        contact_name: str = "",
        contact_phone: str = "",
        contact_email: str = "",
        api: ApiOpt = DEFAULT_API,
        token: TokenOpt = "",
    ) -> None:
        """Change an organisation's legal name or contact (audited)."""
        body: dict[str, Any] = {}
        if name:
            body["legal_name"] = name
        if contact_name or contact_phone or contact_email:
            if not (contact_name and contact_phone and contact_email):
                fail("give --contact-name, --contact-phone and --contact-email together", 2)
            body["contact"] = {"name": contact_name, "phone": contact_phone,
                               "email": contact_email}  # fmt: skip
        emit(call(api, token, "PATCH", f"/organisations/{org_id}", body))

    @handle_app.command("search")
    def handle_search(
        prefix: str,
        field: FieldOpt = [],  # noqa: B006
        batch: str = "",
        serial: str = "",
        model: str = "",
        date_field: str = "PRODUCTION_DATE",
        date_from: Annotated[str, typer.Option("--from", help="YYYY-MM-DD")] = "",
        date_to: Annotated[str, typer.Option("--to", help="YYYY-MM-DD")] = "",
        state: Annotated[str, typer.Option(help="active | suspended | revoked")] = "",
        after: Annotated[str, typer.Option(help="'next' of the previous page")] = "",
        limit: int = 100,
        api: ApiOpt = DEFAULT_API,
        token: TokenOpt = "",
    ) -> None:
        """Search identifiers of a prefix by template field, date range and state."""
        params: dict[str, Any] = {"prefix": prefix, "field": field, "batch": batch,
                                  "serial": serial, "model": model, "date_field": date_field,
                                  "from": date_from, "to": date_to, "state": state,
                                  "after": after, "limit": limit}  # fmt: skip
        emit(
            call(
                api,
                token,
                "GET",
                "/identifiers",
                params={k: v for k, v in params.items() if v not in ("", [])},
            )
        )

    @handle_app.command("update")
    def handle_update(handle: str, field: FieldOpt = [],  # noqa: B006
                      api: ApiOpt = DEFAULT_API, token: TokenOpt = "") -> None:  # fmt: skip
        """Change template fields of one identifier (NAME= removes an optional field)."""
        if not field:
            fail("name at least one --field NAME=VALUE", 2)
        emit(call(api, token, "PATCH", f"/identifiers/{handle}", {"fields": _pairs(field)}))

    @handle_app.command("bulk-state")
    def handle_bulk_state(
        prefix: str,
        state: Annotated[str, typer.Argument(help="active | suspended | revoked")],
        field: FieldOpt = [],  # noqa: B006
        date_field: str = "PRODUCTION_DATE",
        date_from: Annotated[str, typer.Option("--from")] = "",
        date_to: Annotated[str, typer.Option("--to")] = "",
        where_state: Annotated[str, typer.Option(help="only those now in this state")] = "",
        reason: str = "",
        apply: Annotated[bool, typer.Option("--apply", help="change (default: count)")] = False,
        api: ApiOpt = DEFAULT_API,
        token: TokenOpt = "",
    ) -> None:
        """Recall: change the state of every identifier a query matches. Without --apply
        only counts what would change."""
        body = {"prefix": prefix, "fields": _pairs(field), "date_field": date_field,
                "date_from": date_from, "date_to": date_to, "where_state": where_state,
                "state": state, "reason": reason, "dry_run": not apply}  # fmt: skip
        emit(call(api, token, "POST", "/bulk/state", body))

    imports_app = typer.Typer(help="Import jobs.", no_args_is_help=True)

    @imports_app.command("list")
    def imports_list(state: Annotated[str, typer.Option(help="queued|running|done|failed")] = "",
                     limit: int = 50, offset: int = 0,
                     api: ApiOpt = DEFAULT_API, token: TokenOpt = "") -> None:  # fmt: skip
        """The import jobs you may see, newest first, with their state and figures."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if state:
            params["state"] = state
        emit(call(api, token, "GET", "/imports", params=params))

    app.add_typer(imports_app, name="imports")
