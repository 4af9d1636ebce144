"""tokenomy.gateway: a drop-in Anthropic-compatible proxy any client can point at.

``tokenomy gateway`` serves :func:`build_gateway`'s app; any client that honours a base URL
(Claude Code, the Claude Agent SDK, the official SDKs) gets tokenomy's caching, doctor and
metering with ``ANTHROPIC_BASE_URL=http://127.0.0.1:8787``. See ``docs/gateway.md``.
"""

from __future__ import annotations

import gc
import socket

import uvicorn

from tokenomy.config import Settings
from tokenomy.gateway.app import MAX_BODY_BYTES, Gateway, GatewayConfig, route_of
from tokenomy.gateway.auth import GatewayKey, max_cost_usd
from tokenomy.gateway.budgets import Budgets, KeyStore, RedisBudgets, SqlBudgets
from tokenomy.gateway.metrics import GatewayMetrics
from tokenomy.gateway.runs import RunRegistry
from tokenomy.pipeline import PipelineConfig
from tokenomy.wiring import build_pipeline, build_upstream, open_ledger

__all__ = [
    "MAX_BODY_BYTES",
    "Budgets",
    "Gateway",
    "GatewayConfig",
    "GatewayKey",
    "GatewayMetrics",
    "KeyStore",
    "RedisBudgets",
    "RunRegistry",
    "SqlBudgets",
    "build_gateway",
    "max_cost_usd",
    "open_key_store",
    "route_of",
    "serve",
]


def open_key_store(settings: Settings) -> KeyStore:
    """The gateway keys of the ledger database at ``settings.ledger_url``."""
    ledger = open_ledger(settings)
    return KeyStore(ledger.engine, where=ledger.display)


def build_gateway(
    settings: Settings,
    *,
    upstream_api_key: str | None = None,
    require_gateway_key: bool = False,
    upstream_timeout_s: float = 600.0,
    connect_timeout_s: float = 10.0,
) -> Gateway:
    """A gateway from settings: the ledger (write-behind), the pipeline, the upstream, budgets.

    Budgets live in Redis when ``settings.redis_url`` is set (shared by every gateway process
    pointed at it), else in the ledger database. The upstream key for gateway keys is
    ``upstream_api_key``, else ``settings.upstream_api_key`` (``TOKENOMY_UPSTREAM_API_KEY``).
    """
    if upstream_api_key is None and settings.upstream_api_key is not None:
        upstream_api_key = settings.upstream_api_key.get_secret_value()
    ledger = open_ledger(settings)
    pipeline = build_pipeline(
        settings,
        sink=ledger.writer(),
        config=PipelineConfig(optimize=settings.mode == "optimize", source="gateway"),
    )
    upstream = build_upstream(
        settings, timeout_s=upstream_timeout_s, connect_timeout_s=connect_timeout_s
    )
    store = KeyStore(ledger.engine, where=ledger.display)
    budgets: Budgets = (
        RedisBudgets(store, settings.redis_url) if settings.redis_url else SqlBudgets(store)
    )
    return Gateway(
        pipeline=pipeline,
        upstream=upstream,
        config=GatewayConfig(
            mode=settings.mode,
            upstream_api_key=upstream_api_key,
            require_gateway_key=require_gateway_key,
        ),
        budgets=budgets,
        upstream_label=settings.upstream_url,
        on_close=ledger.close,
    )


def serve(
    gateway: Gateway,
    *,
    host: str = "127.0.0.1",
    port: int = 8787,
    sock: socket.socket | None = None,
) -> None:
    """Serve ``gateway`` with uvicorn until interrupted; shutdown flushes the ledger."""
    config = uvicorn.Config(
        gateway,
        host=host,
        port=port,
        lifespan="on",
        log_level="warning",
        access_log=False,
        # Keep-alive longer than a client's idle gap between agent turns.
        timeout_keep_alive=75,
    )
    server = uvicorn.Server(config)
    config.load()  # uvicorn's own imports (protocols, logging) happen here, not in run()
    # What exists now (modules, the model table, the app and its ledger) lives as long as the
    # process: keep it out of the cycle collector, whose full passes over it (~100k objects)
    # stalled every request in flight for ~50 ms. Garbage first, so that none is kept.
    gc.collect()
    gc.freeze()
    server.run(sockets=[sock] if sock is not None else None)
