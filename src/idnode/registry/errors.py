"""Registry errors: each names the field (or CSV row) that was wrong.

They subclass ``IdnodeError`` so a registry rule hit through the wire or REST still carries a
Handle response code; the management API adds the field and an HTTP status.
"""

from __future__ import annotations

from idnode.codes import ResponseCode
from idnode.errors import IdnodeError


class RegistryError(IdnodeError):
    """A request the registry refuses; ``field`` names what was wrong."""

    code = ResponseCode.INVALID_VALUE
    status = 400

    def __init__(self, message: str, *, field: str = "", status: int | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.detail = message
        if status is not None:
            self.status = status


class NotFound(RegistryError):
    code = ResponseCode.HANDLE_NOT_FOUND
    status = 404


class Conflict(RegistryError):
    code = ResponseCode.HANDLE_ALREADY_EXISTS
    status = 409


class Forbidden(RegistryError):
    code = ResponseCode.NOT_AUTHORIZED
    status = 403


class Unauthenticated(RegistryError):
    code = ResponseCode.AUTHENTICATION_NEEDED
    status = 401
