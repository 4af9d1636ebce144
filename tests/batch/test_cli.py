"""``tokenomy batch …`` in-process, against the emulator served over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.batch.conftest import KEY, MODEL, write_job
from tests.emulator.harness import EmulatorServer, serve_app
from tokenomy.cli import main
from tokenomy.emulator import BatchTiming

FAST = ["--poll-interval", "0", "--poll-max", "0"]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorServer]:
    with serve_app(batch_timing=BatchTiming(poll_advance_s=600)) as srv:
        monkeypatch.setenv("TOKENOMY_UPSTREAM", srv.base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
        yield srv


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def submit_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[dict[str, Any], str]:
    code, out, err = run(capsys, "batch", "submit", *args, "--json", *FAST)
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data, err


def test_the_whole_workflow(
    server: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_job(tmp_path / "tickets.jsonl", 30)
    code, out, err = run(
        capsys, "batch", "submit", str(src), "--name", "tickets", "--max-per-batch", "10", *FAST
    )
    assert code == 0, err
    job_id = out.split(":", 1)[0]
    assert "30 requests in 3 batch(es), 3 submitted" in out
    assert f"next: tokenomy batch wait {job_id}" in out

    code, out, err = run(capsys, "batch", "wait", job_id, *FAST)
    assert code == 0, err
    assert "state              ended" in out
    assert "30: 30 succeeded, 0 errored" in out
    assert "(50% off)" in out and "cache hit rate" in out

    code, out, _ = run(capsys, "batch", "status", job_id, "--json")
    status = json.loads(out)
    assert status["cost"]["saving_pct"] == 50.0
    assert Decimal(status["cost"]["interactive_usd"]) == 2 * Decimal(status["cost"]["batch_usd"])
    assert [c["requests"] for c in status["chunks"]] == [10, 10, 10]

    code, out, _ = run(capsys, "batch", "results", job_id)
    lines = [orjson.loads(x) for x in out.splitlines()]
    assert sorted(x["custom_id"] for x in lines) == sorted(f"q{i}" for i in range(30))
    target = tmp_path / "out.jsonl"
    code, out, _ = run(capsys, "batch", "results", job_id, "-o", str(target))
    assert code == 0 and "wrote 30 result lines" in out
    assert len(target.read_bytes().splitlines()) == 30

    code, out, _ = run(capsys, "batch", "list")
    assert job_id in out and "tickets" in out and "ended" in out
    code, out, _ = run(capsys, "batch", "list", "--json")
    assert json.loads(out)["jobs"][0]["job_id"] == job_id


def test_a_template_job(
    server: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = tmp_path / "tpl.yaml"
    template.write_text(
        f"model: {MODEL}\nmax_tokens: 16\nsystem: Translate to French.\n"
        "messages:\n  - role: user\n    content: '{{text}}'\n"
    )
    items = tmp_path / "items.jsonl"
    items.write_text('{"id": "a", "text": "hello"}\n{"id": "b", "text": "goodbye"}\n')
    data, _ = submit_json(capsys, str(items), "--template", str(template), "--wait")
    assert data["state"] == "ended" and data["requests"]["succeeded"] == 2


def test_an_invalid_file_is_one_clear_error_and_nothing_is_sent(
    server: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_job(tmp_path / "j.jsonl", 2)
    with src.open("ab") as fh:
        fh.write(b"this is not json\n")
    code, out, err = run(capsys, "batch", "submit", str(src), *FAST)
    assert code == 2 and out == ""
    errors = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(errors) == 1
    assert "1 invalid line, nothing was submitted: line 3: not valid JSON" in errors[0]
    assert server.emulator.batches.stats(0)["batches"] == 0

    data, err = submit_json(capsys, str(src), "--skip-invalid", "--wait")
    assert data["skipped"]["count"] == 1 and data["requests"]["succeeded"] == 2
    assert "warning: skipped line 3: not valid JSON" in err


@pytest.mark.parametrize("command", ["status", "wait", "resume", "cancel", "results"])
def test_an_unknown_job_id_is_named(
    server: EmulatorServer, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    code, _, err = run(capsys, "batch", command, "job000000000000")
    assert code == 2
    assert "error: no batch job 'job000000000000'" in err and "tokenomy batch list" in err


def test_results_of_a_running_job_need_partial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve_app() as srv:  # batches never end by themselves: no poll advance
        monkeypatch.setenv("TOKENOMY_UPSTREAM", srv.base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
        data, _ = submit_json(capsys, str(write_job(tmp_path / "j.jsonl", 3)))
        job_id = data["job_id"]
        code, _, err = run(capsys, "batch", "results", job_id)
        assert code == 2 and "is running (0 of 3 requests done)" in err and "--partial" in err
        code, out, _ = run(capsys, "batch", "results", job_id, "--partial")
        assert code == 0 and out == ""
        code, out, _ = run(capsys, "batch", "cancel", job_id)
        assert code == 0 and "canceling" in out
        srv.emulator.clock.advance(60)
        code, out, _ = run(capsys, "batch", "wait", job_id, "--json", *FAST)
        assert json.loads(out)["requests"]["canceled"] == 3


def test_no_api_key_says_where_to_put_it(
    server: EmulatorServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    code, _, err = run(capsys, "batch", "submit", str(write_job(tmp_path / "j.jsonl", 1)))
    assert code == 2 and "set ANTHROPIC_API_KEY or pass --api-key" in err
