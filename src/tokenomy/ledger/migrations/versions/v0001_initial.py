"""Initial ledger: runs, calls, events, meta.

Revision ID: 0001
Revises: (none)

Frozen: never edit a released migration; add the next one instead.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def _ts(name: str, *, nullable: bool) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _big(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(200), nullable=False),
        sa.Column("parent_run_id", sa.String(200), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=True),
        sa.Column("project", sa.Text(), nullable=True),
        _ts("started_at", nullable=False),
        _ts("ended_at", nullable=True),
        sa.Column("placeholder", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name="pk_runs"),
    )
    op.create_index("ix_runs_parent_run_id", "runs", ["parent_run_id"])
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    op.create_index("ix_runs_source_external_id", "runs", ["source", "external_id"])

    op.create_table(
        "calls",
        sa.Column("call_id", sa.String(200), nullable=False),
        sa.Column("run_id", sa.String(200), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        _ts("started_at", nullable=False),
        _ts("ended_at", nullable=True),
        sa.Column("model_requested", sa.String(200), nullable=False),
        sa.Column("model_used", sa.String(200), nullable=True),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("ttft_ms", sa.Float(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error_type", sa.String(200), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("request_id", sa.String(200), nullable=True),
        sa.Column("message_id", sa.String(200), nullable=True),
        sa.Column("stop_reason", sa.String(60), nullable=True),
        _big("input_tokens"),
        _big("output_tokens"),
        _big("cache_read_tokens"),
        _big("cache_write_5m_tokens"),
        _big("cache_write_1h_tokens"),
        sa.Column("ttl_split_known", sa.Boolean(), nullable=True),
        _big("thinking_tokens"),
        sa.Column("web_search_requests", sa.Integer(), nullable=True),
        sa.Column("web_fetch_requests", sa.Integer(), nullable=True),
        sa.Column("service_tier", sa.String(40), nullable=True),
        sa.Column("speed", sa.String(40), nullable=True),
        sa.Column("inference_geo", sa.String(40), nullable=True),
        sa.Column("iterations", sa.JSON(), nullable=True),
        sa.Column("usage_unknown_fields", sa.JSON(), nullable=True),
        sa.Column("cost_model", sa.String(200), nullable=True),
        _big("cost_input_pusd"),
        _big("cost_cache_write_5m_pusd"),
        _big("cost_cache_write_1h_pusd"),
        _big("cost_cache_read_pusd"),
        _big("cost_output_pusd"),
        _big("cost_server_tools_pusd"),
        _big("cost_total_pusd"),
        sa.Column("cost_modifiers", sa.JSON(), nullable=True),
        sa.Column("unpriced_reason", sa.Text(), nullable=True),
        _big("seg_tools_tokens"),
        _big("seg_system_tokens"),
        _big("seg_history_tokens"),
        _big("seg_new_tokens"),
        _big("seg_output_tokens"),
        _big("seg_tools_pusd"),
        _big("seg_system_pusd"),
        _big("seg_history_pusd"),
        _big("seg_new_pusd"),
        _big("seg_output_pusd"),
        sa.Column("money_exact", sa.JSON(), nullable=True),
        sa.Column("prefix_hash", sa.String(200), nullable=True),
        sa.Column("breakpoints", sa.JSON(), nullable=False),
        sa.Column("decisions", sa.JSON(), nullable=False),
        sa.Column("api_key_fingerprint", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("call_id", name="pk_calls"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"], name="fk_calls_run_id_runs"),
    )
    op.create_index("ix_calls_run_id_seq", "calls", ["run_id", "seq"])
    op.create_index("ix_calls_started_at", "calls", ["started_at"])

    op.create_table(
        "events",
        sa.Column("event_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(200), nullable=False),
        _ts("at", nullable=False),
        sa.Column("kind", sa.String(60), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_events"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"], name="fk_events_run_id_runs"),
    )
    op.create_index("ix_events_run_id_at", "events", ["run_id", "at"])

    op.create_table(
        "meta",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_meta"),
    )


def downgrade() -> None:
    op.drop_table("meta")
    op.drop_table("events")
    op.drop_table("calls")
    op.drop_table("runs")
