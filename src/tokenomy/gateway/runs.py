"""Which run a request belongs to, for clients that know nothing about runs.

In order of precedence:

1. ``x-tokenomy-run: <id>`` — the client names its run (one run per value and API key).
2. Claude Code's session: the ``X-Claude-Code-Session-Id`` header, or ``session_id`` inside the
   JSON string in ``metadata.user_id``.
3. Prefix-chain continuity: a request whose messages extend an earlier request's messages
   (same system prompt, same earlier turns) continues that request's run.

Sub-agents become child runs: ``x-tokenomy-subagent: <name>`` under a run named by 1 or 2, or —
inside a Claude Code session — a request whose system prompt differs from the session's main
thread (Claude Code's sub-agents and side requests carry their own system prompt; its own
``/compact`` keeps the main one).

The registry is bounded, so memory stays flat under load:

- a run idle for ``hibernate_s`` (default 15 minutes: longer than the 5-minute cache TTL) keeps
  its identity and totals but drops what it remembers to plan and diagnose its next call (the
  previous request and its hash chain, token estimates) — that is most of a run's memory, a
  copy of its last request;
- a run idle for ``idle_s`` is ended and forgotten, and at most ``max_runs`` are kept (least
  recently used first out).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from hashlib import blake2b
from typing import Any

import orjson

from tokenomy.core.canonical import canonical_block
from tokenomy.pipeline import Pipeline, Run

__all__ = [
    "PARENT_HEADER",
    "RUN_HEADER",
    "SESSION_HEADER",
    "SUBAGENT_HEADER",
    "RunRegistry",
    "claude_code_session",
]

RUN_HEADER = "x-tokenomy-run"
SUBAGENT_HEADER = "x-tokenomy-subagent"
PARENT_HEADER = "x-tokenomy-parent-run"
SESSION_HEADER = "x-claude-code-session-id"
_BILLING_LINE = "x-anthropic-billing-header"


def claude_code_session(
    headers: Mapping[str, str], request: Mapping[str, Any] | None
) -> str | None:
    """Claude Code's session id: its header, else ``metadata.user_id``'s JSON ``session_id``."""
    sid = headers.get(SESSION_HEADER)
    if sid:
        return sid
    if request is None:
        return None
    meta = request.get("metadata")
    uid = meta.get("user_id") if isinstance(meta, Mapping) else None
    if not isinstance(uid, str) or not uid.startswith("{"):
        return None
    try:
        parsed = orjson.loads(uid)
    except orjson.JSONDecodeError:
        return None
    sid = parsed.get("session_id") if isinstance(parsed, Mapping) else None
    return sid if isinstance(sid, str) and sid else None


def _digest(data: bytes) -> bytes:
    return blake2b(data, digest_size=16).digest()


def _blocks(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [{"type": "text", "text": value}] if value else []
    return value if isinstance(value, list) else []


def _system_key(request: Mapping[str, Any]) -> bytes:
    """The system prompt's identity, without Claude Code's per-prompt billing line."""
    h = b""
    for block in _blocks(request.get("system")):
        if not isinstance(block, dict):
            continue
        text = block.get("text")
        if isinstance(text, str) and text.startswith(_BILLING_LINE):
            continue
        h = _digest(h + canonical_block(block))
    return h


def _message_chain(request: Mapping[str, Any]) -> list[bytes]:
    """Rolling hashes: ``[0]`` is the system prompt, ``[i]`` the system plus the first i messages.

    Canonical blocks (cache markers dropped, a plain string equal to one text block) so that
    a client re-sending its history in a different but equivalent shape still continues.
    """
    h = _system_key(request)
    out = [h]
    messages = request.get("messages")
    if not isinstance(messages, list):
        return out
    for m in messages:
        if not isinstance(m, dict):
            break
        role = m.get("role")
        h = _digest(h + b"|" + str(role).encode())
        for block in _blocks(m.get("content")):
            if isinstance(block, dict):
                h = _digest(h + canonical_block(block))
        out.append(h)
    return out


@dataclass(slots=True)
class _Entry:
    run: Run
    last_s: float
    system: bytes | None = None


class RunRegistry:
    """Maps requests to runs of ``pipeline`` (bounded: LRU + idle timeout)."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        idle_s: float = 3600.0,
        hibernate_s: float = 900.0,
        max_runs: int = 10_000,
        max_prefixes: int = 50_000,
        now_s: Callable[[], float] | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._idle_s = idle_s
        self._hibernate_s = min(hibernate_s, idle_s)
        self._max_runs = max_runs
        self._max_prefixes = max_prefixes
        self._now_s = now_s or pipeline.clock.monotonic_s
        # Active runs in LRU order, then hibernated ones (also in LRU order).
        self._entries: OrderedDict[tuple[str, ...], _Entry] = OrderedDict()
        self._dormant: OrderedDict[tuple[str, ...], _Entry] = OrderedDict()
        # message-chain hash -> the key of the run whose request ended there
        self._prefixes: OrderedDict[bytes, tuple[str, ...]] = OrderedDict()
        self._sweeps = 0

    def __len__(self) -> int:
        return len(self._entries) + len(self._dormant)

    @property
    def active(self) -> int:
        """Runs holding their full planning state (not hibernated)."""
        return len(self._entries)

    def resolve(
        self,
        headers: Mapping[str, str],
        request: Mapping[str, Any] | None,
        *,
        scope: str,
    ) -> Run:
        """The run of a request (starting one if needed). ``headers`` have lower-case names."""
        now = self._now_s()
        self._sweep(now)
        named = headers.get(RUN_HEADER)
        session = claude_code_session(headers, request)
        if named:
            run = self._get(("run", scope, named), now, name=named, external_id=named)
            return self._child(run, ("run", scope, named), headers, request, now, session=False)
        if session:
            key = ("cc", scope, session)
            run = self._get(key, now, name="claude-code", external_id=session, client="claude-code")
            return self._child(run, key, headers, request, now, session=True)
        if request is None:
            return self._get(("anon", scope), now, name="gateway", external_id=None)
        return self._continuity(request, scope, now)

    # ------------------------------------------------------------------ internals

    def _get(
        self,
        key: tuple[str, ...],
        now: float,
        *,
        name: str,
        external_id: str | None,
        client: str | None = None,
        parent: Run | None = None,
    ) -> Run:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._dormant.pop(key, None)
            if entry is not None:
                self._entries[key] = entry
        if entry is not None:
            entry.last_s = now
            self._entries.move_to_end(key)
            return entry.run
        tags = {"client": client} if client else None
        if parent is not None:
            run = self._pipeline.start_run(
                name, parent=parent, tags=tags, source="gateway", external_id=external_id
            )
        else:
            run = self._pipeline.start_run(
                name, tags=tags, source="gateway", external_id=external_id
            )
        self._entries[key] = _Entry(run, now)
        while len(self) > self._max_runs:
            _, old = (self._dormant or self._entries).popitem(last=False)
            self._retire(old.run)
        return run

    def _child(
        self,
        run: Run,
        key: tuple[str, ...],
        headers: Mapping[str, str],
        request: Mapping[str, Any] | None,
        now: float,
        *,
        session: bool,
    ) -> Run:
        sub = headers.get(SUBAGENT_HEADER)
        if sub:
            return self._get((*key, "sub", sub), now, name=sub, external_id=None, parent=run)
        if not session or request is None:
            return run
        entry = self._entries.get(key) or self._dormant[key]
        system = _system_key(request)
        if entry.system is None:
            entry.system = system
            return run
        if system == entry.system:
            return run
        name = "subagent" if request.get("tools") else "side-request"
        return self._get((*key, "sys", system.hex()), now, name=name, external_id=None, parent=run)

    def _continuity(self, request: Mapping[str, Any], scope: str, now: float) -> Run:
        hashes = _message_chain(request)
        found: tuple[str, ...] | None = None
        # Longest earlier request this one extends (never the whole request: a resend of the
        # same request is a new conversation that happens to start the same way).
        for h in reversed(hashes[1:-1]):
            k = self._prefixes.get(h)
            if k is not None and k[1] == scope and (k in self._entries or k in self._dormant):
                found = k
                break
        if found is None:
            found = ("chain", scope, hashes[-1].hex())
        run = self._get(found, now, name="conversation", external_id=None)
        self._prefixes[hashes[-1]] = found
        self._prefixes.move_to_end(hashes[-1])
        while len(self._prefixes) > self._max_prefixes:
            self._prefixes.popitem(last=False)
        return run

    def _sweep(self, now: float) -> None:
        # Both queues are in LRU order: look only at the oldest few per request.
        for _ in range(4):
            if not self._entries:
                break
            key, entry = next(iter(self._entries.items()))
            if now - entry.last_s < self._hibernate_s:
                break
            del self._entries[key]
            _hibernate(entry.run)
            self._dormant[key] = entry
        for _ in range(4):
            if not self._dormant:
                return
            key, entry = next(iter(self._dormant.items()))
            if now - entry.last_s < self._idle_s:
                return
            del self._dormant[key]
            self._retire(entry.run)

    def _retire(self, run: Run) -> None:
        self._pipeline.end_run(run)
        self._pipeline.forget_run(run.run_id)

    def close(self) -> None:
        """End every run still open (gateway shutdown)."""
        for queue in (self._dormant, self._entries):
            while queue:
                _, entry = queue.popitem(last=False)
                self._retire(entry.run)
        self._prefixes.clear()


def _hibernate(run: Run) -> None:
    """Drop what a run remembers to plan and diagnose its next call; keep its totals."""
    state = run.state
    if hasattr(state, "previous"):
        state.previous = None
    for name in ("estimates", "block_hashes"):
        memo = getattr(state, name, None)
        if isinstance(memo, dict):
            memo.clear()
