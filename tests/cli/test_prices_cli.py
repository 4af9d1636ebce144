"""``tokenomy prices``: the model table as a table, as JSON, and where to override it."""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from tokenomy.cli import main
from tokenomy.data import builtin_table

TABLE = builtin_table()


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def errors(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("error:")]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Any:
    def _run(*args: str) -> Result:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return _run


@pytest.fixture
def user_models(_isolated_user_state: Path) -> Path:
    """Where ``tokenomy prices --path`` says the user's models file goes (XDG config dir)."""
    return _isolated_user_state / "config" / "tokenomy" / "models.toml"


def test_prices_json_has_every_model_with_exact_prices(run: Any) -> None:
    r = run("prices", "--json")
    assert r.code == 0
    data = json.loads(r.out)
    assert data["checked_on"] == "2026-08-21"
    by_id = {m["id"]: m for m in data["models"]}
    assert set(by_id) == {m.id for m in TABLE}
    for m in TABLE:
        row = by_id[m.id]
        assert row["aliases"] == list(m.aliases)
        assert row["status"] == m.status
        if m.prices is None:
            assert row["prices_usd_per_mtok"] is None
            continue
        p = row["prices_usd_per_mtok"]
        # Decimals are printed as exact strings
        assert D(p["input"]) == m.prices.input
        assert D(p["cache_write_1h"]) == m.prices.cache_write_1h
        assert D(p["cache_read"]) == m.prices.cache_read
        assert D(p["batch_output"]) == m.prices.batch_output
    assert by_id["claude-opus-4-6"]["fast_usd_per_mtok"] == {"input": "30", "output": "150"}
    assert by_id["claude-sonnet-4-5-20250929"]["long_context"]["above_input_tokens"] == 200_000
    assert by_id["claude-opus-4-1-20250805"]["retired_on"] == "2026-08-05"
    assert by_id["claude-opus-5-5"]["confidence"] == "unconfirmed"


def test_prices_table(run: Any) -> None:
    r = run("prices")
    assert r.code == 0
    assert "checked 2026-08-21" in r.out
    assert "claude-sonnet-4-6" in r.out
    assert "unpriced" in r.out  # claude-mythos-preview
    assert "claude-3-haiku-20240307" not in r.out  # retired: only with --all
    everything = run("prices", "--all")
    assert "claude-3-haiku-20240307" in everything.out
    assert "retired" in everything.out


def test_prices_path_defaults_to_the_config_dir(run: Any, user_models: Path) -> None:
    r = run("prices", "--path")
    assert r.code == 0
    assert r.out.strip() == str(user_models)


def test_prices_path_follows_the_environment(
    run: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = tmp_path / "team-models.toml"
    monkeypatch.setenv("TOKENOMY_MODELS_FILE", str(target))
    assert run("prices", "--path").out.strip() == str(target)


def test_a_user_models_file_overrides_and_adds(
    run: Any, user_models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_models.parent.mkdir(parents=True, exist_ok=True)
    user_models.write_text(
        """
[[models]]
id = "claude-sonnet-4-6"
input = "2"

[[models]]
id = "claude-mythos-preview"
input = "25"
output = "125"
cache_write_5m = "31.25"
cache_write_1h = "50"
cache_read = "2.50"
batch_input = "12.50"
batch_output = "62.50"
""",
        "utf-8",
    )
    data = json.loads(run("prices", "--json").out)
    by_id = {m["id"]: m for m in data["models"]}
    assert by_id["claude-sonnet-4-6"]["prices_usd_per_mtok"]["input"] == "2"
    assert data["sources"] == ["tokenomy/data/models.toml", str(user_models)]
    # and tokenomy cost prices with it
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"input_tokens": 1000000, "output_tokens": 0}'))
    r = run("cost", "--json", "--model", "claude-mythos-preview")
    assert r.code == 0, r.err
    assert D(json.loads(r.out)["total_usd"]) == D("25")


def test_a_malformed_user_models_file_is_one_error_line(run: Any, user_models: Path) -> None:
    user_models.parent.mkdir(parents=True, exist_ok=True)
    user_models.write_text('[[models]]\nid = "claude-sonnet-4-6"\ninput = "cheap"\n', "utf-8")
    r = run("prices")
    assert r.code == 2
    assert len(r.errors) == 1
    assert str(user_models) in r.errors[0]
    assert "'cheap'" in r.errors[0]
    assert r.out == ""


def test_version(run: Any) -> None:
    from tokenomy import __version__

    r = run("--version")
    assert r.code == 0
    assert r.out.strip() == f"tokenomy {__version__}"
