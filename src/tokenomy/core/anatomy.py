"""Request anatomy: which tokens are tools, system, history and the new turn.

The API bills totals. To say *which lever to pull*, a call's input is split into segments in
prompt order — ``tools``, ``system``, ``history`` (earlier turns), ``new`` (the latest turn,
which may end with a ``role: "system"`` message) — by local estimates, then the billed total is
apportioned to them so that they sum exactly (largest remainder). Dollars follow the same axis:
the billed prompt is cache reads first, then 1h writes, then 5m writes, then uncached input, so
each segment's cost is its overlap with those regions times their rates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from tokenomy.core.canonical import Chain, chain
from tokenomy.core.pricing import MTOK, Rates
from tokenomy.core.records import SegmentCosts, SegmentTokens
from tokenomy.core.tokens import MESSAGE_FRAMING_TOKENS, estimate_block_tokens
from tokenomy.core.usage import Usage
from tokenomy.data.table import ModelInfo

__all__ = [
    "Anatomy",
    "anatomy",
    "apportion",
    "latest_turn_start",
    "segment_costs",
]

SegmentName = Literal["tools", "system", "history", "new"]
_ORDER: tuple[SegmentName, ...] = ("tools", "system", "history", "new")


@dataclass(frozen=True, slots=True)
class Anatomy:
    """The estimated shape of one request."""

    chain: Chain
    block_tokens: tuple[int, ...]
    segment_of: tuple[SegmentName, ...]
    tools_overhead_tokens: int
    new_from_message: int

    @property
    def estimated(self) -> SegmentTokens:
        sums = dict.fromkeys(_ORDER, 0)
        sums["tools"] += self.tools_overhead_tokens
        for seg, n in zip(self.segment_of, self.block_tokens, strict=True):
            sums[seg] += n
        return SegmentTokens(
            tools=sums["tools"], system=sums["system"], history=sums["history"], new=sums["new"]
        )

    def prefix_tokens(self, through: int) -> int:
        """Estimated tokens of the prompt through link ``through`` (inclusive)."""
        return self.tools_overhead_tokens + sum(self.block_tokens[: through + 1])

    @property
    def total_tokens(self) -> int:
        return self.tools_overhead_tokens + sum(self.block_tokens)


def latest_turn_start(messages: Sequence[Any]) -> int:
    """Index of the first message of the latest turn.

    The latest turn is everything after the last assistant message — the user's text or tool
    results, and any trailing ``role: "system"`` message. A final assistant message (a prefill)
    belongs to the latest turn, with what precedes it.
    """
    last = len(messages) - 1
    end = last - 1 if last >= 0 and _role(messages[last]) == "assistant" else last
    for i in range(end, -1, -1):
        if _role(messages[i]) == "assistant":
            return i + 1
    return 0


def _role(message: Any) -> str | None:
    return message.get("role") if isinstance(message, Mapping) else None


def anatomy(
    request: Mapping[str, Any],
    *,
    model: ModelInfo | None = None,
    request_chain: Chain | None = None,
    memo: dict[tuple[str, int], int] | None = None,
) -> Anatomy:
    """Estimate the tokens of every block of ``request``.

    ``memo`` maps block hashes to estimates and may be shared across the calls of a run, so
    that a long transcript is estimated once, not once per turn.
    """
    ch = request_chain if request_chain is not None else chain(request)
    tokenizer = model.tokenizer if model is not None else "2023"
    messages = request.get("messages")
    new_from = latest_turn_start(messages) if isinstance(messages, list) else 0
    tokens: list[int] = []
    segs: list[SegmentName] = []
    cache = memo if memo is not None else {}
    last_message = -1
    for link in ch.links:
        key = (tokenizer, link.block_hash)
        n = cache.get(key)
        if n is None:
            n = estimate_block_tokens(link.block, tokenizer=tokenizer)
            cache[key] = n
        ref = link.ref
        if ref.segment == "messages":
            if ref.index != last_message:
                n += MESSAGE_FRAMING_TOKENS
                last_message = ref.index
            segs.append("new" if ref.index >= new_from else "history")
        else:
            segs.append(ref.segment)
        tokens.append(n)
    overhead = 0
    if model is not None and model.tool_system_tokens and request.get("tools"):
        choice = request.get("tool_choice")
        forced = isinstance(choice, Mapping) and choice.get("type") in ("any", "tool")
        overhead = model.tool_system_tokens[1 if forced else 0]
    return Anatomy(
        chain=ch,
        block_tokens=tuple(tokens),
        segment_of=tuple(segs),
        tools_overhead_tokens=overhead,
        new_from_message=new_from,
    )


def apportion(
    estimate: SegmentTokens, total_input_tokens: int, *, output_tokens: int = 0
) -> SegmentTokens:
    """Scale the estimated input segments to the billed total; they sum to it exactly."""
    est = [estimate.tools, estimate.system, estimate.history, estimate.new]
    denom = sum(est)
    if denom == 0:
        return SegmentTokens(new=total_input_tokens, output=output_tokens)
    floors = [total_input_tokens * e // denom for e in est]
    remainders = [total_input_tokens * e % denom for e in est]
    left = total_input_tokens - sum(floors)
    # Largest remainder first; ties go to the later segment (the new turn is the most certain).
    for i in sorted(range(4), key=lambda k: (-remainders[k], -k))[:left]:
        floors[i] += 1
    return SegmentTokens(
        tools=floors[0], system=floors[1], history=floors[2], new=floors[3], output=output_tokens
    )


def segment_costs(segments: SegmentTokens, usage: Usage, rates: Rates) -> SegmentCosts:
    """Each segment's dollars: its overlap with the read / 1h / 5m / uncached regions."""
    u = usage.billable()
    regions = (
        (u.cache_read_tokens, rates.cache_read),
        (u.cache_write_1h_tokens, rates.cache_write_1h),
        (u.cache_write_5m_tokens, rates.cache_write_5m),
        (u.input_tokens, rates.input),
    )
    spans = (segments.tools, segments.system, segments.history, segments.new)
    out = [Decimal(0)] * 4
    seg_start = 0
    for s_i, size in enumerate(spans):
        seg_end = seg_start + size
        r_start = 0
        for r_size, rate in regions:
            r_end = r_start + r_size
            overlap = min(seg_end, r_end) - max(seg_start, r_start)
            if overlap > 0:
                out[s_i] += overlap * rate / MTOK
            r_start = r_end
        seg_start = seg_end
    return SegmentCosts(
        tools_usd=out[0],
        system_usd=out[1],
        history_usd=out[2],
        new_usd=out[3],
        output_usd=u.output_tokens * rates.output / MTOK,
    )
