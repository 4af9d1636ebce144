"""Brains: what the emulated model says.

``echo`` (default), ``facts`` and any ``script`` scenario loaded from a file. A request picks
one with the ``x-tokenomy-brain: NAME`` header; otherwise the server's default applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

from tokenomy.emulator.brains.base import (
    Brain,
    BrainRequest,
    OutBlock,
    Reply,
    StopReason,
    TextOut,
    ThinkingOut,
    ToolUseOut,
)
from tokenomy.emulator.brains.echo import EchoBrain
from tokenomy.emulator.brains.facts import FactsBrain
from tokenomy.emulator.brains.script import ScriptBrain, load_script, parse_script
from tokenomy.errors import ConfigError

__all__ = [
    "BRAIN_HEADER",
    "Brain",
    "BrainRequest",
    "EchoBrain",
    "FactsBrain",
    "OutBlock",
    "Reply",
    "ScriptBrain",
    "StopReason",
    "TextOut",
    "ThinkingOut",
    "ToolUseOut",
    "builtin_brains",
    "load_brain",
    "load_script",
    "parse_script",
]

BRAIN_HEADER: Final = "x-tokenomy-brain"


def builtin_brains() -> dict[str, Brain]:
    """The brains every emulator has, by name."""
    return {"echo": EchoBrain(), "facts": FactsBrain()}


def load_brain(spec: str, *, known: Mapping[str, Brain] | None = None) -> Brain:
    """A brain by name (built-in or in ``known``), or a script brain from a scenario file."""
    brains = {**builtin_brains(), **(known or {})}
    if spec in brains:
        return brains[spec]
    path = Path(spec)
    if path.suffix in (".yaml", ".yml", ".json") or path.exists():
        return load_script(path)
    raise ConfigError(
        f"unknown brain {spec!r}; use one of {', '.join(sorted(brains))} "
        "or the path of a scenario file (.yaml/.json)"
    )
