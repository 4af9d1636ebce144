"""SQLite's write path binds rows on the driver's cursor: the stored bytes must be SQLAlchemy's."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError

from tokenomy.core.usage import Usage
from tokenomy.ledger import Ledger
from tokenomy.ledger.codec import call_to_row, placeholder_run_row, run_to_row
from tokenomy.ledger.schema import calls, runs
from tokenomy.ledger.store import PendingRow

from . import records as R


def _rows() -> list[PendingRow]:
    naive = datetime(2026, 11, 20, 9, 30, 1, 5)  # naive: taken as UTC
    return [
        PendingRow("run", run_to_row(R.run("run-1", ended_at=R.T0 + timedelta(hours=1)))),
        PendingRow("call", call_to_row(R.full_call("full", "run-1"))),
        PendingRow("call", call_to_row(R.call("no-usage", "run-1", 2, usage=None))),
        PendingRow(
            "call",
            call_to_row(
                R.call(
                    "exact",
                    "run-1",
                    3,
                    usage=Usage(input_tokens=7, output_tokens=1),
                    cost_=R.cost(input_usd="0.0000000000001234", output="1.5"),
                    started_at=naive,
                    decisions={"cache_plan": {"breakpoints": [], "notes": ["é", 1.5, None]}},
                    breakpoints=("system[0]@5m",),
                )
            ),
        ),
        # a call whose run was never recorded: a placeholder run is written for it
        PendingRow("call", call_to_row(R.call("orphan", "run-elsewhere", 1))),
    ]


def _dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("runs", "calls")
        }
    finally:
        conn.close()


def test_rows_stored_by_the_driver_path_are_sqlalchemys(tmp_path: Path) -> None:
    rows = _rows()
    fast_db, core_db = tmp_path / "fast.db", tmp_path / "core.db"
    with Ledger.open(f"sqlite:///{fast_db}") as ledger:
        ledger.write_batch(rows)
    with Ledger.open(f"sqlite:///{core_db}") as ledger, ledger.engine.begin() as conn:
        # the reference: SQLAlchemy Core binding the same rows itself
        conn.execute(
            sqlite.insert(runs),
            [r.values for r in rows if r.kind == "run"]
            + [placeholder_run_row("run-elsewhere", R.T0 + timedelta(seconds=1))],
        )
        conn.execute(sqlite.insert(calls), [r.values for r in rows if r.kind == "call"])
    fast, core = _dump(fast_db), _dump(core_db)
    assert len(fast["calls"]) == 4
    assert fast == core


def test_recording_a_call_again_replaces_it(tmp_path: Path) -> None:
    with Ledger.open(f"sqlite:///{tmp_path / 'l.db'}") as ledger:
        ledger.write_batch([PendingRow("call", call_to_row(R.call("c", seq=1)))])
        ledger.write_batch([PendingRow("call", call_to_row(R.call("c", seq=9, status="error")))])
        got = _dump(tmp_path / "l.db")["calls"]
    assert [(row[0], row[2], row[8]) for row in got] == [("c", 9, "error")]


def test_driver_errors_are_raised_as_sqlalchemys(tmp_path: Path) -> None:
    with Ledger.open(f"sqlite:///{tmp_path / 'l.db'}") as ledger:
        row = call_to_row(R.call("c"))
        row["model_requested"] = None  # NOT NULL
        with pytest.raises(IntegrityError, match="NOT NULL"):
            ledger.write_batch([PendingRow("call", row)])
        assert ledger.count("calls") == 0
