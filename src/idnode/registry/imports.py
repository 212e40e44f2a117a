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

Resuming: a batch's records, its rejects, the job's progress, its audit entry and its
registrations commit in one transaction, through the write service's bulk path (the same
permissions and registry rules as any write), so a crash leaves every batch either done and
marked or not done at all, and the resumed run starts after the last marked batch. An
identifier that exists already (before the import, or registered meanwhile) is a reject.

Speed (``bench/import_bulk.py``): a big file is parsed in a child process while the store
writes (``_ProcessBatches``), and records travel as a layout per combination of fields plus
one byte string per value (``RecordBuilder``, ``store.load_rows``), so neither side builds a
``HandleValue`` per value.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import itertools
import logging
import multiprocessing
import pickle
import queue
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from idnode.auth.identity import Identity
from idnode.errors import HandleAlreadyExists, IdnodeError
from idnode.lifeline import die_with_parent
from idnode.model import HS_ADMIN, HandleValue
from idnode.names import check_handle
from idnode.registry.changes import audit_entry
from idnode.registry.errors import Forbidden, NotFound, RegistryError
from idnode.registry.prefixes import ALLOCATED, RECORD_RIGHTS
from idnode.registry.templates import Template, TemplateViolation
from idnode.runtime import uuid4
from idnode.store.base import RowGroup
from idnode.store.effects import Effects, Statement

if TYPE_CHECKING:
    from idnode.registry.service import Registry

log = logging.getLogger(__name__)
BATCH_SIZE = 10_000
PARSE_QUEUE_BATCHES = 2  # parsed batches waiting for the store, at most
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


@dataclass
class Batch:
    """One batch of parsed rows. It crosses a process boundary (see ``_parse_process``), so
    records are plain tuples: ``(handle, field names in slot order, data of each slot)``;
    ``RecordBuilder.groups`` turns them into the store's ``RowGroup``s."""

    number: int
    first_row: int
    last_row: int
    records: list[tuple[str, tuple[str, ...], tuple[bytes, ...]]] = field(default_factory=list)
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
            except UnicodeDecodeError:
                raise RegistryError("not UTF-8 text", field="row 1") from None
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
                except UnicodeDecodeError:  # the rest cannot be read reliably: stop here
                    # text is decoded a buffer at a time: the bad bytes are here or further on
                    where = f"row {reader.line_num + 1}"
                    message = "not UTF-8 text (here or further on)"
                    raise RegistryError(message, field=where) from None
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
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), [])
    except (UnicodeDecodeError, csv.Error) as exc:
        reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else str(exc)
        raise RegistryError(f"unreadable CSV header: {reason}", field="row 1") from None
    header = [h.strip() for h in header]
    if "suffix" not in header:
        raise RegistryError("the header needs a 'suffix' column", field="row 1")
    unknown = [h for h in header if h != "suffix" and h not in template.fields]
    if unknown:
        raise RegistryError(
            f"column {unknown[0]!r} is not a field of template {template.ref}", field="row 1"
        )


class RecordBuilder:
    """Turns validated rows into records; everything per-job is computed once.

    A record is its handle plus the data of each value: which values it has depends only on
    which fields a row gives, so the values' other fields (index, type, permissions, TTL,
    timestamp) live once per combination of fields, in a layout (``layout``), and a row
    costs one byte string per field. Rows repeating a field's text (a batch, a date, the
    manufacturer) share one ``bytes`` object, which also keeps a pickled batch small.
    """

    def __init__(self, prefix: str, template: Template, admin: bytes, now: int) -> None:
        self.prefix = prefix
        self.template = template
        self.index = {name: template.index_of(name) for name in template.fields}
        self.admin = HandleValue(100, HS_ADMIN, admin, timestamp=now)
        self.now = now
        self._names: dict[tuple[str, ...], tuple[str, ...]] = {}  # given order -> slot order
        self._layouts: dict[tuple[str, ...], tuple[HandleValue, ...]] = {}
        self._data: dict[str, bytes] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Caches stay behind when the builder is sent to a parse process."""
        return {**self.__dict__, "_names": {}, "_layouts": {}, "_data": {}}

    def build(self, fields: dict[str, str]) -> tuple[str, tuple[str, ...], tuple[bytes, ...]]:
        """``(handle, field names in slot order, data per slot)``; the last slot is HS_ADMIN."""
        suffix = fields.get("suffix", "")
        if not suffix or suffix != suffix.strip():
            raise TemplateViolation(self.template.ref, "suffix", "is empty or padded")
        handle = f"{self.prefix}/{suffix}"
        if not (suffix.isprintable() and len(suffix) < 1024):  # printable: no control chars
            check_handle(handle)
        given = {k: v for k, v in fields.items() if v != "" and k != "suffix"}
        self.template.check_fields(given)
        order = tuple(given)
        names = self._names.get(order)
        if names is None:
            names = self._names[order] = tuple(sorted(order, key=self.index.__getitem__))
        cache = self._data
        if len(cache) > 100_000:
            cache.clear()
        datas = []
        for name in names:
            text = given[name]
            data = cache.get(text)
            if data is None:
                data = cache[text] = text.encode("utf-8")
            datas.append(data)
        datas.append(self.admin.data)
        return handle, names, tuple(datas)

    def layout(self, names: tuple[str, ...]) -> tuple[HandleValue, ...]:
        """The values (data left empty) of a record giving ``names``, in slot order."""
        layout = self._layouts.get(names)
        if layout is None:
            values = [HandleValue(self.index[n], n, timestamp=self.now) for n in names]
            layout = self._layouts[names] = (*values, replace(self.admin, data=b""))
        return layout

    def values(self, names: tuple[str, ...], datas: tuple[bytes, ...]) -> list[HandleValue]:
        """The record as ``HandleValue``s, in slot order."""
        return [replace(v, data=d) for v, d in zip(self.layout(names), datas, strict=True)]

    def groups(self, batch: Batch) -> list[RowGroup]:
        """The batch's records grouped by layout, in source order within each group."""
        by_names: dict[tuple[str, ...], list[tuple[str, tuple[bytes, ...]]]] = {}
        for handle, names, datas in batch.records:
            rows = by_names.get(names)
            if rows is None:
                rows = by_names[names] = []
            rows.append((handle, datas))
        return [RowGroup(self.layout(names), rows) for names, rows in by_names.items()]


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
            handle, names, datas = builder.build(fields)
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
        batch.records.append((handle, names, datas))
        batch.rows.append(row)
    return batch


class BatchSource:
    """Where a job's batches come from, in order; ``next`` gives None after the last."""

    async def next(self) -> Batch | None:
        raise NotImplementedError

    async def close(self) -> None:
        """Stop parsing (the job ended, or failed) and release what parsing holds."""


class _ThreadBatches(BatchSource):
    """Parse on a thread, one batch ahead of the store: small jobs, where starting a process
    would cost more than the overlap gains."""

    def __init__(self, source: Path, fmt: str, builder: RecordBuilder, size: int) -> None:
        rows, seen = read_rows(source, fmt), {}
        self._prepare = functools.partial(prepare, rows, builder, size=size, seen=seen)
        self._number = 0
        self._ahead: asyncio.Future[Batch | None] | None = None

    def _start(self) -> asyncio.Future[Batch | None]:
        number, self._number = self._number, self._number + 1
        return asyncio.ensure_future(asyncio.to_thread(self._prepare, number=number))

    async def next(self) -> Batch | None:
        ahead = self._ahead if self._ahead is not None else self._start()
        batch = await ahead
        self._ahead = self._start() if batch is not None else None
        return batch

    async def close(self) -> None:
        if self._ahead is not None and not self._ahead.done():
            await asyncio.wait([self._ahead])


class _ProcessBatches(BatchSource):
    """Parse in a child process: the job's two halves then run on two cores.

    Why a process: parsing, the template check and building records are pure Python, and so
    is most of the store's per-row work; on a thread the two halves take turns holding the
    GIL (and the writer waits for it after every SQLite step), so they barely overlap. The
    child streams pickled batches through a bounded queue, so memory stays a few batches.
    """

    def __init__(self, source: Path, fmt: str, builder: RecordBuilder, size: int) -> None:
        ctx = multiprocessing.get_context("spawn")  # fork is unsafe beside threads
        self._queue: Any = ctx.Queue(maxsize=PARSE_QUEUE_BATCHES)
        self._proc = ctx.Process(
            target=_parse_process,
            args=(self._queue, str(source), fmt, builder, size),
            name="idnode-import-parse",
            daemon=True,
        )
        self._proc.start()
        self._finished = False

    def _get(self) -> Any:
        while True:
            try:
                return self._queue.get(timeout=0.5)
            except queue.Empty:
                if not self._proc.is_alive():
                    try:
                        return self._queue.get(timeout=0.5)  # sent just before exiting
                    except queue.Empty:
                        code = self._proc.exitcode
                        raise RuntimeError(f"import parser exited (code {code})") from None

    async def next(self) -> Batch | None:
        if self._finished:
            return None
        item = await asyncio.to_thread(self._get)
        if isinstance(item, BaseException):
            self._finished = True
            raise item
        if item is None:
            self._finished = True
        return item

    async def close(self) -> None:
        if self._proc.is_alive():
            self._proc.terminate()
        await asyncio.to_thread(self._proc.join, 5)
        self._queue.close()
        self._queue.cancel_join_thread()


def _parse_process(out: Any, source: str, fmt: str, builder: RecordBuilder, size: int) -> None:
    """Body of the parse process: every batch of the file, then None (or the exception)."""
    started_by = multiprocessing.parent_process()
    die_with_parent(started_by.pid if started_by is not None else None)  # no orphan parsing

    def send(item: object) -> None:
        # a parent killed outright (no chance to terminate us) must not leave us blocked
        parent = multiprocessing.parent_process()
        while True:
            try:
                return out.put(item, timeout=1.0)
            except queue.Full:
                if parent is not None and not parent.is_alive():
                    raise SystemExit(1) from None

    try:
        rows, seen = read_rows(Path(source), fmt), {}
        number = 0
        while (batch := prepare(rows, builder, number, size, seen)) is not None:
            send(batch)
            number += 1
        send(None)
    except SystemExit:
        raise
    except BaseException as exc:
        try:
            pickle.dumps(exc)
        except Exception:
            exc = RuntimeError(f"import parser failed: {exc.__class__.__name__}: {exc}")
        send(exc)


JOB_ROW = "SELECT * FROM {s}.jobs WHERE id = ?"
INSERT_REJECT = (
    "INSERT INTO {s}.job_rejects (job_id, line, field, message) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (job_id, line) DO UPDATE SET field = excluded.field, message = excluded.message"
)


class Imports:
    # Files at least this big are parsed in a child process (see ``_ProcessBatches``);
    # below it (~20,000 rows) the process start costs more than it saves.
    parse_process_min_bytes = 2_000_000

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
        origin: str = "api",
    ) -> dict[str, Any]:
        """Check the job can run (rights, prefix, template, header) and queue it."""
        reg = self.reg
        row = await reg.prefixes.row(prefix)
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
        await reg.admin.require_create(who, row["prefix"])
        if fmt not in ("csv", "jsonl"):
            raise RegistryError("must be csv or jsonl", field="format")
        if batch_size < 1:
            raise RegistryError("must be at least 1", field="batch_size")
        check_header(source, fmt, tmpl)
        job_id = uuid4(reg.random).hex[:16]
        self.folder.mkdir(parents=True, exist_ok=True)
        kept = self.folder / f"{job_id}.{fmt}"
        if source.resolve() != kept.resolve():
            shutil.copyfile(source, kept)
        now = reg.now()
        await reg.store.apply(
            Effects(
                statements=(
                    Statement(
                        "INSERT INTO {s}.jobs (id, prefix, template, format, source, actor,"
                        " identity, origin, strict, state, batch_size, batches_done, rows_done,"
                        " imported, rejected, created_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, 0, ?)",
                        (job_id, row["prefix"], tmpl.ref, fmt, str(kept), actor, str(who),
                         origin, int(strict), QUEUED, batch_size, now),
                    ),
                ),
                audit=(audit_entry(actor, "import.create", row["prefix"], None,
                                   {"job": job_id, "format": fmt, "template": tmpl.ref}),),
                target=f"import {job_id}",
            )
        )  # fmt: skip
        return await self.get(job_id)

    def start(self, job_id: str) -> None:
        """Run the job in the background of the serving process."""
        self.tasks[job_id] = asyncio.get_running_loop().create_task(self.run(job_id))

    async def run(self, job_id: str) -> dict[str, Any]:
        """Run (or resume) a job to its end; returns its final state."""
        reg = self.reg
        job = await self.get(job_id)
        if job["state"] in (DONE, FAILED):
            return job
        await self._update(job_id, state=RUNNING)
        try:
            await self._run(job)
        except IdnodeError as exc:
            await self._update(job_id, state=FAILED, error=exc.message, finished_at=reg.now())
        except Exception as exc:
            log.exception("import %s failed", job_id)
            await self._update(
                job_id,
                state=FAILED,
                error=f"internal error: {exc.__class__.__name__}",
                finished_at=reg.now(),
            )
        else:
            await self._update(job_id, state=DONE, finished_at=reg.now())
            Path(job["source"]).unlink(missing_ok=True)  # done: the copy is no longer needed
        return await self.get(job_id)

    async def _run(self, job: dict[str, Any]) -> None:
        reg = self.reg
        job_id, size = job["id"], job["batch_size"]
        tmpl = reg.catalog.get(job["template"])
        row = await reg.prefixes.get(job["prefix"])
        org = await reg.organisations.get(row["org_id"])
        group = reg.accounts.group_handle(org["credit_code"])
        builder = RecordBuilder(
            job["prefix"], tmpl, reg.admin_value(group, RECORD_RIGHTS), reg.now()
        )
        who = Identity.parse(job["identity"])
        source = Path(job["source"])
        if job["strict"] and job["batches_done"] == 0:
            await self._strict_precheck(job_id, source, job["format"], builder, size)
        if source.stat().st_size >= self.parse_process_min_bytes:
            batches: BatchSource = _ProcessBatches(source, job["format"], builder, size)
        else:
            batches = _ThreadBatches(source, job["format"], builder, size)
        try:
            number = 0
            while (batch := await batches.next()) is not None:
                if number >= job["batches_done"]:
                    await self._commit(job, who, batch, builder)
                number += 1
        finally:
            await batches.close()

    async def _strict_precheck(
        self, job_id: str, source: Path, fmt: str, builder: RecordBuilder, size: int
    ) -> None:
        rows, seen, rejects = read_rows(source, fmt), {}, []
        while (b := await asyncio.to_thread(prepare, rows, builder, 0, size, seen)) is not None:
            rejects.extend(b.rejects)
        if rejects:
            await self.reg.store.apply(
                Effects(
                    statements=(
                        *(Statement(INSERT_REJECT, (job_id, r, f, m)) for r, f, m in rejects),
                        Statement(
                            "UPDATE {s}.jobs SET rejected = ? WHERE id = ?",
                            (len(rejects), job_id),
                        ),
                    ),
                    target=f"import {job_id}",
                )
            )
            first = rejects[0]
            raise RegistryError(
                f"{len(rejects)} row(s) rejected, nothing imported (strict); first: "
                f"{first[1]}: {first[2]}",
                field=f"row {first[0]}",
            )

    async def _commit(
        self, job: dict[str, Any], who: Identity, batch: Batch, builder: RecordBuilder
    ) -> None:
        """Write the batch's valid records and mark the batch done, in one transaction.

        Identifiers that exist already (registered meanwhile, or before the import) become
        rejects: the store refuses the load whole, each record is looked up, and it retries.
        """
        reg = self.reg
        while True:
            effects = _batch_effects(job, batch)
            try:
                if batch.records:
                    await reg.admin.load_rows(who, builder.groups(batch), extra=effects)
                else:
                    await reg.store.apply(effects)
                return
            except HandleAlreadyExists:
                if not await self._drop_existing(batch):
                    raise

    async def _drop_existing(self, batch: Batch) -> int:
        """Move records already in the store to the rejects; how many moved."""
        keep_records, keep_rows = [], []
        store = self.reg.store
        for record, row in zip(batch.records, batch.rows, strict=True):
            if await store.get_handle(record[0]) is None:
                keep_records.append(record)
                keep_rows.append(row)
            else:
                batch.rejects.append((row, "suffix", f"{record[0]} already exists"))
        moved = len(batch.records) - len(keep_records)
        batch.records, batch.rows = keep_records, keep_rows
        batch.rejects.sort()
        return moved

    async def _update(self, job_id: str, **changes: Any) -> None:
        cols = ", ".join(f"{k} = ?" for k in changes)
        statement = Statement(f"UPDATE {{s}}.jobs SET {cols} WHERE id = ?",
                              (*changes.values(), job_id))  # fmt: skip
        await self.reg.store.apply(Effects(statements=(statement,), target=f"import {job_id}"))

    async def get(self, job_id: str) -> dict[str, Any]:
        row = await self.reg.store.query_one(JOB_ROW, job_id)
        if row is None:
            raise NotFound(f"no import job {job_id}", field="job_id")
        job = dict(row)
        job["strict"] = bool(job["strict"])
        job["report"] = f"/api/mgmt/imports/{job_id}/rejects"
        return job

    async def rejects_csv(self, job_id: str) -> str:
        await self.get(job_id)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["row", "field", "message"])
        for r in await self.reg.store.query(
            "SELECT line, field, message FROM {s}.job_rejects WHERE job_id = ? ORDER BY line",
            job_id,
        ):
            w.writerow([r["line"], r["field"], r["message"]])
        return buf.getvalue()

    async def unfinished(self, origin: str = "") -> list[str]:
        """Jobs not finished; ``origin="api"`` leaves out console (CLI) jobs, which the CLI
        resumes itself (``idnode import --resume``)."""
        rows = await self.reg.store.query(
            "SELECT id, origin FROM {s}.jobs WHERE state IN (?, ?) ORDER BY created_at",
            QUEUED,
            RUNNING,
        )
        return [r["id"] for r in rows if not origin or r["origin"] == origin]


def _batch_effects(job: dict[str, Any], batch: Batch) -> Effects:
    """What marks ``batch`` done: its rejects, the job's figures (guarded, so a batch is
    never counted twice) and its audit entry, in the transaction of its records."""
    job_id, imported, rejected = job["id"], len(batch.records), len(batch.rejects)
    progress = Statement(
        "UPDATE {s}.jobs SET batches_done = ?, rows_done = rows_done + ?,"
        " imported = imported + ?, rejected = rejected + ? WHERE id = ? AND batches_done = ?",
        (batch.number + 1, rejected + imported, imported, rejected, job_id, batch.number),
        expect=1,
    )
    rows = f"{job['prefix']} rows {batch.first_row}-{batch.last_row}"
    digest = {"handles": [r[0] for r in batch.records], "rows": batch.rows}
    return Effects(
        statements=(
            *(Statement(INSERT_REJECT, (job_id, r, f, m)) for r, f, m in batch.rejects),
            progress,
        ),
        audit=(audit_entry(job["actor"], "import.batch", rows, None, digest),),
        target=f"import {job_id}",
    )


def sniff_format(path: Path) -> str:
    return "jsonl" if path.suffix.lower() in (".jsonl", ".ndjson", ".json") else "csv"
