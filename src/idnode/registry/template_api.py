"""Management API routes for operators' templates (``custom_templates.py``), added to the app
``api.build_api`` makes, with its authentication and error handling:

* ``POST /templates`` a draft (the document as body), ``POST /templates/{ref}/publish``;
* ``GET /template-versions`` every version with its state, ``GET /templates/{ref}/state``;
* ``PUT /prefixes/{prefix}/template`` ``{"template": "id@version"}``;
* ``GET /templates/{ref}/records?prefix=P`` and ``POST /templates/{ref}/validate``
  ``{"prefix": P}``: the records on a version, and the report of which would fail ``ref``.

Adding, publishing and binding are the node operator's; listing and re-validating the
records of a prefix are also its organisation's.
"""

# no "from __future__ import annotations": FastAPI reads the local Caller alias at def time

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Query
from pydantic import BaseModel, Field

from idnode.registry.accounts import Account
from idnode.registry.custom_templates import MAX_VALIDATE, CustomTemplates
from idnode.registry.errors import Forbidden


class Bind(BaseModel):
    template: str = Field(description="a published id@version, e.g. auto-parts@2")


class Revalidate(BaseModel):
    prefix: str
    limit: int = Field(MAX_VALIDATE, ge=1, le=MAX_VALIDATE)


def install(
    app: FastAPI,
    templates: CustomTemplates,
    caller: Callable[..., Awaitable[Account]],
    prefix_scope: Callable[[Account, str], Awaitable[dict[str, Any]]],
) -> None:
    """Add the routes; ``caller`` and ``prefix_scope`` are ``build_api``'s own."""
    Caller = Annotated[Account, Depends(caller)]
    reg = templates.reg

    def operator_only(account: Account) -> None:
        if not account.is_operator:
            raise Forbidden("only a node operator may do this", field="Authorization")

    @app.post("/templates", status_code=201, tags=["templates"])
    async def add_template(
        who: Caller, document: Annotated[dict[str, Any], Body()]
    ) -> dict[str, Any]:
        """Store a draft template (``version`` omitted: the next one)."""
        operator_only(who)
        return await templates.add(reg.actor(who), document)

    @app.post("/templates/{ref}/publish", tags=["templates"])
    async def publish_template(who: Caller, ref: str) -> dict[str, Any]:
        operator_only(who)
        return await templates.publish(reg.actor(who), ref)

    @app.get("/template-versions", tags=["templates"])
    async def template_versions(who: Caller) -> list[dict[str, Any]]:
        operator_only(who)
        return await templates.list()

    @app.get("/templates/{ref}/state", tags=["templates"])
    async def template_state(who: Caller, ref: str) -> dict[str, Any]:
        operator_only(who)
        return await templates.show(ref)

    @app.put("/prefixes/{prefix}/template", tags=["templates"])
    async def bind_template(who: Caller, prefix: str, body: Bind) -> dict[str, Any]:
        operator_only(who)
        return await templates.bind(reg.actor(who), prefix, body.template)

    @app.get("/templates/{ref}/records", tags=["templates"])
    async def template_records(
        who: Caller,
        ref: str,
        prefix: str,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        after: str = "",
    ) -> dict[str, Any]:
        """Identifiers of ``prefix`` validated against ``ref`` (``any``: every version)."""
        await prefix_scope(who, prefix)
        rows = await templates.records(prefix, "" if ref == "any" else ref, limit, after)
        return {"prefix": prefix, "template": ref, "records": rows}

    @app.post("/templates/{ref}/validate", tags=["templates"])
    async def revalidate(who: Caller, ref: str, body: Revalidate) -> dict[str, Any]:
        """Which records of other versions would fail ``ref`` (nothing is changed)."""
        await prefix_scope(who, body.prefix)
        return await templates.validate(ref, body.prefix, body.limit, actor=reg.actor(who))
