"""A process killed with SIGKILL loses only its unflushed tail, never more than the bound.

The bound (``docs/design/ledger.md``): rows leave the queue only once committed, so a hard
kill loses exactly the rows still queued, at most ``queue_max_rows``. With
``queue_max_rows == batch_rows`` that is "the last unflushed batch". The child records as fast
as it can — the worst case, where the queue is full — and the test kills it the moment it
says all N were recorded. ``bench/ledger_kill.py`` measures typical losses.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

from tokenomy.ledger import Ledger
from tokenomy.ledger.schema import calls

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import sys, time
    from tokenomy.ledger import Ledger, WriterOptions
    from tests.ledger import records as R

    url, n, batch, qmax = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    opts = WriterOptions(batch_rows=batch, flush_interval_s=0.25, queue_max_rows=qmax,
                         max_block_s=600)
    writer = Ledger.open(url, options=opts).writer()
    writer.record_run(R.run("killed"))
    writer.flush()
    for i in range(n):
        writer.record_call(R.call(f"k{i:06d}", "killed", i))
    print("recorded", n, flush=True)
    time.sleep(600)
    """
)


def _kill_after_n(url: str, *, n: int, batch: int, qmax: int) -> int:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(n), str(batch), str(qmax)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.split() == ["recorded", str(n)], line
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=60)
        if child.stdout:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    with Ledger.open(url) as ledger, ledger.read() as conn:
        seqs = list(
            conn.execute(select(calls.c.seq).where(calls.c.run_id == "killed").order_by("seq"))
            .scalars()
            .all()
        )
    # FIFO, committed whole batches: what survives is exactly the first rows, no holes.
    assert seqs == list(range(len(seqs)))
    return n - len(seqs)


@pytest.mark.parametrize(("batch", "qmax"), [(100, 100), (50, 400)])
def test_a_sigkill_loses_at_most_the_queued_rows(ledger_url: str, batch: int, qmax: int) -> None:
    lost = _kill_after_n(ledger_url, n=3000, batch=batch, qmax=qmax)
    assert 0 <= lost <= qmax
    if ledger_url.startswith("sqlite"):
        path = ledger_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
