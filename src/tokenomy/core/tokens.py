"""A deterministic local token estimator: good enough to apportion, fast enough for every call.

The exact count comes from the API (``/v1/messages/count_tokens``, see
:mod:`tokenomy.upstream.counter`) or from the usage of a response. Locally we only need to
split a billed total into segments and to check minimum cacheable lengths roughly, so the
estimator is simple and documented (``docs/design/tokens.md``):

- text: ``ceil(utf8_bytes / 4)``, times 1.3 on the 2026 tokenizer (Opus 4.7 and later, which
  the pricing page says yields about 30% more tokens for the same text);
- structured blocks (tool definitions, ``tool_use`` inputs, documents): their compact JSON
  bytes / 4 — JSON punctuation tokenizes densely, which makes up for the keys it adds;
- images: 1,600 tokens (a ~1.15 megapixel image; the documented formula is w*h/750);
- each message adds 4 tokens of role framing; ``tools`` add the model's tool-use system prompt
  (from the model table) to the tools segment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

__all__ = [
    "IMAGE_TOKENS",
    "MESSAGE_FRAMING_TOKENS",
    "estimate_block_tokens",
    "estimate_text_tokens",
]

IMAGE_TOKENS = 1_600
MESSAGE_FRAMING_TOKENS = 4
_NEW_TOKENIZER_NUM, _NEW_TOKENIZER_DEN = 13, 10


def _scale(n: int, tokenizer: str) -> int:
    if tokenizer >= "2026":
        return -(-n * _NEW_TOKENIZER_NUM // _NEW_TOKENIZER_DEN)
    return n


def _bytes_tokens(size: int) -> int:
    return -(-size // 4) if size > 0 else 0


def estimate_text_tokens(text: str, *, tokenizer: str = "2023") -> int:
    """Estimated tokens of a piece of text."""
    size = len(text) if text.isascii() else len(text.encode("utf-8"))
    return _scale(_bytes_tokens(size), tokenizer)


def estimate_block_tokens(block: Mapping[str, Any], *, tokenizer: str = "2023") -> int:
    """Estimated tokens of one content block, system block or tool definition."""
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        return estimate_text_tokens(block["text"], tokenizer=tokenizer)
    if kind == "thinking" and isinstance(block.get("thinking"), str):
        return estimate_text_tokens(block["thinking"], tokenizer=tokenizer)
    if kind == "image":
        return IMAGE_TOKENS
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, str):
            return 4 + estimate_text_tokens(content, tokenizer=tokenizer)
        if isinstance(content, list):
            return 4 + sum(
                estimate_block_tokens(b, tokenizer=tokenizer)
                for b in content
                if isinstance(b, Mapping)
            )
        return 4
    if kind == "tool_use":
        raw = orjson.dumps(block.get("input", {}))
        return (
            4
            + _scale(_bytes_tokens(len(raw)), tokenizer)
            + estimate_text_tokens(str(block.get("name", "")), tokenizer=tokenizer)
        )
    raw = orjson.dumps({k: v for k, v in block.items() if k != "cache_control"})
    return _scale(_bytes_tokens(len(raw)), tokenizer)
