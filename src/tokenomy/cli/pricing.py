"""``tokenomy prices`` and ``tokenomy cost``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tokenomy.cli import _render
from tokenomy.cli._app import app
from tokenomy.config import load_settings
from tokenomy.core.documents import PricedDocument, PricedItem, price_text
from tokenomy.core.pricing import CostBreakdown, Unpriced
from tokenomy.data import load_table
from tokenomy.data.table import ModelInfo, ModelTable
from tokenomy.errors import InputError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _table() -> ModelTable:
    return load_table(load_settings().user_models_file)


@app.command("prices")
def prices(
    json: JsonOpt = False,
    path: Annotated[
        bool, typer.Option("--path", help="Print where your models file goes.")
    ] = False,
    all_models: Annotated[
        bool,
        typer.Option(
            "--all", help="Include retired models in the table (--json always lists every model)."
        ),
    ] = False,
) -> None:
    """The model table: prices per million tokens, cache minimums, limits, status."""
    settings = load_settings()
    if path:
        target = settings.models_file or settings.config_dir / "models.toml"
        _render.line(str(target))
        return
    table = load_table(settings.user_models_file)
    if json:
        # Machine-readable output is the whole table: a script pricing old transcripts needs
        # the retired models too, and each row carries its status.
        _render.json_out(
            {
                "checked_on": table.checked_on.isoformat(),
                "sources": list(table.sources),
                "models": [_model_json(m) for m in table],
            }
        )
        return
    models = [m for m in table if all_models or m.status != "retired"]
    rows = []
    for m in models:
        p = m.prices
        cells: list[Any] = (
            [
                p.input,
                p.output,
                p.cache_write_5m,
                p.cache_write_1h,
                p.cache_read,
                p.batch_input,
                p.batch_output,
            ]
            if p
            else ["unpriced", "", "", "", "", "", ""]
        )
        rows.append(
            [
                m.id,
                *cells,
                f"{m.min_cacheable_tokens:,}",
                f"{m.context_window_tokens:,}",
                m.status + ("*" if m.confidence == "unconfirmed" else ""),
            ]
        )
    cols = [
        "model",
        "input",
        "output",
        "5m write",
        "1h write",
        "read",
        "batch in",
        "batch out",
        "min cache",
        "context",
        "status",
    ]
    _render.table(
        f"Claude prices, USD per million tokens (checked {table.checked_on})",
        cols,
        rows,
        right=cols[1:-1],  # the numbers: all but model and status
        caption="* unconfirmed: from pages newer than the checked docs. "
        "'tokenomy prices --path' shows where to override.",
    )


def _model_json(m: ModelInfo) -> dict[str, Any]:
    p = m.prices
    return {
        "id": m.id,
        "aliases": list(m.aliases),
        "display_name": m.display_name,
        "prices_usd_per_mtok": None
        if p is None
        else {
            "input": p.input,
            "output": p.output,
            "cache_write_5m": p.cache_write_5m,
            "cache_write_1h": p.cache_write_1h,
            "cache_read": p.cache_read,
            "batch_input": p.batch_input,
            "batch_output": p.batch_output,
        },
        "fast_usd_per_mtok": None
        if m.fast is None
        else {"input": m.fast.input, "output": m.fast.output},
        "long_context": None
        if m.long_context is None
        else {
            "above_input_tokens": m.long_context.above_input_tokens,
            "input": m.long_context.input,
            "output": m.long_context.output,
            "beta": m.long_context.beta,
        },
        "min_cacheable_tokens": m.min_cacheable_tokens,
        "context_window_tokens": m.context_window_tokens,
        "max_output_tokens": m.max_output_tokens,
        "tokenizer": m.tokenizer,
        "geo_surcharge": m.geo_surcharge,
        "status": m.status,
        "deprecated_on": m.deprecated_on.isoformat() if m.deprecated_on else None,
        "retired_on": m.retired_on.isoformat() if m.retired_on else None,
        "retires_not_before": m.retires_not_before.isoformat() if m.retires_not_before else None,
        "confidence": m.confidence,
    }


@app.command("cost")
def cost_cmd(
    file: Annotated[
        str,
        typer.Argument(
            help="A usage object, a response, JSON lines or an SSE stream; - for stdin."
        ),
    ] = "-",
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Model id (required for a bare usage object)."),
    ] = None,
    batch: Annotated[bool, typer.Option("--batch", help="Price at Message Batches rates.")] = False,
    allow_unknown: Annotated[
        bool,
        typer.Option("--allow-unknown", help="Ignore usage fields this version does not know."),
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Price a usage object or a whole API response, exactly, in USD."""
    text = _read(file)
    doc = price_text(text, table=_table(), model=model, batch=batch, strict=not allow_unknown)
    for why in doc.skipped:
        _render.warn(f"skipped {why}")
    unpriced = [it for it in doc.items if isinstance(it.cost, Unpriced)]
    for it in unpriced:
        assert isinstance(it.cost, Unpriced)
        _render.error(it.cost.reason)
    if json:
        _render.json_out(_doc_json(doc))
    else:
        _render_doc(doc)
    if unpriced:
        raise typer.Exit(2)


def _read(file: str) -> str:
    if file == "-":
        if sys.stdin.isatty():
            raise InputError("no input: pass a FILE or pipe JSON to 'tokenomy cost -'")
        return sys.stdin.read()
    try:
        return Path(file).read_text("utf-8")
    except FileNotFoundError:
        raise InputError(f"{file!r} does not exist") from None
    except UnicodeDecodeError:
        raise InputError(f"{file!r} is not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"cannot read {file!r}: {exc.strerror}") from None


def _cost_json(c: CostBreakdown | Unpriced) -> dict[str, Any]:
    if isinstance(c, Unpriced):
        return {"model": c.model, "unpriced": True, "reason": c.reason, "total_usd": None}
    return {
        "model": c.model,
        "input_usd": c.input_usd,
        "cache_write_5m_usd": c.cache_write_5m_usd,
        "cache_write_1h_usd": c.cache_write_1h_usd,
        "cache_read_usd": c.cache_read_usd,
        "output_usd": c.output_usd,
        "server_tools_usd": c.server_tools_usd,
        "total_usd": c.total_usd,
        "modifiers": list(c.modifiers),
    }


def _doc_json(doc: PricedDocument) -> dict[str, Any]:
    return {
        "items": [
            {
                "line": it.line,
                "kind": it.kind,
                "usage": it.usage.to_wire(),
                "ttl_split_known": it.usage.ttl_split_known,
                "total_input_tokens": it.usage.total_input_tokens,
                "cost": _cost_json(it.cost),
            }
            for it in doc.items
        ],
        "total_usd": doc.total_usd,
        "skipped": list(doc.skipped),
    }


def _render_doc(doc: PricedDocument) -> None:
    rows = []
    for it in doc.items:
        u, c = it.usage, it.cost
        if isinstance(c, Unpriced):
            money = ["unpriced"]
        else:
            money = [_render.usd(c.total_usd, places=6)]
        label = it.model + (
            f" ({', '.join(c.modifiers)})" if isinstance(c, CostBreakdown) and c.modifiers else ""
        )
        rows.append(
            [
                "" if it.line is None else it.line,
                label,
                f"{u.input_tokens:,}",
                f"{u.cache_write_5m_tokens:,}",
                f"{u.cache_write_1h_tokens:,}",
                f"{u.cache_read_tokens:,}",
                f"{u.output_tokens:,}",
                *money,
            ]
        )
    if len(doc.items) == 1:
        _render_one(doc.items[0])
    else:
        cols = ["line", "model", "input", "5m write", "1h write", "read", "output", "total $"]
        _render.table(None, cols, rows, right=cols[2:])
        _render.line(f"total: {_render.usd(doc.total_usd, places=6)} over {len(doc.items)} calls")
    if any(not it.usage.ttl_split_known for it in doc.items):
        _render.warn("no cache_creation breakdown: writes priced at the 5-minute rate")


def _render_one(it: PricedItem) -> None:
    u, c = it.usage, it.cost
    amounts: list[Any] = (
        [None] * 6
        if isinstance(c, Unpriced)
        else [
            c.input_usd,
            c.cache_write_5m_usd,
            c.cache_write_1h_usd,
            c.cache_read_usd,
            c.output_usd,
            c.total_usd,
        ]
    )
    kinds = ["input (uncached)", "cache write 5m", "cache write 1h", "cache read", "output"]
    tokens = [
        u.input_tokens,
        u.cache_write_5m_tokens,
        u.cache_write_1h_tokens,
        u.cache_read_tokens,
        u.output_tokens,
    ]
    rows = [
        [k, f"{t:,}", _render.usd(a, places=6)]
        for k, t, a in zip(kinds, tokens, amounts, strict=False)
    ]
    if u.web_search_requests and isinstance(c, CostBreakdown):
        rows.append(
            [
                "web search",
                f"{u.web_search_requests:,} req",
                _render.usd(c.server_tools_usd, places=6),
            ]
        )
    rows.append(
        ["total", f"{u.total_input_tokens + u.output_tokens:,}", _render.usd(amounts[5], places=6)]
    )
    mods = f" — {', '.join(c.modifiers)}" if isinstance(c, CostBreakdown) and c.modifiers else ""
    hit = u.cache_hit_rate
    caption = f"cache hit rate {hit:.1%}" if hit is not None else None
    _render.table(
        f"{it.model}{mods}", ["", "tokens", "USD"], rows, right=["tokens", "USD"], caption=caption
    )
