"""The management API (FastAPI), mounted at ``/api/mgmt``; its OpenAPI part joins the node's
document at ``/api/openapi.json`` (Swagger UI at ``/api/docs``, ``transport/api_docs.py``);
plus ``GET /api/mgmt/history/{handle}`` and ``/metrics``. (The history lived at
``/api/handles/{handle}/history``, which shadowed every handle ending in ``/history``; that
path is now the REST API's answer for such a handle, issue 19.)

Authentication: ``Authorization: Bearer <token>`` (``accounts.py``). Roles:

* ``operator``: reviews organisations and prefixes, allocates, suspends, revokes, reads all;
* ``org_admin``: applies for prefixes for its organisation, adds registrars, revokes;
* ``registrar``: registers, imports and suspends identifiers under its organisation's prefixes.

Applying as an organisation needs no account (that is how an enterprise first arrives);
the HTTP limits rate-limit such anonymous writes per address (``[limits]
anonymous_write_*``). Errors are ``{"error": {"field": ..., "message": ...}}`` with a 4xx
status; ``field`` names the request field, header or CSV row that was wrong. Every number a
client sends is bounded where it is declared (ids fit a 64-bit column, a token lives at most
a century), so no input reaches the store as an overflow (a 500).

``/metrics`` shows every enterprise's volumes: it answers an operator's bearer token, or a
client whose address is in ``[server] metrics_allow`` (loopback by default), and 403 anyone
else. The record history shows values without PUBLIC_READ only to a reader the record's own
HS_ADMIN values let read them (``AdminService.may_read_restricted``), as resolution does.
"""

# no "from __future__ import annotations": FastAPI reads the local Caller alias at def time

import codecs
import ipaddress
import logging
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import orjson
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute, Mount, Route

from idnode.errors import IdnodeError
from idnode.names import prefix_part
from idnode.registry.accounts import MAX_TTL, REGISTRAR, Account
from idnode.registry.control_api import install as install_control
from idnode.registry.custom_templates import CustomTemplates
from idnode.registry.errors import Forbidden, RegistryError
from idnode.registry.organisations import approve_with_admin
from idnode.registry.records import register_fields
from idnode.registry.service import Registry
from idnode.registry.stats import report_csv
from idnode.registry.template_api import install as install_templates
from idnode.runtime import uuid4

log = logging.getLogger("idnode.registry")

MOUNT = "/api/mgmt"
MAX_UPLOAD = 512 * 1024 * 1024
UPLOADS = {MOUNT + "/imports": MAX_UPLOAD}  # streamed to disk: past the HTTP body limit
MAX_ID = 2**63 - 1  # ids are 64-bit columns: anything larger is the client's error
MAX_BATCH = 1_000_000
MAX_SIZE = 2**53  # a document's size in bytes (JSON's exact integers)

OrgId = Annotated[int, Path(ge=1, le=MAX_ID, description="organisation id")]


class Contact(BaseModel):
    name: str
    phone: str
    email: str


class Document(BaseModel):
    name: str
    type: str = ""
    sha256: str
    size: int = Field(0, ge=0, le=MAX_SIZE)


class OrgApplication(BaseModel):
    legal_name: str = Field(description="Legal name as registered")
    credit_code: str = Field(description="Unified social credit code (GB 32100-2015)")
    contact: Contact
    documents: list[Document] = []


class Reason(BaseModel):
    reason: str


class PrefixApplication(BaseModel):
    prefix: str = Field(description="e.g. 88.123.4567, under the node's prefix")
    template: str = Field(description="template id or id@version, e.g. auto-parts")
    org_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="operators apply on behalf of an organisation"
    )


class NewAccount(BaseModel):
    name: str
    role: str = Field(description="operator | org_admin | registrar")
    org_id: int | None = Field(None, ge=1, le=MAX_ID)
    ttl_seconds: int | None = Field(
        None, ge=1, le=MAX_TTL, description="token lifetime; none = no expiry"
    )


class Registration(BaseModel):
    fields: dict[str, str] = Field(description="template fields, e.g. {'BATCH': 'B1'}")


class StateChange(BaseModel):
    reason: str = ""


def _error(status: int, field: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"field": field, "message": message}}, status_code=status)


def build_api(reg: Registry) -> FastAPI:
    app = FastAPI(
        title="idnode management API",
        version="1",
        description=(__doc__ or "").split("\n\n", 1)[1],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        servers=[{"url": MOUNT}],
    )

    @app.exception_handler(RegistryError)
    async def registry_error(request: Request, exc: RegistryError) -> JSONResponse:
        return _error(exc.status, exc.field, exc.detail)

    @app.exception_handler(IdnodeError)
    async def idnode_error(request: Request, exc: IdnodeError) -> JSONResponse:
        field = getattr(exc, "field", "") or ""
        status = 403 if 400 <= int(exc.code) < 500 else 400
        if int(exc.code) == 402:
            status = 401
        return _error(status, field, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"] if p != "body")
        return _error(422, field, first["msg"])

    @app.exception_handler(ClientDisconnect)
    async def disconnected(request: Request, exc: ClientDisconnect) -> Response:
        return client_gone(request)

    @app.exception_handler(OverflowError)
    async def overflow(request: Request, exc: OverflowError) -> JSONResponse:
        # every number is bounded where it is declared; this is the net under that rule
        return _error(400, "", "a number in the request is out of range")

    # declared as a security scheme, so the OpenAPI document says which operations need the
    # token and Swagger UI's Authorize button sends it; a missing token is still our 401
    bearer_scheme = HTTPBearer(
        auto_error=False, scheme_name="bearerToken",
        description="a management API token (idnode account create-operator, or an approval)",
    )  # fmt: skip

    async def caller(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> Account:
        token = credentials.credentials if credentials is not None else ""
        return await reg.accounts.authenticate(token.strip())

    Caller = Annotated[Account, Depends(caller)]

    def operator_only(account: Account) -> None:
        if not account.is_operator:
            raise Forbidden("only a node operator may do this", field="Authorization")

    def org_scope(account: Account, org_id: int) -> None:
        if not account.is_operator and account.org_id != org_id:
            raise Forbidden("this belongs to another organisation", field="Authorization")

    async def prefix_scope(account: Account, prefix: str) -> dict[str, Any]:
        row = await reg.prefixes.get(prefix)
        org_scope(account, row["org_id"])
        return {k: v for k, v in row.items() if k != "key"}

    # -- organisations ----------------------------------------------------------------------
    @app.post("/organisations", status_code=201, tags=["organisations"])
    async def apply_organisation(body: OrgApplication) -> dict[str, Any]:
        """An enterprise applies (no account needed); the operator reviews it."""
        return await reg.organisations.apply(
            "applicant",
            body.legal_name,
            body.credit_code,
            body.contact.model_dump(),
            [d.model_dump() for d in body.documents],
        )

    @app.get("/organisations", tags=["organisations"])
    async def list_organisations(
        who: Caller,
        state: str | None = None,
    ) -> list[dict[str, Any]]:
        orgs = await reg.organisations.list(state)
        return [o for o in orgs if who.is_operator or o["id"] == who.org_id]

    @app.get("/organisations/{org_id}", tags=["organisations"])
    async def get_organisation(who: Caller, org_id: OrgId) -> dict[str, Any]:
        org_scope(who, org_id)
        org = await reg.organisations.get(org_id)
        return {**org, "history": await reg.organisations.history(org_id)}

    @app.post("/organisations/{org_id}/approve", tags=["organisations"])
    async def approve_organisation(
        who: Caller,
        org_id: OrgId,
        admin_name: str | None = None,
    ) -> dict[str, Any]:
        """Approve; creates the organisation's first admin account and returns its token."""
        operator_only(who)
        return await approve_with_admin(reg, who, org_id, admin_name)

    @app.post("/organisations/{org_id}/reject", tags=["organisations"])
    async def reject_organisation(
        who: Caller,
        org_id: OrgId,
        body: Reason,
    ) -> dict[str, Any]:
        operator_only(who)
        return await reg.organisations.reject(reg.actor(who), org_id, body.reason)

    # -- accounts ---------------------------------------------------------------------------
    @app.post("/accounts", status_code=201, tags=["accounts"])
    async def create_account(who: Caller, body: NewAccount) -> dict[str, Any]:
        """Operators create any account; organisation admins create their registrars.
        The token is shown once."""
        account, token, extra = await reg.accounts.create(
            reg.actor(who),
            body.name,
            body.role,
            body.org_id,
            ttl_seconds=body.ttl_seconds,
            by=who,
        )
        return {**account.describe(), "token": token, **extra}

    @app.get("/accounts", tags=["accounts"])
    async def list_accounts(who: Caller) -> list[dict[str, Any]]:
        if who.is_operator:
            return [a.describe() for a in await reg.accounts.list()]
        return [a.describe() for a in await reg.accounts.list(who.org_id)]

    @app.get("/whoami", tags=["accounts"])
    async def whoami(who: Caller) -> dict[str, Any]:
        return who.describe()

    # -- prefixes ---------------------------------------------------------------------------
    @app.post("/prefixes", status_code=201, tags=["prefixes"])
    async def apply_prefix(who: Caller, body: PrefixApplication) -> dict:
        if who.role == REGISTRAR:
            raise Forbidden("registrars cannot apply for prefixes", field="Authorization")
        org_id = body.org_id if who.is_operator else who.org_id
        if body.org_id is not None and body.org_id != org_id:
            raise Forbidden("you may apply only for your own organisation", field="org_id")
        if org_id is None:
            raise RegistryError("operators must name the organisation", field="org_id")
        return await reg.prefixes.apply(reg.actor(who), body.prefix, org_id, body.template)

    @app.get("/prefixes", tags=["prefixes"])
    async def list_prefixes(who: Caller) -> list[dict[str, Any]]:
        return await reg.prefixes.list(None if who.is_operator else who.org_id)

    @app.get("/prefixes/{prefix}", tags=["prefixes"])
    async def get_prefix(who: Caller, prefix: str) -> dict[str, Any]:
        row = await prefix_scope(who, prefix)
        return {**row, "history": await reg.prefixes.history(prefix)}

    @app.post("/prefixes/{prefix}/{action}", tags=["prefixes"])
    async def change_prefix(
        who: Caller,
        prefix: str,
        action: str,
        body: StateChange | None = None,
    ) -> dict[str, Any]:
        """approve | reject | allocate | suspend | reinstate | revoke (operator only)."""
        operator_only(who)
        actor, reason = reg.actor(who), (body.reason if body else "")
        p = reg.prefixes
        if action == "approve":
            return await p.approve(actor, prefix)
        if action == "reject":
            return await p.reject(actor, prefix, reason)
        if action == "allocate":
            return await p.allocate(actor, prefix)
        if action == "suspend":
            return await p.suspend(actor, prefix, reason)
        if action == "reinstate":
            return await p.reinstate(actor, prefix)
        if action == "revoke":
            return await p.revoke(actor, prefix, reason)
        raise RegistryError("unknown action", field="action", status=404)

    # -- templates --------------------------------------------------------------------------
    @app.get("/templates", tags=["templates"])
    async def list_templates() -> list[dict[str, Any]]:
        return [t.describe() for t in reg.catalog]

    @app.get("/templates/{ref}", tags=["templates"])
    async def get_template(ref: str) -> dict[str, Any]:
        return reg.catalog.get(ref, field="ref").describe()

    # -- identifiers ------------------------------------------------------------------------
    @app.put("/identifiers/{handle:path}", status_code=201, tags=["identifiers"])
    async def register(
        who: Caller,
        handle: str,
        body: Registration,
    ) -> dict[str, Any]:
        """Register one identifier from template fields (the same write as REST/wire)."""
        await prefix_scope(who, prefix_part(handle))
        return {"handle": await register_fields(reg, who, handle, body.fields)}

    @app.post("/identifiers/{handle:path}/state/{state}", tags=["identifiers"])
    async def set_state(
        who: Caller,
        handle: str,
        state: str,
        body: StateChange | None = None,
    ) -> dict[str, Any]:
        """active | suspended | revoked (revocation is final)."""
        return await reg.lifecycle.set_state(who, handle, state, body.reason if body else "")

    # -- imports ----------------------------------------------------------------------------
    @app.post("/imports", status_code=202, tags=["imports"])
    async def start_import(
        who: Caller,
        request: Request,
        prefix: str = Query(...),
        format: Literal["csv", "jsonl"] = Query("csv", description="csv | jsonl"),
        template: str | None = Query(None),
        strict: bool = Query(False, description="reject the whole file if any row is bad"),
        batch_size: int = Query(10_000, ge=1, le=MAX_BATCH),
    ) -> dict[str, Any]:
        """Upload the file (UTF-8 text) as the request body; the job runs in the background."""
        await prefix_scope(who, prefix)
        folder = reg.imports.folder
        folder.mkdir(parents=True, exist_ok=True)
        # named by the node alone: nothing the client sends becomes part of a path
        upload = folder / f"upload-{uuid4(reg.random).hex}.part"
        try:
            await _receive_upload(request, upload)
        except BaseException:
            upload.unlink(missing_ok=True)
            raise
        try:
            job = await reg.imports.create(
                who.identity,
                reg.actor(who),
                prefix,
                upload,
                format,
                template,
                org_id=None if who.is_operator else who.org_id,
                batch_size=batch_size,
                strict=strict,
            )
        finally:
            upload.unlink(missing_ok=True)
        reg.imports.start(job["id"])
        return job

    @app.get("/imports/{job_id}", tags=["imports"])
    async def get_import(who: Caller, job_id: str) -> dict[str, Any]:
        job = await reg.imports.get(job_id)
        await prefix_scope(who, job["prefix"])
        return job

    @app.get("/imports/{job_id}/rejects", tags=["imports"], response_class=PlainTextResponse)
    async def import_rejects(who: Caller, job_id: str) -> Response:
        job = await reg.imports.get(job_id)
        await prefix_scope(who, job["prefix"])
        return PlainTextResponse(
            await reg.imports.rejects_csv(job_id),
            media_type="text/csv",
            headers={"content-disposition": f'attachment; filename="{job_id}-rejects.csv"'},
        )

    # -- statistics and audit ---------------------------------------------------------------
    @app.get("/stats", tags=["statistics"])
    async def stats(
        who: Caller,
        prefix: str | None = None,
        start: str = "",
        end: str = "9999",
    ) -> list[dict[str, Any]]:
        if prefix:
            await prefix_scope(who, prefix)
        elif not who.is_operator:
            raise RegistryError("name one of your prefixes", field="prefix")
        return await reg.stats.daily(prefix, start, end)

    @app.get("/reports/{month}", tags=["statistics"])
    async def report(who: Caller, month: str, format: str = "json") -> Any:
        operator_only(who)
        data = await reg.stats.monthly_report(month)
        if format == "csv":
            return PlainTextResponse(report_csv(data), media_type="text/csv")
        return data

    @app.get("/audit", tags=["audit"])
    async def audit(
        who: Caller,
        since: int = Query(0, ge=0, le=MAX_ID),
        limit: int = Query(100, ge=0, le=MAX_ID),
    ) -> list:
        operator_only(who)
        return await reg.audit.entries(since, min(limit, 1000))

    @app.get("/audit/verify", tags=["audit"])
    async def audit_verify(who: Caller) -> dict[str, Any]:
        operator_only(who)
        count, findings = await reg.audit.verify()
        return {"entries": count, "ok": not findings, "findings": [str(f) for f in findings]}

    install_control(app, reg, caller, prefix_scope)  # account/org control, search, bulk
    install_templates(app, CustomTemplates(reg), caller, prefix_scope)  # operators' templates
    return app


async def _receive_upload(request: Request, upload: Any) -> None:
    """Stream the request body to ``upload``: at most ``MAX_UPLOAD`` bytes of UTF-8 text
    (checked as it arrives, so a bad file is a 400 now, not a failed job later)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    size = 0
    with upload.open("wb") as fh:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_UPLOAD:
                raise RegistryError("file too large", field="body", status=413)
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                at = size - len(chunk) + exc.start
                raise RegistryError(f"not UTF-8 text (byte {at})", field="body") from None
            fh.write(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise RegistryError("not UTF-8 text (ends inside a character)", field="body") from None


def client_gone(request: Any) -> Response:
    """A client that hung up mid-request: one line in the log, nothing else to do."""
    client = request.scope.get("client") or ("?", 0)
    log.info("client %s disconnected during %s %s", client[0], request.method, request.url.path)
    return Response(status_code=400)


def _allowed(entries: Sequence[str]) -> tuple[frozenset[str], tuple[Any, ...]]:
    hosts, nets = set(), []
    for entry in entries:
        entry = entry.strip()
        if "/" in entry:
            nets.append(ipaddress.ip_network(entry, strict=False))
        elif entry:
            hosts.add(entry)
    return frozenset(hosts), tuple(nets)


def routes(
    reg: Registry,
    *,
    api: FastAPI | None = None,
    metrics_allow: Sequence[str] = ("127.0.0.1", "::1"),
) -> list[BaseRoute]:
    """What the HTTP transport mounts for the registry (given to it by ``idnode.app``).
    ``api``: the management API (``build_api``), whose ``openapi()`` the composition root also
    hands to the node's API document; ``metrics_allow``: hosts or CIDRs that may read
    ``/metrics`` without a token."""
    api = api or build_api(reg)
    allow_hosts, allow_nets = _allowed(metrics_allow)

    def allow_listed(request: Any) -> bool:
        host = (request.scope.get("client") or ("", 0))[0]
        if host in allow_hosts:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in allow_nets)

    async def bearer(request: Any) -> Account | None:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            return None
        return await reg.accounts.authenticate(header[7:].strip())

    async def metrics(request: Any) -> Response:
        if not allow_listed(request):
            try:
                who = await bearer(request)
            except RegistryError as exc:
                return _error(exc.status, exc.field, exc.detail)
            if who is None or not who.is_operator:
                message = "an operator's bearer token, or an address in [server] metrics_allow"
                return _error(403, "Authorization", message)
        return Response(await reg.stats.render(), media_type="text/plain; version=0.0.4")

    async def history(request: Any) -> Response:
        handle = request.path_params["handle"]
        restricted = False
        try:
            who = await bearer(request)
            if who is not None:
                record = await reg.store.get_handle(handle)
                # the record's own HS_ADMIN rights decide, as for resolution (and a deleted
                # record's history shows its restricted values to operators only)
                restricted = who.is_operator or (
                    record is not None and await reg.admin.may_read_restricted(who.identity, record)
                )
        except RegistryError as exc:
            return _error(exc.status, exc.field, exc.detail)
        try:
            body = await reg.lifecycle.history(handle, restricted=restricted)
        except RegistryError as exc:
            return Response(
                orjson.dumps({"responseCode": 100, "handle": handle, "message": exc.detail}),
                status_code=exc.status,
                media_type="application/json",
            )
        return Response(orjson.dumps({"responseCode": 1, **body}), media_type="application/json")

    return [
        Route("/metrics", metrics),
        Route(f"{MOUNT}/history/{{handle:path}}", history),  # outside the handle namespace
        Mount(MOUNT, app=api),
    ]
