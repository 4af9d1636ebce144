"""Reports over the imported fixture: groups, turns, the TTL what-if — numbers by hand.

Costs per call are in tests/analysis/test_import.py's docstring; the segment split of each
call is checked there. Here: how they add up per group.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tokenomy.analysis.importer import import_claude_code
from tokenomy.analysis.reports import usage_report
from tokenomy.analysis.turns import run_detail, what_if_report
from tokenomy.data.table import ModelTable
from tokenomy.errors import InputError
from tokenomy.ledger import Ledger

NOW = datetime(2026, 11, 20, tzinfo=UTC)
S1 = "cc:11111111-1111-4111-8111-111111111111"
S2 = "cc:22222222-2222-4222-8222-222222222222"


@pytest.fixture
def imported(ledger: Ledger, basic: Path, table: ModelTable) -> Ledger:
    import_claude_code(ledger, [basic], table=table, now=NOW, workers=0)
    return ledger


def test_by_model_day_week_month_and_project(imported: Ledger) -> None:
    by_model = {r.key: r for r in usage_report(imported, by="model").rows}
    # sonnet: A B C D H J; haiku: F G I; claude-nova-9: E (unpriced)
    assert by_model["claude-sonnet-4-5-20250929"].cost_usd == Decimal("0.1955172")
    assert by_model["claude-haiku-4-5-20251001"].cost_usd == Decimal("0.014857")
    nova = by_model["claude-nova-9"]
    assert nova.calls == 1 and nova.unpriced_calls == 1 and nova.cost_usd == 0
    for by, key in (("day", "2026-11-10"), ("week", "2026-11-09"), ("month", "2026-11")):
        rep = usage_report(imported, by=by)  # type: ignore[arg-type]
        assert [r.key for r in rep.rows] == [key]
        assert rep.rows[0].calls == 10 and rep.rows[0].cost_usd == Decimal("0.2103742")
    [proj] = usage_report(imported, by="project").rows
    assert proj.key == "/w/app" and proj.cost_usd == Decimal("0.2103742")
    assert usage_report(imported, by="day", project="nothing-like-it").rows == ()
    late = usage_report(imported, by="day", since=datetime(2026, 11, 11, tzinfo=UTC))
    assert late.rows == ()


def test_by_session_splits_cost_by_segment(imported: Ledger) -> None:
    rows = {r.key: r for r in usage_report(imported, by="session").rows}
    s1 = rows[S1]
    assert s1.label == "Fix the login bug and add a test"
    assert s1.cost_usd == Decimal("0.2005492") and s1.total_usd == Decimal("0.2005492")
    assert s1.calls == 9  # 5 own + F G + H + I
    # Segments of s1's own calls (A-D; E is unpriced), per MTok units:
    # prefix 120000 + 6000 + 6000 + 5400; transcript 1140 + 721.2; new 30 + 2472 + 8478 + 15015
    assert s1.prefix_usd == Decimal("0.1374")
    assert s1.transcript_usd == Decimal("0.0018612")
    assert s1.new_usd == Decimal("0.025995")
    assert s1.output_usd == Decimal("0.01185")
    assert s1.subagent_usd == Decimal("0.023443")
    assert (
        s1.prefix_usd + s1.transcript_usd + s1.new_usd + s1.output_usd + s1.subagent_usd
        == s1.cost_usd
    )
    # Cache: reads / total input; writes per read.
    assert s1.cache_read_tokens == 84204  # 20000 + 20604 + 18000 | 5000 | 20600
    assert s1.cache_write_tokens == 34600
    assert s1.cache_write_1h_tokens == 20000 + 600 + 1500 + 2500 + 300
    assert s1.write_1h_usd == Decimal("0.1494")  # 24900 x $6
    assert s1.write_amplification == pytest.approx(34600 / 84204)
    assert rows[S2].cost_usd == Decimal("0.009825")


def test_by_run_shows_each_runs_own_segments_and_its_children(imported: Ledger) -> None:
    rows = {r.key: r for r in usage_report(imported, by="run").rows}
    s1 = rows[S1]
    assert s1.cost_usd == Decimal("0.1771062") and s1.subagent_usd == Decimal("0.023443")
    assert s1.total_usd == Decimal("0.2005492")
    a1 = rows[f"{S1}/agent-a1"]
    assert a1.label == "Explore: Find the login code" and a1.cost_usd == Decimal("0.008812")
    assert a1.subagent_usd == 0


def test_one_run_turn_by_turn(imported: Ledger) -> None:
    d = run_detail(imported, S1)
    assert [t.call.message_id for t in d.turns] == ["msg_A", "msg_B", "msg_C", "msg_D", "msg_E"]
    gaps = [t.gap_s for t in d.turns]
    assert gaps == [None, pytest.approx(6.6), 712.0, 66.0, 50.0]
    assert [t.compaction_before for t in d.turns] == [False, False, False, True, False]
    # a1 (10:00:30) and the /btw question (10:00:12) start during turn B; old1 (10:20) after E.
    assert d.turns[1].subagent_usd == Decimal("0.017398")
    assert d.turns[4].subagent_usd == Decimal("0.006045")
    assert len(d.subagents) == 3 and len(d.compactions) == 2
    assert d.turns[1].write_amplification == pytest.approx(600 / 20000)
    assert d.ideal_usd is None and d.cache_efficiency is None  # no request bodies before 2.1.330
    with pytest.raises(InputError, match="no run 'nope'"):
        run_detail(imported, "nope")


def test_what_if_5m_by_hand(imported: Ledger, table: ModelTable) -> None:
    rep = what_if_report(imported, ttl="5m", table=table)
    sessions = {s.run_id: s for s in rep.sessions}
    s1 = sessions[S1]
    assert s1.method == "estimated" and s1.unpriced_calls == 1
    assert s1.actual_usd == Decimal("0.2005492")
    # A 77730 (its 20000 written at 5m) + B 9612 + C 88894.2 (the 12-minute pause: the 5m
    # entries died, 20600 read tokens written again) + D 16590, per MTok; sub-agents F G I
    # unchanged (already 5m), H 7911.
    assert s1.what_if_usd == Decimal("0.2155942")
    assert sessions[S2].what_if_usd == sessions[S2].actual_usd == Decimal("0.009825")
    assert rep.actual_usd == Decimal("0.2103742")


def test_what_if_1h_by_hand(imported: Ledger, table: ModelTable) -> None:
    rep = what_if_report(imported, ttl="1h", table=table)
    sessions = {s.run_id: s for s in rep.sessions}
    # s1's own calls were 1h already; F 10308 + G 2404 + I 9420 now pay 2x for their writes.
    assert sessions[S1].what_if_usd == Decimal("0.2078242")
    assert sessions[S2].what_if_usd == Decimal("0.011625")  # J: 800 written at $6
    only = what_if_report(imported, ttl="1h", table=table, project="/w/app", source="gateway")
    assert only.sessions == ()
