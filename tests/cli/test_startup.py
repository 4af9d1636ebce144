"""The CLI starts fast: importing it loads no heavy library until a command needs it."""

from __future__ import annotations

import subprocess
import sys

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
