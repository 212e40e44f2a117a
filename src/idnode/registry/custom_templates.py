"""Operators' own sector templates: add a draft, publish it, bind a prefix to a version, and
re-validate the records of older versions against a newer one.

Templates live in the store (``templates``: id, version, draft | published, the document) so
every worker and host sees the same ones; the five shipped ones are the examples and version
1 of their ids. A draft may be replaced; a published version never changes (a change is a new
version), so a record validated against ``auto-parts@2`` can always be checked against
exactly that schema again. Publishing and binding bump the governance ``state_version``:
every process reloads its catalog and prefix bindings (``states.GovernanceStates.load``).

A template change never invalidates stored records silently: binding a prefix to a new
version checks only later writes against it; each record keeps the ref it was validated
against (``record_templates``), and ``validate`` reports which records on other versions
would fail the new one -- it changes nothing.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from jsonschema.exceptions import SchemaError

from idnode.errors import IdnodeError
from idnode.model import handle_key
from idnode.registry.changes import audit_entry, state_change
from idnode.registry.errors import Conflict, NotFound, RegistryError
from idnode.registry.record_templates import prefix_range
from idnode.registry.templates import Template, TemplateViolation, from_document
from idnode.store.effects import Effects, Statement

if TYPE_CHECKING:
    from idnode.registry.service import Registry
    from idnode.registry.templates import TemplateCatalog
    from idnode.store.base import Store

DRAFT, PUBLISHED = "draft", "published"
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")
MAX_DOCUMENT = 256 * 1024  # bytes of one template document
MAX_VALIDATE = 10_000  # records one validate call checks
TEMPLATE_ROW = "SELECT * FROM {s}.templates WHERE id = ? AND version = ?"
BIND_PREFIX = "UPDATE {s}.prefixes SET template = ?, updated_at = ? WHERE key = ? AND template = ?"


async def load_published(store: Store, catalog: TemplateCatalog) -> None:
    """Add every published template in the store to ``catalog`` (``GovernanceStates.load``)."""
    rows = await store.query(
        "SELECT id, version FROM {s}.templates WHERE state = ? ORDER BY id, version", PUBLISHED
    )
    for r in rows:  # published versions never change: parse only the ones not yet known
        if catalog.find(f"{r['id']}@{r['version']}") is None:
            doc = await store.query_value(
                "SELECT document FROM {s}.templates WHERE id = ? AND version = ?",
                r["id"], r["version"],
            )  # fmt: skip
            catalog.add(from_document(json.loads(doc)))


def parse_ref(ref: str) -> tuple[str, int]:
    """``id@version`` -> (id, version); a bare id is refused (a version is always named)."""
    tid, at, version = str(ref).partition("@")
    if not at or not version.isdigit() or not ID_PATTERN.match(tid):
        raise RegistryError(f"{ref!r} is not id@version (e.g. auto-parts@2)", field="ref")
    return tid, int(version)


def check_document(doc: object) -> Template:
    """A template document an operator may add: a valid JSON Schema of string fields, each
    with its own value index, never an ``HS_`` type."""
    if not isinstance(doc, dict):
        raise RegistryError("a template is a JSON object", field="document")
    tid = doc.get("id")
    if not isinstance(tid, str) or not ID_PATTERN.match(tid):
        raise RegistryError("lower-case letters, digits and '-', 2-64 long", field="id")
    if not isinstance(doc.get("name"), str) or not doc["name"].strip():
        raise RegistryError("a template needs a name", field="name")
    schema = doc.get("schema")
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise RegistryError("must be a JSON Schema of type object", field="schema")
    props = schema.get("properties")
    if not isinstance(props, dict) or not props:
        raise RegistryError("must name at least one field", field="schema.properties")
    seen: dict[int, str] = {}
    for name, prop in props.items():
        if not isinstance(name, str) or name.upper().startswith("HS_") or not name:
            raise RegistryError("HS_ types are the node's, not a template's", field=str(name))
        index = prop.get("x-index") if isinstance(prop, dict) else None
        if isinstance(index, bool) or not isinstance(index, int) or not 1 <= index < 100:
            raise RegistryError("needs an integer x-index from 1 to 99", field=name)
        if index in seen:
            raise RegistryError(f"x-index {index} is also {seen[index]}'s", field=name)
        seen[index] = name
    required = schema.get("required", [])
    if not isinstance(required, list) or any(r not in props for r in required):
        raise RegistryError("lists a field the template does not have", field="schema.required")
    if schema.get("additionalProperties") is not False:
        raise RegistryError("must be false (records carry only the fields named)",
                            field="schema.additionalProperties")  # fmt: skip
    version = doc.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version < 2**31:
        raise RegistryError("a positive integer", field="version")
    try:
        return from_document({**doc, "version": version})
    except SchemaError as exc:
        raise RegistryError(f"not a valid JSON Schema: {exc.message}", field="schema") from None
    except (KeyError, TypeError, ValueError, re.error) as exc:
        raise RegistryError(f"not a valid template: {exc}", field="document") from None


class CustomTemplates:
    """What ``idnode template ...`` and ``/api/mgmt/templates`` do (operators only)."""

    def __init__(self, reg: Registry) -> None:
        self.reg = reg
        self.shipped = {t.ref for t in type(reg.catalog).shipped()}

    async def _row(self, tid: str, version: int) -> dict[str, Any] | None:
        return await self.reg.store.query_one(TEMPLATE_ROW, tid, version)

    async def add(self, actor: str, doc: object) -> dict[str, Any]:
        """Store a draft (``version`` omitted: the id's next one); a published version or a
        shipped one is refused, a draft of the same version is replaced."""
        if isinstance(doc, dict) and "version" not in doc:
            doc = {**doc, "version": await self._next_version(str(doc.get("id", "")))}
        tmpl = check_document(doc)
        if tmpl.ref in self.shipped:
            raise Conflict(f"{tmpl.ref} is shipped with idnode; add a new version", field="version")
        document = json.dumps(_document(tmpl), sort_keys=True, ensure_ascii=False)
        if len(document.encode()) > MAX_DOCUMENT:
            raise RegistryError(f"larger than {MAX_DOCUMENT} bytes", field="document")
        now = self.reg.now()
        async with self.reg.store.atomic("registry", f"template {tmpl.ref}") as tx:
            old = await tx.fetchrow(TEMPLATE_ROW, tmpl.id, tmpl.version)
            if old is not None and old["state"] == PUBLISHED:
                raise Conflict(f"{tmpl.ref} is published and never changes; add version "
                               f"{tmpl.version + 1}", field="version")  # fmt: skip
            await tx.execute("DELETE FROM {s}.templates WHERE id = ? AND version = ?",
                             tmpl.id, tmpl.version)  # fmt: skip
            await tx.execute(
                "INSERT INTO {s}.templates (id, version, state, document, actor, created_at,"
                " published_at) VALUES (?, ?, ?, ?, ?, ?, NULL)",
                tmpl.id, tmpl.version, DRAFT, document, actor, now,
            )  # fmt: skip
            await tx.apply(Effects(audit=(
                audit_entry(actor, "template.add", tmpl.ref,
                            None if old is None else old["document"], document),
            )))  # fmt: skip
        return {"ref": tmpl.ref, "state": DRAFT, "replaced_draft": old is not None}

    async def _next_version(self, tid: str) -> int:
        top = await self.reg.store.query_value(
            "SELECT max(version) FROM {s}.templates WHERE id = ?", tid
        )
        shipped = [int(r.partition("@")[2]) for r in self.shipped if r.partition("@")[0] == tid]
        return max([int(top or 0), *shipped]) + 1

    async def publish(self, actor: str, ref: str) -> dict[str, Any]:
        """Make a draft a published, immutable version every process loads."""
        tid, version = parse_ref(ref)
        row = await self._row(tid, version)
        if row is None:
            raise NotFound(f"no draft {tid}@{version}", field="ref")
        if row["state"] == PUBLISHED:
            raise Conflict(f"{tid}@{version} is already published", field="ref")
        tmpl = from_document(json.loads(row["document"]))
        now = self.reg.now()
        guard = Statement(
            "UPDATE {s}.templates SET state = ?, published_at = ? WHERE id = ? AND version = ?"
            " AND state = ?",
            (PUBLISHED, now, tid, version, DRAFT),
            expect=1,
            refused=Conflict(f"{tmpl.ref} changed meanwhile; try again", field="ref"),
        )
        await self.reg.store.apply(Effects(
            statements=(guard, state_change("template", tmpl.ref, actor, DRAFT, PUBLISHED, "",
                                            now)),
            audit=(audit_entry(actor, "template.publish", tmpl.ref, DRAFT, row["document"]),),
            states_changed=True,
            target=f"template {tmpl.ref}",
        ))  # fmt: skip
        self.reg.catalog.add(tmpl)
        return {"ref": tmpl.ref, "state": PUBLISHED, "published_at": now}

    async def list(self) -> list[dict[str, Any]]:
        """Shipped and stored templates, each with its state and origin."""
        out = {
            t.ref: _summary(t, PUBLISHED, "shipped")
            for t in self.reg.catalog
            if t.ref in self.shipped
        }
        for r in await self.reg.store.query(
            "SELECT id, version, state, document FROM {s}.templates ORDER BY id, version"
        ):
            t = from_document(json.loads(r["document"]))
            out[t.ref] = _summary(t, r["state"], "operator")
        return sorted(out.values(), key=lambda s: (s["id"], s["version"]))

    async def show(self, ref: str) -> dict[str, Any]:
        if "@" not in ref:
            return {**self.reg.catalog.get(ref, field="ref").describe(), "state": PUBLISHED}
        tid, version = parse_ref(ref)
        row = await self._row(tid, version)
        if row is not None:
            t = from_document(json.loads(row["document"]))
            when = {"created_at": row["created_at"], "published_at": row["published_at"]}
            return {**t.describe(), "state": row["state"], "origin": "operator", **when}
        t = self.reg.catalog.find(f"{tid}@{version}")
        if t is None:
            raise NotFound(f"no template {tid}@{version}", field="ref")
        return {**t.describe(), "state": PUBLISHED, "origin": "shipped"}

    async def bind(self, actor: str, prefix: str, ref: str) -> dict[str, Any]:
        """Bind a prefix to a published version: later writes are checked against it; the
        records already stored keep theirs (``validate`` reports which would fail)."""
        tid, version = parse_ref(ref)
        tmpl = self.reg.catalog.find(f"{tid}@{version}")
        if tmpl is None:
            raise RegistryError(f"{tid}@{version} is not a published template", field="ref")
        before = await self.reg.prefixes.get(prefix)
        if before["template"] == tmpl.ref:
            raise Conflict(f"prefix {before['prefix']} already uses {tmpl.ref}", field="ref")
        now = self.reg.now()
        after = {**before, "template": tmpl.ref, "updated_at": now}
        guard = Statement(
            BIND_PREFIX,
            (tmpl.ref, now, before["key"], before["template"]),
            expect=1,
            refused=Conflict(f"prefix {before['prefix']} changed meanwhile; try again",
                             field="prefix"),
        )  # fmt: skip
        await self.reg.store.apply(Effects(
            statements=(guard,),
            audit=(audit_entry(actor, "prefix.template", before["prefix"], before, after),),
            states_changed=True,
            target=f"prefix {before['prefix']}",
        ))  # fmt: skip
        if before["state"] in ("allocated", "suspended", "revoked"):
            self.reg.states.set_prefix(before["prefix"], tmpl.ref, before["state"])
        return {"prefix": before["prefix"], "template": tmpl.ref, "was": before["template"]}

    async def records(
        self, prefix: str, ref: str = "", limit: int = 1000, after: str = ""
    ) -> list[dict[str, str]]:
        """Identifiers under ``prefix`` with the template ref each was validated against
        (only those on ``ref`` if given), in key order from ``after``."""
        low, high = prefix_range(prefix)
        low = max(low, handle_key(after) + "\x00") if after else low
        sql = "SELECT handle, template FROM {s}.record_templates WHERE key >= ? AND key < ?"
        args: list[Any] = [low, high]
        if ref:
            sql += " AND template = ?"
            args.append(ref)
        rows = await self.reg.store.query(sql + " ORDER BY key LIMIT ?", *args, _limit(limit))
        return [{"handle": r["handle"], "template": r["template"]} for r in rows]

    async def validate(
        self, ref: str, prefix: str, limit: int = MAX_VALIDATE, *, actor: str = ""
    ) -> dict[str, Any]:
        """Check the records under ``prefix`` validated against any other version with
        ``ref``: which would fail, and why. No record is changed; with ``actor`` the check
        and a digest of its report are audited."""
        tid, version = parse_ref(ref)
        tmpl = self.reg.catalog.find(f"{tid}@{version}")
        if tmpl is None:
            raise RegistryError(f"{tid}@{version} is not a published template", field="ref")
        low, high = prefix_range(prefix)
        rows = await self.reg.store.query(
            "SELECT handle, template FROM {s}.record_templates WHERE key >= ? AND key < ?"
            " AND template <> ? ORDER BY key LIMIT ?",
            low, high, tmpl.ref, _limit(limit, MAX_VALIDATE),
        )  # fmt: skip
        failed, passed, per_version = [], 0, {}
        for r in rows:
            per_version[r["template"]] = per_version.get(r["template"], 0) + 1
            values = await self.reg.store.get_handle(r["handle"])
            if values is None:
                continue
            try:
                tmpl.check_values(values)
                passed += 1
            except TemplateViolation as exc:
                failed.append({"handle": r["handle"], "template": r["template"],
                               "field": exc.field, "message": exc.detail})  # fmt: skip
            except IdnodeError as exc:
                failed.append({"handle": r["handle"], "template": r["template"],
                               "field": "", "message": exc.message})  # fmt: skip
        report = {
            "template": tmpl.ref,
            "prefix": prefix,
            "checked": passed + len(failed),
            "passed": passed,
            "failed": failed,
            "on_versions": per_version,
            "complete": len(rows) < _limit(limit, MAX_VALIDATE),
        }
        if actor:
            entry = audit_entry(actor, "template.validate", f"{tmpl.ref} {prefix}", None, report)
            await self.reg.store.apply(Effects(audit=(entry,), target=f"template {tmpl.ref}"))
        return report


def _limit(limit: int, top: int = 10_000) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= top:
        raise RegistryError(f"from 1 to {top}", field="limit")
    return limit


def _document(t: Template) -> dict[str, Any]:
    return {"id": t.id, "version": t.version, "name": t.name, "name_zh": t.name_zh,
            "description": t.description, "schema": t.schema}  # fmt: skip


def _summary(t: Template, state: str, origin: str) -> dict[str, Any]:
    return {"id": t.id, "version": t.version, "ref": t.ref, "name": t.name, "state": state,
            "origin": origin, "fields": len(t.fields)}  # fmt: skip
