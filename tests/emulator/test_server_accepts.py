"""Everything real clients send (shared/reference/real-clients.md) is accepted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.emulator.test_server_cache_rules import png
from tests.emulator.test_validate import _DROP, EPH, body, image, msgs, result, use
from tokenomy.emulator.server import ServerModel


@dataclass(frozen=True)
class Good:
    id: str
    body: dict[str, Any]
    endpoint: str = "messages"


GOOD: list[Good] = [
    Good("minimal", body()),
    Good(
        "unknown-top-level-fields",
        body(safeguards={"x": 1}, future_field=[1, 2], anthropic_beta=["x"]),
    ),
    Good("system-string", body(system="You are terse.")),
    Good(
        "system-blocks",
        body(
            system=[
                {"type": "text", "text": "a"},
                {"type": "text", "text": "b", "cache_control": EPH},
            ]
        ),
    ),
    Good("system-empty-text-without-marker", body(system=[{"type": "text", "text": ""}])),
    Good("content-list", body(messages=msgs(("user", [{"type": "text", "text": "hi"}])))),
    Good("role-system-last", body(messages=msgs(("user", "hi"), ("system", "be brief")))),
    Good(
        "role-system-middle",
        body(
            messages=msgs(
                ("user", "q"),
                ("assistant", "a"),
                ("system", [{"type": "text", "text": "note", "cache_control": EPH}]),
                ("user", "b"),
            )
        ),
    ),
    Good("consecutive-user-turns", body(messages=msgs(("user", "a"), ("user", "b")))),
    Good("final-assistant-empty", body(messages=msgs(("user", "a"), ("assistant", "")))),
    Good("prefill", body(messages=msgs(("user", "a"), ("assistant", "The answer is")))),
    Good("thinking-adaptive", body(thinking={"type": "adaptive"})),
    Good("thinking-disabled", body(thinking={"type": "disabled"})),
    Good(
        "thinking-enabled",
        body(max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 2048}),
    ),
    Good(
        "output-config",
        body(
            output_config={
                "effort": "low",
                "format": {
                    "type": "json_schema",
                    "schema": {"type": "object", "required": ["title"]},
                },
            }
        ),
    ),
    Good(
        "context-management",
        body(context_management={"edits": [{"type": "clear_tool_uses_20250919"}]}),
    ),
    Good(
        "claude-code-tools",
        body(
            tools=[
                {
                    "name": "Bash",
                    "description": "run",
                    "input_schema": {
                        "$schema": "http://json-schema.org/draft-07/schema#",
                        "type": "object",
                        "properties": {},
                    },
                },
                {
                    "name": "Later",
                    "description": "deferred",
                    "input_schema": {"type": "object"},
                    "defer_loading": True,
                },
                {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
            ],
            tool_choice={"type": "auto"},
        ),
    ),
    Good(
        "metadata-user-id-json-string",
        body(metadata={"user_id": '{"device_id":"d","session_id":"s"}'}),
    ),
    Good(
        "tool-round-trip",
        body(
            messages=msgs(
                ("user", "q"),
                ("assistant", [{"type": "text", "text": "calling"}, use("toolu_1")]),
                ("user", [result("toolu_1"), {"type": "text", "text": "go on"}]),
            )
        ),
    ),
    Good(
        "tool-result-blocks",
        body(
            messages=msgs(
                ("user", "q"),
                ("assistant", [use("toolu_1")]),
                (
                    "user",
                    [result("toolu_1", [{"type": "text", "text": "r", "cache_control": EPH}])],
                ),
            )
        ),
    ),
    Good(
        "tool-result-error-flag",
        body(
            messages=msgs(
                ("user", "q"),
                ("assistant", [use("toolu_1")]),
                ("user", [{**result("toolu_1"), "is_error": True}]),
            )
        ),
    ),
    Good(
        "system-between-tool-use-and-result",
        body(
            messages=msgs(
                ("user", "q"),
                ("assistant", [use("toolu_1")]),
                ("system", "reminder"),
                ("user", [result("toolu_1")]),
            )
        ),
    ),
    Good(
        "pending-tool-use-last", body(messages=msgs(("user", "q"), ("assistant", [use("toolu_1")])))
    ),
    Good(
        "image-png",
        body(messages=msgs(("user", [image(png(3, 5)), {"type": "text", "text": "what?"}]))),
    ),
    Good(
        "image-url",
        body(
            messages=msgs(
                (
                    "user",
                    [
                        {
                            "type": "image",
                            "source": {"type": "url", "url": "https://example.invalid/a.png"},
                        }
                    ],
                )
            )
        ),
    ),
    Good(
        "document-text",
        body(
            messages=msgs(
                (
                    "user",
                    [
                        {
                            "type": "document",
                            "source": {"type": "text", "media_type": "text/plain", "data": "hello"},
                            "citations": {"enabled": True},
                        }
                    ],
                )
            )
        ),
    ),
    Good("max-tokens-zero-prewarm", body(max_tokens=0, cache_control=EPH)),
    Good("max-tokens-zero-adaptive-thinking", body(max_tokens=0, thinking={"type": "adaptive"})),
    Good("automatic-caching", body(cache_control={"type": "ephemeral", "ttl": "1h"})),
    Good("count-tokens-no-max-tokens", body(max_tokens=_DROP), endpoint="count_tokens"),
    Good("batch-item", body(), endpoint="batch_item"),
    Good("batch-item-speed-standard", body(speed="standard"), endpoint="batch_item"),
    Good("model-with-provider-suffix", body(model="claude-opus-4-8[1m]")),
    Good("retired-model-still-known", body(model="claude-3-haiku-20240307", max_tokens=10)),
    Good(
        "null-optionals",
        body(system=None, tools=None, tool_choice=None, thinking=None, metadata=None),
    ),
]


@pytest.mark.parametrize("case", GOOD, ids=[c.id for c in GOOD])
def test_what_real_clients_send_is_accepted(case: Good) -> None:
    ServerModel().validate(case.body, endpoint=case.endpoint)  # type: ignore[arg-type]
