"""Shared by the benchmarks: print a table and keep its latest result in docs/benchmarks.md.

Each benchmark owns one section of ``docs/benchmarks.md``, fenced by
``<!-- bench:NAME -->`` / ``<!-- /bench:NAME -->``; rerunning it replaces only that section,
with the exact command that produced it and the date.
"""

from __future__ import annotations

import json
import platform
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
OUT = ROOT / "bench" / "results"

HEADER = """# Benchmarks

Every number here was produced by a script under `bench/`, run on the machine named in its
section, with the command shown. Ratios are measured side by side in one run: they hold when
the machine's speed drifts; absolute times do not travel between machines.
"""


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "| " + " | ".join(columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join([head, sep, *body])


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) for i, c in enumerate(columns)]
    print(title)
    print("  ".join(str(c).ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)))


def machine() -> str:
    import os

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def publish(name: str, *, title: str, command: str, body_md: str, data: dict[str, Any]) -> None:
    """Replace this benchmark's section of docs/benchmarks.md and write its JSON result."""
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"<!-- bench:{name} -->\n## {title}\n\n"
        f"`{command}` — {stamp}, {machine()}\n\n{body_md.strip()}\n<!-- /bench:{name} -->"
    )
    text = DOC.read_text() if DOC.exists() else HEADER
    pattern = re.compile(
        rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S
    )
    text = (
        pattern.sub(lambda _: section, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + section + "\n"
    )
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)
    print(
        f"\nwrote {DOC.relative_to(ROOT)} (section {name}) and bench/results/{name}.json",
        file=sys.stderr,
    )
