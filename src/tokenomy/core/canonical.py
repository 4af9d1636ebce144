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

``prefix_hash(h_prev, block) = sha256(h_prev || canonical(block))[:16]`` (with ``|role|<role>|``
before the first block of each message and the level settings folded in between segments),
16-byte digests, rendered ``"v1:" + hex``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from hashlib import sha256
from typing import Any, Literal, NamedTuple

import orjson

__all__ = [
    "VERSION",
    "BlockRef",
    "Chain",
    "ChainLink",
    "canonical_block",
    "chain",
    "level_params",
]

VERSION = "v1"
Segment = Literal["tools", "system", "messages"]
_DIGEST = 16
_SEED = sha256(b"tokenomy-prefix-" + VERSION.encode()).digest()[:_DIGEST]


class BlockRef(NamedTuple):
    """Where a block sits: ``tools[i]``, ``system[i]`` or ``messages[i].content[j]``."""

    segment: Segment
    # Shadows tuple.index on purpose: a position reads best as ``ref.index``.
    index: int  # type: ignore[assignment]
    sub: int | None = None

    def __str__(self) -> str:
        if self.segment == "messages":
            return f"messages[{self.index}].content[{self.sub}]"
        return f"{self.segment}[{self.index}]"


class ChainLink(NamedTuple):
    """One block position (immutable; a named tuple because a request has many).

    ``prefix_hash`` is the stable, version-tagged identity of the prompt through this block.
    ``block_hash`` identifies the block's canonical bytes within this process only (memo keys).
    ``canon`` is those canonical bytes.
    """

    ref: BlockRef
    block_hash: int
    prefix_hash: bytes
    block: Mapping[str, Any]
    role: str | None
    canon: bytes

    @property
    def prefix_hex(self) -> str:
        return f"{VERSION}:{self.prefix_hash.hex()}"


@dataclass(frozen=True, slots=True)
class Chain:
    """The hash chain of one request, one link per block in prompt order."""

    links: tuple[ChainLink, ...]
    # the level settings folded in before the system blocks and before the messages
    sys_level: bytes = b""
    msg_level: bytes = b""

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
        """Index of the first position whose prefix differs; ``len`` of the shorter if none.

        Prefix hashes are chained, so equal hashes at ``i`` mean equal prefixes through ``i``:
        a binary search finds the divergence in O(log n).
        """
        a, b = self.links, other.links
        lo, hi = 0, min(len(a), len(b))  # a[:lo] == b[:lo]; the answer is in [lo, hi]
        while lo < hi:
            mid = (lo + hi) // 2
            if a[mid].prefix_hash == b[mid].prefix_hash:
                lo = mid + 1
            else:
                hi = mid
        return lo


def _strip_cache_control(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _strip_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip_cache_control(v) for v in value]
    return value


def canonical_block(block: Mapping[str, Any]) -> bytes:
    """The canonical bytes of one content block, tool definition or system block."""
    if block.get("type") == "tool_result" and isinstance(block.get("content"), str):
        block = {**block, "content": [{"type": "text", "text": block["content"]}]}
    raw = orjson.dumps(block)
    if b'"cache_control"' not in raw:
        return raw
    return orjson.dumps(_strip_cache_control(block))


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _as_block(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {"__value__": value}


def level_params(request: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """The canonical bytes of the settings that key the system level and the messages level."""
    images = citations = False
    messages = request.get("messages")
    if isinstance(messages, list):
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            if not isinstance(content, list):
                continue
            for b in content:
                if not isinstance(b, dict):
                    continue
                kind = b.get("type")
                if kind == "image":
                    images = True
                elif kind == "document":
                    c = b.get("citations")
                    citations = citations or (isinstance(c, dict) and bool(c.get("enabled")))
                elif kind == "tool_result" and isinstance(b.get("content"), list):
                    images = images or any(
                        isinstance(x, dict) and x.get("type") == "image" for x in b["content"]
                    )
    output_config = request.get("output_config")
    sys_level = {"speed": request.get("speed"), "citations": citations}
    msg_level = {
        "tool_choice": request.get("tool_choice"),
        "thinking": request.get("thinking"),
        "effort": output_config.get("effort") if isinstance(output_config, dict) else None,
        "images": images,
    }
    return orjson.dumps(sys_level), orjson.dumps(msg_level)


class _Builder:
    """Appends links, reusing the previous request's links while the prefix is unchanged."""

    __slots__ = ("links", "old", "prev", "reuse")

    def __init__(self, previous: Chain | None) -> None:
        self.links: list[ChainLink] = []
        self.old = previous.links if previous is not None else ()
        self.prev = _SEED
        self.reuse = previous is not None

    def add(self, ref: BlockRef, raw: Any, role: str | None, head: bytes) -> None:
        block = raw if isinstance(raw, dict) else {"__value__": raw}
        canon = canonical_block(block)
        k = len(self.links)
        if self.reuse and k < len(self.old):
            o = self.old[k]
            if o.canon == canon and o.ref == ref and o.role == role:
                # equal bytes after an equal prefix: the same prefix hash, no need to hash again
                self.prev = o.prefix_hash
                self.links.append(o)
                return
        self.reuse = False
        self.prev = _digest(self.prev + head + canon)
        self.links.append(ChainLink(ref, hash(canon), self.prev, block, role, canon))

    def fold(self, tag: bytes, level: bytes, previous_level: bytes | None) -> None:
        if previous_level != level:
            self.reuse = False
        self.prev = _digest(self.prev + tag + level)


def chain(request: Mapping[str, Any], *, previous: Chain | None = None) -> Chain:
    """The prefix hash chain of ``request`` (see the module docstring for the canonical form).

    With ``previous`` (the chain of the run's previous request), links whose canonical bytes
    are unchanged from it at the same position — the whole shared prefix, in an agent loop —
    are reused instead of hashed again.
    """
    sys_level, msg_level = level_params(request)
    b = _Builder(previous)
    tools = request.get("tools")
    if isinstance(tools, list):
        for i, tool in enumerate(tools):
            b.add(BlockRef("tools", i), tool, None, b"")
    b.fold(b"|system-level|", sys_level, previous.sys_level if previous is not None else None)
    system = request.get("system")
    blocks = [_text(system)] if isinstance(system, str) and system else system
    if isinstance(blocks, list):
        for i, raw_block in enumerate(blocks):
            b.add(BlockRef("system", i), raw_block, None, b"")
    b.fold(b"|messages-level|", msg_level, previous.msg_level if previous is not None else None)
    messages = request.get("messages")
    if isinstance(messages, list):
        for i, message in enumerate(messages):
            if isinstance(message, dict):
                role = message.get("role")
                role_s = role if isinstance(role, str) else None
                content = message.get("content")
                items = [_text(content)] if isinstance(content, str) else content
            else:
                role_s, items = None, [message]
            if not isinstance(items, list):
                continue
            head = b"|role|" + (role_s or "").encode() + b"|"
            for j, raw_block in enumerate(items):
                b.add(BlockRef("messages", i, j), raw_block, role_s, head if j == 0 else b"")
    return Chain(links=tuple(b.links), sys_level=sys_level, msg_level=msg_level)


def _digest(data: bytes) -> bytes:
    # SHA-256 (hardware-accelerated almost everywhere; twice blake2b's speed here), truncated.
    return sha256(data).digest()[:_DIGEST]
