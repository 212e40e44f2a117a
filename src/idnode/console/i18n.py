"""The console's languages: gettext catalogues (Babel), the choice of language, and dates
and numbers written the way each language writes them.

English is the source language (the msgids); ``locale/zh_CN/LC_MESSAGES/console.po`` holds
Simplified Chinese. The ``.po`` is compiled when the console starts (Babel's ``read_po`` and
``write_mo`` in memory), so the catalogue in the repository is the one served and no build
step can leave a stale ``.mo`` behind. ``make messages`` extracts the strings of the
templates and Python modules into ``console.pot`` and updates the ``.po``.

The language is the ``console_lang`` cookie (the switch sets it), else the best match of
``Accept-Language``, else English.
"""

from __future__ import annotations

import datetime
import io
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "console"
LANGUAGES = ("en", "zh-CN")  # what the switch offers, in this order
COOKIE = "console_lang"
_BABEL = {"en": "en", "zh-CN": "zh_Hans_CN"}
_CATALOGUE = {"zh-CN": "zh_CN"}


@cache
def translations(lang: str) -> NullTranslations:
    """The compiled catalogue of ``lang`` (English: the msgids themselves)."""
    folder = _CATALOGUE.get(lang)
    if folder is None:
        return NullTranslations()
    po = LOCALE_DIR / folder / "LC_MESSAGES" / f"{DOMAIN}.po"
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=folder)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The console language of a request (module docstring)."""
    if cookie in LANGUAGES:
        return cookie
    ranked = []
    for i, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag:
            ranked.append((-q, i, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return "en"


@dataclass(frozen=True)
class Language:
    """One request's language: its catalogue and its formats."""

    code: str

    @property
    def locale(self) -> Locale:
        return Locale.parse(_BABEL[self.code])

    def gettext(self, message: str) -> str:
        return translations(self.code).gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return translations(self.code).ngettext(singular, plural, n)

    def number(self, value: int | float) -> str:
        return format_decimal(value, locale=self.locale)

    def percent(self, ratio: float) -> str:
        return format_percent(ratio, "#,##0.0%", locale=self.locale)

    def datetime(self, epoch: int | float | None) -> str:
        """A moment (seconds since the epoch, UTC) as the language writes it."""
        if epoch is None:
            return ""
        moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
        return format_datetime(moment, "medium", tzinfo=datetime.UTC, locale=self.locale)

    def date(self, iso: str) -> str:
        try:
            return format_date(datetime.date.fromisoformat(iso), "medium", locale=self.locale)
        except ValueError:
            return iso


CURRENT: ContextVar[Language | None] = ContextVar("console_language", default=None)
_ENGLISH = Language("en")


def gettext(message: str) -> str:
    """``_()`` for the request being served (templates and Python alike)."""
    return (CURRENT.get() or _ENGLISH).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return (CURRENT.get() or _ENGLISH).ngettext(singular, plural, n)


__all__ = ["COOKIE", "CURRENT", "LANGUAGES", "Language", "gettext", "negotiate", "ngettext"]


def N_(message: str) -> str:
    """Marks a string for extraction whose translation is looked up later (a state, a role,
    a template's field title): ``make messages`` extracts ``N_`` too."""
    return message


# words the pages show from data: lifecycle states, account roles, the field titles of the
# shipped auto-parts template (other templates' titles show as their template writes them)
DATA_WORDS = (
    N_("active"), N_("suspended"), N_("revoked"), N_("handle_admin"),
    N_("queued"), N_("running"), N_("done"), N_("failed"), N_("applied"), N_("approved"),
    N_("operator"), N_("org_admin"), N_("registrar"),
    N_("OEM part number"), N_("Part name"), N_("Model / variant"), N_("Production batch"),
    N_("Serial number"), N_("Production date"), N_("Manufacturer legal name"),
    N_("Manufacturer credit code"), N_("Fits vehicle models"), N_("Main material"),
    N_("Product standard, e.g. QC/T 29106"), N_("Product information page"),
    N_("Free description"),
)  # fmt: skip
