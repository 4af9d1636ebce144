"""Prometheus metrics of one gateway: requests, tokens by kind, cost, cache hit rate, latency.

Each gateway has its own :class:`~prometheus_client.CollectorRegistry` (two gateways in one
process — tests — never share counters). ``GET /metrics`` renders it in the text format.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from tokenomy.core.pricing import CostBreakdown
from tokenomy.core.records import CallRecord

__all__ = ["CONTENT_TYPE", "GatewayMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Upstream latencies of Messages calls run from ~100 ms to minutes; proxy-only routes are fast.
_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class GatewayMetrics:
    """The counters ``/metrics`` shows. Cheap to update: a few dict lookups per request."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "tokenomy_gateway_requests",
            "Requests answered, by route and HTTP status",
            ["route", "status"],
            registry=r,
        )
        self.errors = Counter(
            "tokenomy_gateway_errors",
            "Error responses by origin (gateway: answered by the gateway itself; upstream: "
            "relayed) and error type",
            ["origin", "type"],
            registry=r,
        )
        self.tokens = Counter(
            "tokenomy_gateway_tokens",
            "Tokens billed, by kind (input, cache_read, cache_write_5m, cache_write_1h, output)",
            ["kind"],
            registry=r,
        )
        self.cost = Counter(
            "tokenomy_gateway_cost_usd", "Cost of metered calls, USD", ["model"], registry=r
        )
        self.unpriced = Counter(
            "tokenomy_gateway_unpriced_calls", "Calls whose model has no price", registry=r
        )
        self.cache_hit_rate = Gauge(
            "tokenomy_gateway_cache_hit_rate",
            "Cache reads / all input tokens since start (0 before any call)",
            registry=r,
        )
        self.upstream_latency = Histogram(
            "tokenomy_gateway_upstream_latency_seconds",
            "Time from sending a request upstream to the end of its response",
            ["route"],
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.ttft = Histogram(
            "tokenomy_gateway_time_to_first_token_seconds",
            "Streamed Messages calls: time to the first content event",
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.in_flight = Gauge(
            "tokenomy_gateway_in_flight_requests", "Requests being relayed now", registry=r
        )
        self.cancelled = Counter(
            "tokenomy_gateway_client_disconnects",
            "Requests whose client hung up before the response ended (upstream cancelled)",
            registry=r,
        )
        self.budget_rejections = Counter(
            "tokenomy_gateway_budget_rejections",
            "Requests refused because their gateway key's budget was spent",
            registry=r,
        )
        self.budget_in_flight_max = Gauge(
            "tokenomy_gateway_budget_in_flight_max_usd",
            "Upper bound on what requests in flight on budgeted keys can still spend "
            "(the most a budget can be overshot by, from this process)",
            registry=r,
        )
        self.runs = Gauge("tokenomy_gateway_runs", "Runs the gateway tracks now", registry=r)
        self._input_total = 0
        self._read_total = 0
        # Children looked up once: ``labels()`` validates and locks on every call.
        self._tokens = {
            kind: self.tokens.labels(kind)
            for kind in ("input", "cache_read", "cache_write_5m", "cache_write_1h", "output")
        }
        self._cost: dict[str, Counter] = {}
        self._requests: dict[tuple[str, int], Counter] = {}
        self._upstream_latency: dict[str, Histogram] = {}

    def count_request(self, route: str, status: int) -> None:
        """One request answered on ``route`` with ``status``."""
        child = self._requests.get((route, status))
        if child is None:
            child = self._requests[(route, status)] = self.requests.labels(route, str(status))
        child.inc()

    def observe_upstream_latency(self, route: str, seconds: float) -> None:
        child = self._upstream_latency.get(route)
        if child is None:
            child = self._upstream_latency[route] = self.upstream_latency.labels(route)
        child.observe(seconds)

    def observe_call(self, record: CallRecord) -> None:
        """Fold one metered call into the token, cost and hit-rate counters."""
        usage = record.usage
        if usage is None:
            return
        b = usage.billable()
        tokens = self._tokens
        tokens["input"].inc(b.input_tokens)
        tokens["cache_read"].inc(b.cache_read_tokens)
        tokens["cache_write_5m"].inc(b.cache_write_5m_tokens)
        tokens["cache_write_1h"].inc(b.cache_write_1h_tokens)
        tokens["output"].inc(b.output_tokens)
        self._input_total += b.total_input_tokens
        self._read_total += b.cache_read_tokens
        if self._input_total:
            self.cache_hit_rate.set(self._read_total / self._input_total)
        if isinstance(record.cost, CostBreakdown):
            # Prometheus counters are floats: the exact Decimal stays in the ledger.
            model = record.model_used or record.model_requested
            child = self._cost.get(model)
            if child is None:
                if len(self._cost) > 1000:  # bounded, like the label set it caches
                    self._cost.clear()
                child = self._cost[model] = self.cost.labels(model)
            child.inc(float(record.cost.total_usd))
        else:
            self.unpriced.inc()
        if record.ttft_ms is not None:
            self.ttft.observe(record.ttft_ms / 1000.0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
