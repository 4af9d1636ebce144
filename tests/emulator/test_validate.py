"""Request validation: every bad input gets the real API's status, error type and message.

What real clients send is accepted: ``test_server_accepts.py``."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import pytest

from tests.emulator.test_server_cache_rules import png
from tokenomy.emulator.server import ApiError, ServerModel

MODEL = "claude-opus-4-8"


def body(**over: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    }
    b.update(over)
    return {k: v for k, v in b.items() if v is not _DROP}


_DROP = object()


def msgs(*pairs: tuple[str, Any]) -> list[dict[str, Any]]:
    return [{"role": r, "content": c} for r, c in pairs]


def use(tid: str, name: str = "f") -> dict[str, Any]:
    return {"type": "tool_use", "id": tid, "name": name, "input": {}}


def result(tid: str, content: Any = "ok") -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tid, "content": content}


def image(data: str, media: str = "image/png") -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}


@dataclass(frozen=True)
class Bad:
    id: str
    body: Any
    message: str  # the exact message, or a prefix when it ends with "…"
    status: int = 400
    endpoint: str = "messages"
    error_type: str = "invalid_request_error"


THINK = {"type": "thinking", "thinking": "hmm", "signature": "sig"}
EPH = {"type": "ephemeral"}

BAD: list[Bad] = [
    Bad(
        "not-an-object",
        [1, 2],
        "Input should be a valid dictionary or object to extract fields from",
    ),
    Bad("null-body", None, "Input should be a valid dictionary or object to extract fields from"),
    Bad("model-missing", body(model=_DROP), "model: Field required"),
    Bad("model-not-string", body(model=5), "model: Input should be a valid string"),
    Bad("max-tokens-missing", body(max_tokens=_DROP), "max_tokens: Field required"),
    Bad("max-tokens-string", body(max_tokens="10"), "max_tokens: Input should be a valid integer"),
    Bad("max-tokens-bool", body(max_tokens=True), "max_tokens: Input should be a valid integer"),
    Bad(
        "max-tokens-negative",
        body(max_tokens=-1),
        "max_tokens: Input should be greater than or equal to 0",
    ),
    Bad(
        "max-tokens-above-model",
        body(max_tokens=128_001),
        "max_tokens: 128001 > 128000, which is the maximum allowed number of output tokens for "
        "claude-opus-4-8",
    ),
    Bad("messages-missing", body(messages=_DROP), "messages: Field required"),
    Bad(
        "messages-not-list",
        body(messages={"role": "user"}),
        "messages: Input should be a valid list",
    ),
    Bad(
        "messages-empty",
        body(messages=[]),
        "messages: List should have at least 1 item after validation, not 0",
    ),
    Bad(
        "message-not-object",
        body(messages=["hi"]),
        "messages.0: Input should be a valid dictionary or object to extract fields from",
    ),
    Bad("role-missing", body(messages=[{"content": "hi"}]), "messages.0.role: Field required"),
    Bad(
        "role-unknown",
        body(messages=msgs(("bot", "hi"))),
        "messages.0.role: Input should be 'user', 'assistant' or 'system'",
    ),
    Bad("content-missing", body(messages=[{"role": "user"}]), "messages.0.content: Field required"),
    Bad(
        "content-number",
        body(messages=msgs(("user", 3))),
        "messages.0.content: Input should be a valid string or a valid list",
    ),
    Bad(
        "content-empty-string",
        body(messages=msgs(("user", ""))),
        "messages.0: all messages must have non-empty content except for the optional final "
        "assistant message",
    ),
    Bad(
        "content-empty-list",
        body(messages=msgs(("user", "a"), ("assistant", []), ("user", "b"))),
        "messages.1: all messages must have non-empty content except for the optional final "
        "assistant message",
    ),
    Bad(
        "final-assistant-trailing-space",
        body(messages=msgs(("user", "a"), ("assistant", "Sure "))),
        "messages: final assistant content cannot end with trailing whitespace",
    ),
    Bad(
        "unknown-block-type",
        body(messages=msgs(("user", [{"type": "video", "url": "x"}]))),
        "messages.0.content.0: Input tag 'video' found using 'type' does not match any of the "
        "expected tags: …",
    ),
    Bad(
        "block-without-type",
        body(messages=msgs(("user", [{"text": "x"}]))),
        "messages.0.content.0: Unable to extract tag using discriminator 'type'",
    ),
    Bad(
        "block-not-object",
        body(messages=msgs(("user", ["x"]))),
        "messages.0.content.0: Input should be a valid dictionary or object to extract fields from",
    ),
    Bad(
        "text-not-string",
        body(messages=msgs(("user", [{"type": "text", "text": 1}]))),
        "messages.0.content.0.text: Input should be a valid string",
    ),
    Bad(
        "empty-text-block",
        body(messages=msgs(("user", [{"type": "text", "text": ""}]))),
        "messages: text content blocks must be non-empty",
    ),
    Bad(
        "whitespace-text-block",
        body(messages=msgs(("user", [{"type": "text", "text": " \n"}]))),
        "messages: text content blocks must be non-empty",
    ),
    Bad(
        "cache-control-on-empty-text",
        body(messages=msgs(("user", [{"type": "text", "text": "", "cache_control": EPH}]))),
        "messages.0.content.0.text: cache_control cannot be set for empty text blocks",
    ),
    Bad(
        "cache-control-on-empty-system-text",
        body(system=[{"type": "text", "text": "", "cache_control": EPH}]),
        "system.0.text: cache_control cannot be set for empty text blocks",
    ),
    Bad(
        "cache-control-on-thinking",
        body(
            messages=msgs(
                ("user", "q"),
                ("assistant", [{**THINK, "cache_control": EPH}, {"type": "text", "text": "a"}]),
                ("user", "b"),
            )
        ),
        "messages.1.content.0.thinking.cache_control: Extra inputs are not permitted",
    ),
    Bad(
        "cache-control-bad-type",
        body(
            messages=msgs(
                ("user", [{"type": "text", "text": "x", "cache_control": {"type": "persistent"}}])
            )
        ),
        "messages.0.content.0.cache_control.type: Input should be 'ephemeral'",
    ),
    Bad(
        "cache-control-bad-ttl",
        body(
            messages=msgs(
                (
                    "user",
                    [
                        {
                            "type": "text",
                            "text": "x",
                            "cache_control": {"type": "ephemeral", "ttl": "10m"},
                        }
                    ],
                )
            )
        ),
        "messages.0.content.0.cache_control.ttl: Input should be '5m' or '1h'",
    ),
    Bad(
        "top-level-cache-control-bad",
        body(cache_control={"type": "ephemeral", "ttl": 5}),
        "cache_control.ttl: Input should be '5m' or '1h'",
    ),
    Bad(
        "five-breakpoints",
        body(
            messages=msgs(
                (
                    "user",
                    [{"type": "text", "text": f"b{i}", "cache_control": EPH} for i in range(5)],
                )
            )
        ),
        "A maximum of 4 blocks with cache_control may be provided. Found 5.",
    ),
    Bad(
        "tool-result-without-tool-use",
        body(messages=msgs(("user", "q"), ("assistant", "a"), ("user", [result("toolu_x")]))),
        "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_x. "
        "Each `tool_result` block must have a corresponding `tool_use` block in the previous "
        "message.",
    ),
    Bad(
        "tool-result-in-first-message",
        body(messages=msgs(("user", [result("toolu_1")]))),
        "messages.0.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_1. …",
    ),
    Bad(
        "tool-use-without-result",
        body(
            messages=msgs(
                ("user", "q"),
                ("assistant", [use("toolu_1"), use("toolu_2")]),
                ("user", [result("toolu_1")]),
            )
        ),
        "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: "
        "toolu_2. Each `tool_use` block must have a corresponding `tool_result` block in the next "
        "message.",
    ),
    Bad(
        "tool-result-not-first",
        body(
            messages=msgs(
                ("user", "q"),
                ("assistant", [use("toolu_1")]),
                ("user", [{"type": "text", "text": "here"}, result("toolu_1")]),
            )
        ),
        "messages.2.content.1: `tool_result` blocks must come first in the user message content…",
    ),
    Bad(
        "duplicate-tool-use-ids",
        body(
            messages=msgs(
                ("user", "q"),
                ("assistant", [use("toolu_1"), use("toolu_1")]),
                ("user", [result("toolu_1")]),
            )
        ),
        "messages.1.content.1: `tool_use` ids must be unique",
    ),
    Bad(
        "tool-use-input-not-object",
        body(messages=msgs(("user", "q"), ("assistant", [{**use("t"), "input": []}]))),
        "messages.1.content.0.input: Input should be a valid dictionary",
    ),
    Bad(
        "unknown-model",
        body(model="claude-nonexistent-9"),
        "model: claude-nonexistent-9",
        status=404,
        error_type="not_found_error",
    ),
    Bad(
        "unknown-model-count-tokens",
        body(model="gpt-4o", max_tokens=_DROP),
        "model: gpt-4o",
        status=404,
        endpoint="count_tokens",
        error_type="not_found_error",
    ),
    Bad(
        "prewarm-stream",
        body(max_tokens=0, stream=True),
        "max_tokens: 0 (cache pre-warming) cannot be combined with `stream: true`…",
    ),
    Bad(
        "prewarm-thinking",
        body(max_tokens=0, thinking={"type": "enabled", "budget_tokens": 1024}),
        'max_tokens: 0 (cache pre-warming) cannot be combined with `thinking.type: "enabled"`…',
    ),
    Bad(
        "prewarm-format",
        body(
            max_tokens=0,
            output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}},
        ),
        "max_tokens: 0 (cache pre-warming) cannot be combined with `output_config.format`…",
    ),
    Bad(
        "prewarm-tool-choice-any",
        body(
            max_tokens=0,
            tools=[{"name": "f", "input_schema": {"type": "object"}}],
            tool_choice={"type": "any"},
        ),
        "max_tokens: 0 (cache pre-warming) cannot be combined with `tool_choice` of type 'any'…",
    ),
    Bad(
        "batch-max-tokens-0",
        body(max_tokens=0),
        "max_tokens: Input should be greater than or equal to 1 in a Message Batch…",
        endpoint="batch_item",
    ),
    Bad(
        "batch-stream",
        body(stream=True),
        "stream: streaming is not supported in a Message Batch…",
        endpoint="batch_item",
    ),
    Bad(
        "batch-speed",
        body(speed="fast"),
        "speed: fast mode is not supported in a Message Batch…",
        endpoint="batch_item",
    ),
    Bad(
        "batch-store",
        body(store=True),
        "store: not supported in a Message Batch…",
        endpoint="batch_item",
    ),
    Bad(
        "tool-bad-name",
        body(tools=[{"name": "has space", "input_schema": {"type": "object"}}]),
        "tools.0.custom.name: String should match pattern …",
    ),
    Bad(
        "tool-no-schema", body(tools=[{"name": "f"}]), "tools.0.custom.input_schema: Field required"
    ),
    Bad(
        "tool-schema-not-object-type",
        body(tools=[{"name": "f", "input_schema": {"type": "array"}}]),
        "tools.0.custom.input_schema.type: Input should be 'object'",
    ),
    Bad(
        "tool-duplicate-names",
        body(tools=[{"name": "f", "input_schema": {"type": "object"}}] * 2),
        "tools: Tool names must be unique.",
    ),
    Bad("tools-not-list", body(tools={"name": "f"}), "tools: Input should be a valid list"),
    Bad(
        "tool-choice-unknown",
        body(tool_choice={"type": "maybe"}),
        "tool_choice: Input tag 'maybe' found …",
    ),
    Bad(
        "tool-choice-tool-no-name",
        body(
            tools=[{"name": "f", "input_schema": {"type": "object"}}], tool_choice={"type": "tool"}
        ),
        "tool_choice.tool.name: Field required",
    ),
    Bad(
        "tool-choice-any-without-tools",
        body(tool_choice={"type": "any"}),
        "tool_choice: tool_choice of type 'any' or 'tool' requires `tools`…",
    ),
    Bad("thinking-unknown", body(thinking={"type": "deep"}), "thinking: Input tag 'deep' found …"),
    Bad(
        "thinking-budget-small",
        body(thinking={"type": "enabled", "budget_tokens": 100}),
        "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
    ),
    Bad(
        "thinking-budget-missing",
        body(thinking={"type": "enabled"}),
        "thinking.enabled.budget_tokens: Field required",
    ),
    Bad(
        "thinking-budget-over-max-tokens",
        body(max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 2000}),
        "`max_tokens` must be greater than `thinking.budget_tokens`…",
    ),
    Bad(
        "effort-unknown",
        body(output_config={"effort": "extreme"}),
        "output_config.effort: Input should be …",
    ),
    Bad(
        "system-not-text", body(system=[{"type": "image"}]), "system.0.type: Input should be 'text'"
    ),
    Bad("system-number", body(system=7), "system: Input should be a valid string or a valid list"),
    Bad("temperature-range", body(temperature=1.5), "temperature: Input should be between 0 and 1"),
    Bad("stream-not-bool", body(stream="yes"), "stream: Input should be a valid boolean"),
    Bad(
        "stop-sequences-not-strings",
        body(stop_sequences=[1]),
        "stop_sequences: Input should be a valid list of strings",
    ),
    Bad(
        "metadata-user-id-number",
        body(metadata={"user_id": 5}),
        "metadata.user_id: Input should be a valid string",
    ),
    Bad(
        "speed-fast-unsupported-model",
        body(model="claude-sonnet-4-6", speed="fast"),
        "speed: fast mode is not available for claude-sonnet-4-6…",
    ),
    Bad(
        "image-bad-base64",
        body(messages=msgs(("user", [image("@@@")]))),
        "messages.0.content.0.source.base64.data: invalid base64 data",
    ),
    Bad(
        "image-not-an-image",
        body(messages=msgs(("user", [image(base64.b64encode(b"hello world").decode())]))),
        "Could not process image",
    ),
    Bad(
        "image-media-mismatch",
        body(messages=msgs(("user", [image(png(2, 2), media="image/jpeg")]))),
        "messages.0.content.0.source.base64: The image was specified using the image/jpeg media "
        "type, but the image appears to be a image/png image",
    ),
    Bad(
        "image-no-source",
        body(messages=msgs(("user", [{"type": "image"}]))),
        "messages.0.content.0.source: Field required",
    ),
    Bad(
        "document-unknown-source",
        body(messages=msgs(("user", [{"type": "document", "source": {"type": "ftp"}}]))),
        "messages.0.content.0.source: Input tag 'ftp' found …",
    ),
    Bad(
        "system-role-message-with-image",
        body(messages=msgs(("user", "q"), ("system", [image(png(2, 2))]))),
        "messages.1.content.0: Input tag 'image' found using 'type' does not match any of the "
        "expected tags: 'text'",
    ),
    Bad(
        "prompt-too-long",
        body(model="claude-haiku-4-5", messages=msgs(("user", "word " * 210_000))),
        "prompt is too long: …",
    ),
]


@pytest.mark.parametrize("case", BAD, ids=[c.id for c in BAD])
def test_bad_input_gets_the_api_error(case: Bad) -> None:
    with pytest.raises(ApiError) as err:
        ServerModel().validate(case.body, endpoint=case.endpoint)  # type: ignore[arg-type]
    e = err.value
    assert (e.status, e.error_type) == (case.status, case.error_type)
    if case.message.endswith("…"):
        assert e.message.startswith(case.message[:-1].rstrip()), e.message
    else:
        assert e.message == case.message


def test_validate_never_touches_the_cache() -> None:
    m = ServerModel()
    m.validate(body(cache_control=EPH), endpoint="messages")
    assert m.entries(now_s=0) == []
    assert m.stats()["requests"] == 0


def test_deep_nesting_is_a_400_not_a_crash() -> None:
    deep: Any = {}
    for _ in range(5000):
        deep = {"a": deep}
    b = body(messages=msgs(("user", "q"), ("assistant", [{**use("t"), "input": deep}])))
    with pytest.raises(ApiError) as err:
        ServerModel().admit(b, scope="k", now_s=0)
    assert err.value.status == 400
