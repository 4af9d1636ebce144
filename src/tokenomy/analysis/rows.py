"""``calls`` rows for imported transcript calls, built in integer pico-dollars.

A first import writes tens of thousands of calls; building each through ``CallRecord``,
``Decimal`` arithmetic and :func:`tokenomy.ledger.codec.call_to_row` costs more than reading
the transcript. Every price in the model table is a whole number of pico-dollars per token
(``price_per_MTok × 10^6``), so a call's cost and its segment costs are integer sums here.
The row is *exactly* what ``call_to_row`` makes of the same call (a test checks every column
over generated usages); a call whose rates are not whole pico-dollars per token (a user's
price with more than six decimals) or whose usage has server-side compaction iterations goes
through ``CallRecord`` and the codec instead. :func:`transcript_call_row` makes that choice,
with the model lookups and rates a :class:`Pricer` memoizes; :class:`RowPacker` packs the row
for the backend's driver.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Table

from tokenomy.analysis.claude_code import TranscriptCall
from tokenomy.core.anatomy import segment_costs
from tokenomy.core.pricing import CostBreakdown, Modifier, Rates, Unpriced, cost, rates
from tokenomy.core.records import CallRecord, CallStatus, SegmentTokens
from tokenomy.core.usage import Usage
from tokenomy.data.table import ModelInfo, ModelTable
from tokenomy.ledger.codec import PUSD_PER_USD, call_to_row, json_dumps, usage_columns
from tokenomy.ledger.schema import UTCDateTime, calls

__all__ = [
    "CALL_COLUMNS",
    "IntRates",
    "Pricer",
    "RowPacker",
    "fast_call_row",
    "int_rates",
    "transcript_call_row",
    "usage_columns",
]

_PUSD_PER_TOKEN = Decimal(10**6)  # pUSD per token at 1 USD per million tokens
_PICO = Decimal(PUSD_PER_USD)


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


# The ``calls`` columns in table order: :func:`fast_call_row` builds its tuple in this order
# (:class:`Pricer` checks it against the table, a test checks every value against the codec).
CALL_COLUMNS = (
    "call_id",
    "run_id",
    "seq",
    "started_at",
    "ended_at",
    "model_requested",
    "model_used",
    "mode",
    "status",
    "stream",
    "latency_ms",
    "ttft_ms",
    "http_status",
    "error_type",
    "error_message",
    "request_id",
    "message_id",
    "stop_reason",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "ttl_split_known",
    "thinking_tokens",
    "web_search_requests",
    "web_fetch_requests",
    "service_tier",
    "speed",
    "inference_geo",
    "iterations",
    "usage_unknown_fields",
    "cost_model",
    "cost_input_pusd",
    "cost_cache_write_5m_pusd",
    "cost_cache_write_1h_pusd",
    "cost_cache_read_pusd",
    "cost_output_pusd",
    "cost_server_tools_pusd",
    "cost_total_pusd",
    "cost_modifiers",
    "unpriced_reason",
    "seg_tools_tokens",
    "seg_system_tokens",
    "seg_history_tokens",
    "seg_new_tokens",
    "seg_output_tokens",
    "seg_tools_pusd",
    "seg_system_pusd",
    "seg_history_pusd",
    "seg_new_pusd",
    "seg_output_pusd",
    "money_exact",
    "prefix_hash",
    "breakpoints",
    "decisions",
    "api_key_fingerprint",
)


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
    sqlite: bool,
) -> tuple[tuple[Any, ...], int]:
    """The packed ``calls`` row (:class:`RowPacker`'s form for the backend, columns in
    :data:`CALL_COLUMNS` order) and the call's total cost in pUSD (usage without iterations).

    Built as one tuple: tens of thousands of calls go through here on a first import.
    """
    u = usage
    r = rates
    c_in = u.input_tokens * r.input
    c_w5 = u.cache_write_5m_tokens * r.write_5m
    c_w1 = u.cache_write_1h_tokens * r.write_1h
    c_read = u.cache_read_tokens * r.read
    c_out = u.output_tokens * r.output
    c_tools = u.web_search_requests * web_search_pusd
    total = c_in + c_w5 + c_w1 + c_read + c_out + c_tools
    # Segment dollars: the prompt is read / 1h-written / 5m-written / uncached tokens, in
    # that order (as tokenomy.core.anatomy.segment_costs prices it in Decimal); a segment
    # costs what the prompt costs up to its end minus up to its start.
    b_read = u.cache_read_tokens
    b_w1 = b_read + u.cache_write_1h_tokens
    b_w5 = b_w1 + u.cache_write_5m_tokens
    b_end = b_w5 + u.input_tokens

    def upto(x: int) -> int:
        if x <= b_read:
            return x * r.read
        if x <= b_w1:
            return c_read + (x - b_read) * r.write_1h
        if x <= b_w5:
            return c_read + c_w1 + (x - b_w1) * r.write_5m
        return c_read + c_w1 + c_w5 + (min(x, b_end) - b_w5) * r.input

    p1 = segments.tools
    p2 = p1 + segments.system
    p3 = p2 + segments.history
    p4 = p3 + segments.new
    u1, u2, u3 = upto(p1), upto(p2), upto(p3)
    seg = (u1, u2 - u1, u3 - u2, upto(p4) - u3)
    unknown = list(u.unknown_fields)
    modifiers = list(r.modifiers)
    if sqlite:
        at_v: Any = _sqlite_time(at)
        stream: Any = 1
        split: Any = int(u.ttl_split_known)
        empty: Any = _EMPTY_LIST
        unknown_v: Any = _sqlite_json(unknown)
        modifiers_v: Any = _sqlite_json(modifiers)
        decisions_v: Any = json_dumps(decisions)
        null: Any = _NULL  # SQLAlchemy's JSON type stores None as JSON null
    else:
        at_v, stream, split, empty, null = at, True, u.ttl_split_known, [], None
        unknown_v, modifiers_v, decisions_v = unknown, modifiers, decisions
    row = (
        call_id,
        run_id,
        seq,
        at_v,
        at_v,
        model_requested,
        model_used,
        "interactive",
        status,
        stream,
        None,  # latency_ms
        None,  # ttft_ms
        None,  # http_status
        None,  # error_type
        None,  # error_message
        request_id,
        message_id,
        stop_reason,
        u.input_tokens,
        u.output_tokens,
        u.cache_read_tokens,
        u.cache_write_5m_tokens,
        u.cache_write_1h_tokens,
        split,
        u.thinking_tokens,
        u.web_search_requests,
        u.web_fetch_requests,
        u.service_tier,
        u.speed,
        u.inference_geo,
        empty,  # iterations: none on this path
        unknown_v,
        cost_model,
        c_in,
        c_w5,
        c_w1,
        c_read,
        c_out,
        c_tools,
        total,
        modifiers_v,
        None,  # unpriced_reason
        segments.tools,
        segments.system,
        segments.history,
        segments.new,
        segments.output,
        seg[0],
        seg[1],
        seg[2],
        seg[3],
        c_out,  # seg_output_pusd
        null,  # money_exact: every value is whole pico-dollars
        None,  # prefix_hash
        empty if sqlite else [],  # breakpoints
        decisions_v,
        None,  # api_key_fingerprint
    )
    return row, total


class Pricer:
    """Cost and per-segment rates of transcript calls, with model lookups and rates memoized,
    and the packer of their rows. One per reading process (the importer's workers each have one).
    """

    def __init__(self, table: ModelTable, *, sqlite: bool = True) -> None:
        self.table = table
        self.sqlite = sqlite
        self.packer = RowPacker(calls, sqlite=sqlite)
        if self.packer.cols != CALL_COLUMNS:  # a schema change fast_call_row does not know
            raise AssertionError("tokenomy.analysis.rows.CALL_COLUMNS is not the calls table")
        self._info: dict[str, ModelInfo | None] = {}
        self._rates: dict[tuple[str, bool, bool, bool, bool], Rates | Unpriced] = {}
        self._int: dict[int, IntRates | None] = {}
        web = table.web_search_usd_per_request * _PICO
        self.web_search_pusd = int(web) if web == web.to_integral_value() else -1

    def int_rates(self, r: Rates) -> IntRates | None:
        """``r`` in whole pUSD per token (memoized by identity: rates are memoized too)."""
        if self.web_search_pusd < 0:
            return None
        key = id(r)
        if key not in self._int:
            self._int[key] = int_rates(r)
        return self._int[key]

    def info(self, model: str) -> ModelInfo | None:
        if model not in self._info:
            self._info[model] = self.table.find(model)
        return self._info[model]

    def rates(self, model: str, call: TranscriptCall) -> Rates | None:
        info = self.info(model)
        if info is None:
            return None
        u = call.usage.billable()
        lc = info.long_context
        key = (
            model,
            lc is not None and u.total_input_tokens > lc.above_input_tokens,
            call.usage.is_batch,
            call.usage.speed == "fast",
            (call.usage.inference_geo or "").lower() == "us",
        )
        r = self._rates.get(key)
        if r is None:
            r = rates(
                info,
                table=self.table,
                total_input_tokens=u.total_input_tokens,
                batch=key[2],
                fast=key[3],
                geo_us=key[4],
            )
            self._rates[key] = r
        return r if isinstance(r, Rates) else None


def transcript_call_row(
    c: TranscriptCall,
    *,
    pricer: Pricer,
    info: ModelInfo | None,
    rates: Rates | None,
    call_id: str,
    run_id: str,
    seq: int,
    segments: SegmentTokens,
    decisions: dict[str, Any],
) -> tuple[tuple[Any, ...], Decimal | None, str | None]:
    """The packed ``calls`` row of a transcript call, its cost (None when unpriced) and the
    unpriced model: in integer pUSD (:func:`fast_call_row`) when the rates allow it, else through
    ``CallRecord`` and the codec. ``info`` and ``rates`` are ``pricer``'s for the call's model."""
    r = rates
    status: CallStatus = "error" if c.api_error else "ok"
    ir = pricer.int_rates(r) if r is not None and info is not None else None
    if ir is not None and info is not None and not c.usage.iterations:
        row, total_pusd = fast_call_row(
            call_id=call_id,
            run_id=run_id,
            seq=seq,
            at=c.at,
            model_requested=c.requested_model or c.model,
            model_used=c.model,
            cost_model=info.id,
            status=status,
            usage=c.usage,
            rates=ir,
            web_search_pusd=pricer.web_search_pusd,
            segments=segments,
            request_id=c.request_id,
            message_id=c.message_id,
            stop_reason=c.stop_reason,
            decisions=decisions,
            sqlite=pricer.sqlite,
        )
        return row, Decimal(total_pusd) / _PICO, None
    price = cost(c.usage, c.model, table=pricer.table)
    record = CallRecord(
        call_id=call_id,
        run_id=run_id,
        seq=seq,
        started_at=c.at,
        model_requested=c.requested_model or c.model,
        model_used=c.model,
        status=status,
        stream=True,
        usage=c.usage,
        cost=price,
        segments=segments,
        segment_costs=segment_costs(segments, c.usage, r) if r is not None else None,
        ended_at=c.at,
        request_id=c.request_id,
        message_id=c.message_id,
        stop_reason=c.stop_reason,
        decisions=decisions,
    )
    cost_usd = price.total_usd if isinstance(price, CostBreakdown) else None
    unpriced = price.model if isinstance(price, Unpriced) else None
    return pricer.packer.pack(call_to_row(record)), cost_usd, unpriced


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
    text: str
    if v.tzinfo is UTC:  # transcript timestamps: already UTC, "+00:00" cut (no new datetime)
        text = v.isoformat(" ")[:-6]
    else:
        if v.tzinfo is not None:
            v = v.astimezone(UTC).replace(tzinfo=None)
        text = v.isoformat(" ")
    return text if v.microsecond else text + ".000000"


_EMPTY_LIST = "[]"
_NULL = "null"


def _sqlite_json(v: Any) -> str:
    if isinstance(v, list) and not v:
        return _EMPTY_LIST
    if v is None:
        return _NULL
    return json_dumps(v)


def _sqlite_bool(v: Any) -> Any:
    return None if v is None else int(bool(v))
