"""``tokenomy import claude-code``: Claude Code transcripts into the ledger, incrementally.

Each session file becomes a run (``source="claude-code"``), each sub-agent file a child run,
each API response a call; compaction points become run events. The per-file work is in
:mod:`tokenomy.analysis.filereader`; this module finds the files, decides where to start
reading each (its saved offset, or 0 when the file was rotated or rewritten), drops what is
counted twice across files, and writes everything — rows and offsets together — in one
transaction per batch, so an interrupted import resumes where it stopped.

Counted twice, and dropped (``docs/design/analysis.md``):

- the same ``message.id`` + ``requestId`` anywhere (a forked or resumed session copies earlier
  responses into its new file): the most complete usage is kept;
- a sidechain line that replays a main-conversation message (same message id in the same
  session, a new request id): the main line is kept, the replay dropped.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, delete, func, select
from sqlalchemy.exc import SQLAlchemyError

from tokenomy.analysis.filereader import FileResult, FileState, ImportedCall, read_file
from tokenomy.analysis.readers import ReadOutcome, ReadTask, read_in_workers
from tokenomy.analysis.rows import Pricer, RowPacker
from tokenomy.analysis.transcripts import (
    FileIdentity,
    TranscriptFile,
    discover,
    file_identity,
    head_hash,
)
from tokenomy.data.table import ModelTable
from tokenomy.ledger import Ledger
from tokenomy.ledger.codec import event_to_row, run_to_row
from tokenomy.ledger.schema import calls, events, import_files, runs

__all__ = ["ImportSummary", "SkippedLine", "import_claude_code"]

_FLUSH_ROWS = 16_000  # rows per transaction on a big first import
_PARALLEL_MIN_BYTES = 32 << 20  # below this, starting processes costs more than it saves
_BYTES_PER_CALL = 8 << 10  # about this much transcript per API response
_STREAM_CALLS = 1_000  # calls of one file handled (dedupe lookups, batch) at a time
_CHUNK = 500
_EXAMPLES = 20


@dataclass(frozen=True, slots=True)
class SkippedLine:
    """A line that was not imported, with where it is and why."""

    path: str
    line: int
    reason: str


@dataclass(slots=True)
class ImportSummary:
    """What an import did; every skipped thing is counted, the first few listed."""

    roots: tuple[str, ...] = ()
    missing_roots: tuple[str, ...] = ()
    files: int = 0
    files_read: int = 0
    files_unchanged: int = 0
    files_reread: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    bytes_read: int = 0
    lines_read: int = 0
    calls: int = 0
    calls_updated: int = 0
    duplicates: int = 0
    sidechain_replays: int = 0
    synthetic: int = 0
    events: int = 0
    runs: int = 0
    bad_lines: int = 0
    bad_examples: list[SkippedLine] = field(default_factory=list)
    pending_tails: int = 0
    unknown_models: dict[str, int] = field(default_factory=dict)
    cost_usd: Decimal = Decimal(0)
    elapsed_s: float = 0.0

    @property
    def useful(self) -> bool:
        """Something was imported, or everything found had been imported already."""
        return (
            self.calls > 0
            or self.calls_updated > 0
            or self.files_unchanged > 0
            or (self.files_read > 0 and not self.unreadable)
        )


@dataclass(slots=True)
class _Known:
    total: int
    sidechain: bool
    message_key: tuple[str, str] | None  # (session, message id)
    run_id: str


class _Batch:
    """Rows waiting for one transaction."""

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {}
        self.calls: dict[str, tuple[Any, ...]] = {}  # packed rows
        self.events: list[dict[str, Any]] = []
        self.files: dict[str, dict[str, Any]] = {}
        self.delete_calls: set[str] = set()
        self.reset_runs: set[str] = set()

    def __len__(self) -> int:
        return len(self.calls) + len(self.events) + len(self.runs)


def import_claude_code(
    ledger: Ledger,
    roots: Sequence[Path],
    *,
    table: ModelTable,
    now: datetime,
    progress: Callable[[int, int, str], None] | None = None,
    workers: int | None = None,
) -> ImportSummary:
    """Import every transcript under ``roots``; what was read before is not read again.

    ``workers``: processes that read files when there is a lot to read, while this process
    writes (default: one per CPU; 0 reads here). The files' results are taken in order, so
    the outcome does not depend on it.
    """
    with _no_cycle_collection():
        return _import(ledger, roots, table=table, now=now, progress=progress, workers=workers)


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Python's cycle collector paused while importing (readers inherit it when forked).

    An import allocates millions of short-lived, acyclic objects (parsed lines, rows) while
    it keeps a batch of rows and every call's dedupe key alive: each collection walked those
    again, about a tenth of a big first import's time. Nothing here makes reference cycles.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _import(
    ledger: Ledger,
    roots: Sequence[Path],
    *,
    table: ModelTable,
    now: datetime,
    progress: Callable[[int, int, str], None] | None,
    workers: int | None,
) -> ImportSummary:
    started = time.perf_counter()
    summary = ImportSummary(roots=tuple(str(r) for r in roots))
    files, missing = discover(roots)
    summary.missing_roots = tuple(str(m) for m in missing)
    summary.files = len(files)
    importer = _Importer(ledger, table, summary, now)
    importer.load_states(files)
    tasks = [t for tf in files if (t := importer.plan(tf)) is not None]
    # Files rewritten since the last import: forget what they gave, in one transaction,
    # before reading anything (their old calls must not count as already imported).
    importer.batch.reset_runs.update(r for t in tasks for r in t.resets)
    importer.flush()
    cpus = os.cpu_count() or 1
    # Parsing is most of the work and the writer mostly waits for it: one reader per CPU,
    # handed files in parts of a few MB (docs/design/analysis.md).
    n = workers if workers is not None else (cpus if cpus >= 2 else 0)
    pending = sum(t.ident.size - t.offset for t in tasks)
    done = 0

    def tick(task: ReadTask) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, len(tasks), task.tf.path.name)

    with importer.deferred_indexes(pending_bytes=pending):
        if n >= 1 and pending >= _PARALLEL_MIN_BYTES and "fork" in mp.get_all_start_methods():
            read_in_workers(
                tasks,
                workers=n,
                table=table,
                sqlite=importer.sqlite,
                take=importer.finish,
                tick=tick,
            )
        else:
            for task in tasks:
                importer.finish(task, None)
                tick(task)
        importer.flush()
    importer.checkpoint()
    summary.elapsed_s = time.perf_counter() - started
    return summary


class _Importer:
    def __init__(self, ledger: Ledger, table: ModelTable, summary: ImportSummary, now: datetime):
        self.ledger = ledger
        self.table = table
        self.summary = summary
        self.now = now
        self.sqlite = ledger.backend == "sqlite"
        self.pricer = Pricer(table, sqlite=self.sqlite)
        self.states: dict[str, Mapping[str, Any]] = {}
        self.known: dict[str, _Known] = {}
        # (session, message id) -> call ids of the main conversation / of sidechains
        self.main_msgs: dict[tuple[str, str], str] = {}
        self.side_msgs: dict[tuple[str, str], list[str]] = {}
        self.batch = _Batch()
        self.incremental = False
        self._packers: dict[str, RowPacker] = {}

    # ------------------------------------------------------------------ state

    def load_states(self, files: Sequence[TranscriptFile]) -> None:
        wanted = [str(f.path) for f in files]
        with self.ledger.read() as conn:
            for chunk in _chunks(wanted):
                for r in conn.execute(
                    select(import_files).where(import_files.c.path.in_(chunk))
                ).mappings():
                    self.states[r["path"]] = dict(r)
            # Dedupe against earlier imports only when there were any: a first import of a
            # big corpus then never queries the ledger per file.
            n = conn.execute(
                select(func.count()).select_from(runs).where(runs.c.source == "claude-code")
            ).scalar_one()
        self.incremental = bool(n)

    # ------------------------------------------------------------------ one file

    def plan(self, tf: TranscriptFile) -> ReadTask | None:
        """Where to start reading ``tf``; None when it is unchanged or unreadable."""
        s = self.summary
        key = str(tf.path)
        prev = self.states.get(key)
        try:
            ident = file_identity(tf.path)
            if (
                prev is not None
                and (prev["device"], prev["inode"]) == (ident.device, ident.inode)
                and (prev["size"], prev["mtime_ns"]) == (ident.size, ident.mtime_ns)
            ):
                s.files_unchanged += 1
                return None
            if prev is not None:
                ident = file_identity(tf.path, head_bytes=int(prev["offset"]))
        except OSError as exc:
            s.unreadable.append((key, exc.strerror or str(exc)))
            return None
        task = ReadTask(tf, ident, 0, 0, FileState(), None)
        if prev is None:
            return task
        same = (
            prev["device"] == ident.device
            and prev["inode"] == ident.inode
            and ident.size >= prev["offset"]
            and prev["head_hash"] == ident.head_hash
        )
        if same:
            task.offset, task.first_line = int(prev["offset"]), int(prev["lines"])
            task.state = FileState.from_json(prev["state"] or {})
            task.replay = prev["replay"]
        else:
            # Rotated or rewritten: forget what came from it and read it again.
            s.files_reread += 1
            old = FileState.from_json(prev["state"] or {})
            task.resets = [r for r in (old.run_id, *old.children) if r]
        return task

    def finish(self, task: ReadTask, got: ReadOutcome | None) -> None:
        """Read ``task`` here (or take what a worker read) and queue its rows."""
        s = self.summary
        key = str(task.tf.path)
        fallback = task.tf.session_id or ""
        stream: list[ImportedCall] = []

        def sink(call: ImportedCall) -> None:
            stream.append(call)
            if len(stream) >= _STREAM_CALLS:
                self._calls(stream, fallback)
                stream.clear()

        try:
            if got is None:
                result = read_file(
                    task.tf,
                    offset=task.offset,
                    first_line=task.first_line,
                    state=task.state,
                    replay_blob=task.replay,
                    table=self.table,
                    pricer=self.pricer,
                    sink=sink,
                )
            elif got.result is None:
                s.unreadable.append((key, got.error or "cannot be read"))
                return
            else:
                result = got.result
        except OSError as exc:
            s.unreadable.append((key, exc.strerror or str(exc)))
            return
        # Calls already streamed were written as they came (idempotent: a crash before the
        # file's offset is saved re-reads them into the same rows).
        self._calls([*stream, *result.calls], result.state.session_id or fallback)
        s.files_read += 1
        s.bytes_read += result.bytes_read
        s.lines_read += result.lines - task.first_line
        s.synthetic += result.synthetic
        s.duplicates += result.folded
        s.pending_tails += int(result.pending_tail)
        s.bad_lines += len(result.bad)
        for line, reason in result.bad:
            if len(s.bad_examples) < _EXAMPLES:
                s.bad_examples.append(SkippedLine(key, line, reason))
        self.take(task.tf, result, task.ident)

    def take(self, tf: TranscriptFile, result: FileResult, ident: FileIdentity) -> None:
        b = self.batch
        for run in result.runs:
            b.runs[run.run_id] = run_to_row(run)
        for ev in result.events:
            b.events.append(event_to_row(ev))
        self.summary.events += len(result.events)
        b.files[str(tf.path)] = {
            "path": str(tf.path),
            "source": "claude-code",
            "device": ident.device,
            "inode": ident.inode,
            "size": ident.size,
            "mtime_ns": ident.mtime_ns,
            "head_hash": _head(tf, result.offset),
            "offset": result.offset,
            "lines": result.lines,
            "bad_lines": len(result.bad),
            "run_id": result.state.run_id,
            "state": result.state.to_json(),
            "replay": result.replay_blob,
            "imported_at": self.now,
        }
        if len(b) >= _FLUSH_ROWS:
            self.flush()

    def _calls(self, found: Sequence[ImportedCall], session: str) -> None:
        if not found:
            return
        if self.incremental:
            self._lookup(found, session)
        for call in found:
            self._call(call, call.session_id or session)
        if len(self.batch) >= _FLUSH_ROWS:
            self.flush()

    def _call(self, call: ImportedCall, session: str) -> None:
        s, b = self.summary, self.batch
        cid, total, sidechain = call.call_id, call.total_tokens, call.sidechain
        mkey = (session, call.message_id) if call.message_id else None
        if sidechain and mkey is not None:
            main = self.main_msgs.get(mkey)
            if main is not None and main != cid:
                s.sidechain_replays += 1
                return
        known = self.known.get(cid)
        if known is not None:
            if not (known.sidechain and not sidechain) and total <= known.total:
                s.duplicates += 1
                return
            s.calls_updated += 1
        else:
            s.calls += 1
        if not sidechain and mkey is not None:
            self.main_msgs[mkey] = cid
            for other in self.side_msgs.pop(mkey, []):
                if other != cid:
                    # A replay imported before the line it copies: the main line wins.
                    b.delete_calls.add(other)
                    b.calls.pop(other, None)
                    self.known.pop(other, None)
                    s.sidechain_replays += 1
                    s.calls -= 1
        elif sidechain and mkey is not None:
            self.side_msgs.setdefault(mkey, []).append(cid)
        self.known[cid] = _Known(total, sidechain, mkey, call.run_id)
        b.calls[cid] = call.row
        b.delete_calls.discard(cid)
        if call.cost_usd is not None:
            s.cost_usd += call.cost_usd
        elif call.unpriced_model is not None:
            m = call.unpriced_model
            s.unknown_models[m] = s.unknown_models.get(m, 0) + 1

    def _lookup(self, found: Sequence[ImportedCall], session: str) -> None:
        """Load what earlier imports stored for these calls and their message ids."""
        ids = [c.call_id for c in found if c.call_id not in self.known]
        msg_ids = sorted({c.message_id for c in found if c.message_id})
        if not ids and not msg_ids:
            return
        c = calls.c
        cols = (
            c.call_id,
            c.run_id,
            c.message_id,
            c.input_tokens,
            c.output_tokens,
            c.cache_read_tokens,
            c.cache_write_5m_tokens,
            c.cache_write_1h_tokens,
            c.decisions,
        )
        rows: list[Mapping[Any, Any]] = []
        with self.ledger.read() as conn:
            for chunk in _chunks(msg_ids):
                rows.extend(conn.execute(select(*cols).where(c.message_id.in_(chunk))).mappings())
            for chunk in _chunks(ids):
                rows.extend(conn.execute(select(*cols).where(c.call_id.in_(chunk))).mappings())
        for r in rows:
            if r["call_id"] in self.known:
                continue
            t = (r["decisions"] or {}).get("transcript") or {}
            side = bool(t.get("sidechain"))
            total = sum(
                int(r[k] or 0)
                for k in (
                    "input_tokens",
                    "output_tokens",
                    "cache_read_tokens",
                    "cache_write_5m_tokens",
                    "cache_write_1h_tokens",
                )
            )
            mkey = (session, r["message_id"]) if r["message_id"] else None
            self.known[r["call_id"]] = _Known(total, side, mkey, r["run_id"])
            if mkey is not None:
                if side:
                    self.side_msgs.setdefault(mkey, []).append(r["call_id"])
                else:
                    self.main_msgs.setdefault(mkey, r["call_id"])

    # ------------------------------------------------------------------ writing

    def flush(self) -> None:
        b = self.batch
        if not (b.calls or b.runs or b.events or b.files or b.delete_calls or b.reset_runs):
            return
        engine = self.ledger.engine.execution_options(sqlite_begin="IMMEDIATE")
        from tokenomy.ledger.engine import ledger_error

        try:
            with engine.begin() as conn:
                if self.ledger.backend == "sqlite":
                    # Random-order keys (call ids, message ids) touch pages all over their
                    # indexes: a bigger page cache for the import's connection avoids
                    # re-reading them (64 MiB at most, and only while importing).
                    conn.exec_driver_sql("PRAGMA cache_size = -65536")
                    # Checkpoint the WAL in big steps, not every 4 MB: fewer rewrites of the
                    # same index pages (the file is checkpointed at the end of the import).
                    conn.exec_driver_sql("PRAGMA wal_autocheckpoint = 16384")
                self._write(conn, b)
        except SQLAlchemyError as exc:
            raise ledger_error(exc, self.ledger.target) from None
        self.summary.runs += len(b.runs)
        self.batch = _Batch()

    def deferred_indexes(self, *, pending_bytes: int) -> contextlib.AbstractContextManager[None]:
        """A big first import on SQLite builds the ``calls`` indexes once at the end (it halves
        the time spent writing): only when no earlier import's calls must be looked up (the
        lookups use the indexes) and the import brings more calls than the table holds."""
        if self.incremental or pending_bytes < _PARALLEL_MIN_BYTES:
            return self.ledger.calls_indexes_deferred(None)
        return self.ledger.calls_indexes_deferred(
            lambda rows: rows * _BYTES_PER_CALL < pending_bytes
        )

    def checkpoint(self) -> None:
        """Back to SQLite's defaults for this connection, the WAL folded into the file."""
        if not self.sqlite or not self.summary.files_read:
            return
        with self.ledger.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_autocheckpoint = 1000")
            conn.exec_driver_sql("PRAGMA cache_size = -2000")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def _write(self, conn: Connection, b: _Batch) -> None:
        if b.reset_runs:
            ids = sorted(b.reset_runs)
            for chunk in _chunks(ids):
                conn.execute(delete(calls).where(calls.c.run_id.in_(chunk)))
                conn.execute(delete(events).where(events.c.run_id.in_(chunk)))
        if b.runs:
            self._upsert_rows(conn, runs, "run_id", list(b.runs.values()), packed=False)
        # Calls may name a run recorded in a later batch (a sub-agent before its session is
        # impossible here, but a sidechain child of a file read in two batches is not).
        needed = {self.known[cid].run_id for cid in b.calls} | {e["run_id"] for e in b.events}
        missing = needed - set(b.runs)
        if missing:
            self._placeholders(conn, missing)
        if b.delete_calls:
            for chunk in _chunks(sorted(b.delete_calls)):
                conn.execute(delete(calls).where(calls.c.call_id.in_(chunk)))
        if b.calls:
            self._upsert_rows(conn, calls, "call_id", list(b.calls.values()), packed=True)
        if b.events:
            conn.execute(events.insert(), b.events)
        if b.files:
            self._upsert_rows(conn, import_files, "path", list(b.files.values()), packed=False)

    def _placeholders(self, conn: Connection, ids: set[str]) -> None:
        from tokenomy.ledger.codec import placeholder_run_row

        present: set[str] = set()
        for chunk in _chunks(sorted(ids)):
            present |= set(
                conn.execute(select(runs.c.run_id).where(runs.c.run_id.in_(chunk))).scalars()
            )
        rows = [placeholder_run_row(i, self.now) for i in sorted(ids - present)]
        if rows:
            conn.execute(self.ledger.insert_stmt(runs).on_conflict_do_nothing(), rows)

    def packer(self, table: Table) -> RowPacker:
        p = self._packers.get(table.name)
        if p is None:
            p = self._packers[table.name] = RowPacker(table, sqlite=self.sqlite)
        return p

    def _upsert_rows(
        self, conn: Connection, table: Table, key: str, rows: Sequence[Any], *, packed: bool
    ) -> None:
        """Upsert ``rows`` (dicts, or tuples already packed by a reader for this backend)."""
        p = self.packer(table)
        tuples = rows if packed else [p.pack(r) for r in rows]
        if self.sqlite:
            # A big first import writes tens of thousands of rows: straight to the driver,
            # values stored exactly as SQLAlchemy's types would store them (RowPacker).
            conn.exec_driver_sql(p.upsert_sql(key), list(tuples))
            return
        conn.execute(
            self.ledger.upsert_stmt(table, key), [dict(zip(p.cols, t, strict=True)) for t in tuples]
        )


def _head(tf: TranscriptFile, offset: int) -> str:
    try:
        return head_hash(tf.path, offset)
    except OSError:
        return ""


def _chunks(ids: Sequence[str]) -> Iterable[list[str]]:
    for i in range(0, len(ids), _CHUNK):
        yield list(ids[i : i + _CHUNK])
