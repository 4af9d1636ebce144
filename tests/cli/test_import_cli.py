"""``tokenomy import claude-code``: a summary of what was read and skipped; exit 0 when useful."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from tokenomy.cli import main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code" / "basic"


@pytest.fixture
def transcripts(tmp_path: Path) -> Path:
    dst = tmp_path / "claude"
    shutil.copytree(FIXTURE, dst)
    return dst


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["import", "claude-code", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_import_prints_what_it_read_and_skipped(
    capsys: pytest.CaptureFixture[str], transcripts: Path
) -> None:
    code, out, err = _run(capsys, str(transcripts))
    assert code == 0
    assert "Imported 10 calls" in out and "from 5 of 5 files" in out
    assert "$0.2104" in out  # 0.2103742
    assert "2 duplicate lines of one response" in out
    assert "1 sidechain replays" in out and "1 unfinished last lines" in out
    assert "claude-nova-9" in err and "unpriced" in err
    assert "2 lines could not be read" in err
    assert "11111111-1111-4111-8111-111111111111.jsonl:7: a truncated line" in out
    code, out, _ = _run(capsys, str(transcripts))
    assert code == 0 and "Imported 0 calls" in out and "5 files unchanged" in out


def test_json_summary(capsys: pytest.CaptureFixture[str], transcripts: Path) -> None:
    code, out, _ = _run(capsys, str(transcripts), "--json")
    assert code == 0
    data = orjson.loads(out)
    assert data["calls"] == 10 and data["cost_usd"] == "0.2103742"
    assert data["unknown_models"] == {"claude-nova-9": 1}
    assert data["bad_examples"][0]["line"] == 7


def test_claude_config_dir_is_read_when_no_path_is_given(
    capsys: pytest.CaptureFixture[str], transcripts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", f"{transcripts},{transcripts.parent / 'missing'}")
    code, out, err = _run(capsys)
    assert code == 0 and "Imported 10 calls" in out
    assert "no Claude Code transcripts in" in err and "missing" in err


def test_a_folder_that_does_not_exist(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = _run(capsys, str(tmp_path / "nope"))
    assert code == 1
    assert "No transcripts found" in out and "~/.claude/projects" in out
    assert f"no Claude Code transcripts in {tmp_path / 'nope'}" in err
