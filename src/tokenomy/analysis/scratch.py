"""Rows that reading processes hand to the importer through scratch SQLite files.

On a big first import the importer's reading processes parse and price the transcripts while
the importing process writes the ledger. Sending tens of thousands of 57-column rows back
through a pipe costs the writer as much to unpickle and bind as it costs to insert them; so,
on a SQLite ledger, each reading process appends its packed rows (:class:`~tokenomy.analysis.
rows.RowPacker`'s form) to a scratch database of its own, without indexes or durability, and
sends back only a key per row. The writer attaches the scratch files and copies the rows it
keeps (after dedupe) with one ``INSERT … SELECT`` per batch: SQLite moves them, not Python.

The scratch files live in a temporary directory the importer removes when it is done; they
hold nothing the ledger does not get, and a crash leaves the ledger as a normal interrupted
import does (the next import reads the files again from their saved offsets).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["ScratchWriter", "copy_sql"]

_KEY = "scratch_key"


def _create_sql(cols: Sequence[str]) -> str:
    names = ", ".join(f'"{c}"' for c in cols)
    return f'CREATE TABLE IF NOT EXISTS "rows" ("{_KEY}" INTEGER PRIMARY KEY, {names})'


class ScratchWriter:
    """One reading process's scratch file: rows appended, each under a new integer key."""

    def __init__(self, directory: Path, cols: Sequence[str]) -> None:
        self.path = str(directory / f"rows-{os.getpid()}.db")
        # Autocommit mode; each append is one explicit transaction. WAL lets the importing
        # process read what was committed while this one appends more; no fsync (scratch).
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute(_create_sql(cols))
        marks = ", ".join("?" for _ in range(len(cols) + 1))
        self._insert = f'INSERT INTO "rows" VALUES ({marks})'
        self._next = 1

    def append(self, rows: Sequence[tuple[Any, ...]]) -> int:
        """Store ``rows`` (committed when this returns); the first one's key (the rest follow)."""
        first = self._next
        self._next += len(rows)
        if rows:
            self._db.execute("BEGIN")
            self._db.executemany(self._insert, [(first + i, *r) for i, r in enumerate(rows)])
            self._db.execute("COMMIT")
        return first

    def close(self) -> None:
        self._db.close()


def copy_sql(*, schema: str, table: str, cols: Sequence[str], key: str) -> str:
    """Upsert into ``table`` the rows of the attached scratch ``schema`` whose keys are in the
    JSON array bound to the one parameter, in key order (the order they were read)."""
    names = ", ".join(f'"{c}"' for c in cols)
    sets = ", ".join(f'"{c}" = excluded."{c}"' for c in cols if c != key)
    # "WHERE" before "ON CONFLICT": without it SQLite cannot tell the upsert from a join.
    return (
        f'INSERT INTO "{table}" ({names}) SELECT {names} FROM "{schema}"."rows" '
        f'WHERE "{_KEY}" IN (SELECT value FROM json_each(?)) ORDER BY "{_KEY}" '
        f'ON CONFLICT ("{key}") DO UPDATE SET {sets}'
    )
