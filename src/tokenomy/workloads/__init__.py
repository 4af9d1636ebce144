"""Reference agent workloads and the runner that plays them out (``docs/workloads.md``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from tokenomy.errors import WorkloadError
from tokenomy.workloads.spec import Workload, load_workload, parse_workload

__all__ = ["Workload", "find_workload", "load_workload", "parse_workload", "reference_workloads"]


def reference_workloads() -> list[Workload]:
    """The built-in workloads, in a stable order."""
    folder = resources.files("tokenomy.workloads").joinpath("reference")
    out = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            out.append(parse_workload(entry.read_text("utf-8"), source=entry.name))
    order = [
        "founding-12-turn",
        "ten-step-20k",
        "policy-document",
        "fan-out-5",
        "slow-human",
        "chatty-connector",
        "bulk-tickets",
        "claude-code-session",
    ]
    return sorted(out, key=lambda w: order.index(w.name) if w.name in order else len(order))


def find_workload(name_or_path: str) -> Workload:
    """A reference workload by name, or a workload file by path."""
    for w in reference_workloads():
        if w.name == name_or_path:
            return w
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load_workload(path)
    names = ", ".join(w.name for w in reference_workloads())
    raise WorkloadError(f"no workload {name_or_path!r}: give a file or one of {names}")
