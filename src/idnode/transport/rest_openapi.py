"""The OpenAPI description of the Handle.Net REST API this node serves (``transport/http.py``,
``transport/http_auth.py``), for ``/api/docs`` and for code generators.

Written by hand because the API is Handle.Net's (technical manual chapter 14), not ours to
derive from code: the shapes here are the ones HSJ's clients rely on. The security schemes
are the ways a browser (or Swagger UI's Authorize button) can call it: Basic with
``300:<admin handle>`` and the admin's secret key, or a session's ``Authorization: Handle
sessionId="..."`` header after the challenge-response of ``/api/sessions``.
"""

from __future__ import annotations

from typing import Any

_HANDLE = {
    "name": "handle",
    "in": "path",
    "required": True,
    "description": "the handle, e.g. 20.500.123/demo-1 (its slash unescaped)",
    "schema": {"type": "string"},
}


def _query(name: str, description: str, kind: str = "string", many: bool = False) -> dict:
    schema: dict[str, Any] = {"type": kind}
    if many:
        schema = {"type": "array", "items": schema}
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}  # fmt: skip


def _json(ref: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


_ERRORS = {
    "400": _json("HandleError", "bad request (responseCode 4, 100 ...)"),
    "401": _json("HandleError", "authentication needed (responseCode 402), with a challenge"),
    "403": _json("HandleError", "not authorised (responseCode 400-499)"),
    "404": _json("HandleError", "handle not found (responseCode 100)"),
}
_AUTH: list[dict[str, list[str]]] = [{"handleBasic": []}, {"handleSession": []}, {}]
_AUTH_NEEDED: list[dict[str, list[str]]] = [{"handleBasic": []}, {"handleSession": []}]

PATHS: dict[str, Any] = {
    "/api/handles/{handle}": {
        "get": {
            "tags": ["handles"],
            "summary": "Resolve a handle",
            "description": "Every value (or those of `type`/`index`); 300 with `referralHandle`"
            " for a handle under a child's prefix.",
            "parameters": [
                _HANDLE,
                _query("type", "only values of these types", many=True),
                _query("index", "only values at these indexes", "integer", many=True),
                _query("publicOnly", "only PUBLIC_READ values", "boolean"),
                _query("doNotRefer", "do not follow HS_ALIAS / referrals", "boolean"),
                _query("pretty", "indent the JSON", "boolean"),
                _query("callback", "JSONP: wrap the answer in this function"),
            ],
            "security": _AUTH,
            "responses": {"200": _json("HandleRecord", "the values"), **_ERRORS},
        },
        "put": {
            "tags": ["handles"],
            "summary": "Create or replace a handle, or add/replace some of its values",
            "parameters": [
                _HANDLE,
                _query(
                    "index", "only these values (or `various`: the server numbers them)", many=True
                ),  # fmt: skip
                _query("overwrite", "replace what exists (default true)", "boolean"),
                _query("mintNewSuffix", "the server picks the suffix", "boolean"),
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/HandleRecord"},
                                {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/HandleValue"},
                                },
                            ]
                        }
                    }
                },
            },  # fmt: skip
            "security": _AUTH_NEEDED,
            "responses": {
                "200": _json("HandleResult", "replaced"),
                "201": _json("HandleResult", "created"),
                "409": _json("HandleError", "already exists (responseCode 101)"),
                **_ERRORS,
            },
        },
        "delete": {
            "tags": ["handles"],
            "summary": "Delete a handle, or the values at `index`",
            "parameters": [_HANDLE, _query("index", "only these values", "integer", many=True)],
            "security": _AUTH_NEEDED,
            "responses": {"200": _json("HandleResult", "deleted"), **_ERRORS},
        },
    },
    "/api/handles": {
        "get": {
            "tags": ["handles"],
            "summary": "List the handles under a prefix",
            "parameters": [
                {**_query("prefix", "e.g. 20.500.123"), "required": True},
                _query("page", "page number, from 0", "integer"),
                _query("pageSize", "handles per page (0: only the count)", "integer"),
            ],
            "security": _AUTH_NEEDED,
            "responses": {"200": _json("HandleList", "the handles"), **_ERRORS},
        }
    },
    "/api/sessions": {
        "post": {
            "tags": ["sessions"],
            "summary": "Open a session; its answer carries the server's nonce to sign",
            "description": "With Basic credentials the session is authenticated at once.",
            "security": [{"handleBasic": []}, {}],
            "responses": {"201": _json("Session", "the new session (and its cookie)")},
        }
    },
    "/api/sessions/this": {
        "get": {
            "tags": ["sessions"],
            "summary": "The current session",
            "security": [{"handleSession": []}, {}],
            "responses": {"200": _json("Session", "the session"), **_ERRORS},
        },
        "put": {
            "tags": ["sessions"],
            "summary": "Authenticate the session: the challenge's answer",
            "requestBody": {
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/SessionAnswer"}}
                },
            },  # fmt: skip
            "security": [{"handleSession": []}],
            "responses": {"200": _json("Session", "authenticated"), **_ERRORS},
        },
        "delete": {
            "tags": ["sessions"],
            "summary": "End the session",
            "security": [{"handleSession": []}],
            "responses": {"204": {"description": "ended"}, **_ERRORS},
        },
    },
}

SCHEMAS: dict[str, Any] = {
    "HandleValue": {
        "type": "object",
        "required": ["index", "type", "data"],
        "properties": {
            "index": {"type": "integer"},
            "type": {"type": "string", "examples": ["URL"]},
            "data": {
                "type": "object",
                "properties": {"format": {"type": "string", "examples": ["string"]}, "value": {}},
            },  # fmt: skip
            "ttl": {"type": "integer"},
            "timestamp": {"type": "string"},
        },
    },
    "HandleRecord": {
        "type": "object",
        "properties": {
            "responseCode": {"type": "integer", "examples": [1]},
            "handle": {"type": "string"},
            "values": {"type": "array", "items": {"$ref": "#/components/schemas/HandleValue"}},
        },
    },
    "HandleResult": {
        "type": "object",
        "properties": {"responseCode": {"type": "integer"}, "handle": {"type": "string"}},
    },
    "HandleList": {
        "type": "object",
        "properties": {
            "responseCode": {"type": "integer"},
            "prefix": {"type": "string"},
            "totalCount": {"type": "string"},
            "handles": {"type": "array", "items": {"type": "string"}},
        },
    },
    "HandleError": {
        "type": "object",
        "properties": {
            "responseCode": {"type": "integer"},
            "handle": {"type": "string"},
            "message": {"type": "string"},
        },
    },
    "Session": {
        "type": "object",
        "properties": {
            "sessionId": {"type": "string"},
            "nonce": {"type": "string"},
            "authenticated": {"type": "boolean"},
            "id": {"type": "string"},
        },
    },
    "SessionAnswer": {
        "type": "object",
        "properties": {
            "version": {"type": "string", "examples": ["0"]},
            "sessionId": {"type": "string"},
            "id": {"type": "string", "examples": ["300:0.NA/20.500.123"]},
            "type": {"type": "string", "examples": ["HS_PUBKEY", "HS_SECKEY"]},
            "cnonce": {"type": "string"},
            "alg": {"type": "string", "examples": ["SHA256"]},
            "signature": {"type": "string"},
        },
    },
}

SECURITY_SCHEMES: dict[str, Any] = {
    "handleBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "user `300:<admin handle>` (percent-encoded), password its secret key",
    },
    "handleSession": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": 'a session: `Handle sessionId="..."` (open it with POST /api/sessions)',
    },
}

TAGS = [
    {"name": "handles", "description": "the Handle.Net REST API (resolution and administration)"},
    {"name": "sessions", "description": "challenge-response sessions of the REST API"},
]


__all__ = ["PATHS", "SCHEMAS", "SECURITY_SCHEMES", "TAGS"]
