"""``tokenomy emulator``: flags are checked, and the command really serves the API."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

from tokenomy.cli import main

SERVE = "from tokenomy.cli import main; raise SystemExit(main())"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--latency", "sometimes"], "--latency"),
        (["--clock", "sundial"], "--clock"),
        (["--brain", "nobody"], "unknown brain"),
    ],
)
def test_bad_flags_exit_2(
    args: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["emulator", *args]) == 2
    assert fragment in capsys.readouterr().err


def test_bad_faults_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "faults.yaml"
    plan.write_text("faults:\n  - kind: meteor\n")
    assert main(["emulator", "--faults", str(plan)]) == 2
    assert "meteor" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_serves_the_api(tmp_path: Path) -> None:
    plan = tmp_path / "faults.json"
    plan.write_text('{"faults": [{"kind": "overloaded", "nth": 2}]}')
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SERVE,
            "emulator",
            "--port",
            str(port),
            "--faults",
            str(plan),
            "--latency",
            "virtual",
            "--brain",
            "facts",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        with httpx2.Client(base_url=base, timeout=10) as http:
            while True:  # wait for startup (not a timing assertion)
                try:
                    http.get("/_emulator/clock")
                    break
                except httpx2.TransportError:
                    assert proc.poll() is None, proc.communicate()
                    assert time.monotonic() < deadline, "the emulator did not start"
                    time.sleep(0.05)
            headers = {"x-api-key": "sk-ant-test-0000", "anthropic-version": "2023-06-01"}
            body = {
                "model": "claude-sonnet-4-6",
                "max_tokens": 64,
                "messages": [{"role": "user", "content": "⟦fact:x=1⟧ ⟦ask:x⟧"}],
            }
            first = http.post("/v1/messages", json=body, headers=headers)
            second = http.post("/v1/messages", json=body, headers=headers)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert first.status_code == 200 and "⟦answer:x=1⟧" in first.json()["content"][0]["text"]
    assert "x-emulator-ttft-ms" in first.headers
    assert second.status_code == 529
    assert f"http://127.0.0.1:{port}" in out
