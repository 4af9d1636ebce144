"""What the usage analysis reads from the ledger: calls summed per (run, model, UTC day), the
run tree, run events, and the calls of many runs.

The sums run in SQL over integer pico-dollars, as in :mod:`tokenomy.ledger.queries`; the rare
call whose money is finer than a pico-dollar (``money_exact``) is corrected in Python, so every
amount is the exact ``Decimal`` sum. :mod:`tokenomy.analysis.reports` and
:mod:`tokenomy.analysis.turns` group and present these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, case, func, select

from tokenomy.core.records import CallRecord

from ._sql import call_sums, chunks, chunks_or_all, count_if, has_exact, in_window, sum0
from .codec import RunEvent, from_pusd, row_to_call
from .schema import calls, events, runs
from .store import Ledger

__all__ = [
    "CallAggregate",
    "RunNode",
    "call_aggregates",
    "calls_of_runs",
    "run_events",
    "run_nodes",
]


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
        return sum0(case((segmented, col), else_=0))

    stmt = select(
        c.run_id,
        model,
        day,
        *call_sums(),
        count_if(segmented).label("segmented_calls"),
        sum0(c.cost_cache_write_5m_pusd).label("w5_pusd"),
        sum0(c.cost_cache_write_1h_pusd).label("w1_pusd"),
        sum0(c.cost_cache_read_pusd).label("read_pusd"),
        seg(c.seg_tools_tokens + c.seg_system_tokens).label("prefix_tokens"),
        seg(c.seg_history_tokens).label("history_tokens"),
        seg(c.seg_new_tokens).label("new_tokens"),
        sum0(c.seg_tools_pusd + c.seg_system_pusd).label("prefix_pusd"),
        sum0(c.seg_history_pusd).label("history_pusd"),
        sum0(c.seg_new_pusd).label("new_pusd"),
        sum0(c.seg_output_pusd).label("output_pusd"),
        func.min(c.started_at).label("first_at"),
        func.max(c.started_at).label("last_at"),
    ).group_by(c.run_id, model, day)
    stmt = in_window(stmt, c.started_at, since, until)
    out: list[CallAggregate] = []
    with ledger.read() as conn:
        for chunk in chunks_or_all(run_ids):
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
    stmt = in_window(select(calls).where(has_exact()), c.started_at, since, until)
    out: dict[tuple[str, str, str], dict[str, Decimal]] = {}
    for chunk in chunks(ids):
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
        for chunk in chunks_or_all(run_ids):
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
        for chunk in chunks(list(run_ids)):
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
        for chunk in chunks(list(run_ids)):
            stmt = in_window(select(calls).where(c.run_id.in_(chunk)), c.started_at, since, until)
            stmt = stmt.order_by(c.run_id, c.seq, c.started_at, c.call_id)
            out.extend(row_to_call(r) for r in conn.execute(stmt).mappings())
    return tuple(out)
