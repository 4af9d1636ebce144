"""The cache doctor: why a call did not read what it could have, and what that cost.

For every call it compares the request with the previous call of the run (the first divergence
of their prefix hash chains and its cause) and the predicted cache with the billed usage. A
*miss* is a prefix that could have been read from cache but was not: its tokens, its cause and
the dollars lost (``billed − read price``). The same checks run before sending in
:func:`lint`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Literal

import orjson

from tokenomy.core.cache_model import Observation, Prediction
from tokenomy.core.cache_plan import Breakpoint, CachePlan, caller_breakpoints, is_cacheable
from tokenomy.core.canonical import Chain, ChainLink, level_params
from tokenomy.core.pricing import MTOK, Rates
from tokenomy.core.stabilize import VolatileFinding
from tokenomy.core.usage import Usage

__all__ = [
    "Diagnosis",
    "Divergence",
    "LintFinding",
    "Miss",
    "diagnose",
    "first_divergence",
    "lint",
]

DivergenceCause = Literal[
    "model_switched",
    "tools_changed",
    "tool_order_changed",
    "key_order_changed",
    "system_level_changed",
    "system_changed",
    "messages_level_changed",
    "message_changed",
]
MissCause = Literal[
    "prefix_changed",
    "volatile_content",
    "model_switched",
    "ttl_expired",
    "below_minimum",
    "lookback_exhausted",
    "breakpoint_limit",
    "no_breakpoint",
    "evicted",
    "unexplained",
]


@dataclass(frozen=True, slots=True)
class Divergence:
    """Where a request stops sharing its prefix with the previous one, and why."""

    index: int
    ref: str
    cause: DivergenceCause
    detail: str
    # False when only the previous request's newest turn differs (a new question in the same
    # run): the prefix the previous call cached is intact. True when it was rewritten.
    rewrites_history: bool = True


@dataclass(frozen=True, slots=True)
class Miss:
    """Tokens that could have been read from cache but were not."""

    cause: MissCause
    tokens: int
    lost_usd: Decimal
    detail: str


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """The doctor's finding for one call."""

    predicted_read_tokens: int
    predicted_write_tokens: int
    actual_read_tokens: int | None
    actual_write_tokens: int | None
    agree: bool | None
    divergence: Divergence | None
    misses: tuple[Miss, ...]
    volatile: tuple[VolatileFinding, ...] = ()
    note: str | None = None

    @property
    def lost_usd(self) -> Decimal:
        return sum((m.lost_usd for m in self.misses), Decimal(0))

    def to_json(self) -> dict[str, Any]:
        return {
            "predicted_read_tokens": self.predicted_read_tokens,
            "predicted_write_tokens": self.predicted_write_tokens,
            "actual_read_tokens": self.actual_read_tokens,
            "actual_write_tokens": self.actual_write_tokens,
            "agree": self.agree,
            "divergence": None
            if self.divergence is None
            else {
                "index": self.divergence.index,
                "ref": self.divergence.ref,
                "cause": self.divergence.cause,
                "detail": self.divergence.detail,
                "rewrites_history": self.divergence.rewrites_history,
            },
            "misses": [
                {
                    "cause": m.cause,
                    "tokens": m.tokens,
                    "lost_usd": str(m.lost_usd),
                    "detail": m.detail,
                }
                for m in self.misses
            ],
            "lost_usd": str(self.lost_usd),
            "volatile": [v.describe() for v in self.volatile],
            "note": self.note,
        }


# ---------------------------------------------------------------------------- divergence


def _name(link: ChainLink) -> str:
    name = link.block.get("name")
    return f"{link.ref} ({name})" if isinstance(name, str) else str(link.ref)


def first_divergence(
    current: Chain,
    previous: Chain,
    *,
    current_request: Mapping[str, Any] | None = None,
    previous_request: Mapping[str, Any] | None = None,
    model: str | None = None,
    previous_model: str | None = None,
) -> Divergence | None:
    """The first position where ``current`` stops extending ``previous``, with its cause."""
    div = _classify(
        current,
        previous,
        current_request=current_request,
        previous_request=previous_request,
        model=model,
        previous_model=previous_model,
    )
    if div is None or div.cause == "model_switched":
        return div
    last = max(
        (link.ref.index for link in previous.links if link.ref.segment == "messages"), default=None
    )
    newest_start = next(
        (
            k
            for k, link in enumerate(previous.links)
            if link.ref.segment == "messages" and link.ref.index == last
        ),
        len(previous.links),
    )
    return replace(div, rewrites_history=div.index < newest_start)


def _classify(
    current: Chain,
    previous: Chain,
    *,
    current_request: Mapping[str, Any] | None = None,
    previous_request: Mapping[str, Any] | None = None,
    model: str | None = None,
    previous_model: str | None = None,
) -> Divergence | None:
    """The first position where ``current`` stops extending ``previous``, with its cause."""
    if model is not None and previous_model is not None and model != previous_model:
        return Divergence(
            0,
            "model",
            "model_switched",
            f"{previous_model} → {model}: each model has its own cache",
        )
    d = current.first_divergence(previous)
    if d >= len(previous.links):
        return None  # current extends previous (or equals it)
    if d >= len(current.links):
        return Divergence(
            d, "end", "message_changed", "the request is shorter than the previous one"
        )
    cur, prev = current.links[d], previous.links[d]
    if current_request is not None and previous_request is not None:
        cur_sys, cur_msg = level_params(current_request)
        prev_sys, prev_msg = level_params(previous_request)
        if cur.ref.segment != "tools" and cur_sys != prev_sys:
            return Divergence(
                d,
                str(cur.ref),
                "system_level_changed",
                f"speed/citations changed: {prev_sys.decode()} → {cur_sys.decode()}",
            )
        if cur.ref.segment == "messages" and cur_msg != prev_msg:
            return Divergence(
                d,
                str(cur.ref),
                "messages_level_changed",
                f"tool_choice/thinking/effort/images: {prev_msg.decode()} → {cur_msg.decode()}",
            )
    if cur.ref.segment != prev.ref.segment:
        moved: DivergenceCause = (
            "tools_changed"
            if prev.ref.segment == "tools"
            else "system_changed"
            if prev.ref.segment == "system"
            else "message_changed"
        )
        return Divergence(d, str(cur.ref), moved, f"{prev.ref} was removed or moved")
    seg = cur.ref.segment
    if seg == "tools":
        prev_names = [
            link.block.get("name") for link in previous.links if link.ref.segment == "tools"
        ]
        cur_names = [
            link.block.get("name") for link in current.links if link.ref.segment == "tools"
        ]
        if sorted(map(str, prev_names)) == sorted(map(str, cur_names)) and prev_names != cur_names:
            return Divergence(
                d, str(cur.ref), "tool_order_changed", "the same tools in another order"
            )
        if _same_but_order(cur.block, prev.block):
            return Divergence(
                d, _name(cur), "key_order_changed", "same schema, JSON keys in another order"
            )
        return Divergence(d, _name(cur), "tools_changed", "tool definition changed")
    if seg == "system":
        return Divergence(d, str(cur.ref), "system_changed", _diff_snippet(cur.block, prev.block))
    if _same_but_order(cur.block, prev.block):
        return Divergence(
            d, str(cur.ref), "key_order_changed", "same content, JSON keys in another order"
        )
    return Divergence(d, str(cur.ref), "message_changed", _diff_snippet(cur.block, prev.block))


def _strip(m: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in m.items() if k != "cache_control"}


def _same_but_order(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return _strip(a) == _strip(b) and orjson.dumps(_strip(a)) != orjson.dumps(_strip(b))


def _diff_snippet(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    ta = orjson.dumps(a).decode()
    tb = orjson.dumps(b).decode()
    i = 0
    while i < min(len(ta), len(tb)) and ta[i] == tb[i]:
        i += 1
    start = max(0, i - 20)
    return f"was …{tb[start : i + 40]!s}… now …{ta[start : i + 40]!s}…"


# ---------------------------------------------------------------------------- diagnosis


def _lost(tokens: int, usage: Usage, read_tokens: int, rates: Rates) -> Decimal:
    """What ``tokens`` that should have been read cost above the read price.

    On the billing axis they sit right after the actual reads: 1h writes, then 5m writes, then
    uncached input.
    """
    left = tokens
    billed = Decimal(0)
    for size, rate in (
        (usage.cache_write_1h_tokens, rates.cache_write_1h),
        (usage.cache_write_5m_tokens, rates.cache_write_5m),
        (usage.input_tokens, rates.input),
    ):
        take = min(left, size)
        billed += take * rate
        left -= take
    billed += left * rates.input
    return (billed - tokens * rates.cache_read) / MTOK


@dataclass(frozen=True, slots=True)
class PreviousCall:
    """What the doctor needs of the previous call of the run."""

    chain: Chain
    request: Mapping[str, Any]
    model: str
    breakpoints: tuple[Breakpoint, ...]
    positions: tuple[int, ...]
    started_s: float


def diagnose(
    *,
    chain: Chain,
    request: Mapping[str, Any],
    model: str,
    prediction: Prediction,
    observation: Observation | None,
    plan: CachePlan,
    usage: Usage | None,
    rates: Rates | None,
    previous: PreviousCall | None,
    volatile: Sequence[VolatileFinding] = (),
    min_cacheable_tokens: int = 0,
) -> Diagnosis:
    """Explain the cache behaviour of one call (after it returned, or before with no usage)."""
    divergence = (
        first_divergence(
            chain,
            previous.chain,
            current_request=request,
            previous_request=previous.request,
            model=model,
            previous_model=previous.model,
        )
        if previous is not None
        else None
    )
    actual_read = observation.actual_read_tokens if observation else None
    misses: list[Miss] = []
    if usage is not None and rates is not None and previous is not None:
        u = usage.billable()
        expected, why = _expected_read(chain, prediction, previous, volatile)
        got = u.cache_read_tokens
        if expected > got:
            tokens = expected - got
            cause, detail = _miss_cause(
                prediction,
                plan=plan,
                divergence=divergence,
                volatile=volatile,
                previous=previous,
                why=why,
                min_tokens=min_cacheable_tokens,
            )
            misses.append(Miss(cause, tokens, _lost(tokens, u, got, rates), detail))
    note = observation.note if observation else None
    return Diagnosis(
        predicted_read_tokens=prediction.read_tokens,
        predicted_write_tokens=prediction.write_tokens,
        actual_read_tokens=actual_read,
        actual_write_tokens=observation.actual_write_tokens if observation else None,
        agree=(observation.reads_agree if observation else None),
        divergence=divergence,
        misses=tuple(misses),
        volatile=tuple(volatile),
        note=note,
    )


def _expected_read(
    chain: Chain,
    prediction: Prediction,
    previous: PreviousCall,
    volatile: Sequence[VolatileFinding],
) -> tuple[int, str]:
    """Tokens a well-cached call could have read: the previous call's deepest breakpoint that
    is still a prefix of this request (any model: a model switch is itself the miss).

    When the prefixes part at a volatile block (a timestamp in the system prompt), the prefix
    is measured as if that block had stayed the same: that is what the volatility cost.
    """
    shared = chain.first_divergence(previous.chain)
    why = "breakpoint"
    vol = {v.ref for v in volatile}
    n = min(len(chain.links), len(previous.chain.links))
    if shared < n and chain.links[shared].ref in vol:
        j = shared
        while j < n:
            cur, prev = chain.links[j], previous.chain.links[j]
            if cur.ref != prev.ref or (cur.block_hash != prev.block_hash and cur.ref not in vol):
                break
            j += 1
        shared, why = j, "volatile"
    bps = [b.index for b in previous.breakpoints if b.index < shared]
    if not bps:
        if shared == 0:
            return 0, "nothing shared"
        # The previous call set no breakpoint: what a breakpoint at the shared end would give.
        end = min(shared, len(prediction.positions)) - 1
        return (prediction.positions[end] if end >= 0 else 0), "no_breakpoint"
    return prediction.positions[max(bps)], why


def _miss_cause(
    prediction: Prediction,
    *,
    plan: CachePlan,
    divergence: Divergence | None,
    volatile: Sequence[VolatileFinding],
    previous: PreviousCall,
    why: str,
    min_tokens: int,
) -> tuple[MissCause, str]:
    if divergence is not None and divergence.cause == "model_switched":
        return "model_switched", divergence.detail
    if why == "volatile" and divergence is not None:
        found = [v for v in volatile if str(v.ref) == divergence.ref]
        text = found[0].describe() if found else divergence.detail
        return "volatile_content", f"{text}: every later block is written again on each call"
    if why == "no_breakpoint":
        return "no_breakpoint", "the previous call set no cache breakpoint on the shared prefix"
    if prediction.expired:
        idx, at = prediction.expired[0]
        return (
            "ttl_expired",
            f"the entry at position {idx} expired (TTL ran out {prediction_gap(previous, at)})",
        )
    if prediction.out_of_lookback:
        return "lookback_exhausted", (
            f"a live entry at position {prediction.out_of_lookback[-1]} is more than 20 blocks "
            "behind every breakpoint"
        )
    if any("4-breakpoint limit" in n for n in plan.notes):
        return "breakpoint_limit", "a breakpoint the planner wanted was dropped: 4-breakpoint limit"
    if prediction.below_minimum:
        return (
            "below_minimum",
            f"the cached prefix is under the model's minimum of {min_tokens} tokens",
        )
    if prediction.hit_index is not None:
        return (
            "evicted",
            "the predicted entry was not read by the server (evicted, or written elsewhere)",
        )
    if divergence is not None:
        return "prefix_changed", f"{divergence.cause} at {divergence.ref}: {divergence.detail}"
    return "unexplained", "the server read less than predicted with no known cause"


def prediction_gap(previous: PreviousCall, expired_at_s: float) -> str:
    return f"{expired_at_s - previous.started_s:.0f}s after the previous call started"


# ---------------------------------------------------------------------------- lint


@dataclass(frozen=True, slots=True)
class LintFinding:
    """One problem found before sending. ``buster`` findings bust the cache."""

    code: str
    ref: str
    message: str
    buster: bool


def lint(
    request: Mapping[str, Any],
    *,
    chain: Chain,
    anatomy_positions: Sequence[int],
    volatile: Sequence[VolatileFinding],
    previous: PreviousCall | None = None,
    model: str | None = None,
    min_cacheable_tokens: int = 0,
) -> tuple[LintFinding, ...]:
    """The doctor's checks on a request that has not been sent."""
    out: list[LintFinding] = []
    bps = caller_breakpoints(chain)
    total = len(bps) + (1 if request.get("cache_control") is not None else 0)
    if total > 4:
        out.append(
            LintFinding(
                "too-many-breakpoints",
                "request",
                f"{total} cache_control markers; the API allows 4 (400 error)",
                True,
            )
        )
    seen_5m = False
    for b in bps:
        if b.ttl == "5m":
            seen_5m = True
        elif seen_5m:
            out.append(
                LintFinding(
                    "ttl-order",
                    str(b.ref),
                    "a 1h breakpoint after a 5m one (the API rejects it)",
                    True,
                )
            )
        if not is_cacheable(chain.links[b.index].block):
            out.append(
                LintFinding(
                    "uncacheable-block",
                    str(b.ref),
                    "cache_control on a block that cannot be cached",
                    True,
                )
            )
        if anatomy_positions and anatomy_positions[b.index] < min_cacheable_tokens:
            out.append(
                LintFinding(
                    "below-minimum",
                    str(b.ref),
                    f"prefix ~{anatomy_positions[b.index]} tokens < minimum "
                    f"{min_cacheable_tokens}: nothing will be cached here",
                    False,
                )
            )
    last_bp = max((b.index for b in bps), default=len(chain.links) - 1)
    for v in volatile:
        idx = chain.index_of(v.ref)
        if idx is not None and idx <= last_bp:
            out.append(
                LintFinding(
                    f"volatile-{v.pattern}",
                    str(v.ref),
                    f"{v.pattern} {v.text!r} inside the cached prefix changes every "
                    "call: every write is wasted",
                    True,
                )
            )
    if previous is not None:
        div = first_divergence(
            chain,
            previous.chain,
            current_request=request,
            previous_request=previous.request,
            model=model,
            previous_model=previous.model,
        )
        prev_last = max((b.index for b in previous.breakpoints), default=-1)
        if div is not None and div.index <= prev_last:
            out.append(
                LintFinding(
                    div.cause.replace("_", "-"),
                    div.ref,
                    f"breaks the previous request's cached prefix: {div.detail}",
                    True,
                )
            )
    return tuple(out)
