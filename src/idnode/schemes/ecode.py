"""Ecode, the IoT entity code of GB/T 31866: ``ecode:10001...`` as a Handle identifier.

An Ecode is V + NSI + MD: a version digit, the numbering-system identifier (which coding
scheme the master data follows, assigned by the Ecode authority) and the master data code.
The version fixes the lengths and the character set of the text forms (GB/T 31866 table 1):

| V | NSI | MD | whole code | characters |
| - | --- | -- | ---------- | ---------- |
| 1 | 4 digits | up to 20 | up to 25 | digits |
| 2 | 4 digits | up to 28 | up to 33 | digits |
| 3 | 5 digits | up to 39 | up to 45 | digits and capital letters |
| 4 | 5 digits | any length | — | UTF-8, no space or control character |

Version 0 is the 256-bit binary form (RFID); it is read as text by nothing here and refused.
Any further check (a check digit inside MD) belongs to the coding scheme the NSI names, not
to Ecode itself. Identifiers: ``<prefix>/ecode/<code>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from idnode.schemes.base import SchemeError, strip_tag, under_prefix

TAGS = ("ecode:", "urn:ecode:")
HANDLE_TAG = "ecode"
# version -> (NSI digits, MD pattern, longest whole code or 0 for unbounded)
VERSIONS: dict[str, tuple[int, str, int]] = {
    "1": (4, r"[0-9]{1,20}", 25),
    "2": (4, r"[0-9]{1,28}", 33),
    "3": (5, r"[0-9A-Z]{1,39}", 45),
    "4": (5, r"[^\s\x00-\x1f\x7f]+", 0),
}


@dataclass(frozen=True, slots=True)
class Ecode:
    version: str
    nsi: str
    md: str

    def __str__(self) -> str:
        return self.version + self.nsi + self.md


def parse(code: str) -> Ecode:
    """An Ecode's parts, checked against its version's rules; ``SchemeError`` otherwise."""
    if not code:
        raise SchemeError("an Ecode is empty")
    version = code[0]
    if version == "0":
        raise SchemeError("Ecode version 0 is the 256-bit binary form; write the text form (1-4)")
    if version not in VERSIONS:
        raise SchemeError(f"Ecode {code!r}: unknown version digit {version!r} (1 to 4)")
    nsi_len, md_pattern, longest = VERSIONS[version]
    nsi, md = code[1 : 1 + nsi_len], code[1 + nsi_len :]
    if not re.fullmatch(f"[0-9]{{{nsi_len}}}", nsi):
        raise SchemeError(f"Ecode {code!r}: version {version} needs an NSI of {nsi_len} digits")
    if not re.fullmatch(md_pattern, md):
        kind = {"1": "1-20 digits", "2": "1-28 digits", "3": "1-39 digits or capitals"}
        raise SchemeError(
            f"Ecode {code!r}: version {version} master data must be "
            f"{kind.get(version, 'printable characters')}"
        )
    if longest and len(code) > longest:
        raise SchemeError(f"Ecode {code!r}: version {version} is at most {longest} characters")
    return Ecode(version, nsi, md)


@dataclass(frozen=True)
class EcodeScheme:
    """The Ecode plugin: ``ecode:<code>`` <-> ``<prefix>/ecode/<code>``."""

    prefix: str
    name: str = "ecode"

    def recognises(self, text: str) -> bool:
        return strip_tag(text, TAGS) is not None

    def to_handle(self, text: str) -> str:
        code = strip_tag(text, TAGS)
        if code is None:
            raise SchemeError(f"{text!r} is not an Ecode (ecode:<code>)")
        return f"{self.prefix}/{HANDLE_TAG}/{parse(code)}"

    def from_handle(self, handle: str) -> str | None:
        code = under_prefix(self.prefix, handle, HANDLE_TAG)
        if code is None:
            return None
        try:
            return f"ecode:{parse(code)}"
        except SchemeError:
            return None
