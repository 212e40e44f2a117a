"""The GS1 Application Identifier table a Digital Link resolver needs (GS1 General
Specifications section 3; GS1 Digital Link 1.2 section 4, which names the primary keys, their
key qualifiers and the order those must come in).

Each AI has a title, a format (a regular expression over its value, as the General
Specifications write it: ``N14`` fourteen digits, ``X..20`` up to twenty characters of the
82-character set, ``N13+X..17`` ...), how many leading digits carry a GS1 mod-10 check digit,
and for a primary key the qualifier paths allowed after it. What is not in this table is an
unknown AI to the resolver (400), never passed through unchecked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# the 82 characters of GS1 AI encodable character set 82 (General Specifications 7.11)
CSET82 = r"""[!"%&'()*+,\-./0-9:;<=>?A-Z_a-z]"""
CSET39 = r"[#\-/0-9A-Z]"  # character set 39 (component/part identifiers)
_DATE = r"[0-9]{2}(?:0[1-9]|1[0-2])(?:0[0-9]|[12][0-9]|3[01])"  # YYMMDD; DD 00 = month end
_TIME = r"(?:[01][0-9]|2[0-3])[0-5][0-9]"  # HHMM


@dataclass(frozen=True, slots=True)
class AI:
    """One application identifier: ``check`` is how many leading characters end in a check
    digit (0: none); ``qualifiers`` the allowed qualifier paths of a primary key, each in its
    required order (an empty tuple for a key that takes none, None for a non-key)."""

    code: str
    title: str
    fmt: str  # the General Specifications' notation, shown in error messages
    pattern: str
    check: int = 0
    qualifiers: tuple[tuple[str, ...], ...] | None = None

    @property
    def is_primary_key(self) -> bool:
        return self.qualifiers is not None

    def matches(self, value: str) -> bool:
        return re.fullmatch(self.pattern, value) is not None


def _n(exact: int) -> str:
    return f"[0-9]{{{exact}}}"


def _x(most: int, cset: str = CSET82) -> str:
    return f"{cset}{{1,{most}}}"


_TABLE = [
    # primary keys (Digital Link 1.2, table 4-1) and their qualifier paths
    AI("00", "SSCC", "N18", _n(18), check=18, qualifiers=()),
    AI("01", "GTIN", "N14", _n(14), check=14, qualifiers=(("22", "10", "21"), ("235",))),
    AI("253", "GDTI", "N13+X..17", _n(13) + f"{CSET82}{{0,17}}", check=13, qualifiers=()),
    AI("255", "GCN", "N13+N..12", _n(13) + "[0-9]{0,12}", check=13, qualifiers=()),
    AI("401", "GINC", "X..30", _x(30), qualifiers=()),
    AI("402", "GSIN", "N17", _n(17), check=17, qualifiers=()),
    AI("414", "LOC No (GLN)", "N13", _n(13), check=13, qualifiers=(("254",), ("7040",))),
    AI("417", "PARTY GLN", "N13", _n(13), check=13, qualifiers=()),
    AI("8003", "GRAI", "N14+X..16", _n(14) + f"{CSET82}{{0,16}}", check=14, qualifiers=()),
    AI("8004", "GIAI", "X..30", _x(30), qualifiers=()),
    AI("8006", "ITIP", "N14+N2+N2", _n(18), check=14, qualifiers=(("22", "10", "21"),)),
    AI("8010", "CPID", "Y..30", _x(30, CSET39), qualifiers=(("8011",),)),
    AI("8017", "GSRN - PROVIDER", "N18", _n(18), check=18, qualifiers=(("8019",),)),
    AI("8018", "GSRN - RECIPIENT", "N18", _n(18), check=18, qualifiers=(("8019",),)),
    # key qualifiers
    AI("22", "CPV", "X..20", _x(20)),
    AI("10", "BATCH/LOT", "X..20", _x(20)),
    AI("21", "SERIAL", "X..20", _x(20)),
    AI("235", "TPX", "X..28", _x(28)),
    AI("254", "GLN EXTENSION COMPONENT", "X..20", _x(20)),
    AI("7040", "UIC+EXT", "N1+X3", "[0-9]" + f"{CSET82}{{3}}"),
    AI("8011", "CPID SERIAL", "N..12", "[0-9]{1,12}"),
    AI("8019", "SRIN", "N..10", "[0-9]{1,10}"),
    # data attributes, given in the query string (?17=261231)
    AI("11", "PROD DATE", "N6 (YYMMDD)", _DATE),
    AI("12", "DUE DATE", "N6 (YYMMDD)", _DATE),
    AI("13", "PACK DATE", "N6 (YYMMDD)", _DATE),
    AI("15", "BEST BEFORE", "N6 (YYMMDD)", _DATE),
    AI("16", "SELL BY", "N6 (YYMMDD)", _DATE),
    AI("17", "USE BY OR EXPIRY", "N6 (YYMMDD)", _DATE),
    AI("30", "VAR. COUNT", "N..8", "[0-9]{1,8}"),
    AI("37", "COUNT", "N..8", "[0-9]{1,8}"),
    AI("400", "ORDER NUMBER", "X..30", _x(30)),
    AI("422", "ORIGIN", "N3", _n(3)),
    AI("7003", "EXPIRY TIME", "N10 (YYMMDDHHMM)", _DATE + _TIME),
    AI("7006", "FIRST FREEZE DATE", "N6 (YYMMDD)", _DATE),
    *(AI(f"310{d}", f"NET WEIGHT (kg), {d} decimals", "N6", _n(6)) for d in range(6)),
]

TABLE: dict[str, AI] = {ai.code: ai for ai in _TABLE}
PRIMARY_KEYS: tuple[str, ...] = tuple(ai.code for ai in _TABLE if ai.is_primary_key)


def check_digit(digits: str) -> int:
    """The GS1 mod-10 check digit of ``digits`` (the number without its check digit):
    weights 3, 1, 3, ... from the right."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10


def with_check_digit(digits: str) -> str:
    """``digits`` followed by its check digit (for building test data and examples)."""
    return digits + str(check_digit(digits))
