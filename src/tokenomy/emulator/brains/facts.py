"""``facts``: a careful model that answers only from what its context holds.

A workload plants facts in a context with stable markers and asks for some of them; the final
answer shows whether context trimming lost anything the task needed. Markers (exact syntax in
``docs/emulator.md``)::

    ⟦fact:KEY=VALUE⟧        a fact; a later one with the same KEY wins (an update)
    ⟦ref:ID⟧                a reference to an artifact that is not necessarily in context
    ⟦ref:ID|KEY1,KEY2⟧      … and the keys it holds
    ⟦artifact:ID⟧           opens an artifact's body: the artifact is in context
    ⟦ask:KEY1,KEY2⟧         the question: the last one in the conversation counts

KEY is ``[A-Za-z0-9_.-]+``; ID is anything without whitespace, ``|`` or the brackets; VALUE
is anything up to the closing bracket, trimmed.

Each turn: collect the facts, references and artifacts in the system prompt and every
message; take the last question. If every asked key is known, answer. Otherwise, if a
referenced artifact that is not in context may hold a missing key (its ``ref`` lists the key,
or lists no keys while no other reference claims it) and the request offers a fetch tool,
call it for each such artifact (one per turn with ``disable_parallel_tool_use``); an artifact
whose earlier fetch already came back without its body is not fetched again. Otherwise
answer, with ``unknown`` for what is missing. The answer holds one ``⟦answer:KEY=VALUE⟧`` line
per asked key, in the order asked.

The fetch tool: the brain's ``fetch_tool`` option, else the request header
``x-tokenomy-fetch-tool``, else the first tool whose name contains ``fetch``. Its input is
generated from the tool's ``input_schema`` with the artifact id in the first of the
properties ``id``, ``artifact_id``, ``artifact``, ``ref``, ``key``, ``name``, ``path``,
``uri``, ``url`` it has (else its first string property, else ``id``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from tokenomy.emulator.brains.base import (
    BrainRequest,
    OutBlock,
    Reply,
    TextOut,
    ToolUseOut,
)
from tokenomy.emulator.brains.schema import sample_from_schema

__all__ = ["FETCH_TOOL_HEADER", "FactsBrain", "Knowledge", "read_knowledge"]

FETCH_TOOL_HEADER: Final = "x-tokenomy-fetch-tool"
UNKNOWN: Final = "unknown"
_KEY = r"[A-Za-z0-9_.-]+"
_ID = r"[^\s|⟦⟧]+"
FACT_RE: Final = re.compile(rf"⟦fact:({_KEY})=([^⟧]*)⟧")
REF_RE: Final = re.compile(rf"⟦ref:({_ID})(?:\|([^⟧]*))?⟧")
ARTIFACT_RE: Final = re.compile(rf"⟦artifact:({_ID})⟧")
ASK_RE: Final = re.compile(r"⟦ask:([^⟧]*)⟧")
_ID_PROPS: Final = ("id", "artifact_id", "artifact", "ref", "key", "name", "path", "uri", "url")


def _keys(text: str) -> tuple[str, ...]:
    return tuple(k for k in (p.strip() for p in text.split(",")) if re.fullmatch(_KEY, k))


@dataclass(slots=True)
class Knowledge:
    """What one context holds, in the order it was read."""

    facts: dict[str, str] = field(default_factory=dict)
    # artifact id -> the keys its reference says it holds (None: not said)
    refs: dict[str, tuple[str, ...] | None] = field(default_factory=dict)
    artifacts: set[str] = field(default_factory=set)
    question: tuple[str, ...] | None = None

    def read(self, text: str) -> None:
        for m in FACT_RE.finditer(text):
            self.facts[m.group(1)] = m.group(2).strip()
        for m in REF_RE.finditer(text):
            ref_id, listed = m.group(1), m.group(2)
            keys = None if listed is None else _keys(listed)
            known = self.refs.get(ref_id)
            if ref_id not in self.refs or (known is None and keys is not None):
                self.refs[ref_id] = keys
            elif known is not None and keys is not None:
                self.refs[ref_id] = tuple(dict.fromkeys((*known, *keys)))
        for m in ARTIFACT_RE.finditer(text):
            self.artifacts.add(m.group(1))
        asks = ASK_RE.findall(text)
        if asks:
            self.question = _keys(asks[-1])


def read_knowledge(texts: Iterable[str]) -> Knowledge:
    """Scan texts in order for facts, references, artifacts and the last question."""
    k = Knowledge()
    for text in texts:
        if "⟦" in text:
            k.read(text)
    return k


class FactsBrain:
    """Answers from planted facts; fetches referenced artifacts it lacks; never guesses."""

    def __init__(self, *, fetch_tool: str | None = None) -> None:
        self._fetch_tool = fetch_tool

    @property
    def name(self) -> str:
        return "facts"

    def reply(self, request: BrainRequest) -> Reply:
        k = read_knowledge(request.context_texts())
        if not k.question:
            return Reply(
                blocks=(
                    TextOut(
                        f"I see {len(k.facts)} facts in my context. "
                        "Ask for some with ⟦ask:KEY1,KEY2⟧."
                    ),
                )
            )
        missing = [key for key in k.question if key not in k.facts]
        if missing:
            tool = self._find_fetch_tool(request)
            if tool is not None:
                wanted = self._artifacts_to_fetch(request, k, missing, tool_name=str(tool["name"]))
                if request.disable_parallel_tool_use:
                    wanted = wanted[:1]
                if wanted:
                    blocks: list[OutBlock] = [
                        TextOut(f"I need {', '.join(wanted)} to answer; fetching.")
                    ]
                    blocks += [
                        ToolUseOut(name=str(tool["name"]), input=_fetch_input(tool, ref_id))
                        for ref_id in wanted
                    ]
                    return Reply(blocks=tuple(blocks))
        lines = [f"⟦answer:{key}={k.facts.get(key, UNKNOWN)}⟧" for key in k.question]
        found = len(k.question) - len(missing)
        head = f"Answer ({found} of {len(k.question)} known):"
        return Reply(blocks=(TextOut("\n".join([head, *lines])),))

    def _find_fetch_tool(self, request: BrainRequest) -> Mapping[str, Any] | None:
        wanted = self._fetch_tool or request.headers.get(FETCH_TOOL_HEADER)
        for tool in request.tools:
            name = str(tool["name"])
            if (wanted is not None and name == wanted) or (
                wanted is None and "fetch" in name.lower()
            ):
                return tool
        return None

    @staticmethod
    def _artifacts_to_fetch(
        request: BrainRequest, k: Knowledge, missing: list[str], *, tool_name: str
    ) -> list[str]:
        done = _completed_fetches(request, tool_name=tool_name)
        absent = {
            ref_id: keys
            for ref_id, keys in k.refs.items()
            if ref_id not in k.artifacts and ref_id not in done
        }
        claimed = {key for keys in k.refs.values() if keys for key in keys}
        out: list[str] = []
        for ref_id, keys in absent.items():
            # A reference that lists a missing key is needed; one that lists nothing may hold
            # any key no other reference claims.
            if keys is not None:
                needed = any(key in keys for key in missing)
            else:
                needed = any(key not in claimed for key in missing)
            if needed:
                out.append(ref_id)
        return out


def _completed_fetches(request: BrainRequest, *, tool_name: str) -> set[str]:
    """Artifact ids fetched earlier whose tool result is in context (so: fetched, done)."""
    calls: dict[str, set[str]] = {}
    answered: set[str] = set()
    for m in request.messages:
        content = m.get("content")
        if not isinstance(content, list):
            continue
        for b in content:
            if not isinstance(b, Mapping):
                continue
            if b.get("type") == "tool_use" and b.get("name") == tool_name:
                tool_input = b.get("input")
                values = (
                    {v for v in tool_input.values() if isinstance(v, str)}
                    if isinstance(tool_input, Mapping)
                    else set()
                )
                calls[str(b.get("id"))] = values
            elif b.get("type") == "tool_result":
                answered.add(str(b.get("tool_use_id")))
    return {v for call_id, values in calls.items() if call_id in answered for v in values}


def _fetch_input(tool: Mapping[str, Any], ref_id: str) -> dict[str, Any]:
    schema = tool.get("input_schema")
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    props = props if isinstance(props, Mapping) else {}
    target = next((p for p in _ID_PROPS if p in props), None)
    if target is None:
        target = next(
            (p for p, s in props.items() if isinstance(s, Mapping) and s.get("type") == "string"),
            "id",
        )
    value = sample_from_schema(schema, hint=ref_id) if schema else {}
    out = dict(value) if isinstance(value, Mapping) else {}
    out[str(target)] = ref_id
    return out
