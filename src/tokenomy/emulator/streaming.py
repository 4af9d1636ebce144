"""A finished Message as the event sequence the streaming API sends. Pure: no I/O, no clock.

Order (reference sheet §7): ``message_start`` (input-side usage, a small output count),
``ping``, then per content block ``content_block_start`` → deltas → ``content_block_stop``,
then ``message_delta`` (stop reason, cumulative usage) and ``message_stop``.

- text: ``text_delta`` pieces of a few words;
- ``tool_use``: starts with ``input: {}``, then ``input_json_delta`` fragments of the
  compact JSON, the first one ``""`` as the API often sends;
- thinking: ``thinking_delta`` pieces, then one ``signature_delta`` just before the stop.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

import orjson

__all__ = ["DELTA_USAGE_KEYS", "message_events", "split_text"]

_PIECE_CHARS: Final = 24
_WORD = re.compile(r"\S+\s*|\s+")
# The usage keys a message_delta carries (the SDK's MessageDeltaUsage).
DELTA_USAGE_KEYS: Final = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
    "output_tokens_details",
    "server_tool_use",
)


def split_text(text: str, *, piece_chars: int = _PIECE_CHARS) -> list[str]:
    """Cut text into pieces of a few words (never inside a word unless it is very long)."""
    pieces: list[str] = []
    current = ""
    for m in _WORD.finditer(text):
        word = m.group(0)
        if current and len(current) + len(word) > piece_chars:
            pieces.append(current)
            current = ""
        while len(word) > 4 * piece_chars:
            pieces.append(word[: 4 * piece_chars])
            word = word[4 * piece_chars :]
        current += word
    if current:
        pieces.append(current)
    return pieces


def _json_fragments(value: Any, *, piece_chars: int) -> list[str]:
    text = orjson.dumps(value).decode()
    if text == "{}":
        return [""]
    return ["", *(text[i : i + piece_chars] for i in range(0, len(text), piece_chars))]


def _block_events(index: int, block: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    kind = block.get("type")
    if kind == "text":
        yield {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "text", "text": ""},
        }
        for piece in split_text(str(block.get("text", ""))):
            yield {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "text_delta", "text": piece},
            }
    elif kind == "tool_use":
        yield {
            "type": "content_block_start",
            "index": index,
            "content_block": {
                "type": "tool_use",
                "id": block["id"],
                "name": block["name"],
                "input": {},
            },
        }
        for frag in _json_fragments(block.get("input", {}), piece_chars=_PIECE_CHARS):
            yield {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "input_json_delta", "partial_json": frag},
            }
    elif kind == "thinking":
        yield {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        }
        for piece in split_text(str(block.get("thinking", ""))):
            yield {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "thinking_delta", "thinking": piece},
            }
        yield {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "signature_delta", "signature": str(block.get("signature", ""))},
        }
    else:  # any other block: whole, as the start event (the SDK accumulates it as is)
        yield {"type": "content_block_start", "index": index, "content_block": dict(block)}
    yield {"type": "content_block_stop", "index": index}


def message_events(
    message: Mapping[str, Any], *, start_output_tokens: int = 1
) -> Iterator[dict[str, Any]]:
    """Every event of the stream for ``message`` (a complete non-streaming Message body)."""
    usage: Mapping[str, Any] = message.get("usage", {})
    final_output = int(usage.get("output_tokens", 0))
    start_usage = dict(usage)
    start_usage["output_tokens"] = min(start_output_tokens, final_output)
    start_usage.pop("output_tokens_details", None)
    # the Message as the API starts it: no content and no stop reason yet, in the API's key order
    replaced: dict[str, Any] = {
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    started = {key: replaced.get(key, value) for key, value in message.items()}
    yield {"type": "message_start", "message": started}
    yield {"type": "ping"}
    for index, block in enumerate(message.get("content", [])):
        yield from _block_events(index, block)
    yield {
        "type": "message_delta",
        "delta": {
            "stop_reason": message.get("stop_reason"),
            "stop_sequence": message.get("stop_sequence"),
        },
        "usage": {k: usage[k] for k in DELTA_USAGE_KEYS if k in usage and usage[k] is not None},
    }
    yield {"type": "message_stop"}
