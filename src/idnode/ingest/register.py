"""One message, one registration: the same write as ``PUT /identifiers/{handle}``.

The write goes through the registry's data (prefix, organisation, account) and the one write
service, so the registry's policy adds history, the audit entry and the registration count
in the write's own transaction. Idempotent: an identifier that already holds exactly the
message's fields was registered by an earlier delivery of the same message (the broker
redelivers what was not acknowledged before a crash), and is answered as success.
"""

from __future__ import annotations

from idnode.auth.identity import Identity
from idnode.errors import HandleAlreadyExists, IdnodeError
from idnode.ingest.messages import BadMessage, Outcome, Registration, message_id_of, parse
from idnode.ingest.routes import Route
from idnode.model import HandleValue
from idnode.registry.errors import Forbidden, RegistryError
from idnode.registry.prefixes import RECORD_RIGHTS
from idnode.registry.service import Registry
from idnode.registry.templates import Template, TemplateViolation


class Registrar:
    """Turns messages of a route into registrations by the route's account."""

    def __init__(self, reg: Registry) -> None:
        self.reg = reg

    async def check_route(self, route: Route) -> None:
        """Refuse at start a route that could never register (raises RegistryError)."""
        await self._context(route)

    async def handle(self, route: Route, payload: bytes) -> Outcome:
        """Register what ``payload`` asks for; an IdnodeError is the message's fault and
        becomes a rejection, anything else (the store is down) propagates: the message is
        then not acknowledged, and the broker delivers it again."""
        try:
            msg = parse(payload, route.prefix)
        except BadMessage as exc:
            return Outcome(message_id_of(payload), "", False, field=exc.field, message=exc.detail)
        try:
            return await self._register(route, msg)
        except TemplateViolation as exc:
            return Outcome(msg.message_id, msg.handle, False, field=exc.field, message=exc.detail)
        except RegistryError as exc:
            return Outcome(msg.message_id, msg.handle, False, field=exc.field, message=exc.detail)
        except IdnodeError as exc:
            return Outcome(msg.message_id, msg.handle, False, message=str(exc))

    async def _context(self, route: Route) -> tuple[Template, Identity, bytes]:
        reg = self.reg
        account = await reg.accounts.get(route.account)
        row = await reg.prefixes.get(route.prefix)
        if not account.is_operator and account.org_id != row["org_id"]:
            raise Forbidden(f"account {account.name} may not register under {route.prefix}")
        template = reg.catalog.get(row["template"])
        if route.template not in (template.id, template.ref):
            raise RegistryError(
                f"prefix {route.prefix} uses template {template.ref}, not {route.template}",
                field="template",
            )
        org = await reg.organisations.get(row["org_id"])
        group = reg.accounts.group_handle(org["credit_code"])
        return template, account.identity, reg.admin_value(group, RECORD_RIGHTS)

    async def _register(self, route: Route, msg: Registration) -> Outcome:
        template, identity, admin = await self._context(route)
        template.check_fields(msg.fields)  # names the offending field before any write
        values = [HandleValue(template.index_of(k), k, v.encode()) for k, v in msg.fields.items()]
        values.append(HandleValue(100, "HS_ADMIN", admin))
        try:
            await self.reg.admin.create_handle(identity, msg.handle, values)
        except HandleAlreadyExists:
            if await self._holds(msg):
                return Outcome(msg.message_id, msg.handle, True, duplicate=True)
            return Outcome(
                msg.message_id, msg.handle, False, field="suffix",
                message=f"{msg.handle} already exists with other fields",
            )  # fmt: skip
        return Outcome(msg.message_id, msg.handle, True)

    async def _holds(self, msg: Registration) -> bool:
        record = await self.reg.store.get_handle(msg.handle)
        if record is None:
            return False
        stored = {v.type: bytes(v.data) for v in record if not v.type.startswith("HS_")}
        return stored == {k: v.encode() for k, v in msg.fields.items()}
