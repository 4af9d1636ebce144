"""``tokenomy report``: what each run cost, from the ledger (logic: ``tokenomy.ledger.queries``)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from tokenomy.cli import _render
from tokenomy.cli._app import app
from tokenomy.config import load_settings
from tokenomy.core.pricing import CostBreakdown, Unpriced
from tokenomy.core.records import CallRecord
from tokenomy.errors import InputError
from tokenomy.ledger.queries import RunSummary, get_run, list_runs, run_calls
from tokenomy.wiring import open_ledger

_EMPTY = (
    "No runs in the ledger at {where} yet. Calls are recorded when they go through tokenomy: "
    "the library (tokenomy.Anthropic), the gateway (tokenomy gateway, then "
    "ANTHROPIC_BASE_URL=http://127.0.0.1:8787), or an import (tokenomy import claude-code)."
)


@app.command("report")
def report(
    *,
    json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most N runs.")] = 20,
    since: Annotated[
        str | None, typer.Option("--since", help="Runs started on or after DATE (UTC).")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Runs started before DATE.")] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Runs whose name contains this.")
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="library, gateway, batch, claude-code, …")
    ] = None,
    all_runs: Annotated[
        bool, typer.Option("--all", help="List sub-agent runs too, not only top-level runs.")
    ] = False,
    run: Annotated[str | None, typer.Option("--run", help="Show the calls of one run.")] = None,
) -> None:
    """Per-run cost, calls, tokens and cache hit rate; --run ID for one run's calls."""
    since_at, until_at = _when(since, "--since"), _when(until, "--until")
    with open_ledger(load_settings()) as ledger:
        if run is not None:
            summary = get_run(ledger, run)
            if summary is None:
                raise InputError(
                    f"no run {run!r} in the ledger at {ledger.display}; "
                    "'tokenomy report --all' lists the runs"
                )
            _render_calls(summary, run_calls(ledger, run), json=json)
            return
        runs = list_runs(
            ledger,
            since=since_at,
            until=until_at,
            name=name,
            source=source,
            top_level=not all_runs,
            limit=limit,
        )
        where = ledger.display
    if json:
        _render.json_out({"ledger": where, "runs": [_run_json(r) for r in runs]})
    elif not runs:
        filtered = any(v is not None for v in (since, until, name, source))
        _render.line("No runs match these filters." if filtered else _EMPTY.format(where=where))
    else:
        _render_runs(runs)


def _when(value: str | None, flag: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"{flag} must be a date like 2026-11-20 or 2026-11-20T14:00, got {value!r}"
        ) from None
    # A bare date is its midnight; a time without an offset is UTC.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _pct(rate: float | None) -> str:
    return "" if rate is None else f"{rate:.1%}"


def _cost(summary: RunSummary) -> str:
    text = _render.usd(summary.cost_usd)
    return text + (f" +{summary.unpriced_calls} unpriced" if summary.unpriced_calls else "")


def _render_runs(runs: tuple[RunSummary, ...]) -> None:
    rows = [
        [
            r.run_id,
            r.name,
            r.source,
            r.started_at.strftime("%Y-%m-%d %H:%M"),
            f"{r.calls:,}",
            f"{r.total_input_tokens:,}",
            f"{r.output_tokens:,}",
            _pct(r.cache_hit_rate),
            _cost(r),
            _render.usd(r.subagent_usd) if r.subagent_runs else "",
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
    ]
    _render.table(
        "Runs, newest first",
        cols,
        rows,
        right=cols[4:],
        caption="input tokens = uncached + cache writes + cache reads; cache hit = reads / input",
    )


def _render_calls(summary: RunSummary, calls: tuple[CallRecord, ...], *, json: bool) -> None:
    if json:
        _render.json_out({"run": _run_json(summary), "calls": [_call_json(c) for c in calls]})
        return
    rows = []
    for c in calls:
        u = c.usage
        rows.append(
            [
                c.seq,
                c.started_at.strftime("%H:%M:%S"),
                c.model_used or c.model_requested,
                c.status,
                "" if u is None else f"{u.input_tokens:,}",
                "" if u is None else f"{u.cache_write_tokens:,}",
                "" if u is None else f"{u.cache_read_tokens:,}",
                "" if u is None else f"{u.output_tokens:,}",
                "" if u is None else _pct(u.cache_hit_rate),
                _call_cost(c),
                "" if c.latency_ms is None else f"{c.latency_ms:,.0f}",
                c.stop_reason or c.error_type or "",
            ]
        )
    cols = [
        "#",
        "started",
        "model",
        "status",
        "input",
        "cache write",
        "cache read",
        "output",
        "hit",
        "cost",
        "latency ms",
        "stop",
    ]
    total = _render.usd(summary.cost_usd)
    sub = f"; sub-agents {_render.usd(summary.subagent_usd)}" if summary.subagent_runs else ""
    _render.table(
        f"Run {summary.run_id} — {summary.name or '(unnamed)'}",
        cols,
        rows,
        right=cols[4:11],
        caption=f"{summary.calls} calls, {total}{sub}",
    )


def _call_cost(c: CallRecord) -> str:
    if isinstance(c.cost, CostBreakdown):
        return _render.usd(c.cost.total_usd, places=6)
    if isinstance(c.cost, Unpriced):
        return "unpriced"
    return ""


def _run_json(r: RunSummary) -> dict[str, Any]:
    return {
        **dataclasses.asdict(r),
        "total_input_tokens": r.total_input_tokens,
        "cache_hit_rate": r.cache_hit_rate,
        "total_usd": r.total_usd,
    }


def _call_json(c: CallRecord) -> dict[str, Any]:
    data = dataclasses.asdict(c)
    data["cost_total_usd"] = None if c.cost is None else c.cost.total_usd
    data["unpriced"] = isinstance(c.cost, Unpriced)
    return data
