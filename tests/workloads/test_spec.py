"""The workload format: bad files are reported with the field and the line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tokenomy.cli import main
from tokenomy.errors import WorkloadError
from tokenomy.workloads import find_workload, parse_workload, reference_workloads

GOOD = """\
name: tiny
title: a tiny run
tools:
  count: 2
  tokens: 200
conversation:
  - user: go
    artifacts:
      count: 2
      tokens: 100
"""


@dataclass(frozen=True)
class Bad:
    text: str
    message: str


@pytest.mark.parametrize(
    "case",
    [
        Bad(
            GOOD.replace("count: 2\n      tokens: 100", "count: 0\n      tokens: 100"),
            "w.yaml:9: conversation[0].artifacts.count: Input should be greater than or equal to 1",
        ),
        Bad(
            GOOD.replace("name: tiny", "name: Tiny Run"),
            "w.yaml:1: name: String should match pattern",
        ),
        Bad(GOOD + "surprise: 1\n", "w.yaml:11: surprise: Extra inputs are not permitted"),
        Bad(
            GOOD.replace("  - user: go", "  - usr: go"),
            "w.yaml:7: conversation[0].usr: Extra inputs",
        ),
        Bad(
            "name: x\ntitle: t\n",
            "w.yaml:1: workload: Value error, a workload needs a 'conversation'",
        ),
        Bad("name: [unclosed\n", "w.yaml:2: not valid YAML"),
        Bad("- a list\n", "w.yaml: a workload is a YAML mapping"),
        Bad(
            GOOD.replace("tokens: 200", "tokens: lots"),
            "w.yaml:5: tools.tokens: Input should be a valid integer",
        ),
        Bad(
            GOOD + "batch_cache_ttl: 2h\n",
            "w.yaml:11: batch_cache_ttl: Input should be '1h', '5m' or 'off'",
        ),
    ],
)
def test_a_bad_workload_names_the_field_and_the_line(case: Bad) -> None:
    with pytest.raises(WorkloadError) as exc:
        parse_workload(case.text, source="w.yaml")
    assert str(exc.value).startswith(case.message), str(exc.value)


def test_the_good_one_parses() -> None:
    w = parse_workload(GOOD, source="w.yaml")
    assert w.conversation[0].artifacts is not None and w.conversation[0].artifacts.count == 2


def test_there_are_eight_reference_workloads_with_the_founding_cases() -> None:
    names = [w.name for w in reference_workloads()]
    assert len(names) >= 8
    assert {
        "founding-12-turn",
        "ten-step-20k",
        "policy-document",
        "fan-out-5",
        "slow-human",
        "chatty-connector",
        "bulk-tickets",
        "claude-code-session",
    } <= set(names)


def test_find_by_name_or_file(tmp_path: Path) -> None:
    assert find_workload("ten-step-20k").name == "ten-step-20k"
    (tmp_path / "mine.yaml").write_text(GOOD)
    assert find_workload(str(tmp_path / "mine.yaml")).name == "tiny"
    with pytest.raises(WorkloadError, match="no workload 'nope'"):
        find_workload("nope")


def test_the_cli_reports_a_bad_file_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.yaml").write_text(
        GOOD.replace("count: 2\n      tokens: 100", "count: -1\n      tokens: 100")
    )
    assert main(["workload", "run", str(tmp_path / "bad.yaml")]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:9: conversation[0].artifacts.count" in err
