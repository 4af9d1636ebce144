"""Parsing usage from every shape the API and its clients emit (``tokenomy.core.usage``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anthropic.types as sdk
import anthropic.types.beta as sdk_beta
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenomy.core.usage import (
    Iteration,
    StreamUsage,
    Usage,
    sum_usages,
    usage_from_batch_result,
    usage_from_claude_code_line,
    usage_from_message,
)
from tokenomy.errors import InputError, UsageError

# The real transcript line of reference §10.2 (Claude Code 2.1.x, 1h writes).
CLAUDE_CODE_LINE: dict[str, Any] = {
    "type": "assistant",
    "message": {
        "model": "claude-opus-4-5-20251101",
        "id": "msg_017T",
        "type": "message",
        "role": "assistant",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 2,
            "cache_creation_input_tokens": 10408,
            "cache_read_input_tokens": 14265,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 10408},
            "output_tokens": 1,
            "service_tier": "standard",
            "inference_geo": "not_available",
        },
    },
    "requestId": "req_011CYFTXWXWj2oSjRhNTQw6d",
    "uuid": "6f1c",
    "timestamp": "2026-02-18T11:30:24.575Z",
}


# ---------------------------------------------------------------------- every field


def test_every_field_is_read() -> None:
    u = Usage.from_wire(
        {
            "input_tokens": 11,
            "cache_creation_input_tokens": 700,
            "cache_read_input_tokens": 5000,
            "cache_creation": {"ephemeral_5m_input_tokens": 300, "ephemeral_1h_input_tokens": 400},
            "output_tokens": 90,
            "output_tokens_details": {"thinking_tokens": 60},
            "server_tool_use": {"web_search_requests": 2, "web_fetch_requests": 1},
            "service_tier": "standard",
            "inference_geo": "us",
            "speed": "fast",
            "fallback_credit": None,
        },
        strict=True,
    )
    assert u == Usage(
        input_tokens=11,
        output_tokens=90,
        cache_read_tokens=5000,
        cache_write_5m_tokens=300,
        cache_write_1h_tokens=400,
        ttl_split_known=True,
        thinking_tokens=60,
        web_search_requests=2,
        web_fetch_requests=1,
        service_tier="standard",
        speed="fast",
        inference_geo="us",
    )
    assert u.cache_write_tokens == 700
    assert u.total_input_tokens == 11 + 700 + 5000
    assert u.cache_hit_rate == 5000 / 5711
    assert not u.is_batch


def test_only_the_required_fields() -> None:
    u = Usage.from_wire({"input_tokens": 3, "output_tokens": 4}, strict=True)
    assert (u.input_tokens, u.output_tokens, u.cache_write_tokens, u.cache_read_tokens) == (
        3,
        4,
        0,
        0,
    )
    # No writes at all: nothing is unknown about their TTL.
    assert u.ttl_split_known
    assert u.thinking_tokens is None
    assert u.iterations == ()


def test_cached_tokens_are_not_inside_input_tokens() -> None:
    """The API's counters are additive: input_tokens excludes reads and writes (§1.9)."""
    u = Usage.from_wire(
        {
            "input_tokens": 21,
            "cache_creation_input_tokens": 188086,
            "cache_read_input_tokens": 0,
            "output_tokens": 393,
        }
    )
    assert u.input_tokens == 21
    assert u.total_input_tokens == 188107


def test_missing_breakdown_puts_all_writes_at_5m_and_says_so() -> None:
    u = Usage.from_wire({"input_tokens": 1, "cache_creation_input_tokens": 900, "output_tokens": 1})
    assert (u.cache_write_5m_tokens, u.cache_write_1h_tokens) == (900, 0)
    assert not u.ttl_split_known


def test_breakdown_present_with_zeros() -> None:
    u = Usage.from_wire(
        {
            "input_tokens": 1,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 40,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 1,
        }
    )
    assert u.cache_write_tokens == 0
    assert u.ttl_split_known


def test_breakdown_of_zeros_with_a_nonzero_total_keeps_the_total() -> None:
    """The total is what is billed; a zeroed split only loses the rate, not the tokens."""
    u = Usage.from_wire(
        {
            "input_tokens": 1,
            "cache_creation_input_tokens": 1200,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 1,
        }
    )
    assert (u.cache_write_5m_tokens, u.cache_write_1h_tokens) == (1200, 0)
    assert not u.ttl_split_known


def test_breakdown_short_of_the_total_keeps_every_written_token() -> None:
    """Writes are never dropped: tokens the split does not explain are priced at 5m.

    (Helicone PR #5606 dropped writes when the breakdown did not cover them.)
    """
    u = Usage.from_wire(
        {
            "input_tokens": 1,
            "cache_creation_input_tokens": 5000,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 1000},
            "output_tokens": 1,
        }
    )
    assert (u.cache_write_5m_tokens, u.cache_write_1h_tokens) == (4000, 1000)
    assert u.cache_write_tokens == 5000
    assert not u.ttl_split_known


def test_breakdown_above_a_stale_total_wins() -> None:
    """The split is the more detailed report; a smaller total is not a reason to drop tokens."""
    u = Usage.from_wire(
        {
            "input_tokens": 1,
            "cache_creation_input_tokens": 100,
            "cache_creation": {"ephemeral_5m_input_tokens": 70, "ephemeral_1h_input_tokens": 80},
            "output_tokens": 1,
        }
    )
    assert (u.cache_write_5m_tokens, u.cache_write_1h_tokens) == (70, 80)
    assert u.ttl_split_known


def test_breakdown_without_a_total() -> None:
    u = Usage.from_wire(
        {
            "input_tokens": 1,
            "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 20},
            "output_tokens": 1,
        }
    )
    assert (u.cache_write_5m_tokens, u.cache_write_1h_tokens) == (10, 20)
    assert u.ttl_split_known


def test_null_fields_are_zero_or_absent() -> None:
    u = Usage.from_wire(
        {
            "input_tokens": 5,
            "output_tokens": 6,
            "cache_creation_input_tokens": None,
            "cache_read_input_tokens": None,
            "cache_creation": None,
            "server_tool_use": None,
            "output_tokens_details": None,
            "iterations": None,
            "service_tier": None,
            "inference_geo": None,
            "speed": None,
        },
        strict=True,
    )
    assert u == Usage(input_tokens=5, output_tokens=6)


@pytest.mark.parametrize("value", [12.0, 1e3, 0.0])
def test_a_float_count_is_refused_even_when_whole(value: float) -> None:
    """The API writes counts as JSON integers; a float means the data went through something
    that may have rounded it (and 1e17 as a float is no longer the count that was billed)."""
    with pytest.raises(UsageError, match=rf"input_tokens must be a whole number .*{value!r}"):
        Usage.from_wire({"input_tokens": value, "output_tokens": 3})


def test_batch_tier_is_seen() -> None:
    assert Usage.from_wire(
        {"input_tokens": 1, "output_tokens": 1, "service_tier": "batch"}
    ).is_batch


def test_cache_hit_rate_of_an_empty_call_is_none() -> None:
    assert Usage().cache_hit_rate is None


# ---------------------------------------------------------------------- bad values


@dataclass(frozen=True)
class Bad:
    name: str
    usage: Any
    message: tuple[str, ...]  # every piece must appear in the error


BAD = [
    Bad("negative input", {"input_tokens": -1, "output_tokens": 0}, ("input_tokens", "-1")),
    Bad("negative output", {"input_tokens": 0, "output_tokens": -7}, ("output_tokens", "-7")),
    Bad(
        "negative reads",
        {"input_tokens": 0, "output_tokens": 0, "cache_read_input_tokens": -3},
        ("cache_read_input_tokens", "-3"),
    ),
    Bad(
        "negative write total",
        {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": -3},
        ("cache_creation_input_tokens", "-3"),
    ),
    Bad(
        "negative 1h split",
        {
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": -2},
        },
        ("cache_creation.ephemeral_1h_input_tokens", "-2"),
    ),
    Bad("fractional float", {"input_tokens": 1.5, "output_tokens": 0}, ("input_tokens", "1.5")),
    Bad("string count", {"input_tokens": "12", "output_tokens": 0}, ("input_tokens", "'12'")),
    Bad("bool count", {"input_tokens": True, "output_tokens": 0}, ("input_tokens", "True")),
    Bad("list count", {"input_tokens": [1], "output_tokens": 0}, ("input_tokens", "[1]")),
    Bad(
        "thinking string",
        {"input_tokens": 0, "output_tokens": 9, "output_tokens_details": {"thinking_tokens": "x"}},
        ("thinking_tokens", "'x'"),
    ),
    Bad(
        "cache_creation not an object",
        {"input_tokens": 0, "output_tokens": 0, "cache_creation": 5},
        ("cache_creation", "5"),
    ),
    Bad(
        "output_tokens_details not an object",
        {"input_tokens": 0, "output_tokens": 0, "output_tokens_details": 7},
        ("output_tokens_details", "7"),
    ),
    Bad(
        "server_tool_use not an object",
        {"input_tokens": 0, "output_tokens": 0, "server_tool_use": [1]},
        ("server_tool_use", "[1]"),
    ),
    Bad(
        "negative web searches",
        {"input_tokens": 0, "output_tokens": 0, "server_tool_use": {"web_search_requests": -1}},
        ("server_tool_use.web_search_requests", "-1"),
    ),
    Bad(
        "service tier not a string",
        {"input_tokens": 0, "output_tokens": 0, "service_tier": 1},
        ("service_tier", "1"),
    ),
    Bad(
        "iterations not a list",
        {"input_tokens": 0, "output_tokens": 0, "iterations": {"type": "message"}},
        ("iterations", "must be a list"),
    ),
    Bad(
        "iteration not an object",
        {"input_tokens": 0, "output_tokens": 0, "iterations": [3]},
        ("iterations[0]", "3"),
    ),
    Bad(
        "negative count inside an iteration",
        {
            "input_tokens": 0,
            "output_tokens": 0,
            "iterations": [{"type": "message", "input_tokens": -4, "output_tokens": 0}],
        },
        ("iterations[0].input_tokens", "-4"),
    ),
    Bad("not an object", [1, 2], ("must be a JSON object", "list")),
    Bad("a string", "input_tokens=5", ("must be a JSON object", "str")),
]


@pytest.mark.parametrize("case", BAD, ids=[b.name for b in BAD])
def test_bad_values_raise_a_clear_usage_error(case: Bad) -> None:
    with pytest.raises(UsageError) as info:
        Usage.from_wire(case.usage)
    for piece in case.message:
        assert piece in str(info.value)
    # A usage error is input the user can fix: the CLI maps it to exit code 2.
    assert isinstance(info.value, InputError)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input_tokens": -1},
        {"output_tokens": -1},
        {"cache_read_tokens": -1},
        {"cache_write_5m_tokens": -1},
        {"cache_write_1h_tokens": -1},
        {"web_search_requests": -1},
        {"input_tokens": 1.0},
        {"output_tokens": True},
    ],
)
def test_usage_cannot_be_built_with_bad_counts(kwargs: dict[str, Any]) -> None:
    with pytest.raises(UsageError, match=next(iter(kwargs))):
        Usage(**kwargs)


# ---------------------------------------------------------------------- strict mode


def test_strict_mode_rejects_an_unknown_field_and_suggests_the_right_one() -> None:
    with pytest.raises(UsageError) as info:
        Usage.from_wire(
            {"input_tokens": 1, "output_tokens": 1, "cache_read_input_token": 5}, strict=True
        )
    msg = str(info.value)
    assert "'cache_read_input_token'" in msg
    assert "did you mean 'cache_read_input_tokens'?" in msg
    assert "--allow-unknown" in msg


@pytest.mark.parametrize(
    ("usage", "path", "guess"),
    [
        (
            {"cache_creation": {"ephemeral_5m_input_token": 5}},
            "usage.cache_creation",
            "ephemeral_5m_input_tokens",
        ),
        (
            {"server_tool_use": {"web_search_request": 2}},
            "usage.server_tool_use",
            "web_search_requests",
        ),
        (
            {"output_tokens_details": {"thinking_token": 2}},
            "usage.output_tokens_details",
            "thinking_tokens",
        ),
        (
            {"iterations": [{"type": "message", "input_tokens": 1, "cache_read_tokens": 9}]},
            "usage.iterations[0]",
            "cache_read_input_tokens",
        ),
    ],
    ids=["cache_creation", "server_tool_use", "output_tokens_details", "iteration"],
)
def test_strict_mode_looks_inside_nested_objects(
    usage: dict[str, Any], path: str, guess: str
) -> None:
    """A typo inside a nested object would silently drop tokens or requests; strict says so."""
    wire = {"input_tokens": 1, "output_tokens": 1, **usage}
    with pytest.raises(UsageError) as info:
        Usage.from_wire(wire, strict=True)
    assert f"{path} has an unknown field" in str(info.value)
    assert f"did you mean {guess!r}?" in str(info.value)
    Usage.from_wire(wire)  # lenient mode reads what it knows


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("cache_reads", "cache_read_input_tokens"),
        ("cache_creation_tokens", "cache_creation_input_tokens"),
        ("output", "output_tokens"),
        ("inputTokens", "input_tokens"),
    ],
)
def test_strict_mode_suggests_the_field_a_shortened_name_means(typo: str, meant: str) -> None:
    with pytest.raises(UsageError, match=f"did you mean '{meant}'"):
        Usage.from_wire({"input_tokens": 1, "output_tokens": 1, typo: 5}, strict=True)


def test_strict_mode_without_a_close_match_gives_no_guess() -> None:
    with pytest.raises(UsageError) as info:
        Usage.from_wire({"input_tokens": 1, "output_tokens": 1, "zzz": 5}, strict=True)
    assert "'zzz'" in str(info.value)
    assert "did you mean" not in str(info.value)


def test_lenient_mode_records_unknown_fields() -> None:
    u = Usage.from_wire({"input_tokens": 1, "output_tokens": 1, "zeta": 1, "alpha": 2})
    assert u.unknown_fields == ("alpha", "zeta")
    # Unknown fields are bookkeeping, not identity.
    assert u == Usage(input_tokens=1, output_tokens=1)


# ---------------------------------------------------------------------- iterations


COMPACTED = {
    "input_tokens": 4000,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 30000,
    "output_tokens": 700,
    "iterations": [
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
        {
            "type": "advisor_message",
            "model": "claude-opus-4-8",
            "input_tokens": 9000,
            "cache_creation_input_tokens": 1000,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 300,
        },
        {"type": "something_new", "input_tokens": 1, "output_tokens": 1},
    ],
}


def test_iterations_are_parsed_with_their_kind_and_model() -> None:
    u = Usage.from_wire(COMPACTED, strict=True)
    assert [(it.kind, it.model) for it in u.iterations] == [
        ("compaction", None),
        ("message", None),
        ("advisor_message", "claude-opus-4-8"),
        ("other", None),
    ]
    assert u.iterations[0].usage.input_tokens == 160000
    assert u.iterations[2].usage.cache_write_5m_tokens == 1000


def test_billable_sums_the_iterations_and_ignores_the_top_level() -> None:
    u = Usage.from_wire(COMPACTED)
    b = u.billable()
    assert b.input_tokens == 160000 + 4000 + 9000 + 1
    assert b.output_tokens == 2500 + 700 + 300 + 1
    assert b.cache_read_tokens == 30000
    assert b.cache_write_5m_tokens == 1000
    assert b.iterations == ()


def test_billable_without_iterations_is_the_usage_itself() -> None:
    u = Usage(input_tokens=3, output_tokens=4)
    assert u.billable() is u


def test_sum_usages_adds_tokens_and_keeps_the_unknown_split_flag() -> None:
    total = sum_usages(
        [
            Usage(input_tokens=1, cache_write_5m_tokens=10, ttl_split_known=False),
            Usage(output_tokens=2, cache_write_1h_tokens=20, web_search_requests=1),
        ]
    )
    assert total == Usage(
        input_tokens=1,
        output_tokens=2,
        cache_write_5m_tokens=10,
        cache_write_1h_tokens=20,
        ttl_split_known=False,
        web_search_requests=1,
    )


# ---------------------------------------------------------------------- streams


def _start(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": "claude-sonnet-4-6",
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        },
    }


def _delta(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": usage,
    }


def test_stream_takes_input_from_message_start_and_the_last_cumulative_delta() -> None:
    s = StreamUsage()
    s.feed(
        _start(
            {
                "input_tokens": 12,
                "cache_creation_input_tokens": 3000,
                "cache_read_input_tokens": 40000,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": 3000,
                    "ephemeral_1h_input_tokens": 0,
                },
                "output_tokens": 1,
            }
        )
    )
    s.feed({"type": "content_block_start", "index": 0, "content_block": {"type": "text"}})
    s.feed({"type": "ping"})
    for out in (5, 120, 510):
        s.feed(_delta({"output_tokens": out}))
    assert not s.finished
    s.feed({"type": "message_stop"})
    assert s.started
    assert s.finished
    u = s.usage()
    # Cumulative: the last delta wins; 5 + 120 + 510 would overstate the output.
    assert u.output_tokens == 510
    assert (u.input_tokens, u.cache_write_5m_tokens, u.cache_read_tokens) == (12, 3000, 40000)


def test_stream_delta_with_cumulative_input_counts_replaces_message_start() -> None:
    s = StreamUsage()
    s.feed(_start({"input_tokens": 10, "output_tokens": 1}))
    s.feed(
        _delta(
            {
                "input_tokens": 10682,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 200,
                "server_tool_use": {"web_search_requests": 1},
            }
        )
    )
    s.feed(
        _delta(
            {
                "input_tokens": 10682,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 510,
                "server_tool_use": {"web_search_requests": 1},
            }
        )
    )
    u = s.usage()
    assert (u.input_tokens, u.output_tokens, u.web_search_requests) == (10682, 510, 1)


def test_stream_delta_nulls_do_not_erase_message_start() -> None:
    s = StreamUsage()
    s.feed(_start({"input_tokens": 50, "cache_read_input_tokens": 900, "output_tokens": 1}))
    s.feed(_delta({"input_tokens": None, "cache_read_input_tokens": None, "output_tokens": 77}))
    u = s.usage()
    assert (u.input_tokens, u.cache_read_tokens, u.output_tokens) == (50, 900, 77)


def test_stream_without_usage_in_message_start() -> None:
    s = StreamUsage()
    s.feed({"type": "message_start", "message": {"id": "m"}})
    s.feed(_delta({"output_tokens": 4}))
    assert s.started
    assert s.usage() == Usage(output_tokens=4)


def test_stream_usage_is_strict_on_request() -> None:
    s = StreamUsage()
    s.feed(_start({"input_tokens": 1, "output_tokens": 1, "bogus_tokens": 3}))
    with pytest.raises(UsageError, match="bogus_tokens"):
        s.usage(strict=True)
    assert s.usage().unknown_fields == ("bogus_tokens",)


# ---------------------------------------------------------------------- responses, batch, CC


def test_usage_from_message() -> None:
    msg = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-opus-5",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 9, "output_tokens": 2},
    }
    assert usage_from_message(msg) == Usage(input_tokens=9, output_tokens=2)


@pytest.mark.parametrize(
    ("message", "text"),
    [({"id": "x"}, "no 'usage' field"), ([1], "must be a JSON object")],
)
def test_usage_from_message_errors(message: Any, text: str) -> None:
    with pytest.raises(UsageError, match=text):
        usage_from_message(message)


def _succeeded(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "custom_id": "row-1",
        "result": {
            "type": "succeeded",
            "message": {
                "id": "msg_b",
                "type": "message",
                "role": "assistant",
                "model": "claude-haiku-4-5-20251001",
                "content": [],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": usage,
            },
        },
    }


def test_batch_result_succeeded_is_batch_even_without_service_tier() -> None:
    u = usage_from_batch_result(_succeeded({"input_tokens": 100, "output_tokens": 20}))
    assert u == Usage(input_tokens=100, output_tokens=20, service_tier="batch")
    assert u is not None
    assert u.is_batch


def test_batch_result_succeeded_with_service_tier_batch() -> None:
    u = usage_from_batch_result(
        _succeeded({"input_tokens": 1, "output_tokens": 2, "service_tier": "batch"})
    )
    assert u == Usage(input_tokens=1, output_tokens=2, service_tier="batch")


@pytest.mark.parametrize(
    "result",
    [
        {
            "type": "errored",
            "error": {
                "type": "error",
                "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
            },
        },
        {"type": "canceled"},
        {"type": "expired"},
    ],
    ids=["errored", "canceled", "expired"],
)
def test_batch_results_that_are_not_billed_have_no_usage(result: dict[str, Any]) -> None:
    assert usage_from_batch_result({"custom_id": "row-2", "result": result}) is None


@pytest.mark.parametrize(
    "line", [{"custom_id": "x"}, {"custom_id": "x", "result": "ok"}, [1], None]
)
def test_batch_result_without_a_result_object(line: Any) -> None:
    with pytest.raises(UsageError, match="'result' object"):
        usage_from_batch_result(line)


def test_batch_result_succeeded_without_usage() -> None:
    line = _succeeded({})
    del line["result"]["message"]["usage"]
    with pytest.raises(UsageError, match="no 'usage'"):
        usage_from_batch_result(line)


def test_claude_code_line_real_example() -> None:
    u = usage_from_claude_code_line(CLAUDE_CODE_LINE)
    assert u == Usage(
        input_tokens=2,
        output_tokens=1,
        cache_read_tokens=14265,
        cache_write_5m_tokens=0,
        cache_write_1h_tokens=10408,
        service_tier="standard",
        inference_geo="not_available",
    )


@pytest.mark.parametrize(
    "line",
    [
        {"type": "user", "message": {"role": "user", "content": "hi"}},
        {"type": "summary", "summary": "x", "leafUuid": "u"},
        {"type": "system", "subtype": "compact_boundary"},
        {"type": "assistant", "message": {"model": "claude-opus-4-5", "content": []}},
        {"type": "assistant", "message": "oops"},
        "not a line",
    ],
    ids=["user", "summary", "system", "no-usage", "message-not-object", "string"],
)
def test_claude_code_lines_without_usage(line: Any) -> None:
    assert usage_from_claude_code_line(line) is None


def test_claude_code_line_with_bad_usage_names_the_field() -> None:
    line = {"type": "assistant", "message": {"usage": {"input_tokens": -1, "output_tokens": 0}}}
    with pytest.raises(UsageError, match=r"message\.usage\.input_tokens"):
        usage_from_claude_code_line(line)


# ---------------------------------------------------------------------- wire round trip

counts = st.integers(min_value=0, max_value=10**9)
small = st.integers(min_value=0, max_value=1000)
opt_str = st.none() | st.sampled_from(["standard", "batch", "priority"])


models = st.sampled_from(["claude-opus-4-8", "claude-sonnet-5"])


@st.composite
def iterations_st(draw: st.DrawFn) -> Iteration:
    kind = draw(st.sampled_from(["message", "compaction", "advisor_message", "fallback_message"]))
    # As the SDK types say: advisor and fallback entries name their model, compaction never does.
    model = {
        "message": draw(st.none() | models),
        "compaction": None,
    }.get(kind, draw(models))
    return Iteration(kind=kind, usage=draw(usages(with_iterations=False).map(_bare)), model=model)


@st.composite
def usages(draw: st.DrawFn, *, with_iterations: bool = True) -> Usage:
    w5 = draw(counts)
    w1 = draw(counts)
    # "TTL split unknown" only describes writes that came without a breakdown: all at 5m.
    known = draw(st.booleans()) if w5 > 0 and w1 == 0 else True
    iterations: tuple[Iteration, ...] = ()
    if with_iterations:
        iterations = tuple(draw(iterations_st()) for _ in range(draw(st.integers(0, 3))))
    return Usage(
        input_tokens=draw(counts),
        output_tokens=draw(counts),
        cache_read_tokens=draw(counts),
        cache_write_5m_tokens=w5,
        cache_write_1h_tokens=w1,
        ttl_split_known=known,
        thinking_tokens=draw(st.none() | counts),
        web_search_requests=draw(small),
        web_fetch_requests=draw(small),
        service_tier=draw(opt_str),
        speed=draw(st.none() | st.sampled_from(["standard", "fast"])),
        inference_geo=draw(st.none() | st.sampled_from(["us", "global", "not_available"])),
        iterations=iterations,
    )


def _bare(u: Usage) -> Usage:
    """An iteration's usage carries tokens only (no tier, geo, tools or thinking)."""
    return Usage(
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        cache_read_tokens=u.cache_read_tokens,
        cache_write_5m_tokens=u.cache_write_5m_tokens,
        cache_write_1h_tokens=u.cache_write_1h_tokens,
        ttl_split_known=u.ttl_split_known,
    )


@given(usages())
def test_to_wire_from_wire_round_trip(u: Usage) -> None:
    assert Usage.from_wire(u.to_wire(), strict=True) == u


@given(usages(with_iterations=False))
def test_to_wire_is_what_the_official_sdk_parses(u: Usage) -> None:
    wire = u.to_wire()
    parsed = sdk.Usage.model_validate(wire)
    assert parsed.input_tokens == u.input_tokens
    assert parsed.cache_read_input_tokens == u.cache_read_tokens
    assert parsed.cache_creation_input_tokens == u.cache_write_tokens


@given(usages())
def test_to_wire_with_iterations_is_what_the_beta_sdk_parses(u: Usage) -> None:
    parsed = sdk_beta.BetaUsage.model_validate(u.to_wire())
    assert len(parsed.iterations or ()) == len(u.iterations)
