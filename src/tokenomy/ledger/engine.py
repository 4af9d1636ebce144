"""Engines for the ledger: SQLite files (WAL) and PostgreSQL, and errors as one clear line.

Everything that can go wrong talking to the database is turned into a
:class:`~tokenomy.errors.LedgerError` here, by :func:`ledger_error`, so that the CLI prints one
line saying what is wrong and what to do — never a traceback.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import QueuePool

from tokenomy.errors import LedgerError

from .codec import json_dumps

__all__ = [
    "Backend",
    "LedgerTarget",
    "is_transient",
    "ledger_error",
    "make_engine",
    "parse_target",
]

Backend = Literal["sqlite", "postgresql"]

_URL_HELP = "use sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB (TOKENOMY_DB)"


@dataclass(frozen=True, slots=True)
class LedgerTarget:
    """A parsed ledger URL: which backend, and how to name it in messages (no password)."""

    url: URL
    backend: Backend
    display: str
    # The database file for SQLite (None for an in-memory database).
    path: Path | None


def parse_target(url: str) -> LedgerTarget:
    """Check a ledger URL without connecting; raise LedgerError for one we cannot use."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise LedgerError(f"cannot parse the ledger URL {url!r}; {_URL_HELP}") from None
    # Read the URL's own words: get_driver_name() would load a default DBAPI's dialect.
    backend, _, driver = parsed.drivername.partition("+")
    display = parsed.render_as_string(hide_password=True)
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise LedgerError(f"unsupported SQLite driver {driver!r} in {display!r}; {_URL_HELP}")
        database = parsed.database or ""
        path = None if database in ("", ":memory:") else Path(database).expanduser()
        return LedgerTarget(parsed, "sqlite", display, path)
    if backend in ("postgresql", "postgres"):
        # psycopg 3 is the driver tokenomy ships with ([postgres] extra): a plain postgresql://
        # URL means it too, not psycopg2.
        if driver not in ("", "psycopg"):
            raise LedgerError(
                f"unsupported PostgreSQL driver {driver!r} in {display!r}; "
                "use postgresql+psycopg://… (pip install 'tokenomy[postgres]')"
            )
        parsed = parsed.set(drivername="postgresql+psycopg")
        return LedgerTarget(parsed, "postgresql", display, None)
    raise LedgerError(
        f"unknown ledger URL scheme {parsed.drivername!r} in {display!r}; {_URL_HELP}"
    )


def make_engine(target: LedgerTarget, *, busy_timeout_s: float = 5.0) -> Engine:
    """An engine for ``target``; creates the SQLite data dir. Raises LedgerError."""
    if target.backend == "sqlite":
        return _sqlite_engine(target, busy_timeout_s=busy_timeout_s)
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise LedgerError(
            f"the ledger {target.display!r} is PostgreSQL but psycopg is not installed; "
            "pip install 'tokenomy[postgres]'"
        ) from None
    try:
        return create_engine(
            target.url,
            json_serializer=json_dumps,
            pool_pre_ping=True,
            connect_args={
                "connect_timeout": max(1, round(busy_timeout_s)),
                # Like SQLite's busy_timeout: wait this long for a lock, then fail (and the
                # writer retries) instead of hanging behind a stuck transaction.
                "options": f"-c lock_timeout={max(1, round(busy_timeout_s * 1000))}",
            },
        )
    except (SQLAlchemyError, NoSuchModuleError) as exc:
        raise ledger_error(exc, target) from None


def _sqlite_engine(target: LedgerTarget, *, busy_timeout_s: float) -> Engine:
    if target.path is not None:
        _prepare_sqlite_path(target)
    timeout_ms = max(0, round(busy_timeout_s * 1000))
    engine = create_engine(
        target.url,
        json_serializer=json_dumps,
        # A small pool: the writer thread and readers each check out their own connection;
        # a connection moves between threads only through the pool, never in use by two.
        poolclass=QueuePool,
        pool_size=2,
        max_overflow=8,
        connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take over transactions from the sqlite3 module (which would not BEGIN before DDL),
        # so that a migration is all-or-nothing.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {timeout_ms}")
            cur.execute("PRAGMA foreign_keys = ON")
            if target.path is not None:
                cur.execute("PRAGMA journal_mode = WAL")
                # In WAL mode a commit survives a killed process at NORMAL; only a power loss
                # can take the last transactions back.
                cur.execute("PRAGMA synchronous = NORMAL")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front (waiting up to busy_timeout) instead of
        # failing at once when a read transaction cannot be upgraded.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _prepare_sqlite_path(target: LedgerTarget) -> None:
    assert target.path is not None
    path = target.path
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LedgerError(
            f"cannot create the ledger directory {str(directory)!r}: {exc.strerror}; "
            "fix its permissions or set TOKENOMY_DATA_DIR (or TOKENOMY_DB) to a writable place"
        ) from None
    if path.exists():
        if not _can(path, os.R_OK | os.W_OK):
            raise LedgerError(
                f"the ledger file {str(path)!r} is not writable; fix its permissions "
                "or set TOKENOMY_DB to another file"
            )
    elif not _can(directory, os.W_OK | os.X_OK):
        raise LedgerError(
            f"cannot create the ledger in {str(directory)!r}: the directory is read-only; "
            "fix its permissions or set TOKENOMY_DATA_DIR (or TOKENOMY_DB) to a writable place"
        )


def _can(path: Path, mode: int) -> bool:
    # The effective ids decide what open() may do (a setuid program, a test dropping root).
    if os.access in os.supports_effective_ids:
        return os.access(path, mode, effective_ids=True)
    return os.access(path, mode)


def ledger_error(exc: BaseException, target: LedgerTarget) -> LedgerError:
    """One clear line for a database error on ``target``."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    low = text.lower()
    where = target.display if target.path is None else str(target.path)
    if target.backend == "sqlite":
        if "locked" in low or "busy" in low:
            return LedgerError(
                f"the ledger {where!r} is locked by another process; close it "
                "(another tokenomy, a sqlite3 shell in a transaction) or try again"
            )
        if "readonly" in low or "read-only" in low:
            return LedgerError(
                f"the ledger {where!r} is read-only; fix the permissions of the file and its "
                "directory, or set TOKENOMY_DB to a writable file"
            )
        if "unable to open" in low:
            return LedgerError(
                f"cannot open the ledger {where!r}; check that its directory exists and is "
                "writable, or set TOKENOMY_DATA_DIR / TOKENOMY_DB"
            )
        if "not a database" in low or "malformed" in low:
            return LedgerError(
                f"{where!r} is not a tokenomy ledger (not a SQLite database, or damaged); "
                "move it away or set TOKENOMY_DB to another file"
            )
        if "disk" in low and "full" in low:
            return LedgerError(f"the disk holding the ledger {where!r} is full; free some space")
        return LedgerError(f"ledger {where!r}: {text}")
    if "lock timeout" in low:
        return LedgerError(
            f"the ledger {where!r} is locked by another transaction; end it or try again"
        )
    if "does not exist" in low and "database" in low:
        db = target.url.database
        return LedgerError(
            f"the PostgreSQL database {db!r} does not exist ({where}); create it with "
            f"'createdb {db}' or point TOKENOMY_DB at another one"
        )
    if (
        "connection refused" in low
        or "could not connect" in low
        or "connection failed" in low
        or "timeout" in low
        or "could not translate host" in low
        or "name or service not known" in low
    ):
        return LedgerError(
            f"cannot reach the PostgreSQL server of the ledger {where!r} ({text}); "
            "start the server or fix TOKENOMY_DB"
        )
    if "password authentication failed" in low or "authentication" in low:
        return LedgerError(
            f"PostgreSQL refused the credentials for {where!r}; "
            "fix the user or password in TOKENOMY_DB"
        )
    if "permission denied" in low or "read-only" in low:
        return LedgerError(
            f"PostgreSQL denied a write to the ledger {where!r} ({text}); grant the user "
            "CREATE/INSERT on the database or use another one"
        )
    return LedgerError(f"ledger {where!r}: {text}")


def is_transient(exc: BaseException) -> bool:
    """A failure worth retrying as is: a lock, a dropped connection, a server restart."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    low = str(orig).lower()
    if isinstance(orig, sqlite3.OperationalError):
        return "locked" in low or "busy" in low
    return any(
        s in low
        for s in (
            "connection refused",
            "server closed the connection",
            "could not connect",
            "connection failed",
            "terminating connection",
            "timeout",
            "deadlock",
            "lock timeout",
            "could not serialize",
        )
    )
