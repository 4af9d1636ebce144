"""A real Claude Code 2.1.330 session: every request rebuilt from its transcript, exactly.

The fixture (tests/fixtures/claude_code/v2_1_330) was recorded offline against the emulator
with ``ENABLE_PROMPT_CACHING_1H=1``: every marker is 1h, so the what-if ``ttl=1h`` must give
back the billed usage call for call, and ``ttl=5m`` moves only the TTL of the writes (no gap
in this session is longer than 5 minutes).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson

from tokenomy.analysis.claude_code import MessageLine, parse_line
from tokenomy.analysis.importer import import_claude_code
from tokenomy.analysis.replay import cc_message_hash
from tokenomy.analysis.turns import what_if_report
from tokenomy.data.table import ModelTable
from tokenomy.ledger import Ledger
from tokenomy.ledger.queries import get_run, list_runs, run_calls

NOW = datetime(2026, 11, 22, tzinfo=UTC)
SESSION = "cc:87d6d66f-fcb1-4c6d-8079-90b5194d7392"
AGENT = f"{SESSION}/agent-a0cd4f8b92e0bcded"


def _lines(root: Path) -> list[dict[str, object]]:
    f = root / "projects" / "-tmp-proj" / "87d6d66f-fcb1-4c6d-8079-90b5194d7392.jsonl"
    return [orjson.loads(x) for x in f.read_bytes().splitlines()]


def test_claude_codes_message_hash_is_reproduced(v2_1_330: Path) -> None:
    lines = _lines(v2_1_330)
    blobs = [d for d in lines if d["type"] == "api-request-blob"]
    assert blobs
    for d in blobs:
        assert cc_message_hash(d["message"]) == d["hash"]  # type: ignore[arg-type]
    # A tool result the transcript holds as a user line is listed by the hash of that line.
    tails = {h for d in lines if d["type"] == "api-request" for h in d["tail"]}  # type: ignore[attr-defined]
    users = [
        p.message
        for d in lines
        if d["type"] == "user"
        and isinstance(p := parse_line(orjson.dumps(d), want_user=True), MessageLine)
    ]
    assert any(cc_message_hash(m) in tails for m in users)


def test_every_request_is_rebuilt_and_the_model_agrees(
    ledger: Ledger, v2_1_330: Path, table: ModelTable
) -> None:
    s = import_claude_code(ledger, [v2_1_330], table=table, now=NOW, workers=0)
    assert s.calls == 7 and s.bad_lines == 0 and s.synthetic == 1
    assert s.events == 2  # /compact: the boundary and the summary
    calls = [*run_calls(ledger, SESSION), *run_calls(ledger, AGENT)]
    assert len(calls) == 7
    for c in calls:
        replay = c.decisions["replay"]
        assert replay["agree"] is True, (c.call_id, replay)
        u = c.usage
        assert u is not None and u.cache_write_5m_tokens == 0  # all markers were 1h
        # As sent (1h): the rebuilt requests give back exactly the billed split.
        assert replay["1h"] == [u.cache_read_tokens, 0, u.cache_write_1h_tokens, u.input_tokens]
        assert replay["5m"] == [u.cache_read_tokens, u.cache_write_1h_tokens, 0, u.input_tokens]
    # The request shapes make the prefix known: tools and system are split.
    first = run_calls(ledger, SESSION)[0]
    assert first.segments is not None and first.segments.tools > 0 and first.segments.system > 0


def test_the_ideal_cost_is_kept_for_rebuilt_runs(
    ledger: Ledger, v2_1_330: Path, table: ModelTable
) -> None:
    import_claude_code(ledger, [v2_1_330], table=table, now=NOW, workers=0)
    runs = {r.run_id: r for r in list_runs(ledger, top_level=False)}
    assert runs[SESSION].ideal_usd is not None and runs[AGENT].ideal_usd is not None
    # The session wrote its prefix once and read it after: the ideal is at most what it paid.
    for rid in (SESSION, AGENT):
        assert runs[rid].ideal_usd is not None
        assert Decimal(0) < runs[rid].ideal_usd <= runs[rid].cost_usd  # type: ignore[operator]


def test_the_what_if_is_exact_for_these_sessions(
    ledger: Ledger, v2_1_330: Path, table: ModelTable
) -> None:
    import_claude_code(ledger, [v2_1_330], table=table, now=NOW, workers=0)
    same = what_if_report(ledger, ttl="1h", table=table)
    [session] = same.sessions
    assert session.method == "exact" and session.calls == 7
    assert session.what_if_usd == session.actual_usd  # it was sent with 1h
    cheaper = what_if_report(ledger, ttl="5m", table=table)
    [s5] = cheaper.sessions
    # Every write priced at 1.25x instead of 2x input (claude-opus-5-5 in the model table:
    # $8 per MTok for a 1h write, $5 for a 5m one).
    writes = sum(
        c.usage.cache_write_1h_tokens
        for c in (*run_calls(ledger, SESSION), *run_calls(ledger, AGENT))
        if c.usage is not None
    )
    assert writes == 28410  # 16822 + 135 + 36 + 489 + 549 (session), 9781 + 598 (sub-agent)
    assert s5.actual_usd - s5.what_if_usd == Decimal(writes) * 3 / 1_000_000
    summary = get_run(ledger, SESSION)
    assert summary is not None and summary.total_usd == s5.actual_usd
    # Claude Code's own total for the session before /compact (its "cost-state" line says
    # totalCostUSD 0.248411) is what tokenomy computes from the transcript.
    assert s5.actual_usd == Decimal("0.248411")
