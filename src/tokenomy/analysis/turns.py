"""One run turn by turn, and the TTL what-if over sessions, from the ledger.

A *turn* here is one API call of the run. For each: tokens and dollars by segment, cache hit
rate, write amplification, 5m and 1h write cost, the time since the previous call, whether a
compaction happened just before it, and what sub-agents started during it spent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tokenomy.analysis.reports import children_of, roots_of, tree_ideal
from tokenomy.analysis.whatif import Method, Ttl, WhatIfRun, what_if_run
from tokenomy.core.pricing import CostBreakdown
from tokenomy.core.records import CallRecord
from tokenomy.data.table import ModelTable
from tokenomy.errors import InputError
from tokenomy.ledger import Ledger, RunEvent
from tokenomy.ledger.queries import RunSummary, get_run
from tokenomy.ledger.usage_queries import (
    RunNode,
    call_aggregates,
    calls_of_runs,
    run_events,
    run_nodes,
)

__all__ = [
    "COMPACTION_KINDS",
    "RunDetail",
    "Turn",
    "WhatIfReport",
    "WhatIfSession",
    "run_detail",
    "what_if_report",
]

ZERO = Decimal(0)
COMPACTION_KINDS = frozenset({"compaction", "microcompaction", "compact_summary"})


@dataclass(frozen=True, slots=True)
class Turn:
    """One call of a run, with what the per-turn report shows about it."""

    call: CallRecord
    gap_s: float | None  # since the previous call's start
    compaction_before: bool
    subagent_usd: Decimal  # sub-agent runs that started during this turn

    @property
    def cost_usd(self) -> Decimal | None:
        return self.call.cost.total_usd if isinstance(self.call.cost, CostBreakdown) else None

    @property
    def write_amplification(self) -> float | None:
        u = self.call.usage
        return None if u is None else u.write_amplification


@dataclass(frozen=True, slots=True)
class RunDetail:
    """A run, its turns, its compaction points and its sub-agents."""

    summary: RunSummary
    turns: tuple[Turn, ...]
    compactions: tuple[RunEvent, ...]
    subagents: tuple[RunSummary, ...]
    ideal_usd: Decimal | None

    @property
    def cache_efficiency(self) -> Decimal | None:
        total = self.summary.total_usd
        return None if self.ideal_usd is None or total <= 0 else self.ideal_usd / total


def run_detail(ledger: Ledger, run_id: str) -> RunDetail:
    """``run_id`` turn by turn. Raises InputError for an unknown run."""
    summary = get_run(ledger, run_id)
    if summary is None:
        raise InputError(
            f"no run {run_id!r} in the ledger at {ledger.display}; "
            "'tokenomy report --all' lists the runs"
        )
    nodes = run_nodes(ledger)
    children = children_of(nodes)
    kids = sorted(children.get(run_id, ()), key=lambda k: (nodes[k].started_at, k))
    subs = tuple(s for k in kids if (s := get_run(ledger, k)) is not None)
    calls = calls_of_runs(ledger, [run_id])
    events = tuple(e for e in run_events(ledger, [run_id]) if e.kind in COMPACTION_KINDS)
    turns: list[Turn] = []
    for i, c in enumerate(calls):
        prev = calls[i - 1] if i else None
        nxt = calls[i + 1].started_at if i + 1 < len(calls) else None
        gap = (c.started_at - prev.started_at).total_seconds() if prev else None
        compacted = any(
            (prev is None or prev.started_at <= e.at) and e.at <= c.started_at for e in events
        )
        sub = sum(
            (
                s.total_usd
                for s in subs
                if s.started_at >= c.started_at and (nxt is None or s.started_at < nxt)
            ),
            ZERO,
        )
        turns.append(Turn(c, gap, compacted, sub))
    # Sub-agents that started before the first call count with it.
    if turns and subs:
        early = sum((s.total_usd for s in subs if s.started_at < turns[0].call.started_at), ZERO)
        if early:
            t0 = turns[0]
            turns[0] = Turn(t0.call, t0.gap_s, t0.compaction_before, t0.subagent_usd + early)
    ideal = tree_ideal(run_id, nodes, children)
    return RunDetail(summary, tuple(turns), events, subs, ideal)


# ---------------------------------------------------------------------- what-if


@dataclass(frozen=True, slots=True)
class WhatIfSession:
    """A session (a top-level run and its sub-agents) re-priced."""

    run_id: str
    name: str
    started_at: datetime | None
    calls: int
    method: Method
    actual_usd: Decimal
    what_if_usd: Decimal
    unpriced_calls: int

    @property
    def delta_usd(self) -> Decimal:
        return self.what_if_usd - self.actual_usd


@dataclass(frozen=True, slots=True)
class WhatIfReport:
    ttl: Ttl
    sessions: tuple[WhatIfSession, ...]

    @property
    def actual_usd(self) -> Decimal:
        return sum((s.actual_usd for s in self.sessions), ZERO)

    @property
    def what_if_usd(self) -> Decimal:
        return sum((s.what_if_usd for s in self.sessions), ZERO)

    @property
    def delta_usd(self) -> Decimal:
        return self.what_if_usd - self.actual_usd

    @property
    def estimated_sessions(self) -> int:
        """Sessions re-priced, at least in part, from an estimate (not rebuilt requests)."""
        return self.count("estimated") + self.count("partly exact")

    def count(self, method: Method) -> int:
        return sum(1 for s in self.sessions if s.method == method)


def what_if_report(
    ledger: Ledger,
    *,
    ttl: Ttl,
    table: ModelTable,
    since: datetime | None = None,
    until: datetime | None = None,
    project: str | None = None,
    source: str | None = None,
) -> WhatIfReport:
    """Every session with calls in ``[since, until)``, re-priced as if all writes used ``ttl``."""
    nodes = run_nodes(ledger)
    roots = roots_of(nodes)
    run_ids = sorted({a.run_id for a in call_aggregates(ledger, since=since, until=until)})
    needle = project.lower() if project else None

    def wanted(rid: str) -> bool:
        root = nodes.get(roots.get(rid, rid))
        if root is None:
            return False
        if source is not None and root.source != source:
            return False
        return needle is None or needle in (root.project or "").lower()

    run_ids = [r for r in run_ids if wanted(r)]
    calls = calls_of_runs(ledger, run_ids, since=since, until=until)
    events = run_events(ledger, run_ids)
    by_run: dict[str, list[CallRecord]] = {}
    for c in calls:
        by_run.setdefault(c.run_id, []).append(c)
    marks: dict[str, list[datetime]] = {}
    for e in events:
        if e.kind in COMPACTION_KINDS:
            marks.setdefault(e.run_id, []).append(e.at)
    per_root: dict[str, list[WhatIfRun]] = {}
    for rid, cs in by_run.items():
        run = what_if_run(rid, cs, ttl=ttl, compactions=marks.get(rid, ()), table=table)
        per_root.setdefault(roots.get(rid, rid), []).append(run)
    sessions = [_session(root, rs, nodes) for root, rs in per_root.items()]
    sessions.sort(key=lambda s: (s.started_at.timestamp() if s.started_at else 0.0, s.run_id))
    return WhatIfReport(ttl, tuple(sessions))


def _session(root: str, runs: Sequence[WhatIfRun], nodes: Mapping[str, RunNode]) -> WhatIfSession:
    node = nodes.get(root)
    methods = {r.method for r in runs}
    method: Method = methods.pop() if len(methods) == 1 else "partly exact"
    return WhatIfSession(
        run_id=root,
        name=node.name if node else "",
        started_at=node.started_at if node else None,
        calls=sum(len(r.calls) for r in runs),
        method=method,
        actual_usd=sum((r.actual_usd for r in runs), ZERO),
        what_if_usd=sum((r.what_if_usd for r in runs), ZERO),
        unpriced_calls=sum(r.unpriced for r in runs),
    )
