"""The prefix identity: what makes two prompts share a cached prefix, and what does not."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.core.builders import agent_turns, request
from tokenomy.core.canonical import BlockRef, chain


def heads(req: dict[str, Any]) -> list[str]:
    return [link.prefix_hex for link in chain(req).links]


def test_a_string_and_a_single_text_block_are_the_same_prefix() -> None:
    a = request(messages=[{"role": "user", "content": "hello"}])
    b = copy.deepcopy(a)
    b["messages"][0]["content"] = [
        {"type": "text", "text": "hello", "cache_control": {"type": "ephemeral"}}
    ]
    b["system"] = b["system"][0]["text"]  # a plain-string system
    assert heads(a) == heads(b)


def test_a_string_tool_result_and_a_text_list_are_the_same() -> None:
    base = {"type": "tool_result", "tool_use_id": "t1", "content": "42"}
    a = request(messages=[{"role": "user", "content": [base]}])
    b = request(
        messages=[
            {"role": "user", "content": [{**base, "content": [{"type": "text", "text": "42"}]}]}
        ]
    )
    assert heads(a) == heads(b)


def test_markers_do_not_change_the_prefix_but_key_order_does() -> None:
    a = request()
    b = copy.deepcopy(a)
    b["tools"][0]["cache_control"] = {"type": "ephemeral", "ttl": "1h"}
    assert heads(a) == heads(b)
    c = copy.deepcopy(a)
    c["tools"][0]["input_schema"] = dict(reversed(list(c["tools"][0]["input_schema"].items())))
    assert heads(a)[0] != heads(c)[0]


def test_the_role_is_part_of_the_prefix() -> None:
    a = request(messages=[{"role": "user", "content": "x"}])
    b = request(messages=[{"role": "assistant", "content": "x"}])
    assert heads(a)[-1] != heads(b)[-1]
    assert heads(a)[:-1] == heads(b)[:-1]


def test_level_settings_invalidate_their_level_and_later_only() -> None:
    """§1.7: tool_choice keeps tools and system cached; speed keeps only tools."""
    a = request(messages=agent_turns(1))
    n_tools = len(a["tools"])
    n_pre = n_tools + len(a["system"])
    tc = heads({**a, "tool_choice": {"type": "any"}})
    assert tc[:n_pre] == heads(a)[:n_pre] and tc[n_pre] != heads(a)[n_pre]
    fast = heads({**a, "speed": "fast"})
    assert fast[:n_tools] == heads(a)[:n_tools] and fast[n_tools] != heads(a)[n_tools]
    img = copy.deepcopy(a)
    img["messages"][-1]["content"].append(
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA"}}
    )
    assert heads(img)[:n_pre] == heads(a)[:n_pre] and heads(img)[n_pre] != heads(a)[n_pre]


def test_refs_name_positions() -> None:
    ch = chain(request(messages=agent_turns(1)))
    assert str(ch.links[0].ref) == "tools[0]"
    assert ch.index_of(BlockRef("messages", 2, 0)) is not None
    assert str(BlockRef("messages", 2, 0)) == "messages[2].content[0]"


# ---------------------------------------------------------------------------- reuse


@st.composite
def request_pairs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    prev = request(
        tools=draw(st.integers(0, 4)),
        system_chars=draw(st.integers(0, 3000)),
        messages=agent_turns(draw(st.integers(0, 6)), result_chars=200),
    )
    cur = copy.deepcopy(prev)
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(
            st.sampled_from(["append", "edit", "level", "reorder", "role", "system", "drop"])
        )
        if kind == "append":
            cur["messages"].append({"role": "user", "content": f"more {draw(st.integers(0, 9))}"})
        elif kind == "edit" and cur["messages"]:
            i = draw(st.integers(0, len(cur["messages"]) - 1))
            cur["messages"][i] = {**cur["messages"][i], "content": "changed"}
        elif kind == "level":
            cur["tool_choice"] = {"type": draw(st.sampled_from(["auto", "any"]))}
        elif kind == "reorder" and cur.get("tools"):
            cur["tools"][0] = dict(reversed(list(cur["tools"][0].items())))
        elif kind == "role" and cur["messages"]:
            cur["messages"][0] = {**cur["messages"][0], "role": "assistant"}
        elif kind == "system":
            cur["system"] = [{"type": "text", "text": "other"}]
        elif kind == "drop" and cur["messages"]:
            cur["messages"].pop()
    return prev, cur


@settings(max_examples=300, deadline=None)
@given(pair=request_pairs())
def test_reusing_the_previous_chain_gives_exactly_the_same_hashes(
    pair: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    prev, cur = pair
    fresh = chain(cur)
    reused = chain(cur, previous=chain(prev))
    assert [link.prefix_hash for link in reused.links] == [link.prefix_hash for link in fresh.links]
    assert [link.ref for link in reused.links] == [link.ref for link in fresh.links]
    assert [link.canon for link in reused.links] == [link.canon for link in fresh.links]
