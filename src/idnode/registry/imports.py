"""Bulk registration from CSV or JSON lines, as a resumable job.

Input: CSV with a header row (``suffix`` plus the template's field names; an empty cell means
"not given"), or JSON lines ``{"suffix": ..., "<FIELD>": ..., ...}``. Each row becomes the
identifier ``<prefix>/<suffix>`` with one value per field (at the template's ``x-index``) and
the organisation's admin group as HS_ADMIN.

Rows are taken ``batch_size`` at a time. A row that breaks the CSV, the template or the handle
syntax, or repeats an earlier suffix, is *rejected*: left out and written to the job's report
(row, field, message), never half-written. The valid rows of a batch are committed with one
``store.load`` (one transaction: all of the batch or none of it). With ``strict`` any rejected
row fails the whole job before anything is written.

Resuming: after a batch commits, its rejects and the job's progress are saved in one registry
transaction. A crash between the two leaves a committed batch not marked done; the resumed run
starts from the last marked batch and the store (the truth) settles the rest: a batch whose
load clashes is looked up record by record, and a record already there *with the values this
import would write* counts as imported, not written again, so nothing is duplicated and
nothing is lost. An identifier that existed before the import is a reject.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import logging
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from idnode.auth.identity import Identity
from idnode.codes import AdminPermission as P
from idnode.errors import HandleAlreadyExists, IdnodeError
from idnode.model import HS_ADMIN, HandleValue
from idnode.registry.errors import Forbidden, NotFound, RegistryError
from idnode.registry.prefixes import ALLOCATED, RECORD_RIGHTS
from idnode.registry.templates import Template, TemplateViolation
from idnode.service.names import check_handle

if TYPE_CHECKING:
    from idnode.registry.service import Registry

log = logging.getLogger(__name__)
BATCH_SIZE = 10_000
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


@dataclass
class Batch:
    number: int
    first_row: int
    last_row: int
    records: list[tuple[str, list[HandleValue]]] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)  # source row of each record
    rejects: list[tuple[int, str, str]] = field(default_factory=list)


def read_rows(path: Path, fmt: str) -> Iterator[tuple[int, dict[str, str] | None, str]]:
    """(row number, fields or None, problem) per data row; row numbers are 1-based lines."""
    if fmt == "csv":
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, strict=True)
            try:
                header = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise RegistryError(f"unreadable CSV header: {exc}", field="row 1") from None
            header = [h.strip() for h in header]
            width = len(header)
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    yield reader.line_num, None, f"broken CSV: {exc}"
                    continue
                if not cells:
                    continue
                if len(cells) != width:
                    yield reader.line_num, None, f"has {len(cells)} cells, header has {width}"
                    continue
                yield reader.line_num, dict(zip(header, cells, strict=True)), ""
    elif fmt == "jsonl":
        with path.open("rb") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    yield n, None, f"broken JSON: {exc}"
                    continue
                if not isinstance(obj, dict) or not all(isinstance(v, str) for v in obj.values()):
                    yield n, None, "must be an object of strings"
                    continue
                yield n, obj, ""
    else:
        raise RegistryError("must be csv or jsonl", field="format")


def check_header(path: Path, fmt: str, template: Template) -> None:
    """A CSV whose header names an unknown column is refused before any row is read."""
    if fmt != "csv":
        return
    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        header = next(csv.reader(fh), [])
    header = [h.strip() for h in header]
    if "suffix" not in header:
        raise RegistryError("the header needs a 'suffix' column", field="row 1")
    unknown = [h for h in header if h != "suffix" and h not in template.fields]
    if unknown:
        raise RegistryError(
            f"column {unknown[0]!r} is not a field of template {template.ref}", field="row 1"
        )


class RecordBuilder:
    """Turns validated rows into records; everything per-job is computed once."""

    def __init__(self, prefix: str, template: Template, admin: bytes, now: int) -> None:
        self.prefix = prefix
        self.template = template
        self.index = {name: template.index_of(name) for name in template.fields}
        self.admin = HandleValue(100, HS_ADMIN, admin, timestamp=now)
        self.now = now
        self._cache: dict[tuple[str, str], HandleValue] = {}

    def build(self, fields: dict[str, str]) -> tuple[str, list[HandleValue]]:
        suffix = fields.pop("suffix", "")
        if not suffix or suffix != suffix.strip():
            raise TemplateViolation(self.template.ref, "suffix", "is empty or padded")
        handle = f"{self.prefix}/{suffix}"
        if not (suffix.isprintable() and len(suffix) < 1024):  # printable: no control chars
            check_handle(handle)
        given = {k: v for k, v in fields.items() if v != ""}
        self.template.check_fields(given)
        values = [self._value(k, v) for k, v in given.items()]
        values.sort(key=_by_index)
        values.append(self.admin)
        return handle, values

    def _value(self, name: str, text: str) -> HandleValue:
        """Values are immutable, so rows repeating a field's value (a batch, a date, the
        manufacturer) share one object: building values is most of the per-row cost."""
        key = (name, text)
        v = self._cache.get(key)
        if v is None:
            if len(self._cache) > 100_000:
                self._cache.clear()
            v = self._cache[key] = HandleValue(
                self.index[name], name, text.encode("utf-8"), timestamp=self.now
            )
        return v


def _by_index(v: HandleValue) -> int:
    return v.index


def prepare(
    rows: Iterator[tuple[int, dict[str, str] | None, str]],
    builder: RecordBuilder,
    number: int,
    size: int,
    seen: dict[str, int],
) -> Batch | None:
    """The next batch: up to ``size`` rows, valid ones built, the others rejected."""
    chunk = list(itertools.islice(rows, size))
    if not chunk:
        return None
    batch = Batch(number, chunk[0][0], chunk[-1][0])
    for row, fields, problem in chunk:
        if fields is None:
            batch.rejects.append((row, "row", problem))
            continue
        try:
            handle, values = builder.build(dict(fields))
        except TemplateViolation as exc:
            batch.rejects.append((row, exc.field, exc.detail))
            continue
        except IdnodeError as exc:
            batch.rejects.append((row, "suffix", exc.message))
            continue
        key = handle.upper()
        if key in seen:
            batch.rejects.append((row, "suffix", f"repeats the suffix of row {seen[key]}"))
            continue
        seen[key] = row
        batch.records.append((handle, values))
        batch.rows.append(row)
    return batch


class Imports:
    def __init__(self, reg: Registry) -> None:
        self.reg = reg
        self.tasks: dict[str, asyncio.Task] = {}

    @property
    def folder(self) -> Path:
        return self.reg.directory / "imports"

    async def create(
        self,
        who: Identity,
        actor: str,
        prefix: str,
        source: Path,
        fmt: str,
        template: str | None = None,
        *,
        org_id: int | None = None,
        batch_size: int = BATCH_SIZE,
        strict: bool = False,
    ) -> dict[str, Any]:
        """Check the job can run (rights, prefix, template, header) and queue it."""
        reg = self.reg
        row = reg.prefix_row(prefix)
        if row is None:
            raise NotFound(f"prefix {prefix} is not registered here", field="prefix")
        if row["state"] != ALLOCATED:
            raise RegistryError(f"prefix is {row['state']}, not allocated", field="prefix")
        if org_id is not None and row["org_id"] != org_id:
            raise Forbidden(f"prefix {prefix} belongs to another organisation", field="prefix")
        tmpl = reg.catalog.get(row["template"])
        if template is not None and reg.catalog.get(template).id != tmpl.id:
            raise RegistryError(
                f"prefix {prefix} follows template {tmpl.ref}, not {template}", field="template"
            )
        await reg.admin._require(
            who, f"{prefix}/x", None, P.ADD_HANDLE, f"create handles under {prefix}"
        )
        if fmt not in ("csv", "jsonl"):
            raise RegistryError("must be csv or jsonl", field="format")
        if batch_size < 1:
            raise RegistryError("must be at least 1", field="batch_size")
        check_header(source, fmt, tmpl)
        job_id = uuid.uuid4().hex[:16]
        self.folder.mkdir(parents=True, exist_ok=True)
        kept = self.folder / f"{job_id}.{fmt}"
        if source.resolve() != kept.resolve():
            shutil.copyfile(source, kept)
        now = int(reg.clock())
        with reg.db.tx() as c:
            c.execute(
                "INSERT INTO jobs (id, prefix, template, format, source, actor, state,"
                " batch_size, batches_done, rows_done, imported, rejected, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, 0, ?)",
                (job_id, row["prefix"], tmpl.ref, fmt, str(kept), actor, QUEUED, batch_size, now),
            )
            reg.db.set_meta(c, f"job_strict:{job_id}", "1" if strict else "0")
            reg.audit.append(
                actor,
                "import.create",
                row["prefix"],
                None,
                {"job": job_id, "format": fmt, "template": tmpl.ref},
                conn=c,
            )
        return self.get(job_id)

    def start(self, job_id: str) -> None:
        """Run the job in the background of the serving process."""
        self.tasks[job_id] = asyncio.get_running_loop().create_task(self.run(job_id))

    async def run(self, job_id: str) -> dict[str, Any]:
        """Run (or resume) a job to its end; returns its final state."""
        reg = self.reg
        job = self.get(job_id)
        if job["state"] in (DONE, FAILED):
            return job
        self._update(job_id, state=RUNNING)
        try:
            await self._run(job)
        except IdnodeError as exc:
            self._update(job_id, state=FAILED, error=exc.message, finished_at=int(reg.clock()))
        except Exception as exc:
            log.exception("import %s failed", job_id)
            self._update(
                job_id,
                state=FAILED,
                error=f"internal error: {exc.__class__.__name__}",
                finished_at=int(reg.clock()),
            )
        else:
            self._update(job_id, state=DONE, finished_at=int(reg.clock()))
        return self.get(job_id)

    async def _run(self, job: dict[str, Any]) -> None:
        reg = self.reg
        job_id, size = job["id"], job["batch_size"]
        tmpl = reg.catalog.get(job["template"])
        row = reg.prefix_row(job["prefix"])
        org = reg.organisations.get(row["org_id"])
        group = reg.accounts.group_handle(org["credit_code"])
        builder = RecordBuilder(
            job["prefix"], tmpl, reg.admin_value(group, RECORD_RIGHTS), int(reg.clock())
        )
        source = Path(job["source"])
        seen: dict[str, int] = {}
        if reg.db.get_meta(f"job_strict:{job_id}") == "1" and job["batches_done"] == 0:
            await self._strict_precheck(job_id, source, job["format"], builder, size)
        rows = read_rows(source, job["format"])

        def next_batch(number: int) -> asyncio.Future:
            # parsing the next batch overlaps the store writing this one (SQLite releases
            # the GIL while it works)
            return asyncio.ensure_future(
                asyncio.to_thread(prepare, rows, builder, number, size, seen)
            )

        number, ahead = 0, next_batch(0)
        try:
            while (batch := await ahead) is not None:
                ahead = next_batch(number + 1)
                if number >= job["batches_done"]:
                    # a resumed run may meet batches committed but not marked before a crash
                    await self._commit(job_id, batch, resumed=job["state"] == RUNNING)
                number += 1
        finally:
            if not ahead.done():
                await asyncio.wait([ahead])

    async def _strict_precheck(
        self, job_id: str, source: Path, fmt: str, builder: RecordBuilder, size: int
    ) -> None:
        rows, seen, rejects = read_rows(source, fmt), {}, []
        while (b := await asyncio.to_thread(prepare, rows, builder, 0, size, seen)) is not None:
            rejects.extend(b.rejects)
        if rejects:
            with self.reg.db.tx() as c:
                c.executemany(
                    "INSERT OR REPLACE INTO job_rejects VALUES (?, ?, ?, ?)",
                    [(job_id, r, f, m) for r, f, m in rejects],
                )
                c.execute("UPDATE jobs SET rejected = ? WHERE id = ?", (len(rejects), job_id))
            first = rejects[0]
            raise RegistryError(
                f"{len(rejects)} row(s) rejected, nothing imported (strict); first: "
                f"{first[1]}: {first[2]}",
                field=f"row {first[0]}",
            )

    async def _commit(self, job_id: str, batch: Batch, *, resumed: bool) -> None:
        """Load the batch's valid records (all or nothing) and mark the batch done.

        A clash with existing identifiers (rare: the load fails whole) is resolved by looking
        each record up: in a resumed run a record already there with our values is ours from
        before the crash; anything else that exists becomes a reject. Then the load retries.
        """
        reg = self.reg
        already = 0
        while batch.records:
            try:
                await reg.store.load(batch.records)
                break
            except HandleAlreadyExists:
                ours, dropped = await self._drop_existing(batch, conflicts_only=not resumed)
                if not dropped:
                    raise
                already += ours
        imported = len(batch.records) + already
        handles_digest = {"handles": [h for h, _ in batch.records], "rows": batch.rows}
        with reg.db.tx() as c:
            c.executemany(
                "INSERT OR REPLACE INTO job_rejects VALUES (?, ?, ?, ?)",
                [(job_id, r, f, m) for r, f, m in batch.rejects],
            )
            c.execute(
                "UPDATE jobs SET batches_done = ?, rows_done = rows_done + ?,"
                " imported = imported + ?, rejected = rejected + ? WHERE id = ?",
                (
                    batch.number + 1,
                    len(batch.rejects) + imported,
                    imported,
                    len(batch.rejects),
                    job_id,
                ),
            )
            job = c.execute("SELECT prefix, actor FROM jobs WHERE id = ?", (job_id,)).fetchone()
            reg.audit.append(
                job["actor"],
                "import.batch",
                f"{job['prefix']} rows {batch.first_row}-{batch.last_row}",
                None,
                handles_digest,
                conn=c,
            )

    async def _drop_existing(
        self, batch: Batch, *, conflicts_only: bool = False
    ) -> tuple[int, int]:
        """Remove records already in the store: ours (same values, unless ``conflicts_only``)
        count as imported, others become rejects. Returns (ours, removed)."""
        ours = 0
        keep_records, keep_rows = [], []
        store = self.reg.store
        for (handle, values), row in zip(batch.records, batch.rows, strict=True):
            existing = await store.get_handle(handle)
            if existing is None:
                keep_records.append((handle, values))
                keep_rows.append(row)
            elif not conflicts_only and _same(existing, values):
                ours += 1
            else:
                batch.rejects.append((row, "suffix", f"{handle} already exists"))
        removed = len(batch.records) - len(keep_records)
        batch.records, batch.rows = keep_records, keep_rows
        batch.rejects.sort()
        return ours, removed

    def _update(self, job_id: str, **changes: Any) -> None:
        cols = ", ".join(f"{k} = ?" for k in changes)
        with self.reg.db.tx() as c:
            c.execute(f"UPDATE jobs SET {cols} WHERE id = ?", (*changes.values(), job_id))

    def get(self, job_id: str) -> dict[str, Any]:
        row = self.reg.db.one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            raise NotFound(f"no import job {job_id}", field="job_id")
        job = dict(row)
        job["report"] = f"/api/mgmt/imports/{job_id}/rejects"
        return job

    def rejects_csv(self, job_id: str) -> str:
        self.get(job_id)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["row", "field", "message"])
        for r in self.reg.db.all(
            "SELECT row, field, message FROM job_rejects WHERE job_id = ? ORDER BY row", (job_id,)
        ):
            w.writerow([r[0], r[1], r[2]])
        return buf.getvalue()

    def unfinished(self, origin: str = "") -> list[str]:
        """Jobs not finished; ``origin="api"`` leaves out console (CLI) jobs, which the CLI
        resumes itself (``idnode import --resume``)."""
        rows = self.reg.db.all(
            "SELECT id, actor FROM jobs WHERE state IN (?, ?) ORDER BY created_at",
            (QUEUED, RUNNING),
        )
        return [r[0] for r in rows if origin != "api" or r[1] != "console"]


def _same(a: list[HandleValue], b: list[HandleValue]) -> bool:
    """Same record but for timestamps (a resumed import stamps a new time)."""
    key = lambda vs: sorted((v.index, v.type, bytes(v.data)) for v in vs)  # noqa: E731
    return key(a) == key(b)


def sniff_format(path: Path) -> str:
    return "jsonl" if path.suffix.lower() in (".jsonl", ".ndjson", ".json") else "csv"
