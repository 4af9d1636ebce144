"""The stabilizer: keep the cached region byte-stable, and say what would break it.

Two jobs, both pure:

- **Key-order pinning.** The server hashes bytes, so a tool schema or a ``tool_use`` input whose
  JSON keys come back in another order (Go and Swift shuffle map keys) busts the cache. The
  first time a run sees a tool (by name) or a ``tool_use`` (by id), its key order is pinned;
  later the same content in another order is rewritten to the pinned order — byte-identical on
  every later turn. Different *content* is never rewritten: it replaces the pin.
- **Volatile content.** Timestamps, dates, UUIDs, request ids, counters and random-looking
  tokens inside what will be cached change every call and make every write useless. Each
  finding names the block, the pattern and the text. Confirmed findings are blocks that did
  change since the previous call.

The optional safe fix (off by default) moves volatile system blocks after the stable ones so the
system breakpoint can cover the stable part.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from tokenomy.core.canonical import BlockRef, Chain

__all__ = [
    "KeyOrderMemo",
    "VolatileFinding",
    "find_volatile",
    "move_volatile_system_blocks",
    "pin_key_orders",
]

Pattern = Literal[
    "timestamp", "date", "clock_time", "uuid", "request_id", "unix_time", "counter", "random_token"
]

_PATTERNS: tuple[tuple[Pattern, re.Pattern[str]], ...] = (
    (
        "timestamp",
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
        ),
    ),
    (
        "uuid",
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
        ),
    ),
    ("request_id", re.compile(r"\b(?:req|msg|msgbatch|sess|trace|span)_[A-Za-z0-9]{10,}\b")),
    (
        "date",
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}\b|\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? \d{1,2}? ?"
            r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]* \d{1,2},? \d{4}\b"
            r"|\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]* \d{1,2}, \d{4}\b"
        ),
    ),
    ("clock_time", re.compile(r"\b\d{1,2}:\d{2}:\d{2}\b")),
    ("unix_time", re.compile(r"\b1[6-9]\d{8}(?:\d{3})?\b")),
    (
        "counter",
        re.compile(r"\b(?:turn|attempt|request|iteration|call|step|retry)\s*#?\s*\d+\b", re.I),
    ),
    (
        "random_token",
        re.compile(
            r"(?<![A-Za-z0-9_/+=-])(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[a-z])"
            r"(?=[A-Za-z0-9_-]*[A-Z])[A-Za-z0-9_-]{24,}(?![A-Za-z0-9_/+=-])"
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class VolatileFinding:
    """Volatile content inside a block that will be cached."""

    ref: BlockRef
    pattern: Pattern | Literal["changed"]
    text: str
    confirmed: bool

    def describe(self) -> str:
        state = "changed since the previous call" if self.confirmed else "likely to change"
        return f"{self.ref}: {self.pattern} {self.text!r} ({state})"


@dataclass(slots=True)
class KeyOrderMemo:
    """First-seen key orders of a run: tool schemas by name, tool_use inputs by id."""

    tools: dict[str, bytes] = field(default_factory=dict)
    tool_uses: dict[str, bytes] = field(default_factory=dict)


def pin_key_orders(
    request: Mapping[str, Any], memo: KeyOrderMemo, request_chain: Chain
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Restore pinned key orders; returns the (possibly) rewritten request and what changed.

    Works on the canonical bytes the chain already holds, so a request with nothing to pin
    costs one dictionary lookup per tool and per ``tool_use``.
    """
    changes: list[str] = []
    replaced: dict[BlockRef, dict[str, Any]] = {}
    for link in request_chain.links:
        block = link.block
        if link.ref.segment == "tools":
            name = block.get("name")
            if not isinstance(name, str):
                continue
            pinned = _pin(block, link.canon, memo.tools, name)
            if pinned is not None:
                replaced[link.ref] = pinned
                changes.append(f"{link.ref} ({name}): restored the first-seen key order")
        elif link.ref.segment == "messages" and block.get("type") == "tool_use":
            tid = block.get("id")
            if not isinstance(tid, str):
                continue
            pinned = _pin(block, link.canon, memo.tool_uses, tid)
            if pinned is not None:
                replaced[link.ref] = pinned
                changes.append(f"{link.ref}: restored the first-seen key order of tool_use {tid}")
    if not replaced:
        return dict(request), ()
    out: dict[str, Any] = dict(request)
    tools = [
        replaced.get(BlockRef("tools", i), t) for i, t in enumerate(request.get("tools") or [])
    ]
    if any(ref.segment == "tools" for ref in replaced):
        out["tools"] = tools
    messages = request.get("messages")
    if isinstance(messages, list) and any(ref.segment == "messages" for ref in replaced):
        new_messages = list(messages)
        for ref, block in replaced.items():
            if ref.segment != "messages":
                continue
            message = new_messages[ref.index]
            content = list(message["content"])
            content[ref.sub or 0] = block
            new_messages[ref.index] = {**message, "content": content}
        out["messages"] = new_messages
    return out, tuple(changes)


def _strip(value: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k != "cache_control"}


def _pin(
    value: Mapping[str, Any], canon: bytes, memo: dict[str, bytes], key: str
) -> dict[str, Any] | None:
    """The pinned form of ``value`` when only its key order differs; None to keep it."""
    pinned = memo.get(key)
    if pinned is None or pinned == canon:
        memo[key] = canon
        return None
    first = orjson.loads(pinned)
    if first != _strip(value):  # different content (dict equality ignores order): a real change
        memo[key] = canon
        return None
    if "cache_control" in value:
        first["cache_control"] = value["cache_control"]
    return dict(first)


# ---------------------------------------------------------------------------- volatility


def _texts(block: Mapping[str, Any]) -> list[str]:
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        return [block["text"]]
    if "input_schema" in block or "description" in block:  # a tool definition
        return [
            str(block.get("description", "")),
            orjson.dumps(block.get("input_schema", {})).decode(),
        ]
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, str):
            return [content]
        if isinstance(content, list):
            return [
                b["text"]
                for b in content
                if isinstance(b, Mapping) and isinstance(b.get("text"), str)
            ]
    return []


def find_volatile(
    chain: Chain,
    *,
    upto: int,
    previous: Chain | None = None,
    segments: tuple[str, ...] = ("tools", "system"),
) -> tuple[VolatileFinding, ...]:
    """Volatile content in links ``0..upto`` (the cached region) of the given segments.

    With ``previous``, a block at the same position whose content changed is *confirmed*;
    a changed system block with no known pattern is reported as ``changed``.
    """
    prev_by_ref = {link.ref: link.block_hash for link in previous.links} if previous else {}
    findings: list[VolatileFinding] = []
    for link in chain.links[: upto + 1]:
        if link.ref.segment not in segments:
            continue
        changed = link.ref in prev_by_ref and prev_by_ref[link.ref] != link.block_hash
        found = False
        for text in _texts(link.block):
            for name, rx in _PATTERNS:
                m = rx.search(text)
                if m:
                    findings.append(VolatileFinding(link.ref, name, m.group(0)[:80], changed))
                    found = True
                    break
            if found:
                break
        if changed and not found and link.ref.segment == "system":
            snippet = (_texts(link.block) or [""])[0][:60]
            findings.append(VolatileFinding(link.ref, "changed", snippet, True))
    return tuple(findings)


def move_volatile_system_blocks(
    request: Mapping[str, Any], volatile: frozenset[BlockRef]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The safe fix: put volatile system blocks after the stable ones (order otherwise kept)."""
    system = request.get("system")
    if not isinstance(system, list) or not volatile:
        return dict(request), ()
    moving = [i for i in range(len(system)) if BlockRef("system", i) in volatile]
    if not moving or moving == list(range(len(system) - len(moving), len(system))):
        return dict(request), ()
    stable = [b for i, b in enumerate(system) if i not in moving]
    out = dict(request)
    out["system"] = stable + [system[i] for i in moving]
    return out, tuple(f"moved volatile system[{i}] after the stable system blocks" for i in moving)
