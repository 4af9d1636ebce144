"""Request validation: the checks the real Messages API makes, with its statuses and messages.

Messages follow the real API's wording where it is known (pydantic-style ``path: problem`` for
shape errors; the API's own sentences for tool pairing, empty text, breakpoints); where the
real wording is unknown, the message is written to be as clear, naming the path and the fix.

Deliberately lenient where real clients depend on it (``shared/reference/real-clients.md``):
unknown top-level fields, unknown betas, ``role: "system"`` messages anywhere (also last),
``thinking`` adaptive/enabled/disabled, ``output_config``, ``context_management``, tools with
``defer_loading``, ``$schema`` in ``input_schema``, consecutive turns of one speaker (the API
merges them). Anything else weird is a 4xx — never an exception of another kind.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

from tokenomy.data.table import ModelInfo, ModelTable
from tokenomy.emulator._blocks import (
    CONTENT_TYPES,
    blank,
    check_block,
    check_cache_control,
    is_int,
    is_num,
    not_dict,
    require_str,
    tags,
)
from tokenomy.emulator._errors import ApiError, bad_request

__all__ = ["Endpoint", "validate_request"]

Endpoint = Literal["messages", "count_tokens", "batch_item"]

_TOOL_NAME: Final = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_EFFORTS: Final = ("low", "medium", "high", "xhigh", "max")
_BATCH_FORBIDDEN: Final = (
    "store",
    "previous_thread_event_id",
    "cache_hint",
    "context_hint",
    "research_preview_2026_02",
)


# ---------------------------------------------------------------- messages


def _check_messages(messages: object) -> None:
    if not isinstance(messages, list):
        raise bad_request("messages: Input should be a valid list")
    if not messages:
        raise bad_request("messages: List should have at least 1 item after validation, not 0")
    last = len(messages) - 1
    for i, message in enumerate(messages):
        path = f"messages.{i}"
        if not isinstance(message, Mapping):
            raise not_dict(path)
        role = message.get("role")
        if "role" not in message:
            raise bad_request(f"{path}.role: Field required")
        if role not in ("user", "assistant", "system"):
            raise bad_request(f"{path}.role: Input should be 'user', 'assistant' or 'system'")
        if "content" not in message:
            raise bad_request(f"{path}.content: Field required")
        content = message["content"]
        allowed = ("text",) if role == "system" else CONTENT_TYPES
        if isinstance(content, str):
            empty = blank(content)
        elif isinstance(content, list):
            for j, block in enumerate(content):
                check_block(block, f"{path}.content.{j}", allowed=allowed, where="messages")
            empty = not content
        else:
            raise bad_request(f"{path}.content: Input should be a valid string or a valid list")
        # An empty mid-conversation system message is accepted: Claude Code 2.1.330 sends one
        # on its first request after /compact, and that request works against the API.
        if empty and role != "system" and not (i == last and role == "assistant"):
            raise bad_request(
                f"{path}: all messages must have non-empty content except for the optional "
                "final assistant message"
            )
    final = messages[last]
    if final.get("role") == "assistant":
        content = final.get("content")
        tail = content if isinstance(content, str) else None
        if isinstance(content, list) and content and content[-1].get("type") == "text":
            tail = content[-1].get("text")
        if isinstance(tail, str) and tail and tail != tail.rstrip():
            raise bad_request(
                "messages: final assistant content cannot end with trailing whitespace"
            )
    _check_tool_pairing(messages)


def _blocks(message: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    content = message.get("content")
    return [b for b in content if isinstance(b, Mapping)] if isinstance(content, list) else []


def _check_tool_pairing(messages: Sequence[Mapping[str, Any]]) -> None:
    """tool_use ↔ tool_result pairing between consecutive turns (§8).

    Consecutive messages of one role form one turn (the API merges them); ``role: "system"``
    messages are transparent here (Claude Code inserts them between turns).
    """
    turns: list[tuple[str, list[tuple[int, int, Mapping[str, Any]]]]] = []
    for i, message in enumerate(messages):
        role = str(message.get("role"))
        if role == "system":
            continue
        blocks = [(i, j, b) for j, b in enumerate(_blocks(message))]
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, blocks))
        # tool_result blocks first in their own user message
        if role == "user":
            seen_other = False
            for j, b in enumerate(_blocks(message)):
                if b.get("type") == "tool_result":
                    if seen_other:
                        raise bad_request(
                            f"messages.{i}.content.{j}: `tool_result` blocks must come first in "
                            "the user message content, before any text, image or document; "
                            "move the text after the tool results"
                        )
                else:
                    seen_other = True
    seen_ids: set[str] = set()
    for t, (role, blocks) in enumerate(turns):
        if role == "assistant":
            uses = [(i, j, b["id"]) for i, j, b in blocks if b.get("type") == "tool_use"]
            for i, j, tid in uses:
                if tid in seen_ids:
                    raise bad_request(f"messages.{i}.content.{j}: `tool_use` ids must be unique")
                seen_ids.add(tid)
            if t + 1 < len(turns) and uses:
                answered = {
                    b.get("tool_use_id")
                    for _, _, b in turns[t + 1][1]
                    if b.get("type") == "tool_result"
                }
                missing = [tid for _, _, tid in uses if tid not in answered]
                if missing:
                    raise bad_request(
                        f"messages.{uses[0][0]}: `tool_use` ids were found without `tool_result` "
                        f"blocks immediately after: {', '.join(missing)}. Each `tool_use` block "
                        "must have a corresponding `tool_result` block in the next message."
                    )
        else:
            prev = turns[t - 1][1] if t > 0 and turns[t - 1][0] == "assistant" else []
            ids = {b.get("id") for _, _, b in prev if b.get("type") == "tool_use"}
            for i, j, b in blocks:
                if b.get("type") == "tool_result" and b.get("tool_use_id") not in ids:
                    raise bad_request(
                        f"messages.{i}.content.{j}: unexpected `tool_use_id` found in "
                        f"`tool_result` blocks: {b.get('tool_use_id')}. Each `tool_result` block "
                        "must have a corresponding `tool_use` block in the previous message."
                    )


# ---------------------------------------------------------------- the rest of the body


def _check_system(system: object) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise bad_request("system: Input should be a valid string or a valid list")
    for i, block in enumerate(system):
        path = f"system.{i}"
        if not isinstance(block, Mapping):
            raise not_dict(path)
        if block.get("type") != "text":
            raise bad_request(f"{path}.type: Input should be 'text'")
        check_block(block, path, allowed=("text",), where="system")


def _check_tools(tools: object) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise bad_request("tools: Input should be a valid list")
    names: set[str] = set()
    for i, tool in enumerate(tools):
        path = f"tools.{i}"
        if not isinstance(tool, Mapping):
            raise not_dict(path)
        kind = tool.get("type")
        if kind is None or kind == "custom":
            cp = f"{path}.custom"
            name = require_str(tool, "name", cp)
            if not _TOOL_NAME.match(name):
                raise bad_request(
                    f"{cp}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
                )
            if "input_schema" not in tool:
                raise bad_request(f"{cp}.input_schema: Field required")
            schema = tool["input_schema"]
            if not isinstance(schema, Mapping):
                raise not_dict(f"{cp}.input_schema")
            if schema.get("type") != "object":
                raise bad_request(f"{cp}.input_schema.type: Input should be 'object'")
            if tool.get("description") is not None and not isinstance(tool["description"], str):
                raise bad_request(f"{cp}.description: Input should be a valid string")
        elif not isinstance(kind, str):
            raise bad_request(f"{path}.type: Input should be a valid string")
        name_value = tool.get("name", tool.get("mcp_server_name"))
        if name_value is not None and not isinstance(name_value, str):
            raise bad_request(f"{path}.name: Input should be a valid string")
        if isinstance(name_value, str):
            if name_value in names:
                raise bad_request("tools: Tool names must be unique.")
            names.add(name_value)
        if tool.get("cache_control") is not None:
            check_cache_control(tool["cache_control"], f"{path}.cache_control")


def _check_options(body: Mapping[str, Any], *, has_tools: bool) -> None:
    tc = body.get("tool_choice")
    if tc is not None:
        if not isinstance(tc, Mapping):
            raise not_dict("tool_choice")
        kind = tc.get("type")
        if kind not in ("auto", "any", "tool", "none"):
            raise bad_request(
                f"tool_choice: Input tag '{kind}' found using 'type' does not match any of the "
                "expected tags: 'auto', 'any', 'tool', 'none'"
            )
        if kind == "tool":
            require_str(tc, "name", "tool_choice.tool")
        dp = tc.get("disable_parallel_tool_use")
        if dp is not None and not isinstance(dp, bool):
            raise bad_request(
                f"tool_choice.{kind}.disable_parallel_tool_use: Input should be a valid boolean"
            )
        if kind in ("any", "tool") and not has_tools:
            raise bad_request(
                "tool_choice: tool_choice of type 'any' or 'tool' requires `tools`; "
                "add the tools or drop tool_choice"
            )
    thinking = body.get("thinking")
    if thinking is not None:
        if not isinstance(thinking, Mapping):
            raise not_dict("thinking")
        kind = thinking.get("type")
        if kind not in ("adaptive", "disabled", "enabled"):
            raise bad_request(
                f"thinking: Input tag '{kind}' found using 'type' does not match any of the "
                "expected tags: 'adaptive', 'disabled', 'enabled'"
            )
        if kind == "enabled":
            budget = thinking.get("budget_tokens")
            if "budget_tokens" not in thinking:
                raise bad_request("thinking.enabled.budget_tokens: Field required")
            if not is_int(budget):
                raise bad_request("thinking.enabled.budget_tokens: Input should be a valid integer")
            if budget < 1024:
                raise bad_request(
                    "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
                )
    oc = body.get("output_config")
    if oc is not None:
        if not isinstance(oc, Mapping):
            raise not_dict("output_config")
        effort = oc.get("effort")
        if effort is not None and effort not in _EFFORTS:
            raise bad_request(f"output_config.effort: Input should be {tags(_EFFORTS)}")
        fmt = oc.get("format")
        if fmt is not None:
            if not isinstance(fmt, Mapping):
                raise not_dict("output_config.format")
            if fmt.get("type") != "json_schema":
                raise bad_request("output_config.format.type: Input should be 'json_schema'")
            if not isinstance(fmt.get("schema"), Mapping):
                raise bad_request("output_config.format.json_schema.schema: Field required")
    for key in ("temperature", "top_p"):
        v = body.get(key)
        if v is not None:
            if not is_num(v):
                raise bad_request(f"{key}: Input should be a valid number")
            if not 0 <= v <= 1:
                raise bad_request(f"{key}: Input should be between 0 and 1")
    top_k = body.get("top_k")
    if top_k is not None and (not is_int(top_k) or top_k < 0):
        raise bad_request("top_k: Input should be a non-negative integer")
    stops = body.get("stop_sequences")
    if stops is not None and (
        not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)
    ):
        raise bad_request("stop_sequences: Input should be a valid list of strings")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise bad_request("stream: Input should be a valid boolean")
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise not_dict("metadata")
        uid = metadata.get("user_id")
        if uid is not None and not isinstance(uid, str):
            raise bad_request("metadata.user_id: Input should be a valid string")
    speed = body.get("speed")
    if speed is not None and speed not in ("standard", "fast"):
        raise bad_request("speed: Input should be 'standard' or 'fast'")
    if body.get("cache_control") is not None:
        check_cache_control(body["cache_control"], "cache_control")
    for key in ("context_management", "container"):
        v = body.get(key)
        if v is not None and not isinstance(v, Mapping | str):
            raise not_dict(key)


def validate_request(body: object, *, endpoint: Endpoint, table: ModelTable) -> ModelInfo:
    """Check ``body`` as the API would; return the model. Raises :class:`ApiError`."""
    if not isinstance(body, Mapping):
        raise bad_request("Input should be a valid dictionary or object to extract fields from")
    if "model" not in body:
        raise bad_request("model: Field required")
    model_name = body["model"]
    if not isinstance(model_name, str):
        raise bad_request("model: Input should be a valid string")
    raw_max = body.get("max_tokens")
    max_tokens: int = raw_max if is_int(raw_max) else 0
    if endpoint != "count_tokens":
        if "max_tokens" not in body:
            raise bad_request("max_tokens: Field required")
        if not is_int(raw_max):
            raise bad_request("max_tokens: Input should be a valid integer")
        if max_tokens < 0:
            raise bad_request("max_tokens: Input should be greater than or equal to 0")
    if "messages" not in body:
        raise bad_request("messages: Field required")
    _check_system(body.get("system"))
    _check_tools(body.get("tools"))
    _check_messages(body["messages"])
    tools = body.get("tools")
    _check_options(body, has_tools=isinstance(tools, list) and bool(tools))

    model = table.find(model_name)
    if model is None:
        raise ApiError(404, f"model: {model_name}", error_type="not_found_error")
    if body.get("speed") == "fast" and model.fast is None:
        raise bad_request(f"speed: fast mode is not available for {model_name}; remove `speed`")
    if endpoint == "count_tokens":
        return model

    if max_tokens > model.max_output_tokens:
        raise bad_request(
            f"max_tokens: {max_tokens} > {model.max_output_tokens}, which is the maximum "
            f"allowed number of output tokens for {model.id}"
        )
    thinking = body.get("thinking")
    budget = thinking.get("budget_tokens") if isinstance(thinking, Mapping) else None
    thinking_on = isinstance(thinking, Mapping) and thinking.get("type") == "enabled"
    if thinking_on and is_int(budget) and 0 < max_tokens <= budget:
        raise bad_request(
            "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
            "documentation at https://docs.claude.com/en/docs/build-with-claude/"
            "extended-thinking#max-tokens-and-context-window-size"
        )
    if endpoint == "batch_item":
        _check_batch_item(body, max_tokens=max_tokens)
    elif max_tokens == 0:
        _check_prewarm(body, thinking_on=thinking_on)
    return model


def _check_prewarm(body: Mapping[str, Any], *, thinking_on: bool) -> None:
    """``max_tokens: 0`` (cache pre-warming) and what it excludes (§1.6)."""
    why = None
    if body.get("stream") is True:
        why = "`stream: true`"
    elif thinking_on:
        why = '`thinking.type: "enabled"`'
    elif isinstance(body.get("output_config"), Mapping) and body["output_config"].get("format"):
        why = "`output_config.format`"
    elif isinstance(body.get("tool_choice"), Mapping) and body["tool_choice"].get("type") in (
        "any",
        "tool",
    ):
        why = f"`tool_choice` of type '{body['tool_choice']['type']}'"
    if why is not None:
        raise bad_request(
            f"max_tokens: 0 (cache pre-warming) cannot be combined with {why}; "
            "send max_tokens ≥ 1 or drop the option"
        )


def _check_batch_item(body: Mapping[str, Any], *, max_tokens: int) -> None:
    """What a Message Batch forbids in a request's params (§3.4)."""
    if max_tokens == 0:
        raise bad_request(
            "max_tokens: Input should be greater than or equal to 1 in a Message Batch "
            "(max_tokens: 0 pre-warming is not available in batches)"
        )
    if body.get("stream") is True:
        raise bad_request("stream: streaming is not supported in a Message Batch; remove `stream`")
    if body.get("speed") == "fast":
        raise bad_request("speed: fast mode is not supported in a Message Batch; remove `speed`")
    for key in _BATCH_FORBIDDEN:
        if body.get(key) is not None:
            raise bad_request(f"{key}: not supported in a Message Batch; remove `{key}`")
