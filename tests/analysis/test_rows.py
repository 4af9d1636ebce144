"""The importer's integer-pico-dollar rows are exactly the codec's rows for the same call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tokenomy.analysis.rows import CALL_COLUMNS, RowPacker, fast_call_row, int_rates
from tokenomy.core.anatomy import segment_costs
from tokenomy.core.pricing import Rates, cost, rates
from tokenomy.core.records import CallRecord, SegmentTokens
from tokenomy.core.usage import Usage
from tokenomy.data import builtin_table
from tokenomy.ledger import Ledger
from tokenomy.ledger.codec import call_to_row, row_to_call
from tokenomy.ledger.schema import calls, runs

TABLE = builtin_table()
MODELS = [m.id for m in TABLE if m.prices is not None]
AT = datetime(2026, 11, 10, 9, 30, 1, 250000, tzinfo=UTC)


@st.composite
def _calls(draw: st.DrawFn) -> tuple[str, Usage, SegmentTokens]:
    model = draw(st.sampled_from(MODELS))
    n = st.integers(0, 400_000)
    u = Usage(
        input_tokens=draw(n),
        output_tokens=draw(st.integers(0, 50_000)),
        cache_read_tokens=draw(n),
        cache_write_5m_tokens=draw(n),
        cache_write_1h_tokens=draw(n),
        ttl_split_known=draw(st.booleans()),
        web_search_requests=draw(st.integers(0, 3)),
        service_tier=draw(st.sampled_from([None, "standard", "batch"])),
        speed=draw(st.sampled_from([None, "standard", "fast"])),
        inference_geo=draw(st.sampled_from([None, "us", "not_available"])),
    )
    total = u.total_input_tokens
    a = draw(st.integers(0, total))
    b = draw(st.integers(0, total - a))
    c = draw(st.integers(0, total - a - b))
    seg = SegmentTokens(tools=a, system=b, history=c, new=total - a - b - c, output=u.output_tokens)
    return model, u, seg


def _rates(model: str, u: Usage) -> Rates | None:
    info = TABLE.find(model)
    assert info is not None
    r = rates(
        info,
        table=TABLE,
        total_input_tokens=u.total_input_tokens,
        batch=u.is_batch,
        fast=u.speed == "fast",
        geo_us=(u.inference_geo or "").lower() == "us",
    )
    return r if isinstance(r, Rates) else None


@settings(max_examples=400, deadline=None)
@given(_calls(), st.booleans())
def test_fast_rows_equal_codec_rows(case: tuple[str, Usage, SegmentTokens], sqlite: bool) -> None:
    """Packed for either backend, the fast row is the codec's row packed the same way."""
    model, u, seg = case
    r = _rates(model, u)
    if r is None:
        return  # no fast-mode price for this model: the importer takes the codec's path
    ir = int_rates(r)
    assert ir is not None  # every price in the table is whole pico-dollars per token
    decisions = {"transcript": {"file": "f.jsonl", "line": 3}}
    row, total = fast_call_row(
        call_id="cc:m:r",
        run_id="cc:s",
        seq=4,
        at=AT,
        model_requested=model,
        model_used=model,
        cost_model=TABLE.get(model).id,
        status="ok",
        usage=u,
        rates=ir,
        web_search_pusd=10_000_000_000,
        segments=seg,
        request_id="r",
        message_id="m",
        stop_reason="end_turn",
        decisions=decisions,
        sqlite=sqlite,
    )
    price = cost(u, model, table=TABLE)
    record = CallRecord(
        call_id="cc:m:r",
        run_id="cc:s",
        seq=4,
        started_at=AT,
        model_requested=model,
        model_used=model,
        stream=True,
        usage=u,
        cost=price,
        segments=seg,
        segment_costs=segment_costs(seg, u, r),
        ended_at=AT,
        request_id="r",
        message_id="m",
        stop_reason="end_turn",
        decisions=decisions,
    )
    packer = RowPacker(calls, sqlite=sqlite)
    assert packer.cols == CALL_COLUMNS
    assert row == packer.pack(call_to_row(record))
    assert total == row[CALL_COLUMNS.index("cost_total_pusd")]


def test_packed_rows_read_back_as_the_record(ledger: Ledger) -> None:
    """Rows written straight to the driver read back through the ledger's own code."""
    u = Usage(input_tokens=5, output_tokens=9, cache_read_tokens=100, cache_write_1h_tokens=7)
    record = CallRecord(
        call_id="c1",
        run_id="r1",
        seq=1,
        started_at=AT,
        model_requested="claude-haiku-4-5",
        model_used="claude-haiku-4-5-20251001",
        stream=True,
        usage=u,
        cost=cost(u, "claude-haiku-4-5", table=TABLE),
        ended_at=AT + timedelta(seconds=1),
        decisions={"transcript": {"line": 1}},
    )
    row = call_to_row(record)
    packer = RowPacker(calls, sqlite=ledger.backend == "sqlite")
    run_packer = RowPacker(runs, sqlite=ledger.backend == "sqlite")
    run_row: dict[str, Any] = {
        "run_id": "r1",
        "parent_run_id": None,
        "name": "n",
        "tags": {},
        "source": "claude-code",
        "external_id": None,
        "project": None,
        "started_at": AT,
        "ended_at": None,
        "placeholder": False,
        "ideal_usd": None,
    }
    with ledger.engine.begin() as conn:
        if ledger.backend == "sqlite":
            conn.exec_driver_sql(run_packer.upsert_sql("run_id"), [run_packer.pack(run_row)])
            conn.exec_driver_sql(packer.upsert_sql("call_id"), [packer.pack(row)])
        else:
            conn.execute(runs.insert(), [run_row])
            conn.execute(calls.insert(), [dict(zip(packer.cols, packer.pack(row), strict=True))])
    with ledger.read() as conn:
        back = row_to_call(conn.execute(select(calls)).mappings().one())
    assert back == record
