"""Protocol numbers of RFC 3652 (and the Handle.Net extensions current clients send).

They live outside ``wire`` because errors, services and transports all speak them; the
wire package only turns them into bytes.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag


class OpCode(IntEnum):
    RESERVED = 0
    RESOLUTION = 1
    GET_SITEINFO = 2
    CREATE_HANDLE = 100
    DELETE_HANDLE = 101
    ADD_VALUE = 102
    REMOVE_VALUE = 103
    MODIFY_VALUE = 104
    LIST_HANDLES = 105
    LIST_NAS = 106  # list derived prefixes (newer Handle.Net, DO-IRP)
    CHALLENGE_RESPONSE = 200
    VERIFY_RESPONSE = 201
    HOME_NA = 300
    UNHOME_NA = 301
    LIST_HOMED_NAS = 302  # Handle.Net's listing of the prefixes a server homes
    SESSION_SETUP = 400
    SESSION_TERMINATE = 401
    SESSION_EXCHANGEKEY = 402
    GET_NEXT_TXN_ID = 1000  # replication (HSJ net.handle.server.replication): docs/replication.md
    RETRIEVE_TXN_LOG = 1001
    DUMP_HANDLES = 1002
    RETRIEVE_GOVERNANCE = 1100  # idnode extension: governance rows for idnode mirrors
    LOGIN_ID_SYSTEM = 2001  # IDIS (Teleinfo id-pointer-sdk): log a TCP connection in


class ResponseCode(IntEnum):
    RESERVED = 0  # requests carry 0
    SUCCESS = 1
    ERROR = 2
    SERVER_BUSY = 3
    PROTOCOL_ERROR = 4
    OPERATION_NOT_SUPPORTED = 5
    RECURSION_COUNT_TOO_HIGH = 6
    SERVER_BACKUP = 7
    HANDLE_NOT_FOUND = 100
    HANDLE_ALREADY_EXISTS = 101
    INVALID_HANDLE = 102
    VALUES_NOT_FOUND = 200
    VALUE_ALREADY_EXISTS = 201
    INVALID_VALUE = 202
    EXPIRED_SITE_INFO = 300
    SERVER_NOT_RESPONSIBLE = 301
    SERVICE_REFERRAL = 302
    PREFIX_REFERRAL = 303
    NOT_AUTHORIZED = 400
    ACCESS_DENIED = 401
    AUTHENTICATION_NEEDED = 402
    AUTHENTICATION_FAILED = 403
    INVALID_CREDENTIAL = 404
    AUTHEN_TIMEOUT = 405
    UNABLE_TO_AUTHENTICATE = 406
    SESSION_TIMEOUT = 500
    SESSION_FAILED = 501
    NO_SESSION_KEY = 502
    SESSION_NO_SUPPORT = 503
    SESSION_KEY_INVALID = 504
    SESSION_MESSAGE_REJECTED = 505
    # IDIS quota refusals (Teleinfo id-pointer-sdk AbstractMessage; 601/602 are the SDK's own
    # client-side codes and never sent). Handle.Net clients do not know them: see
    # ``transport.idis`` for what each kind of client is sent instead.
    REQUEST_LIMIT_DAILY = 603
    REGISTER_COUNT_LIMIT = 604
    PREFIX_LIMIT = 605
    TRYING = 900
    FORWARDED = 901


class OpFlag(IntFlag):
    """Bits of the message header's OpFlag field (RFC 3652 section 2.2.2.3)."""

    AT = 0x80000000  # authoritative: bypass caches
    CT = 0x40000000  # certified: sign the response
    ENC = 0x20000000  # encrypt the response
    REC = 0x10000000  # recursive resolution wanted
    CA = 0x08000000  # cache authentication: answers signed by a cache
    CN = 0x04000000  # continuous: more messages follow
    KC = 0x02000000  # keep the TCP connection open
    PO = 0x01000000  # public values only
    RD = 0x00800000  # return a digest of the request
    OW = 0x00400000  # overwrite on create / add
    MINT = 0x00200000  # mint a new suffix on create
    DNRF = 0x00100000  # do not refer: answer or fail


class Permission(IntFlag):
    """Per-value permissions (RFC 3651 section 3.1)."""

    PUBLIC_WRITE = 0x01
    PUBLIC_READ = 0x02
    ADMIN_WRITE = 0x04
    ADMIN_READ = 0x08


class AdminPermission(IntFlag):
    """HS_ADMIN permission bits (RFC 3651 section 3.2.1), lowest bit first."""

    ADD_HANDLE = 0x0001
    DELETE_HANDLE = 0x0002
    ADD_NA = 0x0004  # add derived prefix
    DELETE_NA = 0x0008
    MODIFY_VALUE = 0x0010
    REMOVE_VALUE = 0x0020
    ADD_VALUE = 0x0040
    MODIFY_ADMIN = 0x0080
    REMOVE_ADMIN = 0x0100
    ADD_ADMIN = 0x0200
    AUTHORIZED_READ = 0x0400
    LIST_HANDLES = 0x0800


class TTLType(IntEnum):
    RELATIVE = 0
    ABSOLUTE = 1
