"""``tokenomy import claude-code``: Claude Code transcripts into the ledger.

Logic: :func:`tokenomy.analysis.importer.import_claude_code`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tokenomy.cli import _render
from tokenomy.cli._app import app

if TYPE_CHECKING:
    from tokenomy.analysis.importer import ImportSummary

import_app = typer.Typer(
    name="import",
    help="Import usage recorded by other tools into the ledger.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(import_app)


@import_app.command("claude-code")
def claude_code(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Transcript folders or files (default: ~/.config/claude and ~/.claude, "
            "or the folders in CLAUDE_CONFIG_DIR).",
            show_default=False,
        ),
    ] = None,
    config_dirs: Annotated[
        str | None,
        typer.Option(
            "--config-dir",
            envvar="CLAUDE_CONFIG_DIR",
            help="Claude config folders, comma-separated (default: $CLAUDE_CONFIG_DIR).",
            show_default=False,
        ),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Read Claude Code transcripts (sessions, sub-agents, compactions) into the ledger.

    A second run reads only what was appended since the first.
    """
    from datetime import UTC, datetime

    from tokenomy.analysis.importer import import_claude_code
    from tokenomy.analysis.transcripts import default_roots
    from tokenomy.config import load_settings
    from tokenomy.data import load_table
    from tokenomy.wiring import open_ledger

    settings = load_settings()
    roots = list(paths) if paths else default_roots(home=Path.home(), config_dirs=config_dirs)
    table = load_table(settings.user_models_file)
    with open_ledger(settings) as ledger, _render.status("importing") as update:
        summary = import_claude_code(
            ledger,
            roots,
            table=table,
            now=datetime.now(UTC),
            progress=lambda done, total, name: update(f"{done}/{total} {name}"),
        )
        where = ledger.display
    if json:
        _render.json_out({"ledger": where, **_summary_json(summary)})
    else:
        _render_summary(summary, where)
    if not summary.useful:
        raise typer.Exit(1)


def _summary_json(s: ImportSummary) -> dict[str, Any]:
    return {
        "roots": list(s.roots),
        "missing_roots": list(s.missing_roots),
        "files": s.files,
        "files_read": s.files_read,
        "files_unchanged": s.files_unchanged,
        "files_reread": s.files_reread,
        "unreadable": [{"path": p, "reason": r} for p, r in s.unreadable],
        "bytes_read": s.bytes_read,
        "lines_read": s.lines_read,
        "calls": s.calls,
        "calls_updated": s.calls_updated,
        "duplicates": s.duplicates,
        "sidechain_replays": s.sidechain_replays,
        "synthetic": s.synthetic,
        "events": s.events,
        "runs": s.runs,
        "bad_lines": s.bad_lines,
        "bad_examples": [
            {"path": b.path, "line": b.line, "reason": b.reason} for b in s.bad_examples
        ],
        "pending_tails": s.pending_tails,
        "unknown_models": s.unknown_models,
        "cost_usd": s.cost_usd,
        "elapsed_s": round(s.elapsed_s, 3),
        "useful": s.useful,
    }


def _render_summary(s: ImportSummary, where: str) -> None:
    for root in s.missing_roots:
        _render.warn(f"no Claude Code transcripts in {root} (it does not exist or holds none)")
    if not s.files:
        _render.line(
            "No transcripts found. Claude Code keeps them in ~/.claude/projects (or "
            "~/.config/claude/projects, or the folders in CLAUDE_CONFIG_DIR); pass a folder "
            "to read another place: tokenomy import claude-code PATH"
        )
        return
    mb = s.bytes_read / 1e6
    _render.line(
        f"Imported {s.calls:,} calls ({s.calls_updated:,} updated) from {s.files_read:,} of "
        f"{s.files:,} files ({mb:,.1f} MB, {s.elapsed_s:.2f} s) into {where}; "
        f"{s.files_unchanged:,} files unchanged since the last import."
    )
    if s.calls or s.calls_updated or s.events:
        _render.line(
            f"Cost of the imported calls: {_render.usd(s.cost_usd)}; {s.runs:,} runs written, "
            f"{s.events:,} compaction events."
        )
    skipped = [
        (s.duplicates, "duplicate lines of one response (most complete usage kept)"),
        (s.sidechain_replays, "sidechain replays of main-conversation messages"),
        (s.synthetic, "messages Claude Code made up locally (<synthetic>, no cost)"),
        (s.pending_tails, "unfinished last lines (being written; read next time)"),
        (s.files_reread, "files rotated or rewritten since the last import (read again)"),
    ]
    for n, what in skipped:
        if n:
            _render.line(f"  skipped {n:,} {what}")
    for model, n in sorted(s.unknown_models.items()):
        _render.warn(
            f"{n:,} calls of model {model!r} are unpriced (not in the model table); "
            "add it to your models file ('tokenomy prices --path' prints where)"
        )
    for path, reason in s.unreadable:
        _render.warn(f"cannot read {path}: {reason}")
    if s.bad_lines:
        _render.warn(f"{s.bad_lines:,} lines could not be read and were skipped:")
        for b in s.bad_examples:
            _render.line(f"  {b.path}:{b.line}: {b.reason}")
        if s.bad_lines > len(s.bad_examples):
            _render.line(f"  … and {s.bad_lines - len(s.bad_examples):,} more")
