"""Checks on a job's lines before anything is sent: what the API would reject, caught early.

The API validates a batch's ``params`` only when each request runs, and reports a mistake as
an ``errored`` result hours later (reference §3.3). So the runner checks each line itself, and
names the line and the field: the custom_id pattern and uniqueness, the Messages params the
API requires, the options a batch refuses (§3.4), and the request's size.

This is a client-side guard, not a second server: it checks what is certain to be refused and
leaves the rest (tool pairing, content rules) to the API, whose error comes back per request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from tokenomy.data.table import ModelTable

__all__ = [
    "CUSTOM_ID_RE",
    "KNOWN_PARAMS",
    "LineProblem",
    "check_custom_id",
    "check_params",
]

CUSTOM_ID_RE: Final = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

# Not allowed inside a Message Batch (reference §3.4).
_BATCH_FORBIDDEN: Final = (
    "stream",
    "speed",
    "store",
    "previous_thread_event_id",
    "cache_hint",
    "context_hint",
    "research_preview_2026_02",
)
# Parameters the API knows: the create params of the installed SDK (stable and beta; a test
# keeps this list a superset of them) plus sampling knobs older SDKs typed. A key outside them
# is refused by the API ("Extra inputs are not permitted"), so it is refused here, by name.
# A list, not an import: the SDK's types cost a second and 40 MB, in every CLI command.
KNOWN_PARAMS: Final = frozenset(
    {
        "betas",
        "billing_policy",
        "cache_control",
        "compaction",
        "container",
        "context_management",
        "diagnostics",
        "fallback_credit_token",
        "fallbacks",
        "inference_geo",
        "max_tokens",
        "mcp_servers",
        "messages",
        "metadata",
        "model",
        "output_config",
        "output_format",
        "service_tier",
        "speed",
        "stop_sequences",
        "stream",
        "system",
        "temperature",
        "thinking",
        "thread",
        "tool_choice",
        "tools",
        "top_k",
        "top_p",
        "user_profile_id",
        "workspace_id",
    }
)
_ROLES: Final = frozenset({"user", "assistant"})


@dataclass(frozen=True, slots=True)
class LineProblem:
    """Why one line of a job cannot be sent."""

    line: int
    custom_id: str | None
    reason: str

    def describe(self) -> str:
        who = f" (custom_id {self.custom_id!r})" if self.custom_id else ""
        return f"line {self.line}{who}: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "custom_id": self.custom_id, "reason": self.reason}


def check_custom_id(value: Any) -> str | None:
    """The problem with a caller's custom_id, or None."""
    if value is None:
        return "no custom_id; give each line a 'custom_id' (or use --template with item ids)"
    if not isinstance(value, str) or not CUSTOM_ID_RE.match(value):
        return (
            f"custom_id {value!r:.80} must be 1-64 characters of letters, digits, '_' or '-' "
            "(the API's pattern ^[a-zA-Z0-9_-]{1,64}$)"
        )
    return None


def check_params(params: Any, *, table: ModelTable) -> str | None:
    """The first reason the API would refuse ``params`` inside a batch, or None."""
    if not isinstance(params, Mapping):
        return f"'params' must be a JSON object (Messages create params), got {_kind(params)}"
    for key in _BATCH_FORBIDDEN:
        if key in params and not (key == "stream" and params[key] is False):
            return f"params.{key} is not allowed inside a Message Batch; remove it"
    unknown = sorted(k for k in params if k not in KNOWN_PARAMS)
    if unknown:
        return f"params.{unknown[0]}: unknown Messages parameter; remove it or fix its name"
    model = params.get("model")
    if not isinstance(model, str) or not model:
        return "params.model is required (a model id such as 'claude-sonnet-4-6')"
    if table.find(model) is None:
        return (
            f"params.model {model!r} is not in the model table; fix the name, or add it to "
            "your models file ('tokenomy prices --path' prints where)"
        )
    max_tokens = params.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        return f"params.max_tokens is required: an integer >= 1, got {max_tokens!r}"
    if max_tokens < 1:
        return (
            f"params.max_tokens must be >= 1 inside a batch (no max_tokens: 0 pre-warm), "
            f"got {max_tokens}"
        )
    return _check_messages(params.get("messages")) or _check_options(params, max_tokens)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return "a string" if isinstance(value, str) else type(value).__name__


def _check_messages(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "params.messages must be a non-empty list of {role, content} objects"
    for i, m in enumerate(messages):
        where = f"params.messages[{i}]"
        if not isinstance(m, Mapping):
            return f"{where} must be an object with 'role' and 'content'"
        role = m.get("role")
        if role not in _ROLES:
            return f"{where}.role must be 'user' or 'assistant', got {role!r}"
        content = m.get("content")
        if isinstance(content, str):
            if not content and i < len(messages) - 1:
                return f"{where}.content is empty; only a final assistant prefill may be empty"
            continue
        if not isinstance(content, list):
            return f"{where}.content must be a string or a list of content blocks"
        for j, block in enumerate(content):
            if not isinstance(block, Mapping) or not isinstance(block.get("type"), str):
                return f"{where}.content[{j}] must be an object with a 'type'"
    return None


def _number_in(params: Mapping[str, Any], key: str, lo: float, hi: float) -> str | None:
    if key not in params:
        return None
    v = params[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
        return f"params.{key} must be a number in [{lo:g}, {hi:g}], got {v!r}"
    return None


def _check_options(params: Mapping[str, Any], max_tokens: int) -> str | None:
    problem = _number_in(params, "temperature", 0, 1) or _number_in(params, "top_p", 0, 1)
    if problem:
        return problem
    if "top_k" in params and (
        isinstance(params["top_k"], bool)
        or not isinstance(params["top_k"], int)
        or params["top_k"] < 0
    ):
        return f"params.top_k must be an integer >= 0, got {params['top_k']!r}"
    system = params.get("system")
    if system is not None and not isinstance(system, str | list):
        return "params.system must be a string or a list of text blocks"
    tools = params.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            return "params.tools must be a list of tool definitions"
        for i, tool in enumerate(tools):
            if not isinstance(tool, Mapping) or not isinstance(tool.get("name"), str):
                return f"params.tools[{i}] must be an object with a 'name'"
    stops = params.get("stop_sequences")
    if stops is not None and (
        not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)
    ):
        return "params.stop_sequences must be a list of strings"
    thinking = params.get("thinking")
    if isinstance(thinking, Mapping) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1024:
            return f"params.thinking.budget_tokens must be an integer >= 1024, got {budget!r}"
        if budget >= max_tokens:
            return (
                f"params.thinking.budget_tokens ({budget}) must be less than max_tokens "
                f"({max_tokens})"
            )
    return None
