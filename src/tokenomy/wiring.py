"""Wiring: the only place that builds adapters (ledger, upstream, pipeline) from Settings."""

from __future__ import annotations

import threading
from typing import Literal

from tokenomy.config import Settings, load_settings
from tokenomy.data import load_table
from tokenomy.ledger import Ledger, WriterOptions
from tokenomy.pipeline import Pipeline, PipelineConfig, SystemClock
from tokenomy.ports import Clock, Upstream, UsageSink


def open_ledger(settings: Settings) -> Ledger:
    """The ledger at ``settings.ledger_url``, migrated, with the writer tuned by ``settings``.

    ``open_ledger(settings).writer()`` is the write-behind :class:`~tokenomy.ports.UsageSink`.
    Raises :class:`~tokenomy.errors.LedgerError` with one clear line when it cannot be opened.
    """
    return Ledger.open(
        settings.ledger_url,
        options=WriterOptions(
            batch_rows=settings.ledger_batch_rows,
            flush_interval_s=settings.ledger_flush_interval_s,
            queue_max_rows=settings.ledger_queue_max_rows,
        ),
    )


# ---------------------------------------------------------------------------- the pipeline


class _Default:
    lock = threading.Lock()
    pipeline: Pipeline | None = None


def build_pipeline(
    settings: Settings,
    *,
    sink: UsageSink | Literal["ledger"] | None = "ledger",
    clock: Clock | None = None,
    config: PipelineConfig | None = None,
) -> Pipeline:
    """A pipeline from settings: the model table (with the user's file), a clock, a sink.

    ``sink="ledger"`` writes to the ledger at ``settings.ledger_url`` (the default); pass a
    sink of your own, or None to meter in memory only.
    """
    table = load_table(settings.user_models_file)
    chosen: UsageSink | None = open_ledger(settings).writer() if sink == "ledger" else sink
    return Pipeline(
        table=table,
        clock=clock or SystemClock(),
        sink=chosen,
        config=config or PipelineConfig(optimize=settings.mode == "optimize"),
    )


def default_pipeline() -> Pipeline:
    """The process-wide pipeline that clients and runs use when given none (built once)."""
    with _Default.lock:
        if _Default.pipeline is None:
            _Default.pipeline = build_pipeline(load_settings())
        return _Default.pipeline


def set_default_pipeline(pipeline: Pipeline | None) -> None:
    """Replace the process-wide pipeline (tests, embedding applications)."""
    with _Default.lock:
        _Default.pipeline = pipeline


# ---------------------------------------------------------------------------- the upstream


def build_upstream(
    settings: Settings,
    *,
    upstream_url: str | None = None,
    timeout_s: float = 600.0,
    connect_timeout_s: float = 10.0,
) -> Upstream:
    """The relay's upstream at ``settings.upstream_url`` (or ``upstream_url``), without retries.

    No retries: a relay (the gateway) passes the API's errors to its client, whose own retry
    logic (``retry-after``, backoff) then applies exactly as it would against the API.
    :class:`~tokenomy.upstream.LeanUpstream` (httptools, aiohttp for what is not a ``POST``),
    because a relay's added latency is mostly its HTTP client's CPU (docs/design/gateway.md).
    ``settings.offline`` refuses any upstream that is not on this machine.
    """
    # Imported here: aiohttp takes longer to import than `tokenomy report` takes to run.
    from tokenomy.upstream import LeanUpstream

    return LeanUpstream(
        upstream_url or settings.upstream_url,
        timeout_s=timeout_s,
        connect_timeout_s=connect_timeout_s,
        offline=settings.offline,
    )
