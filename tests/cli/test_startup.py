"""The CLI starts fast: importing it loads no heavy library until a command needs it."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = (
    "anthropic",
    "sqlalchemy",
    "alembic",
    "starlette",
    "uvicorn",
    "httpx2",
    "plotly",
    "psycopg",
    "redis",
    "prometheus_client",
)


def test_importing_the_cli_loads_no_heavy_library() -> None:
    code = (
        "import sys, tokenomy.cli; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]", (
        f"`import tokenomy.cli` loaded {out.strip()}: import heavy modules inside the command "
        "function that needs them (see src/tokenomy/cli/workload.py)"
    )


def test_importing_the_cli_loads_no_command_module() -> None:
    code = (
        "import sys, tokenomy.cli; "
        "print(sorted(m for m in sys.modules if m.startswith('tokenomy.cli.') "
        "and m not in ('tokenomy.cli._app', 'tokenomy.cli._render')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]", f"`import tokenomy.cli` imported command modules: {out.strip()}"


def test_a_command_loads_only_its_own_module() -> None:
    code = (
        "import sys; from tokenomy.cli import main; rc = main(['prices', '--help']); "
        "print(rc, sorted(m for m in sys.modules if m.startswith('tokenomy.cli.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == (
        "0 ['tokenomy.cli._app', 'tokenomy.cli._render', 'tokenomy.cli.pricing']"
    )


def test_every_command_is_listed_where_its_module_registers_it() -> None:
    """``_app.COMMANDS`` is the whole truth: each module registers exactly the names listed."""
    import importlib

    import typer

    from tokenomy.cli._app import COMMANDS, app

    for module in sorted(set(COMMANDS.values())):
        importlib.import_module(f"tokenomy.cli.{module}")
    registered = typer.main.get_group(app).commands
    assert sorted(registered) == sorted(COMMANDS)


def test_help_lists_every_command_with_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    from tokenomy.cli import main
    from tokenomy.cli._app import COMMANDS

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    listed = out.split("Commands:", 1)[1].splitlines()
    names = [ln.split()[0] for ln in listed if ln.strip()]
    assert names == list(COMMANDS)
    assert all(len(ln.split()) > 2 for ln in listed if ln.strip()), "a command lost its help"


def test_unknown_command_is_a_usage_error_not_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tokenomy.cli import main

    assert main(["no-such-command"]) == 2
    assert "No such command 'no-such-command'" in capsys.readouterr().err
