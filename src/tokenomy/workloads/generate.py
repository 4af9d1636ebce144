"""Deterministic content for workloads: prose, JSON records, code, CSV, tool schemas, with
planted facts.

Everything is a pure function of its arguments and a seed, so a workload plays out
identically on every machine. Sizes are in *approximate* tokens (about 4 characters a token
of English prose; JSON and code come out denser) — what matters is that a run's shape is the
one described, and that every planted fact sits where the emulator's ``facts`` brain can find
it (markers documented in ``docs/emulator.md``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import orjson

__all__ = [
    "Fact",
    "artifact_body",
    "fact_marker",
    "facts_for",
    "prose",
    "tool_definitions",
]

Format = Literal["json", "prose", "code", "csv"]
Fact = tuple[str, str]

_WORDS = (
    "the service returned an error after the deploy and the on-call engineer rolled back the "
    "change while the database replica lagged behind the primary because a long migration held "
    "a lock on the orders table so requests queued at the load balancer until the circuit "
    "breaker opened and customers saw timeouts in the checkout flow for about twelve minutes "
    "before traffic recovered once the migration finished and caches warmed again across every "
    "region although the metrics pipeline dropped some samples during the incident window"
).split(" ")
_FIELDS = (
    "id status owner region priority created_at updated_at latency_ms error_rate retries "
    "queue_depth version customer plan amount currency notes tags"
).split(" ")


def _rng(seed: int | str) -> random.Random:
    return random.Random(str(seed))


def prose(n_tokens: int, *, seed: int | str) -> str:
    """About ``n_tokens`` tokens of plausible English prose."""
    rng = _rng(seed)
    words: list[str] = []
    budget = n_tokens * 4  # characters
    size = 0
    while size < budget:
        sentence = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(8, 20)))
        sentence = sentence[0].upper() + sentence[1:] + "."
        words.append(sentence)
        size += len(sentence) + 1
    return " ".join(words)


def fact_marker(key: str, value: str) -> str:
    return f"⟦fact:{key}={value}⟧"


def facts_for(prefix: str, count: int, *, seed: int | str) -> list[Fact]:
    """``count`` facts with stable keys (``prefix.1`` …) and seeded values."""
    rng = _rng(f"{prefix}:{seed}")
    return [
        (f"{prefix}.{i + 1}", f"{rng.choice(_WORDS)}-{rng.randint(100, 999)}") for i in range(count)
    ]


def _json_record(n_tokens: int, rng: random.Random) -> str:
    rows: list[dict[str, Any]] = []
    size = 0
    while size < n_tokens * 3:  # compact JSON runs ~3 characters a token
        row = {
            f: (
                rng.randint(1, 10_000)
                if f.endswith(("_ms", "depth", "retries", "amount"))
                else " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 4)))
            )
            for f in _FIELDS
        }
        rows.append(row)
        size += len(orjson.dumps(row))
    return orjson.dumps({"records": rows, "count": len(rows)}).decode()


def _code(n_tokens: int, rng: random.Random) -> str:
    lines: list[str] = []
    size = 0
    i = 0
    while size < n_tokens * 3:
        name = f"{rng.choice(_WORDS)}_{i}"
        line = (
            f"def {name}(value, retries={rng.randint(1, 5)}):\n"
            f'    """{" ".join(rng.choice(_WORDS) for _ in range(6))}."""\n'
            f"    return value * {rng.randint(2, 99)} + retries\n"
        )
        lines.append(line)
        size += len(line)
        i += 1
    return "\n".join(lines)


def _csv(n_tokens: int, rng: random.Random) -> str:
    out = [",".join(_FIELDS)]
    size = len(out[0])
    while size < n_tokens * 3:
        row = ",".join(
            str(rng.randint(1, 9999)) if k % 3 == 0 else rng.choice(_WORDS)
            for k in range(len(_FIELDS))
        )
        out.append(row)
        size += len(row)
    return "\n".join(out)


def artifact_body(
    artifact_id: str, *, n_tokens: int, fmt: Format, facts: Sequence[Fact], seed: int | str
) -> str:
    """An artifact: ``⟦artifact:ID⟧``, then content of the format with the facts planted inside."""
    rng = _rng(f"{artifact_id}:{seed}")
    if fmt == "json":
        body = _json_record(n_tokens, rng)
    elif fmt == "code":
        body = _code(n_tokens, rng)
    elif fmt == "csv":
        body = _csv(n_tokens, rng)
    else:
        body = prose(n_tokens, seed=f"{artifact_id}:{seed}")
    planted = " ".join(fact_marker(k, v) for k, v in facts)
    # Plant the facts in the middle: trimming either end would lose them.
    middle = len(body) // 2
    return f"⟦artifact:{artifact_id}⟧\n{body[:middle]}\n{planted}\n{body[middle:]}"


def tool_definitions(
    count: int, *, n_tokens: int, seed: int | str, fetch_tool: str | None, extra: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """``count`` tool definitions totalling about ``n_tokens``; the first is the fetch tool."""
    rng = _rng(f"tools:{seed}")
    names = [fetch_tool] if fetch_tool else []
    names += list(extra)
    while len(names) < count:
        names.append(f"{rng.choice(_WORDS)}_{len(names)}")
    per_tool = max(20, n_tokens // max(count, 1))
    tools: list[dict[str, Any]] = []
    for i, name in enumerate(names[:count]):
        props: dict[str, Any] = {
            "id": {"type": "string", "description": "The id of the record to work on."},
        }
        for k in range(rng.randint(2, 6)):
            props[f"{rng.choice(_FIELDS)}_{k}"] = {
                "type": rng.choice(["string", "integer", "boolean"]),
                "description": prose(12, seed=f"{seed}:{i}:{k}"),
            }
        tools.append(
            {
                "name": name,
                "description": prose(per_tool - 60, seed=f"tool:{seed}:{i}"),
                "input_schema": {"type": "object", "properties": props, "required": ["id"]},
            }
        )
    return tools


def answers(facts: Mapping[str, str]) -> list[str]:
    """The answer lines the facts brain gives for these facts."""
    return [f"⟦answer:{k}={v}⟧" for k, v in facts.items()]
