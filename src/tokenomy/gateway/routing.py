"""Routes and settings of the gateway: which route a request takes, how the gateway behaves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["MAX_BODY_BYTES", "GatewayConfig", "Route", "route_of"]

MAX_BODY_BYTES = 32 * 1024 * 1024
Route = Literal[
    "messages", "count_tokens", "batch_results", "batches", "models", "healthz", "metrics", "other"
]


def route_of(method: str, path: str) -> Route:
    """Which route a request takes (path only; a trailing slash is tolerated)."""
    p = path.rstrip("/") or "/"
    if p == "/v1/messages" and method == "POST":
        return "messages"
    if p == "/v1/messages/count_tokens" and method == "POST":
        return "count_tokens"
    if p.startswith("/v1/messages/batches"):
        return "batch_results" if method == "GET" and p.endswith("/results") else "batches"
    if p.startswith("/v1/models"):
        return "models"
    if p == "/healthz" and method in ("GET", "HEAD"):
        return "healthz"
    if p == "/metrics" and method == "GET":
        return "metrics"
    return "other"


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayConfig:
    """How a gateway behaves. ``upstream_api_key`` is only for gateway keys (never logged)."""

    mode: Literal["optimize", "observe"] = "optimize"
    upstream_api_key: str | None = field(default=None, repr=False)
    # Refuse clients that do not present a gateway key (a team gateway).
    require_gateway_key: bool = False
    max_body_bytes: int = MAX_BODY_BYTES
    run_idle_s: float = 3600.0
    run_hibernate_s: float = 900.0
    max_runs: int = 10_000
