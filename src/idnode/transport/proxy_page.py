"""The proxy's HTML pages: a handle's values, or why there are none, in Chinese or English.

HANDLE.NET's proxy shows people a page of the values when there is nowhere to redirect or
``noredirect`` is asked; idnode does the same. Every value is the record owner's data and
so attacker-controlled: everything taken from the record or the request is escaped with
``html.escape(quote=True)``; a link is made only of an ``http``/``https`` URL (never
``javascript:`` or ``data:``); the page carries a Content-Security-Policy that allows no
script at all, so even a mistake here cannot run one.

The language: ``?lang=zh|en`` first, then the client's ``Accept-Language`` by its q values;
English when neither names one of the two.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import orjson

from idnode.model import HandleValue
from idnode.wire.json import value_to_json

LANGUAGES = ("en", "zh")
CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

_TEXT = {
    "en": {
        "title": "Handle {handle}",
        "values": "Values of handle {handle}",
        "index": "Index",
        "type": "Type",
        "data": "Data",
        "timestamp": "Timestamp",
        "none": "This handle has no values to show.",
        "error": "Handle {handle}: error {code}",
        "served_by": "Served by {node}",
    },
    "zh": {
        "title": "标识 {handle}",
        "values": "标识 {handle} 的标识值",
        "index": "索引",
        "type": "类型",
        "data": "数据",
        "timestamp": "时间戳",
        "none": "该标识没有可显示的标识值。",
        "error": "标识 {handle}：错误 {code}",
        "served_by": "由 {node} 提供",
    },
}


def _quality(part: str) -> tuple[str, float]:
    name, *params = (p.strip() for p in part.split(";"))
    q = 1.0
    for param in params:
        key, _, raw = param.partition("=")
        if key.strip().lower() == "q":
            try:
                q = float(raw)
            except ValueError:
                q = 0.0
    return name.lower(), q


def language(lang_param: str | None, accept_language: str | None) -> str:
    """``zh`` or ``en`` (module docstring)."""
    if lang_param:
        short = lang_param.strip().lower().split("-", 1)[0]
        if short in LANGUAGES:
            return short
    best, best_q = "en", 0.0
    for part in (accept_language or "").split(","):
        if not part.strip():
            continue
        name, q = _quality(part)
        short = name.split("-", 1)[0]
        if short in LANGUAGES and q > best_q:
            best, best_q = short, q
    return best


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _data_cell(value: HandleValue) -> str:
    data = value_to_json(value)["data"]
    shown = data.get("value") if isinstance(data, dict) else data
    if not isinstance(shown, str):
        shown = orjson.dumps(shown).decode("utf-8")
    if value.type.upper() == "URL" and shown.strip().lower().startswith(("http://", "https://")):
        return f'<a href="{_esc(shown.strip())}" rel="nofollow noreferrer">{_esc(shown)}</a>'
    return f"<code>{_esc(shown)}</code>"


def _page(lang: str, title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}"
        "code{white-space:pre-wrap;word-break:break-all}</style>"
        f"</head><body>{body}</body></html>\n"
    )


def values_page(handle: str, values: Sequence[HandleValue], lang: str, node: str) -> str:
    """The page of a handle's values, sorted by index."""
    text = _TEXT[lang]
    title = _esc(text["title"].format(handle=handle))
    rows = "".join(
        f'<tr class="value"><td>{v.index}</td><td>{_esc(v.type)}</td>'
        f"<td>{_data_cell(v)}</td><td>{_esc(value_to_json(v)['timestamp'])}</td></tr>"
        for v in sorted(values, key=lambda v: v.index)
    )
    if rows:
        head = "".join(f"<th>{_esc(text[k])}</th>" for k in ("index", "type", "data", "timestamp"))
        table = f'<table id="values"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
    else:
        table = f'<p id="none">{_esc(text["none"])}</p>'
    heading = _esc(text["values"].format(handle=handle))
    footer = f"<footer>{_esc(text['served_by'].format(node=node))}</footer>"
    return _page(lang, title, f"<h1>{heading}</h1>{table}{footer}")


def error_page(handle: str, code: int, message: str, lang: str) -> str:
    """The page of a resolution that failed: the Handle response code and its message."""
    text = _TEXT[lang]
    heading = _esc(text["error"].format(handle=handle, code=code))
    return _page(lang, heading, f'<h1>{heading}</h1><p id="message">{_esc(message)}</p>')


__all__ = ["CSP", "error_page", "language", "values_page"]
