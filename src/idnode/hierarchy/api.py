"""HTTP routes of the hierarchy, mounted by ``transport/http.py``:

* ``POST /api/hierarchy/enrol``   a child enrols with its one-time token (no other credential);
* ``POST /api/hierarchy/report``  a child reports, ``Authorization: Bearer <report token>``;
* ``GET  /api/hierarchy/status``  this node and its subtree's health (management API: a
  registry operator's bearer token when the node has a registry);
* ``GET  /api/hierarchy/children/{prefix}/reports``  a child's report history (same auth);
* ``GET  /metrics`` only on a node without a registry (a recursive node); otherwise the
  registry's ``/metrics`` carries the hierarchy's figures.

Errors are ``{"error": {"field", "message"}}`` like the management API's.
"""

from __future__ import annotations

from typing import Any

import orjson
from prometheus_client.core import CollectorRegistry
from prometheus_client.exposition import generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from idnode import __version__
from idnode.errors import IdnodeError
from idnode.hierarchy.delegation import DelegationError, EnrolmentRefused
from idnode.hierarchy.reporting import ReportRefused
from idnode.hierarchy.supervision import child_reports

MAX_REPORT = 4 * 1024 * 1024


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _error(status: int, field: str, message: str) -> Response:
    return _json({"error": {"field": field, "message": message}}, status)


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_REPORT:
        raise DelegationError("request body too large")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise DelegationError("the body is not JSON") from None


def routes(node: Any) -> list[BaseRoute]:
    """Empty for a node without a hierarchy role."""
    hierarchy = getattr(node, "hierarchy", None)
    if hierarchy is None:
        return []

    async def operator_refusal(request: Request) -> Response | None:
        reg = getattr(node, "registry", None)
        if reg is None:
            return None
        try:
            who = await reg.accounts.authenticate(_bearer(request))
        except IdnodeError as exc:  # the registry's errors carry an HTTP status
            status = getattr(exc, "status", 401)
            return _error(status, "Authorization", getattr(exc, "detail", exc.message))
        if not who.is_operator:
            return _error(403, "Authorization", "the subtree status is for node operators")
        return None

    async def enrol(request: Request) -> Response:
        if hierarchy.delegations is None:
            return _error(404, "prefix", "this node homes no prefix, so it has no children")
        try:
            body = await _body(request)
            if not isinstance(body, dict):
                raise DelegationError("the body is a JSON object")
            return _json(await hierarchy.delegations.enrol(body))
        except EnrolmentRefused as exc:
            return _error(403, "token", exc.message)
        except DelegationError as exc:
            return _error(400, exc.message.partition(":")[0], exc.message)
        except IdnodeError as exc:  # the write service refused the prefix handle
            return _error(400, "", exc.message)

    async def report(request: Request) -> Response:
        try:
            body = await _body(request)
            return _json(await hierarchy.book.accept(_bearer(request), body))
        except ReportRefused as exc:
            return _error(403, "Authorization", exc.message)
        except DelegationError as exc:
            return _error(400, "body", exc.message)

    async def status(request: Request) -> Response:
        refusal = await operator_refusal(request)
        if refusal is not None:
            return refusal
        cfg = node.config
        return _json(
            {
                "node": cfg.node.name,
                "role": hierarchy.role,
                "prefixes": list(node.homed),
                "version": __version__,
                "parent": cfg.hierarchy.parent,
                "reporting": None
                if hierarchy.reporter is None
                else {"sent": hierarchy.reporter.sent, "failures": hierarchy.reporter.failures},
                "children": await hierarchy.book.status(),
            }
        )

    async def history(request: Request) -> Response:
        refusal = await operator_refusal(request)
        if refusal is not None:
            return refusal
        prefix = request.path_params["prefix"]
        return _json({"prefix": prefix, "reports": await hierarchy.book.history(prefix)})

    async def supervision(request: Request) -> Response:
        refusal = await operator_refusal(request)
        if refusal is not None:
            return refusal
        try:
            return _json(await child_reports(node.store, request.path_params["prefix"]))
        except LookupError as exc:
            return _error(404, "prefix", str(exc))

    out: list[BaseRoute] = [
        Route("/api/hierarchy/children/{prefix}/supervision", supervision, methods=["GET"]),
        Route("/api/hierarchy/enrol", enrol, methods=["POST"]),
        Route("/api/hierarchy/report", report, methods=["POST"]),
        Route("/api/hierarchy/status", status, methods=["GET"]),
        Route("/api/hierarchy/children/{prefix}/reports", history, methods=["GET"]),
    ]
    if getattr(node, "registry", None) is None:
        metrics_registry = CollectorRegistry(auto_describe=False)
        metrics_registry.register(hierarchy)

        async def metrics(request: Request) -> Response:
            await hierarchy.reload()  # the collector judges rows read beforehand
            return Response(generate_latest(metrics_registry), media_type="text/plain")

        out.append(Route("/metrics", metrics))
    return out
