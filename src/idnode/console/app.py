"""The console's pages at ``/console`` (docs/console.md).

Every action calls the services the management API calls, as the signed-in account:
``register_fields`` and the write service for a registration, ``Lifecycle.set_state`` for
suspend / revoke / restore, ``approve_with_admin`` and ``Organisations.reject`` for a review,
``Search`` for a search, ``Stats.daily`` for the dashboard. The console holds no state and
writes nothing itself; its session is a signed cookie (``sessions``).

Pages are rendered on the server (Jinja2); htmx (vendored, ``transport/assets``) swaps
search results in place and asks for confirmation before a lifecycle action; without
JavaScript every form still posts and every page still renders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from idnode.codes import AdminPermission as P
from idnode.codes import ResponseCode
from idnode.console import i18n
from idnode.console.forms import filled, form_fields, problems
from idnode.console.handle_signin import (
    HANDLE_PREFIX,
    SignInRefused,
    handle_account,
    sign_in_with_key,
)
from idnode.console.i18n import gettext as _
from idnode.console.imports import ImportPages
from idnode.console.operations import operations_context
from idnode.console.sessions import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    ConsoleSession,
    SessionCookies,
    signing_key,
)
from idnode.errors import IdnodeError
from idnode.model import handle_key
from idnode.names import prefix_part
from idnode.registry.accounts import HANDLE_ADMIN, Account, token_hash
from idnode.registry.creditcode import check_character, is_credit_code
from idnode.registry.errors import RegistryError
from idnode.registry.organisations import PENDING, approve_with_admin
from idnode.registry.prefixes import APPLIED, APPROVED
from idnode.registry.records import register_fields, update_fields
from idnode.registry.search import Query, Search
from idnode.registry.service import Registry
from idnode.service.node import Node
from idnode.service.resolve import ResolutionQuery
from idnode.transport.assets import URL as VENDOR_URL

HERE = Path(__file__).resolve().parent
BASE = "/console"


def console_routes(node: Node, reg: Registry) -> list[BaseRoute]:
    """The console, mounted at ``/console`` by the composition root."""
    return [Mount(BASE, routes=Console(node, reg).routes())]


class Console:
    def __init__(self, node: Node, reg: Registry) -> None:
        self.node, self.reg = node, reg
        settings = node.config.console
        self.cookies = SessionCookies(
            signing_key(node.config.private_key_path.read_bytes()),
            node.runtime.clock,
            node.runtime.random,
            idle=settings.idle_timeout,
            max_age=settings.max_age,
        )
        self.search = Search(reg)
        env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            extensions=["jinja2.ext.i18n"],
        )
        env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)
        self.env = env
        self.base = BASE
        self.imports = ImportPages(self)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.dashboard),
            Route("/login", self.login, methods=["GET", "POST"]),
            Route("/login/handle", self.login_handle, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/lang/{code}", self.switch_language),
            Route("/identifiers", self.identifiers),
            Route("/register", self.register, methods=["GET", "POST"]),
            Route("/handle/{handle:path}", self.view),
            Route("/open", self.open_handle),
            Route("/edit/{handle:path}", self.edit, methods=["GET", "POST"]),
            Route("/imports", self.imports.index),
            Route("/imports", self.imports.upload, methods=["POST"]),
            Route("/imports/{job_id}", self.imports.job),
            Route("/imports/{job_id}/rejects", self.imports.rejects),
            Route("/imports/{job_id}/resume", self.imports.resume, methods=["POST"]),
            Route("/operations", self.operations),
            Route("/state/{handle:path}", self.change_state, methods=["POST"]),
            Route("/review", self.review),
            Route("/review/{org_id:int}/{decision}", self.decide, methods=["POST"]),
            Route("/review/prefix/{prefix}/{decision}", self.decide_prefix, methods=["POST"]),
            Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
        ]

    # -- the frame of every page ------------------------------------------------------------
    def language(self, request: Request) -> i18n.Language:
        code = i18n.negotiate(
            request.cookies.get(i18n.COOKIE), request.headers.get("accept-language")
        )
        lang = i18n.Language(code)
        i18n.CURRENT.set(lang)
        return lang

    async def signed_in(self, request: Request) -> tuple[ConsoleSession, Account] | None:
        session = self.cookies.load(request.cookies.get(COOKIE))
        if session is None:
            return None
        if session.token_hash.startswith(HANDLE_PREFIX):
            handle_admin = await handle_account(self.node, session.token_hash)
            return None if handle_admin is None else (session, handle_admin)
        try:
            account = await self.reg.accounts.authenticate_hash(session.token_hash)
        except RegistryError:
            return None
        return session, account

    def page(
        self,
        request: Request,
        name: str,
        who: tuple[ConsoleSession, Account] | None,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        lang = self.language(request)
        session = who[0] if who else None
        body = self.env.get_template(name).render(
            lang=lang,
            languages=i18n.LANGUAGES,
            account=who[1] if who else None,
            csrf=session.csrf if session else "",
            path=request.url.path,
            vendor=VENDOR_URL,
            base=BASE,
            quote=quote,
            **context,
        )
        response = HTMLResponse(body, status_code=status)
        response.headers["content-language"] = lang.code
        response.headers["cache-control"] = "no-store"
        response.headers["x-frame-options"] = "DENY"
        if session is not None:  # renew the idle timeout
            self._set_session(request, response, self.cookies.touch(session))
        return response

    def _set_session(self, request: Request, response: Response, session: ConsoleSession) -> None:
        """The session cookie: HttpOnly, SameSite=Strict, and Secure when the console is
        reached over HTTPS (a browser then never sends it in clear)."""
        response.set_cookie(COOKIE, self.cookies.dump(session), path=BASE, httponly=True,
                            samesite="strict", max_age=self.cookies.max_age,
                            secure=request.url.scheme == "https")  # fmt: skip

    async def operator_only(
        self, request: Request, *, post: bool = False
    ) -> tuple[ConsoleSession, Account] | Response:
        """``guarded``, and a 403 page for anyone but an operator (review, operations)."""
        who = await self.guarded(request, post=post)
        if not isinstance(who, Response) and not who[1].is_operator:
            return self.page(request, "forbidden.html", who, status=403)
        return who

    async def guarded(
        self, request: Request, *, post: bool = False
    ) -> tuple[ConsoleSession, Account] | Response:
        """The signed-in session (and, for a POST, its CSRF token checked), or the answer."""
        self.language(request)
        who = await self.signed_in(request)
        if who is None:
            if request.headers.get("hx-request"):
                return Response(status_code=401, headers={"HX-Redirect": f"{BASE}/login"})
            return RedirectResponse(f"{BASE}/login?next={quote(request.url.path)}", 303)
        if post:
            form = await request.form()
            offered = request.headers.get(CSRF_HEADER) or str(form.get(CSRF_FIELD) or "")
            if not self.cookies.csrf_ok(who[0], offered):
                return HTMLResponse(_("The form has expired. Reload the page and try again."),
                                    status_code=403)  # fmt: skip
        return who

    # -- sign-in ----------------------------------------------------------------------------
    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            return self.page(request, "login.html", None, next=request.query_params.get("next"))
        form = await request.form()
        token = str(form.get("token") or "").strip()
        target = str(form.get("next") or "")
        try:
            await self.reg.accounts.authenticate(token)
        except RegistryError:
            return self.page(request, "login.html", None, status=401, next=target,
                             error=_("Unknown, disabled or expired token."))  # fmt: skip
        safe = target if target.startswith(BASE + "/") and "//" not in target else BASE + "/"
        response = RedirectResponse(safe, 303)
        self._set_session(request, response, self.cookies.new(token_hash(token)))
        return response

    async def login_handle(self, request: Request) -> Response:
        """Sign-in with a Handle admin identity (``handle_signin``)."""
        form = await request.form()
        upload = form.get("keyfile")
        key_file = await upload.read() if hasattr(upload, "read") else b""
        try:
            subject = await sign_in_with_key(
                self.node, str(form.get("handle") or ""), str(form.get("index") or ""),
                secret=str(form.get("secret") or ""), key_file=key_file,
                passphrase=str(form.get("passphrase") or ""),
            )  # fmt: skip
        except SignInRefused:
            return self.page(
                request,
                "login.html",
                None,
                status=401,
                next="",
                handle_error=_("The identity or its key did not check out."),
            )
        response = RedirectResponse(BASE + "/", 303)
        self._set_session(request, response, self.cookies.new(subject))
        return response

    async def logout(self, request: Request) -> Response:
        who = await self.guarded(request, post=True)
        if isinstance(who, Response):
            return who
        response = RedirectResponse(f"{BASE}/login", 303)
        response.delete_cookie(COOKIE, path=BASE)
        return response

    async def switch_language(self, request: Request) -> Response:
        code = request.path_params["code"]
        back = request.query_params.get("next", BASE + "/")
        if not back.startswith(BASE) or "//" in back:
            back = BASE + "/"
        response = RedirectResponse(back, 303)
        if code in i18n.LANGUAGES:
            response.set_cookie(i18n.COOKIE, code, path=BASE, samesite="lax",
                                max_age=365 * 86400)  # fmt: skip
        return response

    # -- the dashboard ----------------------------------------------------------------------
    async def dashboard(self, request: Request) -> Response:
        who = await self.guarded(request)
        if isinstance(who, Response):
            return who
        account = who[1]
        prefixes = await self.visible_prefixes(account)
        rows = await self.reg.stats.daily()
        keys = {handle_key(p["prefix"]) for p in prefixes}
        if not account.is_operator:
            rows = [r for r in rows if r["prefix"] in keys]
        totals: dict[str, dict[str, int]] = {}
        for r in rows:
            t = totals.setdefault(r["prefix"], {"registrations": 0, "resolutions": 0})
            t["registrations"] += r["registrations"]
            t["resolutions"] += r["resolutions"]
        days = sorted({r["day"] for r in rows})
        series = {
            "days": days,
            "prefixes": sorted(totals),
            "registrations": _by_day(rows, days, "registrations"),
            "resolutions": _by_day(rows, days, "resolutions"),
            "labels": {"registrations": _("Registrations"), "resolutions": _("Resolutions")},
        }
        pending = len(await self.reg.organisations.list(PENDING)) if account.is_operator else 0
        return self.page(request, "dashboard.html", who, totals=totals, prefixes=prefixes,
                         chart=json.dumps(series), pending=pending)  # fmt: skip

    async def visible_prefixes(self, account: Account) -> list[dict[str, Any]]:
        if account.role == HANDLE_ADMIN:  # no organisation: the records naming it, by handle
            return []
        rows = await self.reg.prefixes.list(None if account.is_operator else account.org_id)
        return [r for r in rows if r.get("state") == "allocated"]

    # -- identifiers ------------------------------------------------------------------------
    async def identifiers(self, request: Request) -> Response:
        who = await self.guarded(request)
        if isinstance(who, Response):
            return who
        prefixes = await self.visible_prefixes(who[1])
        params = request.query_params
        prefix = params.get("prefix") or (prefixes[0]["prefix"] if prefixes else "")
        field_filters = {k: v.strip() for k, v in params.items() if k.isupper() and v.strip()}
        state = params.get("state", "")
        tmpl = self.reg.states.template_of(prefix) if prefix else None
        result, error = None, ""
        if prefix and prefix in {p["prefix"] for p in prefixes}:
            try:
                result = await self.search.page(
                    Query(prefix, field_filters, state=state), after=params.get("after", ""),
                    limit=50,
                )  # fmt: skip
            except RegistryError as exc:
                error = f"{exc.field}: {exc.detail}"
        elif prefix:
            error = _("You may not search this prefix.")
        searchable = [n for n in (tmpl.fields if tmpl else {}) if n in SEARCH_FIELDS]
        name = "results.html" if request.headers.get("hx-request") else "identifiers.html"
        return self.page(request, name, who, prefixes=prefixes, prefix=prefix, result=result,
                         error=error, searchable=searchable, filters=field_filters,
                         state=state)  # fmt: skip

    async def register(self, request: Request) -> Response:
        post = request.method == "POST"
        who = await self.guarded(request, post=post)
        if isinstance(who, Response):
            return who
        account = who[1]
        prefixes = await self.visible_prefixes(account)
        form = await request.form() if post else request.query_params
        prefix = str(form.get("prefix") or (prefixes[0]["prefix"] if prefixes else ""))
        if prefix not in {p["prefix"] for p in prefixes}:
            return self.page(
                request,
                "register.html",
                who,
                status=403,
                prefixes=prefixes,
                prefix=prefix,
                fields=[],
                errors={},
                values={},
                error=_("You may not register under this prefix."),
            )
        tmpl = self.reg.states.template_of(prefix)
        values = {k: str(v) for k, v in form.items()} if post else {}
        errors: dict[str, str] = {}
        error = ""
        if post and tmpl is not None:
            suffix = values.get("suffix", "").strip()
            fields = filled(form, tmpl)
            errors = problems(tmpl, suffix, fields)
            if not errors:
                handle = f"{prefix}/{suffix}"
                try:
                    name = await register_fields(self.reg, account, handle, fields)
                except (RegistryError, IdnodeError) as exc:
                    error = getattr(exc, "detail", None) or getattr(exc, "message", str(exc))
                else:
                    return RedirectResponse(f"{BASE}/handle/{quote(name)}?created=1", 303)
        return self.page(request, "register.html", who, status=422 if errors or error else 200,
                         prefixes=prefixes, prefix=prefix, template=tmpl,
                         fields=form_fields(tmpl) if tmpl else [], errors=errors,
                         values=values, error=error)  # fmt: skip

    async def may_see(self, account: Account, handle: str) -> bool:
        if account.is_operator:
            return True
        if account.role == HANDLE_ADMIN:
            record = await self.reg.store.get_handle(handle) or []
            acl = self.reg.admin.acl
            return await acl.is_admin(account.identity, record, P.MODIFY_VALUE) or (
                await acl.is_admin(account.identity, record, P.AUTHORIZED_READ)
            )
        row = await self.reg.prefixes.row(prefix_part(handle))
        return row is not None and row["org_id"] == account.org_id

    async def view(self, request: Request, *, message: str = "", error: str = "") -> Response:
        who = await self.guarded(request)
        if isinstance(who, Response):
            return who
        account = who[1]
        handle = request.path_params["handle"]
        record = await self.reg.store.get_handle(handle)
        if record is None or not await self.may_see(account, handle):
            return self.page(request, "missing.html", who, status=404, handle=handle)
        readable = account.is_operator or await self.reg.admin.may_read_restricted(
            account.identity, record
        )
        history = await self.reg.lifecycle.history(handle, restricted=readable)
        values = [v for v in sorted(record, key=lambda v: v.index) if readable or v.public_read]
        if request.query_params.get("created"):
            message = _("The identifier was registered.")
        elif request.query_params.get("edited"):
            message = _("The fields were saved; the previous version is in the history.")
        return self.page(
            request,
            "handle.html",
            who,
            handle=handle,
            values=values,
            history=history,
            message=message,
            error=error,
            state=history.get("state", "active"),
            resolves=await self.resolves(handle),
            editable=self.reg.states.template_of(prefix_part(handle)) is not None,
        )

    async def resolves(self, handle: str) -> bool:
        """Whether the public resolves ``handle`` (the test ``/qr`` applies to draw a label)."""
        query = ResolutionQuery(handle=handle, public_only=True, types=("HS_ADMIN",))
        try:
            await self.node.resolver.resolve(query)
        except IdnodeError as exc:
            return exc.code == ResponseCode.VALUES_NOT_FOUND
        return True

    async def open_handle(self, request: Request) -> Response:
        handle = request.query_params.get("handle", "").strip()
        return RedirectResponse(f"{BASE}/handle/{quote(handle)}" if handle else BASE + "/", 303)

    async def edit(self, request: Request) -> Response:
        """Change a record's template fields: ``update_fields``, the management API's path
        (one write through the write service: history and audit in its transaction)."""
        post = request.method == "POST"
        who = await self.guarded(request, post=post)
        if isinstance(who, Response):
            return who
        account = who[1]
        handle = request.path_params["handle"]
        record = await self.reg.store.get_handle(handle)
        tmpl = self.reg.states.template_of(prefix_part(handle)) if "/" in handle else None
        if record is None or tmpl is None or not await self.may_see(account, handle):
            return self.page(request, "missing.html", who, status=404, handle=handle)
        current = {v.type: v.data.decode("utf-8", "replace") for v in record
                   if v.type in tmpl.fields}  # fmt: skip
        values, errors, error = dict(current), {}, ""
        if post:
            form = await request.form()
            values = filled(form, tmpl)
            errors = problems(tmpl, handle.split("/", 1)[1], values)
            changed = {k: values.get(k, "") for k in tmpl.fields
                       if values.get(k, "") != current.get(k, "")}  # fmt: skip
            if not errors and not changed:
                error = _("Nothing was changed.")
            elif not errors:
                try:
                    await update_fields(self.reg, account, handle, changed)
                except (RegistryError, IdnodeError) as exc:
                    error = getattr(exc, "detail", None) or getattr(exc, "message", str(exc))
                else:
                    return RedirectResponse(f"{BASE}/handle/{quote(handle)}?edited=1", 303)
        return self.page(request, "edit.html", who, status=422 if errors or error else 200,
                         handle=handle, template=tmpl, fields=form_fields(tmpl),
                         values=values, errors=errors, error=error)  # fmt: skip

    async def change_state(self, request: Request) -> Response:
        who = await self.guarded(request, post=True)
        if isinstance(who, Response):
            return who
        handle = request.path_params["handle"]
        form = await request.form()
        state = str(form.get("state") or "")
        reason = str(form.get("reason") or "")
        try:
            await self.reg.lifecycle.set_state(who[1], handle, state, reason)
        except RegistryError as exc:
            message = _("A reason is required.") if exc.field == "reason" else exc.detail
            return await self.view(request, error=message)
        done = {"suspended": _("The identifier is suspended."),
                "revoked": _("The identifier is revoked."),
                "active": _("The identifier is active again.")}  # fmt: skip
        return await self.view(request, message=done.get(state, ""))

    # -- review -----------------------------------------------------------------------------
    async def review(self, request: Request, *, message: str = "", error: str = "",
                     token: str = "") -> Response:  # fmt: skip
        who = await self.operator_only(request)
        if isinstance(who, Response):
            return who
        orgs = await self.reg.organisations.list(PENDING)
        for org in orgs:
            code = org["credit_code"]
            org["check"] = {
                "valid": is_credit_code(code),
                "given": code[-1:],
                "computed": check_character(code[:17]) if len(code) == 18 else "",
            }
        prefixes = [p for p in await self.reg.prefixes.list() if p["state"] in (APPLIED, APPROVED)]
        names = {}
        for p in prefixes:
            if p["org_id"] not in names:
                org = await self.reg.organisations.get(p["org_id"])
                names[p["org_id"]] = org
            p["org"] = names[p["org_id"]]
            p["org"]["valid"] = is_credit_code(p["org"]["credit_code"])
        return self.page(request, "review.html", who, orgs=orgs, message=message, error=error,
                         token=token, prefixes=prefixes)  # fmt: skip

    async def decide_prefix(self, request: Request) -> Response:
        """Approve, allocate or reject a prefix application (``Prefixes``, as the API does)."""
        who = await self.operator_only(request, post=True)
        if isinstance(who, Response):
            return who
        prefix = request.path_params["prefix"]
        decision = request.path_params["decision"]
        actor = self.reg.actor(who[1])
        form = await request.form()
        try:
            if decision == "approve":
                await self.reg.prefixes.approve(actor, prefix)
                return await self.review(request, message=_("Prefix %(prefix)s is approved.")
                                         % {"prefix": prefix})  # fmt: skip
            if decision == "allocate":
                await self.reg.prefixes.allocate(actor, prefix)
                return await self.review(request, message=_("Prefix %(prefix)s is allocated.")
                                         % {"prefix": prefix})  # fmt: skip
            if decision == "reject":
                reason = str(form.get("reason") or "").strip()
                if not reason:
                    return await self.review(request, error=_("A reason is required."))
                await self.reg.prefixes.reject(actor, prefix, reason)
                return await self.review(request, message=_("Prefix %(prefix)s is rejected.")
                                         % {"prefix": prefix})  # fmt: skip
        except RegistryError as exc:
            return await self.review(request, error=exc.detail)
        return await self.review(request, error=_("Unknown decision."))

    # -- operations -------------------------------------------------------------------------
    async def operations(self, request: Request) -> Response:
        who = await self.operator_only(request)
        if isinstance(who, Response):
            return who
        return self.page(request, "operations.html", who,
                         **await operations_context(self.node, self.reg))  # fmt: skip

    async def decide(self, request: Request) -> Response:
        who = await self.operator_only(request, post=True)
        if isinstance(who, Response):
            return who
        org_id = request.path_params["org_id"]
        decision = request.path_params["decision"]
        form = await request.form()
        try:
            if decision == "approve":
                org = await approve_with_admin(self.reg, who[1], org_id)
                return await self.review(
                    request,
                    message=_("%(name)s is approved. Give its administrator this token"
                              " (shown once):") % {"name": org["legal_name"]},
                    token=org["admin"]["token"],
                )  # fmt: skip
            if decision == "reject":
                reason = str(form.get("reason") or "").strip()
                if not reason:
                    return await self.review(request, error=_("A reason is required."))
                org = await self.reg.organisations.reject(self.reg.actor(who[1]), org_id, reason)
                return await self.review(
                    request, message=_("%(name)s is rejected.") % {"name": org["legal_name"]}
                )
        except RegistryError as exc:
            return await self.review(request, error=exc.detail)
        return await self.review(request, error=_("Unknown decision."))


SEARCH_FIELDS = ("BATCH", "SERIAL", "MODEL", "PART_NUMBER", "LOT", "PRODUCT_CODE")


def _by_day(rows: list[dict[str, Any]], days: list[str], what: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    at = {d: i for i, d in enumerate(days)}
    for r in rows:
        out.setdefault(r["prefix"], [0] * len(days))[at[r["day"]]] += r[what]
    return out


__all__ = ["console_routes"]
