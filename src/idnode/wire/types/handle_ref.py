"""The layout HS_SERV and HS_ALIAS share: the referenced handle as raw UTF-8, nothing else
(no length prefix; RFC 3651 sections 3.2.4 and 3.2.5, HSJ ``Util.encodeString``)."""

from __future__ import annotations

from idnode.errors import InvalidValue, MalformedMessage


def encode_handle_ref(handle: str) -> bytes:
    """The handle's UTF-8 bytes; an empty reference points nowhere and is refused."""
    if not handle:
        raise InvalidValue("referenced handle must not be empty")
    return handle.encode("utf-8")


def decode_handle_ref(data: bytes) -> str:
    """The referenced handle; ``MalformedMessage`` for empty data or invalid UTF-8."""
    if not data:
        raise MalformedMessage("empty handle reference", field="value.data")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedMessage(f"invalid UTF-8 at byte {exc.start}", field="value.data") from None


__all__ = ["decode_handle_ref", "encode_handle_ref"]
