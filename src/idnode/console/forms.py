"""Registration forms generated from a sector template's JSON Schema, and what is wrong with
a filled one in the user's language.

Each property of the template becomes an input (its ``title`` as the label, ``type=date`` for
``format: date``, a select for an ``enum``), required ones marked. The form is sent with
``novalidate``: the node is the judge. ``problems`` runs the template's own JSON Schema
(``Template.schema``, the one the write policy enforces) over the fields and words each
error for the reader; the registration itself then goes through the one write path, which
checks again and has the last word.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from idnode.console.i18n import gettext as _
from idnode.registry.templates import FORMATS, Template

SUFFIX_MAX = 128


@dataclass(frozen=True)
class Field:
    name: str
    title: str
    required: bool
    kind: str  # text | date | select
    options: tuple[str, ...] = ()
    max_length: int | None = None
    hint: str = ""


def form_fields(template: Template) -> list[Field]:
    """The inputs of ``template``'s form, in schema order."""
    required = set(template.required)
    out = []
    for name, prop in template.fields.items():
        kind = "text"
        if prop.get("format") == "date":
            kind = "date"
        elif "enum" in prop:
            kind = "select"
        hint = ""
        if "pattern" in prop and kind == "text":
            hint = prop["pattern"]
        out.append(
            Field(
                name=name,
                title=_(str(prop.get("title") or name)),
                required=name in required,
                kind=kind,
                options=tuple(str(o) for o in prop.get("enum", ())),
                max_length=prop.get("maxLength"),
                hint=hint,
            )
        )
    return out


def problems(template: Template, suffix: str, fields: dict[str, str]) -> dict[str, str]:
    """Field name (or ``suffix``) -> the first thing wrong with it, in the user's language."""
    found: dict[str, str] = {}
    if not suffix.strip():
        found["suffix"] = _("This field is required.")
    elif len(suffix) > SUFFIX_MAX or "/" in suffix or any(c.isspace() for c in suffix):
        found["suffix"] = _("Use up to 128 characters, without spaces or slashes.")
    validator = Draft202012Validator(template.schema, format_checker=FORMATS)
    for error in validator.iter_errors(fields):
        name, message = _worded(error)
        found.setdefault(name, message)
    return found


def _worded(error: Any) -> tuple[str, str]:
    kind = error.validator
    if kind == "required":
        missing = [n for n in error.validator_value if n not in error.instance]
        return (missing[0] if missing else "?"), _("This field is required.")
    name = str(error.path[0]) if error.path else "?"
    if kind == "pattern":
        return name, _("The value does not have the required form (%(pattern)s).") % {
            "pattern": error.validator_value
        }
    if kind == "format" and error.validator_value == "date":
        return name, _("Enter a date as YYYY-MM-DD.")
    if kind == "format":
        return name, _("This is not a valid unified social credit code.")
    if kind == "maxLength":
        return name, _("Use at most %(n)s characters.") % {"n": error.validator_value}
    if kind == "minLength":
        return name, _("This field is required.")
    if kind == "enum":
        return name, _("Choose one of the listed values.")
    if kind == "additionalProperties":
        return "?", _("The form has a field the template does not know.")
    return name, _("The value is not valid.")


def filled(form: Any, template: Template) -> dict[str, str]:
    """The template fields of a submitted form, trimmed; empty ones left out."""
    out = {}
    for name in template.fields:
        value = str(form.get(name, "")).strip()
        if value:
            out[name] = value
    return out


__all__ = ["Field", "filled", "form_fields", "problems"]
