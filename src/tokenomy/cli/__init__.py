"""The ``tokenomy`` command: thin. Each command parses, calls one library function, renders.

Every command group lives in its own module and registers itself on :data:`app`.
``_render`` is the only module that prints.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

# Command modules register themselves on `app` when imported; keep this list sorted.
from tokenomy.cli import batch as _batch  # noqa: F401
from tokenomy.cli import doctor as _doctor  # noqa: F401
from tokenomy.cli import emulator as _emulator  # noqa: F401
from tokenomy.cli import gateway as _gateway  # noqa: F401
from tokenomy.cli import importer as _importer  # noqa: F401
from tokenomy.cli import keys as _keys  # noqa: F401
from tokenomy.cli import pricing as _pricing  # noqa: F401
from tokenomy.cli import report as _report  # noqa: F401
from tokenomy.cli import workload as _workload  # noqa: F401
from tokenomy.cli._app import app
from tokenomy.cli._render import run_app

__all__ = ["app", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    return run_app(app, list(sys.argv[1:] if argv is None else argv))
