"""Records go in and come back equal, on SQLite and PostgreSQL: every field, money exact."""

from __future__ import annotations

from datetime import timedelta, timezone
from decimal import Decimal

from sqlalchemy import select

from tokenomy.core.pricing import Unpriced
from tokenomy.core.records import CallRecord
from tokenomy.ledger import Ledger
from tokenomy.ledger.codec import RunEvent, row_to_run
from tokenomy.ledger.queries import run_calls
from tokenomy.ledger.schema import events, runs

from . import records as R


def _runs(ledger: Ledger) -> dict[str, object]:
    with ledger.read() as conn:
        return {r["run_id"]: r for r in conn.execute(select(runs)).mappings()}


def test_every_field_of_a_call_round_trips(ledger: Ledger) -> None:
    w = ledger.writer()
    w.record_run(R.run())
    original = R.full_call()
    w.record_call(original)
    w.flush()
    (back,) = run_calls(ledger, "run-1")
    assert back == original
    # Fields that == ignores, and the exact money, one by one.
    assert back.usage is not None and original.usage is not None
    assert back.usage.unknown_fields == ("brand_new_field",)
    assert back.cost == original.cost
    assert back.cost is not None and back.cost.total_usd == Decimal("0.076463")
    assert str(back.cost.total_usd) == "0.076463"
    assert back.started_at.tzinfo is not None


def test_every_field_of_a_run_round_trips(ledger: Ledger) -> None:
    original = R.run(
        "run-full",
        parent_run_id="run-parent",
        source="claude-code",
        ended_at=R.T0 + timedelta(hours=1),
        external_id="8b0c-session",
        project="/home/me/proj",
        tags={"a": "1", "ünïcode": "✓"},
    )
    w = ledger.writer()
    w.record_run(original)
    w.flush()
    assert row_to_run(_runs(ledger)["run-full"]) == original  # type: ignore[arg-type]


def test_unpriced_and_empty_calls_keep_their_state(ledger: Ledger) -> None:
    w = ledger.writer()
    w.record_run(R.run())
    unpriced = R.call("c-unpriced", cost_=Unpriced("claude-future-9", "unknown model …"))
    no_usage = R.call("c-error", seq=2, usage=None, status="error", http_status=500)
    for c in (unpriced, no_usage):
        w.record_call(c)
    w.flush()
    back = {c.call_id: c for c in run_calls(ledger, "run-1")}
    assert back["c-unpriced"] == unpriced
    assert isinstance(back["c-unpriced"].cost, Unpriced)
    assert back["c-unpriced"].cost.total_usd is None  # never $0
    assert back["c-error"] == no_usage
    assert back["c-error"].usage is None and back["c-error"].cost is None
    assert back["c-error"].segments is None and back["c-error"].segment_costs is None


def test_money_finer_than_a_picodollar_stays_exact(ledger: Ledger) -> None:
    odd = R.cost(input_usd="0.0000000000001234567", output="1E-30", tools="123456.000000000001")
    c = R.call(cost_=odd)
    w = ledger.writer()
    w.record_call(c)
    w.flush()
    (back,) = run_calls(ledger, "run-1")
    assert back.cost == odd
    assert back.cost is not None and back.cost.total_usd == odd.total_usd


def test_times_come_back_in_utc(ledger: Ledger) -> None:
    plus2 = timezone(timedelta(hours=2))
    local = R.T0.astimezone(plus2)
    w = ledger.writer()
    w.record_call(R.call(started_at=local))
    w.flush()
    (back,) = run_calls(ledger, "run-1")
    assert back.started_at == local  # the same instant
    assert back.started_at.utcoffset() == timedelta(0)


def test_recording_a_run_again_updates_it(ledger: Ledger) -> None:
    w = ledger.writer()
    w.record_run(R.run(name="first"))
    w.flush()
    ended = R.run(name="final", ended_at=R.T0 + timedelta(minutes=5), tags={"done": "yes"})
    w.record_run(ended)
    w.record_run(ended)  # twice in one batch too
    w.flush()
    rows = _runs(ledger)
    assert len(rows) == 1
    assert row_to_run(rows["run-1"]) == ended  # type: ignore[arg-type]


def test_recording_a_call_again_replaces_it(ledger: Ledger) -> None:
    w = ledger.writer()
    w.record_call(R.call(status="error"))
    w.flush()
    fixed = R.call(status="ok", cost_=R.cost(output="0.5"))
    w.record_call(fixed)
    w.flush()
    assert run_calls(ledger, "run-1") == (fixed,)


def test_a_call_before_its_run_gets_a_placeholder_the_run_replaces(ledger: Ledger) -> None:
    w = ledger.writer()
    w.record_call(R.call(run_id="late"))
    w.flush()
    row = _runs(ledger)["late"]
    assert row["placeholder"] is True  # type: ignore[index]
    w.record_run(R.run("late", name="arrived"))
    w.flush()
    row = _runs(ledger)["late"]
    assert row["placeholder"] is False and row["name"] == "arrived"  # type: ignore[index]
    assert len(run_calls(ledger, "late")) == 1


def test_events_are_recorded(ledger: Ledger) -> None:
    w = ledger.writer()
    w.record_run(R.run())
    w.record_event(RunEvent("run-1", R.T0, "compaction", {"before_tokens": 180000, "after": 9000}))
    w.flush()
    with ledger.read() as conn:
        (row,) = conn.execute(select(events)).mappings()
    assert row["kind"] == "compaction"
    assert row["data"] == {"before_tokens": 180000, "after": 9000}
    assert row["at"] == R.T0


def test_decisions_are_copied_when_recorded(ledger: Ledger) -> None:
    decisions: dict[str, object] = {"ttl": "5m"}
    c = R.call(decisions=decisions)
    w = ledger.writer()
    w.record_call(c)
    decisions["ttl"] = "changed after recording"
    w.flush()
    (back,) = run_calls(ledger, "run-1")
    assert back.decisions == {"ttl": "5m"}


def test_unicode_and_long_text_survive(ledger: Ledger) -> None:
    msg = "错误 — " + "x" * 20_000
    c: CallRecord = R.call(error_message=msg, stop_reason="end_turn")
    w = ledger.writer()
    w.record_call(c)
    w.flush()
    assert run_calls(ledger, "run-1")[0].error_message == msg
