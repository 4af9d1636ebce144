"""A client-side prediction of what the server holds in its prompt cache.

Written from the reference sheet (§1.3–1.6), independently of the emulator, so that each can
find the other's mistakes. For every call the model predicts reads and writes *before* sending
and learns from the usage that comes back:

- an entry is written only at a breakpoint, keyed by ``(model, prefix hash)``; it becomes
  readable once the writing response has started; its TTL counts from the *start* of the
  request that wrote or last read it, and a hit refreshes it;
- reading looks back at most ``lookback`` positions from each breakpoint (the breakpoint
  counts as the first) for a live entry; the highest hit over all breakpoints wins;
- a breakpoint whose prefix is below the model's minimum cacheable length neither reads nor
  writes; billing is A (read) / B (highest 1h breakpoint after A) / C (last breakpoint).

Token positions are estimated, then *calibrated*: after each call the exact prefix length is
known at the hit position (``cache_read``) and at the last write (``read + written``), so the
next prediction of a read of that entry is exact.

Pure: time comes in as ``now_s``; the state is a plain object the pipeline keeps per API key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from tokenomy.core.anatomy import Anatomy
from tokenomy.core.usage import Usage

__all__ = [
    "TTL_S",
    "BreakpointPos",
    "CacheModel",
    "Entry",
    "Observation",
    "Prediction",
    "Ttl",
]

Ttl = Literal["5m", "1h"]
TTL_S: dict[str, int] = {"5m": 300, "1h": 3600}
LOOKBACK = 20


@dataclass(frozen=True, slots=True)
class BreakpointPos:
    """A breakpoint at chain link ``index`` with its TTL."""

    index: int
    ttl: Ttl = "5m"


@dataclass(slots=True)
class Entry:
    """One predicted cache entry."""

    model: str
    prefix_hash: bytes
    index: int
    tokens: int
    ttl: Ttl
    last_used_s: float
    readable: bool = False
    writer_call: str | None = None
    hits: int = 0

    @property
    def expires_at_s(self) -> float:
        return self.last_used_s + TTL_S[self.ttl]

    def live(self, now_s: float) -> bool:
        return now_s < self.expires_at_s


@dataclass(frozen=True, slots=True)
class Prediction:
    """What the server should bill for the input of one call."""

    model: str
    read_tokens: int
    write_5m_tokens: int
    write_1h_tokens: int
    uncached_tokens: int
    hit_index: int | None
    positions: tuple[int, ...]
    breakpoints: tuple[BreakpointPos, ...]
    writes: tuple[tuple[int, Ttl], ...]
    below_minimum: tuple[int, ...] = ()
    expired: tuple[tuple[int, float], ...] = ()
    out_of_lookback: tuple[int, ...] = ()
    unreadable: tuple[int, ...] = ()
    # Whether the read's token count is known exactly (learned from an earlier response) or
    # estimated: an estimate can be off by the tokenizer's difference, not by the entry read.
    read_exact: bool = True

    @property
    def write_tokens(self) -> int:
        return self.write_5m_tokens + self.write_1h_tokens

    @property
    def total_tokens(self) -> int:
        return self.read_tokens + self.write_tokens + self.uncached_tokens


@dataclass(frozen=True, slots=True)
class Observation:
    """Prediction against reality for one call.

    ``reads_agree``: the server read exactly the predicted tokens — or, when the prediction's
    token count was an estimate (a prefix never measured before), read the predicted entry.
    """

    predicted: Prediction
    actual_read_tokens: int
    actual_write_tokens: int
    reads_agree: bool
    writes_agree: bool
    note: str | None = None


@dataclass(slots=True)
class CacheModel:
    """The predicted server cache of one scope (API key), across models and runs."""

    lookback: int = LOOKBACK
    entries: dict[tuple[str, bytes], Entry] = field(default_factory=dict)
    exact_tokens: dict[tuple[str, bytes], int] = field(default_factory=dict)
    # actual / estimated total input, per model, from the last call: scales estimates.
    ratio: dict[str, float] = field(default_factory=dict)
    # entries a call registered before its response began, by call id
    pending: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)

    # ------------------------------------------------------------------ positions

    def positions(self, model: str, anatomy: Anatomy) -> tuple[int, ...]:
        """Calibrated cumulative tokens through each link of the request's chain."""
        r = self.ratio.get(model, 1.0)
        out: list[int] = []
        base_exact = 0
        base_est = 0
        est = anatomy.tools_overhead_tokens
        for link, n in zip(anatomy.chain.links, anatomy.block_tokens, strict=True):
            est += n
            exact = self.exact_tokens.get((model, link.prefix_hash))
            if exact is not None:
                base_exact, base_est = exact, est
                out.append(exact)
            else:
                out.append(base_exact + round((est - base_est) * r))
        return tuple(out)

    # ------------------------------------------------------------------ predict

    def predict(
        self,
        *,
        model: str,
        anatomy: Anatomy,
        breakpoints: Sequence[BreakpointPos],
        min_cacheable_tokens: int,
        now_s: float,
        positions: tuple[int, ...] | None = None,
    ) -> Prediction:
        """The reads and writes the server should make for this request.

        ``positions``: :meth:`positions` of this request, if the caller has them already.
        """
        pos = positions if positions is not None else self.positions(model, anatomy)
        links = anatomy.chain.links
        total = pos[-1] if pos else anatomy.tools_overhead_tokens
        bps = tuple(sorted(breakpoints, key=lambda b: b.index))
        hit: int | None = None
        expired: list[tuple[int, float]] = []
        unreadable: list[int] = []
        windows: set[int] = set()
        for bp in bps:
            for p in range(bp.index, max(-1, bp.index - self.lookback), -1):
                windows.add(p)
                e = self.entries.get((model, links[p].prefix_hash))
                if e is None:
                    continue
                if not e.live(now_s):
                    expired.append((p, e.expires_at_s))
                    continue
                if not e.readable:
                    unreadable.append(p)
                    continue
                if hit is None or p > hit:
                    hit = p
                break
        read = pos[hit] if hit is not None else 0
        below = tuple(bp.index for bp in bps if pos[bp.index] < min_cacheable_tokens)
        writing = [
            bp
            for bp in bps
            if (hit is None or bp.index > hit) and pos[bp.index] >= min_cacheable_tokens
        ]
        w1 = w5 = 0
        cached_end = read
        if writing:
            one_h = [bp for bp in writing if bp.ttl == "1h"]
            b = pos[one_h[-1].index] if one_h else read
            c = pos[writing[-1].index]
            w1 = b - read
            w5 = c - b
            cached_end = c
        out_of_lookback = tuple(
            i
            for i, link in enumerate(links)
            if i not in windows
            and (hit is None or i > hit)
            and (e := self.entries.get((model, link.prefix_hash))) is not None
            and e.readable
            and e.live(now_s)
        )
        read_exact = hit is None or (model, links[hit].prefix_hash) in self.exact_tokens
        return Prediction(
            model=model,
            read_exact=read_exact,
            read_tokens=read,
            write_5m_tokens=w5,
            write_1h_tokens=w1,
            uncached_tokens=max(0, total - cached_end),
            hit_index=hit,
            positions=pos,
            breakpoints=bps,
            writes=tuple((bp.index, bp.ttl) for bp in writing),
            below_minimum=below,
            expired=tuple(expired),
            out_of_lookback=out_of_lookback,
            unreadable=tuple(unreadable),
        )

    # ------------------------------------------------------------------ lifecycle

    def begin(self, p: Prediction, anatomy: Anatomy, *, call_id: str, now_s: float) -> None:
        """The request was sent at ``now_s``: refresh the hit, register pending writes."""
        links = anatomy.chain.links
        if p.hit_index is not None:
            e = self.entries.get((p.model, links[p.hit_index].prefix_hash))
            if e is not None:
                e.last_used_s = now_s
                e.hits += 1
        for index, ttl in p.writes:
            key = (p.model, links[index].prefix_hash)
            existing = self.entries.get(key)
            if existing is not None and existing.live(now_s):
                existing.last_used_s = max(existing.last_used_s, now_s)
                if TTL_S[ttl] > TTL_S[existing.ttl]:
                    existing.ttl = ttl
                continue
            self.entries[key] = Entry(
                model=p.model,
                prefix_hash=links[index].prefix_hash,
                index=index,
                tokens=p.positions[index],
                ttl=ttl,
                last_used_s=now_s,
                readable=False,
                writer_call=call_id,
            )
            self.pending.setdefault(call_id, []).append(key)

    def started(self, call_id: str) -> None:
        """The response of ``call_id`` began: its writes are readable from now on."""
        for key in self.pending.pop(call_id, ()):
            e = self.entries.get(key)
            if e is not None and e.writer_call == call_id:
                e.readable = True

    def abort(self, call_id: str) -> None:
        """The request failed before its response began: it wrote nothing."""
        for key in self.pending.pop(call_id, ()):
            e = self.entries.get(key)
            if e is not None and e.writer_call == call_id and not e.readable:
                del self.entries[key]

    def observe(
        self, p: Prediction, anatomy: Anatomy, usage: Usage, *, call_id: str
    ) -> Observation:
        """Learn from the billed usage; returns how the prediction compared."""
        u = usage.billable()
        links = anatomy.chain.links
        model = p.model
        read, w1, w5 = u.cache_read_tokens, u.cache_write_1h_tokens, u.cache_write_5m_tokens
        written = w1 + w5
        note: str | None = None
        self.started(call_id)
        if read > 0 and p.hit_index is not None:
            self._set_exact(model, links[p.hit_index].prefix_hash, read)
        elif read > 0:
            # The server had an entry we did not know of (another process, another run
            # outside this pipeline): adopt the breakpoint-window position closest to it.
            best = min(range(len(p.positions)), key=lambda i: abs(p.positions[i] - read))
            self._set_exact(model, links[best].prefix_hash, read)
            note = f"unexpected read of {read} tokens (entry written outside this pipeline?)"
        elif p.hit_index is not None:
            self.entries.pop((model, links[p.hit_index].prefix_hash), None)
            note = "predicted entry was not read: evicted or never written"
        if written > 0 and p.writes:
            last_index = p.writes[-1][0]
            self._set_exact(model, links[last_index].prefix_hash, read + written)
            one_h = [i for i, ttl in p.writes if ttl == "1h"]
            if one_h and w5 > 0:
                self._set_exact(model, links[one_h[-1]].prefix_hash, read + w1)
        elif written == 0 and p.writes:
            for index, _ in p.writes:
                e = self.entries.get((model, links[index].prefix_hash))
                if e is not None and e.writer_call == call_id:
                    del self.entries[(model, links[index].prefix_hash)]
            note = note or "predicted a write but the server cached nothing (below its minimum?)"
        est_total = anatomy.total_tokens
        if est_total > 0 and u.total_input_tokens > 0:
            self.ratio[model] = u.total_input_tokens / est_total
        same_entry = (read > 0) == (p.hit_index is not None)
        return Observation(
            predicted=p,
            actual_read_tokens=read,
            actual_write_tokens=written,
            reads_agree=read == p.read_tokens if p.read_exact else same_entry,
            writes_agree=written == p.write_tokens,
            note=note,
        )

    def _set_exact(self, model: str, prefix_hash: bytes, tokens: int) -> None:
        self.exact_tokens[(model, prefix_hash)] = tokens
        e = self.entries.get((model, prefix_hash))
        if e is not None:
            e.tokens = tokens

    def purge(self, now_s: float) -> int:
        """Forget expired entries (and their calibration); returns how many went."""
        dead = [k for k, e in self.entries.items() if not e.live(now_s)]
        for k in dead:
            del self.entries[k]
        if len(self.exact_tokens) > 50_000:  # bounded memory for very long-lived gateways
            live = set(self.entries)
            self.exact_tokens = {k: v for k, v in self.exact_tokens.items() if k in live}
        return len(dead)

    def live_entries(self, now_s: float) -> list[Entry]:
        return [e for e in self.entries.values() if e.live(now_s)]
