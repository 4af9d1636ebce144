"""Canonical bytes and the version-tagged prefix hash chain of a Messages request.

The server caches a *rendered prompt*: tools, then system, then messages. Two requests share a
cached prefix when they render identically up to a block. This module gives every block of a
request a position (:class:`BlockRef`) and a chained hash such that two requests have the same
hash at a position exactly when the server would see the same prefix there.

Canonical form (``v1``), written down so that it can be re-implemented:

- A block is serialised with orjson (compact, UTF-8, keys **in the order the caller sent them**:
  key order is part of what the server sees, so it is part of the identity; we never reorder).
- ``cache_control`` is removed at every depth: markers do not change the prompt.
- A plain string ``content`` (message or ``tool_result``) and ``system`` string are the same as a
  list holding one ``{"type": "text", "text": ...}`` block: clients re-serialise one into the
  other between turns (Claude Code does), and the rendered prompt is the same.
- Each message's first block is prefixed by its role, so moving a block across a turn boundary
  changes the prefix.
- Settings that invalidate a level of the cache (reference §1.7) are folded into the chain at
  the start of their level: ``speed`` and citation toggles before the system blocks; tool_choice,
  thinking, effort and "has images" before the messages.

``prefix_hash(h_prev, block) = blake2b(h_prev || blake2b(canonical(block)))``, 16-byte digests,
rendered ``"v1:" + hex``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from hashlib import blake2b
from typing import Any, Literal

import orjson

__all__ = [
    "VERSION",
    "BlockRef",
    "Chain",
    "ChainLink",
    "canonical_block",
    "chain",
    "iter_blocks",
    "level_params",
]

VERSION = "v1"
Segment = Literal["tools", "system", "messages"]
_DIGEST = 16
_SEED = blake2b(b"tokenomy-prefix-" + VERSION.encode(), digest_size=_DIGEST).digest()


@dataclass(frozen=True, slots=True, order=True)
class BlockRef:
    """Where a block sits: ``tools[i]``, ``system[i]`` or ``messages[i].content[j]``."""

    segment: Segment
    index: int
    sub: int | None = None

    def __str__(self) -> str:
        if self.segment == "messages":
            return f"messages[{self.index}].content[{self.sub}]"
        return f"{self.segment}[{self.index}]"


@dataclass(frozen=True, slots=True)
class ChainLink:
    """One block position: its ref, its own hash, the chained prefix hash through it."""

    ref: BlockRef
    block_hash: bytes
    prefix_hash: bytes
    block: Mapping[str, Any]
    role: str | None = None

    @property
    def prefix_hex(self) -> str:
        return f"{VERSION}:{self.prefix_hash.hex()}"


@dataclass(frozen=True, slots=True)
class Chain:
    """The hash chain of one request, one link per block in prompt order."""

    links: tuple[ChainLink, ...]

    def __len__(self) -> int:
        return len(self.links)

    def index_of(self, ref: BlockRef) -> int | None:
        for i, link in enumerate(self.links):
            if link.ref == ref:
                return i
        return None

    @property
    def head_hex(self) -> str | None:
        """The prefix hash through the last block; identifies the whole prompt."""
        return self.links[-1].prefix_hex if self.links else None

    def first_divergence(self, other: Chain) -> int:
        """Index of the first position whose prefix differs; ``len`` of the shorter if none."""
        n = min(len(self.links), len(other.links))
        for i in range(n):
            if self.links[i].prefix_hash != other.links[i].prefix_hash:
                return i
        return n


def _strip_cache_control(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _strip_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip_cache_control(v) for v in value]
    return value


def canonical_block(block: Mapping[str, Any]) -> bytes:
    """The canonical bytes of one content block, tool definition or system block."""
    raw = orjson.dumps(block)
    if b'"cache_control"' not in raw and not _has_string_tool_result(block):
        return raw
    clean = _strip_cache_control(block)
    if clean.get("type") == "tool_result" and isinstance(clean.get("content"), str):
        clean = {**clean, "content": [{"type": "text", "text": clean["content"]}]}
    return orjson.dumps(clean)


def _has_string_tool_result(block: Mapping[str, Any]) -> bool:
    return block.get("type") == "tool_result" and isinstance(block.get("content"), str)


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def iter_blocks(
    request: Mapping[str, Any],
) -> Iterator[tuple[BlockRef, Mapping[str, Any], str | None]]:
    """Every block of a request in prompt order, with its ref and (for messages) its role.

    Strings are presented as single text blocks; non-dict junk is presented as-is wrapped so
    that hashing never fails (the API will reject the request; its error is the truth).
    """
    tools = request.get("tools")
    if isinstance(tools, list):
        for i, tool in enumerate(tools):
            yield BlockRef("tools", i), _as_block(tool), None
    system = request.get("system")
    if isinstance(system, str):
        if system:
            yield BlockRef("system", 0), _text(system), None
    elif isinstance(system, list):
        for i, block in enumerate(system):
            yield BlockRef("system", i), _as_block(block), None
    messages = request.get("messages")
    if isinstance(messages, list):
        for i, message in enumerate(messages):
            if not isinstance(message, Mapping):
                yield BlockRef("messages", i, 0), _as_block(message), None
                continue
            role = message.get("role")
            role_s = role if isinstance(role, str) else None
            content = message.get("content")
            if isinstance(content, str):
                yield BlockRef("messages", i, 0), _text(content), role_s
            elif isinstance(content, list):
                for j, block in enumerate(content):
                    yield BlockRef("messages", i, j), _as_block(block), role_s


def _as_block(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {"__value__": value}


_SYSTEM_LEVEL_KEYS = ("speed",)
_MESSAGE_LEVEL_KEYS = ("tool_choice", "thinking")


def level_params(request: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """The canonical bytes of the settings that key the system level and the messages level."""
    sys_level: dict[str, Any] = {k: request.get(k) for k in _SYSTEM_LEVEL_KEYS}
    sys_level["citations"] = _citations_on(request)
    msg_level: dict[str, Any] = {k: request.get(k) for k in _MESSAGE_LEVEL_KEYS}
    output_config = request.get("output_config")
    msg_level["effort"] = (
        output_config.get("effort") if isinstance(output_config, Mapping) else None
    )
    msg_level["images"] = _has_images(request)
    return orjson.dumps(sys_level), orjson.dumps(msg_level)


def _citations_on(request: Mapping[str, Any]) -> bool:
    for ref, block, _ in iter_blocks(request):
        if ref.segment == "messages" and block.get("type") == "document":
            citations = block.get("citations")
            if isinstance(citations, Mapping) and citations.get("enabled"):
                return True
    return False


def _has_images(request: Mapping[str, Any]) -> bool:
    for ref, block, _ in iter_blocks(request):
        if ref.segment == "messages":
            if block.get("type") == "image":
                return True
            content = block.get("content")
            if (
                block.get("type") == "tool_result"
                and isinstance(content, list)
                and any(isinstance(b, Mapping) and b.get("type") == "image" for b in content)
            ):
                return True
    return False


def _h(*parts: bytes) -> bytes:
    h = blake2b(digest_size=_DIGEST)
    for p in parts:
        h.update(p)
    return h.digest()


def chain(request: Mapping[str, Any]) -> Chain:
    """The prefix hash chain of ``request`` (see the module docstring for the canonical form)."""
    sys_level, msg_level = level_params(request)
    links: list[ChainLink] = []
    prev = _SEED
    folded_system = folded_messages = False
    last_message: int | None = None
    for ref, block, role in iter_blocks(request):
        if ref.segment != "tools" and not folded_system:
            prev = _h(prev, b"|system-level|", sys_level)
            folded_system = True
        if ref.segment == "messages" and not folded_messages:
            prev = _h(prev, b"|messages-level|", msg_level)
            folded_messages = True
        bh = _h(canonical_block(block))
        if ref.segment == "messages" and ref.index != last_message:
            bh = _h(b"|role|", (role or "").encode(), bh)
            last_message = ref.index
        prev = _h(prev, bh)
        links.append(ChainLink(ref=ref, block_hash=bh, prefix_hash=prev, block=block, role=role))
    return Chain(links=tuple(links))


def refs(request: Mapping[str, Any]) -> Sequence[BlockRef]:
    """Just the positions of ``request``'s blocks, in prompt order."""
    return [ref for ref, _, _ in iter_blocks(request)]
