"""The :class:`Ledger`: one database, opened (and migrated) once, written in batches.

``Ledger.open(url)`` checks the URL, creates the SQLite data dir, connects, and brings the
schema to the head revision in one transaction. ``write_batch`` is what the write-behind writer
calls from its thread: one transaction per batch, upserting runs and calls by id so that
recording the same run or call again (a run that ends, a retried flush) is harmless.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Connection, Dialect, Engine, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from tokenomy.errors import LedgerError

from . import migrate
from .codec import placeholder_run_row
from .engine import LedgerTarget, ledger_error, make_engine, parse_target
from .schema import calls, events, runs

if TYPE_CHECKING:
    from .writer import LedgerWriter

__all__ = ["Ledger", "PendingRow", "RowKind", "WriterOptions"]

RowKind = Literal["run", "call", "event"]


@dataclass(frozen=True, slots=True)
class PendingRow:
    """A row waiting in the writer's queue: its table and its column values."""

    kind: RowKind
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class WriterOptions:
    """How the write-behind writer batches (see ``docs/design/ledger.md``).

    ``queue_max_rows`` bounds memory *and* what a hard kill can lose; ``max_block_s`` is how long
    ``record_*`` waits for room when the queue is full before it drops the row and counts it.
    """

    batch_rows: int = 200
    flush_interval_s: float = 0.25
    queue_max_rows: int = 10_000
    max_block_s: float = 5.0
    # How long close() (and the exit hook) waits for the last rows before giving up.
    close_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.batch_rows < 1 or self.queue_max_rows < 1:
            raise LedgerError("ledger batch_rows and queue_max_rows must be at least 1")
        if self.flush_interval_s <= 0 or self.max_block_s < 0:
            raise LedgerError("ledger flush_interval_s must be > 0 and max_block_s >= 0")


class Ledger:
    """An open, migrated ledger database. Thread-safe; close it when done."""

    def __init__(self, engine: Engine, target: LedgerTarget, options: WriterOptions) -> None:
        self._engine = engine
        # Writers take SQLite's write lock when they BEGIN (see engine.py).
        self._write_engine = engine.execution_options(sqlite_begin="IMMEDIATE")
        self.target = target
        self.options = options
        self._writer: LedgerWriter | None = None
        self._lock = threading.Lock()
        self._closed = False
        # Built once: compiling a 70-column upsert per batch would cost more than the insert.
        self._placeholder_stmt = self.insert_stmt(runs).on_conflict_do_nothing()
        self._run_upsert = self.upsert_stmt(runs, "run_id")
        self._call_upsert = self.upsert_stmt(calls, "call_id")
        # SQLite: the same statements, compiled once more and run on the driver's cursor (see
        # _Compiled). The writer thread then holds the GIL only to bind values: sqlite3 lets it
        # go while SQLite works, so the event loop sharing the core is not held up.
        self._fast: dict[str, _Compiled] = {}
        if target.backend == "sqlite":
            dialect = engine.dialect
            self._fast = {
                "placeholder": _Compiled.of(self._placeholder_stmt, runs, dialect),
                "run": _Compiled.of(self._run_upsert, runs, dialect),
                "call": _Compiled.of(self._call_upsert, calls, dialect),
            }

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        url: str,
        *,
        busy_timeout_s: float = 5.0,
        options: WriterOptions | None = None,
    ) -> Ledger:
        """Connect to ``url`` and migrate it; raises LedgerError with one clear line."""
        target = parse_target(url)
        if target.backend == "sqlite" and target.path is None:
            raise LedgerError(
                f"an in-memory SQLite ledger ({target.display!r}) would vanish with each "
                "connection; use sqlite:///PATH"
            )
        existed = target.path is not None and target.path.exists()
        engine = make_engine(target, busy_timeout_s=busy_timeout_s)
        try:
            with engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
                migrate.upgrade(conn, where=target.display)
        except BaseException as exc:
            engine.dispose()
            if target.path is not None and not existed:
                _remove_sqlite_files(target)
            if isinstance(exc, SQLAlchemyError):
                raise ledger_error(exc, target) from None
            raise
        return cls(engine, target, options or WriterOptions())

    @property
    def backend(self) -> str:
        return self.target.backend

    @property
    def display(self) -> str:
        """The URL without its password, or the SQLite file path."""
        return str(self.target.path) if self.target.path is not None else self.target.display

    @property
    def engine(self) -> Engine:
        return self._engine

    # ------------------------------------------------------------------ reading

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection in a read transaction; database errors become LedgerError."""
        try:
            with self._engine.connect() as conn, conn.begin():
                yield conn
        except SQLAlchemyError as exc:
            raise ledger_error(exc, self.target) from None

    def revision(self) -> str | None:
        with self.read() as conn:
            return migrate.current_revision(conn)

    def count(self, table: Literal["runs", "calls", "events"]) -> int:
        t = {"runs": runs, "calls": calls, "events": events}[table]
        with self.read() as conn:
            return int(conn.execute(select(func.count()).select_from(t)).scalar_one())

    # ------------------------------------------------------------------ writing

    def write_batch(self, rows: Sequence[PendingRow]) -> None:
        """Write ``rows`` in one transaction. Raises SQLAlchemyError (the writer retries)."""
        run_rows: dict[str, Mapping[str, Any]] = {}
        call_rows: dict[str, Mapping[str, Any]] = {}
        event_rows: list[Mapping[str, Any]] = []
        needed: dict[str, Any] = {}
        for r in rows:
            v = r.values
            if r.kind == "run":
                run_rows[v["run_id"]] = v  # the last record of a run wins
            elif r.kind == "call":
                call_rows[v["call_id"]] = v
                needed.setdefault(v["run_id"], v["started_at"])
            else:
                event_rows.append(v)
                needed.setdefault(v["run_id"], v["at"])
        with self._write_engine.begin() as conn:
            # A call may arrive before its run (or without one): keep it, under a
            # placeholder run that the run's own record replaces.
            placeholders = [
                placeholder_run_row(k, at) for k, at in needed.items() if k not in run_rows
            ]
            if self._fast:
                cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
                try:
                    for name, values in (
                        ("placeholder", placeholders),
                        ("run", list(run_rows.values())),
                        ("call", list(call_rows.values())),
                    ):
                        if values:
                            self._fast[name].executemany(cursor, values)
                finally:
                    cursor.close()
            else:
                if placeholders:
                    conn.execute(self._placeholder_stmt, placeholders)
                if run_rows:
                    conn.execute(self._run_upsert, list(run_rows.values()))
                if call_rows:
                    conn.execute(self._call_upsert, list(call_rows.values()))
            if event_rows:
                conn.execute(events.insert(), event_rows)

    def insert_stmt(self, table: Table) -> Any:
        """An ``INSERT`` for ``table`` in this backend's dialect (it has ``on_conflict_*``)."""
        if self.target.backend == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def upsert_stmt(self, table: Table, key: str) -> Any:
        """An ``INSERT`` for ``table`` that replaces the row with the same ``key``."""
        stmt = self.insert_stmt(table)
        return stmt.on_conflict_do_update(
            index_elements=[key],
            set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name != key},
        )

    @contextlib.contextmanager
    def calls_indexes_deferred(self, defer: Callable[[int], bool] | None) -> Iterator[None]:
        """SQLite, for a bulk load of ``calls``: any missing secondary index is built first;
        then, if ``defer`` is given and ``defer(rows already in calls)``, the indexes are
        dropped while the block runs and built once after it — a sort each, instead of putting
        every row at a random place in each index. A block that fails gets them back; a
        process killed in the middle leaves them missing (queries stay right, only slower)
        until the next bulk load builds them. Other backends: nothing to do."""
        if self.backend != "sqlite":
            yield
            return
        indexes = sorted(calls.indexes, key=lambda ix: str(ix.name))
        engine = self._engine.execution_options(sqlite_begin="IMMEDIATE")
        with engine.begin() as conn:
            for ix in indexes:
                ix.create(conn, checkfirst=True)
            dropped = defer is not None and defer(
                conn.execute(select(func.count()).select_from(calls)).scalar_one()
            )
            if dropped:
                for ix in indexes:
                    ix.drop(conn)
        try:
            yield
        except BaseException:
            if dropped:
                with contextlib.suppress(SQLAlchemyError), engine.begin() as conn:
                    for ix in indexes:
                        ix.create(conn, checkfirst=True)
            raise
        if dropped:
            with engine.begin() as conn:
                for ix in indexes:
                    ix.create(conn)

    def writer(self) -> LedgerWriter:
        """This ledger's write-behind writer (one per ledger), started on first use."""
        from .writer import LedgerWriter

        with self._lock:
            if self._closed:
                raise LedgerError(f"the ledger {self.display!r} is closed")
            if self._writer is None:
                self._writer = LedgerWriter(self, options=self.options)
            return self._writer

    def close(self) -> None:
        """Flush and stop the writer (if any), then release connections. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            writer = self._writer
        try:
            if writer is not None:
                writer.close()
        finally:
            self._engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A statement SQLAlchemy compiled for SQLite, run with the driver's ``executemany``.

    Same SQL, and each value goes through the same bind processor SQLAlchemy would apply
    (timestamps to UTC text, JSON through the engine's serializer, booleans to 0/1), so the rows
    stored are identical; what is saved is SQLAlchemy's per-row bookkeeping. Driver errors are
    raised as SQLAlchemy's (``IntegrityError`` …), as ``Connection.execute`` would raise them.
    """

    sql: str
    columns: tuple[str, ...]
    # (position in the row tuple, processor) for the columns that have one
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]

    @classmethod
    def of(cls, stmt: Any, table: Table, dialect: Dialect) -> _Compiled:
        compiled = stmt.compile(dialect=dialect)
        assert compiled.positional, "the SQLite dialect binds by position"
        columns = tuple(compiled.positiontup)
        processors = []
        for i, name in enumerate(columns):
            proc = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                processors.append((i, proc))
        return cls(compiled.string, columns, tuple(processors))

    def executemany(self, cursor: sqlite3.Cursor, rows: Sequence[Mapping[str, Any]]) -> None:
        columns, processors = self.columns, self.processors
        # A few rows at a time: binding them is Python (the GIL held), and the event loop on
        # this core gets the GIL back while SQLite writes them.
        for start in range(0, len(rows), _FAST_CHUNK_ROWS):
            params: list[list[Any]] = []
            for row in rows[start : start + _FAST_CHUNK_ROWS]:
                values = [row[c] for c in columns]
                for i, proc in processors:
                    values[i] = proc(values[i])
                params.append(values)
            try:
                cursor.executemany(self.sql, params)
            except sqlite3.Error as exc:
                raise DBAPIError.instance(self.sql, params, exc, sqlite3.Error) from exc


_FAST_CHUNK_ROWS = 25


def _remove_sqlite_files(target: LedgerTarget) -> None:
    """Take back a database file this open created, so a failed open leaves nothing behind."""
    assert target.path is not None
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            target.path.with_name(target.path.name + suffix).unlink()
