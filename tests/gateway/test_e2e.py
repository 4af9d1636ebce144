"""End to end: real clients (Claude Code, the Claude Agent SDK, anthropic 1.x) through the gateway.

``make e2e`` installs the clients into ``.e2e/`` (npm, PyPI); without them the tests are
skipped with the reason, never faked. Every client runs against the emulator through a gateway
whose ledger is a real SQLite file, and ``tokenomy report`` reads it back.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.emulator.harness import TEST_KEY, EmulatorServer
from tests.gateway.conftest import Served
from tokenomy.cli import main as cli_main
from tokenomy.config import load_settings
from tokenomy.emulator import EmulatorConfig, create_app
from tokenomy.gateway import Gateway, build_gateway
from tokenomy.ledger import Ledger

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
CLAUDE = ROOT / ".e2e" / "node_modules" / ".bin" / "claude"
AGENT_PYTHON = ROOT / ".e2e" / "agent" / "bin" / "python"
SDK1_PYTHON = ROOT / ".e2e" / "sdk1" / "bin" / "python"
SDK1_SCRIPT = ROOT / "tests" / "fixtures" / "emulator" / "sdk1_client.py"


def claude_env(base_url: str, home: Path) -> dict[str, str]:
    if not CLAUDE.exists():
        pytest.skip("Claude Code is not installed (.e2e/); run `make e2e-clients` with npm online")
    if shutil.which("node") is None:
        pytest.skip("node is not installed; Claude Code needs it")
    return {
        "PATH": str(Path(shutil.which("node") or "node").parent) + ":/usr/bin:/bin",
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": TEST_KEY,
        "DISABLE_TELEMETRY": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }


def run_claude(base_url: str, home: Path, *args: str) -> dict[str, Any]:
    r = subprocess.run(
        ["timeout", "90", str(CLAUDE), *args, "--output-format", "json"],
        env=claude_env(base_url, home),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, (
        f"claude exited {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    )
    out: dict[str, Any] = json.loads(r.stdout)
    return out


SUBAGENT_SCENARIO = Path(__file__).parent / "fixtures" / "subagent_scenario.yaml"


class LedgerGateway:
    """An emulator and a gateway built from settings (SQLite ledger), both over HTTP."""

    def __init__(self, *, mode: str = "optimize", brain: str = "echo") -> None:
        self.emulator_app = create_app(EmulatorConfig(brain=brain))
        self.emulator = EmulatorServer(self.emulator_app).start()
        self.settings = load_settings(flags={"upstream_url": self.emulator.base_url, "mode": mode})
        self.gateway: Gateway = build_gateway(self.settings)
        self.server = EmulatorServer(self.gateway).start()  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        return self.server.base_url

    def stop(self) -> None:
        """Stop the gateway (its shutdown flushes the ledger), then the emulator."""
        self.server.stop()
        self.emulator.stop()
        self.emulator_app.state.emulator.close()

    def calls(self) -> list[Any]:
        with Ledger.open(self.settings.ledger_url) as ledger, ledger.read() as conn:
            return list(
                conn.exec_driver_sql(
                    "SELECT r.external_id, r.run_id, r.parent_run_id, r.source, c.status, "
                    "c.cost_total_pusd, c.stop_reason FROM calls c JOIN runs r "
                    "ON r.run_id = c.run_id ORDER BY c.started_at"
                )
            )


@pytest.fixture
def ledger_gateway() -> Iterator[Callable[..., LedgerGateway]]:
    made: list[LedgerGateway] = []

    def make(**kwargs: Any) -> LedgerGateway:
        made.append(LedgerGateway(**kwargs))
        return made[-1]

    yield make
    for g in made:
        g.stop()


def test_claude_code_print_tool_round_trip_and_resume_land_in_one_run(
    ledger_gateway: Callable[..., LedgerGateway], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    g = ledger_gateway()
    (tmp_path / "hello.txt").write_text("hello world\n")
    first = run_claude(
        g.url, tmp_path, "--bare", "-p", "use Read on hello.txt", "--allowedTools", "Read"
    )
    assert first["is_error"] is False and first["num_turns"] == 2  # a tool round trip
    assert first["result"].startswith("Tool result received")
    session = first["session_id"]
    resumed = run_claude(g.url, tmp_path, "--bare", "-p", "and again", "--resume", session)
    assert resumed["is_error"] is False and resumed["result"] == "Echo: and again"
    g.stop()
    rows = g.calls()
    assert len(rows) == 3 and all(r.status == "ok" and r.source == "gateway" for r in rows)
    assert [r.stop_reason for r in rows] == ["tool_use", "end_turn", "end_turn"]
    # one run per session: the resumed conversation continues the same run
    assert {r.external_id for r in rows} == {resumed["session_id"]} == {session}
    assert len({r.run_id for r in rows}) == 1
    # Claude Code prices the usage we relayed itself: it agrees with our ledger exactly
    ours = sum(Decimal(r.cost_total_pusd) for r in rows) / Decimal(10) ** 12
    theirs = Decimal(str(first["total_cost_usd"])) + Decimal(str(resumed["total_cost_usd"]))
    assert abs(ours - theirs) <= Decimal("0.000001"), (ours, theirs)
    # and `tokenomy report` shows the run
    assert cli_main(["report", "--source", "gateway", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    text = json.dumps(report)
    assert rows[0].run_id in text


def test_a_claude_code_sub_agent_becomes_a_child_run(
    ledger_gateway: Callable[..., LedgerGateway], tmp_path: Path
) -> None:
    g = ledger_gateway(brain=str(SUBAGENT_SCENARIO))
    out = run_claude(g.url, tmp_path, "-p", "please delegate", "--allowedTools", "Agent")
    assert out["is_error"] is False and out["result"] == "The sub-agent found it."
    g.stop()
    rows = g.calls()
    assert len(rows) == 3
    main, sub, back = rows
    assert main.external_id == back.external_id == out["session_id"]
    assert main.run_id == back.run_id and main.parent_run_id is None
    # the sub-agent's call: same session, its own system prompt -> a child of the session's run
    assert sub.parent_run_id == main.run_id and sub.run_id != main.run_id


def _session_summary(s: Served, tmp_path: Path) -> Any:
    home = tmp_path / s.harness.gateway.config.mode
    home.mkdir()
    first = run_claude(s.url, home, "--bare", "-p", "Summarise the plan in one line.")
    sid = first["session_id"]
    for prompt in ("Now the first step.", "And the second step.", "Any risks?"):
        s.harness.emulator.clock.advance(30)
        run_claude(s.url, home, "--bare", "-p", prompt, "--resume", sid)
    run = s.harness.pipeline.get_run(s.sink.calls[0].run_id)
    s.gateway.stop()  # waits for the last call to be metered
    assert {c.run_id for c in s.sink.calls} == {run.run_id if run else None}
    assert run is not None and run.external_id == sid
    return run.summary()


@pytest.mark.prefix_break  # Claude Code rewrites its history's shape on --resume
def test_real_claude_code_multi_turn_caches_no_worse_in_optimize_than_observe(
    serve_gateway: Callable[..., Served], tmp_path: Path
) -> None:
    observe = _session_summary(serve_gateway(mode="observe"), tmp_path)
    optimize = _session_summary(serve_gateway(mode="optimize"), tmp_path)
    assert observe.calls == optimize.calls >= 4
    assert observe.cache_efficiency is not None and optimize.cache_efficiency is not None
    assert optimize.cache_efficiency >= observe.cache_efficiency
    assert optimize.cost_usd <= observe.cost_usd


AGENT_SCRIPT = """
import asyncio, json, sys
from claude_agent_sdk import query, ClaudeAgentOptions, ResultMessage

async def main():
    out = []
    async for m in query(prompt="say hi", options=ClaudeAgentOptions(max_turns=1)):
        if isinstance(m, ResultMessage):
            out.append({"result": m.result, "session_id": m.session_id,
                        "is_error": m.is_error, "cost": m.total_cost_usd})
    print(json.dumps(out))

asyncio.run(main())
"""


def test_claude_agent_sdk_through_the_gateway(
    ledger_gateway: Callable[..., LedgerGateway], tmp_path: Path
) -> None:
    if not AGENT_PYTHON.exists():
        pytest.skip("claude-agent-sdk is not installed (.e2e/agent); run `make e2e-clients` online")
    g = ledger_gateway()
    env = {
        "PATH": str(Path(shutil.which("node") or "/usr/bin/node").parent) + ":/usr/bin:/bin",
        "HOME": str(tmp_path),
        "ANTHROPIC_BASE_URL": g.url,
        "ANTHROPIC_API_KEY": TEST_KEY,
        "DISABLE_TELEMETRY": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    r = subprocess.run(
        [str(AGENT_PYTHON), "-c", AGENT_SCRIPT],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert r.returncode == 0, f"stdout: {r.stdout}\nstderr: {r.stderr}"
    [result] = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["is_error"] is False and "hi" in result["result"].lower()
    g.stop()
    rows = g.calls()
    assert rows and all(r.status == "ok" for r in rows)
    assert {r.external_id for r in rows} == {result["session_id"]}


def test_anthropic_sdk_1x_through_the_gateway(
    serve_gateway: Callable[..., Served],
) -> None:
    if not SDK1_PYTHON.exists():
        pytest.skip("the anthropic 1.x venv is absent (.e2e/sdk1); run `make e2e-sdk1` online")
    s = serve_gateway()
    r = subprocess.run(
        [str(SDK1_PYTHON), str(SDK1_SCRIPT), s.url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["create"]["text"] == "Echo: hello there"
    assert out["stream"] == {"text": "Echo: hello there", "final_text": "Echo: hello there"}
    assert out["raw_stream"][0] == "message_start" and out["raw_stream"][-1] == "message_stop"
    assert out["count_tokens"] > 0 and len(out["models"]) == 5
    assert out["errors"] == {"bad_request": 400, "not_found": 404}
    assert out["batch"] == {"status": "ended", "results": [["a", "succeeded"]]}
    s.gateway.stop()
    assert any(c.mode == "batch" for c in s.sink.calls)  # results metered at batch prices
