"""Fault injection: make the emulator fail the way the real API fails, on purpose and repeatably.

A fault plan is a list of rules, loaded from a YAML/JSON file (``--faults FILE``) or posted to
``POST /_emulator/faults``::

    seed: 7
    faults:
      - kind: rate_limit          # 429 rate_limit_error with retry-after
        rate: 0.1                 # on 10% of the matching requests (seeded RNG)
        retry_after_s: 2
      - kind: overloaded          # 529 overloaded_error
        nth: [3, 5]               # on the 3rd and 5th matching request (1-based)
        model: "claude-haiku-*"   # fnmatch pattern on the requested model string
      - kind: stream_error        # an `event: error` after the first content delta
      - kind: drop_after_start    # the connection closes right after message_start
      - kind: slow_first_token
        delay_ms: 5000

Kinds: ``rate_limit`` (429), ``overloaded`` (529), ``api_error`` (500), ``stream_error`` and
``drop_after_start`` (streaming requests only), ``slow_first_token`` (adds ``delay_ms`` to the
time to first token). Filters: ``route`` (``messages`` — the default —, ``count_tokens``,
``batches``, ``models`` or ``any``), ``model`` (fnmatch), ``stream`` (true/false). Triggers:
``rate`` (0–1), ``nth`` (an int or a list), ``every`` (every Nth matching request); none of them
means every matching request. ``times`` caps how often a rule fires.

Each rule counts the requests that match its filters and draws from its own RNG (seeded from
the plan's seed and the rule's position), so adding a rule never shifts another one's hits.
"""

from __future__ import annotations

import fnmatch
import json
import math
import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, cast

import yaml

from tokenomy.errors import ConfigError

__all__ = [
    "FAULT_KINDS",
    "HTTP_KINDS",
    "NO_FAULT",
    "FaultDecision",
    "FaultInjector",
    "FaultKind",
    "FaultPlan",
    "FaultRoute",
    "FaultRule",
    "http_error_headers",
    "load_fault_plan",
    "parse_fault_plan",
]

FaultKind = Literal[
    "rate_limit", "overloaded", "api_error", "stream_error", "drop_after_start", "slow_first_token"
]
FaultRoute = Literal["messages", "count_tokens", "batches", "models", "any"]
FAULT_KINDS: Final[tuple[str, ...]] = (
    "rate_limit",
    "overloaded",
    "api_error",
    "stream_error",
    "drop_after_start",
    "slow_first_token",
)
_ROUTES: Final[tuple[str, ...]] = ("messages", "count_tokens", "batches", "models", "any")
HTTP_KINDS: Final[dict[str, tuple[int, str, str]]] = {
    "rate_limit": (
        429,
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of "
        "requests per minute (emulated fault). Please try again later.",
    ),
    "overloaded": (529, "overloaded_error", "Overloaded"),
    "api_error": (500, "api_error", "Internal server error"),
}
_STREAM_KINDS: Final[frozenset[str]] = frozenset({"stream_error", "drop_after_start"})
_RULE_KEYS: Final[frozenset[str]] = frozenset(
    {
        "kind",
        "rate",
        "nth",
        "every",
        "times",
        "route",
        "model",
        "stream",
        "retry_after_s",
        "delay_ms",
        "message",
        "error_type",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultRule:
    """One fault: what happens, to which requests, and when."""

    kind: FaultKind
    rate: float | None = None
    nth: tuple[int, ...] = ()
    every: int | None = None
    times: int | None = None
    route: FaultRoute = "messages"
    model: str | None = None
    stream: bool | None = None
    retry_after_s: float = 1.0
    delay_ms: float = 0.0
    message: str | None = None
    error_type: str = "overloaded_error"

    def matches(self, *, route: str, model: str | None, stream: bool) -> bool:
        if self.route not in ("any", route):
            return False
        if self.kind in _STREAM_KINDS and not stream:
            return False
        if self.stream is not None and self.stream != stream:
            return False
        return self.model is None or (model is not None and fnmatch.fnmatchcase(model, self.model))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "route": self.route}
        if self.rate is not None:
            out["rate"] = self.rate
        if self.nth:
            out["nth"] = list(self.nth)
        for name in ("every", "times", "model", "stream", "message"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.kind == "rate_limit":
            out["retry_after_s"] = self.retry_after_s
        if self.kind == "slow_first_token":
            out["delay_ms"] = self.delay_ms
        if self.kind == "stream_error":
            out["error_type"] = self.error_type
        return out


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """A seed and the rules, in order."""

    rules: tuple[FaultRule, ...] = ()
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "faults": [r.to_json() for r in self.rules]}


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What to do to one request: an HTTP error, a stream fault, and/or a slower first token."""

    http_error: FaultRule | None = None
    stream_fault: FaultRule | None = None
    extra_ttft_ms: float = 0.0
    fired: tuple[FaultKind, ...] = field(default=())

    @property
    def none(self) -> bool:
        return not self.fired


NO_FAULT: Final = FaultDecision()


class FaultInjector:
    """Decides, request by request, which faults fire. Thread-safe; deterministic per seed."""

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self._lock = threading.Lock()
        self._plan = FaultPlan()
        self._seen: list[int] = []
        self._fired: list[int] = []
        self._rngs: list[random.Random] = []
        self.replace(plan or FaultPlan())

    @property
    def plan(self) -> FaultPlan:
        return self._plan

    def replace(self, plan: FaultPlan) -> None:
        """Install a new plan; its counters and RNGs start from zero."""
        with self._lock:
            self._plan = plan
            self._seen = [0] * len(plan.rules)
            self._fired = [0] * len(plan.rules)
            self._rngs = [random.Random(f"{plan.seed}:{i}") for i in range(len(plan.rules))]

    def reset(self) -> None:
        self.replace(self._plan)

    def counters(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"kind": r.kind, "matched": s, "fired": f}
                for r, s, f in zip(self._plan.rules, self._seen, self._fired, strict=True)
            ]

    def decide(self, *, route: str, model: str | None, stream: bool) -> FaultDecision:
        if not self._plan.rules:
            return NO_FAULT
        http_error: FaultRule | None = None
        stream_fault: FaultRule | None = None
        extra_ms = 0.0
        fired: list[FaultKind] = []
        with self._lock:
            for i, rule in enumerate(self._plan.rules):
                if not rule.matches(route=route, model=model, stream=stream):
                    continue
                self._seen[i] += 1
                if not self._fires(i, rule):
                    continue
                # Only the first HTTP error / stream fault applies; later ones still count.
                if rule.kind in HTTP_KINDS:
                    if http_error is not None:
                        continue
                    http_error = rule
                elif rule.kind in _STREAM_KINDS:
                    if stream_fault is not None:
                        continue
                    stream_fault = rule
                else:
                    extra_ms += rule.delay_ms
                self._fired[i] += 1
                fired.append(rule.kind)
        if not fired:
            return NO_FAULT
        return FaultDecision(
            http_error=http_error,
            stream_fault=stream_fault,
            extra_ttft_ms=extra_ms,
            fired=tuple(fired),
        )

    def _fires(self, i: int, rule: FaultRule) -> bool:
        if rule.times is not None and self._fired[i] >= rule.times:
            return False
        n = self._seen[i]
        if rule.nth and n not in rule.nth:
            return False
        if rule.every is not None and n % rule.every != 0:
            return False
        # Draw only when a rate is set, so rules without one never consume randomness.
        return rule.rate is None or self._rngs[i].random() < rule.rate


def http_error_headers(rule: FaultRule) -> dict[str, str]:
    """``retry-after`` (whole seconds, as the API sends it) and ``retry-after-ms`` for a 429."""
    if rule.kind != "rate_limit":
        return {}
    return {
        "retry-after": str(math.ceil(rule.retry_after_s)),
        "retry-after-ms": str(round(rule.retry_after_s * 1000)),
    }


def parse_fault_plan(data: object, *, source: str = "faults") -> FaultPlan:
    """Validate a plan: ``{"seed": int, "faults": [rule, ...]}`` or a bare list of rules."""
    if isinstance(data, list):
        data = {"faults": data}
    if data is None:
        return FaultPlan()
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping with 'faults', got {type(data).__name__}")
    unknown = set(data) - {"seed", "faults"}
    if unknown:
        raise ConfigError(f"{source}: unknown keys {sorted(unknown)}; expected 'seed' and 'faults'")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"{source}: seed must be an integer, got {seed!r}")
    rules = data.get("faults", [])
    if not isinstance(rules, list):
        raise ConfigError(f"{source}: 'faults' must be a list of rules, got {rules!r}")
    return FaultPlan(
        rules=tuple(_rule(r, where=f"{source}: faults[{i}]") for i, r in enumerate(rules)),
        seed=seed,
    )


def _rule(raw: object, *, where: str) -> FaultRule:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {raw!r}")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(_RULE_KEYS)}")
    kind = raw.get("kind")
    if kind not in FAULT_KINDS:
        raise ConfigError(f"{where}: kind must be one of {', '.join(FAULT_KINDS)}; got {kind!r}")
    route = raw.get("route", "messages")
    if route not in _ROUTES:
        raise ConfigError(f"{where}: route must be one of {', '.join(_ROUTES)}; got {route!r}")
    rate = raw.get("rate")
    if rate is not None and (_not_number(rate) or not 0 <= float(rate) <= 1):
        raise ConfigError(f"{where}: rate must be a number between 0 and 1, got {rate!r}")
    nth_raw = raw.get("nth", ())
    nth_list = [nth_raw] if isinstance(nth_raw, int) else nth_raw
    if not isinstance(nth_list, Sequence) or isinstance(nth_list, str):
        raise ConfigError(f"{where}: nth must be a positive integer or a list of them")
    for n in nth_list:
        if _not_int(n) or n < 1:
            raise ConfigError(f"{where}: nth must hold positive integers (1 = first), got {n!r}")
    for name in ("every", "times"):
        value = raw.get(name)
        if value is not None and (_not_int(value) or value < 1):
            raise ConfigError(f"{where}: {name} must be a positive integer, got {value!r}")
    for name in ("retry_after_s", "delay_ms"):
        value = raw.get(name)
        if value is not None and (_not_number(value) or float(value) < 0):
            raise ConfigError(f"{where}: {name} must be a number ≥ 0, got {value!r}")
    model = raw.get("model")
    if model is not None and not isinstance(model, str):
        raise ConfigError(f"{where}: model must be a string pattern, got {model!r}")
    stream = raw.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise ConfigError(f"{where}: stream must be true or false, got {stream!r}")
    message = raw.get("message")
    if message is not None and not isinstance(message, str):
        raise ConfigError(f"{where}: message must be a string, got {message!r}")
    error_type = raw.get("error_type", "overloaded_error")
    if not isinstance(error_type, str) or not error_type:
        raise ConfigError(f"{where}: error_type must be an API error type such as 'api_error'")
    return FaultRule(
        kind=cast(FaultKind, kind),
        rate=None if rate is None else float(rate),
        nth=tuple(int(n) for n in nth_list),
        every=raw.get("every"),
        times=raw.get("times"),
        route=cast(FaultRoute, route),
        model=model,
        stream=stream,
        retry_after_s=float(raw.get("retry_after_s", 1.0)),
        delay_ms=float(raw.get("delay_ms", 0.0)),
        message=message,
        error_type=error_type,
    )


def _not_int(value: object) -> bool:
    return isinstance(value, bool) or not isinstance(value, int)


def _not_number(value: object) -> bool:
    return (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(float(value))
    )


def load_fault_plan(path: Path) -> FaultPlan:
    """Read a plan from a ``.json``, ``.yaml`` or ``.yml`` file."""
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read faults file {str(path)!r}: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid JSON/YAML ({exc}); fix the file") from None
    return parse_fault_plan(data, source=str(path))
