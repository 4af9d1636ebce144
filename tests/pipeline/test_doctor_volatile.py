"""A timestamp in the system prompt: found by `tokenomy lint` before sending and by
`tokenomy doctor` after, with the block, the cause and the dollars it cost."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.pipeline.conftest import make_harness
from tests.pipeline.test_founding_example import preamble, prose
from tokenomy.cli import main
from tokenomy.data import builtin_table
from tokenomy.ledger import Ledger
from tokenomy.pipeline import FollowClock, Pipeline


def system_with_time(now_s: float) -> list[dict[str, Any]]:
    _, system = preamble()
    stamp = datetime.fromtimestamp(now_s, UTC).isoformat(timespec="seconds")
    return [{"type": "text", "text": f"Current time: {stamp}. " + system[0]["text"]}]


async def run_with_timestamp(h: Any, turns: int = 4) -> list[dict[str, Any]]:
    tools, _ = preamble()
    client = h.client()
    sent: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Summarise the incident."}]
    with h.pipeline.start_run("volatile"):
        for t in range(turns):
            body = {
                "model": "claude-sonnet-4-6",
                "max_tokens": 100,
                "system": system_with_time(h.emulator.clock.now_s()),
                "tools": tools,
                "messages": list(messages),
            }
            sent.append(body)
            await client.messages.create(**body)
            messages.append({"role": "assistant", "content": f"Noted step {t}."})
            messages.append({"role": "user", "content": prose(800, seed=t)})
            h.advance(30)
    return sent


@pytest.mark.anyio
@pytest.mark.prefix_break
async def test_doctor_names_the_block_the_cause_and_the_dollars() -> None:
    h = make_harness()
    await run_with_timestamp(h)
    later = h.sink.calls[1:]
    for call in later:
        misses = call.decisions["doctor"]["misses"]
        assert len(misses) == 1, call.decisions["doctor"]
        miss = misses[0]
        assert miss["cause"] == "volatile_content"
        assert "system[0]" in miss["detail"] and "timestamp" in miss["detail"]
        assert float(miss["lost_usd"]) > 0
        assert call.decisions["doctor"]["divergence"]["cause"] == "system_changed"
    # the planner kept the system breakpoint off the volatile block; tools stay cached
    assert all("system[0]@5m" not in c.breakpoints for c in h.sink.calls)
    assert all(c.usage is not None and c.usage.cache_read_tokens > 0 for c in later)


@pytest.mark.anyio
async def test_lint_and_doctor_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "ledger.db"
    monkeypatch.setenv("TOKENOMY_DB", f"sqlite:///{db}")
    ledger = Ledger.open(f"sqlite:///{db}")
    writer = ledger.writer()
    h = make_harness()
    h.pipeline = Pipeline(
        table=builtin_table(), clock=FollowClock(h.emulator.clock.now_s), sink=writer
    )
    sent = await run_with_timestamp(h)
    writer.close()

    (tmp_path / "prev.json").write_bytes(orjson.dumps(sent[0]))
    (tmp_path / "req.json").write_bytes(orjson.dumps(sent[1]))
    assert (
        main(["lint", str(tmp_path / "req.json"), "--previous", str(tmp_path / "prev.json")]) == 1
    )
    out = capsys.readouterr().out
    assert "cache-buster: system[0]" in out and "timestamp" in out

    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "volatile_content" in out and "system[0]" in out
    assert "3 with a cache miss" in out

    assert main(["doctor", "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert report["misses"] == 3 and float(report["lost_usd"]) > 0


def test_lint_passes_a_stable_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tools, system = preamble()
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 10,
        "system": system,
        "tools": tools,
        "messages": [{"role": "user", "content": "hi"}],
    }
    (tmp_path / "req.json").write_bytes(orjson.dumps(body))
    assert main(["lint", str(tmp_path / "req.json")]) == 0
    assert "no cache-busters found" in capsys.readouterr().out
