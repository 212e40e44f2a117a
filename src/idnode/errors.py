"""One exception hierarchy for the whole node.

Every error carries the Handle response code that a transport sends on the wire (and maps to
an HTTP status), plus a human message. Messages must never include a non-public value.
"""

from __future__ import annotations

from idnode.codes import ResponseCode


class IdnodeError(Exception):
    """Base of every error the node raises on purpose."""

    code: ResponseCode = ResponseCode.ERROR

    def __init__(self, message: str = "", *, code: ResponseCode | None = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.__class__.__name__)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)


class ProtocolError(IdnodeError):
    """The request broke the protocol."""

    code = ResponseCode.PROTOCOL_ERROR


class MalformedMessage(ProtocolError):
    """Bytes that do not decode: a length past the end, a bad count, invalid UTF-8.

    The one error the wire decoder raises; ``field`` names what was wrong.
    """

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class OperationNotSupported(IdnodeError):
    """The operation is not supported by this node."""

    code = ResponseCode.OPERATION_NOT_SUPPORTED


class ServerBusy(IdnodeError):
    """The server is too busy to answer."""

    code = ResponseCode.SERVER_BUSY


class HandleNotFound(IdnodeError):
    """Handle not found."""

    code = ResponseCode.HANDLE_NOT_FOUND


class HandleAlreadyExists(IdnodeError):
    """Handle already exists."""

    code = ResponseCode.HANDLE_ALREADY_EXISTS


class InvalidHandle(IdnodeError):
    """Invalid handle."""

    code = ResponseCode.INVALID_HANDLE


class ValueNotFound(IdnodeError):
    """Value not found."""

    code = ResponseCode.VALUES_NOT_FOUND


class ValueAlreadyExists(IdnodeError):
    """A value with that index already exists."""

    code = ResponseCode.VALUE_ALREADY_EXISTS


class InvalidValue(IdnodeError):
    """Invalid value."""

    code = ResponseCode.INVALID_VALUE


class NotResponsible(IdnodeError):
    """This node does not home the handle's prefix."""

    code = ResponseCode.SERVER_NOT_RESPONSIBLE


class NotPrimary(IdnodeError):
    """A write sent to a mirror, or to a primary fenced by a promotion (HSJ answers writes
    on a mirror with RC_SERVER_NOT_RESP, 301, "Not a primary server")."""

    code = ResponseCode.SERVER_NOT_RESPONSIBLE


class NotAuthorized(IdnodeError):
    """Not authorized."""

    code = ResponseCode.NOT_AUTHORIZED


class AuthenticationFailed(IdnodeError):
    """Authentication failed."""

    code = ResponseCode.AUTHENTICATION_FAILED


# -- authentication and sessions (idnode.auth) ------------------------------------------------


class AccessDenied(IdnodeError):
    """Access denied."""

    code = ResponseCode.ACCESS_DENIED


class AuthenticationNeeded(IdnodeError):
    """Authentication needed: the operation needs an authenticated identity."""

    code = ResponseCode.AUTHENTICATION_NEEDED


class InvalidCredential(IdnodeError):
    """Invalid credential."""

    code = ResponseCode.INVALID_CREDENTIAL


class MalformedAuthorization(InvalidCredential):
    """An Authorization header (Basic or Handle) that does not parse.

    A subclass so HTTP can answer 400 for a broken header while the wire keeps code 404.
    """


class AuthenTimeout(IdnodeError):
    """The challenge expired or was already answered; authenticate again."""

    code = ResponseCode.AUTHEN_TIMEOUT


class UnableToAuthenticate(IdnodeError):
    """Unable to authenticate: the identity's key cannot be found or used."""

    code = ResponseCode.UNABLE_TO_AUTHENTICATE


class SessionTimeout(IdnodeError):
    """The session expired or does not exist."""

    code = ResponseCode.SESSION_TIMEOUT


class SessionFailed(IdnodeError):
    """The session could not be set up."""

    code = ResponseCode.SESSION_FAILED


# -- quotas (service.quotas) -------------------------------------------------------------------


class QuotaExceeded(IdnodeError):
    """A quota of the acting identity is used up (the IDIS codes 603-605)."""

    code = ResponseCode.REQUEST_LIMIT_DAILY


class DailyRequestLimit(QuotaExceeded):
    """The identity's requests for today are used up."""

    code = ResponseCode.REQUEST_LIMIT_DAILY


class RegistrationLimit(QuotaExceeded):
    """The identity may register no more identifiers under this prefix."""

    code = ResponseCode.REGISTER_COUNT_LIMIT


class PrefixLimit(QuotaExceeded):
    """The identity's organisation may create no more prefixes."""

    code = ResponseCode.PREFIX_LIMIT
