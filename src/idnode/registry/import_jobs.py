"""The list of import jobs with their state, newest first, for the operator (all jobs) or an
organisation (the jobs of its prefixes). One job's detail and its rejected rows are
``imports.py``; this is the overview an operator checks after a night of imports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from idnode.registry.errors import RegistryError

if TYPE_CHECKING:
    from idnode.registry.service import Registry

JOB_STATES = ("queued", "running", "done", "failed")
MAX_JOBS = 500
COLUMNS = ("id, prefix, template, format, origin, actor, state, rows_done, imported, rejected,"
           " error, created_at, finished_at")  # fmt: skip


async def list_jobs(
    reg: Registry,
    *,
    prefixes: list[str] | None = None,
    state: str = "",
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """A page of jobs; ``prefixes`` None: every job (operators)."""
    if state and state not in JOB_STATES:
        raise RegistryError(f"must be one of {', '.join(JOB_STATES)}", field="state")
    if not 1 <= limit <= MAX_JOBS:
        raise RegistryError(f"must be 1 to {MAX_JOBS}", field="limit")
    if offset < 0:
        raise RegistryError("must be 0 or more", field="offset")
    where, args = [], []
    if state:
        where.append("state = ?")
        args.append(state)
    if prefixes is not None:
        if not prefixes:
            return {"jobs": [], "total": 0}
        where.append(f"prefix IN ({', '.join('?' for _ in prefixes)})")
        args += prefixes
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    total = await reg.store.query_value(f"SELECT count(*) FROM {{s}}.jobs{clause}", *args)
    rows = await reg.store.query(
        f"SELECT {COLUMNS} FROM {{s}}.jobs{clause} ORDER BY created_at DESC, id"
        " LIMIT ? OFFSET ?",
        *args, limit, offset,
    )  # fmt: skip
    return {"jobs": rows, "total": int(total or 0)}
