"""The console's bulk import: upload a CSV or JSON-lines file for a prefix, watch the job's
progress, download its per-line error report, resume a job a stopped process left behind.

Every step is the registry's import service (``registry/imports.py``), as the management
API's ``POST /api/mgmt/imports`` uses it: ``Imports.create`` checks rights, prefix, template
and header and queues the job, ``Imports.start`` runs it in this process, ``rejects_csv`` is
the report. The console keeps nothing of its own: the progress page reads the job row, which
every committed batch updates in its own transaction.

*Progress*: the bar's maximum is the number of data lines of the kept upload (counted once
per job, and only while the file is kept: the service deletes it when the job is done, when
the maximum is the rows done). htmx polls the progress fragment every second until the job
is done or failed; the fragment it returns then has no trigger, so the polling stops.

*Resume*: the service resumes every unfinished job when a serving process starts
(``Registry.start``). A job that is queued or running with no task in this process (its
process stopped, or the task was cancelled) shows as interrupted with a Resume button, which
calls ``Imports.start`` again: the run starts after the last committed batch.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idnode.console.i18n import gettext as _
from idnode.errors import IdnodeError
from idnode.registry.errors import RegistryError
from idnode.registry.import_jobs import list_jobs
from idnode.registry.imports import DONE, FAILED, QUEUED, RUNNING
from idnode.runtime import uuid4

if TYPE_CHECKING:
    from idnode.console.app import Console

UNFINISHED = (QUEUED, RUNNING)
CHUNK = 1 << 20


def count_lines(path: Path, fmt: str) -> int:
    """Data lines of an upload: every non-empty line, less the CSV header."""
    n = 0
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                n += 1
    return max(n - 1, 0) if fmt == "csv" else n


class ImportPages:
    """The routes' handlers; ``console`` lends its frame (sign-in, CSRF, pages)."""

    def __init__(self, console: Console) -> None:
        self.c = console
        self.totals: dict[str, int] = {}  # job id -> data lines of its upload

    async def jobs_of(self, account: Any) -> list[str] | None:
        if account.is_operator:
            return None
        return [p["prefix"] for p in await self.c.visible_prefixes(account)]

    async def index(self, request: Request, *, error: str = "", status: int = 200) -> Response:
        who = await self.c.guarded(request)
        if isinstance(who, Response):
            return who
        prefixes = await self.c.visible_prefixes(who[1])
        jobs = await list_jobs(self.c.reg, prefixes=await self.jobs_of(who[1]), limit=20)
        return self.c.page(request, "imports.html", who, status=status, prefixes=prefixes,
                           jobs=jobs["jobs"], error=error)  # fmt: skip

    async def upload(self, request: Request) -> Response:
        who = await self.c.guarded(request, post=True)
        if isinstance(who, Response):
            return who
        account = who[1]
        form = await request.form()
        prefix = str(form.get("prefix") or "")
        upload = form.get("file")
        if prefix not in {p["prefix"] for p in await self.c.visible_prefixes(account)}:
            return await self.index(request, error=_("You may not import under this prefix."),
                                    status=403)  # fmt: skip
        if not isinstance(upload, UploadFile) or not upload.filename:
            return await self.index(request, error=_("Choose a file to import."), status=422)
        name = upload.filename.lower()
        fmt = "jsonl" if name.endswith((".jsonl", ".ndjson", ".json")) else "csv"
        reg = self.c.reg
        folder = reg.imports.folder
        folder.mkdir(parents=True, exist_ok=True)
        # named by the node alone: nothing the browser sends becomes part of a path
        part = folder / f"upload-{uuid4(reg.random).hex}.part"
        try:
            with part.open("wb") as out:
                while chunk := await upload.read(CHUNK):
                    out.write(chunk)
            job = await reg.imports.create(
                account.identity, reg.actor(account), prefix, part, fmt,
                org_id=None if account.is_operator else account.org_id,
                strict=form.get("strict") == "on", origin="api",
            )  # fmt: skip
        except (RegistryError, IdnodeError) as exc:
            detail = getattr(exc, "detail", None) or getattr(exc, "message", str(exc))
            field = getattr(exc, "field", "")
            message = _("The file was not accepted: %(why)s") % {
                "why": f"{field}: {detail}" if field else detail
            }
            return await self.index(request, error=message, status=422)
        finally:
            part.unlink(missing_ok=True)
        self.totals[job["id"]] = await asyncio.to_thread(
            count_lines, Path(job["source"]), job["format"]
        )
        reg.imports.start(job["id"])
        return RedirectResponse(f"{self.c.base}/imports/{quote(job['id'])}", 303)

    async def _job(self, request: Request) -> tuple[Any, dict[str, Any]] | Response:
        who = await self.c.guarded(request, post=request.method == "POST")
        if isinstance(who, Response):
            return who
        try:
            job = await self.c.reg.imports.get(request.path_params["job_id"])
        except RegistryError:
            job = None
        scope = await self.jobs_of(who[1])
        if job is None or (scope is not None and job["prefix"] not in scope):
            return self.c.page(request, "missing.html", who, status=404,
                               handle=request.path_params["job_id"])  # fmt: skip
        return who, job

    async def progress_of(self, job: dict[str, Any]) -> dict[str, Any]:
        """The job with what the progress bar shows: maximum, value, percent, interrupted."""
        total = self.totals.get(job["id"])
        source = Path(job["source"])
        if total is None and job["state"] in UNFINISHED and source.exists():
            total = self.totals[job["id"]] = await asyncio.to_thread(
                count_lines, source, job["format"]
            )
        if job["state"] == DONE or total is None:
            total = max(job["rows_done"], total or 0)
        task = self.c.reg.imports.tasks.get(job["id"])
        interrupted = job["state"] in UNFINISHED and (task is None or task.done())
        percent = 100 if job["state"] == DONE else (
            int(100 * job["rows_done"] / total) if total else 0
        )  # fmt: skip
        return {**job, "total": total, "percent": percent, "interrupted": interrupted,
                "finished": job["state"] in (DONE, FAILED)}  # fmt: skip

    async def job(self, request: Request, *, message: str = "") -> Response:
        found = await self._job(request)
        if isinstance(found, Response):
            return found
        who, job = found
        name = "import_progress.html" if request.headers.get("hx-request") else "import.html"
        return self.c.page(request, name, who, job=await self.progress_of(job), message=message)

    async def rejects(self, request: Request) -> Response:
        found = await self._job(request)
        if isinstance(found, Response):
            return found
        job_id = found[1]["id"]
        return Response(
            await self.c.reg.imports.rejects_csv(job_id),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{job_id}-rejects.csv"',
                     "cache-control": "no-store"},
        )  # fmt: skip

    async def resume(self, request: Request) -> Response:
        found = await self._job(request)
        if isinstance(found, Response):
            return found
        job = await self.progress_of(found[1])
        if job["interrupted"]:
            self.c.reg.imports.start(job["id"])
            return await self.job(request, message=_("The import is resumed."))
        return await self.job(request, message=_("The import is not interrupted."))


__all__ = ["ImportPages", "count_lines"]
