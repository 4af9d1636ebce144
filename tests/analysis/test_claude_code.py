"""Transcript lines: what each means, and the fast paths agree with the careful ones."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenomy.analysis.claude_code import (
    AssistantLine,
    BadLine,
    CompactionLine,
    MessageLine,
    ReplayLine,
    _fast_usage,
    output_tokens_of,
    parse_line,
    request_id_of,
    usage_total,
)
from tokenomy.analysis.segments import SegmentState, estimate_segments
from tokenomy.core.usage import Usage
from tokenomy.errors import UsageError


def _assistant(usage: dict[str, Any], **extra: Any) -> bytes:
    d = {
        "parentUuid": None,
        "isSidechain": False,
        "type": "assistant",
        "message": {
            "model": "claude-sonnet-4-5",
            "id": "msg_1",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "Write", "input": {"a": {"b": "}"}}}
            ],
            "usage": usage,
        },
        "requestId": "req_9",
        "sessionId": "s",
        "timestamp": "2026-11-10T10:00:00.000Z",
        **extra,
    }
    return orjson.dumps(d)


def test_kinds_of_lines() -> None:
    a = parse_line(_assistant({"input_tokens": 3, "output_tokens": 7}))
    assert isinstance(a, AssistantLine)
    assert (a.message_id, a.request_id, a.total_tokens) == ("msg_1", "req_9", 10)
    call = a.call()
    assert not isinstance(call, BadLine) and call.usage.output_tokens == 7
    # Lines a meter does not need are skipped without parsing, whatever their version.
    assert parse_line(b'{"type":"attachment","attachment":{"type":"date"}}') is None
    assert parse_line(b'{"type":"future-kind-2031","x":1}') is None
    assert parse_line(b'{"type":"user","message":{"role":"user","content":"hi"}}') is None
    user = parse_line(b'{"type":"user","message":{"role":"user","content":"hi"}}', want_user=True)
    assert isinstance(user, MessageLine) and user.message["content"] == "hi"
    boundary = parse_line(
        b'{"type":"system","subtype":"compact_boundary","timestamp":"2026-11-10T10:00:00Z",'
        b'"compactMetadata":{"trigger":"manual","preTokens":123}}'
    )
    assert isinstance(boundary, CompactionLine) and boundary.kind == "compaction"
    assert boundary.data == {"trigger": "manual", "pre_tokens": 123}
    summary = parse_line(b'{"type":"user","isCompactSummary":true,"message":{"role":"user"}}')
    assert isinstance(summary, CompactionLine) and summary.kind == "compact_summary"
    assert isinstance(parse_line(b'{"type":"api-request","id":"r1"}'), ReplayLine)
    older = parse_line(b'{"type":"summary","summary":"Fixed it","leafUuid":"u"}')
    assert isinstance(older, CompactionLine) and older.kind == "summary"


def test_spaced_json_is_read_too() -> None:
    line = orjson.loads(_assistant({"input_tokens": 1, "output_tokens": 2}))
    import json

    spaced = json.dumps(line).encode()  # ", " and ": " separators
    a = parse_line(spaced)
    assert isinstance(a, AssistantLine) and a.total_tokens == 3


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not a JSON object"),
        (b'{"type":"assistant","usage":{', "not valid JSON"),
        (
            _assistant({"input_tokens": 1.0, "output_tokens": 2}),
            "message.usage.input_tokens must be a whole number",
        ),
        (
            _assistant({"input_tokens": -1, "output_tokens": 2}),
            "message.usage.input_tokens is negative",
        ),
    ],
)
def test_bad_lines_say_why(raw: bytes, reason: str) -> None:
    parsed = parse_line(raw)
    if isinstance(parsed, AssistantLine):
        parsed = parsed.call()  # usage is checked once per response, when it is settled
    assert isinstance(parsed, BadLine) and reason in parsed.reason


def test_fields_found_without_parsing() -> None:
    raw = _assistant(
        {
            "input_tokens": 2,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 5,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 100},
            "output_tokens": 41,
            "server_tool_use": {"web_search_requests": 0},
        }
    )
    assert request_id_of(raw) == b"req_9"
    assert output_tokens_of(raw) == 41
    assert usage_total(raw) == 148
    assert request_id_of(b'{"type":"assistant"}') is None


_counts = st.one_of(st.none(), st.integers(0, 10**7))
_usage = st.fixed_dictionaries(
    {"input_tokens": st.integers(0, 10**6), "output_tokens": st.integers(0, 10**5)},
    optional={
        "cache_creation_input_tokens": _counts,
        "cache_read_input_tokens": _counts,
        "cache_creation": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {},
                optional={
                    "ephemeral_5m_input_tokens": st.integers(0, 10**6),
                    "ephemeral_1h_input_tokens": st.integers(0, 10**6),
                },
            ),
        ),
        "service_tier": st.sampled_from(["standard", "batch", "priority"]),
        "speed": st.sampled_from(["standard", "fast"]),
        "inference_geo": st.sampled_from(["", "not_available", "us"]),
        "server_tool_use": st.fixed_dictionaries(
            {"web_search_requests": st.integers(0, 5), "web_fetch_requests": st.integers(0, 5)}
        ),
        "output_tokens_details": st.fixed_dictionaries(
            {"thinking_tokens": st.one_of(st.none(), st.integers(0, 1000))}
        ),
        "iterations": st.just([]),
        "fallback_credit": st.none(),
    },
)


@settings(max_examples=300, deadline=None)
@given(_usage)
def test_the_fast_usage_reader_is_from_wire(u: dict[str, Any]) -> None:
    fast = _fast_usage(u)
    assert fast is not None
    assert fast == Usage.from_wire(u)
    assert fast.unknown_fields == ()


@settings(max_examples=200, deadline=None)
@given(_usage, st.sampled_from(["odd", "typo", "float", "neg", "iter"]))
def test_anything_unusual_goes_to_from_wire(u: dict[str, Any], twist: str) -> None:
    u = dict(u)
    if twist == "odd":
        u["new_field_2031"] = 1
    elif twist == "typo":
        u["cache_read_tokens"] = 5
    elif twist == "float":
        u["output_tokens"] = 2.0
    elif twist == "neg":
        u["input_tokens"] = -3
    else:
        u["iterations"] = [{"type": "message", "input_tokens": 1, "output_tokens": 1}]
    assert _fast_usage(u) is None
    if twist in ("float", "neg"):
        with pytest.raises(UsageError):
            Usage.from_wire(u)


@settings(max_examples=300, deadline=None)
@given(st.lists(_usage, min_size=1, max_size=12), st.sets(st.integers(0, 11)))
def test_segments_always_sum_to_the_billed_input(
    usages: list[dict[str, Any]], resets: set[int]
) -> None:
    state = SegmentState()
    for i, raw in enumerate(usages):
        if i in resets:
            state.reset = True
        u = Usage.from_wire(raw)
        seg = estimate_segments(state, u)
        assert min(seg.tools, seg.system, seg.history, seg.new) >= 0
        assert seg.input_total == u.total_input_tokens
        assert seg.output == u.output_tokens
        state = SegmentState.from_json(state.to_json())  # what an import boundary keeps
