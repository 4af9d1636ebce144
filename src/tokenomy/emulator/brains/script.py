"""``script``: a scenario file decides each turn's reply.

A scenario (YAML or JSON)::

    name: weather                 # optional; the name to select it by (default "script")
    turns:
      - match: {turn: 0}          # the first request of a conversation
        content:
          - text: "Let me check the weather."
          - tool_use: {name: get_weather, input: {city: Paris}}
      - match: {contains: "sunny"}            # case-insensitive, on the last user text
        say: "It is sunny in Paris."          # shorthand for content: [{text: …}]
      - match: {regex: "^bye\\\\b"}
        say: "Goodbye."
        stop_reason: end_turn
    default:                      # when no rule matches (optional)
      say: "I have nothing scripted for this."

Rules are tried in order; the first whose every condition holds wins. Conditions: ``turn``
(an int or a list: how many assistant turns the conversation already holds, 0 on the first
request), ``contains`` (substring, case-insensitive), ``regex`` (``re.search``), both on the
last user text (the last text block of the newest user message, or its tool results' text),
``tool_result`` (true: the newest user message carries tool results). A rule without
``match`` always matches. Content items: ``{text: …}``, ``{tool_use: {name, input, id?}}``,
``{thinking: …}``. ``stop_reason`` defaults to ``tool_use`` when the reply calls a tool,
else ``end_turn``; ``stop_sequence`` goes with ``stop_reason: stop_sequence``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

import yaml

from tokenomy.emulator.brains.base import (
    BrainRequest,
    OutBlock,
    Reply,
    StopReason,
    TextOut,
    ThinkingOut,
    ToolUseOut,
)
from tokenomy.errors import ConfigError

__all__ = ["ScriptBrain", "ScriptRule", "load_script", "parse_script"]

_STOP_REASONS: Final = (
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
)
_FALLBACK = Reply(blocks=(TextOut("(the script has no reply for this turn)"),))


@dataclass(frozen=True, slots=True)
class ScriptRule:
    """One rule: conditions, then the reply."""

    reply: Reply
    turns: tuple[int, ...] = ()
    contains: str | None = None
    regex: re.Pattern[str] | None = None
    tool_result: bool | None = None

    def matches(self, request: BrainRequest, *, user_text: str) -> bool:
        if self.turns and request.turn_index not in self.turns:
            return False
        if self.contains is not None and self.contains.lower() not in user_text.lower():
            return False
        if self.regex is not None and self.regex.search(user_text) is None:
            return False
        return self.tool_result is None or self.tool_result == request.last_user_has_tool_results()


class ScriptBrain:
    """Replies from a scenario, rule by rule."""

    def __init__(
        self, rules: tuple[ScriptRule, ...], *, default: Reply | None = None, name: str = "script"
    ) -> None:
        self._rules = rules
        self._default = default or _FALLBACK
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def reply(self, request: BrainRequest) -> Reply:
        user_text = request.last_user_text()
        for rule in self._rules:
            if rule.matches(request, user_text=user_text):
                return rule.reply
        return self._default


def load_script(path: Path) -> ScriptBrain:
    """Read a scenario from a ``.json``, ``.yaml`` or ``.yml`` file."""
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read scenario file {str(path)!r}: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid JSON/YAML ({exc}); fix the scenario") from None
    return parse_script(data, source=str(path))


def parse_script(data: object, *, source: str = "scenario") -> ScriptBrain:
    """Validate a loaded scenario; errors name the rule and the field."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: a scenario is a mapping with 'turns', got {data!r}")
    unknown = set(data) - {"name", "turns", "default"}
    if unknown:
        raise ConfigError(f"{source}: unknown keys {sorted(unknown)}; use name, turns, default")
    turns = data.get("turns", [])
    if not isinstance(turns, list):
        raise ConfigError(f"{source}: 'turns' must be a list of rules")
    name = data.get("name", "script")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{source}: 'name' must be a non-empty string")
    rules = tuple(_rule(r, where=f"{source}: turns[{i}]") for i, r in enumerate(turns))
    default = data.get("default")
    return ScriptBrain(
        rules,
        default=None if default is None else _reply(default, where=f"{source}: default"),
        name=name,
    )


def _rule(raw: object, *, where: str) -> ScriptRule:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {raw!r}")
    match = raw.get("match", {})
    if not isinstance(match, Mapping):
        raise ConfigError(f"{where}: 'match' must be a mapping of conditions")
    unknown = set(match) - {"turn", "contains", "regex", "tool_result"}
    if unknown:
        raise ConfigError(f"{where}: unknown match keys {sorted(unknown)}")
    turn = match.get("turn", [])
    turn_list = [turn] if isinstance(turn, int) else turn
    if not isinstance(turn_list, list) or any(
        isinstance(t, bool) or not isinstance(t, int) or t < 0 for t in turn_list
    ):
        raise ConfigError(f"{where}: match.turn must be an integer ≥ 0 or a list of them")
    contains = match.get("contains")
    if contains is not None and not isinstance(contains, str):
        raise ConfigError(f"{where}: match.contains must be a string")
    regex = match.get("regex")
    pattern: re.Pattern[str] | None = None
    if regex is not None:
        if not isinstance(regex, str):
            raise ConfigError(f"{where}: match.regex must be a string")
        try:
            pattern = re.compile(regex)
        except re.error as exc:
            raise ConfigError(
                f"{where}: match.regex {regex!r} is not a valid regex ({exc})"
            ) from None
    tool_result = match.get("tool_result")
    if tool_result is not None and not isinstance(tool_result, bool):
        raise ConfigError(f"{where}: match.tool_result must be true or false")
    body = {k: v for k, v in raw.items() if k != "match"}
    return ScriptRule(
        reply=_reply(body, where=where),
        turns=tuple(turn_list),
        contains=contains,
        regex=pattern,
        tool_result=tool_result,
    )


def _reply(raw: object, *, where: str) -> Reply:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping with 'say' or 'content'")
    unknown = set(raw) - {"say", "content", "stop_reason", "stop_sequence"}
    if unknown:
        raise ConfigError(
            f"{where}: unknown keys {sorted(unknown)}; use say, content, stop_reason, stop_sequence"
        )
    blocks: list[OutBlock] = []
    if "say" in raw:
        if not isinstance(raw["say"], str):
            raise ConfigError(f"{where}: 'say' must be a string")
        blocks.append(TextOut(raw["say"]))
    content = raw.get("content", [])
    if not isinstance(content, list):
        raise ConfigError(f"{where}: 'content' must be a list of items")
    for j, item in enumerate(content):
        blocks.append(_block(item, where=f"{where}.content[{j}]"))
    if not blocks:
        raise ConfigError(f"{where}: a reply needs 'say' or a non-empty 'content'")
    stop = raw.get("stop_reason")
    if stop is not None and stop not in _STOP_REASONS:
        raise ConfigError(f"{where}: stop_reason must be one of {', '.join(_STOP_REASONS)}")
    seq = raw.get("stop_sequence")
    if seq is not None and not isinstance(seq, str):
        raise ConfigError(f"{where}: stop_sequence must be a string")
    return Reply(blocks=tuple(blocks), stop_reason=cast(StopReason | None, stop), stop_sequence=seq)


def _block(item: object, *, where: str) -> OutBlock:
    if not isinstance(item, Mapping) or len(item) != 1:
        raise ConfigError(
            f"{where}: an item is one of {{text: …}}, {{tool_use: …}}, {{thinking: …}}"
        )
    ((kind, value),) = item.items()
    if kind == "text" and isinstance(value, str):
        return TextOut(value)
    if kind == "thinking" and isinstance(value, str):
        return ThinkingOut(value)
    if kind == "tool_use" and isinstance(value, Mapping):
        name = value.get("name")
        tool_input: Any = value.get("input", {})
        tool_id = value.get("id")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: tool_use needs a 'name'")
        if not isinstance(tool_input, Mapping):
            raise ConfigError(f"{where}: tool_use 'input' must be a mapping")
        if tool_id is not None and not isinstance(tool_id, str):
            raise ConfigError(f"{where}: tool_use 'id' must be a string")
        return ToolUseOut(name=name, input=dict(tool_input), id=tool_id)
    raise ConfigError(f"{where}: unknown item {dict(item)!r}")
