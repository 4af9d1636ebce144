"""What a brain is: a function from a (valid) Messages request to the content of a reply.

A brain only decides *what* the model says. The app does the rest: ids, thinking blocks when
the request enables thinking, ``max_tokens`` truncation, token counts, usage, streaming.
Brains are pure and deterministic: the same request gets the same reply.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = [
    "Brain",
    "BrainRequest",
    "OutBlock",
    "Reply",
    "StopReason",
    "TextOut",
    "ThinkingOut",
    "ToolUseOut",
    "block_texts",
    "message_texts",
]

StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"]


@dataclass(frozen=True, slots=True)
class TextOut:
    text: str


@dataclass(frozen=True, slots=True)
class ToolUseOut:
    name: str
    input: Mapping[str, Any]
    # None: the app assigns a fresh ``toolu_…`` id from its seeded counter
    id: str | None = None


@dataclass(frozen=True, slots=True)
class ThinkingOut:
    thinking: str


OutBlock = TextOut | ToolUseOut | ThinkingOut


@dataclass(frozen=True, slots=True)
class Reply:
    """The content a brain wants to send; ``stop_reason`` None means "infer it"."""

    blocks: tuple[OutBlock, ...]
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None

    @property
    def inferred_stop_reason(self) -> StopReason:
        if self.stop_reason is not None:
            return self.stop_reason
        if any(isinstance(b, ToolUseOut) for b in self.blocks):
            return "tool_use"
        return "end_turn"


@dataclass(frozen=True, slots=True)
class BrainRequest:
    """One admitted request as a brain sees it."""

    body: Mapping[str, Any]
    model_name: str
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def messages(self) -> Sequence[Mapping[str, Any]]:
        msgs = self.body.get("messages")
        if not isinstance(msgs, list):
            return ()
        return [m for m in msgs if isinstance(m, Mapping)]

    @property
    def turn_index(self) -> int:
        """How many assistant turns the conversation already holds (0 on the first request)."""
        return sum(1 for m in self.messages if m.get("role") == "assistant")

    @property
    def tools(self) -> list[Mapping[str, Any]]:
        tools = self.body.get("tools")
        if not isinstance(tools, list):
            return []
        return [t for t in tools if isinstance(t, Mapping) and isinstance(t.get("name"), str)]

    @property
    def tool_choice(self) -> Mapping[str, Any]:
        tc = self.body.get("tool_choice")
        return tc if isinstance(tc, Mapping) else {"type": "auto"}

    @property
    def disable_parallel_tool_use(self) -> bool:
        return bool(self.tool_choice.get("disable_parallel_tool_use", False))

    def last_user_message(self) -> Mapping[str, Any] | None:
        """The newest ``user`` message (Claude Code may end with a ``system`` one)."""
        msgs = self.messages
        for i in range(len(msgs) - 1, -1, -1):
            if msgs[i].get("role") == "user":
                return msgs[i]
        return None

    def last_user_text(self) -> str:
        """The text the user typed last: the last text block of the newest user message.

        Claude Code puts ``<system-reminder>`` blocks before the prompt, so the *last* text
        block is the prompt. When the message holds only tool results, their text.
        """
        m = self.last_user_message()
        if m is None:
            return ""
        content = m.get("content")
        if isinstance(content, str):
            return content
        if not isinstance(content, list):
            return ""
        texts = [
            b["text"]
            for b in content
            if isinstance(b, Mapping) and b.get("type") == "text" and isinstance(b.get("text"), str)
        ]
        if texts:
            return str(texts[-1])
        return "\n".join(t for b in content if isinstance(b, Mapping) for t in block_texts(b))

    def last_user_has_tool_results(self) -> bool:
        m = self.last_user_message()
        content = None if m is None else m.get("content")
        return isinstance(content, list) and any(
            isinstance(b, Mapping) and b.get("type") == "tool_result" for b in content
        )

    def context_texts(self) -> Iterator[str]:
        """Every piece of text the model can see: system, then each message in order."""
        system = self.body.get("system")
        if isinstance(system, str):
            yield system
        elif isinstance(system, list):
            for b in system:
                if isinstance(b, Mapping):
                    yield from block_texts(b)
        for m in self.messages:
            yield from message_texts(m)

    def output_schema(self) -> Mapping[str, Any] | None:
        """The JSON schema the reply must match (``output_config.format`` / ``output_format``)."""
        config = self.body.get("output_config")
        candidates = [
            config.get("format") if isinstance(config, Mapping) else None,
            self.body.get("output_format"),  # the older beta spelling
        ]
        for fmt in candidates:
            if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
                schema: object = fmt.get("schema")
                if isinstance(schema, Mapping):
                    return schema
        return None


def message_texts(message: Mapping[str, Any]) -> Iterator[str]:
    content = message.get("content")
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for b in content:
            if isinstance(b, Mapping):
                yield from block_texts(b)


def block_texts(block: Mapping[str, Any]) -> Iterator[str]:
    """The readable text inside one content block (text, tool results, text documents)."""
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        yield block["text"]
    elif kind == "tool_result":
        content = block.get("content")
        if isinstance(content, str):
            yield content
        elif isinstance(content, list):
            for inner in content:
                if isinstance(inner, Mapping):
                    yield from block_texts(inner)
    elif kind == "document":
        source = block.get("source")
        if isinstance(source, Mapping):
            if source.get("type") == "text" and isinstance(source.get("data"), str):
                yield source["data"]
            elif source.get("type") == "content" and isinstance(source.get("content"), list):
                for inner in source["content"]:
                    if isinstance(inner, Mapping):
                        yield from block_texts(inner)
    elif kind == "search_result" and isinstance(block.get("content"), list):
        for inner in block["content"]:
            if isinstance(inner, Mapping):
                yield from block_texts(inner)


class Brain(Protocol):
    """Decides what the emulated model says."""

    @property
    def name(self) -> str: ...

    def reply(self, request: BrainRequest) -> Reply: ...
