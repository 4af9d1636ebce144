"""Schema migrations: Alembic, driven from code on every open (no ``alembic.ini``, no env.py).

The scripts live in ``migrations/versions/``; their revision ids are zero-padded numbers
("0001", "0002", …) so that the order is plain to read. Opening a database:

- without ``alembic_version``: creates the schema from scratch (runs every migration);
- at an older revision: upgrades it, in one transaction (all or nothing);
- at a revision this version does not know: refuses, naming the revision — a newer tokenomy
  wrote it, and an older one must not guess what its columns mean.

A database already at the head revision (every open but the first after an upgrade) is
recognised by reading ``alembic_version`` directly: Alembic itself (with Mako and Pygments) is
imported only to migrate, as it takes longer to import than a short command takes to run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, inspect, text
from sqlalchemy.dialects import postgresql, sqlite

from tokenomy._version import __version__
from tokenomy.errors import LedgerError

from .codec import utc_now
from .schema import HEAD_REVISION, meta, metadata

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

__all__ = ["current_revision", "script_directory", "upgrade"]

SCRIPTS_DIR = Path(__file__).with_name("migrations")
# Any constant: serialises concurrent migrations of one PostgreSQL database.
_PG_LOCK_KEY = 0x70C3_0001


def script_directory() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(SCRIPTS_DIR))


def _stamped(conn: Connection) -> list[str]:
    """The revisions in Alembic's ``alembic_version`` table, read without importing Alembic;
    empty for a database tokenomy never touched."""
    if not inspect(conn).has_table("alembic_version"):
        return []
    return [str(r[0]) for r in conn.execute(text("SELECT version_num FROM alembic_version"))]


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at; None for a database tokenomy never touched."""
    heads = _stamped(conn)
    return heads[0] if heads else None


def upgrade(conn: Connection, *, where: str) -> tuple[str | None, str]:
    """Bring the database on ``conn`` to the head revision inside the caller's transaction.

    Returns (revision before, revision after). Raises LedgerError for a newer database.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    heads = _stamped(conn)
    if heads == [HEAD_REVISION]:
        return HEAD_REVISION, HEAD_REVISION
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext
    from alembic.util.exc import CommandError

    script = script_directory()
    for rev in heads:
        try:
            known = script.get_revision(rev) is not None
        except CommandError:
            known = False
        if not known:
            raise LedgerError(
                f"the ledger {where!r} is at schema revision {rev!r}, written by a newer "
                f"tokenomy (this is {__version__}, which knows revisions up to "
                f"{HEAD_REVISION!r}); upgrade tokenomy (pip install -U tokenomy) or set "
                "TOKENOMY_DB to another database"
            )
    before = heads[0] if heads else None
    if before == HEAD_REVISION:
        return before, HEAD_REVISION

    def steps(rev: Any, _context: Any) -> Any:
        return script._upgrade_revs("head", rev)

    with EnvironmentContext(Config(), script, fn=steps, destination_rev="head") as env:
        env.configure(connection=conn, target_metadata=metadata)
        env.run_migrations()
    after = current_revision(conn)
    assert after == HEAD_REVISION, f"migrations end at {after!r}, schema.py says {HEAD_REVISION!r}"
    _stamp(conn, {"migrated_by": __version__, "migrated_at": utc_now().isoformat()})
    if before is None:
        _stamp(conn, {"created_by": __version__, "created_at": utc_now().isoformat()})
    return before, after


def _stamp(conn: Connection, values: dict[str, str]) -> None:
    rows = [{"key": k, "value": v} for k, v in values.items()]
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(meta)
    conn.execute(
        stmt.on_conflict_do_update(index_elements=["key"], set_={"value": stmt.excluded.value}),
        rows,
    )
