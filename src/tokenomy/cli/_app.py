"""The root Typer application that command modules attach to."""

from __future__ import annotations

from typing import Annotated

import typer

from tokenomy._version import __version__
from tokenomy.cli import _render

app = typer.Typer(
    name="tokenomy",
    help="Make Claude agent runs cheap and fast without making them dumber — and prove it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        _render.line(f"tokenomy {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """tokenomy: measure, cache, batch, trim and route Claude API calls."""
