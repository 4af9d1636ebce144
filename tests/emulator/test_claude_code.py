"""End to end: the real Claude Code CLI against the emulator over real HTTP.

``make test`` (through ``make e2e-clients``) installs Claude Code from npm into ``.e2e/``;
without it (npm unreachable) the test is skipped with the reason, never faked.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from tests.emulator.harness import TEST_KEY, EmulatorServer
from tokenomy.core.pricing import CostBreakdown, cost
from tokenomy.core.usage import Usage
from tokenomy.data import builtin_table

ROOT = Path(__file__).resolve().parents[2]
CLAUDE = ROOT / ".e2e" / "node_modules" / ".bin" / "claude"

pytestmark = pytest.mark.e2e


def _run_claude(server: EmulatorServer, home: Path, *args: str) -> dict[str, object]:
    if not CLAUDE.exists():
        pytest.skip("Claude Code is not installed (.e2e/); run `make e2e-clients` with npm online")
    if shutil.which("node") is None:
        pytest.skip("node is not installed; Claude Code needs it")
    env = {
        "PATH": str(Path(shutil.which("node") or "node").parent) + ":/usr/bin:/bin",
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": server.base_url,
        "ANTHROPIC_API_KEY": TEST_KEY,
        "DISABLE_TELEMETRY": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    r = subprocess.run(
        ["timeout", "90", str(CLAUDE), *args, "--output-format", "json"],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, (
        f"claude exited {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    )
    result: dict[str, object] = json.loads(r.stdout)
    return result


def test_claude_code_bare_print(server: EmulatorServer, tmp_path: Path) -> None:
    result = _run_claude(server, tmp_path, "--bare", "-p", "say hi")
    assert result["is_error"] is False
    assert result["result"] == "Echo: say hi"
    log = [e for e in server.admin().requests() if e["route"] == "messages"]
    assert log and all(e["status"] == 200 for e in log)
    # Claude Code computes total_cost_usd itself from the usage we returned: it must agree
    # with our own price of that usage.
    table = builtin_table()
    ours = Decimal(0)
    for e in log:
        priced = cost(Usage.from_wire(e["usage"]), str(e["model"]), table=table)
        assert isinstance(priced, CostBreakdown), priced
        ours += priced.total_usd
    total = Decimal(str(result["total_cost_usd"]))
    assert total > 0
    assert abs(total - ours) <= Decimal("0.000001"), (total, ours)
    usage = result["usage"]
    assert isinstance(usage, dict)
    assert usage["cache_creation_input_tokens"] == sum(
        e["usage"]["cache_creation_input_tokens"] for e in log
    )


def test_claude_code_second_run_reads_the_cache(server: EmulatorServer, tmp_path: Path) -> None:
    first = _run_claude(server, tmp_path, "--bare", "-p", "say hi")
    second = _run_claude(server, tmp_path, "--bare", "-p", "say hi")
    u1, u2 = first["usage"], second["usage"]
    assert isinstance(u1, dict) and isinstance(u2, dict)
    # same tools and system prompt (its billing line depends on the prompt): a hit
    assert u2["cache_read_input_tokens"] > 0
    assert Decimal(str(second["total_cost_usd"])) < Decimal(str(first["total_cost_usd"]))


@pytest.mark.parametrize(
    ("kind", "second_streams"),
    [
        # a stream that breaks right after message_start: Claude Code retries without streaming
        ("drop_after_start", False),
        ("stream_error", True),  # an error event: it retries the stream
        ("overloaded", True),  # a 529: retried after ~0.5 s
    ],
)
def test_claude_code_recovers_from_faults(
    server: EmulatorServer, tmp_path: Path, kind: str, second_streams: bool
) -> None:
    server.admin().faults([{"kind": kind, "nth": 1}])
    result = _run_claude(server, tmp_path, "--bare", "-p", "say hi")
    assert result["is_error"] is False and result["result"] == "Echo: say hi"
    log = [e for e in server.admin().requests() if e["route"] == "messages"]
    assert [e.get("faults") for e in log] == [[kind], None]
    assert log[1]["status"] == 200 and log[1]["stream"] is second_streams
