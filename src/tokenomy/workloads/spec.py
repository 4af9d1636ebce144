"""The workload file format (``docs/workloads.md``): one YAML file describes one agent run.

Loading validates every field; a mistake is reported with the field's path and the line it is
on (``founding.yaml:14: conversation[0].artifacts.count: Input should be greater than 0``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tokenomy.errors import WorkloadError

__all__ = [
    "ArtifactsSpec",
    "ChecksSpec",
    "DocumentSpec",
    "ItemsSpec",
    "SubagentsSpec",
    "SystemSpec",
    "ToolsSpec",
    "TurnSpec",
    "Workload",
    "load_workload",
    "parse_workload",
]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SystemSpec(_Spec):
    """The system prompt: given text, or generated prose of about ``tokens`` tokens."""

    text: str | None = None
    tokens: int = Field(default=0, ge=0)
    # "claude-code": three blocks as Claude Code sends them (billing line, identity, prompt)
    shape: Literal["plain", "claude-code"] = "plain"


class ToolsSpec(_Spec):
    """Tool definitions: ``count`` tools of about ``tokens`` tokens in all."""

    count: int = Field(default=0, ge=0)
    tokens: int = Field(default=0, ge=0)
    # the tool the facts brain calls to read an artifact (generated as the first tool)
    fetch_tool: str | None = "fetch_record"


class ArtifactsSpec(_Spec):
    """Artifacts referenced by a user turn and fetched through the fetch tool, one per call."""

    count: int = Field(ge=1)
    tokens: int = Field(ge=1)
    format: Literal["json", "prose", "code", "csv"] = "json"
    facts_each: int = Field(default=1, ge=1)


class DocumentSpec(_Spec):
    """A long document sent with every call (e.g. a 40-page policy), with planted facts."""

    pages: int = Field(ge=1)
    tokens_per_page: int = Field(default=500, ge=1)
    facts: int = Field(default=8, ge=1)
    where: Literal["system", "first_user"] = "system"


class TurnSpec(_Spec):
    """One user turn; the agent loop then runs until the model stops calling tools."""

    user: str = ""
    artifacts: ArtifactsSpec | None = None
    # which planted facts this turn asks for: "turn" (the facts of this turn's artifacts and
    # sub-agents), "all" (every fact planted so far), or a list of document fact numbers (1-based)
    ask: Literal["turn", "all"] | list[int] = "turn"
    # a role:"system" message appended after the user message (as Claude Code does)
    trailing_system: str | None = None


class SubagentsSpec(_Spec):
    """Sub-agents the first turn fans out to, through a ``run_subagent`` tool."""

    count: int = Field(ge=1)
    artifacts_each: int = Field(default=2, ge=1)
    tokens: int = Field(default=2000, ge=1)
    format: Literal["json", "prose", "code", "csv"] = "prose"
    parallel: bool = True


class ItemsSpec(_Spec):
    """Independent one-call items (bulk work): each asks for the label planted in it."""

    count: int = Field(ge=1)
    tokens: int = Field(default=300, ge=1)
    labels: list[str] = Field(default_factory=lambda: ["billing", "bug", "account", "feature"])


class ChecksSpec(_Spec):
    """What success means."""

    answers_contain_facts: bool = True
    tool_called: str | None = None
    min_tool_calls: int = Field(default=0, ge=0)


class Workload(_Spec):
    """One reference agent run."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    description: str = ""
    model: str = "claude-sonnet-4-6"
    seed: int = 1
    max_tokens: int = Field(default=512, ge=1)
    system: SystemSpec = SystemSpec()
    tools: ToolsSpec = ToolsSpec()
    document: DocumentSpec | None = None
    conversation: list[TurnSpec] = Field(default_factory=list)
    subagents: SubagentsSpec | None = None
    items: ItemsSpec | None = None
    # seconds between the calls of a turn (tool round trips) and between user turns
    gap_s: float = Field(default=10.0, ge=0)
    human_gap_s: float = Field(default=30.0, ge=0)
    # what a user who knows the traffic tells the planner (docs/design/caching.md)
    expected_gap_s: float | None = Field(default=None, ge=0)
    # "claude-code": the client sets its own breakpoints as Claude Code does
    caller_cache: Literal["none", "claude-code"] = "none"
    # interactive work can be sent through Message Batches in the `full` configuration
    batchable: bool = False
    # the TTL of the batch job's shared-prefix breakpoint (the batch runner's default is 1h;
    # 5m is right when the whole job is one batch, a steady stream that keeps 5m entries alive)
    batch_cache_ttl: Literal["1h", "5m", "off"] = "1h"
    checks: ChecksSpec = ChecksSpec()

    @model_validator(mode="after")
    def _shape(self) -> Workload:
        if self.items is None and not self.conversation:
            raise ValueError(
                "a workload needs a 'conversation' (agent turns) or 'items' (bulk work)"
            )
        if self.items is not None and self.conversation:
            raise ValueError("'items' and 'conversation' cannot be combined in one workload")
        needs_fetch = any(t.artifacts for t in self.conversation) or self.subagents is not None
        if needs_fetch and not self.tools.fetch_tool:
            raise ValueError(
                "artifacts and sub-agents are fetched through tools.fetch_tool: set it"
            )
        if self.tools.fetch_tool and self.tools.count == 0 and needs_fetch:
            raise ValueError("tools.count must be at least 1 to offer the fetch tool")
        return self


def parse_workload(text: str, *, source: str = "<workload>") -> Workload:
    """Parse and validate a workload; errors name the field and the line."""
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise WorkloadError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise WorkloadError(
            f"{source}: a workload is a YAML mapping (name, title, conversation, …)"
        )
    try:
        return Workload.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        path = _path(loc)
        line = _line_of(node, loc)
        where = f"{source}:{line}" if line is not None else source
        return _raise(f"{where}: {path or 'workload'}: {err['msg']}")


def _raise(message: str) -> Workload:
    raise WorkloadError(message)


def _path(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(node: Any, loc: Sequence[Any]) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (or of its nearest existing parent)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if k.value == part), None)
            if nxt is None:
                return line
            node = nxt
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
        else:
            return line
        line = node.start_mark.line + 1
    return line


def load_workload(path: Path) -> Workload:
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise WorkloadError(f"workload file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise WorkloadError(f"cannot read workload file {str(path)!r}: {exc.strerror}") from None
    return parse_workload(text, source=path.name)
