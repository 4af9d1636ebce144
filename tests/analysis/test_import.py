"""Importing Claude Code transcripts: totals computed by hand from tests/fixtures/claude_code/basic.

The fixture (see its README) has, for session s1 (claude-sonnet-4-5: $3 input, $6 1h write,
$3.75 5m write, $0.30 read, $15 output per MTok; claude-haiku-4-5: $1, $1.25 5m, $0.10, $5):

=====  ===================================  ===========================================
call   usage (input, write, read, output)   cost (per MTok units → USD)
=====  ===================================  ===========================================
A      10, 20000 (1h), 0, 180 (2 lines)     30 + 120000 + 2700 = 122730 → 0.122730
B      4, 600 (1h), 20000, 90               12 + 3600 + 6000 + 1350 = 10962 → 0.010962
C      6, 1500 (1h), 20604, 400             18 + 9000 + 6181.2 + 6000 → 0.0211992
D      5, 2500 (1h), 18000, 120             15 + 15000 + 5400 + 1800 → 0.022215
E      100, 0, 0, 50 on claude-nova-9       unpriced
F (a1) 8, 5000 (5m), 0, 60 haiku            8 + 6250 + 300 → 0.006558
G (a1) 4, 200 (5m), 5000, 300 haiku         4 + 250 + 500 + 1500 → 0.002254
H (btw) 2, 300 (1h), 20600, 40              6 + 1800 + 6180 + 600 → 0.008586
I (old) 20, 4500 (no split: 5m), 0, 80      20 + 5625 + 400 → 0.006045
J (s2) 7, 800 (5m), 20180, 50               21 + 3000 + 6054 + 750 → 0.009825
=====  ===================================  ===========================================

s2 also copies A (same message id and request id: counted once, in s1) and ends with a line
still being written. The /btw file replays B (same message id, new request id): dropped.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect

import tokenomy.analysis.importer as importer_mod
import tokenomy.analysis.readers as readers_mod
from tokenomy.analysis.importer import import_claude_code
from tokenomy.data.table import ModelTable
from tokenomy.ledger import Ledger
from tokenomy.ledger.queries import get_run, list_runs, run_calls, run_events

NOW = datetime(2026, 11, 20, tzinfo=UTC)
S1 = "cc:11111111-1111-4111-8111-111111111111"
S2 = "cc:22222222-2222-4222-8222-222222222222"
PROJECT = "projects/-w-app"


def _import(
    ledger: Ledger, root: Path, table: ModelTable, **kw: object
) -> importer_mod.ImportSummary:
    return import_claude_code(ledger, [root], table=table, now=NOW, workers=0, **kw)  # type: ignore[arg-type]


def test_the_first_import_counts_every_line_by_hand(
    ledger: Ledger, basic: Path, table: ModelTable
) -> None:
    s = _import(ledger, basic, table)
    assert s.files == 5 and s.files_read == 5 and s.missing_roots == ()
    assert s.calls == 10  # A B C D E | F G | H | I | J
    # A's first (partial) line folded into its call; s2's copy of A counted once.
    assert s.duplicates == 2
    assert s.sidechain_replays == 1  # the /btw copy of B
    assert s.synthetic == 1
    assert s.bad_lines == 2  # the truncated line and the one that is not JSON
    assert [(b.line, b.reason.split(" (")[0]) for b in s.bad_examples] == [
        (7, "a truncated line"),
        (8, "not a JSON object"),
    ]
    assert s.pending_tails == 1  # s2's last line, still being written
    assert s.unknown_models == {"claude-nova-9": 1}
    assert s.events == 2  # the compaction boundary and the summary after it
    assert s.cost_usd == Decimal("0.2103742")  # 0.2005492 (s1 tree) + 0.009825 (s2)
    assert s.useful


def test_runs_sub_agents_and_their_costs(ledger: Ledger, basic: Path, table: ModelTable) -> None:
    _import(ledger, basic, table)
    s1 = get_run(ledger, S1)
    assert s1 is not None
    assert s1.name == "Fix the login bug and add a test"  # the summary line
    assert s1.source == "claude-code" and s1.project == "/w/app"
    assert s1.external_id == "11111111-1111-4111-8111-111111111111"
    assert s1.calls == 5 and s1.unpriced_calls == 1
    assert s1.cost_usd == Decimal("0.1771062")  # A + B + C + D
    assert s1.subagent_runs == 3
    assert s1.subagent_usd == Decimal("0.023443")  # 0.008812 + 0.008586 + 0.006045
    assert s1.total_usd == Decimal("0.2005492")
    kids = {r.run_id: r for r in list_runs(ledger) if r.parent_run_id == S1}
    assert set(kids) == {
        f"{S1}/agent-a1",
        f"{S1}/agent-aside_question-b7",
        f"{S1}/agent-old1",
    }
    assert kids[f"{S1}/agent-a1"].name == "Explore: Find the login code"  # from .meta.json
    assert kids[f"{S1}/agent-a1"].cost_usd == Decimal("0.008812")
    assert kids[f"{S1}/agent-aside_question-b7"].calls == 1  # the replay of B is not a call
    old = kids[f"{S1}/agent-old1"]
    assert old.cost_usd == Decimal("0.006045")
    [call_i] = run_calls(ledger, old.run_id)
    assert call_i.usage is not None and not call_i.usage.ttl_split_known  # priced as 5m
    s2 = get_run(ledger, S2)
    assert s2 is not None and s2.calls == 1 and s2.cost_usd == Decimal("0.009825")


def test_calls_keep_the_most_complete_line_and_segments_sum_exactly(
    ledger: Ledger, basic: Path, table: ModelTable
) -> None:
    _import(ledger, basic, table)
    calls = {c.message_id: c for c in run_calls(ledger, S1)}
    a = calls["msg_A"]
    assert a.call_id == "cc:msg_A:req_A" and a.seq == 1
    assert a.usage is not None and a.usage.output_tokens == 180  # not the partial 1
    assert a.stop_reason == "tool_use"
    assert a.decisions["transcript"]["line"] == 3
    # Segments (docs/design/analysis.md): the first call has no reads, so its cached part is
    # the prefix; later the smallest read bounds it; history = the previous prompt + answer.
    seg = {m: calls[m].segments for m in ("msg_A", "msg_B", "msg_C", "msg_D")}
    assert seg["msg_A"] is not None and seg["msg_A"].system == 20000 and seg["msg_A"].new == 10
    b = seg["msg_B"]
    assert b is not None and (b.system, b.history, b.new) == (20000, 190, 414)  # T = 20604
    c = seg["msg_C"]
    assert c is not None and (c.system, c.history, c.new) == (20000, 694, 1416)  # T = 22110
    d = seg["msg_D"]  # after the compaction: the history starts over; the read bounds the prefix
    assert d is not None and (d.system, d.history, d.new) == (18000, 0, 2505)
    sc = calls["msg_B"].segment_costs
    assert sc is not None
    assert sc.system_usd == Decimal("0.006")  # 20000 read at $0.30
    assert sc.history_usd == Decimal("0.00114")  # 190 written (1h) at $6
    assert sc.new_usd == Decimal("0.002472")  # 410 written at $6 + 4 uncached at $3
    assert sc.output_usd == Decimal("0.00135")
    assert sc.total_usd == Decimal("0.010962")
    e = calls["msg_E"]
    assert e.cost is not None and e.cost.total_usd is None  # unpriced, never $0


def test_compaction_points_are_events(ledger: Ledger, basic: Path, table: ModelTable) -> None:
    _import(ledger, basic, table)
    events = run_events(ledger, [S1])
    assert [(e.kind, e.at.strftime("%H:%M:%S")) for e in events] == [
        ("compaction", "10:13:00"),
        ("compact_summary", "10:13:01"),
    ]
    assert events[0].data["trigger"] == "auto" and events[0].data["pre_tokens"] == 22510


def test_a_second_import_reads_only_what_was_appended(
    ledger: Ledger, basic: Path, table: ModelTable
) -> None:
    _import(ledger, basic, table)
    again = _import(ledger, basic, table)
    assert again.files_unchanged == 5 and again.files_read == 0 and again.calls == 0
    assert again.bytes_read == 0
    # Claude Code finishes the line it was writing in s2, and s1 gets one more response.
    s2 = basic / PROJECT / "22222222-2222-4222-8222-222222222222.jsonl"
    tail_before = s2.read_bytes().rsplit(b"\n", 1)[1]
    rest = (
        b'net-4-5-20250929","id":"msg_K","type":"message","role":"assistant","content":[],'
        b'"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,'
        b'"cache_creation_input_tokens":100,"cache_read_input_tokens":20980,"cache_creation":'
        b'{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":0},"output_tokens":20}},'
        b'"requestId":"req_K","sessionId":"22222222-2222-4222-8222-222222222222",'
        b'"timestamp":"2026-11-10T11:00:30.000Z","version":"2.1.197","isSidechain":false}\n'
    )
    with s2.open("ab") as f:
        f.write(rest)
    s1 = basic / PROJECT / "11111111-1111-4111-8111-111111111111.jsonl"
    line_l = (
        b'{"type":"assistant","sessionId":"11111111-1111-4111-8111-111111111111",'
        b'"timestamp":"2026-11-10T10:30:00.000Z","version":"2.1.197","isSidechain":false,'
        b'"requestId":"req_L","message":{"model":"claude-sonnet-4-5-20250929","id":"msg_L",'
        b'"content":[],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":10,'
        b'"cache_creation_input_tokens":0,"cache_read_input_tokens":20505}}}\n'
    )
    with s1.open("ab") as f:
        f.write(line_l)
    third = _import(ledger, basic, table)
    assert third.files_read == 2 and third.files_unchanged == 3
    # Only the appended bytes (and the unfinished line left last time) were read.
    assert third.bytes_read == len(tail_before) + len(rest) + len(line_l)
    assert third.calls == 2 and third.pending_tails == 0
    s1_calls = run_calls(ledger, S1)
    assert [c.message_id for c in s1_calls][-1] == "msg_L" and s1_calls[-1].seq == 6
    # seq is the response's place in its file: the copy of A was response 1 of s2.
    k = [c for c in run_calls(ledger, S2) if c.message_id == "msg_K"]
    assert len(k) == 1 and k[0].seq == 3
    # msg_L: 1 x $3 + 20505 x $0.30 + 10 x $15 = 3 + 6151.5 + 150 per MTok.
    assert s1_calls[-1].cost is not None
    assert s1_calls[-1].cost.total_usd == Decimal("0.0063045")


def test_a_response_still_streaming_is_updated_in_place(
    ledger: Ledger, tmp_path: Path, table: ModelTable
) -> None:
    """An import between two lines of one response counts it once, then updates it."""
    proj = tmp_path / "c" / "projects" / "-p"
    proj.mkdir(parents=True)
    f = proj / "s.jsonl"

    def line(output: int, stop: str | None) -> bytes:
        stop_json = "null" if stop is None else f'"{stop}"'
        return (
            '{"type":"assistant","sessionId":"s","timestamp":"2026-11-10T09:00:00.000Z",'
            '"requestId":"req_1","message":{"model":"claude-haiku-4-5","id":"msg_1",'
            f'"content":[],"stop_reason":{stop_json},"usage":{{"input_tokens":5,'
            f'"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":{output}}}}}}}\n'
        ).encode()

    f.write_bytes(line(1, None))
    first = _import(ledger, tmp_path / "c", table)
    assert first.calls == 1
    with f.open("ab") as fh:
        fh.write(line(400, "end_turn"))
    second = _import(ledger, tmp_path / "c", table)
    assert second.calls == 0 and second.calls_updated == 1
    [call] = run_calls(ledger, "cc:s")
    assert call.seq == 1 and call.usage is not None and call.usage.output_tokens == 400
    assert call.stop_reason == "end_turn"


def test_a_rewritten_file_is_read_again(ledger: Ledger, basic: Path, table: ModelTable) -> None:
    _import(ledger, basic, table)
    s2 = basic / PROJECT / "22222222-2222-4222-8222-222222222222.jsonl"
    # Rotated: a new file under the same name with other content (a new inode).
    text = s2.read_bytes().split(b"\n")
    s2.unlink()
    s2.write_bytes(text[0] + b"\n" + text[2] + b"\n")  # the prompt and response J only
    again = _import(ledger, basic, table)
    assert again.files_reread == 1 and again.files_read == 1
    s2_run = get_run(ledger, S2)
    assert s2_run is not None and s2_run.calls == 1 and s2_run.cost_usd == Decimal("0.009825")


def _everything(ledger: Ledger) -> tuple[object, ...]:
    found = list_runs(ledger)
    ids = sorted(r.run_id for r in found)
    return (
        sorted(found, key=lambda r: r.run_id),
        [run_calls(ledger, i) for i in ids],
        run_events(ledger, ids),
    )


@pytest.mark.parametrize("flush_rows", [3, 16_000])
def test_parallel_workers_give_the_same_ledger(
    ledger: Ledger,
    basic: Path,
    tmp_path: Path,
    table: ModelTable,
    monkeypatch: pytest.MonkeyPatch,
    flush_rows: int,
) -> None:
    """Readers in other processes (rows through scratch files on SQLite), batches of a few
    rows or all at once: the same runs, calls and events as reading here."""
    monkeypatch.setattr(importer_mod, "_PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(importer_mod, "_FLUSH_ROWS", flush_rows)
    monkeypatch.setattr(readers_mod, "_AHEAD_PARTS", 1)
    monkeypatch.setattr(readers_mod, "_PART_FILES", 2)
    s = import_claude_code(ledger, [basic], table=table, now=NOW, workers=2)
    assert s.calls == 10 and s.cost_usd == Decimal("0.2103742") and s.sidechain_replays == 1
    s1 = get_run(ledger, S1)
    assert s1 is not None and s1.total_usd == Decimal("0.2005492")
    here = Ledger.open(f"sqlite:///{tmp_path / 'serial.db'}")
    try:
        _import(here, basic, table)
        assert _everything(ledger) == _everything(here)
    finally:
        here.close()


def test_bad_input_is_reported_never_fatal(
    ledger: Ledger, basic: Path, tmp_path: Path, table: ModelTable
) -> None:
    missing = tmp_path / "no-such-folder"
    unreadable = basic / PROJECT / "agent-old1.jsonl"
    if os.geteuid() == 0:
        # root reads any file: make it unreadable by removing it after discovery instead.
        unreadable.rename(unreadable.with_suffix(".moved"))
        (basic / PROJECT / "agent-old1.jsonl").symlink_to(tmp_path / "gone.jsonl")
    else:
        unreadable.chmod(0)
    s = import_claude_code(ledger, [basic, missing], table=table, now=NOW, workers=0)
    assert s.missing_roots == (str(missing),)
    assert len(s.unreadable) == 1 and s.unreadable[0][0].endswith("agent-old1.jsonl")
    assert s.calls == 9  # everything else
    assert s.useful
    nothing = import_claude_code(ledger, [missing], table=table, now=NOW, workers=0)
    assert nothing.files == 0 and not nothing.useful


def _call_indexes(ledger: Ledger) -> set[str]:
    return {str(ix["name"]) for ix in inspect(ledger.engine).get_indexes("calls")}


def test_a_big_first_import_builds_the_indexes_at_the_end(
    ledger: Ledger, basic: Path, tmp_path: Path, table: ModelTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite the calls' secondary indexes are dropped while a big first import writes and
    built at the end; the ledger ends up the same as an import that kept them."""
    if ledger.backend != "sqlite":
        pytest.skip("SQLite only: PostgreSQL keeps its indexes")
    expected = _call_indexes(ledger)
    assert expected == {"ix_calls_message_id", "ix_calls_run_id_seq", "ix_calls_started_at"}
    seen: list[set[str]] = []
    finish = importer_mod._Importer.finish

    def spy(self: importer_mod._Importer, task: Any, got: Any) -> None:
        seen.append(_call_indexes(ledger))
        finish(self, task, got)

    monkeypatch.setattr(importer_mod._Importer, "finish", spy)
    monkeypatch.setattr(importer_mod, "_PARALLEL_MIN_BYTES", 0)
    _import(ledger, basic, table)
    assert seen and all(not s for s in seen)  # none while the files were read
    assert _call_indexes(ledger) == expected
    monkeypatch.setattr(importer_mod, "_PARALLEL_MIN_BYTES", 1 << 40)
    here = Ledger.open(f"sqlite:///{tmp_path / 'kept.db'}")
    try:
        _import(here, basic, table)
        assert _everything(ledger) == _everything(here)
    finally:
        here.close()


def test_indexes_an_interrupted_import_dropped_are_built_again(
    ledger: Ledger, basic: Path, table: ModelTable
) -> None:
    if ledger.backend != "sqlite":
        pytest.skip("SQLite only")
    with ledger.engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_calls_message_id")
    _import(ledger, basic, table)
    assert "ix_calls_message_id" in _call_indexes(ledger)
