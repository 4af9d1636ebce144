"""The ledger's tables, as SQLAlchemy 2 Core :class:`~sqlalchemy.Table` objects (no ORM).

This module describes the *current* schema: what queries and the writer use. The migrations in
``migrations/versions/`` build it step by step and are frozen once released; a test checks that
migrating an empty database yields exactly these tables (``docs/ledger-schema.md`` lists them).

Conventions (see ``docs/design/ledger.md``):

- Money is an integer number of pico-dollars (``*_pusd``, 1 USD = 10**12): exact, summable in
  SQL on every backend, and free of SQLite's float ``NUMERIC``. A value finer than a pico-dollar
  (no price in the model table produces one) is kept exactly in ``money_exact``.
- Times are UTC; naive datetimes are taken as UTC. Token counts are integers.
- JSON columns hold what is JSON by nature: tags, breakpoints, decisions, iterations.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

__all__ = [
    "HEAD_REVISION",
    "MONEY_COLUMNS",
    "USAGE_COLUMNS",
    "UTCDateTime",
    "batch_chunks",
    "batch_jobs",
    "batch_requests",
    "calls",
    "events",
    "import_files",
    "meta",
    "metadata",
    "runs",
]

# The newest migration this version knows. A database stamped with anything else that this
# version's migrations do not know was written by a newer tokenomy.
HEAD_REVISION = "0003"

# Stable constraint names so that later migrations can refer to them on every backend.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (UTC).

    PostgreSQL keeps ``timestamptz``; SQLite keeps ISO text, which sorts by time because every
    value is UTC. Naive datetimes are taken as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        # SQLite's DateTime ignores the offset; store the UTC wall time.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _money(name: str) -> Column[Any]:
    return Column(name, BigInteger, nullable=True)


runs = Table(
    "runs",
    metadata,
    Column("run_id", String(200), primary_key=True),
    # No foreign key: a sub-agent's run may be recorded before its parent's.
    Column("parent_run_id", String(200), nullable=True),
    Column("name", Text, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("source", String(40), nullable=False),
    Column("external_id", String(200), nullable=True),
    Column("project", Text, nullable=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    # True for a stand-in row the writer made for a call whose run was never recorded.
    Column("placeholder", Boolean, nullable=False),
    # The run's ideal cost (lower bound for caching without changing content), exact decimal
    # string; NULL when unknown (migration 0003).
    Column("ideal_usd", String(64), nullable=True),
    Index(None, "parent_run_id"),
    Index(None, "started_at"),
    Index(None, "source", "external_id"),
)

# Usage columns: one per field of tokenomy.core.usage.Usage. NULL everywhere when the call has
# no usage (an error before the response).
USAGE_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "ttl_split_known",
    "thinking_tokens",
    "web_search_requests",
    "web_fetch_requests",
    "service_tier",
    "speed",
    "inference_geo",
    "iterations",
    "usage_unknown_fields",
)

# Every money column, pico-dollars. Cost columns are NULL when the call is unpriced or has no
# cost; segment-cost columns are NULL when the call has no segment costs.
MONEY_COLUMNS = (
    "cost_input_pusd",
    "cost_cache_write_5m_pusd",
    "cost_cache_write_1h_pusd",
    "cost_cache_read_pusd",
    "cost_output_pusd",
    "cost_server_tools_pusd",
    "cost_total_pusd",
    "seg_tools_pusd",
    "seg_system_pusd",
    "seg_history_pusd",
    "seg_new_pusd",
    "seg_output_pusd",
)

calls = Table(
    "calls",
    metadata,
    Column("call_id", String(200), primary_key=True),
    Column("run_id", String(200), ForeignKey("runs.run_id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("model_requested", String(200), nullable=False),
    Column("model_used", String(200), nullable=True),
    Column("mode", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("stream", Boolean, nullable=False),
    Column("latency_ms", Float, nullable=True),
    Column("ttft_ms", Float, nullable=True),
    Column("http_status", Integer, nullable=True),
    Column("error_type", String(200), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("request_id", String(200), nullable=True),
    Column("message_id", String(200), nullable=True),
    Column("stop_reason", String(60), nullable=True),
    # usage
    Column("input_tokens", BigInteger, nullable=True),
    Column("output_tokens", BigInteger, nullable=True),
    Column("cache_read_tokens", BigInteger, nullable=True),
    Column("cache_write_5m_tokens", BigInteger, nullable=True),
    Column("cache_write_1h_tokens", BigInteger, nullable=True),
    Column("ttl_split_known", Boolean, nullable=True),
    Column("thinking_tokens", BigInteger, nullable=True),
    Column("web_search_requests", Integer, nullable=True),
    Column("web_fetch_requests", Integer, nullable=True),
    Column("service_tier", String(40), nullable=True),
    Column("speed", String(40), nullable=True),
    Column("inference_geo", String(40), nullable=True),
    Column("iterations", JSON, nullable=True),
    Column("usage_unknown_fields", JSON, nullable=True),
    # cost
    Column("cost_model", String(200), nullable=True),
    _money("cost_input_pusd"),
    _money("cost_cache_write_5m_pusd"),
    _money("cost_cache_write_1h_pusd"),
    _money("cost_cache_read_pusd"),
    _money("cost_output_pusd"),
    _money("cost_server_tools_pusd"),
    _money("cost_total_pusd"),
    Column("cost_modifiers", JSON, nullable=True),
    Column("unpriced_reason", Text, nullable=True),
    # segments
    Column("seg_tools_tokens", BigInteger, nullable=True),
    Column("seg_system_tokens", BigInteger, nullable=True),
    Column("seg_history_tokens", BigInteger, nullable=True),
    Column("seg_new_tokens", BigInteger, nullable=True),
    Column("seg_output_tokens", BigInteger, nullable=True),
    _money("seg_tools_pusd"),
    _money("seg_system_pusd"),
    _money("seg_history_pusd"),
    _money("seg_new_pusd"),
    _money("seg_output_pusd"),
    # Exact decimal strings of money columns finer than a pico-dollar, by column name.
    Column("money_exact", JSON, nullable=True),
    # why it cost what it cost
    Column("prefix_hash", String(200), nullable=True),
    Column("breakpoints", JSON, nullable=False),
    Column("decisions", JSON, nullable=False),
    Column("api_key_fingerprint", String(64), nullable=True),
    Index(None, "run_id", "seq"),
    Index(None, "started_at"),
    Index(None, "message_id"),
)

events = Table(
    "events",
    metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(200), ForeignKey("runs.run_id"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(60), nullable=False),
    Column("data", JSON, nullable=False),
    Index(None, "run_id", "at"),
)

# Transcript files imported by `tokenomy import` (migration 0003, docs/design/analysis.md):
# the file's identity and how far it has been read, so a second import reads only the bytes
# appended since; `state` is the importer's per-file state, `replay` its compressed request
# replay state (Claude Code 2.1.330+ api-request lines).
import_files = Table(
    "import_files",
    metadata,
    Column("path", String(1024), primary_key=True),
    Column("source", String(40), nullable=False),
    Column("device", BigInteger, nullable=False),
    Column("inode", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("head_hash", String(64), nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("lines", BigInteger, nullable=False),
    Column("bad_lines", BigInteger, nullable=False),
    Column("run_id", String(200), nullable=True),
    Column("state", JSON, nullable=False),
    Column("replay", LargeBinary, nullable=True),
    Column("imported_at", UTCDateTime, nullable=False),
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("value", Text, nullable=False),
)


# -- batch jobs (tokenomy.batch; migration 0002, docs/design/batches.md) ----------------------
# A job's money is a handful of per-chunk sums: kept as exact decimal strings (``*_usd``). The
# per-call rows of a job go to `calls` like every other call.

batch_jobs = Table(
    "batch_jobs",
    metadata,
    Column("job_id", String(40), primary_key=True),
    Column("name", Text, nullable=False),
    Column("state", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("source_path", Text, nullable=False),
    Column("source_owned", Boolean, nullable=False),
    Column("source_size", BigInteger, nullable=False),
    Column("source_mtime_ns", BigInteger, nullable=False),
    Column("template", JSON, nullable=True),
    Column("options", JSON, nullable=False),
    Column("n_requests", Integer, nullable=False),
    Column("n_skipped", Integer, nullable=False),
    Column("skipped", JSON, nullable=False),
    Column("api_key_fingerprint", String(64), nullable=True),
    Column("upstream", Text, nullable=False),
    Column("run_id", String(200), nullable=False),
    Column("results_dir", Text, nullable=False),
    Column("horizon", JSON, nullable=True),
    Column("warmup", JSON, nullable=True),
    Column("lease_owner", String(200), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("error", Text, nullable=True),
    Index(None, "created_at"),
)

batch_requests = Table(
    "batch_requests",
    metadata,
    Column("job_id", String(40), ForeignKey("batch_jobs.job_id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("custom_id", String(64), nullable=False),
    Column("line", Integer, nullable=False),
    Column("byte_offset", BigInteger, nullable=False),
    Column("byte_length", Integer, nullable=False),
    Column("body_bytes", Integer, nullable=False),
    Column("model", String(200), nullable=False),
    Column("shared_end", Integer, nullable=False),
    Column("est_tools", Integer, nullable=False),
    Column("est_system", Integer, nullable=False),
    Column("est_history", Integer, nullable=False),
    Column("est_new", Integer, nullable=False),
    Column("prefix_hash", String(80), nullable=True),
    Column("breakpoints", Text, nullable=False),
    Column("state", String(12), nullable=False),
    Column("chunk_no", Integer, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("reasons", JSON, nullable=True),
    Index(None, "job_id", "state"),
    Index(None, "job_id", "chunk_no"),
)

batch_chunks = Table(
    "batch_chunks",
    metadata,
    Column("job_id", String(40), ForeignKey("batch_jobs.job_id"), primary_key=True),
    Column("chunk_no", Integer, primary_key=True),
    Column("kind", String(12), nullable=False),
    Column("state", String(12), nullable=False),
    Column("batch_id", String(100), nullable=True),
    Column("n_requests", Integer, nullable=False),
    Column("body_bytes", BigInteger, nullable=False),
    Column("planned_at", UTCDateTime, nullable=False),
    Column("creating_at", UTCDateTime, nullable=True),
    Column("submitted_at", UTCDateTime, nullable=True),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("collected_at", UTCDateTime, nullable=True),
    Column("horizon", JSON, nullable=True),
    Column("batch", JSON, nullable=True),
    Column("outcome", JSON, nullable=True),
    Column("cost_usd", String(64), nullable=True),
    Column("interactive_usd", String(64), nullable=True),
    Column("note", Text, nullable=True),
    Index(None, "batch_id", unique=True),
)
