"""``tokenomy cost``: in-process through ``tokenomy.cli.main``, and once as the console script.

Every case of the accuracy suite is priced again from the command line, and must agree with
the hand computation to the last digit.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from tests.core.test_accuracy import CASE_IDS, CASES, Case, by_name
from tokenomy.cli import main

FIXTURES = Path(__file__).parent.parent / "fixtures" / "usage"
SCRIPT = Path(sys.executable).parent / "tokenomy"


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def errors(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("error:")]

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    def _run(*args: str, stdin: str | None = None) -> Result:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return _run


def as_text(case: Case) -> str:
    """The case's document as a user would have it in a file."""
    if case.doc.shape == "stream":
        return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in case.doc.payload)
    return json.dumps(case.doc.payload)


def cost_args(case: Case) -> list[str]:
    args = ["cost", "--json"]
    if case.doc.shape == "usage":
        args += ["--model", case.model]
    if case.batch:
        args.append("--batch")
    return args


# ---------------------------------------------------------------------- agreement


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_cost_json_agrees_with_the_accuracy_suite(case: Case, run: Any, tmp_path: Path) -> None:
    path = tmp_path / ("call.txt" if case.doc.shape == "stream" else "call.json")
    path.write_text(as_text(case), "utf-8")
    r = run(*cost_args(case), str(path))
    data = r.json()
    assert len(data["items"]) == 1
    item = data["items"][0]
    assert item["ttl_split_known"] is case.ttl_known
    c = item["cost"]
    if case.total is None:
        assert r.code == 2
        assert len(r.errors) == 1
        assert case.unpriced in r.errors[0]
        assert c["unpriced"] is True
        assert c["total_usd"] is None
        assert data["total_usd"] is None
        return
    assert r.code == 0, r.err
    assert r.errors == []
    a = case.amounts
    assert a is not None
    assert D(c["input_usd"]) == a.input
    assert D(c["cache_write_5m_usd"]) == a.w5
    assert D(c["cache_write_1h_usd"]) == a.w1
    assert D(c["cache_read_usd"]) == a.read
    assert D(c["output_usd"]) == a.output
    assert D(c["server_tools_usd"]) == a.tools
    assert D(c["total_usd"]) == case.total
    assert D(data["total_usd"]) == case.total
    assert tuple(c["modifiers"]) == case.mods


def test_stdin_and_file_input_agree(run: Any, tmp_path: Path) -> None:
    case = by_name("docs-first-call-writes-without-split")
    path = tmp_path / "u.json"
    path.write_text(as_text(case), "utf-8")
    from_file = run("cost", "--json", "--model", case.model, str(path))
    from_stdin = run("cost", "--json", "--model", case.model, "-", stdin=as_text(case))
    implicit = run("cost", "--json", "--model", case.model, stdin=as_text(case))
    assert from_file.code == from_stdin.code == implicit.code == 0
    assert from_file.json() == from_stdin.json() == implicit.json()
    assert D(from_stdin.json()["total_usd"]) == D("0.7112805")


def test_a_whole_response(run: Any) -> None:
    r = run("cost", "--json", str(FIXTURES / "response_opus5.json"))
    assert r.code == 0
    item = r.json()["items"][0]
    assert item["kind"] == "message"
    assert D(item["cost"]["server_tools_usd"]) == D("0.01")
    assert D(r.json()["total_usd"]) == (
        D(1500) * D("5") + D(2048) * D("6.25") + D(320) * D("25")
    ) / D(1_000_000) + D("0.01")


def test_a_jsonl_of_batch_results(run: Any) -> None:
    r = run("cost", "--json", str(FIXTURES / "batch_results.jsonl"))
    assert r.code == 0
    data = r.json()
    assert [it["line"] for it in data["items"]] == [1, 3]
    assert all(it["cost"]["modifiers"] == ["batch"] for it in data["items"])
    assert D(data["total_usd"]) == D("0.0055")
    assert len(data["skipped"]) == 3
    # skipped rows are warnings, not errors
    assert r.errors == []
    assert r.err.count("warning: skipped line") == 3


def test_a_raw_sse_stream(run: Any) -> None:
    r = run("cost", "--json", str(FIXTURES / "stream_sonnet46.txt"))
    assert r.code == 0
    item = r.json()["items"][0]
    assert item["kind"] == "stream"
    assert item["usage"]["output_tokens"] == 510
    assert D(r.json()["total_usd"]) == D("0.030936")


def test_a_claude_code_transcript(run: Any) -> None:
    r = run("cost", "--json", str(FIXTURES / "claude_code_session.jsonl"))
    assert r.code == 0
    assert D(r.json()["total_usd"]) == D("0.131709")


def test_table_output_for_one_call(run: Any) -> None:
    r = run("cost", str(FIXTURES / "stream_sonnet46.txt"))
    assert r.code == 0
    assert "claude-sonnet-4-6" in r.out
    assert "$0.030936" in r.out
    assert "cache read" in r.out
    assert "40,000" in r.out
    assert "cache hit rate" in r.out


def test_table_output_for_many_calls(run: Any) -> None:
    r = run("cost", str(FIXTURES / "batch_results.jsonl"))
    assert r.code == 0
    assert "total: $0.005500 over 2 calls" in r.out
    assert "batch" in r.out


def test_missing_breakdown_is_flagged(run: Any) -> None:
    case = by_name("missing-breakdown-all-5m")
    r = run("cost", "--model", case.model, stdin=as_text(case))
    assert r.code == 0
    assert "warning: no cache_creation breakdown" in r.err


def test_allow_unknown_prices_what_it_knows(run: Any) -> None:
    text = json.dumps({"input_tokens": 1_000_000, "output_tokens": 0, "brand_new_field": 1})
    strict = run("cost", "--model", "claude-sonnet-4-6", stdin=text)
    assert strict.code == 2
    lenient = run("cost", "--json", "--allow-unknown", "--model", "claude-sonnet-4-6", stdin=text)
    assert lenient.code == 0
    assert D(lenient.json()["total_usd"]) == D("3")


# ---------------------------------------------------------------------- bad input


BAD_INPUT = [
    ("malformed JSON", '{"input_tokens": 5,', ["--model", "claude-sonnet-4-6"], "not valid JSON"),
    (
        "negative counts",
        '{"input_tokens": -5, "output_tokens": 1}',
        ["--model", "claude-sonnet-4-6"],
        "negative (-5)",
    ),
    (
        "float counts",
        '{"input_tokens": 2.5, "output_tokens": 1}',
        ["--model", "claude-sonnet-4-6"],
        "whole number",
    ),
    (
        "unknown field",
        '{"input_tokens": 5, "output_tokens": 1, "cache_read_input_token": 3}',
        ["--model", "claude-sonnet-4-6"],
        "did you mean 'cache_read_input_tokens'?",
    ),
    (
        "unknown model",
        '{"input_tokens": 5, "output_tokens": 1}',
        ["--model", "claude-opus-9"],
        "'claude-opus-9' is not in the model table",
    ),
    ("empty input", "", ["--model", "claude-sonnet-4-6"], "the input is empty"),
    ("no model", '{"input_tokens": 5, "output_tokens": 1}', [], "pass --model"),
    ("no usage", '{"hello": "world"}', [], "holds no usage"),
    (
        "errored batch row",
        '{"custom_id": "a", "result": {"type": "errored", "error": {}}}',
        [],
        "nothing to price",
    ),
]


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [b[1:] for b in BAD_INPUT],
    ids=[b[0] for b in BAD_INPUT],
)
@pytest.mark.parametrize("json_out", [False, True], ids=["table", "json"])
def test_bad_input_is_one_error_line_and_exit_2(
    run: Any, text: str, args: list[str], message: str, json_out: bool
) -> None:
    r = run("cost", *(["--json"] if json_out else []), *args, stdin=text)
    assert r.code == 2
    assert len(r.errors) == 1, r.err
    assert message in r.errors[0]
    assert "Traceback" not in r.err


def test_missing_file(run: Any, tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    r = run("cost", "--model", "claude-sonnet-4-6", str(missing))
    assert r.code == 2
    assert r.errors == [f"error: {str(missing)!r} does not exist"]
    assert r.out == ""


def test_a_file_that_is_not_text(run: Any, tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(b"\xff\xfe\x00\x81")
    r = run("cost", "--model", "claude-sonnet-4-6", str(path))
    assert r.code == 2
    assert len(r.errors) == 1
    assert "not UTF-8" in r.errors[0]


def test_a_terminal_on_stdin_is_not_read(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Tty(""))
    r = run("cost", "--model", "claude-sonnet-4-6")
    assert r.code == 2
    assert r.errors == ["error: no input: pass a FILE or pipe JSON to 'tokenomy cost -'"]


# ---------------------------------------------------------------------- the console script


def _script(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], check=False, input=stdin, capture_output=True, text=True, timeout=60
    )


def test_console_script_prices_and_fails_like_the_library() -> None:
    assert SCRIPT.exists(), f"{SCRIPT} is missing; run 'make install'"
    case = by_name("claude-code-real-example-1h")
    ok = _script("cost", "--json", "-", stdin=as_text(case))
    assert ok.returncode == 0, ok.stderr
    assert D(json.loads(ok.stdout)["total_usd"]) == case.total
    bad = _script("cost", "--model", "claude-sonnet-4-6", "-", stdin='{"input_tokens": -1}')
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.splitlines() == [
        "error: usage.input_tokens is negative (-1); usage counts are never below 0"
    ]
