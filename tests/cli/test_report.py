"""``tokenomy report``: the per-run table, --json, --run, filters, an empty ledger, bad input."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from tokenomy.cli import main
from tokenomy.config import load_settings
from tokenomy.core.pricing import CostBreakdown, Unpriced
from tokenomy.core.records import CallRecord, RunRecord
from tokenomy.core.usage import Usage
from tokenomy.wiring import open_ledger

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _cost(total: str) -> CostBreakdown:
    z = Decimal(0)
    return CostBreakdown("claude-sonnet-4-5", z, z, z, z, Decimal(total))


def _call(call_id: str, run_id: str, seq: int, **kw: Any) -> CallRecord:
    base: dict[str, Any] = {
        "usage": Usage(input_tokens=1000, cache_read_tokens=3000, output_tokens=200),
        "cost": _cost("0.0125"),
        "latency_ms": 1234.0,
        "stop_reason": "end_turn",
    }
    base.update(kw)
    return CallRecord(
        call_id, run_id, seq, T0 + timedelta(seconds=seq), "claude-sonnet-4-5", **base
    )


@pytest.fixture
def populated() -> None:
    with open_ledger(load_settings()) as ledger:
        w = ledger.writer()
        w.record_run(RunRecord("run-main", "Fix the login bug", T0, source="gateway"))
        w.record_run(RunRecord("run-sub", "sub: grep", T0, parent_run_id="run-main"))
        w.record_run(RunRecord("run-old", "Yesterday", T0 - timedelta(days=1)))
        w.record_call(_call("c1", "run-main", 1))
        w.record_call(_call("c2", "run-main", 2, cost=Unpriced("claude-x", "unknown model")))
        w.record_call(_call("c3", "run-sub", 1, cost=_cost("0.5")))
        w.record_call(_call("c4", "run-old", 1))


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_empty_ledger_says_how_calls_get_recorded(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys)
    assert code == 0
    assert "No runs in the ledger" in out
    assert "tokenomy gateway" in out and "tokenomy.Anthropic" in out


@pytest.mark.usefixtures("populated")
def test_the_run_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys)
    assert code == 0
    assert "Fix the login bug" in out and "Yesterday" in out
    assert "sub: grep" not in out  # sub-agents are rolled up into their parent
    main_line = next(line for line in out.splitlines() if "run-main" in line)
    assert "gateway" in main_line
    assert "8,000" in main_line  # input tokens: 2 calls x (1000 + 3000)
    assert "400" in main_line  # output tokens
    assert "75.0%" in main_line  # cache hit: 6000 / 8000
    assert "$0.0125 +1 unpriced" in main_line
    assert "$0.5000" in main_line  # sub-agent cost


@pytest.mark.usefixtures("populated")
def test_json_is_exact(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--json", "--all")
    assert code == 0
    data = orjson.loads(out)
    runs = {r["run_id"]: r for r in data["runs"]}
    assert set(runs) == {"run-main", "run-sub", "run-old"}
    main_run = runs["run-main"]
    assert main_run["cost_usd"] == "0.0125"
    assert main_run["subagent_usd"] == "0.5"
    assert main_run["total_usd"] == "0.5125"
    assert main_run["unpriced_calls"] == 1
    assert main_run["cache_hit_rate"] == 0.75
    assert main_run["total_input_tokens"] == 8000


@pytest.mark.usefixtures("populated")
def test_since_limit_and_name(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = _run(capsys, "--json", "--since", "2026-11-20")
    assert [r["run_id"] for r in orjson.loads(out)["runs"]] == ["run-main"]
    _, out, _ = _run(capsys, "--json", "--limit", "1")
    assert [r["run_id"] for r in orjson.loads(out)["runs"]] == ["run-main"]
    _, out, _ = _run(capsys, "--name", "nothing like it")
    assert "No runs match" in out


@pytest.mark.usefixtures("populated")
def test_one_runs_calls(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--run", "run-main")
    assert code == 0
    assert "Fix the login bug" in out
    assert "$0.012500" in out and "unpriced" in out
    assert "end_turn" in out and "1,234" in out
    code, out, _ = _run(capsys, "--run", "run-main", "--json")
    data = orjson.loads(out)
    assert [c["call_id"] for c in data["calls"]] == ["c1", "c2"]
    assert data["calls"][0]["cost_total_usd"] == "0.0125"
    assert data["calls"][1]["unpriced"] is True and data["calls"][1]["cost_total_usd"] is None


@pytest.mark.usefixtures("populated")
def test_an_unknown_run(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "--run", "nope")
    assert code == 2
    assert "no run 'nope'" in err


def test_a_bad_date(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "--since", "last tuesday")
    assert code == 2
    assert "--since must be a date" in err


def test_a_bad_ledger_url_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKENOMY_DB", "mysql://me@db.example/x")
    code, out, err = _run(capsys)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("error: unknown ledger URL scheme 'mysql'")


# ---------------------------------------------------------------------- usage analysis

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code" / "basic"
S1 = "cc:11111111-1111-4111-8111-111111111111"


@pytest.fixture
def imported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "claude"
    shutil.copytree(TRANSCRIPTS, src)
    assert main(["import", "claude-code", str(src)]) == 0
    capsys.readouterr()


@pytest.mark.usefixtures("imported")
def test_by_session_table_json_and_csv(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--by", "session")
    assert code == 0
    line = next(x for x in out.splitlines() if "Fix the login bug and add a test" in x)
    assert "cc:1111" in line and "$0.2005" in line
    assert "$0.1374" in line  # prefix
    assert "Usage by session" in out and "write amp" in out
    code, out, _ = _run(capsys, "--by", "model", "--json")
    rows = {r["key"]: r for r in orjson.loads(out)["rows"]}
    assert rows["claude-haiku-4-5-20251001"]["cost_usd"] == "0.014857"
    code, out, _ = _run(capsys, "--by", "day", "--csv")
    head, first, total = out.strip().splitlines()
    assert head.startswith("key,label,calls,")
    assert first.startswith("2026-11-10,,10,") and total.startswith("total,total,10,")


@pytest.mark.usefixtures("imported")
def test_one_run_turn_by_turn(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--run", S1)
    assert code == 0
    assert "⤓ 4" in out  # the compaction before turn 4
    assert "$0.017398" in out  # sub-agents started during turn 2
    code, out, _ = _run(capsys, "--run", S1, "--json")
    data = orjson.loads(out)
    assert [t["seq"] for t in data["turns"]] == [1, 2, 3, 4, 5]
    assert data["turns"][2]["gap_s"] == 712.0
    assert [c["kind"] for c in data["compactions"]] == ["compaction", "compact_summary"]


@pytest.mark.usefixtures("imported")
def test_what_if(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--what-if", "ttl=5m")
    assert code == 0
    assert "estimated" in out and "$0.2156" in out  # 0.2155942 for s1
    assert "would have cost" in out
    code, out, _ = _run(capsys, "--what-if", "ttl=1h", "--json")
    data = orjson.loads(out)
    assert data["what_if_usd"] == "0.2194492"  # 0.2078242 (s1) + 0.011625 (s2)
    assert data["exact_sessions"] == 0 and data["estimated_sessions"] == 2
    code, _, err = _run(capsys, "--what-if", "ttl=2h")
    assert code == 2 and "--what-if takes ttl=1h or ttl=5m" in err


@pytest.mark.usefixtures("imported")
def test_html_is_one_offline_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "r.html"
    code, out, _ = _run(capsys, "--html", str(out_file), "--run", S1)
    assert code == 0 and "opens offline" in out
    page = out_file.read_text()
    assert page.count("<script") >= 6 and "Plotly" in page
    assert 'src="http' not in page  # plotly.js is inlined, nothing is fetched


def test_bad_flags(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "--by", "year")
    assert code == 2 and "--by must be one of day, week, month" in err
    code, _, err = _run(capsys, "--json", "--csv")
    assert code == 2 and "pick one" in err
    code, _, err = _run(capsys, "--html", "/tmp/x.html")
    assert code == 2 and "no runs in the ledger" in err


def test_refresh_imports_new_transcript_lines_first(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "claude"
    shutil.copytree(TRANSCRIPTS, src)
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(src))
    code, out, err = _run(capsys, "--refresh", "--by", "session", "--json")
    assert code == 0 and "imported 10 new calls" in err
    assert {r["key"] for r in orjson.loads(out)["rows"]} == {
        S1,
        "cc:22222222-2222-4222-8222-222222222222",
    }
    code, out, err = _run(capsys, "--refresh", "--by", "day", "--json")
    assert code == 0 and err == ""  # nothing new the second time


def test_refresh_on_a_fresh_ledger_reports_what_import_then_report_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-command path (``report --refresh``) and the two-command path (``import
    claude-code`` then ``report``) give the same report (bench/ccusage_parity.py times both)."""
    src = tmp_path / "claude"
    shutil.copytree(TRANSCRIPTS, src)
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(src))
    monkeypatch.setenv("TOKENOMY_DATA_DIR", str(tmp_path / "one"))
    code, one, _ = _run(capsys, "--refresh", "--by", "session", "--json")
    assert code == 0
    monkeypatch.setenv("TOKENOMY_DATA_DIR", str(tmp_path / "two"))
    assert main(["import", "claude-code", "--json"]) == 0
    capsys.readouterr()
    code, two, _ = _run(capsys, "--by", "session", "--json")
    assert code == 0
    assert orjson.loads(one) == orjson.loads(two)
    assert len(orjson.loads(one)["rows"]) == 2
