"""Segments of a transcript call, estimated from usage alone. Pure.

The API returns totals; a transcript has no request body (before Claude Code 2.1.330), but it
has the previous call of the same run. For a conversation that only grows, call *i*'s prompt
holds everything call *i−1* was sent plus its answer, then the new turn. So, with ``T`` the
call's total input (uncached + written + read) and ``O`` its output tokens:

- ``prefix`` (tools + system) ≈ ``S``: the smallest positive cache read seen so far in the run
  — Claude Code puts a breakpoint at the end of its system prompt, so a read that reaches only
  that far measures it — or, before any read, the cached part of the run's first call (which
  then counts the first prompt as prefix too: a few hundred tokens against a system prompt of
  tens of thousands). A known request shape (2.1.330 ``api-request-shape``) replaces the
  guess with its estimate.
- ``history`` (earlier turns) ≈ ``min(T, T_prev + O_prev) − prefix``: what the previous call
  had, and its answer.
- ``new`` = the rest: the latest user turn or tool results.

A compaction (or a prompt that shrank) starts the history over: everything after the prefix
is new. Every estimate is clamped so that ``tools + system + history + new == T`` exactly;
the dollars then follow :func:`tokenomy.core.anatomy.segment_costs` (reads first, then 1h
writes, 5m writes, uncached input — prompt order).
"""

from __future__ import annotations

from dataclasses import dataclass

from tokenomy.core.records import SegmentTokens
from tokenomy.core.usage import Usage

__all__ = ["SegmentState", "estimate_segments"]


@dataclass(slots=True)
class SegmentState:
    """What the estimator remembers about a run between calls (JSON-friendly fields)."""

    prefix_tokens: int | None = None
    prefix_known: bool = False  # from a request shape, not guessed from reads
    tools_share: float | None = None  # tools / (tools + system), when the shape is known
    prev_total_tokens: int | None = None
    prev_output_tokens: int = 0
    reset: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "prefix_tokens": self.prefix_tokens,
            "prefix_known": self.prefix_known,
            "tools_share": self.tools_share,
            "prev_total_tokens": self.prev_total_tokens,
            "prev_output_tokens": self.prev_output_tokens,
            "reset": self.reset,
        }

    @classmethod
    def from_json(cls, d: dict[str, object]) -> SegmentState:
        def opt_int(v: object) -> int | None:
            return v if isinstance(v, int) else None

        share = d.get("tools_share")
        return cls(
            prefix_tokens=opt_int(d.get("prefix_tokens")),
            prefix_known=bool(d.get("prefix_known")),
            tools_share=float(share) if isinstance(share, int | float) else None,
            prev_total_tokens=opt_int(d.get("prev_total_tokens")),
            prev_output_tokens=opt_int(d.get("prev_output_tokens")) or 0,
            reset=bool(d.get("reset")),
        )

    def copy(self) -> SegmentState:
        return SegmentState(
            self.prefix_tokens,
            self.prefix_known,
            self.tools_share,
            self.prev_total_tokens,
            self.prev_output_tokens,
            self.reset,
        )

    def known_prefix(self, *, tools_tokens: int, system_tokens: int) -> None:
        """A request shape says how big tools and system are (estimated tokens)."""
        total = tools_tokens + system_tokens
        if total <= 0:
            return
        self.prefix_tokens = total
        self.prefix_known = True
        self.tools_share = tools_tokens / total


def estimate_segments(state: SegmentState, usage: Usage) -> SegmentTokens:
    """The call's segments; advances ``state`` past the call."""
    u = usage.billable()
    total = u.total_input_tokens
    if not state.prefix_known:
        if u.cache_read_tokens > 0:
            guess = u.cache_read_tokens
            state.prefix_tokens = (
                guess if state.prefix_tokens is None else min(state.prefix_tokens, guess)
            )
        elif state.prefix_tokens is None:
            state.prefix_tokens = u.cache_read_tokens + u.cache_write_tokens or total
    prefix = min(total, state.prefix_tokens or 0)
    prev = state.prev_total_tokens
    if prev is None or state.reset or total < prev:
        history = 0
    else:
        history = max(0, min(total, prev + state.prev_output_tokens) - prefix)
    new = total - prefix - history
    share = state.tools_share
    tools = round(prefix * share) if share is not None else 0
    system = prefix - tools
    state.prev_total_tokens = total
    state.prev_output_tokens = u.output_tokens
    state.reset = False
    return SegmentTokens(
        tools=tools, system=system, history=history, new=new, output=u.output_tokens
    )
