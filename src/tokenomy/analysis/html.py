"""``tokenomy report --html``: one self-contained HTML file with the charts, built with plotly.

Six charts, each in its own fixed-height block (in this order, so a test can find each one in
a screenshot): cost per turn stacked by segment; context size over turns with compaction
points; cache hit rate over turns; the top cache misses with their causes; the sub-agent
roll-up; daily spend. plotly.js is embedded once (``include_plotlyjs=True``): the file opens
offline.

Cache misses come from the doctor's findings when the ledger has them (calls that went
through tokenomy); for imported transcripts they are estimated from usage: tokens the
previous call had cached that this call wrote again, with the likely cause — the gap was
longer than the entries' TTL, a compaction, a model switch, or a changed prefix.
"""

from __future__ import annotations

import html as _html
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tokenomy.analysis.reports import UsageReport, usage_report
from tokenomy.analysis.turns import RunDetail, Turn, run_detail
from tokenomy.core.pricing import MTOK, Rates, rates
from tokenomy.data.table import ModelTable
from tokenomy.errors import InputError
from tokenomy.ledger import Ledger
from tokenomy.ledger.queries import list_runs

__all__ = [
    "CHART_HEIGHT_PX",
    "CHART_IDS",
    "HEADER_HEIGHT_PX",
    "HtmlReport",
    "Miss",
    "cache_misses",
    "render_html",
    "write_report",
]

CHART_IDS = ("cost-per-turn", "context", "hit-rate", "misses", "subagents", "daily")
CHART_HEIGHT_PX = 460
HEADER_HEIGHT_PX = 160
_SEGMENTS = (
    ("prefix", "#4c78a8"),
    ("transcript", "#72b7b2"),
    ("new input", "#f58518"),
    ("output", "#e45756"),
    ("sub-agent", "#b279a2"),
    ("unsegmented", "#9d9d9d"),
)


@dataclass(frozen=True, slots=True)
class Miss:
    """Tokens a call could have read from cache but did not, why, and what that cost."""

    seq: int
    tokens: int
    cause: str
    lost_usd: Decimal
    detail: str
    source: str  # "doctor" or "estimated"


def _f(x: Decimal | None) -> float:
    return float(x) if x is not None else 0.0


def _segments_usd(t: Turn) -> list[float]:
    sc = t.call.segment_costs
    if sc is None:
        total = t.cost_usd
        return [0.0, 0.0, 0.0, 0.0, _f(t.subagent_usd), _f(total)]
    return [
        _f(sc.tools_usd + sc.system_usd),
        _f(sc.history_usd),
        _f(sc.new_usd),
        _f(sc.output_usd),
        _f(t.subagent_usd),
        0.0,
    ]


def cache_misses(detail: RunDetail, table: ModelTable, *, limit: int = 15) -> list[Miss]:
    """The run's biggest cache misses: the doctor's where recorded, else estimated."""
    out: list[Miss] = []
    estimated: list[Miss] = []
    prev: Turn | None = None
    for t in detail.turns:
        c = t.call
        doc = c.decisions.get("doctor") if isinstance(c.decisions, dict) else None
        if isinstance(doc, dict):
            for m in doc.get("misses", []):
                out.append(
                    Miss(
                        seq=c.seq,
                        tokens=int(m.get("tokens", 0)),
                        cause=str(m.get("cause")),
                        lost_usd=Decimal(str(m.get("lost_usd", "0"))),
                        detail=str(m.get("detail", "")),
                        source="doctor",
                    )
                )
        elif prev is not None:
            m2 = _estimated_miss(prev, t, table)
            if m2 is not None:
                estimated.append(m2)
        prev = t
    misses = out or estimated
    misses.sort(key=lambda m: (-m.lost_usd, m.seq))
    return misses[:limit]


def _estimated_miss(prev: Turn, t: Turn, table: ModelTable) -> Miss | None:
    pu, u = prev.call.usage, t.call.usage
    if pu is None or u is None:
        return None
    p, b = pu.billable(), u.billable()
    had = p.cache_read_tokens + p.cache_write_tokens
    could = min(had, b.total_input_tokens)
    tokens = could - b.cache_read_tokens
    if tokens <= 0 or b.cache_write_tokens == 0:
        return None
    tokens = min(tokens, b.cache_write_tokens)
    gap = t.gap_s or 0.0
    ttl_s = 3600.0 if p.cache_write_1h_tokens > p.cache_write_5m_tokens else 300.0
    model, prev_model = t.call.model_used, prev.call.model_used
    if model != prev_model:
        cause, why = "model_switched", f"{prev_model} → {model}: each model has its own cache"
    elif t.compaction_before:
        cause, why = "compaction", "the conversation was compacted: the history was rewritten"
    elif gap >= ttl_s:
        cause = "ttl_expired"
        why = f"{gap / 60:.1f} min since the previous call > the {int(ttl_s // 60)} min TTL"
    else:
        cause, why = "prefix_changed", "the prompt changed before the cached end (estimated)"
    info = table.find(model or "")
    r = (
        rates(info, table=table, total_input_tokens=b.total_input_tokens)
        if info is not None
        else None
    )
    lost = Decimal(0)
    if isinstance(r, Rates):
        paid = (
            r.cache_write_1h
            if b.cache_write_1h_tokens > b.cache_write_5m_tokens
            else r.cache_write_5m
        )
        lost = tokens * (paid - r.cache_read) / MTOK
    return Miss(t.call.seq, tokens, cause, lost, why, "estimated")


def _layout(title: str, *, barmode: str | None = None, **more: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "title": {"text": title, "x": 0.01},
        "height": CHART_HEIGHT_PX - 20,
        "margin": {"l": 70, "r": 30, "t": 50, "b": 50},
        "legend": {"orientation": "h", "y": -0.18},
        "template": "plotly_white",
    }
    if barmode:
        out["barmode"] = barmode
    out.update(more)
    return out


def _figures(detail: RunDetail, daily: UsageReport, table: ModelTable) -> list[Any]:
    import plotly.graph_objects as go

    turns = detail.turns
    xs = [t.call.seq for t in turns]
    figs: list[Any] = []
    # 1. cost per turn, stacked by segment
    per = [_segments_usd(t) for t in turns]
    fig = go.Figure(
        [
            go.Bar(name=name, x=xs, y=[p[i] for p in per], marker_color=color)
            for i, (name, color) in enumerate(_SEGMENTS)
            if any(p[i] for p in per) or i < 4
        ],
        layout=_layout(
            "Cost per turn by segment (USD)",
            barmode="stack",
            xaxis={"title": "turn (call #)"},
            yaxis={"title": "USD"},
        ),
    )
    figs.append(fig)
    # 2. context size over turns, compaction points marked
    ctx = [t.call.usage.total_input_tokens if t.call.usage else 0 for t in turns]
    comp_x = [t.call.seq for t in turns if t.compaction_before]
    comp_y = [ctx[i] for i, t in enumerate(turns) if t.compaction_before]
    fig = go.Figure(
        [
            go.Scatter(name="input tokens", x=xs, y=ctx, mode="lines+markers"),
            go.Scatter(
                name="compaction",
                x=comp_x,
                y=comp_y,
                mode="markers",
                marker={"symbol": "x", "size": 14, "color": "#e45756"},
            ),
        ],
        layout=_layout(
            "Context size over turns (total input tokens; × = compaction before the turn)",
            xaxis={"title": "turn (call #)"},
            yaxis={"title": "tokens"},
        ),
    )
    figs.append(fig)
    # 3. cache hit rate over turns
    hits = [
        (t.call.usage.cache_hit_rate or 0.0) * 100 if t.call.usage is not None else 0.0
        for t in turns
    ]
    fig = go.Figure(
        [go.Scatter(name="cache hit rate", x=xs, y=hits, mode="lines+markers", fill="tozeroy")],
        layout=_layout(
            "Cache hit rate over turns (% of input read from cache)",
            xaxis={"title": "turn (call #)"},
            yaxis={"title": "%", "range": [0, 100]},
        ),
    )
    figs.append(fig)
    # 4. top cache misses
    misses = cache_misses(detail, table)
    source = misses[0].source if misses else "doctor"
    cells: list[list[Any]] = [
        [m.seq for m in misses] or ["—"],
        [m.cause for m in misses] or ["no cache misses"],
        [f"{m.tokens:,}" for m in misses] or [""],
        [f"${m.lost_usd:.6f}" for m in misses] or [""],
        [m.detail for m in misses] or [""],
    ]
    fig = go.Figure(
        [
            go.Table(
                columnwidth=[40, 110, 80, 90, 420],
                header={"values": ["turn", "cause", "tokens", "lost", "where / why"]},
                cells={"values": cells, "align": "left"},
            )
        ],
        layout=_layout(
            "Top cache misses"
            + (" (estimated from usage)" if source == "estimated" else " (from the doctor)")
        ),
    )
    figs.append(fig)
    # 5. sub-agent roll-up
    subs = detail.subagents
    names = ["this run's own calls", *(f"{s.name or s.run_id}"[:60] for s in subs)]
    colors = ["#4c78a8", *("#b279a2" for _ in subs)]
    fig = go.Figure(
        [
            go.Bar(
                name="cost",
                y=names,
                x=[_f(detail.summary.cost_usd), *(_f(s.total_usd) for s in subs)],
                orientation="h",
                marker_color=colors,
            )
        ],
        layout=_layout(
            f"Sub-agents: {len(subs)} runs, ${_f(detail.summary.subagent_usd):.4f} "
            f"of ${_f(detail.summary.total_usd):.4f}",
            xaxis={"title": "USD"},
        ),
    )
    figs.append(fig)
    # 6. daily spend
    days = [r.key for r in daily.rows] or ["(none)"]
    own = [_f(r.cost_usd - r.subagent_usd) for r in daily.rows] or [0.0]
    sub = [_f(r.subagent_usd) for r in daily.rows] or [0.0]
    fig = go.Figure(
        [
            go.Bar(name="main conversations", x=days, y=own, marker_color="#4c78a8"),
            go.Bar(name="sub-agents", x=days, y=sub, marker_color="#b279a2"),
        ],
        layout=_layout(
            "Daily spend (USD, UTC days)",
            barmode="stack",
            xaxis={"title": "day", "type": "category"},
            yaxis={"title": "USD"},
        ),
    )
    figs.append(fig)
    return figs


def render_html(
    detail: RunDetail,
    daily: UsageReport,
    *,
    table: ModelTable,
    generated_at: datetime,
) -> str:
    """The whole report as one HTML document (plotly.js inlined once)."""
    import plotly.io as pio

    s = detail.summary
    figs = _figures(detail, daily, table)
    blocks: list[str] = []
    for i, (fig, chart_id) in enumerate(zip(figs, CHART_IDS, strict=True)):
        div = pio.to_html(
            fig,
            include_plotlyjs=i == 0,
            full_html=False,
            div_id=f"chart-{chart_id}",
            config={"displaylogo": False, "responsive": False},
            default_width="100%",
            default_height=f"{CHART_HEIGHT_PX - 20}px",
        )
        blocks.append(f'<section class="chart" id="{chart_id}">{div}</section>')
    hit = s.cache_hit_rate
    eff = detail.cache_efficiency
    facts = [
        f"{s.calls:,} calls",
        f"${s.total_usd:.4f} total (sub-agents ${s.subagent_usd:.4f})",
        f"cache hit {hit:.1%}" if hit is not None else "no input",
        f"cache efficiency {eff:.2f} (ideal ${detail.ideal_usd:.4f})"
        if eff is not None and detail.ideal_usd is not None
        else "ideal cost unknown",
        f"{len(detail.compactions)} compaction point(s)",
    ]
    if s.unpriced_calls:
        facts.append(f"{s.unpriced_calls} unpriced call(s)")
    esc = _html.escape
    return _PAGE.format(
        title=esc(f"tokenomy report — {s.name or s.run_id}"),
        name=esc(s.name or "(unnamed)"),
        run_id=esc(s.run_id),
        facts=esc(" · ".join(facts)),
        when=esc(generated_at.strftime("%Y-%m-%d %H:%M UTC")),
        blocks="\n".join(blocks),
        chart_h=CHART_HEIGHT_PX,
        header_h=HEADER_HEIGHT_PX,
    )


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ margin: 0; font-family: system-ui, sans-serif; background: #fff; color: #222; }}
header {{ height: {header_h}px; box-sizing: border-box; padding: 16px 24px; overflow: hidden;
  border-bottom: 1px solid #ddd; }}
header h1 {{ font-size: 20px; margin: 0 0 6px 0; }}
header p {{ margin: 4px 0; font-size: 14px; }}
section.chart {{ height: {chart_h}px; box-sizing: border-box; padding: 10px 24px 0 24px; }}
</style></head>
<body>
<header><h1>{name}</h1><p>run {run_id}</p><p>{facts}</p>
<p>Generated by tokenomy on {when}. Segments: prefix = tools + system, transcript = earlier
turns, new input = the latest turn, output, sub-agent = what sub-agents spent.</p></header>
{blocks}
</body></html>
"""


@dataclass(frozen=True, slots=True)
class HtmlReport:
    """A written report: where, for which run, how big."""

    path: Path
    run_id: str
    turns: int
    size_bytes: int


def write_report(
    ledger: Ledger,
    path: Path,
    *,
    table: ModelTable,
    now: datetime,
    run_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    project: str | None = None,
) -> HtmlReport:
    """Render the report of ``run_id`` (default: the newest top-level run) to ``path``."""
    if run_id is None:
        recent = list_runs(ledger, since=since, until=until, top_level=True, limit=1)
        if not recent:
            raise InputError(
                f"no runs in the ledger at {ledger.display} to report on; import transcripts "
                "(tokenomy import claude-code) or send calls through tokenomy first"
            )
        run_id = recent[0].run_id
    detail = run_detail(ledger, run_id)
    daily = usage_report(ledger, by="day", since=since, until=until, project=project)
    page = render_html(detail, daily, table=table, generated_at=now)
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write the HTML report to {str(path)!r}: {exc.strerror}") from None
    return HtmlReport(
        path=path,
        run_id=detail.summary.run_id,
        turns=len(detail.turns),
        size_bytes=len(page.encode()),
    )
