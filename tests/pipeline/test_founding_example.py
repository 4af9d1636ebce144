"""The example the project was founded on, end to end against the emulator.

A 12-turn tool-using run with a ~6,000-token system+tools preamble and ~5,000-token tool
results: caching must cut its cost by at least 70% against the same run sent naively, with a
cache efficiency (ideal / actual) of at least 0.95, and every predicted cache read must match
what the server billed.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from tests.pipeline.conftest import Harness, make_harness
from tokenomy.pipeline import RunSummary

WORDS = [
    "incident",
    "service",
    "latency",
    "error",
    "budget",
    "deploy",
    "rollback",
    "cluster",
    "region",
    "queue",
    "worker",
    "timeout",
    "retry",
    "cache",
    "index",
    "shard",
    "replica",
    "leader",
    "follower",
    "quorum",
    "alert",
    "page",
    "metric",
    "trace",
    "span",
    "log",
    "user",
    "request",
    "response",
    "header",
    "payload",
    "schema",
    "version",
    "migration",
]


def prose(n_words: int, *, seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def preamble() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    tools = [
        {
            "name": f"tool_{i}",
            "description": prose(220, seed=i),
            "input_schema": {
                "type": "object",
                "properties": {"query": {"type": "string", "description": prose(20, seed=100 + i)}},
                "required": ["query"],
            },
        }
        for i in range(8)
    ]
    system = [{"type": "text", "text": prose(1950, seed=7)}]
    return tools, system


async def run_agent(h: Harness, *, optimize: bool, turns: int = 12) -> RunSummary:
    tools, system = preamble()
    client = h.client(optimize=optimize)
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Find the root cause of the outage."}
    ]
    with h.pipeline.start_run("founding", tags={"optimize": str(optimize)}) as run:
        for t in range(turns):
            reply = await client.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=200,
                system=system,
                tools=tools,
                messages=messages,
            )
            assert reply.usage.output_tokens > 0
            messages.append(
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": f"Checking step {t}."},
                        {
                            "type": "tool_use",
                            "id": f"toolu_{t:02d}",
                            "name": "tool_1",
                            "input": {"query": f"q{t}"},
                        },
                    ],
                }
            )
            messages.append(
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": f"toolu_{t:02d}",
                            "content": prose(3300, seed=1000 + t),
                        }
                    ],
                }
            )
            h.advance(20)  # 20 s between turns: well inside the 5-minute TTL
    return run.summary()


@pytest.mark.anyio
async def test_sizes_match_the_founding_example() -> None:
    h = make_harness()
    tools, system = preamble()
    client = h.client()
    count = await client.messages.count_tokens(
        model="claude-sonnet-4-6",
        system=system,
        tools=tools,
        messages=[{"role": "user", "content": "x"}],
    )
    assert 5_500 <= count.input_tokens <= 6_500
    result = await client.messages.count_tokens(
        model="claude-sonnet-4-6", messages=[{"role": "user", "content": prose(3300, seed=1000)}]
    )
    assert 4_500 <= result.input_tokens <= 5_500


@pytest.mark.anyio
async def test_caching_cuts_the_founding_example_by_70_percent() -> None:
    naive = await run_agent(make_harness(), optimize=False)
    h = make_harness()
    cached = await run_agent(h, optimize=True)
    saving = 1 - cached.cost_usd / naive.cost_usd
    assert saving >= Decimal("0.70"), (
        f"saving {saving:.1%}: naive ${naive.cost_usd} cached ${cached.cost_usd}"
    )
    assert cached.cache_efficiency is not None and cached.cache_efficiency >= Decimal("0.95"), (
        cached
    )
    assert cached.predictions_checked == 12
    assert cached.predictions_agree == 12, [c.decisions.get("doctor") for c in h.sink.calls]
    assert naive.cache_read_tokens == 0
