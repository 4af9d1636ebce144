"""Turn a :class:`~tokenomy.workloads.spec.Workload` into concrete requests' parts.

Pure and deterministic: the same workload yields byte-identical system prompts, tools,
artifacts and messages on every run, so the only thing a configuration changes is how the
calls are sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tokenomy.workloads.generate import (
    artifact_body,
    fact_marker,
    facts_for,
    prose,
    tool_definitions,
)
from tokenomy.workloads.spec import Workload

__all__ = ["Context", "build_context", "item_message", "mark_newest", "turn_message"]

EPHEMERAL = {"type": "ephemeral"}


@dataclass(slots=True)
class Context:
    """Everything a workload's calls are made of."""

    workload: Workload
    caller_markers: bool
    system: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    artifacts: dict[str, str] = field(default_factory=dict)
    subagent_tasks: dict[str, str] = field(default_factory=dict)
    turns: list[list[dict[str, Any]]] = field(default_factory=list)
    expected: list[dict[str, str]] = field(default_factory=list)
    items: list[tuple[str, dict[str, str]]] = field(default_factory=list)


def _refs(ids_keys: list[tuple[str, list[str]]]) -> str:
    return " ".join(f"⟦ref:{i}|{','.join(keys)}⟧" for i, keys in ids_keys)


def _ask(keys: list[str]) -> str:
    return f"⟦ask:{','.join(keys)}⟧"


def build_context(w: Workload, *, caller_markers: bool) -> Context:
    """Generate the system prompt, tools, artifacts, turns and expected answers of ``w``."""
    seed = w.seed
    doc_facts = facts_for("doc", w.document.facts, seed=seed) if w.document else []
    doc_text = ""
    if w.document is not None:
        d = w.document
        pages = [prose(d.tokens_per_page, seed=f"page:{seed}:{p}") for p in range(d.pages)]
        # spread the facts over the pages, one per page from the middle of the document on
        for n, (k, v) in enumerate(doc_facts):
            page = (d.pages // 2 + n * max(1, d.pages // (2 * len(doc_facts)))) % d.pages
            pages[page] += " " + fact_marker(k, v)
        doc_text = "\n\n".join(f"Page {p + 1}\n{text}" for p, text in enumerate(pages))
    system = _system(
        w, doc_text if w.document and w.document.where == "system" else "", caller_markers
    )
    extra = ["run_subagent"] if w.subagents else []
    tools = (
        tool_definitions(
            w.tools.count,
            n_tokens=w.tools.tokens,
            seed=seed,
            fetch_tool=w.tools.fetch_tool,
            extra=extra,
        )
        if w.tools.count
        else []
    )
    ctx = Context(workload=w, caller_markers=caller_markers, system=system, tools=tools)
    planted: dict[str, str] = dict(doc_facts)
    for t, turn in enumerate(w.conversation):
        parts = [turn.user or f"Turn {t + 1}."]
        if t == 0 and w.document is not None and w.document.where == "first_user":
            parts.insert(0, doc_text)
        turn_facts: dict[str, str] = {}
        if t == 0 and w.subagents is not None:
            refs = []
            for agent_no in range(1, w.subagents.count + 1):
                agent = f"agent-{agent_no}"
                keys_vals: dict[str, str] = {}
                sub_refs = []
                for rec_no in range(1, w.subagents.artifacts_each + 1):
                    art = f"{agent}-record-{rec_no}"
                    facts = facts_for(art, 1, seed=seed)
                    ctx.artifacts[art] = artifact_body(
                        art,
                        n_tokens=w.subagents.tokens,
                        fmt=w.subagents.format,
                        facts=facts,
                        seed=seed,
                    )
                    sub_refs.append((art, [f[0] for f in facts]))
                    keys_vals.update(facts)
                ctx.subagent_tasks[agent] = (
                    f"You are {agent}. Read these records and report what they say. "
                    f"{_refs(sub_refs)}\n{_ask(list(keys_vals))}"
                )
                refs.append((agent, list(keys_vals)))
                turn_facts.update(keys_vals)
            parts.append("Delegate the research to the sub-agents: " + _refs(refs))
        if turn.artifacts is not None:
            spec = turn.artifacts
            refs = []
            for n in range(spec.count):
                art = f"record-{t + 1}-{n + 1}"
                facts = facts_for(art, spec.facts_each, seed=seed)
                ctx.artifacts[art] = artifact_body(
                    art, n_tokens=spec.tokens, fmt=spec.format, facts=facts, seed=seed
                )
                refs.append((art, [f[0] for f in facts]))
                turn_facts.update(facts)
            parts.append("The records you need: " + _refs(refs))
        planted.update(turn_facts)
        if isinstance(turn.ask, list):
            asked = {
                doc_facts[n - 1][0]: doc_facts[n - 1][1]
                for n in turn.ask
                if 0 < n <= len(doc_facts)
            }
        elif turn.ask == "all":
            asked = dict(planted)
        else:
            asked = turn_facts
        if asked:
            parts.append(_ask(list(asked)))
        messages: list[dict[str, Any]] = [{"role": "user", "content": "\n".join(parts)}]
        if turn.trailing_system:
            messages.append({"role": "system", "content": turn.trailing_system})
        ctx.turns.append(messages)
        ctx.expected.append(asked)
    if w.items is not None:
        labels = w.items.labels
        for i in range(w.items.count):
            label = labels[(i * 7 + seed) % len(labels)]
            text = prose(w.items.tokens, seed=f"ticket:{seed}:{i}")
            half = len(text) // 2
            body = (
                f"Ticket #{i + 1}: {text[:half]} {fact_marker('label', label)} {text[half:]}\n"
                f"Classify this ticket. {_ask(['label'])}"
            )
            ctx.items.append((body, {"label": label}))
    return ctx


def _system(w: Workload, doc_text: str, caller_markers: bool) -> list[dict[str, Any]]:
    s = w.system
    main = s.text if s.text is not None else prose(s.tokens, seed=f"system:{w.seed}")
    blocks: list[dict[str, Any]]
    if s.shape == "claude-code":
        blocks = [
            # Claude Code's billing line: no marker, a suffix that differs between sessions
            {
                "type": "text",
                "text": "x-anthropic-billing-header: "
                f"cc_version=2.1.197.{w.seed:03x}; cc_entrypoint=cli;",
            },
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
            {"type": "text", "text": main},
        ]
        if caller_markers and w.caller_cache == "claude-code":
            blocks[1]["cache_control"] = dict(EPHEMERAL)
            blocks[2]["cache_control"] = dict(EPHEMERAL)
    else:
        blocks = [{"type": "text", "text": main}] if main else []
    if doc_text:
        blocks.append({"type": "text", "text": doc_text})
    return blocks


def turn_message(ctx: Context, t: int) -> list[dict[str, Any]]:
    """The message(s) a user turn adds (a copy: callers append to their transcript)."""
    return [dict(m) for m in ctx.turns[t]]


def item_message(ctx: Context, i: int) -> dict[str, Any]:
    return {"role": "user", "content": ctx.items[i][0]}


def mark_newest(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Claude Code's third marker: on the last content block of the newest message.

    As Claude Code does, a plain-string message becomes a one-block list to carry it — and
    comes back as a plain string on the next turn (history is not byte-stable across turns).
    """
    if not messages:
        return messages
    out = list(messages)
    last = dict(out[-1])
    content = last.get("content")
    if isinstance(content, str):
        last["content"] = [{"type": "text", "text": content, "cache_control": dict(EPHEMERAL)}]
    elif isinstance(content, list) and content:
        blocks = list(content)
        blocks[-1] = {**blocks[-1], "cache_control": dict(EPHEMERAL)}
        last["content"] = blocks
    out[-1] = last
    return out
