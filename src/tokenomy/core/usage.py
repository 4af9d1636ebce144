"""Token usage of one API call, parsed once from every shape the API and its clients emit.

:meth:`Usage.from_wire` is the only reader of the wire field names
(``cache_creation_input_tokens``, ``cache_creation.ephemeral_1h_input_tokens``, …). Every other
module reads the attributes here, which carry their unit in their name.

Rules (see ``docs/design/accounting.md``):

- Usage is additive: total input = ``input_tokens + cache writes + cache reads``.
- Cache writes split into 5m and 1h by ``cache_creation``. When the split is absent, all writes
  are taken as 5m and ``ttl_split_known`` is False, so a report can say so.
- Server-side compaction bills ``iterations[]``, not the top level: :meth:`Usage.billable`.
- A stream's ``message_start`` carries the input side; the last ``message_delta`` is cumulative
  and wins field by field. Deltas are never summed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from tokenomy.errors import UsageError

__all__ = [
    "Iteration",
    "StreamUsage",
    "TokenTotals",
    "Usage",
    "usage_from_batch_result",
    "usage_from_claude_code_line",
    "usage_from_message",
]

IterationKind = Literal["message", "compaction", "advisor_message", "fallback_message", "other"]

KNOWN_FIELDS = frozenset(
    {
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "cache_creation",
        "server_tool_use",
        "service_tier",
        "inference_geo",
        "iterations",
        "speed",
        "output_tokens_details",
        "fallback_credit",
        "type",
        "model",
    }
)
# Fields of the nested objects; strict mode checks these too, since a typo there would
# silently drop writes, searches or thinking tokens.
_NESTED_FIELDS = {
    "cache_creation": frozenset({"ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"}),
    "server_tool_use": frozenset({"web_search_requests", "web_fetch_requests"}),
    "output_tokens_details": frozenset({"thinking_tokens"}),
}


class TokenTotals:
    """The derived totals of anything that counts input-side tokens: a call's usage, a run,
    a group of calls. A mixin for (slotted) dataclasses that declare the four counts."""

    __slots__ = ()

    input_tokens: int
    cache_read_tokens: int
    cache_write_5m_tokens: int
    cache_write_1h_tokens: int

    @property
    def cache_write_tokens(self) -> int:
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @property
    def total_input_tokens(self) -> int:
        """Everything the model read: uncached + written + read from cache."""
        return self.input_tokens + self.cache_write_tokens + self.cache_read_tokens

    @property
    def cache_hit_rate(self) -> float | None:
        """``cache_read / total input``; None without input."""
        total = self.total_input_tokens
        return None if total == 0 else self.cache_read_tokens / total

    @property
    def write_amplification(self) -> float | None:
        """Tokens written to cache per token read from it; None without reads."""
        if self.cache_read_tokens == 0:
            return None
        return self.cache_write_tokens / self.cache_read_tokens


@dataclass(frozen=True, slots=True)
class Iteration:
    """One sampling step of a request (server-side compaction, advisor, fallback)."""

    kind: IterationKind
    usage: Usage
    model: str | None = None


@dataclass(frozen=True, slots=True)
class Usage(TokenTotals):
    """What one call consumed. Token counts are ints; ``0`` where the API sent nothing."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    ttl_split_known: bool = True
    thinking_tokens: int | None = None
    web_search_requests: int = 0
    web_fetch_requests: int = 0
    service_tier: str | None = None
    speed: str | None = None
    inference_geo: str | None = None
    iterations: tuple[Iteration, ...] = ()
    unknown_fields: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        for name in (
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_5m_tokens",
            "cache_write_1h_tokens",
            "web_search_requests",
            "web_fetch_requests",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise UsageError(f"usage.{name} must be a non-negative integer, got {v!r}")

    # ------------------------------------------------------------------ derived
    # cache_write_tokens, total_input_tokens, cache_hit_rate: TokenTotals.

    @property
    def is_batch(self) -> bool:
        return self.service_tier == "batch"

    def billable(self) -> Usage:
        """The usage that is billed: the sum of ``iterations`` when present, else self.

        Iterations may run on other models (advisor, fallback); :func:`tokenomy.core.pricing.cost`
        prices those per iteration. This sum is for token totals.
        """
        if not self.iterations:
            return self
        total = sum_usages(it.usage for it in self.iterations)
        return replace(
            total,
            service_tier=self.service_tier,
            speed=self.speed,
            inference_geo=self.inference_geo,
            thinking_tokens=self.thinking_tokens,
            web_search_requests=self.web_search_requests,
            web_fetch_requests=self.web_fetch_requests,
            iterations=(),
        )

    # ------------------------------------------------------------------ wire

    @classmethod
    def from_wire(cls, u: Any, *, strict: bool = False, where: str = "usage") -> Usage:
        """Parse an API usage object. ``strict`` rejects fields this version does not know."""
        if not isinstance(u, Mapping):
            raise UsageError(f"{where} must be a JSON object, got {type(u).__name__}")
        unknown = tuple(sorted(k for k in u if k not in KNOWN_FIELDS))
        if strict and unknown:
            raise UsageError(_unknown_message(unknown[0], where, KNOWN_FIELDS))
        if strict:
            for key, known_keys in _NESTED_FIELDS.items():
                nested = u.get(key)
                extra = (
                    sorted(k for k in nested if k not in known_keys)
                    if isinstance(nested, Mapping)
                    else []
                )
                if extra:
                    raise UsageError(_unknown_message(extra[0], f"{where}.{key}", known_keys))
        writes = _count(u, "cache_creation_input_tokens", where)
        split = u.get("cache_creation")
        if isinstance(split, Mapping) and (
            "ephemeral_5m_input_tokens" in split or "ephemeral_1h_input_tokens" in split
        ):
            w5 = _count(split, "ephemeral_5m_input_tokens", f"{where}.cache_creation")
            w1 = _count(split, "ephemeral_1h_input_tokens", f"{where}.cache_creation")
            # The two should add up to the total. Some clients send the split zeroed (or
            # stale) with the total filled in: the total is what is billed, so tokens the
            # split does not explain are priced at 5m, like writes without any split, and
            # flagged. Writes are never dropped.
            unexplained = writes - (w5 + w1)
            if unexplained > 0:
                w5, known = w5 + unexplained, False
            else:
                known = True
        elif split is not None and not isinstance(split, Mapping):
            raise UsageError(f"{where}.cache_creation must be an object or null, got {split!r}")
        else:
            w5, w1, known = writes, 0, writes == 0
        stu = u.get("server_tool_use")
        tools_where = f"{where}.server_tool_use"
        if stu is not None and not isinstance(stu, Mapping):
            raise UsageError(f"{tools_where} must be an object, got {stu!r}")
        details = u.get("output_tokens_details")
        if details is not None and not isinstance(details, Mapping):
            raise UsageError(f"{where}.output_tokens_details must be an object, got {details!r}")
        thinking = None
        if isinstance(details, Mapping) and details.get("thinking_tokens") is not None:
            thinking = _count(details, "thinking_tokens", f"{where}.output_tokens_details")
        raw_iterations = u.get("iterations")
        if raw_iterations is not None and not isinstance(raw_iterations, list):
            raise UsageError(f"{where}.iterations must be a list, got {raw_iterations!r}")
        iterations = tuple(
            _iteration(it, where=f"{where}.iterations[{i}]", strict=strict)
            for i, it in enumerate(raw_iterations or ())
        )
        return cls(
            input_tokens=_count(u, "input_tokens", where),
            output_tokens=_count(u, "output_tokens", where),
            cache_read_tokens=_count(u, "cache_read_input_tokens", where),
            cache_write_5m_tokens=w5,
            cache_write_1h_tokens=w1,
            ttl_split_known=known,
            thinking_tokens=thinking,
            web_search_requests=_count(stu or {}, "web_search_requests", tools_where),
            web_fetch_requests=_count(stu or {}, "web_fetch_requests", tools_where),
            service_tier=_opt_str(u, "service_tier", where),
            speed=_opt_str(u, "speed", where),
            inference_geo=_opt_str(u, "inference_geo", where),
            iterations=iterations,
            unknown_fields=unknown,
        )

    def to_wire(self) -> dict[str, Any]:
        """The API's usage shape (the inverse of :meth:`from_wire` for known fields)."""
        out: dict[str, Any] = {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_write_tokens,
            "cache_read_input_tokens": self.cache_read_tokens,
        }
        # Without a known split the writes were reported as a total only; inventing a
        # 5m/1h breakdown here would turn "TTL unknown" into "all 5m" on the way back.
        if self.ttl_split_known:
            out["cache_creation"] = {
                "ephemeral_5m_input_tokens": self.cache_write_5m_tokens,
                "ephemeral_1h_input_tokens": self.cache_write_1h_tokens,
            }
        out["output_tokens"] = self.output_tokens
        if self.web_search_requests or self.web_fetch_requests:
            out["server_tool_use"] = {
                "web_search_requests": self.web_search_requests,
                "web_fetch_requests": self.web_fetch_requests,
            }
        for key in ("service_tier", "speed", "inference_geo"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.thinking_tokens is not None:
            out["output_tokens_details"] = {"thinking_tokens": self.thinking_tokens}
        if self.iterations:
            out["iterations"] = [
                {"type": it.kind, **({"model": it.model} if it.model else {}), **_iter_wire(it)}
                for it in self.iterations
            ]
        return out


def _iter_wire(it: Iteration) -> dict[str, Any]:
    w = it.usage.to_wire()
    keys = (
        "input_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "cache_creation",
        "output_tokens",
    )
    return {k: w[k] for k in keys if k in w}


def sum_usages(usages: Iterable[Usage]) -> Usage:
    """Token-wise sum; tiers and modes are not summed (they are per call)."""
    i = o = r = w5 = w1 = ws = wf = 0
    known = True
    for u in usages:
        i += u.input_tokens
        o += u.output_tokens
        r += u.cache_read_tokens
        w5 += u.cache_write_5m_tokens
        w1 += u.cache_write_1h_tokens
        ws += u.web_search_requests
        wf += u.web_fetch_requests
        known = known and u.ttl_split_known
    return Usage(
        input_tokens=i,
        output_tokens=o,
        cache_read_tokens=r,
        cache_write_5m_tokens=w5,
        cache_write_1h_tokens=w1,
        ttl_split_known=known,
        web_search_requests=ws,
        web_fetch_requests=wf,
    )


def _iteration(it: Any, *, where: str, strict: bool) -> Iteration:
    if not isinstance(it, Mapping):
        raise UsageError(f"{where} must be an object, got {it!r}")
    kind = it.get("type", "message")
    if kind not in ("message", "compaction", "advisor_message", "fallback_message"):
        kind = "other"
    model = it.get("model")
    return Iteration(
        kind=kind,
        usage=Usage.from_wire(
            {k: v for k, v in it.items() if k not in ("iterations",)}, where=where, strict=strict
        ),
        model=model if isinstance(model, str) else None,
    )


def _count(u: Mapping[str, Any], key: str, where: str) -> int:
    v = u.get(key)
    if v is None:
        return 0
    # JSON integers only: a float (even 12.0) means something upstream may have rounded it.
    if isinstance(v, bool) or not isinstance(v, int):
        raise UsageError(f"{where}.{key} must be a whole number (a JSON integer), got {v!r}")
    if v < 0:
        raise UsageError(f"{where}.{key} is negative ({v}); usage counts are never below 0")
    return v


def _opt_str(u: Mapping[str, Any], key: str, where: str) -> str | None:
    v = u.get(key)
    if v is None or isinstance(v, str):
        return v
    raise UsageError(f"{where}.{key} must be a string, got {v!r}")


def _unknown_message(name: str, where: str, known: frozenset[str]) -> str:
    guess = _suggest(name, known)
    hint = f" (did you mean {guess!r}?)" if guess else ""
    return f"{where} has an unknown field {name!r}{hint}; remove it or pass --allow-unknown"


def _suggest(name: str, known: frozenset[str]) -> str | None:
    """The field a misspelt name most likely means: its snake_case form, a field it is the
    start of ("cache_reads" → "cache_read_input_tokens"), else the closest spelling."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    if snake in known:
        return snake
    stem = snake.rstrip("s")
    if len(stem) >= 4:
        starts = sorted((k for k in known if k.startswith(stem)), key=len)
        if starts:
            return starts[0]
    close = difflib.get_close_matches(snake, sorted(known), n=1)
    return close[0] if close else None


# ---------------------------------------------------------------------- other shapes


def usage_from_message(message: Any, *, strict: bool = False) -> Usage:
    """The usage of a Messages API response body (a ``type: "message"`` object)."""
    if not isinstance(message, Mapping):
        raise UsageError(f"a response must be a JSON object, got {type(message).__name__}")
    if "usage" not in message:
        raise UsageError("the response has no 'usage' field; pass the whole API response")
    return Usage.from_wire(message["usage"], strict=strict, where="usage")


@dataclass(slots=True)
class StreamUsage:
    """Folds SSE events into the call's usage.

    The input side comes from ``message_start``; each ``message_delta`` carries *cumulative*
    counts, so a later one replaces earlier values field by field (never summed).
    """

    _fields: dict[str, Any] = field(default_factory=dict)
    started: bool = False
    finished: bool = False

    def feed(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message")
            if isinstance(message, Mapping) and isinstance(message.get("usage"), Mapping):
                self._fields = dict(message["usage"])
            self.started = True
        elif kind == "message_delta":
            usage = event.get("usage")
            if isinstance(usage, Mapping):
                for key, value in usage.items():
                    if value is not None:
                        self._fields[key] = value
        elif kind == "message_stop":
            self.finished = True

    def usage(self, *, strict: bool = False) -> Usage:
        return Usage.from_wire(self._fields, strict=strict, where="stream usage")


def usage_from_batch_result(line: Any) -> Usage | None:
    """The usage of one Message Batches result line; None for errored/canceled/expired rows.

    Batch results are billed at batch prices whether or not the message says ``service_tier``.
    """
    if not isinstance(line, Mapping) or not isinstance(line.get("result"), Mapping):
        raise UsageError("a batch result line needs a 'result' object")
    result = line["result"]
    if result.get("type") != "succeeded":
        return None
    usage = usage_from_message(result.get("message"))
    return usage if usage.service_tier == "batch" else replace(usage, service_tier="batch")


def usage_from_claude_code_line(line: Any) -> Usage | None:
    """The usage of a Claude Code transcript line; None for lines without API usage."""
    if not isinstance(line, Mapping) or line.get("type") != "assistant":
        return None
    message = line.get("message")
    if not isinstance(message, Mapping) or not isinstance(message.get("usage"), Mapping):
        return None
    return Usage.from_wire(message["usage"], where="message.usage")
