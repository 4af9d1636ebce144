"""A request rendered as the server sees it: ordered block positions, tokens, prefix keys.

The prompt is flattened in the documented prefix order — ``tools``, then ``system``, then
``messages`` — into *slots*, one per block position (a tool, a system block, a message content
block; the blocks inside a ``tool_result`` or ``document`` belong to their parent's slot). For
every slot we know:

* its canonical digest — the block as rendered, never as spelled: ``cache_control`` dropped,
  the block's own keys sorted, ``null`` fields dropped, ``"content": "x"`` the same as one text
  block ``"x"``, and JSON the client wrote (tool inputs, schemas) kept in the client's key order,
  because the real API is key-order sensitive there;
* its tokens (memoised by digest, so an unchanged history is tokenized once);
* the key of the prefix through it: a hash chain seeded by the model id, with the
  request settings that invalidate a level (§1.7) folded in where that level starts;
* whether it may carry a breakpoint, and the TTL of the marker it carries.

:func:`render` also resolves the breakpoints (explicit markers, then the top-level automatic
marker) and raises the API's errors for the breakpoint rules of §1.2/§1.4/§1.6.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from tokenomy.data.table import ModelInfo
from tokenomy.emulator._errors import bad_request
from tokenomy.emulator.tokenizer import (
    PROMPT_TAIL_TOKENS,
    TURN_HEADER_TOKENS,
    compact_json,
    content_block_tokens,
    generation_of,
    tool_overhead_tokens,
    tool_tokens,
)

__all__ = ["Breakpoint", "Prompt", "Slot", "render"]

Level = Literal["tools", "system", "messages"]
Ttl = Literal["5m", "1h"]
MAX_BREAKPOINTS: Final = 4
_KEY_VERSION: Final = b"tokenomy-emulator-prefix-v1"
_UNCACHEABLE: Final = frozenset({"thinking", "redacted_thinking"})
_THINKING: Final = _UNCACHEABLE
# §1.7: on these models (and every Haiku) a new non-tool-result user turn on a thinking request
# strips the thinking blocks of earlier assistant turns; Opus 4.5+ and Sonnet 4.6+ keep them.
_STRIPS_THINKING: Final = frozenset(
    {
        "claude-opus-4-1-20250805",
        "claude-opus-4-20250514",
        "claude-sonnet-4-20250514",
        "claude-sonnet-4-5-20250929",
        "claude-3-7-sonnet-20250219",
    }
)


@dataclass(frozen=True, slots=True)
class Slot:
    """One block position of the prompt."""

    level: Level
    where: str  # the block's path in the request, for error messages: "messages.3.content.1"
    tokens: int
    cacheable: bool
    marker: Ttl | None  # TTL of an explicit cache_control on this block (or its inner blocks)
    marked_blocks: int  # how many blocks of this slot carry cache_control (parent + inner)


@dataclass(frozen=True, slots=True)
class Breakpoint:
    """A cache breakpoint at slot ``index``."""

    index: int
    ttl: Ttl
    automatic: bool = False


@dataclass(frozen=True, slots=True)
class Prompt:
    """A rendered request: slots, the prefix token count and key through each, the total."""

    slots: tuple[Slot, ...]
    ends: tuple[int, ...]  # tokens of the prefix through slot i (preambles included)
    keys: tuple[bytes, ...]  # key of the prefix through slot i
    total_tokens: int  # everything billed as input, the assistant cue included
    breakpoints: tuple[Breakpoint, ...]


# ---------------------------------------------------------------- canonical form


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _canonical_block(block: Mapping[str, Any]) -> dict[str, Any]:
    """A content block as rendered: no cache_control, no nulls, own keys sorted."""
    out: dict[str, Any] = {}
    for key in sorted(block):
        value = block[key]
        if key == "cache_control" or value is None:
            continue
        if key == "is_error" and value is False:
            continue  # the default, rendered the same as absent
        if key == "content" and block.get("type") in ("tool_result", "search_result"):
            value = _canonical_content(value)
        elif key == "source" and isinstance(value, Mapping) and value.get("type") == "content":
            value = {**value, "content": _canonical_content(value.get("content"))}
        out[key] = value
    return out


def _canonical_content(content: object) -> object:
    if isinstance(content, str):
        return [{"text": content, "type": "text"}] if content else []
    if isinstance(content, list):
        return [_canonical_block(b) if isinstance(b, Mapping) else b for b in content]
    return content


def _as_blocks(content: object) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list):
        return content
    return []


def _ttl_of(cc: object) -> Ttl:
    if isinstance(cc, Mapping) and cc.get("ttl") == "1h":
        return "1h"
    return "5m"


def _inner_markers(block: Mapping[str, Any]) -> list[Ttl]:
    """TTLs of markers on blocks inside a tool_result / document (they count for the parent)."""
    inner: object = None
    if block.get("type") == "tool_result":
        inner = block.get("content")
    elif block.get("type") == "document":
        source = block.get("source")
        if isinstance(source, Mapping) and source.get("type") == "content":
            inner = source.get("content")
    if not isinstance(inner, list):
        return []
    return [
        _ttl_of(b["cache_control"])
        for b in inner
        if isinstance(b, Mapping) and b.get("cache_control") is not None
    ]


# ---------------------------------------------------------------- token memo

_MEMO_MAX: Final = 200_000
_memo: OrderedDict[tuple[bytes, str], int] = OrderedDict()
_memo_lock = threading.Lock()


def _memo_tokens(digest: bytes, generation: str, count: Any) -> int:
    key = (digest, generation)
    with _memo_lock:
        hit = _memo.get(key)
        if hit is not None:
            return hit
    n: int = count()
    with _memo_lock:
        _memo[key] = n
        if len(_memo) > _MEMO_MAX:
            _memo.popitem(last=False)
    return n


# ---------------------------------------------------------------- level settings (§1.7)


def _system_settings(body: Mapping[str, Any]) -> bytes:
    """What invalidates system + messages but keeps tools: speed, web tools, citations."""
    raw = body.get("tools")
    tools: list[Any] = raw if isinstance(raw, list) else []
    web = sorted(
        {
            str(t.get("type")).split("_20")[0]
            for t in tools
            if isinstance(t, Mapping)
            and isinstance(t.get("type"), str)
            and str(t["type"]).startswith(("web_search", "web_fetch"))
        }
    )
    return compact_json(
        {
            "speed": body.get("speed") or "standard",
            "web": web,
            "citations": _citations_on(body),
        }
    ).encode()


def _citations_on(body: Mapping[str, Any]) -> bool:
    for message in body.get("messages") or ():
        if not isinstance(message, Mapping):
            continue
        for block in _as_blocks(message.get("content")):
            if isinstance(block, Mapping) and block.get("type") in ("document", "search_result"):
                cit = block.get("citations")
                if isinstance(cit, Mapping) and cit.get("enabled") is True:
                    return True
    return False


def _messages_settings(body: Mapping[str, Any], *, has_tools: bool) -> bytes:
    """What invalidates only the messages level: tool_choice, thinking, effort, images."""
    tc = body.get("tool_choice")
    tc = tc if isinstance(tc, Mapping) else {}
    thinking = body.get("thinking")
    thinking = thinking if isinstance(thinking, Mapping) else {}
    oc = body.get("output_config")
    oc = oc if isinstance(oc, Mapping) else {}
    return compact_json(
        {
            "tool_choice": [
                tc.get("type") or ("auto" if has_tools else "none"),
                tc.get("name"),
                bool(tc.get("disable_parallel_tool_use", False)),
            ],
            "thinking": [thinking.get("type") or "disabled", thinking.get("budget_tokens")],
            # sending the default effort is the same as omitting it (§1.7)
            "effort": oc.get("effort") or "high",
            "images": _has_images(body),
        }
    ).encode()


def _has_images(body: Mapping[str, Any]) -> bool:
    def walk(blocks: Sequence[Any]) -> bool:
        for b in blocks:
            if not isinstance(b, Mapping):
                continue
            if b.get("type") == "image":
                return True
            if b.get("type") == "tool_result" and walk(_as_blocks(b.get("content"))):
                return True
        return False

    return any(
        isinstance(m, Mapping) and walk(_as_blocks(m.get("content")))
        for m in body.get("messages") or ()
    )


# ---------------------------------------------------------------- render


class _Builder:
    def __init__(self, model: ModelInfo) -> None:
        self.gen = generation_of(model)
        self.slots: list[Slot] = []
        self.ends: list[int] = []
        self.keys: list[bytes] = []
        self.tokens = 0
        self.state = _digest(_KEY_VERSION + b"|model|" + model.id.encode())

    def fold(self, label: bytes, settings: bytes) -> None:
        self.state = _digest(self.state + b"|" + label + b"|" + settings)

    def add(
        self,
        *,
        level: Level,
        where: str,
        canonical: bytes,
        count: Any,
        cacheable: bool,
        markers: Sequence[Ttl],
    ) -> None:
        digest = _digest(canonical)
        n = _memo_tokens(digest, self.gen, count)
        self.tokens += n
        self.state = _digest(self.state + digest)
        self.slots.append(
            Slot(
                level=level,
                where=where,
                tokens=n,
                cacheable=cacheable,
                marker=_strongest(markers) if markers else None,
                marked_blocks=len(markers),
            )
        )
        self.ends.append(self.tokens)
        self.keys.append(self.state)


def _strongest(markers: Sequence[Ttl]) -> Ttl:
    # A parent and its inner blocks marked with different TTLs: the parent's (first) marker wins.
    return markers[0]


def render(body: Mapping[str, Any], *, model: ModelInfo) -> Prompt:
    """Flatten a *validated* request body; raises ApiError for the breakpoint rules."""
    b = _Builder(model)
    gen = b.gen
    # Deferred tools (tool search) are not rendered into the prefix: they arrive later as
    # tool_reference blocks, so adding one leaves the cached prefix intact (§1.7).
    tools = [
        (i, t)
        for i, t in enumerate(body.get("tools") or ())
        if isinstance(t, Mapping) and t.get("defer_loading") is not True
    ]
    tc = body.get("tool_choice")
    forced = isinstance(tc, Mapping) and tc.get("type") in ("any", "tool")
    if tools:
        b.tokens += tool_overhead_tokens(model, forced=False)
    for i, tool in tools:
        canon = _canonical_block(tool)
        b.add(
            level="tools",
            where=f"tools.{i}",
            canonical=b"T" + compact_json(canon).encode(),
            count=lambda tool=tool: tool_tokens(tool, generation=gen),
            cacheable=True,
            markers=[_ttl_of(tool["cache_control"])] if tool.get("cache_control") else [],
        )

    b.fold(b"system", _system_settings(body))
    system = body.get("system")
    for i, block in enumerate(_as_blocks(system)):
        if not isinstance(block, Mapping):
            continue
        canon = _canonical_block(block)
        header = b"S|" if i == 0 else b""
        text = block.get("text")
        b.add(
            level="system",
            where=f"system.{i}",
            canonical=header + compact_json(canon).encode(),
            count=lambda block=block, i=i: (
                content_block_tokens(block, generation=gen) + (TURN_HEADER_TOKENS if i == 0 else 0)
            ),
            cacheable=isinstance(text, str) and bool(text.strip()),
            markers=[_ttl_of(block["cache_control"])] if block.get("cache_control") else [],
        )

    b.fold(b"messages", _messages_settings(body, has_tools=bool(tools)))
    if tools and forced:
        b.tokens += tool_overhead_tokens(model, forced=True) - tool_overhead_tokens(
            model, forced=False
        )
    messages = [m for m in body.get("messages") or () if isinstance(m, Mapping)]
    strip_before = _thinking_cut(body, messages, model=model)
    previous_role: object = None
    for mi, message in enumerate(messages):
        role = message.get("role")
        content = message.get("content")
        # Consecutive turns of one speaker render as one turn: no new header (and the same
        # prefix as if the client had merged them).
        new_turn = role != previous_role
        previous_role = role
        for ci, block in enumerate(_as_blocks(content)):
            if not isinstance(block, Mapping):
                continue
            if mi < strip_before and block.get("type") in _THINKING:
                continue
            header = f"R:{role}|".encode() if new_turn else b""
            turn_tokens = TURN_HEADER_TOKENS if new_turn else 0
            new_turn = False
            canon = _canonical_block(block)
            kind = block.get("type")
            markers: list[Ttl] = []
            if block.get("cache_control") is not None:
                markers.append(_ttl_of(block["cache_control"]))
            markers.extend(_inner_markers(block))
            text = block.get("text")
            empty_text = kind == "text" and not (isinstance(text, str) and text.strip())
            b.add(
                level="messages",
                where=f"messages.{mi}.content.{ci}",
                canonical=header + compact_json(canon).encode(),
                count=lambda block=block, t=turn_tokens: (
                    content_block_tokens(block, generation=gen) + t
                ),
                cacheable=kind not in _UNCACHEABLE and not empty_text,
                markers=markers,
            )

    breakpoints = _resolve_breakpoints(b.slots, body.get("cache_control"))
    return Prompt(
        slots=tuple(b.slots),
        ends=tuple(b.ends),
        keys=tuple(b.keys),
        total_tokens=b.tokens + PROMPT_TAIL_TOKENS,
        breakpoints=breakpoints,
    )


def _thinking_cut(
    body: Mapping[str, Any], messages: Sequence[Mapping[str, Any]], *, model: ModelInfo
) -> int:
    """Index before which earlier thinking blocks are stripped from the prompt (0: none)."""
    thinking = body.get("thinking")
    on = isinstance(thinking, Mapping) and thinking.get("type") in ("enabled", "adaptive")
    if not on or not (model.family == "haiku" or model.id in _STRIPS_THINKING):
        return 0
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if m.get("role") != "user":
            continue
        content = m.get("content")
        if isinstance(content, str) or any(
            isinstance(b, Mapping) and b.get("type") != "tool_result" for b in _as_blocks(content)
        ):
            return i
    return 0


def _limit_error(found: int) -> Exception:
    return bad_request(
        f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {found}."
    )


def _resolve_breakpoints(slots: Sequence[Slot], top_level: object) -> tuple[Breakpoint, ...]:
    """Explicit markers, then the automatic one (§1.4); the 4-slot and TTL-order rules."""
    explicit = [
        Breakpoint(index=i, ttl=s.marker) for i, s in enumerate(slots) if s.marker is not None
    ]
    marked = sum(s.marked_blocks for s in slots)
    if marked > MAX_BREAKPOINTS:
        raise _limit_error(marked)
    points = list(explicit)
    if top_level is not None:
        ttl = _ttl_of(top_level)
        target = next((i for i in range(len(slots) - 1, -1, -1) if slots[i].cacheable), None)
        if target is not None:
            existing = slots[target].marker
            if existing is not None:
                if existing != ttl:
                    raise bad_request(
                        f"{slots[target].where}.cache_control.ttl: the top-level cache_control "
                        f"(ttl='{ttl}') targets the last cacheable block, which already has a "
                        f"cache_control with ttl='{existing}'; use the same ttl or remove one"
                    )
            elif marked >= MAX_BREAKPOINTS:
                raise _limit_error(marked + 1)
            else:
                points.append(Breakpoint(index=target, ttl=ttl, automatic=True))
                points.sort(key=lambda p: p.index)
        # No block can take a breakpoint: nothing is cached and no error (§1.4).
    seen_5m = False
    for p in points:
        if p.ttl == "5m":
            seen_5m = True
        elif seen_5m:
            raise bad_request(
                f"{slots[p.index].where}.cache_control.ttl: a ttl='1h' cache_control block must "
                "not come after a ttl='5m' cache_control block. Note that blocks are processed "
                "in the following order: `tools`, `system`, `messages`."
            )
    return tuple(points)
