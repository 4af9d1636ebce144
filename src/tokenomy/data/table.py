"""The model table: ids, aliases, prices, cache minimums and limits, as exact values.

Pure: :func:`parse_table` turns an already-loaded mapping (from ``models.toml`` and an
optional user file) into a :class:`ModelTable`. Reading the files is :mod:`tokenomy.data`'s job.

Prices are ``Decimal`` USD per million tokens. A model without prices is *unpriced*: known to
the table (limits, cache minimum) but never priced as $0.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from tokenomy.errors import ConfigError, UnknownModelError

__all__ = [
    "Fast",
    "LongContext",
    "ModelInfo",
    "ModelPrices",
    "ModelTable",
    "merge_table_data",
    "parse_table",
]

Status = Literal["active", "deprecated", "retired"]
_PRICE_FIELDS = (
    "input",
    "output",
    "cache_write_5m",
    "cache_write_1h",
    "cache_read",
    "batch_input",
    "batch_output",
)

# Every field a models file may set: a misspelt field ("imput") would otherwise be ignored and
# the model priced at the value it was meant to override.
_TABLE_FIELDS = frozenset(
    {"checked_on", "batch_multiplier", "geo_us_multiplier", "web_search_usd_per_request", "models"}
)
_MODEL_FIELDS = frozenset(
    {
        "id",
        "aliases",
        "display_name",
        "family",
        *_PRICE_FIELDS,
        "min_cacheable_tokens",
        "context_window_tokens",
        "max_output_tokens",
        "tokenizer",
        "geo_surcharge",
        "mid_conversation_system",
        "fast",
        "long_context",
        "tool_system_tokens",
        "status",
        "deprecated_on",
        "retired_on",
        "retires_not_before",
        "confidence",
    }
)
_FAST_FIELDS = frozenset({"input", "output"})
_LONG_CONTEXT_FIELDS = frozenset(
    {"above_input_tokens", "input", "output", "beta", "context_window_tokens"}
)


@dataclass(frozen=True, slots=True)
class ModelPrices:
    """Standard prices in USD per million tokens."""

    input: Decimal
    output: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    cache_read: Decimal
    batch_input: Decimal
    batch_output: Decimal


@dataclass(frozen=True, slots=True)
class LongContext:
    """A higher base price for the whole request once input passes ``above_input_tokens``."""

    above_input_tokens: int
    input: Decimal
    output: Decimal
    beta: str | None = None
    context_window_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Fast:
    """Fast-mode (``speed: "fast"``) base prices; cache prices scale with the input price."""

    input: Decimal
    output: Decimal


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model: what it costs and what its limits are."""

    id: str
    display_name: str
    family: str
    prices: ModelPrices | None
    min_cacheable_tokens: int
    context_window_tokens: int
    max_output_tokens: int
    aliases: tuple[str, ...] = ()
    tokenizer: str = "2023"
    geo_surcharge: bool = False
    mid_conversation_system: bool = False
    fast: Fast | None = None
    long_context: LongContext | None = None
    tool_system_tokens: tuple[int, int] | None = None
    status: Status = "active"
    deprecated_on: date | None = None
    retired_on: date | None = None
    retires_not_before: date | None = None
    confidence: Literal["documented", "unconfirmed"] = "documented"

    @property
    def priced(self) -> bool:
        return self.prices is not None


@dataclass(frozen=True, slots=True)
class ModelTable:
    """All known models, with the table-wide multipliers and the date prices were checked."""

    models: tuple[ModelInfo, ...]
    checked_on: date
    batch_multiplier: Decimal = Decimal("0.5")
    geo_us_multiplier: Decimal = Decimal("1.1")
    web_search_usd_per_request: Decimal = Decimal("0.01")
    sources: tuple[str, ...] = ()
    _index: Mapping[str, ModelInfo] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, ModelInfo] = {}
        for m in self.models:
            for name in (m.id, *m.aliases):
                index[name] = m
        object.__setattr__(self, "_index", index)

    def __iter__(self) -> Iterator[ModelInfo]:
        return iter(self.models)

    def find(self, name: str) -> ModelInfo | None:
        """The model for an id, alias or provider-decorated id; ``None`` when unknown."""
        for candidate in _candidates(name):
            hit = self._index.get(candidate)
            if hit is not None:
                return hit
        return None

    def get(self, name: str) -> ModelInfo:
        """Like :meth:`find`, but an unknown model raises :class:`UnknownModelError`."""
        hit = self.find(name)
        if hit is None:
            raise UnknownModelError(
                name,
                hint="add it to your models file (see 'tokenomy prices --path') "
                "or check the spelling with 'tokenomy prices'",
            )
        return hit


_DATE_SUFFIX = re.compile(r"-(\d{8})$")
# Bedrock: an optional geography of a cross-region profile (us, eu, apac, jp, au, global,
# us-gov), "anthropic.", the model id, an optional "-v1" / "-v1:0" version.
_BEDROCK = re.compile(r"^(?:[a-z]+(?:-[a-z]+)?\.)?anthropic\.(?P<id>.+?)(?:-v\d+(?::\d+)?)?$")


def _candidates(name: str) -> Iterator[str]:
    """Spellings of one model id as clients send them, most specific first."""
    n = name.strip()
    yield n
    n = n.lower()
    yield n
    # Gateways and clouds put the id after a path: "anthropic/claude-…" (LiteLLM),
    # "publishers/anthropic/models/claude-…" (Vertex), "arn:…:foundation-model/anthropic.…".
    n = n.rpartition("/")[2]
    yield n
    n = re.sub(r"\[[^\]]*\]$", "", n)  # Claude Code: "claude-opus-4-8[1m]"
    yield n
    m = _BEDROCK.match(n)
    if m:
        n = m.group("id")
        yield n
    if "@" in n:  # Vertex: "claude-opus-4-5@20251101"
        base, _, snap = n.partition("@")
        yield f"{base}-{snap}" if snap else base
        yield base
        n = base
    m2 = _DATE_SUFFIX.search(n)
    if m2:  # an undated alias of a dated snapshot we do not list yet
        yield n[: m2.start()]


def merge_table_data(
    base: Mapping[str, Any], override: Mapping[str, Any], *, source: str = "models file"
) -> dict[str, Any]:
    """Overlay a user table on the built-in one: models merge field by field, by ``id``."""
    merged = {k: v for k, v in base.items() if k != "models"}
    merged.update({k: v for k, v in override.items() if k != "models"})
    by_id: dict[str, dict[str, Any]] = {}
    for row in base.get("models", []):
        by_id[str(row.get("id"))] = dict(row)
    for row in _rows(override.get("models", []), source=source):
        rid = str(row.get("id"))
        by_id[rid] = {**by_id.get(rid, {}), **row}
    merged["models"] = list(by_id.values())
    return merged


def parse_table(data: Mapping[str, Any], *, source: str = "models.toml") -> ModelTable:
    """Validate and convert a loaded table; errors name the model, the field and the source."""
    _no_unknown_fields(data, _TABLE_FIELDS, where=source)
    rows = data.get("models")
    if not isinstance(rows, list) or not rows:
        raise ConfigError(f"{source}: no [[models]] entries; the table needs at least one model")
    models = tuple(
        _parse_model(row, source=source, index=i)
        for i, row in enumerate(_rows(rows, source=source))
    )
    seen: dict[str, str] = {}
    for m in models:
        for name in (m.id, *m.aliases):
            if name in seen and seen[name] != m.id:
                raise ConfigError(f"{source}: {name!r} names both {seen[name]!r} and {m.id!r}")
            seen[name] = m.id
    return ModelTable(
        models=models,
        checked_on=_date(data.get("checked_on"), where=f"{source}: checked_on") or date.min,
        batch_multiplier=_decimal(
            data.get("batch_multiplier", "0.5"), where=f"{source}: batch_multiplier"
        ),
        geo_us_multiplier=_decimal(
            data.get("geo_us_multiplier", "1.1"), where=f"{source}: geo_us_multiplier"
        ),
        web_search_usd_per_request=_decimal(
            data.get("web_search_usd_per_request", "0.01"),
            where=f"{source}: web_search_usd_per_request",
        ),
        sources=(source,),
    )


def _rows(rows: Any, *, source: str) -> list[Mapping[str, Any]]:
    if not isinstance(rows, list):
        raise ConfigError(f"{source}: 'models' must be a list of [[models]] tables, got {rows!r}")
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ConfigError(
                f"{source}: model #{i + 1} must be a [[models]] table with an id, got {row!r}"
            )
    return rows


def _no_unknown_fields(row: Mapping[str, Any], known: frozenset[str], *, where: str) -> None:
    for key in row:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else f"known fields: {', '.join(sorted(known))}"
            )
            raise ConfigError(f"{where}: unknown field {key!r}; {hint}")


def _parse_model(row: Any, *, source: str, index: int) -> ModelInfo:
    if not isinstance(row, Mapping) or not isinstance(row.get("id"), str) or not row["id"]:
        raise ConfigError(f"{source}: model #{index + 1} has no string 'id'")
    mid: str = row["id"]
    where = f"{source}: model {mid!r}"
    _no_unknown_fields(row, _MODEL_FIELDS, where=where)
    present = [f for f in _PRICE_FIELDS if f in row]
    prices: ModelPrices | None = None
    if present:
        missing = [f for f in _PRICE_FIELDS if f not in row]
        if missing:
            raise ConfigError(f"{where} has some prices but not {', '.join(missing)}")
        values = {f: _decimal(row[f], where=f"{where}.{f}") for f in _PRICE_FIELDS}
        prices = ModelPrices(**values)
    fast = _sub_table(row.get("fast"), _FAST_FIELDS, required=_FAST_FIELDS, where=f"{where}.fast")
    lc = _sub_table(
        row.get("long_context"),
        _LONG_CONTEXT_FIELDS,
        required=frozenset({"above_input_tokens", "input", "output"}),
        where=f"{where}.long_context",
    )
    tst = row.get("tool_system_tokens")
    if tst is not None and (
        not isinstance(tst, list)
        or len(tst) != 2
        or any(isinstance(t, bool) or not isinstance(t, int) or t < 0 for t in tst)
    ):
        raise ConfigError(
            f"{where}.tool_system_tokens: expected two whole numbers such as [496, 588], "
            f"got {tst!r}"
        )
    aliases = row.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
        raise ConfigError(f'{where}.aliases: expected a list of ids such as ["x"], got {aliases!r}')
    info = ModelInfo(
        id=mid,
        display_name=str(row.get("display_name", mid)),
        family=str(row.get("family", "unknown")),
        prices=prices,
        min_cacheable_tokens=_int(
            row.get("min_cacheable_tokens", 1024), where=f"{where}.min_cacheable_tokens"
        ),
        context_window_tokens=_int(
            row.get("context_window_tokens", 200_000), where=f"{where}.context_window_tokens"
        ),
        max_output_tokens=_int(
            row.get("max_output_tokens", 64_000), where=f"{where}.max_output_tokens"
        ),
        aliases=tuple(aliases),
        tokenizer=str(row.get("tokenizer", "2023")),
        geo_surcharge=_bool(row.get("geo_surcharge", False), where=f"{where}.geo_surcharge"),
        mid_conversation_system=_bool(
            row.get("mid_conversation_system", False), where=f"{where}.mid_conversation_system"
        ),
        fast=None
        if fast is None
        else Fast(
            input=_decimal(fast["input"], where=f"{where}.fast.input"),
            output=_decimal(fast["output"], where=f"{where}.fast.output"),
        ),
        long_context=None
        if lc is None
        else LongContext(
            above_input_tokens=_int(
                lc["above_input_tokens"], where=f"{where}.long_context.above_input_tokens"
            ),
            input=_decimal(lc["input"], where=f"{where}.long_context.input"),
            output=_decimal(lc["output"], where=f"{where}.long_context.output"),
            beta=None if lc.get("beta") is None else str(lc["beta"]),
            context_window_tokens=None
            if lc.get("context_window_tokens") is None
            else _int(
                lc["context_window_tokens"], where=f"{where}.long_context.context_window_tokens"
            ),
        ),
        tool_system_tokens=None if tst is None else (tst[0], tst[1]),
        status=_status(row.get("status", "active"), where=where),
        deprecated_on=_date(row.get("deprecated_on"), where=f"{where}.deprecated_on"),
        retired_on=_date(row.get("retired_on"), where=f"{where}.retired_on"),
        retires_not_before=_date(
            row.get("retires_not_before"), where=f"{where}.retires_not_before"
        ),
        confidence="unconfirmed" if row.get("confidence") == "unconfirmed" else "documented",
    )
    return info


def _sub_table(
    value: Any, known: frozenset[str], *, required: frozenset[str], where: str
) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        example = ", ".join(f"{k} = ..." for k in sorted(required))
        raise ConfigError(f"{where}: expected a table such as {{ {example} }}, got {value!r}")
    _no_unknown_fields(value, known, where=where)
    missing = sorted(required - value.keys())
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)}")
    return value


def _bool(value: Any, *, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return value


def _decimal(value: Any, *, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ConfigError(f'{where}: expected a price such as "3.75", got {value!r}')
    try:
        # str() first: a TOML float 3.75 must become Decimal("3.75"), not its binary expansion.
        d = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{where}: {value!r} is not a number") from None
    if not d.is_finite() or d < 0:
        raise ConfigError(f"{where}: a price must be a non-negative number, got {value!r}")
    return d


def _int(value: Any, *, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: expected a non-negative whole number, got {value!r}")
    return value


def _date(value: Any, *, where: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{where}: expected a date like 2026-08-21, got {value!r}") from None


def _status(value: Any, *, where: str) -> Status:
    if value in ("active", "deprecated", "retired"):
        return value  # type: ignore[no-any-return]
    raise ConfigError(f"{where}: status must be active, deprecated or retired, got {value!r}")
