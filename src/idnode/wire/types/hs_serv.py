"""HS_SERV (RFC 3651 section 3.2.4): names the service handle whose HS_SITE values serve a
prefix (HSJ ``Common.SERVICE_HANDLE_TYPE``).

A resolver that meets one resolves the named handle for its sites, so a write must carry a
non-empty UTF-8 handle; JSON shows it as the plain string it is.
"""

from __future__ import annotations

from idnode.model import HS_SERV
from idnode.wire.types.base import Role, ValueType
from idnode.wire.types.handle_ref import decode_handle_ref, encode_handle_ref

TYPE: ValueType[str] = ValueType(
    name=HS_SERV,
    parse=decode_handle_ref,
    encode=encode_handle_ref,
    role=Role.SERVICE_HANDLE,
)

encode_serv = encode_handle_ref
decode_serv = decode_handle_ref

__all__ = ["TYPE", "decode_serv", "encode_serv"]
