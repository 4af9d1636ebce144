"""Migrations: a new database is built by them, an old one upgraded, a newer one refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, select, text

from tokenomy._version import __version__
from tokenomy.errors import LedgerError
from tokenomy.ledger import Ledger, migrate
from tokenomy.ledger.schema import HEAD_REVISION, meta, metadata

from . import records as R

# The revision after the newest one this version ships.
NEXT = f"{int(HEAD_REVISION) + 1:04d}"

MIGRATION_NEXT = '''
"""Test-only: what a later issue's migration looks like."""
import sqlalchemy as sa
from alembic import op

revision = "{next}"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "later_things",
        sa.Column("thing_id", sa.String(200), primary_key=True),
        sa.Column("state", sa.String(20), nullable=False),
    )
    op.add_column("calls", sa.Column("later_col", sa.String(200), nullable=True))
    {fail}


def downgrade() -> None:
    op.drop_column("calls", "later_col")
    op.drop_table("later_things")
'''


def _scripts_with_next(tmp_path: Path, *, fail: bool = False) -> Path:
    scripts = tmp_path / "scripts"
    shutil.copytree(migrate.SCRIPTS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    body = (
        MIGRATION_NEXT.replace("{next}", NEXT)
        .replace("{head}", HEAD_REVISION)
        .replace("{fail}", "raise RuntimeError('boom half-way')" if fail else "pass")
    )
    (scripts / "versions" / f"v{NEXT}_later_things.py").write_text(body)
    return scripts


def test_a_new_database_is_at_head_with_the_whole_schema(ledger_url: str) -> None:
    with Ledger.open(ledger_url) as ledger, ledger.read() as conn:
        assert migrate.current_revision(conn) == HEAD_REVISION
        names = set(inspect(conn).get_table_names())
        assert {"runs", "calls", "events", "meta", "alembic_version"} <= names
        stamps = dict(conn.execute(select(meta.c.key, meta.c.value)).all())
        assert stamps["created_by"] == __version__


def test_the_migrations_build_exactly_the_tables_in_schema_py(ledger_url: str) -> None:
    with Ledger.open(ledger_url) as ledger, ledger.read() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_opening_twice_changes_nothing(ledger_url: str) -> None:
    with Ledger.open(ledger_url) as first:
        w = first.writer()
        w.record_call(R.call())
    with Ledger.open(ledger_url) as second:
        assert second.revision() == HEAD_REVISION
        assert second.count("calls") == 1


def test_an_older_database_is_upgraded_on_open(
    ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Ledger.open(ledger_url) as old:
        old.writer().record_call(R.call())
    monkeypatch.setattr(migrate, "SCRIPTS_DIR", _scripts_with_next(tmp_path))
    monkeypatch.setattr(migrate, "HEAD_REVISION", NEXT)
    with Ledger.open(ledger_url) as new, new.read() as conn:
        assert migrate.current_revision(conn) == NEXT
        assert "later_things" in inspect(conn).get_table_names()
        assert "later_col" in {c["name"] for c in inspect(conn).get_columns("calls")}
        assert new.count("calls") == 1  # the old rows are still there


def test_a_failing_migration_leaves_the_database_as_it_was(
    ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Ledger.open(ledger_url) as old:
        old.writer().record_call(R.call())
    monkeypatch.setattr(migrate, "SCRIPTS_DIR", _scripts_with_next(tmp_path, fail=True))
    monkeypatch.setattr(migrate, "HEAD_REVISION", NEXT)
    with pytest.raises(RuntimeError, match="boom half-way"):
        Ledger.open(ledger_url)
    monkeypatch.undo()
    with Ledger.open(ledger_url) as again, again.read() as conn:
        assert migrate.current_revision(conn) == HEAD_REVISION
        assert "later_things" not in inspect(conn).get_table_names()
        assert "later_col" not in {c["name"] for c in inspect(conn).get_columns("calls")}


def test_a_database_from_a_newer_tokenomy_is_refused(ledger_url: str) -> None:
    with Ledger.open(ledger_url) as ledger, ledger.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0042'"))
    with pytest.raises(LedgerError) as info:
        Ledger.open(ledger_url)
    msg = str(info.value)
    assert "'0042'" in msg and "newer tokenomy" in msg and "upgrade tokenomy" in msg
    assert "\n" not in msg


def test_a_database_that_is_not_a_ledger_yet_gets_the_tables_beside_its_own(
    ledger_url: str,
) -> None:
    # Someone points TOKENOMY_DB at an existing database: we add our tables, touch nothing else.
    engine = create_engine(_sync_url(ledger_url))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE theirs (x INTEGER)"))
        conn.execute(text("INSERT INTO theirs VALUES (1)"))
    engine.dispose()
    with Ledger.open(ledger_url) as ledger, ledger.read() as conn:
        assert conn.execute(text("SELECT x FROM theirs")).scalar_one() == 1
        assert migrate.current_revision(conn) == HEAD_REVISION


def _sync_url(url: str) -> str:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return url
