"""``tokenomy report``: what runs cost, by group, turn by turn, what-if, HTML.

Logic: :mod:`tokenomy.ledger.queries` (runs), :mod:`tokenomy.analysis.reports` (groups),
:mod:`tokenomy.analysis.turns` (one run, the TTL what-if), :mod:`tokenomy.analysis.html`.
Tables, JSON and CSV: :mod:`tokenomy.cli._report_render`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from tokenomy.cli import _render
from tokenomy.cli._app import app
from tokenomy.cli._report_render import render_groups, render_runs, render_turns, render_what_if
from tokenomy.errors import InputError


@app.command("report")
def report(
    *,
    json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False,
    by: Annotated[
        str | None,
        typer.Option("--by", help="Group calls: day, week, month, session, run, model, project."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most N runs.")] = 20,
    since: Annotated[
        str | None, typer.Option("--since", help="Runs (calls) started on or after DATE (UTC).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Runs (calls) started before DATE.")
    ] = None,
    project: Annotated[
        str | None, typer.Option("--project", help="Only runs whose project contains this.")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Runs whose name contains this.")
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="library, gateway, batch, claude-code, …")
    ] = None,
    all_runs: Annotated[
        bool, typer.Option("--all", help="List sub-agent runs too, not only top-level runs.")
    ] = False,
    run: Annotated[
        str | None, typer.Option("--run", help="One run, turn by turn (or the HTML's run).")
    ] = None,
    what_if: Annotated[
        str | None,
        typer.Option("--what-if", help="ttl=1h or ttl=5m: re-price sessions with the other TTL."),
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")
    ] = None,
    refresh: Annotated[
        bool,
        typer.Option(
            "--refresh",
            help="First import what Claude Code wrote since the last import "
            "(as 'tokenomy import claude-code' does).",
        ),
    ] = False,
    claude_dirs: Annotated[
        str | None,
        typer.Option("--claude-dir", envvar="CLAUDE_CONFIG_DIR", hidden=True),
    ] = None,
) -> None:
    """Cost, tokens by segment, cache hit rate per run, group or turn; --what-if; --html."""
    from tokenomy.analysis.reports import GROUPS
    from tokenomy.config import load_settings
    from tokenomy.wiring import open_ledger

    if json and csv:
        raise InputError("--json and --csv are two formats; pick one")
    if by is not None and by not in GROUPS:
        raise InputError(f"--by must be one of {', '.join(GROUPS)}; got {by!r}")
    ttl = _ttl(what_if) if what_if is not None else None
    since_at, until_at = _when(since, "--since"), _when(until, "--until")
    fmt = "json" if json else "csv" if csv else "table"
    settings = load_settings()
    with open_ledger(settings) as ledger:
        if refresh:
            _refresh(ledger, settings, claude_dirs)
        if html is not None:
            _write_html(
                ledger,
                html,
                run=run,
                since=since_at,
                until=until_at,
                project=project,
                settings=settings,
            )
            return
        if ttl is not None:
            from tokenomy.analysis.turns import what_if_report
            from tokenomy.data import load_table

            wi = what_if_report(
                ledger,
                ttl=ttl,
                table=load_table(settings.user_models_file),
                since=since_at,
                until=until_at,
                project=project,
                source=source,
            )
            render_what_if(wi, fmt)
            return
        if by is not None:
            from tokenomy.analysis.reports import usage_report

            rep = usage_report(ledger, by=by, since=since_at, until=until_at, project=project)
            render_groups(rep, fmt)
            return
        if run is not None:
            from tokenomy.analysis.turns import run_detail

            render_turns(run_detail(ledger, run), fmt)
            return
        from tokenomy.ledger.queries import list_runs

        runs = list_runs(
            ledger,
            since=since_at,
            until=until_at,
            name=name,
            source=source,
            top_level=not all_runs,
            limit=limit,
            project=project,
        )
        where = ledger.display
    filtered = any(v is not None for v in (since, until, name, source, project))
    render_runs(runs, fmt, where=where, filtered=filtered)


def _refresh(ledger: Any, settings: Any, claude_dirs: str | None) -> None:
    from tokenomy.analysis.importer import import_claude_code
    from tokenomy.analysis.transcripts import default_roots
    from tokenomy.data import load_table

    roots = default_roots(home=Path.home(), config_dirs=claude_dirs)
    s = import_claude_code(
        ledger, roots, table=load_table(settings.user_models_file), now=datetime.now(UTC)
    )
    if s.calls or s.calls_updated:
        _render.warn(
            f"imported {s.calls:,} new calls from Claude Code transcripts "
            f"({s.files_read:,} files changed)"
        )
    for path, reason in s.unreadable:
        _render.warn(f"cannot read {path}: {reason}")


# ---------------------------------------------------------------------- parsing


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


def _ttl(value: str) -> Any:
    v = value.replace(" ", "").lower()
    if v in ("ttl=1h", "ttl=5m"):
        return v[4:]
    raise InputError(f"--what-if takes ttl=1h or ttl=5m; got {value!r}")


# ---------------------------------------------------------------------- html


def _write_html(
    ledger: Any,
    path: Path,
    *,
    run: str | None,
    since: datetime | None,
    until: datetime | None,
    project: str | None,
    settings: Any,
) -> None:
    from tokenomy.analysis.html import write_report
    from tokenomy.data import load_table

    report = write_report(
        ledger,
        path,
        table=load_table(settings.user_models_file),
        now=datetime.now(UTC),
        run_id=run,
        since=since,
        until=until,
        project=project,
    )
    _render.line(
        f"Wrote {report.path} ({report.size_bytes / 1e6:.1f} MB, opens offline): run "
        f"{report.run_id}, {report.turns} turns."
    )
