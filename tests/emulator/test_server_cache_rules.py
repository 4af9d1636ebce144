"""Prompt-cache rules beyond hit/miss: invalidation (§1.7), automatic caching (§1.4), the
request lifecycle (commit/abort), scopes, count_tokens, batches and real-client shapes.

Each docstring names the rule in ``shared/reference/anthropic-api.md`` (section and bullet).
"""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

import pytest

from tests.emulator.test_caching import (
    EPH,
    EPH_1H,
    HAIKU45,
    OPUS5,
    OPUS48,
    assistant,
    breakpoint_tokens,
    marked,
    reads,
    req,
    run,
    text,
    tool,
    total,
    user,
    words,
    writes,
)
from tokenomy.data import builtin_table
from tokenomy.emulator._prompt import render
from tokenomy.emulator.server import ApiError, ServerModel


@pytest.fixture
def m() -> ServerModel:
    return ServerModel()


def png(width: int, height: int) -> str:
    """A real (tiny-bodied) PNG of the given size, base64."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    raw = b"".join(b"\x00" + b"\x00" * width for _ in range(height))
    blob = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
    return base64.b64encode(blob + chunk(b"IEND", b"")).decode()


def three_levels(**extra: Any) -> tuple[dict[str, Any], list[int]]:
    """A request with a breakpoint on each level: tools, system, messages (~1.2k tokens each)."""
    tools = [tool("alpha"), tool("beta", EPH, desc=words(1200))]
    system = [text(1200, EPH)]
    messages = [user(text(1200, EPH)), assistant(text(3)), user(text(4))]
    body = req(messages, tools=tools, system=system, **extra)
    return body, breakpoint_tokens(body)


def level_read(m: ServerModel, before: dict[str, Any], after: dict[str, Any]) -> int:
    run(m, before)
    return reads(run(m, after, now_s=1))


# ---------------------------------------------------------------- invalidation (§1.7)


def test_tool_change_invalidates_everything(m: ServerModel) -> None:
    """§1.7 row "Tool definitions (name/description/schema, order)": tools, system and
    messages caches are all invalid."""
    body, _ = three_levels()
    changed = {**body, "tools": [tool("alpha", desc="changed"), body["tools"][1]]}
    assert level_read(m, body, changed) == 0


def test_tool_order_change_invalidates_everything(m: ServerModel) -> None:
    """§1.7 row "Tool definitions (… order)"."""
    body, _ = three_levels()
    swapped = {**body, "tools": [body["tools"][1], body["tools"][0]]}
    assert level_read(m, body, swapped) == 0


def test_system_change_keeps_tools_cache(m: ServerModel) -> None:
    """§1.3 "A change at one level invalidates that level and every later level": a new
    system prompt reads the tools entry only."""
    body, (tools_bp, _, _) = three_levels()
    changed = {**body, "system": [text(1200, EPH)]}
    assert level_read(m, body, changed) == tools_bp


def test_message_change_keeps_tools_and_system(m: ServerModel) -> None:
    """§1.3 prefix order: a different first message still reads tools + system."""
    body, (_, system_bp, _) = three_levels()
    changed = {**body, "messages": [user(text(1200, EPH)), *body["messages"][1:]]}
    assert level_read(m, body, changed) == system_bp


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({}, {"tool_choice": {"type": "any"}}),
        ({"tool_choice": {"type": "auto"}}, {"tool_choice": {"type": "tool", "name": "alpha"}}),
        (
            {"tool_choice": {"type": "auto"}},
            {"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}},
        ),
    ],
)
def test_tool_choice_change_invalidates_messages_only(
    m: ServerModel, before: dict[str, Any], after: dict[str, Any]
) -> None:
    """§1.7 row "`tool_choice`; `disable_parallel_tool_use`": tools and system kept."""
    body, (_, system_bp, _) = three_levels(**before)
    changed = {**body, **after}
    assert level_read(m, body, changed) == system_bp


def test_omitted_tool_choice_is_auto(m: ServerModel) -> None:
    """§8 "`{"type":"auto"}` (default when tools are given)": sending the default is no change."""
    body, (_, _, msg_bp) = three_levels()
    assert level_read(m, body, {**body, "tool_choice": {"type": "auto"}}) == msg_bp


@pytest.mark.parametrize(
    "after",
    [
        {"thinking": {"type": "enabled", "budget_tokens": 2048}, "max_tokens": 4096},
        {"thinking": {"type": "adaptive"}},
    ],
)
def test_thinking_change_invalidates_messages_only(m: ServerModel, after: dict[str, Any]) -> None:
    """§1.7 row "Thinking config (mode, `budget_tokens`)": messages invalid."""
    body, (_, system_bp, _) = three_levels()
    assert level_read(m, body, {**body, **after}) == system_bp


def test_thinking_budget_change_invalidates_messages(m: ServerModel) -> None:
    """§1.7 row "Thinking config (mode, `budget_tokens`)"."""
    body, (_, system_bp, _) = three_levels(
        thinking={"type": "enabled", "budget_tokens": 2048}, max_tokens=8000
    )
    changed = {**body, "thinking": {"type": "enabled", "budget_tokens": 4096}}
    assert level_read(m, body, changed) == system_bp


def test_effort_change_invalidates_messages_default_is_omitted(m: ServerModel) -> None:
    """§1.7 row "`output_config.effort` (explicitly sending the default = omitting it)"."""
    body, (_, system_bp, msg_bp) = three_levels()
    assert level_read(m, body, {**body, "output_config": {"effort": "high"}}) == msg_bp
    assert level_read(m, body, {**body, "output_config": {"effort": "low"}}) == system_bp


def test_image_added_invalidates_messages_keeps_system(m: ServerModel) -> None:
    """§1.7 row "Adding or removing images anywhere": messages invalid, tools/system kept."""
    body, (_, system_bp, _) = three_levels()
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": png(8, 8)},
    }
    msgs = [*body["messages"][:-1], user(text(4), image)]
    assert level_read(m, body, {**body, "messages": msgs}) == system_bp


def test_speed_change_invalidates_system_keeps_tools(m: ServerModel) -> None:
    """§1.7 row "`speed` fast vs standard": tools kept, system and messages invalid."""
    body, (tools_bp, _, _) = three_levels()
    assert level_read(m, body, {**body, "speed": "fast"}) == tools_bp


def test_citations_toggle_invalidates_system_keeps_tools(m: ServerModel) -> None:
    """§1.7 row "Web search or web fetch on/off, citations on/off": system + messages invalid."""
    doc = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": words(50)},
    }
    base, _ = three_levels()
    msgs = [
        user(text(1200, EPH)),
        assistant(text(3)),
        user({**doc, "citations": {"enabled": False}}),
    ]
    before = {**base, "messages": msgs}
    cited = [*msgs[:-1], user({**doc, "citations": {"enabled": True}})]
    tools_bp = breakpoint_tokens(before)[0]
    assert level_read(m, before, {**before, "messages": cited}) == tools_bp


def test_model_switch_is_a_separate_cache(m: ServerModel) -> None:
    """§1.3 "Each model has its own cache, so switching models always misses"; §1.7 last row."""
    body, _ = three_levels()
    run(m, body)
    other = run(m, {**body, "model": "claude-sonnet-4-6"}, now_s=1)
    assert reads(other) == 0
    assert writes(other) > 0
    back = run(m, body, now_s=2)
    assert reads(back) == breakpoint_tokens(body)[-1]


def test_alias_and_snapshot_share_a_cache(m: ServerModel) -> None:
    """§2.1 notes: an alias points to a dated snapshot — the same model, the same cache."""
    body = req([user(text(4200, EPH))], model="claude-haiku-4-5")
    run(m, body)
    same = run(m, {**body, "model": "claude-haiku-4-5-20251001"}, now_s=1)
    assert reads(same) == breakpoint_tokens(body)[0]


def test_earlier_thinking_stripped_on_older_models(m: ServerModel) -> None:
    """§1.7 row "Non-tool-result user content on extended-thinking requests": on Haiku the
    thinking of earlier turns is stripped, so later messages miss; Opus 4.5+ keeps it."""
    thinking = {"type": "enabled", "budget_tokens": 1024}

    def conversation(model: str) -> tuple[dict[str, Any], dict[str, Any]]:
        q, think, ans = (
            text(4200),
            {"type": "thinking", "thinking": words(40), "signature": "s"},
            text(5),
        )
        tid = "toolu_think"
        use = {"type": "tool_use", "id": tid, "name": "alpha", "input": {}}
        loop = [
            user(q),
            assistant(think, use),
            user(marked({"type": "tool_result", "tool_use_id": tid, "content": words(30)})),
        ]
        t1 = req(loop, model=model, tools=[tool("alpha")], thinking=thinking, max_tokens=2048)
        plain_result = {
            "type": "tool_result",
            "tool_use_id": tid,
            "content": loop[2]["content"][0]["content"],
        }
        t2 = {
            **t1,
            "messages": [*loop[:2], user(plain_result), assistant(ans), user(marked(text(3)))],
        }
        return t1, t2

    t1, t2 = conversation(HAIKU45)
    run(m, t1)
    assert reads(run(m, t2, now_s=1)) == 0  # the prefix changed at the stripped thinking block
    t1, t2 = conversation(OPUS48)
    run(m, t1)
    assert reads(run(m, t2, now_s=1)) == breakpoint_tokens(t1)[0]


def test_deferred_tools_stay_out_of_the_prefix(m: ServerModel) -> None:
    """§1.7 bullet "Tools loaded with `defer_loading: true` … so the prefix survives"."""
    body, (tools_bp, _, msg_bp) = three_levels()
    more = {**body, "tools": [*body["tools"], {**tool("gamma"), "defer_loading": True}]}
    assert breakpoint_tokens(more)[0] == tools_bp
    assert level_read(m, body, more) == msg_bp


# ---------------------------------------------------------------- automatic caching (§1.4)


def test_automatic_caching_marks_the_last_block_and_moves_forward(m: ServerModel) -> None:
    """§1.1 "Automatic caching … attaches the breakpoint to the last block it can cache and
    moves it forward as the conversation grows"."""
    q, a = text(1500), text(20)
    t1 = req([user(q)], cache_control=EPH)
    first = run(m, t1)
    assert (
        first.cache_creation_5m_tokens == breakpoint_tokens(t1)[0] == total(t1) - first.input_tokens
    )
    t2 = req([user(q), assistant(a), user(text(10))], cache_control=EPH)
    second = run(m, t2, now_s=1)
    assert (reads(second), second.cache_creation_5m_tokens) == (
        breakpoint_tokens(t1)[0],
        breakpoint_tokens(t2)[0] - breakpoint_tokens(t1)[0],
    )


def test_automatic_same_ttl_duplicate_is_a_no_op(m: ServerModel) -> None:
    """§1.4 "If the last block already has an explicit marker with the same TTL, the top-level
    marker does nothing" — it takes no slot: 4 explicit markers still pass."""
    body = req([user(*[text(300, EPH) for _ in range(4)])], cache_control=EPH)
    p = render(body, model=builtin_table().get(OPUS48))
    assert len(p.breakpoints) == 4
    assert not any(bp.automatic for bp in p.breakpoints)


def test_automatic_different_ttl_on_marked_last_block_is_400(m: ServerModel) -> None:
    """§1.4 "With a different TTL the request gets a 400"."""
    body = req([user(text(1500, EPH))], cache_control=EPH_1H)
    with pytest.raises(ApiError) as err:
        m.validate(body, endpoint="messages")
    assert err.value.status == 400
    assert "ttl" in err.value.message


def test_automatic_with_four_explicit_markers_is_400(m: ServerModel) -> None:
    """§1.4 "If there are already 4 explicit markers, the request gets a 400 (no slot left)"."""
    body = req([user(*[text(300, EPH) for _ in range(4)], text(5))], cache_control=EPH)
    with pytest.raises(ApiError, match=r"A maximum of 4 blocks with cache_control .* Found 5\."):
        m.validate(body, endpoint="messages")


def test_automatic_walks_back_past_a_thinking_block(m: ServerModel) -> None:
    """§1.4 "If the last block cannot be a breakpoint, the server walks backward to the nearest
    block that can" (thinking blocks cannot, §1.2)."""
    think = {"type": "thinking", "thinking": words(30), "signature": "sig"}
    body = req([user(text(1500)), assistant(think)], cache_control=EPH)
    p = render(body, model=builtin_table().get(OPUS48))
    assert [bp.index for bp in p.breakpoints] == [0]
    assert writes(run(m, body)) == p.ends[0]


def test_automatic_1h_after_explicit_5m_is_rejected(m: ServerModel) -> None:
    """§1.4 "Pricing, minimum lengths, prefix order … are the same as for explicit
    breakpoints" — so is the TTL order of §1.6."""
    body = req([user(text(1500, EPH), text(5))], cache_control=EPH_1H)
    with pytest.raises(ApiError, match="a ttl='1h' cache_control block must not come after"):
        m.validate(body, endpoint="messages")


# ---------------------------------------------------------------- lifecycle, scope


def test_entries_unreadable_before_commit(m: ServerModel) -> None:
    """§1.3 "A new entry becomes readable only after the first response begins streaming":
    a parallel request sent before that misses (and writes again)."""
    body = req([user(text(1500, EPH))])
    first = m.admit(body, scope="k", now_s=0)
    assert [e["readable"] for e in m.entries(now_s=0)] == [False]
    parallel = m.admit(body, scope="k", now_s=0.5)
    assert reads(parallel) == 0
    assert writes(parallel) > 0
    first.commit()
    parallel.commit()
    assert reads(m.admit(body, scope="k", now_s=1)) == breakpoint_tokens(body)[0]


def test_abort_writes_nothing(m: ServerModel) -> None:
    """§1.3 readable only after the response begins: a request that fails before (a 529, a
    dropped connection) leaves no entry."""
    body = req([user(text(1500, EPH))])
    m.admit(body, scope="k", now_s=0).abort()
    assert m.entries(now_s=0) == []
    assert reads(m.admit(body, scope="k", now_s=1)) == 0


def test_abort_refreshes_nothing_and_commit_is_idempotent(m: ServerModel) -> None:
    """§1.6 refresh on hit belongs to requests that ran: an aborted read does not extend the
    entry; commit() twice counts once, abort() after commit() changes nothing."""
    body = req([user(text(1500, EPH))])
    run(m, body, now_s=0)
    m.admit(body, scope="k", now_s=200).abort()
    assert m.entries(now_s=201)[0]["expires_at_s"] == 300.0
    adm = m.admit(body, scope="k", now_s=250)
    adm.commit()
    adm.commit()
    adm.abort()
    (entry,) = m.entries(now_s=251)
    assert (entry["expires_at_s"], entry["hits"]) == (550.0, 1)


def test_caches_are_isolated_per_scope(m: ServerModel) -> None:
    """§1.3 "Scope: caches are never shared across organizations … per workspace" (per key)."""
    body = req([user(text(1500, EPH))])
    run(m, body, scope="key-a")
    assert reads(run(m, body, scope="key-b", now_s=1)) == 0
    assert reads(run(m, body, scope="key-a", now_s=2)) > 0


def test_count_tokens_ignores_the_cache(m: ServerModel) -> None:
    """§4 "Does not use prompt caching. `cache_control` is accepted but ignored": counting
    neither writes nor reads; its count is the whole prompt."""
    body = req([user(text(1500, EPH))])
    n = m.count_tokens(body)
    assert m.entries(now_s=0) == []
    adm = run(m, body)
    assert reads(adm) == 0
    assert adm.total_input_tokens == n
    assert m.count_tokens(body) == n


def test_role_system_last_message_takes_the_breakpoint(m: ServerModel) -> None:
    """real-clients.md: on a first turn Claude Code's trailing `role: "system"` message is the
    last message and carries the marker; §1.7 "mid-conversation system messages … without
    breaking the cache": the next turn reads it."""
    q = text(1500)
    t1 = req([user(q), {"role": "system", "content": [text(40, EPH)]}])
    run(m, t1)
    sys_msg = {
        "role": "system",
        "content": [{"type": "text", "text": t1["messages"][1]["content"][0]["text"]}],
    }
    t2 = req([user(q), sys_msg, assistant(text(5)), user(text(6, EPH))])
    assert reads(run(m, t2, now_s=1)) == breakpoint_tokens(t1)[0]


def test_batch_requests_share_the_cache_and_bill_as_batch(m: ServerModel) -> None:
    """§3.6 "Caching works in batches" (deterministic here) and §1.9 `service_tier: "batch"`."""
    body = req([user(text(1500, EPH))])
    run(m, body)
    adm = m.admit(body, scope="k", now_s=1, batch=True)
    adm.commit()
    assert reads(adm) == breakpoint_tokens(body)[0]
    assert adm.usage(output_tokens=3, service_tier="batch")["service_tier"] == "batch"


def test_prewarm_with_max_tokens_zero_writes(m: ServerModel) -> None:
    """§1.6 "Cache pre-warming … send `max_tokens: 0`. The prefix is read and written"."""
    body = {**req([user(text(1500, EPH))]), "max_tokens": 0}
    first = run(m, body)
    assert writes(first) == breakpoint_tokens(body)[0]
    assert reads(run(m, {**body, "max_tokens": 10}, now_s=1)) == writes(first)


def test_one_hour_write_refreshed_by_a_5m_marker_keeps_its_ttl(m: ServerModel) -> None:
    """§1.6 "Each hit refreshes it": a hit refreshes the entry with its own TTL (a 5m marker
    reading a 1h entry neither pays nor shortens it)."""
    b1 = req([user(text(1500, EPH_1H))])
    run(m, b1)
    b5 = req([user({**b1["messages"][0]["content"][0], "cache_control": EPH})])
    adm = run(m, b5, now_s=100)
    assert (reads(adm), writes(adm)) == (breakpoint_tokens(b1)[0], 0)
    (entry,) = m.entries(now_s=101)
    assert (entry["ttl"], entry["expires_at_s"]) == ("1h", 3700.0)


def test_usage_is_additive_over_a_conversation(m: ServerModel) -> None:
    """§1.9 "Total input = cache_read_input_tokens + cache_creation_input_tokens + input_tokens"."""
    msgs: list[dict[str, Any]] = [user(text(1300))]
    system = [text(600, EPH)]
    for turn in range(6):
        body = req(msgs, system=system, cache_control=EPH, model=OPUS5)
        adm = run(m, body, now_s=turn * 30)
        assert adm.total_input_tokens == total(body) == m.count_tokens(body)
        if turn:
            assert reads(adm) > 0
        msgs = [*msgs, assistant(text(20)), user(text(15))]
    assert m.stats()["hits"] == 5
