"""The links of a GS1 key, stored as values of its Handle identifier, and how a resolver
picks one (GS1-Conformant resolver standard; RFC 9264 linksets).

The value type (docs/schemes.md, "Link values"): a value's **type** is the link type as a
compact URI, ``gs1:pip``, ``gs1:certificationInfo``, ``gs1:defaultLink`` (the target when no
link type is asked) or ``gs1:defaultLinkMulti`` (several defaults told apart by language or
media type); its **data** is the target URL, or a JSON object with ``href`` and the RFC 9264
target attributes ``title``, ``hreflang`` (a tag or a list), ``type`` (media type) and
``context``. A plain ``URL`` value is the default link of a record that names none, so a
Handle record made for the proxy answers a Digital Link scan too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from idnode.model import HandleValue

GS1_VOC = "https://gs1.org/voc/"
CURIE = "gs1:"
DEFAULT = "gs1:defaultLink"
DEFAULT_MULTI = "gs1:defaultLinkMulti"
LINKSET = "application/linkset+json"


@dataclass(frozen=True, slots=True)
class Link:
    """One link of a GS1 key: its type (``gs1:pip``) and RFC 9264 target attributes."""

    link_type: str
    href: str
    title: str = ""
    hreflang: tuple[str, ...] = ()
    media_type: str = ""
    context: str = ""

    @property
    def relation(self) -> str:
        """The link relation type as a URI (``https://gs1.org/voc/pip``), as linksets key it."""
        return GS1_VOC + self.link_type[len(CURIE) :]

    def target(self) -> dict[str, Any]:
        """The RFC 9264 target object."""
        out: dict[str, Any] = {"href": self.href}
        if self.title:
            out["title"] = self.title
        if self.hreflang:
            out["hreflang"] = list(self.hreflang)
        if self.media_type:
            out["type"] = self.media_type
        if self.context:  # an extension attribute: an array in a linkset (RFC 9264 4.2.4.3)
            out["context"] = [self.context]
        return out


def link_type(text: str) -> str | None:
    """A linkType parameter as the stored type: ``gs1:pip`` from ``gs1:pip`` or the full
    ``https://gs1.org/voc/pip`` (http too); None for a type outside the GS1 vocabulary."""
    for head in (GS1_VOC, "http://gs1.org/voc/", "https://www.gs1.org/voc/"):
        if text.startswith(head) and len(text) > len(head):
            return CURIE + text[len(head) :]
    if text.lower().startswith(CURIE) and len(text) > len(CURIE):
        return CURIE + text[len(CURIE) :]
    return None


def _link(value: HandleValue) -> Link | None:
    """A value as a link; None for a value that is not one (or is malformed: skipped, never
    an error for the reader)."""
    kind = value.type
    if kind.upper() == "URL":
        kind = DEFAULT
    elif not kind.lower().startswith(CURIE):
        return None
    text = value.data.decode("utf-8", "replace").strip()
    if not text.startswith("{"):
        return Link(kind, text) if text else None
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("href"), str) or not obj["href"]:
        return None
    langs = obj.get("hreflang", ())
    langs = (langs,) if isinstance(langs, str) else tuple(x for x in langs if isinstance(x, str))
    return Link(
        kind,
        obj["href"],
        title=str(obj.get("title", "")),
        hreflang=langs,
        media_type=str(obj.get("type", "")),
        context=str(obj.get("context", "")),
    )


def links_of(values: Iterable[HandleValue]) -> list[Link]:
    """The record's links in index order; URL values only when no GS1 default is stored."""
    ordered = sorted(values, key=lambda v: v.index)
    links = [link for v in ordered if (link := _link(v)) is not None and v.type.upper() != "URL"]
    if not any(link.link_type in (DEFAULT, DEFAULT_MULTI) for link in links):
        links += [link for v in ordered if v.type.upper() == "URL" and (link := _link(v))]
    return links


def _weights(header: str) -> list[tuple[str, float]]:
    """An Accept or Accept-Language header as (item, q), lower-cased; bad q values are 0."""
    out = []
    for part in header.split(","):
        item, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for param in params:
            name, _, raw = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = max(0.0, min(1.0, float(raw)))
                except ValueError:
                    q = 0.0
        if item:
            out.append((item.lower(), q))
    return out


def _language_score(link: Link, wanted: list[tuple[str, float]]) -> float:
    if not wanted:
        return 0.5
    if not link.hreflang:
        return 0.01  # language-neutral: after every language the reader accepts
    best = 0.0
    for tag in (t.lower() for t in link.hreflang):
        for item, q in wanted:
            if item == tag:
                best = max(best, q)
            elif item == "*" or item.split("-")[0] == tag.split("-")[0]:
                best = max(best, q * 0.9)
    return best


def _media_score(link: Link, wanted: list[tuple[str, float]]) -> float:
    if not wanted or not link.media_type:
        return 0.5
    media = link.media_type.lower()
    best = 0.0
    for item, q in wanted:
        if item == media:
            best = max(best, q)
        elif item.endswith("/*") and media.startswith(item[:-1]):
            best = max(best, q * 0.9)
        elif item == "*/*":
            best = max(best, q * 0.8)
    return best


def choose(
    links: Sequence[Link], wanted_type: str | None, accept_language: str, accept: str
) -> Link | None:
    """The link to redirect to: of ``wanted_type`` when the record has one, else a default
    (the resolver standard's fallback); among several, the best by language, then media
    type, then the stored order. None when there is nothing to redirect to."""
    pool = [link for link in links if wanted_type and link.link_type == wanted_type]
    if not pool:
        pool = [link for link in links if link.link_type in (DEFAULT, DEFAULT_MULTI)]
    if not pool:
        return None
    langs, media = _weights(accept_language), _weights(accept)
    ranked = sorted(
        enumerate(pool),
        key=lambda item: (-_language_score(item[1], langs), -_media_score(item[1], media), item[0]),
    )
    return ranked[0][1]


def linkset(anchor: str, links: Sequence[Link]) -> dict[str, Any]:
    """The RFC 9264 JSON linkset (section 4.2) of a key's links, anchored at its URI."""
    context: dict[str, Any] = {"anchor": anchor}
    for link in links:
        context.setdefault(link.relation, []).append(link.target())
    return {"linkset": [context]}
