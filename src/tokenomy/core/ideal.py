"""The ideal cost of a run: the lower bound for caching without changing content.

Each input token is billed (ARCHITECTURE.md §5):

- as a **read** if an identical prefix through its block was sent earlier in the run, on the
  same model, and last used within the longest TTL (1h);
- as a **write** if it is first seen now and reused later — at the 5m price when every reuse
  came within 5 minutes of the previous use, else at the 1h price;
- as plain **input** otherwise (never reused, or under the model's minimum cacheable length).

Whether a first sighting is reused is only known later, so the bound is kept as a running
total that is corrected when a reuse arrives. Caching happens at block boundaries, so that is
the granularity here too. Output and server-tool costs are what they were: caching does not
change them.

``cache efficiency = ideal / actual`` (1.0 is perfect).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from tokenomy.core.pricing import MTOK, Rates

__all__ = ["IdealCost"]

_5M_S = 300.0
_1H_S = 3600.0


@dataclass(slots=True)
class _Seen:
    tokens: int
    rates: Rates
    billed: Literal["input", "write_5m", "write_1h"]
    last_used_s: float


@dataclass(slots=True)
class IdealCost:
    """Running ideal cost of one run. Add calls in the order they were sent."""

    input_usd: Decimal = Decimal(0)
    other_usd: Decimal = Decimal(0)
    # per model (each model has its own cache): prefix hash -> what its block was billed as
    _seen: dict[str, dict[bytes, _Seen]] = field(default_factory=dict)

    @property
    def total_usd(self) -> Decimal:
        return self.input_usd + self.other_usd

    def add_call(
        self,
        *,
        model: str,
        prefix_hashes: Sequence[bytes],
        positions: Sequence[int],
        total_input_tokens: int,
        rates: Rates,
        min_cacheable_tokens: int,
        now_s: float,
        other_usd: Decimal = Decimal(0),
    ) -> None:
        """One call: its prefix hash per block and the cumulative tokens through each block.

        ``positions`` are scaled so that the last one equals the billed ``total_input_tokens``;
        anything beyond the last block (none, normally) is billed as input.
        """
        self.other_usd += other_usd
        n = len(prefix_hashes)
        ends = [
            total_input_tokens if i == n - 1 else min(positions[i], total_input_tokens)
            for i in range(n)
        ]
        # The deepest prefix seen within the TTL and long enough to be cached: everything up to
        # it is read (the minimum applies to the prefix read, not to each block inside it).
        seen_map = self._seen.setdefault(model, {})
        get = seen_map.get
        hit = -1
        for i in range(n - 1, -1, -1):
            seen = get(prefix_hashes[i])
            if (
                seen is not None
                and now_s - seen.last_used_s <= _1H_S
                and ends[i] >= min_cacheable_tokens
            ):
                hit = i
                break
        prev_end = 0
        read_tokens = input_tokens = 0
        for i, h in enumerate(prefix_hashes):
            end = ends[i]
            delta = end - prev_end if end > prev_end else 0
            prev_end = max(prev_end, end)
            seen = get(h)
            if i <= hit and seen is not None:
                read_tokens += delta
                if seen.billed != "write_1h":
                    self._upgrade(seen, now_s - seen.last_used_s)
                seen.last_used_s = now_s
                continue
            input_tokens += delta
            if delta > 0:
                seen_map[h] = _Seen(delta, rates, "input", now_s)
        input_tokens += max(0, total_input_tokens - prev_end)
        self.input_usd += (read_tokens * rates.cache_read + input_tokens * rates.input) / MTOK

    def _upgrade(self, seen: _Seen, gap_s: float) -> None:
        """A reuse after ``gap_s``: the first sighting becomes (at least) the right write."""
        want: Literal["write_5m", "write_1h"] = "write_5m" if gap_s <= _5M_S else "write_1h"
        if seen.billed in (want, "write_1h"):
            return
        r = seen.rates
        was = {"input": r.input, "write_5m": r.cache_write_5m}[seen.billed]
        now = r.cache_write_5m if want == "write_5m" else r.cache_write_1h
        self.input_usd += seen.tokens * (now - was) / MTOK
        seen.billed = want

    def efficiency(self, actual_usd: Decimal) -> Decimal | None:
        """``ideal / actual``; None when nothing was spent."""
        if actual_usd <= 0:
            return None
        return self.total_usd / actual_usd
