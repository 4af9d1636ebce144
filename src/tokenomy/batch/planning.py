"""Caching inside a batch: the planner marks the prefix the job's requests share, with a 1h TTL.

Batch requests run concurrently and in any order, hours apart at worst (reference §3.6): a 5m
entry will often be gone before the next request that could read it, so the docs recommend
identical ``cache_control`` blocks with the 1h TTL. The breakpoints come from the pipeline's
pure planner (:func:`tokenomy.core.cache_plan.plan_cache`), told three things about a batch:

- the requests are independent (no rolling breakpoint on each item's own last message, which
  would write every item's unique tail at 2x the input price and never be read);
- which tools/system blocks are *not* shared with other requests of the job (volatile: never
  marked);
- how deep the shared prefix goes (an "entry" there, so that a shared document in the first
  user message gets an anchor breakpoint).

"Shared" is learnt while the job is read: the deepest block whose whole prefix an earlier
request of the job already had (the first request: what it shares with the second). The answer
is stored per request (``shared_end``), so a chunk rebuilt after a crash gets the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from tokenomy.core.anatomy import anatomy
from tokenomy.core.cache_model import CacheModel
from tokenomy.core.cache_plan import PlanHistory, PlannerConfig, plan_cache
from tokenomy.core.canonical import Chain, chain
from tokenomy.core.records import SegmentTokens
from tokenomy.data.table import ModelTable

__all__ = ["PlannedRequest", "SharedPrefixes", "plan_request"]

# How many prefix hashes the job remembers (bounded memory for any job size).
_MAX_SEEN: Final = 200_000
# Rolling breakpoints off: the planner reads this streak as "calls do not continue each other".
_INDEPENDENT: Final = 2
_DEFAULT_MIN_CACHEABLE: Final = 1024


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    """A request's params with the breakpoints placed, and what the meter needs later."""

    params: dict[str, Any]
    estimated: SegmentTokens
    prefix_hash: str | None
    breakpoints: tuple[str, ...]


class SharedPrefixes:
    """Learns, request by request, how deep each one's prefix is shared within the job."""

    def __init__(self, *, max_seen: int = _MAX_SEEN) -> None:
        self._seen: set[bytes] = set()
        self._max = max_seen

    def observe(self, ch: Chain) -> int:
        """Index of the deepest link whose prefix was seen before (-1: none); then remember."""
        shared = -1
        for i, link in enumerate(ch.links):
            if link.prefix_hash in self._seen:
                shared = i
            else:
                break
        for link in ch.links[shared + 1 :]:
            if len(self._seen) >= self._max:
                break
            self._seen.add(link.prefix_hash)
        return shared


def common_depth(a: Chain, b: Chain) -> int:
    """Index of the deepest link two chains share (-1: none)."""
    depth = -1
    for i, (x, y) in enumerate(zip(a.links, b.links, strict=False)):
        if x.prefix_hash != y.prefix_hash:
            break
        depth = i
    return depth


def plan_request(
    params: Mapping[str, Any],
    *,
    table: ModelTable,
    shared_end: int,
    ttl: Literal["1h", "5m", "off"],
    request_chain: Chain | None = None,
    memo: dict[tuple[str, int], int] | None = None,
) -> PlannedRequest:
    """Place the job's shared-prefix breakpoints on one request (pure; same input, same bytes)."""
    ch = request_chain if request_chain is not None else chain(params)
    model_name = params.get("model")
    info = table.find(model_name) if isinstance(model_name, str) else None
    an = anatomy(params, model=info, request_chain=ch, memo=memo)
    if ttl == "off":
        planned = dict(params)
        described: tuple[str, ...] = tuple(
            f"{link.ref}@{_ttl_of(link.block)}"
            for link in ch.links
            if link.block.get("cache_control") is not None
        )
    else:
        volatile = frozenset(
            link.ref
            for i, link in enumerate(ch.links)
            if i > shared_end and link.ref.segment != "messages"
        )
        history = PlanHistory(
            entry_indices=frozenset({shared_end}) if shared_end >= 0 else frozenset(),
            volatile=volatile,
            independent_streak=_INDEPENDENT,
        )
        positions = CacheModel().positions(info.id if info else "?", an)
        planned, plan = plan_cache(
            params,
            anatomy=an,
            positions=positions,
            min_cacheable_tokens=info.min_cacheable_tokens if info else _DEFAULT_MIN_CACHEABLE,
            history=history,
            config=PlannerConfig(ttl=ttl),
        )
        described = tuple(b.describe() for b in plan.breakpoints)
    return PlannedRequest(
        params=planned,
        estimated=an.estimated,
        prefix_hash=ch.head_hex if ch.links else None,
        breakpoints=described,
    )


def _ttl_of(block: Mapping[str, Any]) -> str:
    marker = block.get("cache_control")
    return "1h" if isinstance(marker, Mapping) and marker.get("ttl") == "1h" else "5m"
