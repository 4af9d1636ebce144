"""Usage analysis: transcript import offsets, runs.ideal_usd, an index on calls.message_id.

Revision ID: 0003
Revises: 0002

- ``import_files``: one row per imported transcript file — its identity (device, inode, size,
  mtime, a hash of its first bytes) and how far it has been read, so that a second import
  reads only what was appended (``tokenomy.analysis``; ``docs/design/analysis.md``).
- ``runs.ideal_usd``: the run's ideal cost (the lower bound for caching without changing
  content), an exact decimal string; NULL when unknown.
- ``ix_calls_message_id``: the importer looks calls up by message id (sidechain replays).

Frozen: never edit a released migration; add the next one instead.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def _ts(name: str, *, nullable: bool) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column("runs", sa.Column("ideal_usd", sa.String(64), nullable=True))
    op.create_index("ix_calls_message_id", "calls", ["message_id"])
    op.create_table(
        "import_files",
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("device", sa.BigInteger(), nullable=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("lines", sa.BigInteger(), nullable=False),
        sa.Column("bad_lines", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.String(200), nullable=True),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("replay", sa.LargeBinary(), nullable=True),
        _ts("imported_at", nullable=False),
        sa.PrimaryKeyConstraint("path", name="pk_import_files"),
    )


def downgrade() -> None:
    op.drop_table("import_files")
    op.drop_index("ix_calls_message_id", table_name="calls")
    op.drop_column("runs", "ideal_usd")
