"""The ``tokenomy`` command: thin. Each command parses, calls one library function, renders.

Every command group lives in its own module and registers itself on :data:`app`; the app
imports only the module of the command being run (``_app.COMMANDS``).
``_render`` is the only module that prints.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tokenomy.cli._app import app
from tokenomy.cli._render import run_app

__all__ = ["app", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    return run_app(app, list(sys.argv[1:] if argv is None else argv))
