"""Data templates: versioned JSON Schemas of the typed values an identifier must / may carry.

A template is ``templates/<id>.v<version>.json``: an object schema whose properties are Handle
value types (``PART_NUMBER``, ``BATCH``, ...); ``required`` lists what an identifier must carry,
the other properties what it may carry, and ``additionalProperties: false`` refuses the rest.
``x-index`` gives each field its value index, so records made from CSV, REST or the wire line
up. A record is checked as ``{type: UTF-8 data}`` of its non-``HS_`` values.

Speed: bulk import checks every row, and ``jsonschema`` costs ~30 us a record. Templates that
use only the keywords below get a compiled check (a few us) that decides valid / invalid;
``jsonschema`` still produces the message for a refused record, so both always agree on
*whether* a record is valid (tests/registry/test_templates.py cross-checks them).
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from idnode.errors import InvalidValue
from idnode.model import HandleValue
from idnode.registry.creditcode import is_credit_code

FAST_FIELD_KEYWORDS = {
    "type", "title", "description", "x-index", "minLength", "maxLength", "pattern", "enum",
    "format", "x-not-before",
}  # fmt: skip
CREDIT_CODE = "gb32100"  # format: a unified social credit code, check character included
FAST_FORMATS = (None, "date", CREDIT_CODE)
FORMATS = FormatChecker()  # every standard format, plus ours
FORMATS.checks(CREDIT_CODE)(lambda value: not isinstance(value, str) or is_credit_code(value))
_MISSING = re.compile(r"^'(.+)' is a required property")
_EXTRA = re.compile(r"\('(.+)' (?:was|were) unexpected\)")


class TemplateViolation(InvalidValue):
    """A record that breaks its template; ``field`` names the offending value type."""

    def __init__(self, template: str, field_name: str, message: str) -> None:
        super().__init__(f"template {template}: field {field_name}: {message}")
        self.field = field_name
        self.detail = message


@dataclass
class Template:
    id: str
    version: int
    name: str
    description: str
    schema: dict[str, Any]
    name_zh: str = ""
    _validator: Draft202012Validator = field(init=False, repr=False)
    _fast: Callable[[Mapping[str, str]], bool] | None = field(init=False, repr=False)
    _order: tuple[tuple[str, str], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        Draft202012Validator.check_schema(self.schema)
        self._validator = Draft202012Validator(self.schema, format_checker=FORMATS)
        self._fast = _compile(self.schema)
        # (later, earlier) date fields: JSON Schema cannot compare two fields, so
        # ``"x-not-before": "PRODUCTION_DATE"`` on a field is checked here
        self._order = tuple(
            (name, str(prop["x-not-before"]))
            for name, prop in self.fields.items()
            if isinstance(prop, dict) and "x-not-before" in prop
        )

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its document: the compiled checks are rebuilt where it is unpickled
        (bulk import sends the template to its parse process)."""
        args = (self.id, self.version, self.name, self.description, self.schema, self.name_zh)
        return (Template, args)

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    @property
    def fields(self) -> dict[str, dict[str, Any]]:
        return self.schema.get("properties", {})

    @property
    def required(self) -> list[str]:
        return list(self.schema.get("required", []))

    def index_of(self, name: str) -> int:
        return int(self.fields[name]["x-index"])

    def check_fields(self, fields: Mapping[str, str]) -> None:
        """Raise TemplateViolation naming the first offending field (in schema order)."""
        if self._fast is None or not self._fast(fields):
            errors = list(self._validator.iter_errors(dict(fields)))
            if errors:
                order = {name: i for i, name in enumerate(self.fields)}
                described = [_describe(e) for e in errors]
                described.sort(key=lambda fm: order.get(fm[0], len(order)))
                name, message = described[0]
                raise TemplateViolation(self.ref, name, message)
        for later, earlier in self._order:  # both valid dates here: ISO text sorts as dates
            if later in fields and earlier in fields and fields[later] < fields[earlier]:
                raise TemplateViolation(
                    self.ref, later, f"{fields[later]} is before {earlier} {fields[earlier]}"
                )

    def check_layout(self, layout: Sequence[HandleValue]) -> None:
        """A bulk group's shape: every non-``HS_`` slot is a field of this template at its
        index (the rows' data were checked with ``check_fields`` by the importer)."""
        for v in layout:
            if v.type.startswith("HS_"):
                continue
            if v.type not in self.fields:
                raise TemplateViolation(self.ref, v.type, "is not a field of this template")
            if v.index != self.index_of(v.type):
                raise TemplateViolation(
                    self.ref, v.type, f"belongs at index {self.index_of(v.type)}"
                )

    def check_values(self, values: Sequence[HandleValue]) -> None:
        """Check a record's values: every non-``HS_`` type is a template field."""
        fields: dict[str, str] = {}
        for v in values:
            if v.type.startswith("HS_"):
                continue
            if v.type in fields:
                raise TemplateViolation(self.ref, v.type, "appears more than once")
            try:
                fields[v.type] = bytes(v.data).decode("utf-8")
            except UnicodeDecodeError:
                raise TemplateViolation(self.ref, v.type, "data is not UTF-8 text") from None
        self.check_fields(fields)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "ref": self.ref,
            "name": self.name,
            "name_zh": self.name_zh,
            "description": self.description,
            "required": self.required,
            "optional": [f for f in self.fields if f not in self.required],
            "schema": self.schema,
        }


def _describe(error: Any) -> tuple[str, str]:
    if error.validator == "required":
        m = _MISSING.match(error.message)
        return (m.group(1) if m else "?"), "required field is missing"
    if error.validator == "additionalProperties":
        m = _EXTRA.search(error.message)
        return (m.group(1).split("', '")[0] if m else "?"), "not a field of this template"
    name = str(error.path[0]) if error.path else "?"
    if error.validator == "pattern":
        return name, f"does not match the pattern {error.validator_value}"
    if error.validator == "format" and error.validator_value == CREDIT_CODE:
        return name, "is not a valid unified social credit code (GB 32100-2015)"
    if error.validator == "format":
        return name, f"is not a valid {error.validator_value}"
    if error.validator == "enum":
        return name, f"must be one of {', '.join(map(str, error.validator_value))}"
    return name, error.message


def _compile(schema: Mapping[str, Any]) -> Callable[[Mapping[str, str]], bool] | None:
    """A fast validity test for flat string-field schemas, or None if the schema is richer."""
    if set(schema) - {"$schema", "type", "required", "properties", "additionalProperties"}:
        return None
    if schema.get("type") != "object" or schema.get("additionalProperties") is not False:
        return None
    checks: dict[str, Callable[[str], bool]] = {}
    for name, prop in schema.get("properties", {}).items():
        if set(prop) - FAST_FIELD_KEYWORDS or prop.get("type") != "string":
            return None
        if prop.get("format") not in FAST_FORMATS:
            return None
        checks[name] = _field_check(prop)
    required = frozenset(schema.get("required", ()))
    known = frozenset(checks)

    # Values that passed, per field: bulk rows repeat most of theirs (a model, a batch, a
    # date, the manufacturer), and a set lookup costs a fraction of a pattern or date check.
    # Bounded: a field whose values never repeat (a serial) just clears its set now and then.
    passed: dict[str, set[str]] = {name: set() for name in checks}

    def valid(fields: Mapping[str, str]) -> bool:
        if not required <= fields.keys() or not fields.keys() <= known:
            return False
        for name, value in fields.items():
            good = passed[name]
            if value.__class__ is str and value in good:
                continue
            if not isinstance(value, str) or not checks[name](value):
                return False
            if len(good) >= 10_000:
                good.clear()
            good.add(value)
        return True

    return valid


def _field_check(prop: Mapping[str, Any]) -> Callable[[str], bool]:
    lo, hi = prop.get("minLength", 0), prop.get("maxLength")
    pattern = re.compile(prop["pattern"]) if "pattern" in prop else None
    enum = frozenset(prop["enum"]) if "enum" in prop else None
    date = prop.get("format") == "date"
    credit_code = prop.get("format") == CREDIT_CODE

    def check(value: str) -> bool:
        n = len(value)  # JSON Schema counts code points, as len() does
        if n < lo or (hi is not None and n > hi):
            return False
        if pattern is not None and pattern.search(value) is None:
            return False
        if enum is not None and value not in enum:
            return False
        if date:
            try:
                datetime.date.fromisoformat(value)
            except ValueError:
                return False
            if len(value) != 10:
                return False
        if credit_code and not is_credit_code(value):
            return False
        return True

    return check


class TemplateCatalog:
    """Every shipped template by ``id@version`` (and ``id`` for its latest version)."""

    def __init__(self, templates: Sequence[Template]) -> None:
        self._by_ref = {t.ref: t for t in templates}
        self._latest: dict[str, Template] = {}
        for t in sorted(templates, key=lambda t: t.version):
            self._latest[t.id] = t

    @classmethod
    def shipped(cls) -> TemplateCatalog:
        folder = resources.files("idnode.registry") / "templates"
        docs = [
            json.loads(p.read_text("utf-8")) for p in folder.iterdir() if p.name.endswith(".json")
        ]
        return cls([from_document(d) for d in docs])

    def get(self, ref: str, field: str = "template") -> Template:
        from idnode.registry.errors import RegistryError

        t = self._by_ref.get(ref) or self._latest.get(ref)
        if t is None:
            known = ", ".join(sorted(self._latest))
            raise RegistryError(f"unknown template {ref!r} (known: {known})", field=field)
        return t

    def __iter__(self):
        return iter(sorted(self._by_ref.values(), key=lambda t: (t.id, t.version)))

    def add(self, template: Template) -> None:
        """Add a published operator's template (``custom_templates``); it becomes its id's
        latest if its version is the highest. Published versions never change, so adding
        one already known only replaces it with an equal copy."""
        self._by_ref[template.ref] = template
        latest = self._latest.get(template.id)
        if latest is None or template.version >= latest.version:
            self._latest[template.id] = template

    def find(self, ref: str) -> Template | None:
        """The template of ``id@version`` exactly (never an id's latest), or None."""
        return self._by_ref.get(ref)


def from_document(doc: Mapping[str, Any]) -> Template:
    return Template(
        id=doc["id"],
        version=int(doc["version"]),
        name=doc["name"],
        description=doc.get("description", ""),
        schema=doc["schema"],
        name_zh=doc.get("name_zh", ""),
    )
