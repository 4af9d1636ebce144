"""Batch results as metered calls: batch prices, segments, and the interactive equivalent.

Each result line becomes a :class:`~tokenomy.core.records.CallRecord` (``mode="batch"``) in the
job's run, priced by :func:`tokenomy.core.pricing.cost` at batch prices (a batch result's usage
is batch usage whatever its ``service_tier`` says), split into segments from the estimates
made when the job was read. The same usage is also priced at standard prices: what the same
work, cached the same way, would have cost sent interactively — the job's saving.

Call ids are deterministic (job, chunk, request), so collecting a chunk again after a crash
rewrites the same rows instead of adding new ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from tokenomy.core.anatomy import apportion, segment_costs
from tokenomy.core.pricing import CostBreakdown, Unpriced, cost, rates
from tokenomy.core.records import CallRecord, CallStatus, SegmentTokens
from tokenomy.core.usage import TokenTotals, Usage, usage_from_batch_result
from tokenomy.data.table import ModelTable
from tokenomy.errors import UsageError

from .jobs import RequestRow

__all__ = ["Metered", "Tally", "meter_result"]


@dataclass(slots=True)
class Tally(TokenTotals):
    """Sums over results: counts by outcome, tokens, and money (batch and interactive)."""

    succeeded: int = 0
    errored: int = 0
    expired: int = 0
    canceled: int = 0
    retried: int = 0
    missing: int = 0
    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    interactive_usd: Decimal = Decimal(0)
    unpriced: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    # total_input_tokens, cache_hit_rate: TokenTotals.

    def add_usage(self, usage: Usage) -> None:
        u = usage.billable()
        self.input_tokens += u.input_tokens
        self.cache_read_tokens += u.cache_read_tokens
        self.cache_write_5m_tokens += u.cache_write_5m_tokens
        self.cache_write_1h_tokens += u.cache_write_1h_tokens
        self.output_tokens += u.output_tokens

    def merge(self, other: Mapping[str, Any]) -> None:
        """Add a stored outcome (:meth:`to_json`) to this tally."""
        for name in (
            "succeeded",
            "errored",
            "expired",
            "canceled",
            "retried",
            "missing",
            "input_tokens",
            "cache_read_tokens",
            "cache_write_5m_tokens",
            "cache_write_1h_tokens",
            "output_tokens",
            "unpriced",
        ):
            setattr(self, name, getattr(self, name) + int(other.get(name, 0)))
        for kind, n in (other.get("errors") or {}).items():
            self.errors[kind] = self.errors.get(kind, 0) + int(n)

    def to_json(self) -> dict[str, Any]:
        return {
            "succeeded": self.succeeded,
            "errored": self.errored,
            "expired": self.expired,
            "canceled": self.canceled,
            "retried": self.retried,
            "missing": self.missing,
            "input_tokens": self.input_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_5m_tokens": self.cache_write_5m_tokens,
            "cache_write_1h_tokens": self.cache_write_1h_tokens,
            "output_tokens": self.output_tokens,
            "unpriced": self.unpriced,
            "errors": dict(sorted(self.errors.items())),
        }


@dataclass(frozen=True, slots=True)
class Metered:
    """One result line, metered."""

    record: CallRecord
    usage: Usage | None
    cost_usd: Decimal | None
    interactive_usd: Decimal | None


def _error_of(result: Mapping[str, Any]) -> tuple[str, str]:
    env = result.get("error")
    inner = env.get("error") if isinstance(env, Mapping) else None
    if isinstance(inner, Mapping):
        return str(inner.get("type") or "api_error"), str(inner.get("message") or "")
    if isinstance(env, Mapping) and "type" in env and env.get("type") != "error":
        return str(env.get("type")), str(env.get("message") or "")
    return "api_error", "errored without an error object"


def meter_result(
    line: Mapping[str, Any],
    *,
    request: RequestRow,
    call_id: str,
    run_id: str,
    table: ModelTable,
    started_at: datetime,
    ended_at: datetime | None,
    decisions: Mapping[str, Any],
) -> Metered:
    """The call record of one result line (any outcome; only ``succeeded`` is billed)."""
    result = line.get("result")
    kind = result.get("type") if isinstance(result, Mapping) else None
    usage: Usage | None = None
    price: CostBreakdown | Unpriced | None = None
    interactive: CostBreakdown | Unpriced | None = None
    segments = seg_costs = None
    status: CallStatus = "ok"
    error_type = error_message = None
    message: Mapping[str, Any] = {}
    if kind == "succeeded" and isinstance(result, Mapping):
        found = result.get("message")
        message = found if isinstance(found, Mapping) else {}
        try:
            usage = usage_from_batch_result(line)
        except UsageError as exc:
            status, error_type, error_message = "error", "invalid_usage", str(exc)
    elif kind == "errored" and isinstance(result, Mapping):
        status = "error"
        error_type, error_message = _error_of(result)
    else:
        status = "cancelled" if kind == "canceled" else "error"
        error_type = str(kind or "unknown")
        error_message = (
            "expired before it ran (24h limit)" if kind == "expired" else f"result {kind}"
        )
    model_used = message.get("model") if isinstance(message.get("model"), str) else None
    model = model_used or request.model
    if usage is not None:
        price = cost(usage, model, table=table, batch=True)
        interactive = cost(usage, model, table=table, batch=False)
        billable = usage.billable()
        estimate = SegmentTokens(
            tools=request.est_tools,
            system=request.est_system,
            history=request.est_history,
            new=request.est_new,
        )
        segments = apportion(
            estimate, billable.total_input_tokens, output_tokens=billable.output_tokens
        )
        info = table.find(model)
        if info is not None:
            r = rates(
                info,
                table=table,
                total_input_tokens=billable.total_input_tokens,
                batch=True,
                geo_us=(usage.inference_geo or "") == "us",
            )
            if not isinstance(r, Unpriced):
                seg_costs = segment_costs(segments, usage, r)
    record = CallRecord(
        call_id=call_id,
        run_id=run_id,
        seq=request.seq,
        started_at=started_at,
        model_requested=request.model,
        model_used=model_used,
        mode="batch",
        status=status,
        stream=False,
        usage=usage,
        cost=price,
        segments=segments,
        segment_costs=seg_costs,
        ended_at=ended_at,
        http_status=200 if kind == "succeeded" else None,
        error_type=error_type,
        error_message=error_message,
        message_id=message.get("id") if isinstance(message.get("id"), str) else None,
        stop_reason=(
            message.get("stop_reason") if isinstance(message.get("stop_reason"), str) else None
        ),
        prefix_hash=request.prefix_hash,
        breakpoints=tuple(b for b in request.breakpoints.split(",") if b),
        decisions=decisions,
    )
    return Metered(
        record=record,
        usage=usage,
        cost_usd=price.total_usd if isinstance(price, CostBreakdown) else None,
        interactive_usd=interactive.total_usd if isinstance(interactive, CostBreakdown) else None,
    )
