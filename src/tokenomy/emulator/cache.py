"""The emulator's prompt cache: an independent model of what Anthropic's servers do.

Every rule traces to ``shared/reference/anthropic-api.md`` §1 (see
``docs/design/emulator-server.md`` for the full mapping):

* entries live per scope (an API-key fingerprint) and per model (§1.3), keyed by the hash of
  the whole rendered prefix through a block (:mod:`tokenomy.emulator._prompt`);
* a write happens only at a breakpoint whose prefix reaches the model's minimum cacheable length
  (§1.3, §1.5); below it a breakpoint neither reads nor writes;
* each breakpoint looks back over at most 20 block positions, itself first, for an entry an
  earlier request *wrote*; the longest hit over all breakpoints wins (§1.3);
* billing (§1.6): A = tokens through the hit (read), B = the last 1h breakpoint after A
  (1h write of B − A), C = the last breakpoint (5m write of C − B, or C − A without a 1h one),
  everything after C (or after A when nothing is written) is ``input_tokens``;
* an entry lives 5 minutes or 1 hour from the start of the request that wrote or last read it
  (hits refresh it for free) and is readable only once the writing response has started
  (:meth:`PromptCache.commit`); an aborted request writes and refreshes nothing (§1.3, §1.6).

Pure apart from its own state; time is passed in (``now_s``); thread-safe.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from tokenomy.data.table import ModelInfo
from tokenomy.emulator._prompt import Prompt

__all__ = ["LOOKBACK_POSITIONS", "TTL_S", "CacheDecision", "PromptCache"]

Ttl = Literal["5m", "1h"]
#: lookback window per breakpoint, the breakpoint itself included (§1.3)
LOOKBACK_POSITIONS: Final = 20
TTL_S: Final[dict[str, float]] = {"5m": 300.0, "1h": 3600.0}
_PURGE_EVERY: Final = 512


@dataclass(frozen=True, slots=True)
class _Write:
    key: bytes
    prefix_tokens: int
    ttl: Ttl


@dataclass(frozen=True, slots=True)
class CacheDecision:
    """What one request reads and writes, decided at request start."""

    scope: str
    model_id: str
    now_s: float
    total_tokens: int
    read_tokens: int
    write_5m_tokens: int
    write_1h_tokens: int
    hit_keys: tuple[bytes, ...]  # entries read (refreshed at commit)
    writes: tuple[_Write, ...]  # entries written (readable at commit)
    breakpoints: int  # breakpoints that reached the minimum length

    @property
    def input_tokens(self) -> int:
        """Tokens neither read nor written: everything after the last cached position."""
        return self.total_tokens - self.read_tokens - self.write_5m_tokens - self.write_1h_tokens


@dataclass(slots=True)
class _Entry:
    scope: str
    model_id: str
    prefix_tokens: int
    ttl: Ttl
    written_at_s: float
    expires_at_s: float
    hits: int = 0


@dataclass(slots=True)
class _Stats:
    requests: int = 0
    committed: int = 0
    aborted: int = 0
    hits: int = 0
    misses: int = 0
    uncacheable: int = 0
    read_tokens: int = 0
    write_5m_tokens: int = 0
    write_1h_tokens: int = 0
    input_tokens: int = 0
    count_tokens_requests: int = 0
    by_model: dict[str, int] = field(default_factory=dict)


class PromptCache:
    """Cache entries of every scope and model, with pending writes of requests in flight."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str, bytes], _Entry] = {}
        self._pending: dict[int, CacheDecision] = {}
        self._ids = itertools.count(1)
        self._ops = 0
        self._stats = _Stats()

    # ------------------------------------------------------------ decide

    def decide(
        self, prompt: Prompt, *, model: ModelInfo, scope: str, now_s: float
    ) -> tuple[int, CacheDecision]:
        """Reads and writes of ``prompt`` at ``now_s``; registers them as pending.

        Returns a ticket for :meth:`commit` / :meth:`abort`.
        """
        minimum = model.min_cacheable_tokens
        qualifying = [bp for bp in prompt.breakpoints if prompt.ends[bp.index] >= minimum]
        with self._lock:
            hit_index = -1
            hit_keys: list[bytes] = []
            for bp in qualifying:
                lowest = max(-1, bp.index - LOOKBACK_POSITIONS)
                for j in range(bp.index, lowest, -1):
                    entry = self._entries.get((scope, model.id, prompt.keys[j]))
                    if entry is not None and now_s < entry.expires_at_s:
                        if prompt.keys[j] not in hit_keys:
                            hit_keys.append(prompt.keys[j])
                        hit_index = max(hit_index, j)
                        break  # the nearest entry is this breakpoint's longest hit
            read = prompt.ends[hit_index] if hit_index >= 0 else 0
            after = [bp for bp in qualifying if bp.index > hit_index]
            writes = tuple(
                _Write(key=prompt.keys[bp.index], prefix_tokens=prompt.ends[bp.index], ttl=bp.ttl)
                for bp in after
            )
            one_hour = [bp for bp in after if bp.ttl == "1h"]
            b_tokens = prompt.ends[one_hour[-1].index] if one_hour else read
            c_tokens = prompt.ends[after[-1].index] if after else read
            decision = CacheDecision(
                scope=scope,
                model_id=model.id,
                now_s=now_s,
                total_tokens=prompt.total_tokens,
                read_tokens=read,
                write_1h_tokens=b_tokens - read,
                write_5m_tokens=c_tokens - b_tokens,
                hit_keys=tuple(hit_keys),
                writes=writes,
                breakpoints=len(qualifying),
            )
            ticket = next(self._ids)
            self._pending[ticket] = decision
            self._stats.requests += 1
            self._stats.by_model[model.id] = self._stats.by_model.get(model.id, 0) + 1
            return ticket, decision

    # ------------------------------------------------------------ commit / abort

    def commit(self, ticket: int) -> None:
        """The response started: refresh what was read, make the writes readable. Idempotent."""
        with self._lock:
            d = self._pending.pop(ticket, None)
            if d is None:
                return
            for key in d.hit_keys:
                entry = self._entries.get((d.scope, d.model_id, key))
                if entry is not None:
                    entry.hits += 1
                    # the clock starts at the start of the reading request (§1.6)
                    entry.expires_at_s = max(entry.expires_at_s, d.now_s + TTL_S[entry.ttl])
            for w in d.writes:
                old = self._entries.get((d.scope, d.model_id, w.key))
                expires = d.now_s + TTL_S[w.ttl]
                if old is not None and old.expires_at_s > expires:
                    continue  # a concurrent writer left a longer-lived entry: keep it
                self._entries[(d.scope, d.model_id, w.key)] = _Entry(
                    scope=d.scope,
                    model_id=d.model_id,
                    prefix_tokens=w.prefix_tokens,
                    ttl=w.ttl,
                    written_at_s=d.now_s,
                    expires_at_s=expires,
                )
            s = self._stats
            s.committed += 1
            if d.read_tokens:
                s.hits += 1
            elif d.breakpoints:
                s.misses += 1
            else:
                s.uncacheable += 1
            s.read_tokens += d.read_tokens
            s.write_5m_tokens += d.write_5m_tokens
            s.write_1h_tokens += d.write_1h_tokens
            s.input_tokens += d.input_tokens
            self._ops += 1
            if self._ops % _PURGE_EVERY == 0:
                self._purge(d.now_s)

    def abort(self, ticket: int) -> None:
        """The request failed before its response started: nothing is read or written."""
        with self._lock:
            if self._pending.pop(ticket, None) is not None:
                self._stats.aborted += 1

    def count_tokens_request(self) -> None:
        with self._lock:
            self._stats.count_tokens_requests += 1

    # ------------------------------------------------------------ admin

    def _purge(self, now_s: float) -> None:
        dead = [k for k, e in self._entries.items() if e.expires_at_s <= now_s]
        for k in dead:
            del self._entries[k]

    def entries(self, *, now_s: float) -> list[dict[str, Any]]:
        """Live entries (readable ones, then pending writes of requests in flight)."""
        with self._lock:
            self._purge(now_s)
            rows = [_row(e, readable=True) for e in self._entries.values()]
            for d in self._pending.values():
                rows.extend(
                    {
                        "model": d.model_id,
                        "scope": d.scope,
                        "prefix_tokens": w.prefix_tokens,
                        "ttl": w.ttl,
                        "written_at_s": d.now_s,
                        "expires_at_s": d.now_s + TTL_S[w.ttl],
                        "readable": False,
                        "hits": 0,
                    }
                    for w in d.writes
                )
        rows.sort(key=lambda r: (r["scope"], r["model"], r["prefix_tokens"], r["written_at_s"]))
        return rows

    def stats(self) -> dict[str, Any]:
        with self._lock:
            s = self._stats
            return {
                "requests": s.requests,
                "committed": s.committed,
                "aborted": s.aborted,
                "in_flight": len(self._pending),
                "hits": s.hits,
                "misses": s.misses,
                "uncacheable": s.uncacheable,
                "cache_read_input_tokens": s.read_tokens,
                "cache_creation_5m_input_tokens": s.write_5m_tokens,
                "cache_creation_1h_input_tokens": s.write_1h_tokens,
                "cache_creation_input_tokens": s.write_5m_tokens + s.write_1h_tokens,
                "input_tokens": s.input_tokens,
                "count_tokens_requests": s.count_tokens_requests,
                "entries_stored": len(self._entries),
                "requests_by_model": dict(sorted(s.by_model.items())),
            }

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()
            self._pending.clear()
            self._stats = _Stats()
            self._ops = 0


def _row(e: _Entry, *, readable: bool) -> dict[str, Any]:
    return {
        "model": e.model_id,
        "scope": e.scope,
        "prefix_tokens": e.prefix_tokens,
        "ttl": e.ttl,
        "written_at_s": e.written_at_s,
        "expires_at_s": e.expires_at_s,
        "readable": readable,
        "hits": e.hits,
    }
