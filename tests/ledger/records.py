"""Builders of ledger records with every field set, for the ledger tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import EllipsisType
from typing import Any

from tokenomy.core.pricing import CostBreakdown, Unpriced
from tokenomy.core.records import CallRecord, RunRecord, SegmentCosts, SegmentTokens
from tokenomy.core.usage import Iteration, Usage

__all__ = ["T0", "CallRecord", "call", "cost", "full_call", "run"]

T0 = datetime(2026, 11, 20, 9, 30, 0, 123456, tzinfo=UTC)


def run(run_id: str = "run-1", **kw: Any) -> RunRecord:
    fields: dict[str, Any] = {
        "run_id": run_id,
        "name": f"name of {run_id}",
        "started_at": T0,
        "parent_run_id": None,
        "tags": {"team": "infra", "ticket": "T-9"},
        "source": "library",
        "ended_at": None,
        "external_id": None,
        "project": None,
    }
    fields.update(kw)
    return RunRecord(**fields)


def cost(
    *,
    input_usd: str = "0",
    write_5m: str = "0",
    write_1h: str = "0",
    read: str = "0",
    output: str = "0",
    tools: str = "0",
    model: str = "claude-sonnet-4-5",
    modifiers: tuple[Any, ...] = (),
) -> CostBreakdown:
    return CostBreakdown(
        model=model,
        input_usd=Decimal(input_usd),
        cache_write_5m_usd=Decimal(write_5m),
        cache_write_1h_usd=Decimal(write_1h),
        cache_read_usd=Decimal(read),
        output_usd=Decimal(output),
        server_tools_usd=Decimal(tools),
        modifiers=modifiers,
    )


def call(
    call_id: str = "call-1",
    run_id: str = "run-1",
    seq: int = 1,
    *,
    usage: Usage | EllipsisType | None = ...,
    cost_: CostBreakdown | Unpriced | None = None,
    **kw: Any,
) -> CallRecord:
    fields: dict[str, Any] = {
        "call_id": call_id,
        "run_id": run_id,
        "seq": seq,
        "started_at": T0 + timedelta(seconds=seq % 86_400),
        "model_requested": "claude-sonnet-4-5",
        "usage": Usage(input_tokens=100, output_tokens=10) if usage is ... else usage,
        "cost": cost_,
    }
    fields.update(kw)
    return CallRecord(**fields)


def full_call(call_id: str = "call-full", run_id: str = "run-1") -> CallRecord:
    """A call with every field of CallRecord (and of its Usage and cost) set."""
    inner = Usage(
        input_tokens=3,
        output_tokens=4,
        cache_read_tokens=5,
        cache_write_5m_tokens=6,
        cache_write_1h_tokens=7,
    )
    usage = Usage(
        input_tokens=1_234,
        output_tokens=567,
        cache_read_tokens=40_000,
        cache_write_5m_tokens=2_048,
        cache_write_1h_tokens=4_096,
        ttl_split_known=False,
        thinking_tokens=321,
        web_search_requests=2,
        web_fetch_requests=1,
        service_tier="standard",
        speed="fast",
        inference_geo="us",
        iterations=(
            Iteration(kind="compaction", usage=inner, model="claude-haiku-4-5"),
            Iteration(kind="message", usage=inner),
        ),
        unknown_fields=("brand_new_field",),
    )
    return CallRecord(
        call_id=call_id,
        run_id=run_id,
        seq=7,
        started_at=T0,
        model_requested="claude-sonnet-4-5",
        model_used="claude-sonnet-4-5-20250929",
        mode="batch",
        status="error",
        stream=True,
        usage=usage,
        cost=cost(
            input_usd="0.003702",
            write_5m="0.00768",
            write_1h="0.024576",
            read="0.012",
            output="0.008505",
            tools="0.02",
            modifiers=("batch", "geo_us"),
        ),
        segments=SegmentTokens(tools=1000, system=2000, history=40000, new=4374, output=567),
        segment_costs=SegmentCosts(
            tools_usd=Decimal("0.0003"),
            system_usd=Decimal("0.0006"),
            history_usd=Decimal("0.04"),
            new_usd=Decimal("0.003458"),
            output_usd=Decimal("0.008505"),
        ),
        ended_at=T0 + timedelta(seconds=3, microseconds=5),
        latency_ms=3000.125,
        ttft_ms=412.5,
        http_status=529,
        error_type="overloaded_error",
        error_message="Overloaded — retry later ✓",
        request_id="req_011CabC",
        message_id="msg_01XyZ",
        stop_reason="tool_use",
        prefix_hash="v1:0f3a",
        breakpoints=("tools[11]@1h", "system[2]@5m", "messages[8].content[0]@5m"),
        decisions={"ttl": "1h", "why": ["gap 7m > 5m"], "predicted_read": 40000, "n": None},
        api_key_fingerprint="sk-ant-…f00d",
    )
