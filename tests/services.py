"""The machine's real services for tests: a throwaway PostgreSQL database per use."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
PG_UNREACHABLE = "PostgreSQL is not reachable at 127.0.0.1:5432 (user postgres, trust auth)"


@contextmanager
def fresh_pg_database(prefix: str) -> Iterator[str | None]:
    """A new, empty database (its SQLAlchemy URL), dropped afterwards; None with no server."""
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError:
        yield None
        return
    name = f"{prefix}_{secrets.token_hex(6)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
