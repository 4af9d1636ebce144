"""Reading the ledger back: per-run summaries with sub-agent roll-up, per-call rows.

Sums run in SQL over integer pico-dollars, so they are exact on every backend and fast on big
ledgers. The rare call whose money is finer than a pico-dollar (``money_exact``) is corrected
in Python afterwards, so every total here is the exact ``Decimal`` sum of the calls.

A run's ``cost_usd`` is what its own calls cost; ``subagent_usd`` is what every run below it
(children, their children, …) cost; ``total_usd`` is both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    select,
)

from tokenomy.core.records import CallRecord
from tokenomy.core.usage import TokenTotals

from .codec import RunEvent, from_pusd, row_to_call
from .schema import calls, events, runs
from .store import Ledger

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

_CHUNK = 500  # ids per IN (…) list: far below every backend's bind-parameter limit


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


def _has_exact() -> Any:
    """The call has exact money strings: ``money_exact`` is neither SQL NULL nor JSON null.

    SQLAlchemy's JSON type stores Python None as the JSON text ``null`` (not SQL NULL), so
    ``IS NOT NULL`` alone is true for every call.
    """
    col = calls.c.money_exact
    return and_(col.is_not(None), cast(col, Text) != "null")


def _sum0(col: Any) -> Any:
    """``SUM(col)``, 0 rather than NULL over no rows."""
    return func.coalesce(func.sum(col), 0)


def _count_if(cond: Any) -> Any:
    return _sum0(case((cond, 1), else_=0))


# What every grouping of calls sums (labels of _call_sums, in order).
_SUMS = (
    "calls",
    "error_calls",
    "unpriced_calls",
    "inexact_calls",
    "input_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "cache_read_tokens",
    "output_tokens",
    "cost_pusd",
)


def _call_sums() -> list[Any]:
    """The :data:`_SUMS` columns over ``calls`` in a GROUP BY: counts, tokens, cost."""
    c = calls.c
    return [
        func.count().label("calls"),
        _count_if(c.status != "ok").label("error_calls"),
        _count_if(c.unpriced_reason.is_not(None)).label("unpriced_calls"),
        _count_if(_has_exact()).label("inexact_calls"),
        _sum0(c.input_tokens).label("input_tokens"),
        _sum0(c.cache_write_5m_tokens).label("cache_write_5m_tokens"),
        _sum0(c.cache_write_1h_tokens).label("cache_write_1h_tokens"),
        _sum0(c.cache_read_tokens).label("cache_read_tokens"),
        _sum0(c.output_tokens).label("output_tokens"),
        _sum0(c.cost_total_pusd).label("cost_pusd"),
    ]


def _in_window(stmt: Select[Any], col: Any, since: datetime | None, until: datetime | None) -> Any:
    """``stmt`` limited to ``since <= col < until`` (either bound may be None)."""
    if since is not None:
        stmt = stmt.where(col >= since)
    if until is not None:
        stmt = stmt.where(col < until)
    return stmt


def _per_run() -> Any:
    """Per-run sums over ``calls`` (a subquery keyed by run_id)."""
    c = calls.c
    return select(c.run_id.label("run_id"), *_call_sums()).group_by(c.run_id).subquery("per_run")


def list_runs(
    ledger: Ledger,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    name: str | None = None,
    source: str | None = None,
    top_level: bool = False,
    limit: int | None = None,
) -> tuple[RunSummary, ...]:
    """Runs started in ``[since, until)``, newest first, with their calls and sub-agents summed.

    ``name`` matches a case-insensitive substring; ``top_level`` leaves out sub-agent runs
    (their cost is still rolled up into their parents).
    """
    per_run = _per_run()
    stmt = _in_window(_summary_select(per_run), runs.c.started_at, since, until)
    if name:
        stmt = stmt.where(runs.c.name.icontains(name, autoescape=True))
    if source:
        stmt = stmt.where(runs.c.source == source)
    if top_level:
        stmt = stmt.where(runs.c.parent_run_id.is_(None))
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
    return select(runs, *(func.coalesce(p[name], zero).label(name) for name in _SUMS)).select_from(
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
            _sum0(per_run.c.cost_pusd).label("cost_pusd"),
            _sum0(per_run.c.inexact_calls).label("inexact"),
        )
        .select_from(tree.outerjoin(per_run, per_run.c.run_id == tree.c.run_id))
        .where(tree.c.run_id != tree.c.root_id)
        .group_by(tree.c.root_id)
    )
    out: dict[str, tuple[int, int, int]] = {}
    for chunk in _chunks(ids):
        for r in conn.execute(stmt, {"ids": chunk}).mappings():
            out[r["root_id"]] = (int(r["runs"]), int(r["cost_pusd"]), int(r["inexact"]))
    return out


def _exact_corrections(conn: Connection, roots: set[str]) -> dict[str, tuple[Decimal, Decimal]]:
    """root -> (own, sub-agent) corrections: exact amount minus the stored whole pico-dollars."""
    tree = _tree(roots)
    stmt = (
        select(tree.c.root_id, tree.c.run_id, calls.c.cost_total_pusd, calls.c.money_exact)
        .select_from(tree.join(calls, calls.c.run_id == tree.c.run_id))
        .where(and_(_has_exact(), calls.c.cost_total_pusd.is_not(None)))
    )
    out: dict[str, tuple[Decimal, Decimal]] = {}
    for chunk in _chunks(sorted(roots)):
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


def _chunks(ids: Sequence[str]) -> Iterable[list[str]]:
    for i in range(0, len(ids), _CHUNK):
        yield list(ids[i : i + _CHUNK])


def _chunks_or_all(ids: Sequence[str] | None) -> Iterable[list[str] | None]:
    """Chunks of ``ids``; one None (no filter: every run) when ``ids`` is None."""
    return _chunks(list(ids)) if ids is not None else [None]


# ---------------------------------------------------------------------- usage analysis


@dataclass(frozen=True, slots=True)
class CallAggregate:
    """Calls of one run, one model and one UTC day, summed. Money exact ``Decimal`` USD.

    The finest grain the usage reports need (``tokenomy.analysis.reports`` groups these by
    day, week, month, session, run, model or project). Segment sums cover the calls that have
    segments; ``segmented_calls`` says how many.
    """

    run_id: str
    model: str
    day: str  # YYYY-MM-DD, UTC
    calls: int
    error_calls: int
    unpriced_calls: int
    segmented_calls: int
    input_tokens: int
    cache_write_5m_tokens: int
    cache_write_1h_tokens: int
    cache_read_tokens: int
    output_tokens: int
    cost_usd: Decimal
    write_5m_usd: Decimal
    write_1h_usd: Decimal
    read_usd: Decimal
    prefix_tokens: int
    history_tokens: int
    new_tokens: int
    prefix_usd: Decimal
    history_usd: Decimal
    new_usd: Decimal
    output_usd: Decimal
    first_at: datetime
    last_at: datetime


@dataclass(frozen=True, slots=True)
class RunNode:
    """A run's place in the tree, for grouping: its parent, project and stored ideal."""

    run_id: str
    parent_run_id: str | None
    name: str
    source: str
    project: str | None
    started_at: datetime
    ended_at: datetime | None
    ideal_usd: Decimal | None


def _day(dialect: str) -> Any:
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", calls.c.started_at), "YYYY-MM-DD")
    # SQLite keeps UTC wall time as ISO text: its first ten characters are the date.
    return func.substr(calls.c.started_at, 1, 10)


def call_aggregates(
    ledger: Ledger,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    run_ids: Sequence[str] | None = None,
) -> tuple[CallAggregate, ...]:
    """Calls started in ``[since, until)`` summed per (run, model, UTC day), in SQL."""
    c = calls.c
    day = _day(ledger.backend).label("day")
    model = func.coalesce(c.model_used, c.model_requested).label("model")
    segmented = c.seg_tools_tokens.is_not(None)

    def seg(col: Any) -> Any:
        return _sum0(case((segmented, col), else_=0))

    stmt = select(
        c.run_id,
        model,
        day,
        *_call_sums(),
        _count_if(segmented).label("segmented_calls"),
        _sum0(c.cost_cache_write_5m_pusd).label("w5_pusd"),
        _sum0(c.cost_cache_write_1h_pusd).label("w1_pusd"),
        _sum0(c.cost_cache_read_pusd).label("read_pusd"),
        seg(c.seg_tools_tokens + c.seg_system_tokens).label("prefix_tokens"),
        seg(c.seg_history_tokens).label("history_tokens"),
        seg(c.seg_new_tokens).label("new_tokens"),
        _sum0(c.seg_tools_pusd + c.seg_system_pusd).label("prefix_pusd"),
        _sum0(c.seg_history_pusd).label("history_pusd"),
        _sum0(c.seg_new_pusd).label("new_pusd"),
        _sum0(c.seg_output_pusd).label("output_pusd"),
        func.min(c.started_at).label("first_at"),
        func.max(c.started_at).label("last_at"),
    ).group_by(c.run_id, model, day)
    stmt = _in_window(stmt, c.started_at, since, until)
    out: list[CallAggregate] = []
    with ledger.read() as conn:
        for chunk in _chunks_or_all(run_ids):
            q = stmt if chunk is None else stmt.where(c.run_id.in_(chunk))
            rows = conn.execute(q).mappings().all()
            inexact = [r for r in rows if r["inexact_calls"]]
            fixes = _inexact_fixes(conn, inexact, since=since, until=until) if inexact else {}
            for r in rows:
                fix = fixes.get((r["run_id"], r["model"], r["day"]), {})
                usd = _Money(r, fix)
                first_at, last_at = r["first_at"], r["last_at"]
                out.append(
                    CallAggregate(
                        run_id=r["run_id"],
                        model=r["model"],
                        day=str(r["day"]),
                        calls=int(r["calls"]),
                        error_calls=int(r["error_calls"]),
                        unpriced_calls=int(r["unpriced_calls"]),
                        segmented_calls=int(r["segmented_calls"]),
                        input_tokens=int(r["input_tokens"]),
                        cache_write_5m_tokens=int(r["cache_write_5m_tokens"]),
                        cache_write_1h_tokens=int(r["cache_write_1h_tokens"]),
                        cache_read_tokens=int(r["cache_read_tokens"]),
                        output_tokens=int(r["output_tokens"]),
                        cost_usd=usd("cost_pusd", "cost_total_pusd"),
                        write_5m_usd=usd("w5_pusd", "cost_cache_write_5m_pusd"),
                        write_1h_usd=usd("w1_pusd", "cost_cache_write_1h_pusd"),
                        read_usd=usd("read_pusd", "cost_cache_read_pusd"),
                        prefix_tokens=int(r["prefix_tokens"]),
                        history_tokens=int(r["history_tokens"]),
                        new_tokens=int(r["new_tokens"]),
                        prefix_usd=usd("prefix_pusd", "seg_prefix"),
                        history_usd=usd("history_pusd", "seg_history_pusd"),
                        new_usd=usd("new_pusd", "seg_new_pusd"),
                        output_usd=usd("output_pusd", "seg_output_pusd"),
                        first_at=_aware(first_at),
                        last_at=_aware(last_at),
                    )
                )
    return tuple(out)


class _Money:
    """Summed pico-dollars of a row as exact USD, corrected by the group's exact remainders."""

    def __init__(self, row: Mapping[Any, Any], fix: Mapping[str, Decimal]) -> None:
        self.row, self.fix = row, fix

    def __call__(self, col: str, key: str) -> Decimal:
        return from_pusd(int(self.row[col])) + self.fix.get(key, Decimal(0))


def _aware(value: Any) -> datetime:
    """A MIN/MAX over a timestamp column comes back as text on SQLite: parse it, as UTC."""
    from datetime import UTC

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_FIX_COLUMNS = (
    "cost_total_pusd",
    "cost_cache_write_5m_pusd",
    "cost_cache_write_1h_pusd",
    "cost_cache_read_pusd",
    "seg_history_pusd",
    "seg_new_pusd",
    "seg_output_pusd",
)


def _inexact_fixes(
    conn: Connection,
    rows: Sequence[Mapping[Any, Any]],
    *,
    since: datetime | None,
    until: datetime | None,
) -> dict[tuple[str, str, str], dict[str, Decimal]]:
    """Per group: exact money minus the stored whole pico-dollars (rare; see the codec)."""
    c = calls.c
    ids = sorted({r["run_id"] for r in rows})
    stmt = _in_window(select(calls).where(_has_exact()), c.started_at, since, until)
    out: dict[tuple[str, str, str], dict[str, Decimal]] = {}
    for chunk in _chunks(ids):
        for r in conn.execute(stmt.where(c.run_id.in_(chunk))).mappings():
            model = r["model_used"] or r["model_requested"]
            key = (r["run_id"], model, r["started_at"].strftime("%Y-%m-%d"))
            fix = out.setdefault(key, {})
            exact = r["money_exact"] or {}
            for col in (*_FIX_COLUMNS, "seg_tools_pusd", "seg_system_pusd"):
                if col in exact and r[col] is not None:
                    d = Decimal(exact[col]) - from_pusd(int(r[col]))
                    name = "seg_prefix" if col in ("seg_tools_pusd", "seg_system_pusd") else col
                    fix[name] = fix.get(name, Decimal(0)) + d
    return out


def run_nodes(ledger: Ledger, *, run_ids: Sequence[str] | None = None) -> dict[str, RunNode]:
    """Every run (or the given ones) with its parent, project and stored ideal cost."""
    r = runs.c
    stmt = select(
        r.run_id,
        r.parent_run_id,
        r.name,
        r.source,
        r.project,
        r.started_at,
        r.ended_at,
        r.ideal_usd,
    )
    out: dict[str, RunNode] = {}
    with ledger.read() as conn:
        for chunk in _chunks_or_all(run_ids):
            q = stmt if chunk is None else stmt.where(r.run_id.in_(chunk))
            for row in conn.execute(q).mappings():
                out[row["run_id"]] = RunNode(
                    run_id=row["run_id"],
                    parent_run_id=row["parent_run_id"],
                    name=row["name"],
                    source=row["source"],
                    project=row["project"],
                    started_at=row["started_at"],
                    ended_at=row["ended_at"],
                    ideal_usd=None if row["ideal_usd"] is None else Decimal(row["ideal_usd"]),
                )
    return out


def run_events(ledger: Ledger, run_ids: Sequence[str]) -> tuple[RunEvent, ...]:
    """Events (compactions, …) of these runs, oldest first."""
    e = events.c
    out: list[RunEvent] = []
    with ledger.read() as conn:
        for chunk in _chunks(list(run_ids)):
            stmt = select(events).where(e.run_id.in_(chunk)).order_by(e.at, e.event_id)
            for row in conn.execute(stmt).mappings():
                out.append(
                    RunEvent(run_id=row["run_id"], at=row["at"], kind=row["kind"], data=row["data"])
                )
    out.sort(key=lambda ev: ev.at)
    return tuple(out)


def calls_of_runs(
    ledger: Ledger,
    run_ids: Sequence[str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[CallRecord, ...]:
    """Every call of these runs, ordered by run, then ``seq`` and start time."""
    c = calls.c
    out: list[CallRecord] = []
    with ledger.read() as conn:
        for chunk in _chunks(list(run_ids)):
            stmt = _in_window(select(calls).where(c.run_id.in_(chunk)), c.started_at, since, until)
            stmt = stmt.order_by(c.run_id, c.seq, c.started_at, c.call_id)
            out.extend(row_to_call(r) for r in conn.execute(stmt).mappings())
    return tuple(out)
