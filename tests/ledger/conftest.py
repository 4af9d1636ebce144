"""The ledger suite runs twice: on a SQLite file and on the local PostgreSQL.

Each PostgreSQL test session gets its own database (``tokenomy_test_<random>``), dropped at the
end; each test starts from an empty ``public`` schema in it. Without a server on
127.0.0.1:5432 the PostgreSQL half is skipped with a message saying so.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.services import fresh_pg_database
from tokenomy.ledger import Ledger, WriterOptions

PG_SKIP = (
    "PostgreSQL is not reachable at 127.0.0.1:5432 (user postgres, trust auth); "
    "start it to run the PostgreSQL half of the ledger suite"
)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    """A fresh database for this test session, or None when there is no server."""
    with fresh_pg_database("tokenomy_test") as url:
        yield url


def reset_pg(url: str) -> None:
    dbname = url.rsplit("/", 1)[1]
    with psycopg.connect(
        f"host=127.0.0.1 port=5432 user=postgres dbname={dbname}", autocommit=True
    ) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty ledger database URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'ledger.db'}"
    url = request.getfixturevalue("pg_database")
    if url is None:
        pytest.skip(PG_SKIP)
    reset_pg(url)
    return str(url)


# Writer options for tests: a long interval, so that only full batches, flush() and close()
# write — deterministic, no timing involved.
TEST_OPTIONS = WriterOptions(
    batch_rows=50, flush_interval_s=3600, queue_max_rows=1000, max_block_s=5.0
)


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    opened = Ledger.open(ledger_url, busy_timeout_s=2.0, options=TEST_OPTIONS)
    try:
        yield opened
    finally:
        opened.close()


@contextlib.contextmanager
def as_nobody() -> Iterator[None]:
    """Drop to an unprivileged user for a moment: root ignores file permissions.

    Only the effective ids change, so the process can come back to root afterwards.
    """
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def unreachable_pg_url() -> str:
    """A PostgreSQL URL on 127.0.0.1 at a port nothing listens on."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/tokenomy"
