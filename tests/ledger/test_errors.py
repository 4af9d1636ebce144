"""Bad input: each case is one clear LedgerError line, and nothing is left half-written."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tokenomy.errors import LedgerError
from tokenomy.ledger import Ledger

from .conftest import as_nobody, unreachable_pg_url


def _error(url: str, **kw: float) -> str:
    with pytest.raises(LedgerError) as info:
        Ledger.open(url, **kw)
    msg = str(info.value)
    assert "\n" not in msg
    assert info.value.exit_code == 2
    return msg


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory an unprivileged user can reach (pytest's tmp dirs are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="tokenomy-ledger-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for p in (path, *path.rglob("*")):
            if p.is_dir():
                p.chmod(0o755)
        shutil.rmtree(path)


@pytest.mark.parametrize(
    "url",
    ["mysql://me@db.example/ledger", "redis://127.0.0.1:6379/0", "ledger.db", "sqlite+foo:///x"],
)
def test_an_unknown_url_names_it_and_the_forms_that_work(url: str) -> None:
    msg = _error(url)
    assert "sqlite:///PATH" in msg and "postgresql+psycopg://" in msg


def test_a_password_never_appears_in_a_message() -> None:
    msg = _error("mysql://me:hunter2@db.example/ledger")
    assert "hunter2" not in msg and "***" in msg


def test_an_in_memory_sqlite_ledger_is_refused() -> None:
    assert "in-memory" in _error("sqlite://")


def test_a_read_only_data_dir(shared_dir: Path) -> None:
    parent = shared_dir / "readonly"
    parent.mkdir()
    parent.chmod(0o555)
    with as_nobody():
        msg = _error(f"sqlite:///{parent / 'data' / 'ledger.db'}")
        assert "cannot create the ledger directory" in msg and "TOKENOMY_DATA_DIR" in msg
        msg = _error(f"sqlite:///{parent / 'ledger.db'}")
        assert "read-only" in msg and str(parent) in msg
    assert list(parent.iterdir()) == []  # nothing created


def test_an_unwritable_ledger_file(shared_dir: Path) -> None:
    path = shared_dir / "ledger.db"
    Ledger.open(f"sqlite:///{path}").close()
    before = path.read_bytes()
    path.chmod(0o444)
    with as_nobody():
        msg = _error(f"sqlite:///{path}")
    assert "is not writable" in msg and str(path) in msg
    assert path.read_bytes() == before


def test_a_locked_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE theirs (x INTEGER)")
    other.execute("BEGIN EXCLUSIVE")
    try:
        msg = _error(f"sqlite:///{path}", busy_timeout_s=0.1)
        assert "is locked by another process" in msg and str(path) in msg
    finally:
        other.execute("ROLLBACK")
    # Nothing half-written: no ledger tables appeared, the other table is intact.
    tables = {r[0] for r in other.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"theirs"}
    other.close()


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    path.write_bytes(b"these are my notes, not a database\n" * 200)
    msg = _error(f"sqlite:///{path}")
    assert "not a tokenomy ledger" in msg
    assert path.read_bytes().startswith(b"these are my notes")


def test_an_unreachable_postgresql_server() -> None:
    url = unreachable_pg_url()
    msg = _error(url, busy_timeout_s=1)
    assert "cannot reach the PostgreSQL server" in msg
    assert "127.0.0.1" in msg and "TOKENOMY_DB" in msg


@pytest.mark.postgres
def test_a_postgresql_database_that_does_not_exist(pg_database: str | None) -> None:
    if pg_database is None:
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    msg = _error("postgresql+psycopg://postgres@127.0.0.1:5432/tokenomy_no_such_db")
    assert "'tokenomy_no_such_db' does not exist" in msg and "createdb" in msg


def test_a_failed_open_of_a_new_file_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokenomy.ledger import migrate

    def explode(*_a: object, **_k: object) -> None:
        raise LedgerError("simulated")

    monkeypatch.setattr(migrate, "upgrade", explode)
    path = tmp_path / "fresh.db"
    assert _error(f"sqlite:///{path}") == "simulated"
    assert not any(tmp_path.iterdir())


def test_plain_postgresql_urls_use_psycopg_3() -> None:
    from tokenomy.ledger.engine import parse_target

    target = parse_target("postgresql://u:pw@127.0.0.1/db")
    assert target.url.drivername == "postgresql+psycopg"
    assert "pw" not in target.display
    with pytest.raises(LedgerError, match="unsupported PostgreSQL driver"):
        parse_target("postgresql+asyncpg://u@h/db")
