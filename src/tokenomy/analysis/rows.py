"""``calls`` rows for imported transcript calls, built in integer pico-dollars.

A first import writes tens of thousands of calls; building each through ``CallRecord``,
``Decimal`` arithmetic and :func:`tokenomy.ledger.codec.call_to_row` costs more than reading
the transcript. Every price in the model table is a whole number of pico-dollars per token
(``price_per_MTok × 10^6``), so a call's cost and its segment costs are integer sums here.
The row is *exactly* what ``call_to_row`` makes of the same call (a test checks every column
over generated usages); a call whose rates are not whole pico-dollars per token (a user's
price with more than six decimals) or whose usage has server-side compaction iterations goes
through ``CallRecord`` and the codec instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Table

from tokenomy.core.pricing import Modifier, Rates
from tokenomy.core.records import SegmentTokens
from tokenomy.core.usage import Usage
from tokenomy.ledger.codec import json_dumps, usage_columns
from tokenomy.ledger.schema import UTCDateTime

__all__ = ["IntRates", "fast_call_row", "int_rates", "usage_columns"]

_PUSD_PER_TOKEN = Decimal(10**6)  # pUSD per token at 1 USD per million tokens


@dataclass(frozen=True, slots=True)
class IntRates:
    """Rates in pico-dollars per token."""

    input: int
    write_5m: int
    write_1h: int
    read: int
    output: int
    modifiers: tuple[Modifier, ...]


def int_rates(r: Rates) -> IntRates | None:
    """``r`` in whole pico-dollars per token, or None when a rate is finer than that."""
    out: list[int] = []
    for price in (r.input, r.cache_write_5m, r.cache_write_1h, r.cache_read, r.output):
        v = price * _PUSD_PER_TOKEN
        if v != v.to_integral_value():
            return None
        out.append(int(v))
    return IntRates(out[0], out[1], out[2], out[3], out[4], modifiers=r.modifiers)


def fast_call_row(
    *,
    call_id: str,
    run_id: str,
    seq: int,
    at: datetime,
    model_requested: str,
    model_used: str,
    cost_model: str,
    status: str,
    usage: Usage,
    rates: IntRates,
    web_search_pusd: int,
    segments: SegmentTokens,
    request_id: str | None,
    message_id: str | None,
    stop_reason: str | None,
    decisions: Mapping[str, Any],
) -> tuple[dict[str, Any], int]:
    """The ``calls`` row and the call's total cost in pUSD (usage without iterations)."""
    u = usage
    r = rates
    c_in = u.input_tokens * r.input
    c_w5 = u.cache_write_5m_tokens * r.write_5m
    c_w1 = u.cache_write_1h_tokens * r.write_1h
    c_read = u.cache_read_tokens * r.read
    c_out = u.output_tokens * r.output
    c_tools = u.web_search_requests * web_search_pusd
    total = c_in + c_w5 + c_w1 + c_read + c_out + c_tools
    # Segment dollars: each segment's overlap with the read / 1h / 5m / uncached regions
    # (prompt order), as tokenomy.core.anatomy.segment_costs does in Decimal.
    regions = (
        (u.cache_read_tokens, r.read),
        (u.cache_write_1h_tokens, r.write_1h),
        (u.cache_write_5m_tokens, r.write_5m),
        (u.input_tokens, r.input),
    )
    seg = [0, 0, 0, 0]
    start = 0
    for i, size in enumerate((segments.tools, segments.system, segments.history, segments.new)):
        end = start + size
        r_start = 0
        for r_size, rate in regions:
            r_end = r_start + r_size
            overlap = min(end, r_end) - max(start, r_start)
            if overlap > 0:
                seg[i] += overlap * rate
            r_start = r_end
        start = end
    row: dict[str, Any] = {
        "call_id": call_id,
        "run_id": run_id,
        "seq": seq,
        "started_at": at,
        "ended_at": at,
        "model_requested": model_requested,
        "model_used": model_used,
        "mode": "interactive",
        "status": status,
        "stream": True,
        "latency_ms": None,
        "ttft_ms": None,
        "http_status": None,
        "error_type": None,
        "error_message": None,
        "request_id": request_id,
        "message_id": message_id,
        "stop_reason": stop_reason,
        "prefix_hash": None,
        "breakpoints": [],
        "decisions": decisions,
        "api_key_fingerprint": None,
        "cost_model": cost_model,
        "cost_modifiers": list(r.modifiers),
        "unpriced_reason": None,
        **usage_columns(u),
        "cost_input_pusd": c_in,
        "cost_cache_write_5m_pusd": c_w5,
        "cost_cache_write_1h_pusd": c_w1,
        "cost_cache_read_pusd": c_read,
        "cost_output_pusd": c_out,
        "cost_server_tools_pusd": c_tools,
        "cost_total_pusd": total,
        "seg_tools_tokens": segments.tools,
        "seg_system_tokens": segments.system,
        "seg_history_tokens": segments.history,
        "seg_new_tokens": segments.new,
        "seg_output_tokens": segments.output,
        "seg_tools_pusd": seg[0],
        "seg_system_pusd": seg[1],
        "seg_history_pusd": seg[2],
        "seg_new_pusd": seg[3],
        "seg_output_pusd": c_out,
        "money_exact": None,
    }
    return row, total


class RowPacker:
    """Rows of one table as tuples in column order, ready for the backend's driver.

    For SQLite the values are converted the way SQLAlchemy's column types store them, so the
    rows read back through the ledger's own code unchanged: timestamps as UTC
    ``YYYY-MM-DD HH:MM:SS.ffffff`` text, booleans as 0/1, JSON as JSON text (None as ``null``,
    like SQLAlchemy's JSON type). For PostgreSQL they stay Python values (SQLAlchemy binds
    them). Readers pack in their own process, so the importer's writer only writes.
    """

    def __init__(self, table: Table, *, sqlite: bool) -> None:
        self.table = table
        self.cols = tuple(c.name for c in table.columns)
        convert: list[tuple[int, Callable[[Any], Any]]] = []
        if sqlite:
            for i, c in enumerate(table.columns):
                if isinstance(c.type, UTCDateTime):
                    convert.append((i, _sqlite_time))
                elif isinstance(c.type, JSON):
                    convert.append((i, _sqlite_json))
                elif isinstance(c.type, Boolean):
                    convert.append((i, _sqlite_bool))
        self.convert = tuple(convert)  # only the few columns whose values need converting

    def pack(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        out = [row[c] for c in self.cols]
        for i, f in self.convert:
            out[i] = f(out[i])
        return tuple(out)

    def upsert_sql(self, key: str) -> str:
        """SQLite's ``INSERT … ON CONFLICT (key) DO UPDATE`` for packed tuples."""
        names = ", ".join(f'"{c}"' for c in self.cols)
        marks = ", ".join("?" for _ in self.cols)
        sets = ", ".join(f'"{c}" = excluded."{c}"' for c in self.cols if c != key)
        return (
            f'INSERT INTO "{self.table.name}" ({names}) VALUES ({marks}) '
            f'ON CONFLICT ("{key}") DO UPDATE SET {sets}'
        )


def _sqlite_time(v: Any) -> Any:
    if v is None:
        return None
    if v.tzinfo is not None:
        v = v.astimezone(UTC).replace(tzinfo=None)
    text: str = v.isoformat(" ")
    return text if v.microsecond else text + ".000000"


_EMPTY_LIST = "[]"


def _sqlite_json(v: Any) -> str:
    if isinstance(v, list) and not v:
        return _EMPTY_LIST
    return json_dumps(v)


def _sqlite_bool(v: Any) -> Any:
    return None if v is None else int(bool(v))
