"""Batch jobs: batch_jobs, batch_requests, batch_chunks (tokenomy.batch).

Revision ID: 0002
Revises: 0001

A job, each of its requests (where it sits in the input file, its state, its attempts) and
each chunk sent as one Message Batch. See ``docs/design/batches.md``.

Frozen: never edit a released migration; add the next one instead.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def _ts(name: str, *, nullable: bool) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "batch_jobs",
        sa.Column("job_id", sa.String(40), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        _ts("ended_at", nullable=True),
        sa.Column("source_path", sa.Text(), nullable=False),
        sa.Column("source_owned", sa.Boolean(), nullable=False),
        sa.Column("source_size", sa.BigInteger(), nullable=False),
        sa.Column("source_mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("template", sa.JSON(), nullable=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("n_requests", sa.Integer(), nullable=False),
        sa.Column("n_skipped", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.JSON(), nullable=False),
        sa.Column("api_key_fingerprint", sa.String(64), nullable=True),
        sa.Column("upstream", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(200), nullable=False),
        sa.Column("results_dir", sa.Text(), nullable=False),
        sa.Column("horizon", sa.JSON(), nullable=True),
        sa.Column("warmup", sa.JSON(), nullable=True),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        _ts("lease_until", nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("job_id", name="pk_batch_jobs"),
    )
    op.create_index("ix_batch_jobs_created_at", "batch_jobs", ["created_at"])

    op.create_table(
        "batch_requests",
        sa.Column("job_id", sa.String(40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("custom_id", sa.String(64), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("byte_offset", sa.BigInteger(), nullable=False),
        sa.Column("byte_length", sa.Integer(), nullable=False),
        sa.Column("body_bytes", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("shared_end", sa.Integer(), nullable=False),
        sa.Column("est_tools", sa.Integer(), nullable=False),
        sa.Column("est_system", sa.Integer(), nullable=False),
        sa.Column("est_history", sa.Integer(), nullable=False),
        sa.Column("est_new", sa.Integer(), nullable=False),
        sa.Column("prefix_hash", sa.String(80), nullable=True),
        sa.Column("breakpoints", sa.Text(), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("chunk_no", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("job_id", "seq", name="pk_batch_requests"),
        sa.ForeignKeyConstraint(
            ["job_id"], ["batch_jobs.job_id"], name="fk_batch_requests_job_id_batch_jobs"
        ),
    )
    op.create_index("ix_batch_requests_job_id_state", "batch_requests", ["job_id", "state"])
    op.create_index("ix_batch_requests_job_id_chunk_no", "batch_requests", ["job_id", "chunk_no"])

    op.create_table(
        "batch_chunks",
        sa.Column("job_id", sa.String(40), nullable=False),
        sa.Column("chunk_no", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("batch_id", sa.String(100), nullable=True),
        sa.Column("n_requests", sa.Integer(), nullable=False),
        sa.Column("body_bytes", sa.BigInteger(), nullable=False),
        _ts("planned_at", nullable=False),
        _ts("creating_at", nullable=True),
        _ts("submitted_at", nullable=True),
        _ts("ended_at", nullable=True),
        _ts("collected_at", nullable=True),
        sa.Column("horizon", sa.JSON(), nullable=True),
        sa.Column("batch", sa.JSON(), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.Column("cost_usd", sa.String(64), nullable=True),
        sa.Column("interactive_usd", sa.String(64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("job_id", "chunk_no", name="pk_batch_chunks"),
        sa.ForeignKeyConstraint(
            ["job_id"], ["batch_jobs.job_id"], name="fk_batch_chunks_job_id_batch_jobs"
        ),
    )
    op.create_index("ix_batch_chunks_batch_id", "batch_chunks", ["batch_id"], unique=True)


def downgrade() -> None:
    op.drop_table("batch_chunks")
    op.drop_table("batch_requests")
    op.drop_table("batch_jobs")
