"""The SSE stream: event order and shapes (reference sheet §7), byte for byte against fixtures."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.emulator.harness import TEST_KEY
from tokenomy.emulator.streaming import message_events, split_text
from tokenomy.wire.sse import SSEDecoder

FIXTURES = Path(__file__).parent.parent / "fixtures" / "emulator"
HEADERS = {"x-api-key": TEST_KEY, "anthropic-version": "2023-06-01"}
TOOL = {
    "name": "get_weather",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 3}},
        "required": ["city"],
    },
}

MESSAGE: dict[str, Any] = {
    "id": "msg_01x",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-6",
    "content": [
        {"type": "thinking", "thinking": "Let me think about it.", "signature": "c2ln"},
        {"type": "text", "text": "Checking the weather for you now."},
        {"type": "tool_use", "id": "toolu_01y", "name": "get_weather", "input": {"city": "Oslo"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 20,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 40,
        "output_tokens_details": {"thinking_tokens": 8},
        "service_tier": "standard",
    },
}


@pytest.mark.parametrize(
    "text",
    ["", "one", "a few words that make a longer sentence than one piece", "x" * 500, "a\n\nb  c"],
)
def test_split_text_keeps_every_character(text: str) -> None:
    pieces = split_text(text)
    assert "".join(pieces) == text
    assert all(pieces)


def test_event_order_and_shapes() -> None:
    events = list(message_events(MESSAGE))
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["message_start", "ping"]
    assert kinds[-2:] == ["message_delta", "message_stop"]
    start = events[0]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert start["usage"]["input_tokens"] == 20 and start["usage"]["output_tokens"] == 1
    assert "output_tokens_details" not in start["usage"]
    by_index: dict[int, list[dict[str, Any]]] = {}
    for e in events:
        if "index" in e:
            by_index.setdefault(e["index"], []).append(e)
    thinking, text, tool = by_index[0], by_index[1], by_index[2]
    assert thinking[0]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert thinking[-2]["delta"] == {"type": "signature_delta", "signature": "c2ln"}
    assert "".join(e["delta"]["thinking"] for e in thinking[1:-2]) == "Let me think about it."
    assert "".join(e["delta"]["text"] for e in text[1:-1]) == "Checking the weather for you now."
    assert tool[0]["content_block"] == {
        "type": "tool_use",
        "id": "toolu_01y",
        "name": "get_weather",
        "input": {},
    }
    fragments = [e["delta"]["partial_json"] for e in tool[1:-1]]
    assert fragments[0] == ""
    assert json.loads("".join(fragments)) == {"city": "Oslo"}
    assert all(b[-1] == {"type": "content_block_stop", "index": i} for i, b in by_index.items())
    delta = events[-2]
    assert delta["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert delta["usage"] == {
        "input_tokens": 20,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 40,
        "output_tokens_details": {"thinking_tokens": 8},
    }


_COUNT = re.compile(rb'("[a-z0-9_]*_tokens":)\d+')


def _counts_masked(raw: bytes) -> bytes:
    return _COUNT.sub(rb"\1N", raw)


async def _stream(client: httpx2.AsyncClient, body: dict[str, Any]) -> bytes:
    r = await client.post("/v1/messages", json={**body, "stream": True}, headers=HEADERS)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    assert "content-length" not in r.headers
    return r.content


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("fixture", "extra"),
    [
        ("stream_text.txt", {}),
        (
            "stream_thinking_tool_use.txt",
            {
                "max_tokens": 2048,
                "thinking": {"type": "enabled", "budget_tokens": 1024},
                "tools": [TOOL],
                "tool_choice": {"type": "any"},
            },
        ),
    ],
)
async def test_stream_matches_fixture(
    client: httpx2.AsyncClient, fixture: str, extra: dict[str, Any]
) -> None:
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "What is the weather in Oslo this week?"}],
        **extra,
    }
    raw = await _stream(client, body)
    expected = (FIXTURES / fixture).read_bytes()
    # Token counts belong to the server model's tokenizer (tested there); the fixture pins
    # everything else, byte for byte.
    assert _counts_masked(raw) == _counts_masked(expected), f"{fixture}:\n{raw.decode()}"
    events = list(SSEDecoder().feed(raw))
    assert all(e.event == e.json()["type"] for e in events)


@pytest.mark.anyio
async def test_stream_and_non_stream_agree(client: httpx2.AsyncClient) -> None:
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "same answer twice"}],
    }
    plain = (await client.post("/v1/messages", json=body, headers=HEADERS)).json()
    events = [e.json() for e in SSEDecoder().feed(await _stream(client, body))]
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert text == plain["content"][0]["text"]
    final_usage = events[-2]["usage"]
    assert final_usage["output_tokens"] == plain["usage"]["output_tokens"]
    assert final_usage["input_tokens"] == plain["usage"]["input_tokens"]
