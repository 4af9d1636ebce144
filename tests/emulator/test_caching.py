"""The emulator's prompt cache, rule by rule.

Each test's docstring names the rule it checks in ``shared/reference/anthropic-api.md``
(section and bullet). Expected token counts come from the rendered prompt (``render``): the
tests check *which* prefix is read or written and how it is billed, not the tokenizer.
Virtual time only: ``now_s`` is passed in, nothing sleeps.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tokenomy.data import builtin_table
from tokenomy.emulator._prompt import render
from tokenomy.emulator.server import Admission, ApiError, ServerModel

OPUS48 = "claude-opus-4-8"  # minimum 1,024
OPUS5 = "claude-opus-5"  # minimum 512
HAIKU45 = "claude-haiku-4-5"  # minimum 4,096
EPH = {"type": "ephemeral"}
EPH_1H = {"type": "ephemeral", "ttl": "1h"}

_counter = itertools.count()


def words(n: int) -> str:
    """``n`` distinct letter-only words: ``n`` tokens under the 2023 tokenizer, never repeated."""
    out = []
    for _ in range(n):
        i = next(_counter)
        w = ""
        for _ in range(4):
            w += chr(ord("a") + i % 26)
            i //= 26
        out.append(w)
    return " ".join(out)


def text(n: int, cc: dict[str, str] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": words(n)}
    if cc is not None:
        block["cache_control"] = cc
    return block


def marked(block: dict[str, Any], cc: dict[str, str] = EPH) -> dict[str, Any]:
    return {**block, "cache_control": cc}


def user(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


def assistant(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": list(blocks)}


def tool(name: str, cc: dict[str, str] | None = None, desc: str = "a tool") -> dict[str, Any]:
    t: dict[str, Any] = {
        "name": name,
        "description": desc,
        "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
    if cc is not None:
        t["cache_control"] = cc
    return t


def req(messages: list[dict[str, Any]], *, model: str = OPUS48, **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 64, "messages": messages, **extra}


def breakpoint_tokens(body: dict[str, Any]) -> list[int]:
    """Prefix tokens through each resolved breakpoint, in order."""
    p = render(body, model=builtin_table().get(body["model"]))
    return [p.ends[bp.index] for bp in p.breakpoints]


def total(body: dict[str, Any]) -> int:
    return render(body, model=builtin_table().get(body["model"])).total_tokens


def run(m: ServerModel, body: dict[str, Any], *, now_s: float = 0.0, scope: str = "k") -> Admission:
    adm = m.admit(body, scope=scope, now_s=now_s)
    adm.commit()
    return adm


def reads(adm: Admission) -> int:
    return adm.cache_read_tokens


def writes(adm: Admission) -> int:
    return adm.cache_creation_5m_tokens + adm.cache_creation_1h_tokens


def check_additive(adm: Admission, body: dict[str, Any]) -> None:
    assert adm.total_input_tokens == total(body)


@pytest.fixture
def m() -> ServerModel:
    return ServerModel()


# ---------------------------------------------------------------- hit, miss, writes


def test_first_request_writes_and_identical_second_reads(m: ServerModel) -> None:
    """§1.3 "A write happens only at a breakpoint"; §1.9 example: the 2nd call reads it all."""
    body = req([user(text(1500, EPH)), assistant(text(5)), user(text(5))])
    (bp,) = breakpoint_tokens(body)
    first = run(m, body)
    assert (reads(first), first.cache_creation_5m_tokens, first.input_tokens) == (
        0,
        bp,
        total(body) - bp,
    )
    second = run(m, body, now_s=10)
    assert (reads(second), writes(second), second.input_tokens) == (bp, 0, total(body) - bp)
    check_additive(second, body)


def test_no_breakpoint_no_cache(m: ServerModel) -> None:
    """§1.1: caching is on only through cache_control; without it both counters stay 0."""
    body = req([user(text(3000))])
    for now in (0, 1):
        adm = run(m, body, now_s=now)
        assert (reads(adm), writes(adm), adm.input_tokens) == (0, 0, total(body))


def test_changed_prefix_misses(m: ServerModel) -> None:
    """§1.3: a hit needs a byte-identical prefix through the marked block."""
    sys1 = [text(1500, EPH)]
    run(m, req([user(text(5))], system=sys1))
    changed = [{**sys1[0], "text": sys1[0]["text"] + " x"}]
    adm = run(m, req([user(text(5))], system=changed), now_s=5)
    assert reads(adm) == 0
    assert writes(adm) > 0


def test_marker_is_not_part_of_the_prefix(m: ServerModel) -> None:
    """§1.3 (the key hashes the prompt, not the markers): moving the breakpoint to a later
    block, as agent loops do every turn, still reads the earlier entry."""
    first_user = text(1500)
    t1 = req([user({**first_user, "cache_control": EPH})])
    (bp1,) = breakpoint_tokens(t1)
    run(m, t1)
    t2 = req([user(first_user), assistant(text(20)), user(text(30, EPH))])
    (bp2,) = breakpoint_tokens(t2)
    adm = run(m, t2, now_s=3)
    assert (reads(adm), adm.cache_creation_5m_tokens) == (bp1, bp2 - bp1)
    check_additive(adm, t2)


def test_block_key_order_is_irrelevant_but_json_key_order_matters(m: ServerModel) -> None:
    """§1.7 bullet "JSON key order in tool_use inputs and tool schemas must not vary": the
    rendered JSON keeps the client's key order; a block's own field order is not rendered."""
    q, big = text(3), words(1500)
    use = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1, "b": 2}}
    res = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok", "cache_control": EPH}
    base = req([user(q), assistant({"type": "text", "text": big}, use), user(res)])
    run(m, base)
    fields_swapped = req(
        [user(q), assistant({"text": big, "type": "text"}, dict(reversed(use.items()))), user(res)]
    )
    assert reads(run(m, fields_swapped, now_s=1)) == breakpoint_tokens(base)[0]
    input_swapped = {**use, "input": {"b": 2, "a": 1}}
    body = req([user(q), assistant({"type": "text", "text": big}, input_swapped), user(res)])
    assert reads(run(m, body, now_s=2)) == 0


def test_string_content_equals_single_text_block(m: ServerModel) -> None:
    """§1.3 "byte-identical prefix" is about the rendered prompt: ``"content": "x"`` renders as
    one text block ``x`` (Claude Code sends both forms of the same turn, real-clients.md)."""
    first = words(1500)
    t1 = req([user({"type": "text", "text": first, "cache_control": EPH})])
    run(m, t1)
    t2 = req([{"role": "user", "content": first}, assistant(text(5)), user(text(5, EPH))])
    adm = run(m, t2, now_s=1)
    assert reads(adm) == breakpoint_tokens(t1)[0]


# ---------------------------------------------------------------- lookback


def _tool_turns(n: int) -> list[dict[str, Any]]:
    """``n`` block positions: tool_use / tool_result pairs (an assistant and a user block)."""
    out: list[dict[str, Any]] = []
    for k in range(n // 2):
        tid = f"toolu_{next(_counter)}"
        out.append(assistant({"type": "tool_use", "id": tid, "name": "f", "input": {"k": k}}))
        out.append(user({"type": "tool_result", "tool_use_id": tid, "content": words(3)}))
    return out


def test_partial_hit_through_lookback(m: ServerModel) -> None:
    """§1.3 lookback: the new breakpoint's own entry does not exist; stepping back finds the
    entry the previous turn wrote, which is read; the rest up to the breakpoint is written."""
    a, b, c = text(1500), text(10), text(10)
    t1 = req([user(a), assistant(b), user(marked(c))])
    run(m, t1)
    tail = _tool_turns(6)
    tail[-1]["content"][0]["cache_control"] = EPH
    t2 = req([user(a), assistant(b), user(c), *tail])
    (bp1,), (bp2,) = breakpoint_tokens(t1), breakpoint_tokens(t2)
    adm = run(m, t2, now_s=5)
    assert (reads(adm), adm.cache_creation_5m_tokens) == (bp1, bp2 - bp1)
    check_additive(adm, t2)


def _lookback_case(m: ServerModel, distance: int, *, anchor: bool = False) -> Admission:
    """Turn 1 writes at position p; turn 2 puts its only breakpoint ``distance`` positions later.

    The distance is made of tool_use/tool_result pairs (an even number of positions), plus one
    extra text block after the written one for an odd distance.
    """
    a = text(1500)
    run(m, req([user(marked(a))]))
    extra = [text(2)] if distance % 2 else []
    tail = _tool_turns(distance - len(extra))
    if anchor:
        # §1.3 consequence: a second breakpoint nearer the old write brings it back in reach
        tail[1]["content"][0]["cache_control"] = EPH
    tail[-1]["content"][0]["cache_control"] = EPH
    body = req([user(a, *extra), *tail])
    p = render(body, model=builtin_table().get(OPUS48))
    assert p.breakpoints[-1].index - 0 == distance  # the written entry sits at position 0
    return run(m, body, now_s=10)


def test_lookback_reaches_the_20th_position(m: ServerModel) -> None:
    """§1.3: at most 20 positions per breakpoint, counting the breakpoint itself: an entry 19
    blocks back (the 20th position checked) is still found."""
    adm = _lookback_case(m, 19)
    assert reads(adm) > 0


def test_lookback_exhausted_at_21_blocks(m: ServerModel) -> None:
    """§1.3 consequence: when a turn appends 20 blocks, the previous write sits 20 blocks back
    — the 21st position — and is out of reach: a full miss."""
    adm = _lookback_case(m, 20)
    assert reads(adm) == 0
    assert writes(adm) > 0


def test_anchor_breakpoint_fixes_exhausted_lookback(m: ServerModel) -> None:
    """§1.3 consequence / §11 strategy (4): a mid-history anchor breakpoint within 20 blocks of
    the old write makes it readable again."""
    adm = _lookback_case(m, 20, anchor=True)
    assert reads(adm) > 0


def test_lookback_finds_only_written_entries(m: ServerModel) -> None:
    """§1.3 "The lookback finds only earlier writes, not stable content": a longer identical
    prefix earns nothing beyond the position that was actually written."""
    a, b, c = text(1500), text(100), text(100)
    t1 = req([user({**a, "cache_control": EPH}, b, c)])
    run(m, t1)
    t2 = req([user(a, b, {**c, "cache_control": EPH})])
    adm = run(m, t2, now_s=1)
    assert reads(adm) == breakpoint_tokens(t1)[0] < breakpoint_tokens(t2)[0]


def test_longest_hit_wins(m: ServerModel) -> None:
    """§1.3 History: "one breakpoint automatically reads the longest previously cached prefix";
    with several breakpoints the highest hit position is A (§1.6)."""
    s, u = text(1500), text(600)
    run(m, req([user({**s, "cache_control": EPH})]))
    run(m, req([user(s, {**u, "cache_control": EPH})]), now_s=1)
    both = req(
        [
            user({**s, "cache_control": EPH}, {**u, "cache_control": EPH}),
            assistant(text(3)),
            user(text(4)),
        ]
    )
    adm = run(m, both, now_s=2)
    assert reads(adm) == breakpoint_tokens(both)[1]


# ---------------------------------------------------------------- TTL


def test_5m_entry_expires(m: ServerModel) -> None:
    """§1.6: default lifetime 5 minutes; expired entries are not readable."""
    body = req([user(text(1500, EPH))])
    run(m, body, now_s=0)
    assert reads(run(m, body, now_s=299.0)) > 0
    assert reads(m.admit(body, scope="k", now_s=299.0 + 300.0)) == 0


def test_hit_refreshes_ttl(m: ServerModel) -> None:
    """§1.6 "Each hit refreshes it at no charge": read at 250 s keeps it alive until 550 s."""
    body = req([user(text(1500, EPH))])
    run(m, body, now_s=0)
    assert reads(run(m, body, now_s=250)) > 0
    adm = run(m, body, now_s=500)  # 500 > 300: alive only because of the refresh
    assert reads(adm) > 0
    assert writes(adm) == 0


def test_clock_starts_at_request_start(m: ServerModel) -> None:
    """§1.6 "The clock starts at the start of the request": an entry written by a request that
    started at 0 expires at 300 even if its response began much later."""
    body = req([user(text(1500, EPH))])
    adm = m.admit(body, scope="k", now_s=0)
    adm.commit()  # whenever the response starts, the lifetime counts from now_s=0
    assert m.entries(now_s=1)[0]["expires_at_s"] == 300.0
    assert reads(m.admit(body, scope="k", now_s=300.0)) == 0


def test_1h_entry_outlives_5m(m: ServerModel) -> None:
    """§1.6 1h TTL: billed as a 1h write; readable after 5 minutes, gone after an hour."""
    body = req([user(text(1500, EPH_1H))])
    first = run(m, body)
    assert (first.cache_creation_1h_tokens, first.cache_creation_5m_tokens) == (
        breakpoint_tokens(body)[0],
        0,
    )
    assert reads(run(m, body, now_s=3000)) > 0
    assert reads(m.admit(body, scope="k", now_s=3000 + 3600)) == 0


def test_mixed_ttl_billing_a_b_c(m: ServerModel) -> None:
    """§1.6 Mixing TTLs: A = highest hit (read), B = highest 1h breakpoint after A (1h write of
    B−A), C = last breakpoint (5m write of C−B); the rest is input."""
    s, m1, m2 = text(1200), text(300), text(200)
    run(m, req([user({**s, "cache_control": EPH_1H})]))
    body = req(
        [
            user(
                {**s, "cache_control": EPH_1H},
                {**m1, "cache_control": EPH_1H},
                {**m2, "cache_control": EPH},
            ),
            assistant(text(2)),
            user(text(7)),
        ]
    )
    a, b, c = breakpoint_tokens(body)
    adm = run(m, body, now_s=1)
    assert (adm.cache_read_tokens, adm.cache_creation_1h_tokens, adm.cache_creation_5m_tokens) == (
        a,
        b - a,
        c - b,
    )
    assert adm.input_tokens == total(body) - c
    assert adm.usage(output_tokens=1)["cache_creation"] == {
        "ephemeral_5m_input_tokens": c - b,
        "ephemeral_1h_input_tokens": b - a,
    }


def test_1h_after_5m_is_rejected(m: ServerModel) -> None:
    """§1.6 "every 1h breakpoint must come before every 5m breakpoint" (the API's 400)."""
    body = req([user(text(1200, EPH), text(10, EPH_1H))])
    with pytest.raises(ApiError) as err:
        m.admit(body, scope="k", now_s=0)
    assert err.value.status == 400
    assert err.value.message == (
        "messages.0.content.1.cache_control.ttl: a ttl='1h' cache_control block must not come "
        "after a ttl='5m' cache_control block. Note that blocks are processed in the following "
        "order: `tools`, `system`, `messages`."
    )


def test_1h_in_tools_after_5m_in_system_order(m: ServerModel) -> None:
    """§1.3 prefix order tools → system → messages also orders the TTL rule: a 5m tool
    breakpoint before a 1h system breakpoint is a 1h-after-5m error."""
    body = req([user(text(5))], tools=[tool("f", EPH)], system=[text(1200, EPH_1H)])
    with pytest.raises(ApiError, match=r"system\.0\.cache_control\.ttl: a ttl='1h'"):
        m.validate(body, endpoint="messages")


# ---------------------------------------------------------------- minimum length


@pytest.mark.parametrize(("model", "minimum"), [(HAIKU45, 4096), (OPUS48, 1024), (OPUS5, 512)])
def test_minimum_cacheable_length_per_model(m: ServerModel, model: str, minimum: int) -> None:
    """§1.5: below the model's minimum a breakpoint neither reads nor writes — no error, both
    counters 0; at or above it, it caches (Haiku 4.5 4096, Opus 4.8 1024, Opus 5 512)."""
    info = builtin_table().get(model)
    assert info.min_cacheable_tokens == minimum
    small = req([user(text(minimum // 2, EPH))], model=model)
    assert breakpoint_tokens(small)[0] < minimum
    for now in (0, 1):
        adm = run(m, small, now_s=now)
        assert (reads(adm), writes(adm)) == (0, 0)
    large = req([user(text(minimum, EPH))], model=model)
    assert breakpoint_tokens(large)[0] >= minimum
    assert writes(run(m, large)) == breakpoint_tokens(large)[0]


def test_same_prompt_caches_on_opus_5_but_not_haiku(m: ServerModel) -> None:
    """§1.5: the minimum is per model: a ~2,000-token prefix caches on Opus 5 (512) and is
    processed uncached on Haiku 4.5 (4,096)."""
    msgs = [user(text(2000, EPH))]
    assert writes(run(m, req(msgs, model=OPUS5))) > 0
    assert writes(run(m, req(msgs, model=HAIKU45))) == 0


def test_short_breakpoint_skipped_long_one_still_caches(m: ServerModel) -> None:
    """§1.5 applies per breakpoint: a system breakpoint below the minimum is ignored while a
    later one above it writes the whole prefix."""
    body = req([user(text(1500, EPH))], system=[text(20, EPH)])
    bps = breakpoint_tokens(body)
    assert bps[0] < 1024 <= bps[1]
    adm = run(m, body)
    assert adm.cache_creation_5m_tokens == bps[1]
    assert [e["prefix_tokens"] for e in m.entries(now_s=1)] == [bps[1]]


# ---------------------------------------------------------------- breakpoints


def test_five_breakpoints_rejected_with_the_exact_message(m: ServerModel) -> None:
    """§1.2 "Maximum 4 breakpoints per request … HTTP 400 invalid_request_error"."""
    body = req([user(*[text(300, EPH) for _ in range(5)])])
    with pytest.raises(ApiError) as err:
        m.admit(body, scope="k", now_s=0)
    assert (err.value.status, err.value.error_type, err.value.message) == (
        400,
        "invalid_request_error",
        "A maximum of 4 blocks with cache_control may be provided. Found 5.",
    )


def test_four_breakpoints_one_entry_each(m: ServerModel) -> None:
    """§1.3 "A write happens only at a breakpoint: one entry … up to and including that block"."""
    body = req([user(*[text(400, EPH) for _ in range(4)])])
    adm = run(m, body)
    assert sorted(e["prefix_tokens"] for e in m.entries(now_s=1)) == breakpoint_tokens(body)[1:]
    assert adm.cache_creation_5m_tokens == breakpoint_tokens(body)[-1]


def test_marker_inside_tool_result_counts_for_the_parent(m: ServerModel) -> None:
    """§1.2 "For tool_result … a marker left on the last inner block is moved to the parent"."""
    tid = "toolu_inner"
    inner = {"type": "text", "text": words(1500), "cache_control": EPH}
    body = req(
        [
            user(text(3)),
            assistant({"type": "tool_use", "id": tid, "name": "f", "input": {}}),
            user({"type": "tool_result", "tool_use_id": tid, "content": [inner]}),
        ]
    )
    p = render(body, model=builtin_table().get(OPUS48))
    assert [bp.index for bp in p.breakpoints] == [len(p.slots) - 1]
    assert writes(run(m, body)) == p.ends[-1]
