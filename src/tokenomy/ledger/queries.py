"""Reading the ledger back: per-run summaries with sub-agent roll-up, per-call rows.

Sums run in SQL over integer pico-dollars, so they are exact on every backend and fast on big
ledgers. The rare call whose money is finer than a pico-dollar (``money_exact``) is corrected
in Python afterwards, so every total here is the exact ``Decimal`` sum of the calls.

A run's ``cost_usd`` is what its own calls cost; ``subagent_usd`` is what every run below it
(children, their children, …) cost; ``total_usd`` is both.

What the usage analysis reads (per run × model × day sums, the run tree, events, the calls of
many runs) is in :mod:`tokenomy.ledger.usage_queries`; its names are importable from here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Select, and_, bindparam, func, literal_column, select

from tokenomy.core.records import CallRecord
from tokenomy.core.usage import TokenTotals

from ._sql import SUMS, call_sums, chunks, has_exact, in_window, sum0
from .codec import from_pusd, row_to_call
from .schema import calls, runs
from .store import Ledger
from .usage_queries import (
    CallAggregate,
    RunNode,
    call_aggregates,
    calls_of_runs,
    run_events,
    run_nodes,
)

__all__ = [
    "CallAggregate",
    "RunNode",
    "RunSummary",
    "call_aggregates",
    "calls_of_runs",
    "get_run",
    "list_runs",
    "run_calls",
    "run_events",
    "run_nodes",
]


@dataclass(frozen=True, slots=True)
class RunSummary(TokenTotals):
    """One run with its calls summed. Tokens are ints, money exact ``Decimal`` USD."""

    run_id: str
    name: str
    source: str
    started_at: datetime
    ended_at: datetime | None = None
    parent_run_id: str | None = None
    external_id: str | None = None
    project: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    # True when the run itself was never recorded, only calls that name it.
    placeholder: bool = False
    calls: int = 0
    error_calls: int = 0
    # Calls with usage but no price (an unknown model): not in cost_usd, never counted as $0.
    unpriced_calls: int = 0
    input_tokens: int = 0  # uncached input
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    subagent_runs: int = 0
    subagent_usd: Decimal = Decimal(0)
    # The ideal cost stored with the run, when known: the run tree's on a root the pipeline
    # metered (its sub-agents then have none), the run's own on an imported transcript.
    ideal_usd: Decimal | None = None

    # cache_write_tokens, total_input_tokens, cache_hit_rate: TokenTotals.

    @property
    def total_usd(self) -> Decimal:
        """This run's calls and every sub-agent run below it."""
        return self.cost_usd + self.subagent_usd

    @property
    def cache_efficiency(self) -> Decimal | None:
        """``ideal / actual`` where the ideal cost is known (1.0 is perfect). An imported
        transcript stores each run's own ideal (against its own calls), a pipeline root the
        tree's (against :attr:`total_usd`)."""
        if self.ideal_usd is None:
            return None
        actual = self.cost_usd if self.source == "claude-code" else self.total_usd
        return self.ideal_usd / actual if actual > 0 else None


def _per_run() -> Any:
    """Per-run sums over ``calls`` (a subquery keyed by run_id)."""
    c = calls.c
    return select(c.run_id.label("run_id"), *call_sums()).group_by(c.run_id).subquery("per_run")


def list_runs(
    ledger: Ledger,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    name: str | None = None,
    source: str | None = None,
    top_level: bool = False,
    limit: int | None = None,
    project: str | None = None,
) -> tuple[RunSummary, ...]:
    """Runs started in ``[since, until)``, newest first, with their calls and sub-agents summed.

    ``name`` matches a case-insensitive substring; ``top_level`` leaves out sub-agent runs
    (their cost is still rolled up into their parents). ``project`` keeps the runs whose
    project contains it, case-insensitively (before ``limit``: the N newest matching runs).
    """
    per_run = _per_run()
    stmt = in_window(_summary_select(per_run), runs.c.started_at, since, until)
    if name:
        stmt = stmt.where(runs.c.name.icontains(name, autoescape=True))
    if source:
        stmt = stmt.where(runs.c.source == source)
    if top_level:
        stmt = stmt.where(runs.c.parent_run_id.is_(None))
    if project:
        stmt = stmt.where(runs.c.project.icontains(project, autoescape=True))
    stmt = stmt.order_by(runs.c.started_at.desc(), runs.c.run_id)
    if limit is not None:
        stmt = stmt.limit(limit)
    with ledger.read() as conn:
        rows = conn.execute(stmt).mappings().all()
        return _summaries(conn, rows)


def get_run(ledger: Ledger, run_id: str) -> RunSummary | None:
    """One run's summary, or None if the ledger has no such run."""
    per_run = _per_run()
    stmt = _summary_select(per_run).where(runs.c.run_id == run_id)
    with ledger.read() as conn:
        rows = conn.execute(stmt).mappings().all()
        found = _summaries(conn, rows)
    return found[0] if found else None


def run_calls(ledger: Ledger, run_id: str) -> tuple[CallRecord, ...]:
    """Every call of one run, in order (``seq``, then start time)."""
    stmt = (
        select(calls)
        .where(calls.c.run_id == run_id)
        .order_by(calls.c.seq, calls.c.started_at, calls.c.call_id)
    )
    with ledger.read() as conn:
        return tuple(row_to_call(r) for r in conn.execute(stmt).mappings())


# ---------------------------------------------------------------------- internals


def _summary_select(per_run: Any) -> Select[Any]:
    p = per_run.c
    zero: Any = literal_column("0")
    return select(runs, *(func.coalesce(p[name], zero).label(name) for name in SUMS)).select_from(
        runs.outerjoin(per_run, p.run_id == runs.c.run_id)
    )


def _summaries(conn: Connection, rows: Sequence[Mapping[Any, Any]]) -> tuple[RunSummary, ...]:
    ids = [r["run_id"] for r in rows]
    rollup = _rollup(conn, ids)
    inexact = {r["run_id"] for r in rows if r["inexact_calls"]}
    inexact |= {root for root, (_, _, n) in rollup.items() if n}
    corrections = _exact_corrections(conn, inexact) if inexact else {}
    out = []
    for r in rows:
        rid = r["run_id"]
        sub_runs, sub_pusd, _ = rollup.get(rid, (0, 0, 0))
        own_fix, sub_fix = corrections.get(rid, (Decimal(0), Decimal(0)))
        out.append(
            RunSummary(
                run_id=rid,
                name=r["name"],
                source=r["source"],
                started_at=r["started_at"],
                ended_at=r["ended_at"],
                parent_run_id=r["parent_run_id"],
                external_id=r["external_id"],
                project=r["project"],
                tags=dict(r["tags"] or {}),
                placeholder=bool(r["placeholder"]),
                calls=int(r["calls"]),
                error_calls=int(r["error_calls"]),
                unpriced_calls=int(r["unpriced_calls"]),
                input_tokens=int(r["input_tokens"]),
                cache_write_5m_tokens=int(r["cache_write_5m_tokens"]),
                cache_write_1h_tokens=int(r["cache_write_1h_tokens"]),
                cache_read_tokens=int(r["cache_read_tokens"]),
                output_tokens=int(r["output_tokens"]),
                cost_usd=from_pusd(int(r["cost_pusd"])) + own_fix,
                subagent_runs=sub_runs,
                subagent_usd=from_pusd(sub_pusd) + sub_fix,
                ideal_usd=None if r["ideal_usd"] is None else Decimal(r["ideal_usd"]),
            )
        )
    return tuple(out)


def _tree(ids: Iterable[str]) -> Any:
    """(root_id, run_id) for every run below each root, recursively; cycles stop (UNION)."""
    anchor = select(runs.c.run_id.label("root_id"), runs.c.run_id.label("run_id")).where(
        runs.c.run_id.in_(bindparam("ids", expanding=True))
    )
    tree = anchor.cte("tree", recursive=True)
    child = select(tree.c.root_id, runs.c.run_id).where(runs.c.parent_run_id == tree.c.run_id)
    return tree.union(child)


def _rollup(conn: Connection, ids: Sequence[str]) -> dict[str, tuple[int, int, int]]:
    """root -> (sub-agent runs, their cost in pUSD, their calls with money_exact)."""
    if not ids:
        return {}
    tree = _tree(ids)
    per_run = _per_run()
    stmt = (
        select(
            tree.c.root_id,
            func.count().label("runs"),
            sum0(per_run.c.cost_pusd).label("cost_pusd"),
            sum0(per_run.c.inexact_calls).label("inexact"),
        )
        .select_from(tree.outerjoin(per_run, per_run.c.run_id == tree.c.run_id))
        .where(tree.c.run_id != tree.c.root_id)
        .group_by(tree.c.root_id)
    )
    out: dict[str, tuple[int, int, int]] = {}
    for chunk in chunks(ids):
        for r in conn.execute(stmt, {"ids": chunk}).mappings():
            out[r["root_id"]] = (int(r["runs"]), int(r["cost_pusd"]), int(r["inexact"]))
    return out


def _exact_corrections(conn: Connection, roots: set[str]) -> dict[str, tuple[Decimal, Decimal]]:
    """root -> (own, sub-agent) corrections: exact amount minus the stored whole pico-dollars."""
    tree = _tree(roots)
    stmt = (
        select(tree.c.root_id, tree.c.run_id, calls.c.cost_total_pusd, calls.c.money_exact)
        .select_from(tree.join(calls, calls.c.run_id == tree.c.run_id))
        .where(and_(has_exact(), calls.c.cost_total_pusd.is_not(None)))
    )
    out: dict[str, tuple[Decimal, Decimal]] = {}
    for chunk in chunks(sorted(roots)):
        for r in conn.execute(stmt, {"ids": chunk}).mappings():
            exact = (r["money_exact"] or {}).get("cost_total_pusd")
            if exact is None:
                continue
            fix = Decimal(exact) - from_pusd(int(r["cost_total_pusd"]))
            own, sub = out.get(r["root_id"], (Decimal(0), Decimal(0)))
            if r["run_id"] == r["root_id"]:
                own += fix
            else:
                sub += fix
            out[r["root_id"]] = (own, sub)
    return out
