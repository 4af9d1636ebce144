"""``echo``: short deterministic replies, JSON when asked, tool calls when forced.

- JSON required (``output_config.format`` with a ``json_schema``): a compact JSON value that
  matches the schema, its strings taken from the user's last words — Claude Code's session-title
  request (``{"title": …}``) gets a valid title.
- ``tool_choice`` ``any`` / ``tool``: a call to the first / the named tool, its input generated
  from the tool's ``input_schema``. With ``auto``, a call to a tool the user's last text asks
  for by name ("use get_weather", "call the get_weather"), unless the last user message already
  carries tool results.
- Otherwise: ``Echo: <the user's last text, whitespace collapsed, at most 200 characters>``,
  or ``Tool result received: …`` after tool results.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from tokenomy.emulator.brains.base import BrainRequest, Reply, TextOut, ToolUseOut
from tokenomy.emulator.brains.schema import sample_from_schema

__all__ = ["EchoBrain"]

_SNIPPET_CHARS = 200


def _snippet(text: str, limit: int = _SNIPPET_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _hint(text: str) -> str:
    words = re.findall(r"[\w'-]+", text)[:6]
    return " ".join(words).capitalize() if words else "Conversation"


class EchoBrain:
    """Deterministic, short, schema-respecting replies."""

    @property
    def name(self) -> str:
        return "echo"

    def reply(self, request: BrainRequest) -> Reply:
        user_text = request.last_user_text()
        schema = request.output_schema()
        if schema is not None:
            value = sample_from_schema(schema, hint=_hint(user_text))
            return Reply(blocks=(TextOut(json.dumps(value, ensure_ascii=False)),))
        tool = self._tool_to_call(request, user_text)
        if tool is not None:
            tool_input = sample_from_schema(
                tool.get("input_schema", {}), hint=_snippet(user_text, 60)
            )
            if not isinstance(tool_input, Mapping):
                tool_input = {}
            return Reply(
                blocks=(
                    TextOut(f"Calling {tool['name']}."),
                    ToolUseOut(name=str(tool["name"]), input=dict(tool_input)),
                )
            )
        if request.last_user_has_tool_results():
            return Reply(blocks=(TextOut(f"Tool result received: {_snippet(user_text)}"),))
        if not user_text.strip():
            return Reply(blocks=(TextOut("Hello from the tokenomy emulator."),))
        return Reply(blocks=(TextOut(f"Echo: {_snippet(user_text)}"),))

    @staticmethod
    def _tool_to_call(request: BrainRequest, user_text: str) -> Mapping[str, Any] | None:
        custom = [t for t in request.tools if isinstance(t.get("input_schema"), Mapping)]
        if not custom:
            return None
        choice = request.tool_choice
        kind = choice.get("type")
        if kind == "none":
            return None
        if kind == "tool":
            return next((t for t in custom if t["name"] == choice.get("name")), None)
        if kind == "any":
            return custom[0]
        if request.last_user_has_tool_results():
            return None
        named = set(re.findall(r"\b(?:use|call)\s+(?:the\s+)?([A-Za-z0-9_-]+)", user_text))
        return next((t for t in custom if t["name"] in named), None)
