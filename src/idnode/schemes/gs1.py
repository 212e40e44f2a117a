"""GS1 Digital Link URIs (GS1 Digital Link 1.2) and GS1 keys as Handle identifiers.

A Digital Link path names a primary key and its qualifiers, ``/01/09506000134352/10/ABC/21/123``;
data attributes ride in the query (``?17=261231``). ``parse_path`` checks it as a conformant
resolver must (AI syntax, check digits, qualifiers allowed for the key and in order) and
refuses anything else with a ``SchemeError`` whose message says what is wrong.

The Handle identifier of a GS1 key keeps the Digital Link path under the configured prefix,
``<prefix>/01/09506000134352/10/ABC``, GTINs padded to 14 digits and ``/`` and ``%`` inside a
value percent-encoded, so the mapping is one-to-one and both directions are a string rewrite.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from idnode.schemes.base import SchemeError, strip_tag
from idnode.schemes.gs1_ai import PRIMARY_KEYS, TABLE, check_digit

GS1_TAGS = ("gs1:",)
_ELEMENT = re.compile(r"\(([0-9]{2,4})\)([^()]*)")
_NUMERIC_KEY = re.compile(r"[0-9]{2,4}")


@dataclass(frozen=True, slots=True)
class DigitalLink:
    """A parsed, validated Digital Link: the primary key, its qualifiers (in order) and the
    data attributes of the query string."""

    key: str
    value: str
    qualifiers: tuple[tuple[str, str], ...] = ()
    attributes: tuple[tuple[str, str], ...] = ()

    @property
    def path(self) -> str:
        """The canonical Digital Link path, each value percent-encoded as a URI segment."""
        pairs = ((self.key, self.value), *self.qualifiers)
        return "".join(f"/{ai}/{quote(v, safe='')}" for ai, v in pairs)

    def less_specific(self) -> list[DigitalLink]:
        """This link, then with its last qualifier dropped, down to the key alone: the order
        a resolver looks for a record (a batch's page, else the product's)."""
        return [
            DigitalLink(self.key, self.value, self.qualifiers[:n], self.attributes)
            for n in range(len(self.qualifiers), -1, -1)
        ]


def _describe(ai: str) -> str:
    known = TABLE.get(ai)
    return f"{ai} ({known.title})" if known else ai


def check_value(ai: str, value: str) -> str:
    """``value`` of ``ai`` validated (and a short GTIN padded to 14 digits)."""
    spec = TABLE.get(ai)
    if spec is None:
        raise SchemeError(f"unknown GS1 application identifier {ai}")
    if ai == "01" and value.isdigit() and len(value) in (8, 12, 13):
        value = value.zfill(14)  # GTIN-8/12/13 are written as 14 digits (Digital Link 1.2)
    if not spec.matches(value):
        raise SchemeError(f"{_describe(ai)} {value!r} does not match its format {spec.fmt}")
    if spec.check:
        body, given = value[: spec.check - 1], int(value[spec.check - 1])
        expected = check_digit(body)
        if given != expected:
            raise SchemeError(
                f"{_describe(ai)} {value}: check digit {given} is wrong, expected {expected}"
            )
    return value


def _check_order(key: str, qualifiers: list[tuple[str, str]]) -> None:
    """Qualifiers must be a subsequence of one of the key's qualifier paths, in that order."""
    paths = TABLE[key].qualifiers or ()
    given = [ai for ai, _ in qualifiers]
    if not given:
        return
    for ai in given:
        if ai not in TABLE:
            raise SchemeError(f"unknown GS1 application identifier {ai}")
        if not any(ai in path for path in paths):
            allowed = ", ".join("/".join(p) for p in paths) or "none"
            raise SchemeError(
                f"{_describe(ai)} is not a key qualifier of {_describe(key)} (allowed: {allowed});"
                f" data attributes go in the query string, ?{ai}=..."
            )
    for path in paths:
        positions = [path.index(ai) if ai in path else -1 for ai in given]
        if -1 not in positions and positions == sorted(set(positions)):
            return
    for path in paths:
        if all(ai in path for ai in given):
            for first, second in zip(given, given[1:], strict=False):
                if path.index(first) >= path.index(second):
                    raise SchemeError(
                        f"qualifier {_describe(second)} must come before {_describe(first)} "
                        f"after {_describe(key)} (order: {'/'.join(path)}), and only once"
                    )
    raise SchemeError(f"qualifiers {'/'.join(given)} cannot be combined after {_describe(key)}")


def build(pairs: list[tuple[str, str]], attributes: Iterable[tuple[str, str]] = ()) -> DigitalLink:
    """A ``DigitalLink`` from (AI, value) pairs, the first the primary key; validated."""
    if not pairs:
        raise SchemeError("a GS1 Digital Link needs a primary key, e.g. /01/<GTIN>")
    key, value = pairs[0]
    spec = TABLE.get(key)
    if spec is None:
        raise SchemeError(f"unknown GS1 application identifier {key}")
    if not spec.is_primary_key:
        raise SchemeError(f"{_describe(key)} is not a GS1 primary key a Digital Link starts with")
    value = check_value(key, value)
    qualifiers = [(ai, check_value(ai, v)) if ai in TABLE else (ai, v) for ai, v in pairs[1:]]
    _check_order(key, qualifiers)
    attrs = []
    for ai, v in attributes:
        if _NUMERIC_KEY.fullmatch(ai):  # a numeric query key is an AI: checked, kept
            if TABLE.get(ai) is not None and TABLE[ai].is_primary_key:
                raise SchemeError(f"{_describe(ai)} is a primary key, not a data attribute")
            attrs.append((ai, check_value(ai, v)))
    return DigitalLink(key, value, tuple(qualifiers), tuple(attrs))


def parse_path(raw_path: str, query: Iterable[tuple[str, str]] = ()) -> DigitalLink:
    """A Digital Link from a URI path still percent-encoded (``/01/0950.../10/AB%2FC``):
    segments are split before they are decoded, so ``%2F`` inside a value stays a value."""
    segments = [unquote(s) for s in raw_path.strip("/").split("/")]
    if len(segments) % 2:
        raise SchemeError(
            f"a Digital Link path is AI/value pairs; {raw_path!r} has a dangling segment"
        )
    pairs = [(segments[i], segments[i + 1]) for i in range(0, len(segments), 2)]
    for ai, value in pairs:
        if not _NUMERIC_KEY.fullmatch(ai):
            raise SchemeError(f"{ai!r} is not a GS1 application identifier (2 to 4 digits)")
        if not value:
            raise SchemeError(f"{_describe(ai)} has an empty value")
    return build(pairs, query)


def parse_element_string(text: str) -> DigitalLink:
    """The human-readable element string, ``(01)09506000134352(10)ABC``."""
    pairs = _ELEMENT.findall(text)
    if not pairs or "".join(f"({a}){v}" for a, v in pairs) != text:
        raise SchemeError(f"{text!r} is not a GS1 element string like (01)09506000134352")
    return build(pairs)


def parse_uri(uri: str) -> DigitalLink:
    """A full Digital Link URI (``https://id.gs1.org/01/...``): the path may carry a prefix
    of its own before the primary key (Digital Link 1.2 allows one); the query its attributes."""
    parts = urlsplit(uri)
    segments = parts.path.split("/")
    for i, seg in enumerate(segments):
        if seg in PRIMARY_KEYS and i + 1 < len(segments):
            query = [tuple(p.split("=", 1)) for p in parts.query.split("&") if "=" in p]
            return parse_path("/".join(segments[i:]), [(k, unquote(v)) for k, v in query])
    raise SchemeError(f"no GS1 primary key in the path of {uri!r}")


def _handle_segment(value: str) -> str:
    return value.replace("%", "%25").replace("/", "%2F")


@dataclass(frozen=True)
class GS1Scheme:
    """The GS1 plugin: ``gs1:01/09506000134352``, ``gs1:(01)09506000134352(21)7``, a Digital
    Link URI ``https://id.example/01/09506000134352``; identifiers ``<prefix>/01/<GTIN>...``."""

    prefix: str
    name: str = "gs1"

    def recognises(self, text: str) -> bool:
        return strip_tag(text, GS1_TAGS) is not None or (
            text.lower().startswith(("http://", "https://")) and "/" in text[8:]
        )

    def parse(self, text: str) -> DigitalLink:
        rest = strip_tag(text, GS1_TAGS)
        if rest is None:
            return parse_uri(text)
        if rest.startswith("("):
            return parse_element_string(rest)
        path, _, query = rest.partition("?")
        pairs = [tuple(p.split("=", 1)) for p in query.split("&") if "=" in p]
        return parse_path(path, [(k, unquote(v)) for k, v in pairs])

    def handle_of(self, link: DigitalLink) -> str:
        pairs = ((link.key, link.value), *link.qualifiers)
        return self.prefix + "".join(f"/{ai}/{_handle_segment(v)}" for ai, v in pairs)

    def to_handle(self, text: str) -> str:
        return self.handle_of(self.parse(text))

    def link_of(self, handle: str) -> DigitalLink | None:
        """The Digital Link a Handle name of this scheme stands for; None for other names."""
        head = f"{self.prefix}/"
        if handle[: len(head)].lower() != head.lower():
            return None
        rest = handle[len(head) :]
        if rest.split("/", 1)[0] not in TABLE:
            return None
        try:
            return parse_path(rest)
        except SchemeError:
            return None

    def from_handle(self, handle: str) -> str | None:
        link = self.link_of(handle)
        return None if link is None else "gs1:" + link.path.lstrip("/")


__all__ = ["DigitalLink", "GS1Scheme", "build", "check_value", "parse_path"]
