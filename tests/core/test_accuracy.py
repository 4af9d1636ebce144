"""The accuracy suite: every way a Claude call is billed, priced by hand and by tokenomy.

Each :class:`Case` holds a usage document exactly as the API, a Message Batches result file, a
Claude Code transcript or an SSE stream carries it, and the expected cost worked out by hand
from the price table of ``../shared/reference/anthropic-api.md`` §2.1 (USD per million tokens,
written as literals). Nothing here calls tokenomy to compute an expected value.

``tests/cli/test_cost_cli.py`` runs every case again through ``tokenomy cost --json``.
The named tests at the end pin each failure of other tools listed in
``../shared/reference/users-and-peers.md`` item 1 (and item 14) to the case that proves we
don't make it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal as D
from typing import Any, Literal

import pytest
from anthropic.types.beta import BetaMessage, BetaRawMessageStreamEvent
from anthropic.types.messages import MessageBatchIndividualResponse
from pydantic import TypeAdapter

from tokenomy.core.pricing import CostBreakdown, Unpriced, cost
from tokenomy.core.usage import (
    StreamUsage,
    Usage,
    usage_from_batch_result,
    usage_from_claude_code_line,
    usage_from_message,
)
from tokenomy.data import builtin_table

M = D(1_000_000)
ZERO = D(0)
TABLE = builtin_table()

Shape = Literal["usage", "message", "batch_result", "claude_code_line", "stream"]


@dataclass(frozen=True)
class Doc:
    """A usage document in one of the shapes users have: ``payload`` is the JSON verbatim."""

    shape: Shape
    payload: Any  # a JSON object; for a stream, the list of SSE event objects


@dataclass(frozen=True)
class Amounts:
    """Expected USD per kind of token (server_tools: web searches at $10 per 1,000)."""

    input: D = ZERO
    w5: D = ZERO
    w1: D = ZERO
    read: D = ZERO
    output: D = ZERO
    tools: D = ZERO

    @property
    def total(self) -> D:
        return self.input + self.w5 + self.w1 + self.read + self.output + self.tools


@dataclass(frozen=True)
class Case:
    name: str
    model: str  # the model the document names (``--model`` for a bare usage object)
    doc: Doc
    total: D | None  # hand-summed total; None: the call must be Unpriced, never $0
    amounts: Amounts | None = None
    mods: tuple[str, ...] = ()  # pricing modifiers expected to apply
    batch: bool = False  # flag: price at batch rates (``tokenomy cost --batch``)
    ttl_known: bool = True  # False: writes came without a 5m/1h split
    unpriced: str = ""  # for an Unpriced case, a piece of the reason


# ---------------------------------------------------------------------- document builders


def usage(**u: Any) -> Doc:
    return Doc("usage", u)


def _message(model: str, u: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "msg_01Acc",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "ok"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": u,
    }


def message(model: str, **u: Any) -> Doc:
    return Doc("message", _message(model, u))


def batch_line(model: str, **u: Any) -> Doc:
    return Doc(
        "batch_result",
        {"custom_id": "req-1", "result": {"type": "succeeded", "message": _message(model, u)}},
    )


def cc_line(model: str, **u: Any) -> Doc:
    msg = _message(model, u)
    return Doc(
        "claude_code_line",
        {
            "type": "assistant",
            "message": msg,
            "requestId": "req_011Acc",
            "uuid": "0b9f",
            "parentUuid": None,
            "sessionId": "s-acc",
            "timestamp": "2026-02-18T11:30:24.575Z",
            "version": "2.1.44",
            "cwd": "/work",
            "isSidechain": False,
            "userType": "external",
        },
    )


def stream(model: str, start: dict[str, Any], *deltas: dict[str, Any]) -> Doc:
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {**_message(model, start), "content": [], "stop_reason": None},
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
    ]
    for i, d in enumerate(deltas):
        events.append(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "x"},
            }
        )
        last = i == len(deltas) - 1
        events.append(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn" if last else None, "stop_sequence": None},
                "usage": d,
            }
        )
    events += [{"type": "content_block_stop", "index": 0}, {"type": "message_stop"}]
    return Doc("stream", events)


def split(w5: int, w1: int) -> dict[str, int]:
    return {"ephemeral_5m_input_tokens": w5, "ephemeral_1h_input_tokens": w1}


# ---------------------------------------------------------------------- the cases
CASES: list[Case] = [
    # --- additive cache fields: input_tokens excludes writes and reads (§1.9) ----------------
    Case(
        "docs-first-call-writes-without-split",
        "claude-sonnet-4-5",
        usage(
            cache_creation_input_tokens=188086,
            cache_read_input_tokens=0,
            input_tokens=21,
            output_tokens=393,
        ),
        total=D("0.7112805"),
        amounts=Amounts(
            input=D("21") * D("3") / M,
            w5=D("188086") * D("3.75") / M,
            output=D("393") * D("15") / M,
        ),
        ttl_known=False,
    ),
    Case(
        "docs-second-call-reads",
        "claude-sonnet-4-5",
        usage(
            cache_creation_input_tokens=0,
            cache_read_input_tokens=188086,
            input_tokens=21,
            output_tokens=393,
        ),
        total=D("0.0623838"),
        amounts=Amounts(
            input=D("21") * D("3") / M,
            read=D("188086") * D("0.30") / M,
            output=D("393") * D("15") / M,
        ),
    ),
    Case(
        "response-writes-and-reads",
        "claude-sonnet-4-6",
        message(
            "claude-sonnet-4-6",
            input_tokens=50,
            cache_creation_input_tokens=1024,
            cache_read_input_tokens=30000,
            cache_creation=split(1024, 0),
            output_tokens=700,
            service_tier="standard",
        ),
        total=D("0.02349"),
        amounts=Amounts(
            input=D("50") * D("3") / M,
            w5=D("1024") * D("3.75") / M,
            read=D("30000") * D("0.30") / M,
            output=D("700") * D("15") / M,
        ),
    ),
    # --- 5m vs 1h writes, from cache_creation --------------------------------------------------
    Case(
        "split-5m-and-1h",
        "claude-opus-4-5",
        usage(
            input_tokens=10,
            cache_creation_input_tokens=5000,
            cache_read_input_tokens=0,
            cache_creation=split(2000, 3000),
            output_tokens=100,
        ),
        total=D("0.04505"),
        amounts=Amounts(
            input=D("10") * D("5") / M,
            w5=D("2000") * D("6.25") / M,
            w1=D("3000") * D("10") / M,
            output=D("100") * D("25") / M,
        ),
    ),
    Case(
        "only-1h-writes",
        "claude-haiku-4-5",
        message(
            "claude-haiku-4-5",
            input_tokens=3,
            cache_creation_input_tokens=8192,
            cache_read_input_tokens=20000,
            cache_creation=split(0, 8192),
            output_tokens=256,
        ),
        total=D("0.019667"),
        amounts=Amounts(
            input=D("3") * D("1") / M,
            w1=D("8192") * D("2") / M,
            read=D("20000") * D("0.10") / M,
            output=D("256") * D("5") / M,
        ),
    ),
    Case(
        "missing-breakdown-all-5m",
        "claude-haiku-4-5",
        usage(input_tokens=40, cache_creation_input_tokens=4096, output_tokens=12),
        total=D("0.00522"),
        amounts=Amounts(
            input=D("40") * D("1") / M,
            w5=D("4096") * D("1.25") / M,
            output=D("12") * D("5") / M,
        ),
        ttl_known=False,
    ),
    Case(
        "breakdown-null-all-5m",
        "claude-sonnet-4-6",
        usage(
            input_tokens=9,
            cache_creation_input_tokens=2000,
            cache_read_input_tokens=0,
            cache_creation=None,
            output_tokens=30,
        ),
        total=D("0.007977"),
        amounts=Amounts(
            input=D("9") * D("3") / M,
            w5=D("2000") * D("3.75") / M,
            output=D("30") * D("15") / M,
        ),
        ttl_known=False,
    ),
    Case(
        "breakdown-present-with-zeros",
        "claude-sonnet-4-6",
        usage(
            input_tokens=7,
            cache_creation_input_tokens=0,
            cache_read_input_tokens=12000,
            cache_creation=split(0, 0),
            output_tokens=90,
        ),
        total=D("0.004971"),
        amounts=Amounts(
            input=D("7") * D("3") / M,
            read=D("12000") * D("0.30") / M,
            output=D("90") * D("15") / M,
        ),
    ),
    # --- streams: message_start + cumulative message_delta; the last wins, never summed -----
    Case(
        "stream-last-delta-wins",
        "claude-sonnet-4-6",
        stream(
            "claude-sonnet-4-6",
            {
                "input_tokens": 12,
                "cache_creation_input_tokens": 3000,
                "cache_read_input_tokens": 40000,
                "cache_creation": split(3000, 0),
                "output_tokens": 1,
            },
            {"output_tokens": 5},
            {"output_tokens": 120},
            {"output_tokens": 510},
        ),
        total=D("0.030936"),
        amounts=Amounts(
            input=D("12") * D("3") / M,
            w5=D("3000") * D("3.75") / M,
            read=D("40000") * D("0.30") / M,
            output=D("510") * D("15") / M,
        ),
    ),
    Case(
        "stream-delta-carries-cumulative-input",
        "claude-sonnet-4-6",
        stream(
            "claude-sonnet-4-6",
            {"input_tokens": 10, "output_tokens": 1},
            {
                "input_tokens": 10682,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 200,
                "server_tool_use": {"web_search_requests": 1, "web_fetch_requests": 0},
            },
            {
                "input_tokens": 10682,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 510,
                "server_tool_use": {"web_search_requests": 1, "web_fetch_requests": 0},
            },
        ),
        total=D("0.049696"),
        amounts=Amounts(
            input=D("10682") * D("3") / M,
            output=D("510") * D("15") / M,
            tools=1 * D("10") / 1000,
        ),
    ),
    Case(
        "stream-reads-not-priced-as-input",
        "claude-opus-4-6",
        stream(
            "claude-opus-4-6",
            {
                "input_tokens": 3,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 150000,
                "cache_creation": split(0, 0),
                "output_tokens": 1,
            },
            {"output_tokens": 40},
            {"output_tokens": 400},
        ),
        total=D("0.085015"),
        amounts=Amounts(
            input=D("3") * D("5") / M,
            read=D("150000") * D("0.50") / M,
            output=D("400") * D("25") / M,
        ),
    ),
    Case(
        "stream-1h-writes",
        "claude-opus-5",
        stream(
            "claude-opus-5",
            {
                "input_tokens": 8,
                "cache_creation_input_tokens": 6000,
                "cache_read_input_tokens": 0,
                "cache_creation": split(0, 6000),
                "output_tokens": 1,
            },
            {"output_tokens": 1200},
        ),
        total=D("0.09004"),
        amounts=Amounts(
            input=D("8") * D("5") / M,
            w1=D("6000") * D("10") / M,
            output=D("1200") * D("25") / M,
        ),
    ),
    # --- Message Batches: 50% of every price; cache multipliers stack on top (§3.5) ---------
    Case(
        "batch-service-tier",
        "claude-sonnet-4-6",
        usage(
            input_tokens=1000,
            cache_creation_input_tokens=3000,
            cache_read_input_tokens=10000,
            cache_creation=split(2000, 1000),
            output_tokens=500,
            service_tier="batch",
        ),
        total=D("0.01350"),
        amounts=Amounts(
            input=D("1000") * D("3") * D("0.5") / M,
            w5=D("2000") * D("3.75") * D("0.5") / M,
            w1=D("1000") * D("6") * D("0.5") / M,
            read=D("10000") * D("0.30") * D("0.5") / M,
            output=D("500") * D("15") * D("0.5") / M,
        ),
        mods=("batch",),
    ),
    Case(
        "batch-result-line",
        "claude-haiku-4-5-20251001",
        batch_line(
            "claude-haiku-4-5-20251001",
            input_tokens=1000,
            cache_creation_input_tokens=2000,
            cache_read_input_tokens=10000,
            cache_creation=split(0, 2000),
            output_tokens=500,
        ),
        total=D("0.00425"),
        amounts=Amounts(
            input=D("1000") * D("1") * D("0.5") / M,
            w1=D("2000") * D("2") * D("0.5") / M,
            read=D("10000") * D("0.10") * D("0.5") / M,
            output=D("500") * D("5") * D("0.5") / M,
        ),
        mods=("batch",),
    ),
    Case(
        "batch-flag",
        "claude-opus-4-6",
        usage(input_tokens=200000, output_tokens=10000),
        total=D("0.625"),
        amounts=Amounts(
            input=D("200000") * D("2.50") / M,
            output=D("10000") * D("12.50") / M,
        ),
        mods=("batch",),
        batch=True,
    ),
    Case(
        "batch-result-opus-4-1-cache",
        "claude-opus-4-1-20250805",
        batch_line(
            "claude-opus-4-1-20250805",
            input_tokens=500,
            cache_creation_input_tokens=4000,
            cache_read_input_tokens=50000,
            cache_creation=split(4000, 0),
            output_tokens=2000,
            service_tier="batch",
        ),
        total=D("0.15375"),
        amounts=Amounts(
            input=D("500") * D("7.50") / M,
            w5=D("4000") * D("18.75") * D("0.5") / M,
            read=D("50000") * D("1.50") * D("0.5") / M,
            output=D("2000") * D("37.50") / M,
        ),
        mods=("batch",),
    ),
    Case(
        "batch-and-us-geo",
        "claude-opus-4-6",
        batch_line(
            "claude-opus-4-6",
            input_tokens=10000,
            cache_creation_input_tokens=0,
            cache_read_input_tokens=0,
            output_tokens=1000,
            inference_geo="us",
        ),
        total=D("0.04125"),
        amounts=Amounts(
            input=D("10000") * D("5") * D("0.5") * D("1.1") / M,
            output=D("1000") * D("25") * D("0.5") * D("1.1") / M,
        ),
        mods=("batch", "geo_us"),
    ),
    # --- long context: Sonnet 4/4.5 with the 1M beta, input > 200k (§2.4) ---------------------
    Case(
        "long-context-above-200k",
        "claude-sonnet-4-5-20250929",
        message(
            "claude-sonnet-4-5-20250929",
            input_tokens=50000,
            cache_creation_input_tokens=100000,
            cache_read_input_tokens=100000,
            cache_creation=split(100000, 0),
            output_tokens=2000,
        ),
        total=D("1.155"),
        # the whole request at $6 / $22.50; cache prices are multiples of the $6 base
        amounts=Amounts(
            input=D("50000") * D("6") / M,
            w5=D("100000") * D("6") * D("1.25") / M,
            read=D("100000") * D("6") * D("0.1") / M,
            output=D("2000") * D("22.50") / M,
        ),
        mods=("long_context",),
    ),
    Case(
        "long-context-exactly-200k-is-not-above",
        "claude-sonnet-4-5",
        usage(
            input_tokens=100000,
            cache_creation_input_tokens=50000,
            cache_read_input_tokens=50000,
            cache_creation=split(50000, 0),
            output_tokens=1000,
        ),
        total=D("0.5175"),
        amounts=Amounts(
            input=D("100000") * D("3") / M,
            w5=D("50000") * D("3.75") / M,
            read=D("50000") * D("0.30") / M,
            output=D("1000") * D("15") / M,
        ),
    ),
    Case(
        "long-context-threshold-counts-writes-and-reads",
        "claude-sonnet-4-5",
        usage(
            input_tokens=1,
            cache_creation_input_tokens=100000,
            cache_read_input_tokens=100000,
            cache_creation=split(0, 100000),
            output_tokens=10,
        ),
        total=D("1.260231"),
        amounts=Amounts(
            input=D("1") * D("6") / M,
            w1=D("100000") * D("6") * D("2") / M,
            read=D("100000") * D("6") * D("0.1") / M,
            output=D("10") * D("22.50") / M,
        ),
        mods=("long_context",),
    ),
    Case(
        "long-context-in-a-batch",
        "claude-sonnet-4-20250514",
        batch_line(
            "claude-sonnet-4-20250514",
            input_tokens=210000,
            cache_creation_input_tokens=0,
            cache_read_input_tokens=0,
            output_tokens=4000,
        ),
        total=D("0.675"),
        amounts=Amounts(
            input=D("210000") * D("6") * D("0.5") / M,
            output=D("4000") * D("22.50") * D("0.5") / M,
        ),
        mods=("long_context", "batch"),
    ),
    Case(
        "no-long-context-premium-on-sonnet-4-6",
        "claude-sonnet-4-6",
        usage(input_tokens=600000, output_tokens=1000),
        total=D("1.815"),
        amounts=Amounts(input=D("600000") * D("3") / M, output=D("1000") * D("15") / M),
    ),
    # --- Haiku 5.5: $0.10/$0.50 up to 100k-token prompts, $0.50/$2.50 above -------------------
    Case(
        "haiku-5-5-at-100k",
        "claude-haiku-5-5",
        usage(input_tokens=100000, output_tokens=1000),
        total=D("0.0105"),
        amounts=Amounts(input=D("100000") * D("0.10") / M, output=D("1000") * D("0.50") / M),
    ),
    Case(
        "haiku-5-5-above-100k",
        "claude-haiku-5-5",
        usage(
            input_tokens=20000,
            cache_creation_input_tokens=0,
            cache_read_input_tokens=90000,
            output_tokens=3000,
        ),
        total=D("0.0220"),
        amounts=Amounts(
            input=D("20000") * D("0.50") / M,
            read=D("90000") * D("0.50") * D("0.1") / M,
            output=D("3000") * D("2.50") / M,
        ),
        mods=("long_context",),
    ),
    # --- iterations: server-side compaction, advisors, server-tool loops (§5.2) --------------
    Case(
        "compaction-iterations-summed-top-level-ignored",
        "claude-opus-4-6",
        message(
            "claude-opus-4-6",
            input_tokens=4000,
            cache_creation_input_tokens=0,
            cache_read_input_tokens=30000,
            output_tokens=700,
            iterations=[
                {
                    "type": "compaction",
                    "input_tokens": 160000,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": 2500,
                },
                {
                    "type": "message",
                    "input_tokens": 4000,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 30000,
                    "output_tokens": 700,
                },
            ],
        ),
        total=D("0.915"),
        amounts=Amounts(
            input=(D("160000") + D("4000")) * D("5") / M,
            read=D("30000") * D("0.50") / M,
            output=(D("2500") + D("700")) * D("25") / M,
        ),
    ),
    Case(
        "advisor-iteration-priced-at-its-own-model",
        "claude-sonnet-4-6",
        message(
            "claude-sonnet-4-6",
            input_tokens=500,
            cache_creation_input_tokens=0,
            cache_read_input_tokens=15000,
            output_tokens=350,
            iterations=[
                {
                    "type": "message",
                    "input_tokens": 3000,
                    "cache_creation_input_tokens": 2000,
                    "cache_read_input_tokens": 10000,
                    "cache_creation": split(2000, 0),
                    "output_tokens": 200,
                },
                {
                    "type": "advisor_message",
                    "model": "claude-opus-4-8",
                    "input_tokens": 15000,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": 900,
                },
                {
                    "type": "message",
                    "input_tokens": 500,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 15000,
                    "output_tokens": 350,
                },
            ],
        ),
        total=D("0.13125"),
        # Sonnet 4.6 for the two message iterations, Opus 4.8 ($5/$25) for the advisor
        amounts=Amounts(
            input=(D("3000") + D("500")) * D("3") / M + D("15000") * D("5") / M,
            w5=D("2000") * D("3.75") / M,
            read=(D("10000") + D("15000")) * D("0.30") / M,
            output=(D("200") + D("350")) * D("15") / M + D("900") * D("25") / M,
        ),
    ),
    Case(
        "server-tool-loop-iterations-each-priced",
        "claude-sonnet-5",
        message(
            "claude-sonnet-5",
            input_tokens=2000,
            cache_creation_input_tokens=0,
            cache_read_input_tokens=4000,
            output_tokens=400,
            server_tool_use={"web_search_requests": 2, "web_fetch_requests": 0},
            iterations=[
                {
                    "type": "message",
                    "input_tokens": 900,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": 60,
                },
                {
                    "type": "message",
                    "input_tokens": 3100,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 900,
                    "output_tokens": 80,
                },
                {
                    "type": "message",
                    "input_tokens": 2000,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 4000,
                    "output_tokens": 400,
                },
            ],
        ),
        total=D("0.03838"),
        amounts=Amounts(
            input=(D("900") + D("3100") + D("2000")) * D("2") / M,
            read=(D("900") + D("4000")) * D("0.20") / M,
            output=(D("60") + D("80") + D("400")) * D("10") / M,
            tools=2 * D("10") / 1000,
        ),
    ),
    # --- fast mode (§2.5): Opus 5 / 4.8 at $10/$50, Opus 4.6 at $30/$150; cache scaled alike --
    Case(
        "fast-opus-5",
        "claude-opus-5",
        message(
            "claude-opus-5",
            input_tokens=2000,
            cache_creation_input_tokens=4000,
            cache_read_input_tokens=20000,
            cache_creation=split(1000, 3000),
            output_tokens=1000,
            speed="fast",
        ),
        total=D("0.1625"),
        amounts=Amounts(
            input=D("2000") * D("10") / M,
            w5=D("1000") * D("10") * D("1.25") / M,
            w1=D("3000") * D("10") * D("2") / M,
            read=D("20000") * D("10") * D("0.1") / M,
            output=D("1000") * D("50") / M,
        ),
        mods=("fast",),
    ),
    Case(
        "fast-opus-4-6",
        "claude-opus-4-6",
        message(
            "claude-opus-4-6",
            input_tokens=1000,
            cache_creation_input_tokens=0,
            cache_read_input_tokens=50000,
            output_tokens=2000,
            speed="fast",
        ),
        total=D("0.48"),
        amounts=Amounts(
            input=D("1000") * D("30") / M,
            read=D("50000") * D("30") * D("0.1") / M,
            output=D("2000") * D("150") / M,
        ),
        mods=("fast",),
    ),
    Case(
        "fast-opus-4-8-claude-code-line",
        "claude-opus-4-8",
        cc_line(
            "claude-opus-4-8",
            input_tokens=5,
            cache_creation_input_tokens=1000,
            cache_read_input_tokens=30000,
            cache_creation=split(0, 1000),
            output_tokens=300,
            service_tier="standard",
            speed="fast",
        ),
        total=D("0.06505"),
        amounts=Amounts(
            input=D("5") * D("10") / M,
            w1=D("1000") * D("10") * D("2") / M,
            read=D("30000") * D("10") * D("0.1") / M,
            output=D("300") * D("50") / M,
        ),
        mods=("fast",),
    ),
    Case(
        "fast-and-us-geo",
        "claude-opus-5",
        usage(input_tokens=1000, output_tokens=1000, speed="fast", inference_geo="us"),
        total=D("0.066"),
        amounts=Amounts(
            input=D("1000") * D("10") * D("1.1") / M,
            output=D("1000") * D("50") * D("1.1") / M,
        ),
        mods=("fast", "geo_us"),
    ),
    # --- inference_geo "us": x1.1 on 4.6+, ignored on older models (§2.5) --------------------
    Case(
        "us-geo-opus-4-6",
        "claude-opus-4-6",
        message(
            "claude-opus-4-6",
            input_tokens=10000,
            cache_creation_input_tokens=2000,
            cache_read_input_tokens=5000,
            cache_creation=split(2000, 0),
            output_tokens=800,
            inference_geo="us",
        ),
        total=D("0.09350"),
        amounts=Amounts(
            input=D("10000") * D("5") * D("1.1") / M,
            w5=D("2000") * D("6.25") * D("1.1") / M,
            read=D("5000") * D("0.50") * D("1.1") / M,
            output=D("800") * D("25") * D("1.1") / M,
        ),
        mods=("geo_us",),
    ),
    Case(
        "us-geo-sonnet-5-1h",
        "claude-sonnet-5",
        usage(
            input_tokens=1000,
            cache_creation_input_tokens=1000,
            cache_read_input_tokens=0,
            cache_creation=split(0, 1000),
            output_tokens=100,
            inference_geo="us",
        ),
        total=D("0.0077"),
        amounts=Amounts(
            input=D("1000") * D("2") * D("1.1") / M,
            w1=D("1000") * D("4") * D("1.1") / M,
            output=D("100") * D("10") * D("1.1") / M,
        ),
        mods=("geo_us",),
    ),
    Case(
        "us-geo-ignored-on-opus-4-5",
        "claude-opus-4-5-20251101",
        message(
            "claude-opus-4-5-20251101",
            input_tokens=10000,
            output_tokens=800,
            inference_geo="us",
        ),
        total=D("0.07"),
        amounts=Amounts(input=D("10000") * D("5") / M, output=D("800") * D("25") / M),
    ),
    Case(
        "global-geo-no-surcharge",
        "claude-opus-4-7",
        message("claude-opus-4-7", input_tokens=10000, output_tokens=800, inference_geo="global"),
        total=D("0.07"),
        amounts=Amounts(input=D("10000") * D("5") / M, output=D("800") * D("25") / M),
    ),
    # --- server tools: web search $10 per 1,000 requests; web fetch costs tokens only ---------
    Case(
        "web-search-and-fetch",
        "claude-sonnet-4-6",
        message(
            "claude-sonnet-4-6",
            input_tokens=8000,
            cache_creation_input_tokens=0,
            cache_read_input_tokens=0,
            output_tokens=600,
            server_tool_use={"web_search_requests": 3, "web_fetch_requests": 2},
        ),
        total=D("0.063"),
        amounts=Amounts(
            input=D("8000") * D("3") / M,
            output=D("600") * D("15") / M,
            tools=3 * D("10") / 1000,
        ),
    ),
    # --- every family's own read price from the table (not a fixed 0.1x) ----------------------
    *[
        Case(
            f"read-price-{model}",
            model,
            usage(
                input_tokens=100,
                cache_creation_input_tokens=0,
                cache_read_input_tokens=1000000,
                output_tokens=100,
            ),
            total=D(total),
            amounts=Amounts(
                input=D("100") * D(inp) / M,
                read=D("1000000") * D(read) / M,
                output=D("100") * D(out) / M,
            ),
        )
        for model, inp, read, out, total in [
            ("claude-opus-4-1", "15", "1.50", "75", "1.5090"),
            ("claude-opus-4-0", "15", "1.50", "75", "1.5090"),
            ("claude-opus-4-7", "5", "0.50", "25", "0.5030"),
            ("claude-opus-5-5", "4", "0.20", "20", "0.2024"),  # 0.05x input
            ("claude-3-7-sonnet-latest", "3", "0.30", "15", "0.3018"),
            ("claude-sonnet-5", "2", "0.20", "10", "0.2012"),
            ("claude-sonnet-5-5", "2", "0.20", "10", "0.2012"),
            ("claude-3-haiku-20240307", "0.25", "0.03", "1.25", "0.030150"),
            ("claude-3-5-haiku-latest", "0.80", "0.08", "4", "0.08048"),
            ("claude-fable-5", "10", "1", "50", "1.006"),
            ("claude-fable-5-1", "10", "0.25", "50", "0.256"),  # 0.025x input
            ("claude-mythos-5", "10", "1", "50", "1.006"),
        ]
    ],
    # --- aliases, dated ids, provider-decorated ids -------------------------------------------
    Case(
        "bedrock-profile-id",
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        message(
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0", input_tokens=1000, output_tokens=100
        ),
        total=D("0.0045"),
        amounts=Amounts(input=D("1000") * D("3") / M, output=D("100") * D("15") / M),
    ),
    Case(
        "bedrock-global-profile-id",
        "global.anthropic.claude-opus-4-6-v1",
        usage(input_tokens=1000, output_tokens=100),
        total=D("0.0075"),
        amounts=Amounts(input=D("1000") * D("5") / M, output=D("100") * D("25") / M),
    ),
    Case(
        "vertex-snapshot-id",
        "claude-haiku-4-5@20251001",
        message("claude-haiku-4-5@20251001", input_tokens=1000, output_tokens=100),
        total=D("0.0015"),
        amounts=Amounts(input=D("1000") * D("1") / M, output=D("100") * D("5") / M),
    ),
    Case(
        "claude-code-1m-marker",
        "claude-opus-4-8[1m]",
        cc_line(
            "claude-opus-4-8[1m]",
            input_tokens=10,
            cache_creation_input_tokens=20000,
            cache_read_input_tokens=300000,
            cache_creation=split(0, 20000),
            output_tokens=500,
        ),
        total=D("0.36255"),
        # no long-context premium on 4.6+ models, even at 320k input
        amounts=Amounts(
            input=D("10") * D("5") / M,
            w1=D("20000") * D("10") / M,
            read=D("300000") * D("0.50") / M,
            output=D("500") * D("25") / M,
        ),
    ),
    # --- unpriced: never $0 -------------------------------------------------------------------
    Case(
        "unknown-model-is-unpriced",
        "claude-opus-9",
        message("claude-opus-9", input_tokens=1000, output_tokens=100),
        total=None,
        unpriced="not in the model table",
    ),
    Case(
        "known-model-without-prices-is-unpriced",
        "claude-mythos-preview",
        usage(input_tokens=1000, output_tokens=100),
        total=None,
        unpriced="no published price",
    ),
    Case(
        "advisor-on-unknown-model-is-unpriced",
        "claude-sonnet-4-6",
        message(
            "claude-sonnet-4-6",
            input_tokens=10,
            output_tokens=10,
            iterations=[
                {
                    "type": "message",
                    "input_tokens": 10,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": 10,
                },
                {
                    "type": "advisor_message",
                    "model": "claude-advisor-9",
                    "input_tokens": 10,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": 10,
                },
            ],
        ),
        total=None,
        unpriced="'claude-advisor-9'",
    ),
    # --- Claude Code transcript lines (§10.2) -------------------------------------------------
    Case(
        "claude-code-real-example-1h",
        "claude-opus-4-5-20251101",
        cc_line(
            "claude-opus-4-5-20251101",
            input_tokens=2,
            cache_creation_input_tokens=10408,
            cache_read_input_tokens=14265,
            cache_creation=split(0, 10408),
            output_tokens=1,
            service_tier="standard",
            inference_geo="not_available",
        ),
        total=D("0.1112475"),
        amounts=Amounts(
            input=D("2") * D("5") / M,
            w1=D("10408") * D("10") / M,
            read=D("14265") * D("0.50") / M,
            output=D("1") * D("25") / M,
        ),
    ),
    Case(
        "claude-code-5m-writes-with-thinking",
        "claude-sonnet-4-6",
        cc_line(
            "claude-sonnet-4-6",
            input_tokens=4,
            cache_creation_input_tokens=3500,
            cache_read_input_tokens=61000,
            cache_creation=split(3500, 0),
            output_tokens=900,
            output_tokens_details={"thinking_tokens": 600},
            service_tier="standard",
        ),
        total=D("0.044937"),
        # thinking is inside output_tokens: billed once, as output
        amounts=Amounts(
            input=D("4") * D("3") / M,
            w5=D("3500") * D("3.75") / M,
            read=D("61000") * D("0.30") / M,
            output=D("900") * D("15") / M,
        ),
    ),
    # --- zero usage: a known model and no tokens cost exactly $0 --------------------------------
    Case(
        "zero-usage",
        "claude-sonnet-4-6",
        usage(
            input_tokens=0,
            cache_creation_input_tokens=0,
            cache_read_input_tokens=0,
            output_tokens=0,
        ),
        total=D("0"),
        amounts=Amounts(),
    ),
]

CASE_IDS = [c.name for c in CASES]


def parse(case: Case) -> Usage:
    """The usage of a case's document, read the way its shape is read."""
    doc = case.doc
    if doc.shape == "usage":
        return Usage.from_wire(doc.payload, strict=True)
    if doc.shape == "message":
        return usage_from_message(doc.payload, strict=True)
    if doc.shape == "batch_result":
        u = usage_from_batch_result(doc.payload)
        assert u is not None
        return u
    if doc.shape == "claude_code_line":
        u = usage_from_claude_code_line(doc.payload)
        assert u is not None
        return u
    folded = StreamUsage()
    for event in doc.payload:
        folded.feed(event)
    assert folded.finished
    return folded.usage(strict=True)


def price(case: Case) -> CostBreakdown | Unpriced:
    return cost(parse(case), case.model, table=TABLE, batch=True if case.batch else None)


def by_name(name: str) -> Case:
    return next(c for c in CASES if c.name == name)


def test_the_suite_is_big_enough_and_names_are_unique() -> None:
    assert len(CASES) >= 40
    assert len(set(CASE_IDS)) == len(CASE_IDS)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_documents_are_what_the_official_sdk_parses(case: Case) -> None:
    """The cases are real wire shapes: the SDK's own types accept every document."""
    doc = case.doc
    if doc.shape == "stream":
        # ping is not a message event: the SDK's stream reader drops it before parsing
        sent = [e for e in doc.payload if e["type"] != "ping"]
        events = TypeAdapter(list[BetaRawMessageStreamEvent]).validate_python(sent)
        assert events[0].type == "message_start"
        return
    if doc.shape == "batch_result":
        line = MessageBatchIndividualResponse.model_validate(doc.payload)
        assert line.result.type == "succeeded"
    message_json = {
        "usage": _message(case.model, doc.payload),
        "message": doc.payload,
        "batch_result": doc.payload["result"]["message"] if "result" in doc.payload else None,
        "claude_code_line": doc.payload.get("message"),
    }[doc.shape]
    msg = BetaMessage.model_validate(message_json)
    assert msg.model == case.model


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_hand_totals_add_up(case: Case) -> None:
    """The hand-written total is the sum of the hand-written amounts (a check on the table)."""
    if case.total is None:
        assert case.amounts is None
        return
    assert case.amounts is not None
    assert case.amounts.total == case.total


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_cost_matches_the_hand_computation(case: Case) -> None:
    c = price(case)
    if case.total is None:
        assert isinstance(c, Unpriced), f"{case.name} must be unpriced, got {c}"
        assert c.total_usd is None
        assert case.unpriced in c.reason
        return
    assert isinstance(c, CostBreakdown), c
    assert case.amounts is not None
    a = case.amounts
    got = (
        c.input_usd,
        c.cache_write_5m_usd,
        c.cache_write_1h_usd,
        c.cache_read_usd,
        c.output_usd,
        c.server_tools_usd,
    )
    assert got == (a.input, a.w5, a.w1, a.read, a.output, a.tools)
    assert c.total_usd == case.total
    assert c.modifiers == case.mods
    assert all(type(v) is D for v in got)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_ttl_split_is_known_unless_the_breakdown_was_missing(case: Case) -> None:
    assert parse(case).ttl_split_known is case.ttl_known


# ---------------------------------------------------------------------- other tools' failures
# users-and-peers.md item 1: "cache accounting is wrong almost everywhere". One test each.


def test_litellm_9812_cache_writes_are_not_counted_twice() -> None:
    """Writes are billed once, at the write price: input_tokens does not contain them."""
    case = by_name("docs-first-call-writes-without-split")
    c = price(case)
    assert isinstance(c, CostBreakdown)
    assert c.input_usd == D("21") * D("3") / M  # not (21 + 188086) x $3
    assert c.cache_write_5m_usd == D("188086") * D("3.75") / M
    assert c.total_usd == D("0.7112805")


def test_litellm_11789_stream_cache_reads_are_not_priced_as_input() -> None:
    """On the streaming path, 150k cache reads at $0.50, not at Opus 4.6's $5 input price."""
    c = price(by_name("stream-reads-not-priced-as-input"))
    assert isinstance(c, CostBreakdown)
    assert c.cache_read_usd == D("150000") * D("0.50") / M
    assert c.input_usd == D("3") * D("5") / M
    wrong = (D("150003") * D("5") + D("400") * D("25")) / M
    assert wrong / c.total_usd > 8  # what pricing reads as input would have overstated


def test_litellm_11364_cache_read_discount_is_applied() -> None:
    c = price(by_name("docs-second-call-reads"))
    assert isinstance(c, CostBreakdown)
    assert c.cache_read_usd == D("188086") * D("0.30") / M
    assert c.cache_read_usd * 10 == D("188086") * D("3") / M


def test_helicone_5606_writes_without_the_ttl_breakdown_are_not_dropped() -> None:
    for name in ("missing-breakdown-all-5m", "breakdown-null-all-5m"):
        case = by_name(name)
        u = parse(case)
        assert not u.ttl_split_known
        assert u.cache_write_5m_tokens == case.doc.payload["cache_creation_input_tokens"]
        c = price(case)
        assert isinstance(c, CostBreakdown)
        assert c.cache_write_5m_usd > 0


def test_1h_ttl_is_priced_at_twice_input_not_ignored() -> None:
    """The §10.2 transcript line writes 10,408 tokens at 1h: $10/MTok on Opus 4.5, not $6.25.

    Pricing them at 5m under-reports this call by about 30%.
    """
    c = price(by_name("claude-code-real-example-1h"))
    assert isinstance(c, CostBreakdown)
    assert c.cache_write_1h_usd == D("10408") * D("10") / M
    assert c.cache_write_5m_usd == 0
    as_5m = c.total_usd - c.cache_write_1h_usd + D("10408") * D("6.25") / M
    assert 1 - as_5m / c.total_usd > D("0.3")


def test_stream_deltas_are_cumulative_never_summed() -> None:
    u = parse(by_name("stream-last-delta-wins"))
    assert u.output_tokens == 510  # not 5 + 120 + 510 (or + message_start's 1)
    u = parse(by_name("stream-delta-carries-cumulative-input"))
    assert (u.input_tokens, u.web_search_requests) == (10682, 1)  # not 10 + 10682 + 10682


def test_server_tool_iterations_are_each_priced_not_once() -> None:
    """A server-tool loop samples three times; the top level shows only the last sampling."""
    case = by_name("server-tool-loop-iterations-each-priced")
    c = price(case)
    assert isinstance(c, CostBreakdown)
    top = case.doc.payload["usage"]
    once = (
        D(top["input_tokens"]) * D("2")
        + D(top["cache_read_input_tokens"]) * D("0.20")
        + D(top["output_tokens"]) * D("10")
    ) / M + D("0.02")
    assert c.total_usd == D("0.03838")
    assert c.total_usd > once


def test_compaction_bills_the_iterations_not_the_top_level() -> None:
    c = price(by_name("compaction-iterations-summed-top-level-ignored"))
    assert isinstance(c, CostBreakdown)
    assert c.input_usd == D("164000") * D("5") / M  # compaction's 160k input is billed


def test_litellm_33068_a_model_missing_from_the_table_is_never_zero() -> None:
    """users-and-peers.md item 14: stale price tables priced new models at $0."""
    for name in ("unknown-model-is-unpriced", "known-model-without-prices-is-unpriced"):
        c = price(by_name(name))
        assert isinstance(c, Unpriced)
        assert c.total_usd is None
