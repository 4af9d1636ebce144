"""role:"system" messages as real clients send them."""

from __future__ import annotations

import pytest

from tokenomy.emulator import ApiError, ServerModel


def test_an_empty_system_message_is_accepted_as_claude_code_sends_it_after_compact() -> None:
    body = {
        "model": "claude-opus-4-8",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "summarise"}, {"role": "system", "content": ""}],
        "output_config": {"effort": "high"},
    }
    ServerModel().validate(body, endpoint="messages")


def test_an_empty_user_message_is_still_refused() -> None:
    body = {
        "model": "claude-opus-4-8",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": ""}],
    }
    with pytest.raises(ApiError, match="non-empty content"):
        ServerModel().validate(body, endpoint="messages")
