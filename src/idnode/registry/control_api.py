"""Management API routes for account control, organisation control and registry work
(search, field updates, bulk state changes, the list of import jobs), added to the app
``api.build_api`` makes, with its authentication and error handling.

* ``POST /accounts/{name}/revoke-token | disable | enable | rotate`` (``account_control.py``);
* ``POST /organisations/{id}/suspend | reinstate | dissolve``, ``PATCH /organisations/{id}``
  (operators; ``org_control.py``);
* ``GET /identifiers?prefix=P&field=BATCH=B1&state=suspended&after=KEY&limit=N``
  (``search.py``), ``PATCH /identifiers/{handle}`` (``records.py``);
* ``POST /bulk/state`` with a query, the new state and ``dry_run`` (``bulk.py``);
* ``GET /imports?state=&limit=&offset=`` (``import_jobs.py``).
"""

# no "from __future__ import annotations": FastAPI reads the local Caller alias at def time

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query
from pydantic import BaseModel, Field

from idnode.registry.account_control import AccountControl
from idnode.registry.accounts import Account
from idnode.registry.bulk import BulkStates
from idnode.registry.errors import Forbidden, RegistryError
from idnode.registry.import_jobs import MAX_JOBS, list_jobs
from idnode.registry.org_control import OrgControl
from idnode.registry.records import update_fields
from idnode.registry.search import MAX_PAGE, Search, parse_field_filters
from idnode.registry.search import Query as SearchQuery
from idnode.registry.service import Registry

MAX_ID = 2**63 - 1


class Reason(BaseModel):
    reason: str = ""


class OrgEdit(BaseModel):
    legal_name: str | None = None
    contact: dict[str, str] | None = None
    documents: list[dict[str, Any]] | None = None


class FieldUpdate(BaseModel):
    fields: dict[str, str] = Field(description="template fields; '' removes an optional one")


class BulkChange(BaseModel):
    prefix: str
    fields: dict[str, str] = Field(default_factory=dict, description="e.g. {'BATCH': 'B1'}")
    date_field: str = "PRODUCTION_DATE"
    date_from: str = ""
    date_to: str = ""
    where_state: str = Field("", description="only identifiers now in this state")
    state: str = Field(description="active | suspended | revoked")
    reason: str = ""
    dry_run: bool = Field(True, description="count only (the default); false to change")


def install(
    app: FastAPI,
    reg: Registry,
    caller: Callable[..., Awaitable[Account]],
    prefix_scope: Callable[[Account, str], Awaitable[dict[str, Any]]],
) -> None:
    """Add the routes; ``caller`` and ``prefix_scope`` are ``build_api``'s own."""
    Caller = Annotated[Account, Depends(caller)]
    accounts, orgs = AccountControl(reg), OrgControl(reg)
    search, bulk = Search(reg), BulkStates(reg)
    OrgId = Annotated[int, Path(ge=1, le=MAX_ID, description="organisation id")]

    def operator_only(account: Account) -> None:
        if not account.is_operator:
            raise Forbidden("only a node operator may do this", field="Authorization")

    # -- accounts ---------------------------------------------------------------------------
    @app.post("/accounts/{name}/{action}", tags=["accounts"])
    async def control_account(who: Caller, name: str, action: str) -> dict[str, Any]:
        """revoke-token | disable | enable | rotate; enable and rotate show the new token
        once."""
        do = {"revoke-token": accounts.revoke_token, "disable": accounts.disable,
              "enable": accounts.enable, "rotate": accounts.rotate}.get(action)  # fmt: skip
        if do is None:
            raise RegistryError("unknown action", field="action", status=404)
        return await do(who, name)

    # -- organisations ----------------------------------------------------------------------
    @app.post("/organisations/{org_id}/suspend", tags=["organisations"])
    async def suspend_org(who: Caller, org_id: OrgId, body: Reason) -> dict[str, Any]:
        operator_only(who)
        return await orgs.suspend(who, org_id, body.reason)

    @app.post("/organisations/{org_id}/reinstate", tags=["organisations"])
    async def reinstate_org(who: Caller, org_id: OrgId) -> dict[str, Any]:
        operator_only(who)
        return await orgs.reinstate(who, org_id)

    @app.post("/organisations/{org_id}/dissolve", tags=["organisations"])
    async def dissolve_org(who: Caller, org_id: OrgId, body: Reason) -> dict[str, Any]:
        operator_only(who)
        return await orgs.dissolve(who, org_id, body.reason)

    @app.patch("/organisations/{org_id}", tags=["organisations"])
    async def edit_org(who: Caller, org_id: OrgId, body: OrgEdit) -> dict[str, Any]:
        operator_only(who)
        return await orgs.edit(who, org_id, body.model_dump(exclude_none=True))

    # -- identifiers ------------------------------------------------------------------------
    @app.get("/identifiers", tags=["identifiers"])
    async def search_identifiers(
        who: Caller,
        prefix: str,
        field: list[str] = Query([], description="NAME=VALUE, repeatable"),  # noqa: B008
        batch: str = "",
        serial: str = "",
        model: str = "",
        date_field: str = "PRODUCTION_DATE",
        date_from: str = Query("", alias="from"),
        date_to: str = Query("", alias="to"),
        state: str = "",
        after: str = "",
        limit: int = Query(100, ge=1, le=MAX_PAGE),
    ) -> dict[str, Any]:
        await prefix_scope(who, prefix)
        fields = parse_field_filters(field)
        for name, value in (("BATCH", batch), ("SERIAL", serial), ("MODEL", model)):
            if value:
                fields[name] = value
        q = SearchQuery(prefix, fields, date_field, date_from, date_to, state)
        return await search.page(q, after=after, limit=limit)

    @app.patch("/identifiers/{handle:path}", tags=["identifiers"])
    async def update_identifier(who: Caller, handle: str, body: FieldUpdate) -> dict[str, Any]:
        """Change template fields (validated against the template; the history keeps the
        version replaced)."""
        return await update_fields(reg, who, handle, body.fields)

    @app.post("/bulk/state", tags=["identifiers"])
    async def bulk_state(who: Caller, body: BulkChange) -> dict[str, Any]:
        """Suspend, reactivate or revoke every identifier a query matches; dry_run (the
        default) only counts."""
        await prefix_scope(who, body.prefix)
        q = SearchQuery(body.prefix, body.fields, body.date_field, body.date_from,
                        body.date_to, body.where_state)  # fmt: skip
        return await bulk.change(who, q, body.state, body.reason, dry_run=body.dry_run)

    # -- import jobs ------------------------------------------------------------------------
    @app.get("/imports", tags=["imports"])
    async def import_jobs(
        who: Caller,
        state: str = "",
        limit: int = Query(50, ge=1, le=MAX_JOBS),
        offset: int = Query(0, ge=0, le=MAX_ID),
    ) -> dict[str, Any]:
        prefixes = None
        if not who.is_operator:
            prefixes = [p["prefix"] for p in await reg.prefixes.list(who.org_id)]
        return await list_jobs(reg, prefixes=prefixes, state=state, limit=limit, offset=offset)
