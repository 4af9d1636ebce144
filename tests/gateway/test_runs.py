"""Runs: by a header, Claude Code's session, or prefix continuity; sub-agents as children."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from tests.emulator.harness import TEST_KEY
from tests.gateway.conftest import GatewayHarness
from tests.pipeline.test_founding_example import prose

pytestmark = pytest.mark.anyio
MODEL = "claude-sonnet-4-6"
HEADERS = {"x-api-key": TEST_KEY, "anthropic-version": "2023-06-01"}
EPHEMERAL = {"type": "ephemeral"}


def req(text: str, *, system: str = "Be brief.", **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 16,
        "system": system,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


async def post(gw: GatewayHarness, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    async with gw.http() as http:
        r = await http.post("/v1/messages?beta=true", json=body, headers={**HEADERS, **headers})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_a_run_header_names_the_run_and_a_subagent_header_makes_a_child(
    gw: GatewayHarness,
) -> None:
    await post(gw, req("a"), **{"x-tokenomy-run": "triage-42"})
    await post(gw, req("b"), **{"x-tokenomy-run": "triage-42"})
    await post(gw, req("c"), **{"x-tokenomy-run": "triage-42", "x-tokenomy-subagent": "researcher"})
    await post(gw, req("d"), **{"x-tokenomy-run": "other"})
    a, b, c, d = gw.sink.calls
    assert a.run_id == b.run_id != c.run_id
    runs = gw.sink.runs
    assert runs[a.run_id].external_id == "triage-42" and runs[a.run_id].source == "gateway"
    assert runs[c.run_id].parent_run_id == a.run_id and runs[c.run_id].name == "researcher"
    assert d.run_id not in (a.run_id, c.run_id)


async def test_claude_code_sessions_from_the_header_or_metadata_user_id(gw: GatewayHarness) -> None:
    sid = "3f1c2a9e-0000-4000-8000-000000000001"
    user_id = json.dumps({"device_id": "d" * 64, "account_uuid": "", "session_id": sid})
    await post(gw, req("one"), **{"x-claude-code-session-id": sid})
    await post(gw, req("two", metadata={"user_id": user_id}))
    # a sub-agent of that session: its own system prompt and tools
    sub = req(
        "look around",
        system="You are a file search specialist.",
        tools=[{"name": "Glob", "input_schema": {"type": "object"}}],
    )
    await post(gw, sub, **{"x-claude-code-session-id": sid})
    one, two, three = gw.sink.calls
    assert one.run_id == two.run_id != three.run_id
    main = gw.sink.runs[one.run_id]
    assert main.external_id == sid and main.tags == {"client": "claude-code"}
    child = gw.sink.runs[three.run_id]
    assert child.parent_run_id == one.run_id and child.name == "subagent"


async def test_the_run_registry_is_bounded_and_idle_runs_are_ended(
    make_gateway: Callable[..., GatewayHarness],
) -> None:
    gw = make_gateway(max_runs=3, run_idle_s=600)
    for i in range(5):
        await post(gw, req(f"conversation {i}"))
    assert len(gw.gateway.runs) == 3
    ended = [r for r in gw.sink.runs.values() if r.ended_at is not None]
    assert len(ended) == 2  # the two least recently used were ended and forgotten
    gw.emulator.clock.advance(3600)
    await post(gw, req("later"))
    assert len(gw.gateway.runs) <= 2
    assert all(gw.pipeline.get_run(r.run_id) is None for r in ended)


def claude_code_turns(n: int) -> list[dict[str, Any]]:
    """Requests shaped like Claude Code's: its 3 system blocks and 3 breakpoints, tool turns."""
    tools = [
        {
            "name": f"Tool{i}",
            "description": prose(300, seed=i),
            "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
        }
        for i in range(8)
    ]
    system = [
        {
            "type": "text",
            "text": "x-anthropic-billing-header: cc_version=2.1.197.a1b; cc_entrypoint=cli;",
        },
        {"type": "text", "text": "You are Claude Code.", "cache_control": EPHEMERAL},
        {"type": "text", "text": prose(2500, seed=99), "cache_control": EPHEMERAL},
    ]
    history: list[dict[str, Any]] = []
    out = []
    for i in range(n):
        if i == 0:
            last = {
                "role": "user",
                "content": [{"type": "text", "text": "Fix the bug.", "cache_control": EPHEMERAL}],
            }
        else:
            last = {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": f"toolu_{i}",
                        "content": prose(400, seed=i),
                        "is_error": False,
                        "cache_control": EPHEMERAL,
                    }
                ],
            }
        out.append(
            {
                "model": MODEL,
                "max_tokens": 32,
                "system": system,
                "tools": tools,
                "messages": [*history, last],
            }
        )
        # On the next turn Claude Code sends this message again without its marker.
        plain = {
            **last,
            "content": [
                {k: v for k, v in b.items() if k != "cache_control"} for b in last["content"]
            ],
        }
        if i == 0:
            plain = {"role": "user", "content": "Fix the bug."}
        history += [
            plain,
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": f"Step {i}."},
                    {
                        "type": "tool_use",
                        "id": f"toolu_{i + 1}",
                        "name": "Tool1",
                        "input": {"q": str(i)},
                    },
                ],
            },
        ]
    return out


async def _session(gw: GatewayHarness, turns: list[dict[str, Any]], gaps_s: list[float]) -> Any:
    for body, gap in zip(turns, gaps_s, strict=True):
        gw.emulator.clock.advance(gap)
        await post(gw, body, **{"x-claude-code-session-id": "sess-1"})
    [run_id] = {c.run_id for c in gw.sink.calls}
    run = gw.pipeline.get_run(run_id)
    assert run is not None
    return run.summary()


@pytest.mark.parametrize(
    "gaps",
    [
        pytest.param([0, 20, 40, 30, 100, 10, 20, 200, 15, 30, 5, 5], id="active"),
        # idle gaps beyond the 5-minute TTL
        pytest.param(
            [0, 20, 40, 30, 400, 10, 20, 380, 15, 30, 600, 10, 20, 420, 5, 10], id="idle-gaps"
        ),
        # two idle gaps just before the session ends: nothing to gain, nothing may be lost
        pytest.param([0, 20, 40, 30, 10, 20, 15, 30, 10, 400, 10, 420, 5], id="idle-at-the-end"),
    ],
)
async def test_optimize_never_caches_worse_than_claude_codes_own_breakpoints(
    make_gateway: Callable[..., GatewayHarness], gaps: list[float]
) -> None:
    turns = claude_code_turns(len(gaps))
    observe = await _session(make_gateway(mode="observe"), turns, gaps)
    optimize = await _session(make_gateway(mode="optimize"), turns, gaps)
    assert observe.calls == optimize.calls == len(gaps)
    assert observe.cache_efficiency is not None and optimize.cache_efficiency is not None
    assert optimize.cache_efficiency >= observe.cache_efficiency
    assert optimize.cost_usd <= observe.cost_usd
    assert optimize.cost_usd > Decimal(0)


async def test_idle_runs_hibernate_and_wake_up_as_the_same_run(
    make_gateway: Callable[..., GatewayHarness],
) -> None:
    gw = make_gateway(run_hibernate_s=60, run_idle_s=3600)
    await post(gw, req("first"), **{"x-tokenomy-run": "long-lived"})
    run = gw.pipeline.get_run(gw.sink.calls[0].run_id)
    assert run is not None and run.state.previous is not None
    gw.emulator.clock.advance(120)
    await post(gw, req("someone else"))  # any request sweeps
    assert run.state.previous is None  # hibernated: its copy of the last request is gone
    assert gw.gateway.runs.active == 1 and len(gw.gateway.runs) == 2
    await post(gw, req("second"), **{"x-tokenomy-run": "long-lived"})
    assert gw.sink.calls[-1].run_id == run.run_id  # woken up: still the same run
    assert run.summary().calls == 2
