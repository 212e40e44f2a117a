"""Unified social credit codes (统一社会信用代码), GB 32100-2015.

18 characters: registration authority (1), organisation type (1), administrative division
(6 digits, GB/T 2260), organisation code (9, GB 11714) and a check character. Characters come
from ``0-9`` and the capitals without I, O, Z, S, V (31 symbols, each worth its position).
The check character is ``31 - (sum(value_i * 3^i mod 31) mod 31)``, 31 written as ``0``.

The check character alone lets placeholders through: ``000000000000000000`` checks out (its
sum is 0, so its check character is ``0``). A code is also refused when its registration
authority is not one GB 32100 assigns (``1``-``9``, ``A``, ``N``, ``Y``), or its division or
organisation code is all zeros -- no authority issues those.
"""

from __future__ import annotations

from idnode.registry.errors import RegistryError

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
AUTHORITIES = "123456789ANY"  # registration authority codes GB 32100 assigns


def check_character(first17: str) -> str:
    """The GB 32100 check character of the first 17 characters."""
    total = sum(_VALUE[c] * w for c, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def validate_credit_code(code: str, field: str = "credit_code") -> str:
    """The code, upper-cased, or a RegistryError naming ``field`` and what is wrong."""
    if not isinstance(code, str):
        raise RegistryError("must be a string of 18 characters", field=field)
    code = code.strip().upper()
    if len(code) != 18:
        raise RegistryError(f"must be 18 characters, got {len(code)}", field=field)
    bad = [c for c in code if c not in _VALUE]
    if bad:
        raise RegistryError(
            f"character {bad[0]!r} is not allowed (digits and capitals except I O Z S V)",
            field=field,
        )
    if code[0] not in AUTHORITIES:
        raise RegistryError(
            f"registration authority {code[0]!r} is not one GB 32100 assigns"
            f" ({', '.join(AUTHORITIES)})",
            field=field,
        )
    if not code[2:8].isdigit():
        raise RegistryError("characters 3-8 (administrative division) must be digits", field=field)
    if code[2:8] == "000000" or code[8:17] == "000000000":
        raise RegistryError(
            "an all-zero division or organisation code is a placeholder", field=field
        )
    expected = check_character(code[:17])
    if code[17] != expected:
        raise RegistryError(
            f"check character is {code[17]!r} but GB 32100-2015 gives {expected!r}", field=field
        )
    return code


def is_credit_code(code: str) -> bool:
    """Whether ``code`` is a valid unified social credit code exactly as written (templates
    check record fields with it: a record keeps what it was given, so no upper-casing)."""
    try:
        return validate_credit_code(code) == code
    except RegistryError:
        return False
