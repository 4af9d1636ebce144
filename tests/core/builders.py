"""Small builders for Messages requests used across core and pipeline tests."""

from __future__ import annotations

from typing import Any


def text(n_chars: int, *, seed: str = "x") -> str:
    """Deterministic filler text of about ``n_chars`` characters (~n/4 tokens)."""
    word = f"{seed}lorem "
    return (word * (n_chars // len(word) + 1))[:n_chars]


def tool(name: str, *, desc_chars: int = 1500) -> dict[str, Any]:
    return {
        "name": name,
        "description": text(desc_chars, seed=name),
        "input_schema": {
            "type": "object",
            "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
            "required": ["query"],
        },
    }


def agent_turns(
    n_turns: int, *, result_chars: int = 2000, calls_per_turn: int = 1
) -> list[dict[str, Any]]:
    """A tool-using transcript: user task, then (assistant tool_use, user tool_result) pairs."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Investigate the incident."}]
    for t in range(n_turns):
        uses = [
            {
                "type": "tool_use",
                "id": f"toolu_{t}_{k}",
                "name": "search",
                "input": {"query": f"q{t}{k}", "limit": 5},
            }
            for k in range(calls_per_turn)
        ]
        messages.append(
            {"role": "assistant", "content": [{"type": "text", "text": f"Step {t}."}, *uses]}
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": u["id"],
                        "content": text(result_chars, seed=u["id"]),
                    }
                    for u in uses
                ],
            }
        )
    return messages


def request(
    *,
    model: str = "claude-sonnet-4-5",
    tools: int = 3,
    system_chars: int = 8000,
    messages: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": 1024,
        "system": [{"type": "text", "text": text(system_chars, seed="sys")}],
        "messages": messages if messages is not None else [{"role": "user", "content": "hi"}],
    }
    if tools:
        body["tools"] = [tool(f"tool{i}") for i in range(tools)]
    body.update(extra)
    return body
