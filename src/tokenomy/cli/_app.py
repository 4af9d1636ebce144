"""The root Typer application that command modules attach to — loaded one command at a time.

``tokenomy`` imports only the module of the command being run: :data:`COMMANDS` names the
module behind each command, and the root group imports it when click asks for that command.
``tokenomy --help`` asks for every command, so it imports them all (to show their help).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Annotated

import typer
from typer.core import TyperGroup

from tokenomy._version import __version__
from tokenomy.cli import _render

if TYPE_CHECKING:
    from typer import _click as click

# command -> the module of tokenomy.cli that registers it, in the order `--help` lists them
COMMANDS: dict[str, str] = {
    "doctor": "doctor",
    "lint": "doctor",
    "emulator": "emulator",
    "gateway": "gateway",
    "prices": "pricing",
    "cost": "pricing",
    "report": "report",
    "demo": "workload",
    "batch": "batch",
    "import": "importer",
    "keys": "keys",
    "workload": "workload",
}


class _LazyGroup(TyperGroup):
    """The root group: a command's module is imported the first time click asks for it."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *(name for name in self.commands if name not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(f"tokenomy.cli.{COMMANDS[cmd_name]}")
            # build the click commands of everything registered so far (this module's)
            for name, command in typer.main.get_group(app).commands.items():
                self.commands.setdefault(name, command)
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    name="tokenomy",
    cls=_LazyGroup,
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
