"""Exact cost of a call in ``Decimal`` USD, from its usage and the model table.

Modifiers stack as the pricing page says (see ``docs/design/accounting.md``):

- cache writes at the model's 5m / 1h write prices, reads at its own read price (not 0.1x);
- ``long_context``: a higher base price for the *whole* request once total input
  (uncached + written + read) passes the model's threshold — Sonnet 4/4.5 with the 1M beta;
- ``fast`` (``speed: "fast"``): fast-mode base prices, cache prices scaled alike;
- ``batch`` (``service_tier: "batch"`` or a batch result): the table's batch prices, cache
  prices scaled alike;
- ``geo_us`` (``inference_geo: "us"`` on 4.6+ models): every price x1.1;
- server-side compaction: each entry of ``usage.iterations`` priced on its own (and on its own
  model when it names one), the top level ignored.

An unknown model, or one the table knows but has no prices for, is :class:`Unpriced` — never $0.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from tokenomy.core.usage import Usage
from tokenomy.data.table import ModelInfo, ModelTable

__all__ = ["CostBreakdown", "Rates", "Unpriced", "cost", "rates"]

MTOK = Decimal(1_000_000)
ZERO = Decimal(0)
Modifier = Literal["batch", "long_context", "fast", "geo_us"]


@dataclass(frozen=True, slots=True)
class Rates:
    """Effective prices for one call, USD per million tokens, after every modifier."""

    input: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    cache_read: Decimal
    output: Decimal
    modifiers: tuple[Modifier, ...] = ()


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """What a call cost, by kind of token. ``total_usd`` is exact; round only to display."""

    model: str
    input_usd: Decimal
    cache_write_5m_usd: Decimal
    cache_write_1h_usd: Decimal
    cache_read_usd: Decimal
    output_usd: Decimal
    server_tools_usd: Decimal = ZERO
    modifiers: tuple[Modifier, ...] = ()

    @property
    def cache_write_usd(self) -> Decimal:
        return self.cache_write_5m_usd + self.cache_write_1h_usd

    @property
    def total_usd(self) -> Decimal:
        return (
            self.input_usd
            + self.cache_write_5m_usd
            + self.cache_write_1h_usd
            + self.cache_read_usd
            + self.output_usd
            + self.server_tools_usd
        )

    def __add__(self, other: CostBreakdown) -> CostBreakdown:
        mods = tuple(dict.fromkeys((*self.modifiers, *other.modifiers)))
        return CostBreakdown(
            model=self.model,
            input_usd=self.input_usd + other.input_usd,
            cache_write_5m_usd=self.cache_write_5m_usd + other.cache_write_5m_usd,
            cache_write_1h_usd=self.cache_write_1h_usd + other.cache_write_1h_usd,
            cache_read_usd=self.cache_read_usd + other.cache_read_usd,
            output_usd=self.output_usd + other.output_usd,
            server_tools_usd=self.server_tools_usd + other.server_tools_usd,
            modifiers=mods,
        )

    @classmethod
    def zero(cls, model: str) -> CostBreakdown:
        return cls(model, ZERO, ZERO, ZERO, ZERO, ZERO)


@dataclass(frozen=True, slots=True)
class Unpriced:
    """A call that cannot be priced; ``reason`` says why and what to do."""

    model: str
    reason: str

    @property
    def total_usd(self) -> None:
        return None


def rates(
    model: ModelInfo,
    *,
    table: ModelTable,
    total_input_tokens: int = 0,
    batch: bool = False,
    fast: bool = False,
    geo_us: bool = False,
) -> Rates | Unpriced:
    """Per-MTok prices of ``model`` for a call with these properties."""
    p = model.prices
    if p is None:
        return Unpriced(model.id, _no_price_reason(model))
    # Each modifier scales the input side (input, writes, reads) and the output side by a
    # ratio. Numerators and denominators are kept apart and divided once, last: 3.75 * 1 / 3
    # is exactly 1.25, while 3.75 * (1 / 3) is not.
    in_num = in_den = out_num = out_den = Decimal(1)
    mods: list[Modifier] = []
    lc = model.long_context
    if lc is not None and total_input_tokens > lc.above_input_tokens:
        in_num, in_den = in_num * lc.input, in_den * p.input
        out_num, out_den = out_num * lc.output, out_den * p.output
        mods.append("long_context")
    if fast:
        if model.fast is None:
            return Unpriced(model.id, f"{model.id} has no fast-mode price in the model table")
        in_num, in_den = in_num * model.fast.input, in_den * p.input
        out_num, out_den = out_num * model.fast.output, out_den * p.output
        mods.append("fast")
    if batch:
        # A row priced at $0 has no ratio to take; the table-wide discount stands in.
        if p.input:
            in_num, in_den = in_num * p.batch_input, in_den * p.input
        else:
            in_num *= table.batch_multiplier
        if p.output:
            out_num, out_den = out_num * p.batch_output, out_den * p.output
        else:
            out_num *= table.batch_multiplier
        mods.append("batch")
    if geo_us and model.geo_surcharge:
        in_num *= table.geo_us_multiplier
        out_num *= table.geo_us_multiplier
        mods.append("geo_us")

    def scaled(price: Decimal, num: Decimal, den: Decimal) -> Decimal:
        return price * num / den if den else ZERO

    return Rates(
        input=scaled(p.input, in_num, in_den),
        cache_write_5m=scaled(p.cache_write_5m, in_num, in_den),
        cache_write_1h=scaled(p.cache_write_1h, in_num, in_den),
        cache_read=scaled(p.cache_read, in_num, in_den),
        output=scaled(p.output, out_num, out_den),
        modifiers=tuple(mods),
    )


def cost(
    usage: Usage,
    model: str,
    *,
    table: ModelTable,
    batch: bool | None = None,
    inference_geo: str | None = None,
) -> CostBreakdown | Unpriced:
    """The exact cost of one call.

    ``batch`` defaults to what the usage says (``service_tier == "batch"``); pass True for a
    batch result whose message omits it. ``inference_geo`` is the request's value when the
    response does not echo it.
    """
    info = table.find(model)
    if info is None:
        return Unpriced(model, _unknown_reason(model))
    is_batch = usage.is_batch if batch is None else batch
    geo = (usage.inference_geo or inference_geo or "").lower() == "us"
    fast = usage.speed == "fast"
    if usage.iterations:
        total = CostBreakdown.zero(info.id)
        for it in usage.iterations:
            it_info = table.find(it.model) if it.model else info
            if it_info is None:
                return Unpriced(it.model or model, _unknown_reason(it.model or model))
            part = _price_one(it.usage, it_info, table, batch=is_batch, fast=fast, geo=geo)
            if isinstance(part, Unpriced):
                return part
            total = total + part
        tools = _server_tools_usd(usage, table)
        return _with_tools(total, tools)
    priced = _price_one(usage, info, table, batch=is_batch, fast=fast, geo=geo)
    if isinstance(priced, Unpriced):
        return priced
    return _with_tools(priced, _server_tools_usd(usage, table))


def _price_one(
    usage: Usage, info: ModelInfo, table: ModelTable, *, batch: bool, fast: bool, geo: bool
) -> CostBreakdown | Unpriced:
    r = rates(
        info,
        table=table,
        total_input_tokens=usage.total_input_tokens,
        batch=batch,
        fast=fast,
        geo_us=geo,
    )
    if isinstance(r, Unpriced):
        return r
    return CostBreakdown(
        model=info.id,
        input_usd=usage.input_tokens * r.input / MTOK,
        cache_write_5m_usd=usage.cache_write_5m_tokens * r.cache_write_5m / MTOK,
        cache_write_1h_usd=usage.cache_write_1h_tokens * r.cache_write_1h / MTOK,
        cache_read_usd=usage.cache_read_tokens * r.cache_read / MTOK,
        output_usd=usage.output_tokens * r.output / MTOK,
        modifiers=r.modifiers,
    )


def _server_tools_usd(usage: Usage, table: ModelTable) -> Decimal:
    return usage.web_search_requests * table.web_search_usd_per_request


def _with_tools(c: CostBreakdown, tools_usd: Decimal) -> CostBreakdown:
    if not tools_usd:
        return c
    return CostBreakdown(
        model=c.model,
        input_usd=c.input_usd,
        cache_write_5m_usd=c.cache_write_5m_usd,
        cache_write_1h_usd=c.cache_write_1h_usd,
        cache_read_usd=c.cache_read_usd,
        output_usd=c.output_usd,
        server_tools_usd=c.server_tools_usd + tools_usd,
        modifiers=c.modifiers,
    )


def _unknown_reason(model: str) -> str:
    return (
        f"model {model!r} is not in the model table; add it to your models file "
        "('tokenomy prices --path' prints where) to price it"
    )


def _no_price_reason(model: ModelInfo) -> str:
    return (
        f"{model.id} has no published price in the model table; add prices for it to your "
        "models file ('tokenomy prices --path' prints where)"
    )
