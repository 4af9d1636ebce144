"""Routes and settings of the gateway: which route a request takes, how the gateway behaves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "MAX_BATCH_BODY_BYTES",
    "MAX_BODY_BYTES",
    "MAX_OTHER_BODY_BYTES",
    "GatewayConfig",
    "Route",
    "route_of",
]

# The API's request size limits (reference §6.3): Messages and count_tokens 32 MB, Batches
# 256 MB; other routes (Files: 500 MB) are the upstream's to judge.
MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_BATCH_BODY_BYTES = 256 * 1024 * 1024
MAX_OTHER_BODY_BYTES = 500 * 1024 * 1024
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
    # Largest Messages / count_tokens body (the API's limit); batches and other routes are
    # held to the API's own, larger limits.
    max_body_bytes: int = MAX_BODY_BYTES

    def body_limit(self, route: Route) -> int:
        if route in ("messages", "count_tokens"):
            return self.max_body_bytes
        if route in ("batches", "batch_results"):
            return max(self.max_body_bytes, MAX_BATCH_BODY_BYTES)
        return max(self.max_body_bytes, MAX_OTHER_BODY_BYTES)

    run_idle_s: float = 3600.0
    run_hibernate_s: float = 900.0
    max_runs: int = 10_000
