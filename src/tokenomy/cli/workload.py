"""``tokenomy workload list|run`` and ``tokenomy demo``."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import typer

from tokenomy.cli import _render
from tokenomy.cli._app import app
from tokenomy.config import load_settings
from tokenomy.errors import LedgerError

if TYPE_CHECKING:  # the workloads pull in the SDK and the emulator: import them when used
    from tokenomy.ports import UsageSink
    from tokenomy.workloads.demo import DemoRow
    from tokenomy.workloads.runner import Config, WorkloadResult

CONFIGS: tuple[Config, ...] = ("naive", "cache", "full")

workload_app = typer.Typer(
    help="Reference agent workloads, played out on the emulator.", no_args_is_help=True
)
app.add_typer(workload_app, name="workload")

ConfigOpt = Annotated[str, typer.Option("--config", "-c", help="naive, cache or full.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@workload_app.command("list")
def list_cmd(json: JsonOpt = False) -> None:
    """The reference workloads."""
    from tokenomy.workloads import reference_workloads

    ws = reference_workloads()
    if json:
        _render.json_out([{"name": w.name, "title": w.title, "model": w.model} for w in ws])
        return
    _render.table(None, ["name", "model", "what"], [[w.name, w.model, w.title] for w in ws])


def _result_json(r: WorkloadResult, naive_usd: Decimal | None = None) -> dict[str, Any]:
    from tokenomy.workloads.demo import saving

    return {
        "workload": r.workload,
        "config": r.config,
        "mode": r.mode,
        "calls": r.calls,
        "cost_usd": r.cost_usd,
        "ideal_usd": r.ideal_usd,
        "cache_efficiency": r.efficiency,
        "cache_hit_rate": r.hit_rate,
        "saving_vs_naive": saving(naive_usd, r.cost_usd) if naive_usd is not None else None,
        "success": r.success,
        "failures": list(r.failures),
        "emulated_s": r.emulated_s,
        "predictions_agree": r.predictions_agree,
        "predictions_checked": r.predictions_checked,
        "run_id": r.run_id,
    }


def _sink() -> UsageSink | None:
    """The user's ledger, so that `tokenomy report` shows the runs; None if it cannot open."""
    from tokenomy.wiring import open_ledger

    try:
        return open_ledger(load_settings()).writer()
    except LedgerError as exc:
        _render.warn(f"runs are not recorded: {exc}")
        return None


@workload_app.command("run")
def run_cmd(
    workload: Annotated[str, typer.Argument(help="A reference workload's name or a YAML file.")],
    config: ConfigOpt = "cache",
    json: JsonOpt = False,
    no_latency: Annotated[
        bool, typer.Option("--no-latency", help="Turn the latency model off.")
    ] = False,
) -> None:
    """Play one workload through the pipeline against an in-process emulator."""
    from tokenomy.workloads import find_workload
    from tokenomy.workloads.demo import DemoRow
    from tokenomy.workloads.runner import run_workload

    w = find_workload(workload)
    chosen = next((c for c in CONFIGS if c == config), None)
    if chosen is None:
        raise typer.BadParameter(f"{config!r}: choose naive, cache or full", param_hint="--config")
    sink = _sink()
    try:
        r = anyio.run(lambda: run_workload(w, config=chosen, sink=sink, latency=not no_latency))
    finally:
        if sink is not None:
            sink.close()
    if json:
        _render.json_out(_result_json(r))
    else:
        _render_rows([DemoRow(result=r, naive_usd=Decimal(0))], show_saving=False)
        for f in r.failures:
            _render.warn(f"check failed: {f}")
    if not r.success:
        raise typer.Exit(1)


def _pct(x: Decimal | float | None) -> str:
    return "—" if x is None else f"{float(x):.1%}"


def _render_rows(rows: list[DemoRow], *, show_saving: bool = True) -> None:
    cols = [
        "workload",
        "config",
        "calls",
        "cost",
        "saving vs naive",
        "cache efficiency",
        "cache hit rate",
        "success",
        "emulated time",
    ]
    if not show_saving:
        cols.remove("saving vs naive")
    out = []
    for row in rows:
        r = row.result
        cells: list[Any] = [
            r.workload,
            r.config + (" (batch)" if r.mode == "batch" else ""),
            r.calls,
            _render.usd(r.cost_usd),
        ]
        if show_saving:
            cells.append("—" if r.config == "naive" else _pct(row.saving))
        eff = r.efficiency
        cells += [
            "—" if eff is None else f"{float(eff):.3f}",
            _pct(r.hit_rate),
            "yes" if r.success else "NO",
            f"{r.emulated_s / 60:.1f} min",
        ]
        out.append(cells)
    _render.table(
        None,
        cols,
        out,
        right=[
            "calls",
            "cost",
            "saving vs naive",
            "cache efficiency",
            "cache hit rate",
            "emulated time",
        ],
    )


@app.command("demo")
def demo(
    json: JsonOpt = False,
    config: Annotated[
        list[str] | None, typer.Option("--config", "-c", help="Only these configurations.")
    ] = None,
    workload: Annotated[
        list[str] | None, typer.Option("--workload", "-w", help="Only these workloads.")
    ] = None,
) -> None:
    """Every reference workload in every configuration, on the built-in emulator (no API key)."""
    from tokenomy.workloads import find_workload
    from tokenomy.workloads.demo import run_all, saving

    configs: list[Config] = [c for c in CONFIGS if not config or c in config]
    ws = [find_workload(n) for n in workload] if workload else None
    sink = _sink()
    try:
        with _render.status("running the reference workloads on the emulator…") as update:
            rows = run_all(workloads=ws, configs=configs, sink=sink, progress=update)
    finally:
        if sink is not None:
            sink.close()
    report = _demo_report(rows) if sink is not None else None
    if json:
        _render.json_out(
            {
                "results": [_result_json(r.result, r.naive_usd) for r in rows],
                "html_report": str(report) if report else None,
            }
        )
        return
    _render_rows(rows)
    failed = [r for r in rows if not r.result.success]
    for r in failed:
        for f in r.result.failures[:3]:
            _render.warn(f"{r.result.workload} ({r.result.config}): {f}")
    naive = sum((r.result.cost_usd for r in rows if r.result.config == "naive"), Decimal(0))
    cached = sum((r.result.cost_usd for r in rows if r.result.config == "cache"), Decimal(0))
    _render.line()
    _render.paragraph(
        "What you just saw: each workload is a scripted agent run (tool calls, long documents, "
        "sub-agents, slow humans, bulk tickets, a Claude-Code-shaped session) played out by "
        "tokenomy's own pipeline against its offline emulator of the Anthropic API, which caches "
        "and bills like the real one. 'naive' sends every call with no cache markers; 'cache' lets "
        "tokenomy place breakpoints, pick TTLs and keep the prefix byte-stable — the model sees "
        "exactly the same content; 'full' adds levers such as Message Batches for work nobody "
        f"waits on. Across all workloads caching cut ${naive:.2f} to ${cached:.2f}"
        f" ({_pct(saving(naive, cached))} saved). Cache efficiency is the ideal cost (the lower "
        "bound for caching without changing content) over the actual cost; success means the "
        "final answers held every planted fact. To do the same with your own agent, replace "
        "`anthropic.Anthropic(...)` with `tokenomy.Anthropic(...)` or point it at `tokenomy "
        "gateway`, then run `tokenomy report` and `tokenomy doctor`."
    )
    if report is not None:
        _render.line()
        _render.line(f"HTML report of the founding run, turn by turn: {report}")
        _render.line("More: tokenomy report · tokenomy report --run RUN_ID · tokenomy doctor")
    if failed:
        raise typer.Exit(1)


def _demo_report(rows: list[DemoRow]) -> Path | None:
    """An HTML report of the founding workload's cached run, in the data dir (or None)."""
    from datetime import UTC, datetime

    from tokenomy.analysis.html import write_report
    from tokenomy.data import load_table
    from tokenomy.errors import TokenomyError
    from tokenomy.wiring import open_ledger

    cached = [
        r.result for r in rows if r.result.config == "cache" and r.result.mode == "interactive"
    ]
    if not cached:
        return None
    chosen = next((r for r in cached if r.workload == "founding-12-turn"), cached[0])
    settings = load_settings()
    path = settings.data_dir / "demo-report.html"
    try:
        with open_ledger(settings) as ledger:
            write_report(
                ledger,
                path,
                table=load_table(settings.user_models_file),
                now=datetime.now(UTC),
                run_id=chosen.run_id,
            )
    except TokenomyError as exc:
        _render.warn(f"no HTML report: {exc}")
        return None
    return path
