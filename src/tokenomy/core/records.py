"""What the meter records: one :class:`RunRecord` per run, one :class:`CallRecord` per call.

These are the rows of the ledger, as plain frozen values. "Why did this call cost what it
cost" must be answerable from a :class:`CallRecord` alone: usage, cost, segments, breakpoints,
the prefix hash and the decisions of every policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from tokenomy.core.pricing import CostBreakdown, Unpriced
from tokenomy.core.usage import Usage

__all__ = [
    "CallMode",
    "CallRecord",
    "CallStatus",
    "RunRecord",
    "SegmentCosts",
    "SegmentTokens",
]

CallMode = Literal["interactive", "batch"]
CallStatus = Literal["ok", "error", "cancelled"]
RunSource = Literal["library", "gateway", "batch", "claude-code", "workload", "eval"]


@dataclass(frozen=True, slots=True)
class SegmentTokens:
    """A call's tokens by segment. The four input segments sum to the billed total input."""

    tools: int = 0
    system: int = 0
    history: int = 0
    new: int = 0
    output: int = 0

    @property
    def input_total(self) -> int:
        return self.tools + self.system + self.history + self.new


@dataclass(frozen=True, slots=True)
class SegmentCosts:
    """A call's cost by segment, USD. Sums to the call's total cost (server tools excluded)."""

    tools_usd: Decimal = Decimal(0)
    system_usd: Decimal = Decimal(0)
    history_usd: Decimal = Decimal(0)
    new_usd: Decimal = Decimal(0)
    output_usd: Decimal = Decimal(0)

    @property
    def total_usd(self) -> Decimal:
        return self.tools_usd + self.system_usd + self.history_usd + self.new_usd + self.output_usd


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A group of calls: an agent run, a Claude Code session, a batch job, a sub-agent."""

    run_id: str
    name: str
    started_at: datetime
    parent_run_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    source: RunSource = "library"
    ended_at: datetime | None = None
    # The client's own id for the run (a Claude Code session id, a batch job id, …).
    external_id: str | None = None
    project: str | None = None
    # The run's ideal cost (lower bound for caching without changing content), when known.
    ideal_usd: Decimal | None = None


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One API call as the meter saw it."""

    call_id: str
    run_id: str
    seq: int
    started_at: datetime
    model_requested: str
    model_used: str | None = None
    mode: CallMode = "interactive"
    status: CallStatus = "ok"
    stream: bool = False
    usage: Usage | None = None
    cost: CostBreakdown | Unpriced | None = None
    segments: SegmentTokens | None = None
    segment_costs: SegmentCosts | None = None
    ended_at: datetime | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    http_status: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    request_id: str | None = None
    message_id: str | None = None
    stop_reason: str | None = None
    prefix_hash: str | None = None
    # Breakpoints as "<where>@<ttl>": "tools[11]@1h", "system[2]@5m", "messages[8].content[0]@5m".
    breakpoints: tuple[str, ...] = ()
    # Policy decisions and the doctor's findings, JSON-serialisable.
    decisions: Mapping[str, Any] = field(default_factory=dict)
    api_key_fingerprint: str | None = None
