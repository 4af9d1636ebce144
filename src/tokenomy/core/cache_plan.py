"""The cache planner: where the breakpoints go, with which TTL, and why.

Up to four breakpoints, in priority order when slots are short (``docs/design/caching.md``):

1. **rolling** — the last cacheable block of the newest message: written now, read next turn;
2. **anchor** — when the newest write would be out of the server's 20-position lookback from
   every other breakpoint (one turn added 20+ blocks), a breakpoint right on the last entry;
3. **system** — the end of the stable system prompt (never a block that changes every call);
4. **tools** — the last tool definition.

Breakpoints the caller set are kept and count toward the four; ours never exceed the limit and
the decision record says which were merged or dropped. A breakpoint whose prefix is below the
model's minimum cacheable length is skipped. TTLs follow the observed gaps between calls, with
every 1h breakpoint before every 5m one.

The planner only ever adds ``cache_control`` markers (and turns a string ``system``/``content``
into the one-text-block list that carries a marker, which renders identically). Everything
else in the request is left as the caller sent it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tokenomy.core.anatomy import Anatomy
from tokenomy.core.cache_model import LOOKBACK, BreakpointPos, Ttl
from tokenomy.core.canonical import BlockRef, Chain

__all__ = [
    "Breakpoint",
    "CachePlan",
    "PlanHistory",
    "PlannerConfig",
    "caller_breakpoints",
    "choose_ttl",
    "is_cacheable",
    "plan_cache",
]

Role = Literal["rolling", "anchor", "system", "tools", "caller", "automatic"]
MAX_BREAKPOINTS = 4
_PRIORITY: dict[Role, int] = {"rolling": 0, "anchor": 1, "system": 2, "tools": 3}


@dataclass(frozen=True, slots=True)
class PlannerConfig:
    """How the planner behaves. ``mode``: explicit breakpoints, server automatic caching, off."""

    mode: Literal["explicit", "automatic", "off"] = "explicit"
    ttl: Literal["auto", "5m", "1h"] = "auto"
    # Start-to-start gap above which a 5m entry is at risk (TTL counts from request start).
    short_gap_s: float = 270.0
    # Above this a 1h entry is gone too; caching across such gaps cannot pay.
    long_gap_s: float = 3300.0
    # Gap to assume before a run has shown any (None: assume short).
    expected_gap_s: float | None = None
    lookback: int = LOOKBACK


@dataclass(frozen=True, slots=True)
class PlanHistory:
    """What the planner needs to know about earlier calls."""

    gaps_s: tuple[float, ...] = ()
    # Positions of this request's chain where the predicted cache holds a live entry.
    entry_indices: frozenset[int] = frozenset()
    # Refs of blocks found to change on every call (volatile content).
    volatile: frozenset[BlockRef] = frozenset()
    # How many calls in a row did not extend their predecessor (independent items).
    independent_streak: int = 0


@dataclass(frozen=True, slots=True)
class Breakpoint:
    """One breakpoint of the planned request."""

    ref: BlockRef
    index: int
    ttl: Ttl
    role: Role
    reason: str

    def describe(self) -> str:
        return f"{self.ref}@{self.ttl}"


@dataclass(frozen=True, slots=True)
class CachePlan:
    """The planner's decision for one call."""

    breakpoints: tuple[Breakpoint, ...]
    ttl_reason: str
    notes: tuple[str, ...] = ()
    automatic: bool = False
    changed: bool = False

    def positions(self) -> tuple[BreakpointPos, ...]:
        return tuple(BreakpointPos(b.index, b.ttl) for b in self.breakpoints)


# ---------------------------------------------------------------------------- helpers


def is_cacheable(block: Mapping[str, Any]) -> bool:
    """Whether a breakpoint may sit on this block (§1.2)."""
    kind = block.get("type")
    if kind in ("thinking", "redacted_thinking"):
        return False
    if kind == "text":
        return bool(block.get("text"))
    return True


def _ttl_of(marker: Any) -> Ttl:
    if isinstance(marker, Mapping) and marker.get("ttl") == "1h":
        return "1h"
    return "5m"


def caller_breakpoints(chain: Chain) -> list[Breakpoint]:
    """Breakpoints the caller set, at chain positions (inner markers count for the parent)."""
    out: list[Breakpoint] = []
    for i, link in enumerate(chain.links):
        block = link.block
        marker = block.get("cache_control")
        if marker is None and block.get("type") in ("tool_result", "document"):
            inner = block.get("content")
            if isinstance(inner, list):
                for b in inner:
                    if isinstance(b, Mapping) and b.get("cache_control") is not None:
                        marker = b["cache_control"]
        if marker is not None:
            out.append(Breakpoint(link.ref, i, _ttl_of(marker), "caller", "set by the caller"))
    return out


def choose_ttl(gaps_s: Sequence[float], config: PlannerConfig) -> tuple[Ttl, str]:
    """5m or 1h from the gaps between calls (break-even rule in docs/design/caching.md).

    A 5m write costs 1.25x and a 1h write 2x the input price; a read 0.1x. When the next call
    comes within 5 minutes both TTLs read, and 5m writes are cheaper. When it comes later, a 5m
    entry has expired and its prefix is written again at 1.25x, while a 1h entry is read at
    0.1x: 1h pays as soon as the prefix is reused once across a gap over 5 minutes.
    """
    if config.ttl != "auto":
        return config.ttl, f"configured ttl={config.ttl}"
    recent = list(gaps_s[-3:])
    if not recent:
        if config.expected_gap_s is not None and config.expected_gap_s > config.short_gap_s:
            return "1h", f"expected gap {config.expected_gap_s:.0f}s > {config.short_gap_s:.0f}s"
        return "5m", "first call: no gaps observed yet"
    worst = max(recent)
    if worst <= config.short_gap_s:
        return "5m", f"recent gaps ≤ {worst:.0f}s fit in 5m"
    if worst <= config.long_gap_s:
        return "1h", f"a recent gap of {worst:.0f}s would expire a 5m entry"
    return "5m", f"gaps of {worst:.0f}s outlive even 1h entries; cheapest write"


# ---------------------------------------------------------------------------- the plan


def plan_cache(
    request: Mapping[str, Any],
    *,
    anatomy: Anatomy,
    positions: Sequence[int],
    min_cacheable_tokens: int,
    history: PlanHistory,
    config: PlannerConfig,
) -> tuple[dict[str, Any], CachePlan]:
    """Place breakpoints on ``request``; returns the new request and the plan.

    ``positions`` are the calibrated cumulative token counts per chain link (see
    :meth:`tokenomy.core.cache_model.CacheModel.positions`).
    """
    links = anatomy.chain.links
    caller = caller_breakpoints(anatomy.chain)
    auto_marker = request.get("cache_control")
    ttl, ttl_reason = choose_ttl(history.gaps_s, config)
    if config.mode == "off" or not links:
        return dict(request), CachePlan(
            tuple(caller), "planner off", automatic=auto_marker is not None
        )
    if config.mode == "automatic":
        return _plan_automatic(request, caller, ttl, ttl_reason)

    notes: list[str] = []
    taken = {b.index for b in caller}
    slots = MAX_BREAKPOINTS - len(caller) - (1 if auto_marker is not None else 0)
    wanted: list[Breakpoint] = []

    # 1. rolling: last cacheable block of the newest message
    msg_idx = [i for i, link in enumerate(links) if link.ref.segment == "messages"]
    rolling: int | None = None
    if msg_idx:
        last_msg = links[msg_idx[-1]].ref.index
        for i in reversed(msg_idx):
            if links[i].ref.index != last_msg:
                break
            if is_cacheable(links[i].block):
                rolling = i
                break
    rolling_covered = True
    if msg_idx:
        newest = links[msg_idx[-1]].ref.index
        rolling_covered = auto_marker is not None or any(
            links[b.index].ref.segment == "messages" and links[b.index].ref.index == newest
            for b in caller
        )
    if rolling is not None and not rolling_covered:
        if history.independent_streak >= 2:
            notes.append("no rolling breakpoint: recent calls do not continue each other")
        else:
            wanted.append(
                Breakpoint(
                    links[rolling].ref, rolling, ttl, "rolling", "newest turn, read next turn"
                )
            )

    # 2. anchor: the newest predicted entry must stay within some breakpoint's lookback
    planned = sorted(taken | {b.index for b in wanted})
    entry = max(
        (j for j in history.entry_indices if j < len(links) and is_cacheable(links[j].block)),
        default=None,
    )
    if entry is not None and not _covered(entry, planned, config.lookback):
        wanted.append(
            Breakpoint(
                links[entry].ref,
                entry,
                ttl,
                "anchor",
                f"last write is >{config.lookback - 1} blocks behind the next breakpoint",
            )
        )

    # 3. system: end of the stable system prompt
    sys_idx = [i for i, link in enumerate(links) if link.ref.segment == "system"]
    stable_sys = [
        i for i in sys_idx if links[i].ref not in history.volatile and is_cacheable(links[i].block)
    ]
    if sys_idx and stable_sys:
        end = stable_sys[-1]
        if end != sys_idx[-1]:
            notes.append(
                f"system breakpoint on {links[end].ref}: later system blocks change every call"
            )
        wanted.append(
            Breakpoint(links[end].ref, end, ttl, "system", "end of the stable system prompt")
        )
    elif sys_idx:
        notes.append("no stable system block to mark")

    # 4. tools: the last tool definition
    tool_idx = [i for i, link in enumerate(links) if link.ref.segment == "tools"]
    if tool_idx:
        wanted.append(
            Breakpoint(links[tool_idx[-1]].ref, tool_idx[-1], ttl, "tools", "end of tools")
        )

    chosen: list[Breakpoint] = []
    for bp in sorted(wanted, key=lambda b: _PRIORITY[b.role]):
        if bp.index in taken:
            notes.append(f"{bp.role} breakpoint merged with the caller's on {bp.ref}")
            continue
        if positions[bp.index] < min_cacheable_tokens:
            notes.append(
                f"{bp.role} breakpoint on {bp.ref} skipped: ~{positions[bp.index]} tokens "
                f"< minimum {min_cacheable_tokens}"
            )
            continue
        if slots <= 0:
            notes.append(f"{bp.role} breakpoint on {bp.ref} dropped: 4-breakpoint limit")
            continue
        chosen.append(bp)
        taken.add(bp.index)
        slots -= 1

    chosen = _order_ttls(chosen, caller, notes)
    all_bps = tuple(sorted([*caller, *chosen], key=lambda b: b.index))
    new_request = _apply(request, chosen, anatomy) if chosen else dict(request)
    return new_request, CachePlan(
        breakpoints=all_bps,
        ttl_reason=ttl_reason,
        notes=tuple(notes),
        automatic=auto_marker is not None,
        changed=bool(chosen),
    )


def _covered(index: int, breakpoints: Sequence[int], lookback: int) -> bool:
    return any(0 <= bp - index < lookback for bp in breakpoints)


def _order_ttls(
    chosen: list[Breakpoint], caller: Sequence[Breakpoint], notes: list[str]
) -> list[Breakpoint]:
    """When the caller set breakpoints, ours take the TTL of the caller's next one (or its last).

    Extra breakpoints at the caller's own TTLs can only add reads, never cost: writes are
    billed up to the last breakpoint whatever sits before it, so a request never costs more
    than the caller's own (docs/design/caching.md). It also keeps every 1h before every 5m.
    """
    if not caller:
        return chosen
    out: list[Breakpoint] = []
    for bp in chosen:
        after = [c for c in caller if c.index > bp.index]
        ttl = after[0].ttl if after else caller[-1].ttl
        if ttl != bp.ttl:
            notes.append(f"{bp.ref} takes the caller's TTL ({ttl})")
        out.append(bp if ttl == bp.ttl else Breakpoint(bp.ref, bp.index, ttl, bp.role, bp.reason))
    return out


def _marker(ttl: Ttl) -> dict[str, str]:
    # 5m is the API default: omit ttl so the request reads exactly like a hand-written one.
    return {"type": "ephemeral"} if ttl == "5m" else {"type": "ephemeral", "ttl": "1h"}


def _apply(
    request: Mapping[str, Any], chosen: Sequence[Breakpoint], anatomy: Anatomy
) -> dict[str, Any]:
    """Copy only the containers on the path to each marked block; set its marker."""
    out = dict(request)
    for bp in chosen:
        ref = bp.ref
        if ref.segment == "tools":
            tools = out["tools"] = list(out["tools"])
            tools[ref.index] = {**tools[ref.index], "cache_control": _marker(bp.ttl)}
        elif ref.segment == "system":
            system = out["system"]
            if isinstance(system, str):
                out["system"] = [{"type": "text", "text": system, "cache_control": _marker(bp.ttl)}]
            else:
                system = out["system"] = list(system)
                system[ref.index] = {**system[ref.index], "cache_control": _marker(bp.ttl)}
        else:
            messages = out["messages"] = list(out["messages"])
            message = dict(messages[ref.index])
            content = message.get("content")
            if isinstance(content, str):
                message["content"] = [
                    {"type": "text", "text": content, "cache_control": _marker(bp.ttl)}
                ]
            elif isinstance(content, list):
                content = list(content)
                sub = ref.sub or 0
                content[sub] = {**content[sub], "cache_control": _marker(bp.ttl)}
                message["content"] = content
            messages[ref.index] = message
    return out


def _plan_automatic(
    request: Mapping[str, Any], caller: list[Breakpoint], ttl: Ttl, ttl_reason: str
) -> tuple[dict[str, Any], CachePlan]:
    out = dict(request)
    notes: tuple[str, ...] = ()
    changed = False
    if out.get("cache_control") is None and len(caller) < MAX_BREAKPOINTS:
        last_ttl_5m = any(b.ttl == "5m" for b in caller)
        eff: Ttl = "5m" if last_ttl_5m else ttl
        out["cache_control"] = _marker(eff)
        changed = True
    elif out.get("cache_control") is not None:
        notes = ("the caller already uses automatic caching",)
    return out, CachePlan(tuple(caller), ttl_reason, notes=notes, automatic=True, changed=changed)
