"""What if every cache write had used the other TTL? Re-pricing recorded sessions. Pure.

The concrete answer to "should I turn on ``ENABLE_PROMPT_CACHING_1H``?" (or turn it off). Two
effects, both from the call timestamps (``docs/design/analysis.md`` has the model):

1. **Price.** A write costs 1.25x the input price at 5m and 2x at 1h.
2. **Survival.** A 5m entry dies after 5 minutes without use, a 1h entry after an hour. With
   1h, a prefix reused after a 7-minute pause is read (0.1x) instead of written again; with
   5m, a read that came after such a pause becomes a write.

**Exact** (Claude Code 2.1.330+ sessions whose requests :mod:`tokenomy.analysis.replay`
rebuilt): the per-call reads and writes of the cache model run over the real requests under
each TTL are stored with the call (``decisions["replay"]``) and used as they are.

**Estimated** (everything else): each run is simulated twice over its calls in order, once as
it was sent and once under the other TTL. A call's cached part is ``read + written`` (up to its
last breakpoint); it can reuse any live entry that ends within it, and within what it shares
with the previous call (its whole prompt while the conversation only grows; only the prefix
after a compaction, a model switch, or a prompt that shrank). A call writes an entry at the
end of its cached part and one at the end of its prefix (Claude Code's system breakpoint).
The difference between the two simulations moves tokens between *read* and *written* in the
call's real usage; uncached input and output never change. Calls the simulation cannot
explain (a read the run never wrote, e.g. another session's cache) keep their real split.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Literal

from tokenomy.core.pricing import CostBreakdown, cost
from tokenomy.core.records import CallRecord
from tokenomy.core.usage import Usage
from tokenomy.data.table import ModelTable

__all__ = ["Method", "Ttl", "WhatIfCall", "WhatIfRun", "what_if_run", "what_if_usage"]

Ttl = Literal["5m", "1h"]
Method = Literal["exact", "estimated", "partly exact"]
TTL_S: Mapping[str, float] = {"5m": 300.0, "1h": 3600.0}
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class WhatIfCall:
    """One call re-priced: its usage under the TTL, and both costs (None when unpriced)."""

    call_id: str
    exact: bool
    usage: Usage
    actual_usd: Decimal | None
    what_if_usd: Decimal | None


@dataclass(frozen=True, slots=True)
class WhatIfRun:
    """A run's calls re-priced."""

    run_id: str
    calls: tuple[WhatIfCall, ...]

    @property
    def method(self) -> Method:
        exact = sum(1 for c in self.calls if c.exact)
        if exact == len(self.calls):
            return "exact"
        return "estimated" if exact == 0 else "partly exact"

    @property
    def actual_usd(self) -> Decimal:
        return sum((c.actual_usd for c in self.calls if c.actual_usd is not None), ZERO)

    @property
    def what_if_usd(self) -> Decimal:
        return sum((c.what_if_usd for c in self.calls if c.what_if_usd is not None), ZERO)

    @property
    def unpriced(self) -> int:
        return sum(1 for c in self.calls if c.what_if_usd is None)


def _ttl_of(u: Usage) -> float:
    return TTL_S["1h"] if u.cache_write_1h_tokens > u.cache_write_5m_tokens else TTL_S["5m"]


def _simulate(calls: Sequence[CallRecord], resets: set[int], ttl: Ttl | None) -> list[int]:
    """Predicted cache reads of each call when entries live ``ttl`` (None: as each was sent)."""
    entries: list[list[float]] = []  # [end tokens, last used s, ttl s]
    out: list[int] = []
    prev_total: int | None = None
    prev_model: str | None = None
    for i, c in enumerate(calls):
        if c.usage is None:
            out.append(0)
            continue
        u = c.usage.billable()
        total = u.total_input_tokens
        cached_end = u.cache_read_tokens + u.cache_write_tokens
        model = c.model_used or c.model_requested
        at = c.started_at.timestamp()
        seg = c.segments
        prefix = min(cached_end, seg.tools + seg.system) if seg is not None else 0
        if model != prev_model:
            entries = []
        grows = prev_total is not None and i not in resets and total >= prev_total
        limit = min(cached_end, total if grows else prefix)
        hit: list[float] | None = None
        for e in entries:
            if e[0] <= limit and at - e[1] < e[2] and (hit is None or e[0] > hit[0]):
                hit = e
        read = int(hit[0]) if hit is not None else 0
        if hit is not None:
            hit[1] = at
        life = TTL_S[ttl] if ttl is not None else _ttl_of(u)
        if cached_end > read:
            ends = {int(e[0]) for e in entries}
            for end in (prefix, cached_end):
                if end > read and end not in ends:
                    entries.append([float(end), at, life])
                elif end > read:
                    for e in entries:
                        if e[0] == end:
                            e[1], e[2] = at, life
        out.append(read)
        prev_total, prev_model = total, model
    return out


def what_if_usage(actual: Usage, *, read_tokens: int, ttl: Ttl) -> Usage:
    """``actual`` with its cached part split into ``read_tokens`` read and the rest written
    at ``ttl``; uncached input and output unchanged."""
    u = actual.billable()
    cached_end = u.cache_read_tokens + u.cache_write_tokens
    read = max(0, min(read_tokens, cached_end))
    written = cached_end - read
    return replace(
        u,
        cache_read_tokens=read,
        cache_write_5m_tokens=written if ttl == "5m" else 0,
        cache_write_1h_tokens=written if ttl == "1h" else 0,
        ttl_split_known=True,
        iterations=(),
    )


def what_if_run(
    run_id: str,
    calls: Sequence[CallRecord],
    *,
    ttl: Ttl,
    compactions: Iterable[datetime],
    table: ModelTable,
) -> WhatIfRun:
    """Re-price one run's calls (in order) as if every write had used ``ttl``."""
    ordered = sorted(calls, key=lambda c: (c.seq, c.started_at, c.call_id))
    resets: set[int] = set()
    marks = sorted(compactions)
    for i in range(1, len(ordered)):
        lo, hi = ordered[i - 1].started_at, ordered[i].started_at
        if any(lo <= m <= hi for m in marks):
            resets.add(i)
    sent = _simulate(ordered, resets, None)
    other = _simulate(ordered, resets, ttl)
    out: list[WhatIfCall] = []
    for i, c in enumerate(ordered):
        actual_usd = c.cost.total_usd if isinstance(c.cost, CostBreakdown) else None
        if c.usage is None:
            continue
        replay = c.decisions.get("replay") if isinstance(c.decisions, Mapping) else None
        exact = isinstance(replay, Mapping) and isinstance(replay.get(ttl), list)
        if exact and isinstance(replay, Mapping):
            read = int(replay[ttl][0])
        else:
            read = c.usage.billable().cache_read_tokens + other[i] - sent[i]
        if c.usage.iterations:
            # Server-side compaction bills iterations; their TTLs are not ours to move.
            usage, what_if = c.usage, actual_usd
        else:
            usage = what_if_usage(c.usage, read_tokens=read, ttl=ttl)
            price = cost(usage, c.model_used or c.model_requested, table=table)
            what_if = price.total_usd if isinstance(price, CostBreakdown) else None
        out.append(
            WhatIfCall(
                call_id=c.call_id,
                exact=exact,
                usage=usage,
                actual_usd=actual_usd,
                what_if_usd=what_if if actual_usd is not None else None,
            )
        )
    return WhatIfRun(run_id=run_id, calls=tuple(out))
