"""How ``tokenomy report`` shows its answers: tables, JSON and CSV for runs, groups, one run's
turns and the TTL what-if. Rendering only: the numbers come from :mod:`tokenomy.ledger.queries`
and :mod:`tokenomy.analysis`.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tokenomy.cli import _render

if TYPE_CHECKING:
    from tokenomy.analysis.reports import UsageReport, UsageRow
    from tokenomy.analysis.turns import RunDetail, WhatIfReport
    from tokenomy.ledger.queries import RunSummary

__all__ = ["render_groups", "render_runs", "render_turns", "render_what_if"]

_EMPTY = (
    "No runs in the ledger at {where} yet. Calls are recorded when they go through tokenomy: "
    "the library (tokenomy.Anthropic), the gateway (tokenomy gateway, then "
    "ANTHROPIC_BASE_URL=http://127.0.0.1:8787), or an import (tokenomy import claude-code)."
)


# ---------------------------------------------------------------------- formatting


def _ratio(x: float | Decimal | None) -> str:
    return "" if x is None else f"{x:.2f}"


def _usd(x: Decimal | None, places: int = 4) -> str:
    return "" if x is None else _render.usd(x, places=places)


def _csv(rows: list[dict[str, Any]]) -> None:
    import csv as _csvmod
    import io

    buf = io.StringIO()
    if rows:
        writer = _csvmod.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _flat(v) for k, v in r.items()})
    _render.text_out(buf.getvalue())


def _flat(v: Any) -> Any:
    if isinstance(v, dict | list | tuple | set):
        from tokenomy.ledger.codec import json_dumps

        return json_dumps(sorted(v) if isinstance(v, set) else v)
    if isinstance(v, datetime):
        return v.isoformat()
    return v


# ---------------------------------------------------------------------- runs


def _cost(summary: RunSummary) -> str:
    text = _render.usd(summary.cost_usd)
    return text + (f" +{summary.unpriced_calls} unpriced" if summary.unpriced_calls else "")


def render_runs(runs: tuple[RunSummary, ...], fmt: str, *, where: str, filtered: bool) -> None:
    """The run list (``where``: the ledger; ``filtered``: the user narrowed the list down)."""
    if fmt == "json":
        _render.json_out({"ledger": where, "runs": [_run_json(r) for r in runs]})
    elif fmt == "csv":
        _csv([_run_json(r) for r in runs])
    elif not runs:
        _render.line("No runs match these filters." if filtered else _EMPTY.format(where=where))
    else:
        _run_table(runs)


def _run_table(runs: tuple[RunSummary, ...]) -> None:
    rows = [
        [
            r.run_id,
            r.name,
            r.source,
            r.started_at.strftime("%Y-%m-%d %H:%M"),
            f"{r.calls:,}",
            f"{r.total_input_tokens:,}",
            f"{r.output_tokens:,}",
            _render.pct(r.cache_hit_rate),
            _cost(r),
            _render.usd(r.subagent_usd) if r.subagent_runs else "",
            _usd(r.ideal_usd),
            _ratio(r.cache_efficiency),
        ]
        for r in runs
    ]
    cols = [
        "run",
        "name",
        "source",
        "started (UTC)",
        "calls",
        "input tokens",
        "output tokens",
        "cache hit",
        "cost",
        "sub-agent cost",
        "ideal",
        "efficiency",
    ]
    _render.table(
        "Runs, newest first",
        cols,
        rows,
        right=cols[4:],
        caption="input tokens = uncached + cache writes + cache reads; cache hit = reads / input;"
        " efficiency = ideal / actual (where the ideal cost is known)",
    )


def _run_json(r: RunSummary) -> dict[str, Any]:
    return {
        **dataclasses.asdict(r),
        "total_input_tokens": r.total_input_tokens,
        "cache_hit_rate": r.cache_hit_rate,
        "total_usd": r.total_usd,
        "cache_efficiency": r.cache_efficiency,
    }


# ---------------------------------------------------------------------- groups


def _group_json(r: UsageRow) -> dict[str, Any]:
    return {
        "key": r.key,
        "label": r.label,
        "calls": r.calls,
        "error_calls": r.error_calls,
        "unpriced_calls": r.unpriced_calls,
        "input_tokens": r.input_tokens,
        "cache_write_5m_tokens": r.cache_write_5m_tokens,
        "cache_write_1h_tokens": r.cache_write_1h_tokens,
        "cache_read_tokens": r.cache_read_tokens,
        "output_tokens": r.output_tokens,
        "total_input_tokens": r.total_input_tokens,
        "cost_usd": r.cost_usd,
        "total_usd": r.total_usd,
        "write_5m_usd": r.write_5m_usd,
        "write_1h_usd": r.write_1h_usd,
        "read_usd": r.read_usd,
        "prefix_tokens": r.prefix_tokens,
        "transcript_tokens": r.transcript_tokens,
        "new_tokens": r.new_tokens,
        "prefix_usd": r.prefix_usd,
        "transcript_usd": r.transcript_usd,
        "new_usd": r.new_usd,
        "output_usd": r.output_usd,
        "subagent_usd": r.subagent_usd,
        "unsegmented_usd": r.unsegmented_usd,
        "cache_hit_rate": r.cache_hit_rate,
        "write_amplification": r.write_amplification,
        "ideal_usd": r.ideal_usd,
        "cache_efficiency": r.cache_efficiency,
        "first_at": r.first_at,
        "last_at": r.last_at,
        "models": sorted(r.models),
    }


def render_groups(rep: UsageReport, fmt: str) -> None:
    if fmt == "json":
        _render.json_out(
            {
                "by": rep.by,
                "since": rep.since,
                "until": rep.until,
                "project": rep.project,
                "rows": [_group_json(r) for r in rep.rows],
                "total": _group_json(rep.total),
            }
        )
        return
    if fmt == "csv":
        _csv([_group_json(r) for r in (*rep.rows, rep.total)])
        return
    if not rep.rows:
        _render.line("No calls match these filters.")
        return
    named = rep.by in ("session", "run")
    cols = [
        rep.by,
        *(["name"] if named else []),
        "calls",
        "input tokens",
        "output",
        "hit",
        "write amp",
        "5m writes",
        "1h writes",
        "prefix",
        "transcript",
        "new input",
        "output $",
        "sub-agent",
        "total",
        *(["efficiency"] if named else []),
    ]
    rows = []
    for r in (*rep.rows, rep.total):
        label = [r.label[:40]] if named else []
        rows.append(
            [
                r.key,
                *label,
                f"{r.calls:,}",
                f"{r.total_input_tokens:,}",
                f"{r.output_tokens:,}",
                _render.pct(r.cache_hit_rate),
                _ratio(r.write_amplification),
                _render.usd(r.write_5m_usd),
                _render.usd(r.write_1h_usd),
                _render.usd(r.prefix_usd),
                _render.usd(r.transcript_usd),
                _render.usd(r.new_usd),
                _render.usd(r.output_usd),
                _render.usd(r.subagent_usd),
                _render.usd(r.total_usd)
                + (f" +{r.unpriced_calls} unpriced" if r.unpriced_calls else ""),
                *([_ratio(r.cache_efficiency)] if named else []),
            ]
        )
    # A column nobody has a value for (efficiency without ideal costs) only takes room.
    keep = [i for i, _ in enumerate(cols) if any(r[i] not in ("", None) for r in rows)]
    cols = [cols[i] for i in keep]
    rows = [[r[i] for i in keep] for r in rows]
    first_num = 2 if named else 1
    _render.table(
        f"Usage by {rep.by}",
        cols,
        rows,
        right=cols[first_num:],
        caption="prefix = tools + system; transcript = earlier turns; new input = the latest "
        "turn; sub-agent = all a sub-agent spent. hit = cache reads / input; write amp = "
        "cache writes / cache reads. Last row: total.",
    )


# ---------------------------------------------------------------------- one run


def _turn_json(t: Any) -> dict[str, Any]:
    c = t.call
    u = c.usage
    sc = c.segment_costs
    return {
        "call_id": c.call_id,
        "seq": c.seq,
        "started_at": c.started_at,
        "gap_s": t.gap_s,
        "model": c.model_used or c.model_requested,
        "compaction_before": t.compaction_before,
        "cost_usd": t.cost_usd,
        "cache_hit_rate": None if u is None else u.cache_hit_rate,
        "write_amplification": t.write_amplification,
        "segments": None if c.segments is None else dataclasses.asdict(c.segments),
        "segment_usd": None if sc is None else dataclasses.asdict(sc),
        "write_5m_usd": getattr(c.cost, "cache_write_5m_usd", None),
        "write_1h_usd": getattr(c.cost, "cache_write_1h_usd", None),
        "subagent_usd": t.subagent_usd,
    }


def _call_json(c: Any) -> dict[str, Any]:
    from tokenomy.core.pricing import Unpriced

    data = dataclasses.asdict(c)
    data["cost_total_usd"] = None if c.cost is None else c.cost.total_usd
    data["unpriced"] = isinstance(c.cost, Unpriced)
    return data


def render_turns(d: RunDetail, fmt: str) -> None:
    s = d.summary
    if fmt == "json":
        _render.json_out(
            {
                "run": _run_json(s),
                "ideal_usd": d.ideal_usd,
                "cache_efficiency": d.cache_efficiency,
                "calls": [_call_json(t.call) for t in d.turns],
                "turns": [_turn_json(t) for t in d.turns],
                "compactions": [dataclasses.asdict(e) for e in d.compactions],
                "subagents": [_run_json(r) for r in d.subagents],
            }
        )
        return
    if fmt == "csv":
        _csv([_turn_json(t) for t in d.turns])
        return
    rows = []
    for t in d.turns:
        c, u, sc = t.call, t.call.usage, t.call.segment_costs
        rows.append(
            [
                ("⤓ " if t.compaction_before else "") + str(c.seq),
                c.started_at.strftime("%H:%M:%S"),
                "" if t.gap_s is None else f"{t.gap_s:,.0f}",
                c.model_used or c.model_requested,
                c.status,
                "" if u is None else f"{u.total_input_tokens:,}",
                "" if u is None else f"{u.output_tokens:,}",
                "" if u is None else _render.pct(u.cache_hit_rate),
                _ratio(t.write_amplification),
                "" if sc is None else _usd(sc.tools_usd + sc.system_usd, 6),
                "" if sc is None else _usd(sc.history_usd, 6),
                "" if sc is None else _usd(sc.new_usd, 6),
                "" if sc is None else _usd(sc.output_usd, 6),
                _usd(getattr(c.cost, "cache_write_5m_usd", None), 6),
                _usd(getattr(c.cost, "cache_write_1h_usd", None), 6),
                _usd(t.subagent_usd, 6) if t.subagent_usd else "",
                _call_cost(c),
                "" if c.latency_ms is None else f"{c.latency_ms:,.0f}",
                c.stop_reason or c.error_type or "",
            ]
        )
    cols = [
        "#",
        "started",
        "gap s",
        "model",
        "status",
        "input",
        "output",
        "hit",
        "write amp",
        "prefix",
        "transcript",
        "new input",
        "output $",
        "5m write $",
        "1h write $",
        "sub-agent",
        "cost",
        "latency ms",
        "stop",
    ]
    total = _render.usd(s.cost_usd)
    sub = f"; sub-agents {_render.usd(s.subagent_usd)}" if s.subagent_runs else ""
    eff = d.cache_efficiency
    ideal = (
        f"; ideal {_render.usd(d.ideal_usd)}, efficiency {eff:.2f}"
        if eff is not None and d.ideal_usd is not None
        else ""
    )
    comp = f"; {len(d.compactions)} compaction point(s) (⤓)" if d.compactions else ""
    _render.table(
        f"Run {s.run_id} — {s.name or '(unnamed)'}",
        cols,
        rows,
        right=[c for c in cols if c not in ("#", "started", "model", "status", "stop")],
        caption=f"{s.calls} calls, {total}{sub}{ideal}{comp}. gap = seconds since the previous "
        "call; prefix = tools + system; transcript = earlier turns.",
    )


def _call_cost(c: Any) -> str:
    from tokenomy.core.pricing import CostBreakdown, Unpriced

    if isinstance(c.cost, CostBreakdown):
        return _render.usd(c.cost.total_usd, places=6)
    if isinstance(c.cost, Unpriced):
        return "unpriced"
    return ""


# ---------------------------------------------------------------------- what-if


def render_what_if(wi: WhatIfReport, fmt: str) -> None:
    rows: list[dict[str, Any]] = [
        {
            "session": s.run_id,
            "name": s.name,
            "started_at": s.started_at,
            "calls": s.calls,
            "method": s.method,
            "actual_usd": s.actual_usd,
            "what_if_usd": s.what_if_usd,
            "delta_usd": s.delta_usd,
            "unpriced_calls": s.unpriced_calls,
        }
        for s in wi.sessions
    ]
    if fmt == "json":
        _render.json_out(
            {
                "ttl": wi.ttl,
                "sessions": rows,
                "actual_usd": wi.actual_usd,
                "what_if_usd": wi.what_if_usd,
                "delta_usd": wi.delta_usd,
                "exact_sessions": wi.count("exact"),
                "estimated_sessions": wi.estimated_sessions,
            }
        )
        return
    if fmt == "csv":
        _csv(rows)
        return
    if not wi.sessions:
        _render.line("No sessions match these filters.")
        return
    _render.table(
        f"What if every cache write had used ttl={wi.ttl}",
        ["session", "name", "calls", "method", "actual", f"with {wi.ttl}", "difference"],
        [
            [
                r["session"],
                str(r["name"])[:40],
                f"{r['calls']:,}",
                r["method"],
                _render.usd(r["actual_usd"]),
                _render.usd(r["what_if_usd"]),
                _signed(r["delta_usd"]),
            ]
            for r in rows
        ],
        right=["calls", "actual", f"with {wi.ttl}", "difference"],
        caption="exact: rebuilt from Claude Code 2.1.330+ request records; estimated: from the "
        "call timestamps and usage (docs/design/analysis.md).",
    )
    delta = wi.delta_usd
    pct = f" ({delta / wi.actual_usd:+.1%})" if wi.actual_usd > 0 else ""
    verdict = "would have saved" if delta < 0 else "would have cost"
    _render.line(
        f"With ttl={wi.ttl} these {len(wi.sessions)} sessions {verdict} "
        f"{_render.usd(abs(delta))}{pct}: {_render.usd(wi.actual_usd)} → "
        f"{_render.usd(wi.what_if_usd)}. {wi.count('exact')} exact, "
        f"{wi.estimated_sessions} estimated."
    )


def _signed(x: Decimal) -> str:
    return ("+" if x > 0 else "-" if x < 0 else "") + _render.usd(abs(x))
