"""Usage reports from the ledger: by day, week, month, session, run, model or project; per turn.

Every number is a sum over calls (exact ``Decimal`` dollars, integer tokens), grouped from the
per-(run, model, day) sums :func:`tokenomy.ledger.usage_queries.call_aggregates` makes in SQL.

Segments (``docs/design/analysis.md``): ``prefix`` (tools + system), ``transcript`` (earlier
turns), ``new`` (the latest turn), ``output``, and ``sub-agent`` — everything a sub-agent run
spent, context it duplicated included. A call in a sub-agent run counts as ``sub-agent`` in
every grouping except ``--by run``, where each run shows its own segments and its children's
total as ``sub-agent``. Ratios: cache hit rate = reads / total input; write amplification =
tokens written to cache / tokens read from it (1 write read 10 times: 0.1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Literal

from tokenomy.core.usage import TokenTotals
from tokenomy.ledger import Ledger
from tokenomy.ledger.usage_queries import CallAggregate, RunNode, call_aggregates, run_nodes

__all__ = [
    "GROUPS",
    "GroupBy",
    "UsageReport",
    "UsageRow",
    "children_of",
    "roots_of",
    "tree_ideal",
    "usage_report",
]

GroupBy = Literal["day", "week", "month", "session", "run", "model", "project"]
GROUPS: tuple[GroupBy, ...] = ("day", "week", "month", "session", "run", "model", "project")
ZERO = Decimal(0)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class UsageRow(TokenTotals):
    """One group of calls, summed."""

    key: str
    label: str = ""
    calls: int = 0
    error_calls: int = 0
    unpriced_calls: int = 0
    input_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = ZERO
    write_5m_usd: Decimal = ZERO
    write_1h_usd: Decimal = ZERO
    read_usd: Decimal = ZERO
    prefix_tokens: int = 0
    transcript_tokens: int = 0
    new_tokens: int = 0
    prefix_usd: Decimal = ZERO
    transcript_usd: Decimal = ZERO
    new_usd: Decimal = ZERO
    output_usd: Decimal = ZERO
    subagent_usd: Decimal = ZERO
    # Cost of calls without segment estimates (e.g. recorded before segments existed).
    unsegmented_usd: Decimal = ZERO
    ideal_usd: Decimal | None = None
    # False for ``--by run``: cost_usd is the run's own calls, subagent_usd its children's.
    subagent_in_cost: bool = True
    first_at: datetime | None = None
    last_at: datetime | None = None
    models: set[str] = field(default_factory=set)

    # cache_write_tokens, total_input_tokens, cache_hit_rate, write_amplification: TokenTotals.

    @property
    def total_usd(self) -> Decimal:
        """Everything the group spent, sub-agents included."""
        return self.cost_usd if self.subagent_in_cost else self.cost_usd + self.subagent_usd

    @property
    def cache_efficiency(self) -> Decimal | None:
        """``ideal / actual`` where the ideal cost is known (1.0 is perfect)."""
        if self.ideal_usd is None or self.cost_usd <= 0:
            return None
        return self.ideal_usd / self.cost_usd

    def add(self, a: CallAggregate, *, subagent: bool) -> None:
        self.calls += a.calls
        self.error_calls += a.error_calls
        self.unpriced_calls += a.unpriced_calls
        self.input_tokens += a.input_tokens
        self.cache_write_5m_tokens += a.cache_write_5m_tokens
        self.cache_write_1h_tokens += a.cache_write_1h_tokens
        self.cache_read_tokens += a.cache_read_tokens
        self.output_tokens += a.output_tokens
        self.cost_usd += a.cost_usd
        self.write_5m_usd += a.write_5m_usd
        self.write_1h_usd += a.write_1h_usd
        self.read_usd += a.read_usd
        self.models.add(a.model)
        self.first_at = a.first_at if self.first_at is None else min(self.first_at, a.first_at)
        self.last_at = a.last_at if self.last_at is None else max(self.last_at, a.last_at)
        if subagent:
            self.subagent_usd += a.cost_usd
            return
        seg_usd = a.prefix_usd + a.history_usd + a.new_usd + a.output_usd
        self.prefix_tokens += a.prefix_tokens
        self.transcript_tokens += a.history_tokens
        self.new_tokens += a.new_tokens
        self.prefix_usd += a.prefix_usd
        self.transcript_usd += a.history_usd
        self.new_usd += a.new_usd
        self.output_usd += a.output_usd
        self.unsegmented_usd += a.cost_usd - seg_usd


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Rows of one grouping, in order, and their total."""

    by: GroupBy
    rows: tuple[UsageRow, ...]
    total: UsageRow
    since: datetime | None
    until: datetime | None
    project: str | None


def roots_of(nodes: Mapping[str, RunNode]) -> dict[str, str]:
    """Each run's top-level ancestor (cycle-safe)."""
    out: dict[str, str] = {}
    for rid in nodes:
        seen = {rid}
        cur = rid
        while True:
            parent = nodes[cur].parent_run_id if cur in nodes else None
            if parent is None or parent in seen or parent not in nodes:
                break
            seen.add(parent)
            cur = parent
        out[rid] = cur
    return out


def _week(day: str) -> str:
    d = date.fromisoformat(day)
    return (d - timedelta(days=d.weekday())).isoformat()


def usage_report(
    ledger: Ledger,
    *,
    by: GroupBy,
    since: datetime | None = None,
    until: datetime | None = None,
    project: str | None = None,
) -> UsageReport:
    """Calls started in ``[since, until)`` grouped ``by``; ``project`` matches a substring."""
    aggs = call_aggregates(ledger, since=since, until=until)
    nodes = run_nodes(ledger)
    roots = roots_of(nodes)
    rows: dict[str, UsageRow] = {}
    total = UsageRow("total", "total")
    needle = project.lower() if project else None
    for a in aggs:
        root = roots.get(a.run_id, a.run_id)
        root_node = nodes.get(root)
        proj = (root_node.project if root_node else None) or "(none)"
        if needle is not None and needle not in proj.lower():
            continue
        node = nodes.get(a.run_id)
        is_sub = node is not None and node.parent_run_id is not None and root != a.run_id
        if by == "day":
            keys = [a.day]
        elif by == "week":
            keys = [_week(a.day)]
        elif by == "month":
            keys = [a.day[:7]]
        elif by == "session":
            keys = [root]
        elif by == "run":
            # Own segments for the run; its cost counts as sub-agent for every ancestor.
            keys = [a.run_id]
        elif by == "model":
            keys = [a.model]
        else:
            keys = [proj]
        for key in keys:
            row = rows.get(key)
            if row is None:
                row = rows[key] = UsageRow(
                    key, _label(by, key, nodes), subagent_in_cost=by != "run"
                )
            row.add(a, subagent=is_sub and by != "run")
        if by == "run":
            for anc in _ancestors(a.run_id, nodes):
                row = rows.get(anc)
                if row is None:
                    row = rows[anc] = UsageRow(anc, _label(by, anc, nodes), subagent_in_cost=False)
                row.subagent_usd += a.cost_usd
        total.add(a, subagent=is_sub)
    if by in ("session", "run"):
        _ideals(rows, nodes, roots, by=by)
    ordered = sorted(rows.values(), key=lambda r: _order(by, r))
    return UsageReport(by, tuple(ordered), total, since, until, project)


def _ancestors(run_id: str, nodes: Mapping[str, RunNode]) -> Iterable[str]:
    seen = {run_id}
    cur = nodes.get(run_id)
    while cur is not None and cur.parent_run_id is not None and cur.parent_run_id not in seen:
        seen.add(cur.parent_run_id)
        yield cur.parent_run_id
        cur = nodes.get(cur.parent_run_id)


def _label(by: GroupBy, key: str, nodes: Mapping[str, RunNode]) -> str:
    if by in ("session", "run"):
        node = nodes.get(key)
        return node.name if node is not None else ""
    return ""


def _order(by: GroupBy, row: UsageRow) -> tuple[object, ...]:
    if by in ("day", "week", "month"):
        return (row.key,)
    if by in ("session", "run"):
        return (row.first_at or _EPOCH, row.key)
    return (-row.total_usd, row.key)


def tree_ideal(
    root: str, nodes: Mapping[str, RunNode], children: Mapping[str, Sequence[str]]
) -> Decimal | None:
    """The ideal cost of a run tree: the root's when the pipeline stored the tree's there,
    the sum over the tree for an imported transcript (each file's run has its own)."""
    node = nodes.get(root)
    if node is None or node.ideal_usd is None:
        return None
    if node.source != "claude-code":
        return node.ideal_usd
    total = node.ideal_usd
    stack = list(children.get(root, ()))
    seen = {root}
    while stack:
        rid = stack.pop()
        if rid in seen:
            continue
        seen.add(rid)
        child = nodes.get(rid)
        if child is None:
            continue
        if child.ideal_usd is None:
            return None
        total += child.ideal_usd
        stack.extend(children.get(rid, ()))
    return total


def children_of(nodes: Mapping[str, RunNode]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for n in nodes.values():
        if n.parent_run_id is not None:
            out.setdefault(n.parent_run_id, []).append(n.run_id)
    return out


def _ideals(
    rows: Mapping[str, UsageRow],
    nodes: Mapping[str, RunNode],
    roots: Mapping[str, str],
    *,
    by: GroupBy,
) -> None:
    children = children_of(nodes)
    for key, row in rows.items():
        node = nodes.get(key)
        if node is None:
            continue
        if by == "session":
            ideal = tree_ideal(key, nodes, children)
            if ideal is not None:
                row.ideal_usd = ideal
        elif node.ideal_usd is not None and (
            node.source == "claude-code" or (roots.get(key) == key and not children.get(key))
        ):
            # The run's own ideal (an imported file's), or a childless root's.
            row.ideal_usd = node.ideal_usd
