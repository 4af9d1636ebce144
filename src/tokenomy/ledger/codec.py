"""Records <-> rows: the one place that knows how a field is stored.

Money is stored as integer pico-dollars (1 USD = 10**12 pUSD). Every price in the model table
has a handful of decimal places, so every cost it produces is a whole number of pico-dollars;
a value that is not (a hand-made record, a user price with 9 decimals) keeps its exact decimal
string in ``money_exact`` and the integer column holds it rounded half-even, so sums in SQL are
off by less than one pico-dollar per such call while the row still reads back exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, cast

import orjson

from tokenomy.core.pricing import CostBreakdown, Modifier, Unpriced
from tokenomy.core.records import (
    CallMode,
    CallRecord,
    CallStatus,
    RunRecord,
    RunSource,
    SegmentCosts,
    SegmentTokens,
)
from tokenomy.core.usage import Iteration, IterationKind, Usage
from tokenomy.errors import LedgerError

__all__ = [
    "PUSD_PER_USD",
    "RunEvent",
    "call_to_row",
    "event_to_row",
    "from_pusd",
    "json_dumps",
    "placeholder_run_row",
    "row_to_call",
    "row_to_run",
    "run_to_row",
    "to_pusd",
    "usage_columns",
]

PUSD_PER_USD = 10**12
_PICO = Decimal(PUSD_PER_USD)
# A signed 64-bit integer (BIGINT on every backend): about ±9.2 million USD per amount.
_MAX_PUSD = 2**63 - 1
_MIN_PUSD = -(2**63)


@dataclass(frozen=True, slots=True)
class RunEvent:
    """Something that happened in a run between calls: a compaction boundary, a note, …"""

    run_id: str
    at: datetime
    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------- money


def to_pusd(value: Decimal, *, where: str = "amount") -> tuple[int, str | None]:
    """``value`` USD as whole pico-dollars, and its exact string when it is finer than that."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise LedgerError(f"{where} must be a finite Decimal amount of USD, got {value!r}")
    scaled = value.scaleb(12)
    whole = scaled.to_integral_value(rounding=ROUND_HALF_EVEN)
    pusd = int(whole)
    if not _MIN_PUSD <= pusd <= _MAX_PUSD:
        raise LedgerError(f"{where} of {value} USD is beyond what the ledger stores (±9.2M USD)")
    return pusd, (None if whole == scaled else str(value))


def from_pusd(pusd: int, exact: str | None = None) -> Decimal:
    """The Decimal USD amount stored as ``pusd`` (or its exact string)."""
    if exact is not None:
        return Decimal(exact)
    # An exact division: the quotient has at most 19 significant digits.
    return Decimal(int(pusd)) / _PICO


# ---------------------------------------------------------------------- JSON


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, tuple | set | frozenset):
        return list(obj)
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"cannot store {type(obj).__name__} as JSON")


def json_dumps(value: Any) -> str:
    """JSON for the engine and for snapshots: Decimals become exact strings."""
    return orjson.dumps(value, default=_json_default).decode()


def _snapshot(value: Any, *, where: str) -> Any:
    """A JSON copy of ``value``: fails now, on the caller's thread, not in the writer."""
    try:
        return orjson.loads(json_dumps(value))
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise LedgerError(f"{where} is not JSON-serialisable: {exc}") from None


# ---------------------------------------------------------------------- runs


def run_to_row(run: RunRecord) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "parent_run_id": run.parent_run_id,
        "name": run.name,
        "tags": _snapshot(dict(run.tags), where=f"run {run.run_id!r} tags"),
        "source": run.source,
        "external_id": run.external_id,
        "project": run.project,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "placeholder": False,
        # Exact decimal string: one value per run, never summed in SQL.
        "ideal_usd": None if run.ideal_usd is None else _exact_usd(run.ideal_usd, run.run_id),
    }


def placeholder_run_row(run_id: str, started_at: datetime) -> dict[str, Any]:
    """A stand-in for a run whose calls arrive before (or without) the run itself."""
    return {
        "run_id": run_id,
        "parent_run_id": None,
        "name": "",
        "tags": {},
        "source": "library",
        "external_id": None,
        "project": None,
        "started_at": started_at,
        "ended_at": None,
        "placeholder": True,
        "ideal_usd": None,
    }


def row_to_run(row: Mapping[Any, Any]) -> RunRecord:
    return RunRecord(
        run_id=row["run_id"],
        name=row["name"],
        started_at=row["started_at"],
        parent_run_id=row["parent_run_id"],
        tags=dict(row["tags"] or {}),
        source=cast(RunSource, row["source"]),
        ended_at=row["ended_at"],
        external_id=row["external_id"],
        project=row["project"],
        ideal_usd=None if row.get("ideal_usd") is None else Decimal(row["ideal_usd"]),
    )


def _exact_usd(value: Decimal, run_id: str) -> str:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise LedgerError(f"run {run_id!r} ideal_usd must be a finite Decimal, got {value!r}")
    return str(value)


def event_to_row(event: RunEvent) -> dict[str, Any]:
    return {
        "run_id": event.run_id,
        "at": event.at,
        "kind": event.kind,
        "data": _snapshot(dict(event.data), where=f"event {event.kind!r} data"),
    }


# ---------------------------------------------------------------------- usage


def usage_columns(u: Usage) -> dict[str, Any]:
    """The usage columns of a ``calls`` row (an iteration's usage is stored the same way)."""
    return {
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cache_read_tokens": u.cache_read_tokens,
        "cache_write_5m_tokens": u.cache_write_5m_tokens,
        "cache_write_1h_tokens": u.cache_write_1h_tokens,
        "ttl_split_known": u.ttl_split_known,
        "thinking_tokens": u.thinking_tokens,
        "web_search_requests": u.web_search_requests,
        "web_fetch_requests": u.web_fetch_requests,
        "service_tier": u.service_tier,
        "speed": u.speed,
        "inference_geo": u.inference_geo,
        "iterations": [_iteration_dict(it) for it in u.iterations],
        "usage_unknown_fields": list(u.unknown_fields),
    }


def _iteration_dict(it: Iteration) -> dict[str, Any]:
    return {"kind": it.kind, "model": it.model, "usage": usage_columns(it.usage)}


def _usage_from(d: Mapping[str, Any]) -> Usage:
    return Usage(
        input_tokens=int(d["input_tokens"]),
        output_tokens=int(d["output_tokens"]),
        cache_read_tokens=int(d["cache_read_tokens"]),
        cache_write_5m_tokens=int(d["cache_write_5m_tokens"]),
        cache_write_1h_tokens=int(d["cache_write_1h_tokens"]),
        ttl_split_known=bool(d["ttl_split_known"]),
        thinking_tokens=None if d["thinking_tokens"] is None else int(d["thinking_tokens"]),
        web_search_requests=int(d["web_search_requests"]),
        web_fetch_requests=int(d["web_fetch_requests"]),
        service_tier=d["service_tier"],
        speed=d["speed"],
        inference_geo=d["inference_geo"],
        iterations=tuple(
            Iteration(
                kind=cast(IterationKind, it["kind"]),
                usage=_usage_from(it["usage"]),
                model=it["model"],
            )
            for it in d["iterations"] or ()
        ),
        unknown_fields=tuple(d["usage_unknown_fields"] or ()),
    )


# ---------------------------------------------------------------------- calls

_COST_FIELDS = (
    ("cost_input_pusd", "input_usd"),
    ("cost_cache_write_5m_pusd", "cache_write_5m_usd"),
    ("cost_cache_write_1h_pusd", "cache_write_1h_usd"),
    ("cost_cache_read_pusd", "cache_read_usd"),
    ("cost_output_pusd", "output_usd"),
    ("cost_server_tools_pusd", "server_tools_usd"),
    ("cost_total_pusd", "total_usd"),
)
_SEG_COST_FIELDS = (
    ("seg_tools_pusd", "tools_usd"),
    ("seg_system_pusd", "system_usd"),
    ("seg_history_pusd", "history_usd"),
    ("seg_new_pusd", "new_usd"),
    ("seg_output_pusd", "output_usd"),
)
_SEG_TOKEN_FIELDS = ("tools", "system", "history", "new", "output")


def call_to_row(call: CallRecord) -> dict[str, Any]:
    """The ``calls`` row of ``call``; raises LedgerError for values that cannot be stored."""
    where = f"call {call.call_id!r}"
    row: dict[str, Any] = {
        "call_id": call.call_id,
        "run_id": call.run_id,
        "seq": call.seq,
        "started_at": call.started_at,
        "ended_at": call.ended_at,
        "model_requested": call.model_requested,
        "model_used": call.model_used,
        "mode": call.mode,
        "status": call.status,
        "stream": call.stream,
        "latency_ms": call.latency_ms,
        "ttft_ms": call.ttft_ms,
        "http_status": call.http_status,
        "error_type": call.error_type,
        "error_message": call.error_message,
        "request_id": call.request_id,
        "message_id": call.message_id,
        "stop_reason": call.stop_reason,
        "prefix_hash": call.prefix_hash,
        "breakpoints": list(call.breakpoints),
        "decisions": _snapshot(dict(call.decisions), where=f"{where} decisions"),
        "api_key_fingerprint": call.api_key_fingerprint,
        "cost_model": None,
        "cost_modifiers": None,
        "unpriced_reason": None,
    }
    if call.usage is None:
        row.update(dict.fromkeys(usage_columns(Usage())))
    else:
        row.update(usage_columns(call.usage))
    exact: dict[str, str] = {}

    def money(column: str, value: Decimal) -> int:
        pusd, text = to_pusd(value, where=f"{where} {column}")
        if text is not None:
            exact[column] = text
        return pusd

    cost = call.cost
    row.update(dict.fromkeys(c for c, _ in _COST_FIELDS))
    if isinstance(cost, CostBreakdown):
        row["cost_model"] = cost.model
        row["cost_modifiers"] = list(cost.modifiers)
        for column, attr in _COST_FIELDS:
            row[column] = money(column, getattr(cost, attr))
    elif isinstance(cost, Unpriced):
        row["cost_model"] = cost.model
        row["unpriced_reason"] = cost.reason
    seg = call.segments
    for name in _SEG_TOKEN_FIELDS:
        row[f"seg_{name}_tokens"] = None if seg is None else getattr(seg, name)
    sc = call.segment_costs
    for column, attr in _SEG_COST_FIELDS:
        row[column] = None if sc is None else money(column, getattr(sc, attr))
    row["money_exact"] = exact or None
    return row


def row_to_call(row: Mapping[Any, Any]) -> CallRecord:
    exact: Mapping[str, str] = row["money_exact"] or {}

    def usd(column: str) -> Decimal:
        return from_pusd(row[column], exact.get(column))

    cost: CostBreakdown | Unpriced | None = None
    if row["unpriced_reason"] is not None:
        cost = Unpriced(model=row["cost_model"], reason=row["unpriced_reason"])
    elif row["cost_total_pusd"] is not None:
        cost = CostBreakdown(
            model=row["cost_model"],
            input_usd=usd("cost_input_pusd"),
            cache_write_5m_usd=usd("cost_cache_write_5m_pusd"),
            cache_write_1h_usd=usd("cost_cache_write_1h_pusd"),
            cache_read_usd=usd("cost_cache_read_pusd"),
            output_usd=usd("cost_output_pusd"),
            server_tools_usd=usd("cost_server_tools_pusd"),
            modifiers=tuple(cast(list[Modifier], row["cost_modifiers"] or [])),
        )
    segments = None
    if row["seg_tools_tokens"] is not None:
        segments = SegmentTokens(**{n: int(row[f"seg_{n}_tokens"]) for n in _SEG_TOKEN_FIELDS})
    segment_costs = None
    if row["seg_tools_pusd"] is not None:
        segment_costs = SegmentCosts(**{attr: usd(col) for col, attr in _SEG_COST_FIELDS})
    return CallRecord(
        call_id=row["call_id"],
        run_id=row["run_id"],
        seq=row["seq"],
        started_at=row["started_at"],
        model_requested=row["model_requested"],
        model_used=row["model_used"],
        mode=cast(CallMode, row["mode"]),
        status=cast(CallStatus, row["status"]),
        stream=bool(row["stream"]),
        usage=None if row["input_tokens"] is None else _usage_from(row),
        cost=cost,
        segments=segments,
        segment_costs=segment_costs,
        ended_at=row["ended_at"],
        latency_ms=row["latency_ms"],
        ttft_ms=row["ttft_ms"],
        http_status=row["http_status"],
        error_type=row["error_type"],
        error_message=row["error_message"],
        request_id=row["request_id"],
        message_id=row["message_id"],
        stop_reason=row["stop_reason"],
        prefix_hash=row["prefix_hash"],
        breakpoints=tuple(row["breakpoints"] or ()),
        decisions=dict(row["decisions"] or {}),
        api_key_fingerprint=row["api_key_fingerprint"],
    )


def utc_now() -> datetime:
    """Only for stamps the ledger writes about itself (meta); records carry their own times."""
    return datetime.now(UTC)
