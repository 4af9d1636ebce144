"""The cache planner: placement, limits, TTLs, and that it never changes content."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.core.builders import agent_turns, request, text
from tokenomy.core.anatomy import anatomy
from tokenomy.core.cache_model import CacheModel
from tokenomy.core.cache_plan import (
    PlanHistory,
    PlannerConfig,
    caller_breakpoints,
    choose_ttl,
    is_cacheable,
    plan_cache,
)
from tokenomy.core.canonical import BlockRef, chain
from tokenomy.data import builtin_table

TABLE = builtin_table()
SONNET = TABLE.get("claude-sonnet-4-5")


def plan(
    req: dict[str, Any],
    history: PlanHistory | None = None,
    config: PlannerConfig | None = None,
    min_tokens: int = 1024,
) -> tuple[dict[str, Any], Any]:
    an = anatomy(req, model=SONNET)
    positions = CacheModel().positions(SONNET.id, an)
    return plan_cache(
        req,
        anatomy=an,
        positions=positions,
        min_cacheable_tokens=min_tokens,
        history=history or PlanHistory(),
        config=config or PlannerConfig(),
    )


def markers(req: dict[str, Any]) -> list[tuple[str, str]]:
    an = anatomy(req, model=SONNET)
    return [(str(b.ref), b.ttl) for b in caller_breakpoints(an.chain)]


def test_agent_request_gets_tools_system_and_rolling_breakpoints() -> None:
    req = request(tools=3, messages=agent_turns(2))
    out, p = plan(req)
    assert markers(out) == [
        ("tools[2]", "5m"),
        ("system[0]", "5m"),
        ("messages[4].content[0]", "5m"),
    ]
    assert [b.role for b in p.breakpoints] == ["tools", "system", "rolling"]
    assert p.changed


def test_planner_changes_nothing_but_markers() -> None:
    req = request(tools=3, messages=agent_turns(3))
    before = orjson.dumps(req)
    out, _ = plan(req)
    assert orjson.dumps(req) == before, "the input must not be mutated"
    assert chain(out).head_hex == chain(req).head_hex


def test_string_system_and_content_become_one_marked_text_block() -> None:
    req = request(tools=0, system_chars=0, messages=[{"role": "user", "content": text(9000)}])
    req["system"] = text(6000, seed="s")
    out, _ = plan(req)
    assert out["system"] == [
        {"type": "text", "text": req["system"], "cache_control": {"type": "ephemeral"}}
    ]
    assert out["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert chain(out).head_hex == chain(req).head_hex


def test_caller_breakpoints_are_kept_and_counted() -> None:
    """Claude Code sets system[1], system[2] and the newest block: we add at most one."""
    req = request(tools=4, system_chars=0, messages=agent_turns(1))
    req["system"] = [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.a1f;"},
        {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": text(12000), "cache_control": {"type": "ephemeral"}},
    ]
    last = req["messages"][-1]["content"][-1]
    last["cache_control"] = {"type": "ephemeral"}
    out, p = plan(req)
    assert len(markers(out)) == 4
    assert markers(out)[0] == ("tools[3]", "5m")
    assert any("merged with the caller's" in n for n in p.notes)
    assert sum(1 for b in p.breakpoints if b.role == "caller") == 3


def test_never_more_than_four() -> None:
    req = request(tools=2, messages=agent_turns(12, calls_per_turn=2))
    # an entry deep in history forces an anchor; caller took two slots already
    req["messages"][1]["content"][0]["cache_control"] = {"type": "ephemeral"}
    req["messages"][3]["content"][0]["cache_control"] = {"type": "ephemeral"}
    out, p = plan(req, PlanHistory(entry_indices=frozenset({8})))
    assert len(markers(out)) == 4
    assert any("4-breakpoint limit" in n for n in p.notes)


def test_anchor_when_a_turn_adds_twenty_blocks() -> None:
    """§1.3: the lookback checks 20 positions; a turn of 10 parallel tool calls adds 21."""
    req = request(tools=1, messages=agent_turns(2, calls_per_turn=10, result_chars=400))
    ch = chain(req)
    prev_end = ch.index_of(BlockRef("messages", 2, 0))
    assert prev_end is not None
    _, p = plan(req, PlanHistory(entry_indices=frozenset({prev_end})))
    roles = {b.role: b for b in p.breakpoints}
    assert roles["anchor"].index == prev_end
    assert roles["rolling"].index - prev_end >= 20


def test_no_anchor_when_the_entry_is_within_lookback() -> None:
    req = request(tools=1, messages=agent_turns(3))
    ch = chain(req)
    prev = ch.index_of(BlockRef("messages", 4, 0))
    _, p = plan(req, PlanHistory(entry_indices=frozenset({prev or 0})))
    assert "anchor" not in {b.role for b in p.breakpoints}


def test_breakpoint_below_minimum_is_skipped() -> None:
    req = request(tools=1, system_chars=400, messages=[{"role": "user", "content": "short"}])
    out, p = plan(req, min_tokens=4096)
    assert markers(out) == []
    assert any("< minimum 4096" in n for n in p.notes)


def test_volatile_system_block_is_not_marked() -> None:
    req = request(tools=0, system_chars=0, messages=agent_turns(1))
    req["system"] = [
        {"type": "text", "text": text(8000)},
        {"type": "text", "text": "Current time: 2026-11-22T10:00:00Z"},
    ]
    out, p = plan(req, PlanHistory(volatile=frozenset({BlockRef("system", 1)})))
    assert ("system[0]", "5m") in markers(out)
    assert ("system[1]", "5m") not in markers(out)
    assert any("change every call" in n for n in p.notes)


def test_independent_items_get_no_rolling_breakpoint() -> None:
    """Bulk one-shot calls: a rolling write on each ticket would never be read."""
    req = request(tools=0, messages=[{"role": "user", "content": text(3000)}])
    out, _ = plan(req, PlanHistory(independent_streak=2))
    assert markers(out) == [("system[0]", "5m")]


@dataclass(frozen=True)
class TtlCase:
    gaps: tuple[float, ...]
    expected: str


@pytest.mark.parametrize(
    "case",
    [
        TtlCase((), "5m"),
        TtlCase((30.0, 60.0), "5m"),
        TtlCase((30.0, 420.0), "1h"),
        TtlCase((600.0, 30.0, 20.0), "1h"),
        TtlCase((5000.0,), "5m"),
    ],
)
def test_ttl_follows_the_gaps(case: TtlCase) -> None:
    ttl, reason = choose_ttl(case.gaps, PlannerConfig())
    assert ttl == case.expected, reason


def test_next_to_caller_breakpoints_ours_take_the_callers_ttl() -> None:
    """Ours can then only add reads, never cost; and every 1h stays before every 5m."""
    req = request(tools=2, messages=agent_turns(2))
    req["messages"][1]["content"][0]["cache_control"] = {
        "type": "ephemeral"
    }  # caller 5m in history
    out, _ = plan(req, PlanHistory(gaps_s=(600.0,)))  # a long gap would choose 1h on its own
    assert [ttl for _, ttl in markers(out)] == ["5m"] * len(markers(out))
    req2 = request(tools=2, messages=agent_turns(2))
    req2["messages"][1]["content"][0]["cache_control"] = {"type": "ephemeral", "ttl": "1h"}
    out2, _ = plan(req2)
    ms = markers(out2)
    assert ms[0] == ("tools[1]", "1h") and ms[-1] == ("messages[4].content[0]", "1h")


def test_automatic_mode_sets_the_top_level_marker() -> None:
    req = request(tools=2, messages=agent_turns(1))
    out, p = plan(req, config=PlannerConfig(mode="automatic"))
    assert out["cache_control"] == {"type": "ephemeral"}
    assert markers(out) == []
    assert p.automatic


def test_off_mode_changes_nothing() -> None:
    req = request(tools=2, messages=agent_turns(1))
    out, p = plan(req, config=PlannerConfig(mode="off"))
    assert out == req
    assert not p.changed


# ---------------------------------------------------------------------------- property


def _blocks() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(lambda n: {"type": "text", "text": text(n)}, st.integers(0, 3000)),
        st.just({"type": "thinking", "thinking": "hmm", "signature": "sig"}),
        st.builds(
            lambda n: {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": "A" * n},
            },
            st.integers(1, 50),
        ),
    )


@st.composite
def random_requests(draw: st.DrawFn) -> dict[str, Any]:
    n_tools = draw(st.integers(0, 5))
    n_turns = draw(st.integers(0, 8))
    calls = draw(st.integers(1, 12))
    messages = agent_turns(n_turns, result_chars=draw(st.integers(10, 3000)), calls_per_turn=calls)
    extra = draw(st.lists(_blocks(), max_size=3))
    if extra:
        messages.append({"role": "assistant", "content": extra})
        messages.append({"role": "user", "content": [{"type": "text", "text": "go on"}]})
    if draw(st.booleans()):
        messages.append({"role": "system", "content": "Reminder: be brief."})
    req = request(tools=n_tools, system_chars=draw(st.integers(0, 20000)), messages=messages)
    if draw(st.booleans()):
        req["system"] = text(draw(st.integers(1, 9000)))
    # caller markers on a few random cacheable blocks, 5m or 1h, at most 4, 1h first
    ch = chain(req)
    k = draw(st.integers(0, min(4, len(ch.links))))
    idxs = (
        sorted(
            draw(st.lists(st.integers(0, len(ch.links) - 1), min_size=k, max_size=k, unique=True))
        )
        if ch.links
        else []
    )
    n_1h = draw(st.integers(0, len(idxs)))
    for pos, i in enumerate(idxs):
        ref = ch.links[i].ref
        if not is_cacheable(ch.links[i].block):
            continue
        marker = {"type": "ephemeral", "ttl": "1h"} if pos < n_1h else {"type": "ephemeral"}
        _mark(req, ref, marker)
    return req


def _mark(req: dict[str, Any], ref: BlockRef, marker: dict[str, str]) -> None:
    if ref.segment == "tools":
        req["tools"][ref.index]["cache_control"] = marker
    elif ref.segment == "system":
        if isinstance(req["system"], str):
            req["system"] = [{"type": "text", "text": req["system"]}]
        req["system"][ref.index]["cache_control"] = marker
    else:
        msg = req["messages"][ref.index]
        if isinstance(msg["content"], str):
            msg["content"] = [{"type": "text", "text": msg["content"]}]
        msg["content"][ref.sub or 0]["cache_control"] = marker


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    req=random_requests(),
    gaps=st.lists(st.floats(0, 4000), max_size=4),
    streak=st.integers(0, 3),
    entry=st.integers(0, 200),
)
def test_every_plan_is_valid_and_changes_only_markers(
    req: dict[str, Any], gaps: list[float], streak: int, entry: int
) -> None:
    before = orjson.dumps(req)
    history = PlanHistory(
        gaps_s=tuple(gaps), independent_streak=streak, entry_indices=frozenset({entry})
    )
    out, _ = plan(req, history)
    assert orjson.dumps(req) == before  # input untouched
    an = anatomy(out, model=SONNET)
    bps = caller_breakpoints(an.chain)
    assert len(bps) <= 4
    for b in bps:
        assert is_cacheable(an.chain.links[b.index].block), b
    ttls = [b.ttl for b in bps]
    assert ttls == sorted(ttls, key=lambda t: 0 if t == "1h" else 1), ttls
    # content identical once markers are ignored (a string system may become one text block)
    assert chain(out).head_hex == chain(req).head_hex
    assert orjson.dumps(_normal(req)) == orjson.dumps(_normal(out))


def _normal(req: dict[str, Any]) -> dict[str, Any]:
    """Markers removed, strings as one text block: what the planner may change, undone."""
    out = _strip(req)
    if isinstance(out.get("system"), str):
        out["system"] = [{"type": "text", "text": out["system"]}]
    for m in out["messages"]:
        if isinstance(m["content"], str):
            m["content"] = [{"type": "text", "text": m["content"]}]
    return out
