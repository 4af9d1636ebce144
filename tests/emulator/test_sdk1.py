"""An older official SDK (``anthropic<2``, its own venv under ``.e2e/``) against the emulator.

``make test`` (through ``make e2e-sdk1``) creates the venv; without it (PyPI unreachable) the
test is skipped, never faked.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.emulator.harness import EmulatorServer

ROOT = Path(__file__).resolve().parents[2]
SDK1_PYTHON = ROOT / ".e2e" / "sdk1" / "bin" / "python"
SCRIPT = ROOT / "tests" / "fixtures" / "emulator" / "sdk1_client.py"

pytestmark = pytest.mark.e2e


def _sdk1_version() -> str | None:
    if not SDK1_PYTHON.exists():
        return None
    r = subprocess.run(
        [str(SDK1_PYTHON), "-c", "import anthropic; print(anthropic.__version__)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return r.stdout.strip() if r.returncode == 0 else None


def test_sdk_1x_conformance(server: EmulatorServer) -> None:
    version = _sdk1_version()
    if version is None:
        pytest.skip("the anthropic 1.x venv is absent (.e2e/sdk1); run `make e2e-sdk1` online")
    assert version.startswith(("0.", "1.")), version
    r = subprocess.run(
        [str(SDK1_PYTHON), str(SCRIPT), server.base_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["sdk_version"] == version
    assert out["create"] == {
        "text": "Echo: hello there",
        "model": "claude-sonnet-4-6",
        "stop": "end_turn",
        "output_tokens": out["create"]["output_tokens"],
    }
    assert out["create"]["output_tokens"] > 0
    assert out["stream"] == {"text": "Echo: hello there", "final_text": "Echo: hello there"}
    assert out["raw_stream"][0] == "message_start" and out["raw_stream"][-1] == "message_stop"
    assert out["count_tokens"] > 0
    assert len(out["models"]) == 5
    assert out["errors"] == {"bad_request": 400, "not_found": 404}
    assert out["batch"] == {"status": "ended", "results": [["a", "succeeded"]]}
    # the 1.x SDK authenticates with x-api-key and the 2023-06-01 version (2.x: Bearer, 2026)
    log = server.admin().requests()
    assert {e["route"] for e in log} >= {"messages", "count_tokens", "models", "batches"}
    assert {(e["auth"], e["anthropic_version"]) for e in log} == {("x-api-key", "2023-06-01")}
