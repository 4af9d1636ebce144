"""``tokenomy doctor`` (cache misses of recorded runs) and ``tokenomy lint`` (before sending)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from tokenomy.cli import _render
from tokenomy.cli._app import app
from tokenomy.config import load_settings
from tokenomy.core.lint import lint_requests
from tokenomy.data import load_table
from tokenomy.errors import InputError


@app.command("doctor")
def doctor(
    run: Annotated[
        str | None, typer.Option("--run", help="Run id (default: the most recent run).")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Why calls missed the cache: the first divergence, its cause and the dollars lost."""
    from tokenomy.analysis.doctor import doctor_report  # imported here: the CLI starts fast
    from tokenomy.wiring import open_ledger

    with open_ledger(load_settings()) as ledger:
        report = doctor_report(ledger, run_id=run)
    if json:
        _render.json_out(report)
        return
    _render.line(
        f"run {report['run_id']} ({report['name']}): {report['calls']} calls, "
        f"{report['misses']} with a cache miss, {_render.usd(report['lost_usd'])} lost; "
        f"predicted cache reads matched the server on {report['agree']}/{report['checked']} calls"
    )
    if not report["rows"]:
        _render.line("no cache misses: every call read what it could.")
        return
    _render.table(
        None,
        ["call", "cause", "tokens", "lost", "where / why"],
        [
            [
                r["seq"],
                r["cause"],
                f"{r['tokens']:,}",
                _render.usd(r["lost_usd"], places=6),
                r["detail"],
            ]
            for r in report["rows"]
        ],
        right=["call", "tokens", "lost"],
    )
    for v in report["volatile"]:
        _render.warn(f"volatile content in the cached prefix: {v}")


def _load(path: str) -> Any:
    try:
        return orjson.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise InputError(f"{path!r} does not exist") from None
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None


@app.command("lint")
def lint_cmd(
    request: Annotated[str, typer.Argument(help="A Messages request body (JSON file).")],
    previous: Annotated[
        str | None, typer.Option("--previous", help="The request sent before this one.")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Find cache-busters before sending; exit code 1 when one is found."""
    settings = load_settings()
    findings = lint_requests(
        _load(request),
        previous=_load(previous) if previous else None,
        table=load_table(settings.user_models_file),
    )
    busters = [f for f in findings if f.buster]
    if json:
        _render.json_out(
            {"findings": [dataclasses.asdict(f) for f in findings], "cache_busters": len(busters)}
        )
    else:
        for f in findings:
            mark = "cache-buster" if f.buster else "note"
            _render.line(f"{mark}: {f.ref}: {f.message} [{f.code}]")
        if not findings:
            _render.line("no cache-busters found")
    if busters:
        raise typer.Exit(1)
