"""Analysis tests run on a SQLite file and on the local PostgreSQL (tests/ledger/conftest.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ledger.conftest import TEST_OPTIONS, ledger_url, pg_database
from tokenomy.data import builtin_table
from tokenomy.data.table import ModelTable
from tokenomy.ledger import Ledger

__all__ = ["ledger_url", "pg_database"]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code"


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    opened = Ledger.open(ledger_url, busy_timeout_s=2.0, options=TEST_OPTIONS)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def table() -> ModelTable:
    return builtin_table()


@pytest.fixture
def basic(tmp_path: Path) -> Path:
    """A copy of the hand-written transcript tree (tests append to and rewrite its files)."""
    dst = tmp_path / "claude"
    shutil.copytree(FIXTURES / "basic", dst)
    return dst


@pytest.fixture
def v2_1_330(tmp_path: Path) -> Path:
    dst = tmp_path / "claude330"
    shutil.copytree(FIXTURES / "v2_1_330", dst)
    return dst
