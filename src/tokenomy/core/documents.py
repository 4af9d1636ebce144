"""Price whatever a user pastes: a usage object, a response, a batch result, a Claude Code
transcript line, a raw SSE stream, or JSON Lines of any of these.

Pure: takes text, returns :class:`PricedDocument`. Errors name the line and say what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import orjson

from tokenomy.core.pricing import CostBreakdown, Unpriced, cost
from tokenomy.core.usage import (
    StreamUsage,
    Usage,
    usage_from_batch_result,
)
from tokenomy.data.table import ModelTable
from tokenomy.errors import InputError, UsageError
from tokenomy.wire.sse import SSEDecoder

__all__ = ["PricedDocument", "PricedItem", "price_text"]

Kind = Literal["usage", "message", "batch_result", "claude_code_line", "stream"]


@dataclass(frozen=True, slots=True)
class PricedItem:
    """One priced call from the document."""

    kind: Kind
    model: str
    usage: Usage
    cost: CostBreakdown | Unpriced
    line: int | None = None


@dataclass(frozen=True, slots=True)
class PricedDocument:
    items: tuple[PricedItem, ...]
    skipped: tuple[str, ...] = ()

    @property
    def total_usd(self) -> Decimal | None:
        """The sum over priced items; None when any item is unpriced."""
        total = Decimal(0)
        for it in self.items:
            if isinstance(it.cost, Unpriced):
                return None
            total += it.cost.total_usd
        return total


def price_text(
    text: str,
    *,
    table: ModelTable,
    model: str | None = None,
    batch: bool = False,
    strict: bool = True,
) -> PricedDocument:
    """Detect the shape of ``text`` and price every call in it.

    ``model`` is required for a bare usage object and overrides the model a response names.
    ``batch`` prices everything at batch rates. ``strict`` rejects unknown usage fields.
    """
    stripped = text.strip()
    if not stripped:
        raise InputError("the input is empty; pass a usage object, a response or JSON lines")
    if stripped.startswith(("event:", "data:")):
        return PricedDocument((_price_stream(stripped, table, model, batch, strict),))
    try:
        whole = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return _price_lines(stripped, table, model, batch, strict)
    try:
        return PricedDocument((_price_obj(whole, table, model, batch, strict, line=None),))
    except _Skip as why:
        raise InputError(f"nothing to price: {why}") from None


def _price_lines(
    text: str, table: ModelTable, model: str | None, batch: bool, strict: bool
) -> PricedDocument:
    items: list[PricedItem | None] = []
    skipped: list[str] = []
    # Claude Code writes one API response as several lines (one per content block), each
    # repeating the usage; early copies carry partial output counts. Count each response once:
    # the copy with the largest token total, keyed like ccusage on message.id + requestId.
    seen: dict[tuple[str, str], int] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InputError(
                f"line {n}: not valid JSON ({exc.msg} at column {exc.colno}); "
                "pass one JSON object, JSON lines, or a raw SSE stream"
            ) from None
        try:
            item = _price_obj(obj, table, model, batch, strict, line=n)
        except _Skip as why:
            skipped.append(f"line {n}: {why}")
            continue
        key = _response_key(obj) if item.kind == "claude_code_line" else None
        if key is None or key not in seen:
            if key is not None:
                seen[key] = len(items)
            items.append(item)
            continue
        at = seen[key]
        kept = items[at]
        assert kept is not None
        if _tokens(item.usage) > _tokens(kept.usage):
            items[at] = None
            seen[key] = len(items)
            items.append(item)
            kept, item = item, kept
        skipped.append(
            f"line {item.line}: a copy of the response on line {kept.line} "
            f"(message {key[0]}); counted once"
        )
    priced = tuple(it for it in items if it is not None)
    if not priced:
        raise InputError("no line holds a usage object or a response; nothing to price")
    return PricedDocument(priced, tuple(skipped))


def _response_key(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    message = obj.get("message")
    mid = message.get("id") if isinstance(message, Mapping) else None
    rid = obj.get("requestId")
    if isinstance(mid, str) and mid and isinstance(rid, str) and rid:
        return (mid, rid)
    return None


def _tokens(u: Usage) -> int:
    return u.total_input_tokens + u.output_tokens


class _Skip(Exception):
    """A JSON line that holds no usage (a user turn of a transcript, an errored batch row)."""


def _price_obj(
    obj: Any, table: ModelTable, model: str | None, batch: bool, strict: bool, *, line: int | None
) -> PricedItem:
    where = f"line {line}: " if line is not None else ""
    if not isinstance(obj, Mapping):
        raise InputError(f"{where}expected a JSON object, got {type(obj).__name__}")
    kind: Kind
    if "custom_id" in obj and "result" in obj:
        kind = "batch_result"
        try:
            usage = usage_from_batch_result(obj)
        except UsageError as exc:
            raise InputError(f"{where}{exc}") from None
        if usage is None:
            raise _Skip(f"batch result {obj.get('custom_id')!r} did not succeed (not billed)")
        message = obj["result"].get("message") or {}
        named = message.get("model")
        batch = True
    elif obj.get("type") == "assistant" and isinstance(obj.get("message"), Mapping):
        kind = "claude_code_line"
        message = obj["message"]
        if not isinstance(message.get("usage"), Mapping):
            raise _Skip("assistant line without usage")
        usage = _usage(message["usage"], strict, where)
        named = message.get("model")
        if named == "<synthetic>":
            raise _Skip("'<synthetic>' message made up by Claude Code (costs nothing)")
    elif isinstance(obj.get("usage"), Mapping):
        kind = "message"
        usage = _usage(obj["usage"], strict, where)
        named = obj.get("model")
    elif "input_tokens" in obj or "output_tokens" in obj:
        kind = "usage"
        usage = _usage(obj, strict, where)
        named = None
    elif line is not None:
        raise _Skip("no usage in this line")
    else:
        raise InputError(
            "the JSON holds no usage: expected a usage object (with input_tokens), a response "
            "(with usage), a batch result line or a Claude Code assistant line"
        )
    chosen = model or (named if isinstance(named, str) else None)
    if chosen is None:
        raise InputError(f"{where}a bare usage object does not say its model; pass --model")
    return PricedItem(
        kind=kind,
        model=chosen,
        usage=usage,
        cost=cost(usage, chosen, table=table, batch=True if batch else None),
        line=line,
    )


def _usage(u: Mapping[str, Any], strict: bool, where: str) -> Usage:
    try:
        return Usage.from_wire(u, strict=strict)
    except UsageError as exc:
        raise InputError(f"{where}{exc}") from None


def _price_stream(
    text: str, table: ModelTable, model: str | None, batch: bool, strict: bool
) -> PricedItem:
    folded = StreamUsage()
    named: str | None = None
    decoder = SSEDecoder()
    events = [*decoder.feed(text.encode() + b"\n\n"), *decoder.flush()]
    for ev in events:
        try:
            data = ev.json()
        except orjson.JSONDecodeError:
            raise InputError(f"SSE event {ev.event!r} has data that is not JSON") from None
        if isinstance(data, Mapping):
            folded.feed(data)
            if data.get("type") == "message_start" and isinstance(data.get("message"), Mapping):
                m = data["message"].get("model")
                named = m if isinstance(m, str) else named
    if not folded.started:
        raise InputError("the stream has no message_start event; nothing to price")
    try:
        usage = folded.usage(strict=strict)
    except UsageError as exc:
        raise InputError(str(exc)) from None
    chosen = model or named
    if chosen is None:
        raise InputError("the stream does not name its model; pass --model")
    return PricedItem(
        kind="stream",
        model=chosen,
        usage=usage,
        cost=cost(usage, chosen, table=table, batch=True if batch else None),
    )
