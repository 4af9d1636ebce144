"""Per-run summaries and the sub-agent roll-up, against sums worked out by hand."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tokenomy.core.pricing import Unpriced
from tokenomy.core.usage import Usage
from tokenomy.ledger import Ledger
from tokenomy.ledger.queries import RunSummary, get_run, list_runs, run_calls

from . import records as R

DAY = timedelta(days=1)


@pytest.fixture
def tree(ledger: Ledger) -> Ledger:
    """A ─┬─ B ── C        E (gateway)        X ⇄ Y (a parent cycle: bad data, must not hang)
    └─ D
    """
    w = ledger.writer()
    w.record_run(R.run("A", name="Fix the login bug"))
    w.record_run(R.run("B", name="sub: search", parent_run_id="A", started_at=R.T0 + timedelta(1)))
    w.record_run(R.run("C", name="sub: read", parent_run_id="B"))
    w.record_run(R.run("D", name="sub: idle", parent_run_id="A"))
    w.record_run(R.run("E", name="Nightly eval", source="gateway", started_at=R.T0 + DAY))
    w.record_run(R.run("X", name="loop x", parent_run_id="Y", started_at=R.T0 + 2 * DAY))
    w.record_run(R.run("Y", name="loop y", parent_run_id="X", started_at=R.T0 + 2 * DAY))
    usage_a1 = Usage(input_tokens=1000, cache_read_tokens=3000, output_tokens=100)
    w.record_call(
        R.call("a1", "A", 1, usage=usage_a1, cost_=R.cost(input_usd="0.07", output="0.03"))
    )
    w.record_call(
        R.call(
            "a2",
            "A",
            2,
            usage=Usage(input_tokens=500, output_tokens=50),
            cost_=Unpriced("claude-future", "unknown model"),
        )
    )
    w.record_call(R.call("a3", "A", 3, usage=None, status="error"))
    usage_b = Usage(input_tokens=10, cache_write_5m_tokens=200, cache_write_1h_tokens=300)
    w.record_call(R.call("b1", "B", 1, usage=usage_b, cost_=R.cost(write_5m="0.02")))
    w.record_call(R.call("b2", "B", 2, cost_=R.cost(write_1h="0.01", output="0.02")))
    w.record_call(R.call("c1", "C", 1, cost_=R.cost(read="0.005")))
    w.record_call(R.call("e1", "E", 1, cost_=R.cost(output="1.5")))
    w.record_call(R.call("x1", "X", 1, cost_=R.cost(output="0.01")))
    w.record_call(R.call("y1", "Y", 1, cost_=R.cost(output="0.01")))
    w.flush()
    return ledger


def _by_id(runs: tuple[RunSummary, ...]) -> dict[str, RunSummary]:
    return {r.run_id: r for r in runs}


def test_a_run_sums_its_own_calls(tree: Ledger) -> None:
    a = get_run(tree, "A")
    assert a is not None
    assert (a.calls, a.error_calls, a.unpriced_calls) == (3, 1, 1)
    assert a.input_tokens == 1000 + 500  # a3 has no usage
    assert a.cache_read_tokens == 3000
    assert a.output_tokens == 150
    assert a.total_input_tokens == 4500
    assert a.cache_hit_rate == pytest.approx(3000 / 4500)
    assert a.cost_usd == Decimal("0.10")  # a2 is unpriced: not counted as $0, counted apart


def test_sub_agent_cost_rolls_up_recursively(tree: Ledger) -> None:
    runs = _by_id(list_runs(tree))
    # A's sub-agents: B (0.02 + 0.03), C under B (0.005), D (nothing)
    assert runs["A"].subagent_runs == 3
    assert runs["A"].subagent_usd == Decimal("0.055")
    assert runs["A"].total_usd == Decimal("0.155")
    assert runs["B"].cost_usd == Decimal("0.05")
    assert runs["B"].subagent_usd == Decimal("0.005")
    assert runs["B"].cache_write_tokens == 500
    assert runs["C"].subagent_runs == 0 and runs["C"].subagent_usd == 0
    assert runs["D"].calls == 0 and runs["D"].cache_hit_rate is None


def test_a_parent_cycle_terminates(tree: Ledger) -> None:
    runs = _by_id(list_runs(tree))
    assert runs["X"].subagent_usd == Decimal("0.01")
    assert runs["Y"].subagent_usd == Decimal("0.01")


def test_filters(tree: Ledger) -> None:
    assert [r.run_id for r in list_runs(tree, since=R.T0 + DAY / 2, until=R.T0 + 2 * DAY)] == [
        "B",
        "E",
    ]
    assert [r.run_id for r in list_runs(tree, name="NIGHTLY")] == ["E"]
    assert [r.run_id for r in list_runs(tree, name="%")] == []  # LIKE wildcards are literal
    assert [r.run_id for r in list_runs(tree, source="gateway")] == ["E"]
    assert {r.run_id for r in list_runs(tree, top_level=True)} == {"A", "E"}


def test_newest_first_and_limit(tree: Ledger) -> None:
    ids = [r.run_id for r in list_runs(tree)]
    assert ids[:3] == ["X", "Y", "B"]
    assert ids[-3:] == ["A", "C", "D"]  # same start time: by id
    assert [r.run_id for r in list_runs(tree, limit=2)] == ["X", "Y"]


def test_run_calls_in_order(tree: Ledger) -> None:
    assert [c.call_id for c in run_calls(tree, "A")] == ["a1", "a2", "a3"]
    assert run_calls(tree, "nope") == ()
    assert get_run(tree, "nope") is None


def test_totals_stay_exact_below_a_picodollar(ledger: Ledger) -> None:
    w = ledger.writer()
    w.record_run(R.run("P"))
    w.record_run(R.run("Q", parent_run_id="P"))
    tiny = R.cost(input_usd="0.0000000000004")  # 0.4 pUSD: stored as 0 + its exact string
    w.record_call(R.call("p1", "P", 1, cost_=tiny))
    w.record_call(R.call("p2", "P", 2, cost_=R.cost(output="0.25")))
    w.record_call(R.call("q1", "Q", 1, cost_=tiny))
    w.record_call(R.call("q2", "Q", 2, cost_=tiny))
    w.flush()
    p = get_run(ledger, "P")
    assert p is not None
    assert p.cost_usd == Decimal("0.2500000000004")
    assert p.subagent_usd == Decimal("0.0000000000008")


def test_many_runs_roll_up_in_chunks(ledger: Ledger) -> None:
    w = ledger.writer()
    for i in range(1200):
        w.record_run(R.run(f"r{i:04d}"))
        w.record_run(R.run(f"s{i:04d}", parent_run_id=f"r{i:04d}"))
        w.record_call(R.call(f"c{i:04d}", f"s{i:04d}", 1, cost_=R.cost(output="0.001")))
    w.flush()
    runs = list_runs(ledger, top_level=True)
    assert len(runs) == 1200
    assert all(r.subagent_usd == Decimal("0.001") for r in runs)


def test_project_filters_before_the_limit(ledger: Ledger) -> None:
    """The N newest runs *of that project*, not the N newest runs filtered afterwards."""
    w = ledger.writer()
    w.record_run(R.run("old", name="old", project="/home/a/api", started_at=R.T0))
    w.record_run(R.run("new", name="new", project="/home/a/web", started_at=R.T0 + DAY))
    w.close()
    assert [r.run_id for r in list_runs(ledger, project="API", limit=1)] == ["old"]
