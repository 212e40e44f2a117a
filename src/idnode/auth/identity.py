"""Who is acting: a reference ``index:handle`` to one key value (HS_PUBKEY or HS_SECKEY).

The Handle System has no user accounts. A client proves it holds the key stored at one value
of one handle, and that value reference *is* its identity (RFC 3651 section 3.2.1), written
``300:0.NA/20.500`` -- index first, as HS_ADMIN values, HSJ and the REST API all write it.

Handles compare case-insensitively (``idnode.model.handle_key``), so ``300:0.na/x`` and
``300:0.NA/X`` are one identity: equality and hashing use the key, while ``handle`` keeps the
spelling the client sent (for messages and logs).
"""

from __future__ import annotations

from dataclasses import dataclass

from idnode.errors import InvalidCredential
from idnode.model import ValueReference, handle_key

MAX_INDEX = (1 << 31) - 1


@dataclass(frozen=True, slots=True, eq=False)
class Identity:
    """An authenticated (or claimed) identity: the key value ``index`` of ``handle``.

    ``index`` is positive: index 0 is HSJ's "any key of that handle", which a server must
    resolve to the value that actually verified before it has an identity.
    """

    handle: str
    index: int

    def __post_init__(self) -> None:
        if not isinstance(self.handle, str) or not self.handle:
            raise InvalidCredential("identity handle must be a non-empty string")
        if isinstance(self.index, bool) or not isinstance(self.index, int):
            raise InvalidCredential("identity index must be an integer")
        if not 0 < self.index <= MAX_INDEX:
            raise InvalidCredential(f"identity index must be 1..{MAX_INDEX}, got {self.index}")

    @classmethod
    def parse(cls, text: str) -> Identity:
        """``"300:0.NA/20.500"`` -> Identity; the index is decimal digits before the first ':'."""
        if not isinstance(text, str):
            raise InvalidCredential("identity must be a string 'index:handle'")
        index, sep, handle = text.partition(":")
        if not sep or not index or not (index.isascii() and index.isdigit()) or not handle:
            raise InvalidCredential(f"identity must be 'index:handle', got {text!r}")
        if len(index) > 10:
            raise InvalidCredential(f"identity index out of range in {text!r}")
        return cls(handle, int(index))

    @property
    def key(self) -> tuple[str, int]:
        """What two identities are compared by: (case-folded handle, index)."""
        return handle_key(self.handle), self.index

    def matched_by(self, ref: ValueReference) -> bool:
        """Whether an admin or HS_VLIST reference names this identity.

        As HSJ's ``ValueReference.isMatchedBy``: same handle (case-insensitive) and same index,
        where a reference with index 0 stands for every index of its handle.
        """
        if ref.index != 0 and ref.index != self.index:
            return False
        return handle_key(ref.handle) == handle_key(self.handle)

    def as_reference(self) -> ValueReference:
        return ValueReference(self.handle, self.index)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Identity):
            return NotImplemented
        return self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        return f"{self.index}:{self.handle}"
