"""The write-behind writer: batches, flush, close, a full queue, failures, threads, exit."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tokenomy.errors import LedgerError
from tokenomy.ledger import Ledger, LedgerWriter, WriterOptions
from tokenomy.ports import UsageSink

from . import records as R


def _open(url: str, **options: float) -> Ledger:
    opts = WriterOptions(
        **{"batch_rows": 50, "flush_interval_s": 3600, "queue_max_rows": 1000, **options}  # type: ignore[arg-type]
    )
    return Ledger.open(url, busy_timeout_s=0.05, options=opts)


def _eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.005)


@contextlib.contextmanager
def write_lock(url: str) -> Iterator[None]:
    """Another connection holds the write lock (SQLite) or a lock on the tables (PostgreSQL)."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
    else:
        dbname = url.rsplit("/", 1)[1]
        with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={dbname}") as conn:
            conn.execute("LOCK TABLE runs, calls IN ACCESS EXCLUSIVE MODE")
            try:
                yield
            finally:
                conn.rollback()


def test_the_writer_is_a_usage_sink(ledger: Ledger) -> None:
    assert isinstance(ledger.writer(), UsageSink)
    assert ledger.writer() is ledger.writer()


def test_nothing_is_written_before_a_batch_fills_or_a_flush(ledger_url: str) -> None:
    with _open(ledger_url, batch_rows=3) as ledger:
        w = ledger.writer()
        w.record_call(R.call("c1"))
        w.record_call(R.call("c2", seq=2))
        assert ledger.count("calls") == 0  # interval is an hour; the batch holds 3
        w.flush()
        assert ledger.count("calls") == 2
        assert w.stats().batches == 1


def test_full_batches_are_written_without_waiting(ledger_url: str) -> None:
    with _open(ledger_url, batch_rows=3) as ledger:
        w = ledger.writer()
        for i in range(7):
            w.record_call(R.call(f"c{i}", seq=i))
        _eventually(lambda: w.stats().written == 6, "two full batches written")
        assert ledger.count("calls") == 6
        w.flush()
        s = w.stats()
        assert (s.written, s.batches, s.queued, s.recorded) == (7, 3, 0, 7)
        assert 1 <= s.max_queue_depth <= 7


def test_a_partial_batch_is_written_after_the_interval(ledger_url: str) -> None:
    with _open(ledger_url, flush_interval_s=0.02) as ledger:
        w = ledger.writer()
        w.record_call(R.call())
        _eventually(lambda: ledger.count("calls") == 1, "the interval flush")


def test_close_flushes_and_stops(ledger_url: str) -> None:
    ledger = _open(ledger_url)
    w = ledger.writer()
    for i in range(120):
        w.record_call(R.call(f"c{i}", seq=i))
    w.close()
    w.close()  # idempotent
    with pytest.raises(LedgerError, match="closed"):
        w.record_call(R.call("late"))
    assert ledger.count("calls") == 120
    ledger.close()
    with pytest.raises(LedgerError, match="closed"):
        ledger.writer()


def test_closing_the_ledger_closes_its_writer(ledger_url: str) -> None:
    with _open(ledger_url) as ledger:
        w = ledger.writer()
        w.record_call(R.call())
    with _open(ledger_url) as again:
        assert again.count("calls") == 1
    with pytest.raises(LedgerError):
        w.record_call(R.call("after"))


def test_many_threads_record_at_once(ledger_url: str) -> None:
    with _open(ledger_url, batch_rows=64) as ledger:
        w = ledger.writer()

        def producer(t: int) -> None:
            for i in range(250):
                w.record_call(R.call(f"t{t}-{i}", f"run-{t}", i))

        threads = [threading.Thread(target=producer, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        w.flush()
        assert ledger.count("calls") == 2000
        assert ledger.count("runs") == 8  # placeholders, one per run
        assert w.stats().written == 2000


def test_a_full_queue_blocks_the_producer_then_drops_and_counts(ledger_url: str) -> None:
    with _open(ledger_url, queue_max_rows=3, max_block_s=0.1) as ledger:
        w = ledger.writer()
        with write_lock(ledger_url):
            for i in range(3):
                w.record_call(R.call(f"c{i}", seq=i))
            w.record_call(R.call("c-dropped", seq=9))  # waits max_block_s, then gives up
            s = w.stats()
            assert (s.queued, s.blocked, s.dropped) == (3, 1, 1)
            assert s.blocked_ms >= 100
        _flush_until_ok(w)
        assert ledger.count("calls") == 3
        assert [c.call_id for c in _calls(ledger)] == ["c0", "c1", "c2"]


def test_a_producer_waits_for_room_and_loses_nothing(ledger_url: str) -> None:
    with _open(ledger_url, queue_max_rows=5, batch_rows=5, max_block_s=30) as ledger:
        w = ledger.writer()
        for i in range(200):
            w.record_call(R.call(f"c{i}", seq=i))
        w.flush()
        s = w.stats()
        assert s.dropped == 0 and s.written == 200 and s.max_queue_depth <= 5
        assert ledger.count("calls") == 200


def test_flush_reports_a_failing_database_and_keeps_the_rows(ledger_url: str) -> None:
    with _open(ledger_url) as ledger:
        w = ledger.writer()
        w.record_call(R.call())
        with write_lock(ledger_url):
            with pytest.raises(LedgerError, match="is locked by another"):
                w.flush()
            assert w.stats().failed_batches >= 1
            assert w.stats().queued == 1
            with pytest.raises(LedgerError, match=r"timed out|is locked by another"):
                w.flush(timeout_s=0.01)
        _flush_until_ok(w)
        assert ledger.count("calls") == 1
        assert w.stats().written == 1


def test_rows_the_database_refuses_are_counted_and_the_rest_written(ledger_url: str) -> None:
    with _open(ledger_url) as ledger:
        w = ledger.writer()
        w.record_call(R.call("good-1", seq=1))
        w.record_call(R.call("bad", seq=2**70, started_at=R.T0))  # no INTEGER column holds it
        w.record_call(R.call("good-2", seq=3))
        with pytest.raises(LedgerError, match="refused the call 'bad'"):
            w.flush()
        w.flush()
        assert [c.call_id for c in _calls(ledger)] == ["good-1", "good-2"]
        s = w.stats()
        assert (s.rejected, s.written, s.queued) == (1, 2, 0)


def test_bad_values_fail_on_the_callers_thread(ledger: Ledger) -> None:
    w = ledger.writer()
    with pytest.raises(LedgerError, match="not JSON-serialisable"):
        w.record_call(R.call(decisions={"when": object()}))
    assert w.stats().recorded == 0


def test_close_gives_up_after_its_timeout_and_says_how_many_rows(ledger_url: str) -> None:
    with _open(ledger_url) as ledger:
        w = ledger.writer()
        with write_lock(ledger_url):
            w.record_call(R.call())
            with pytest.raises(LedgerError, match="1 rows could not be written"):
                w.close(timeout_s=0.2)


def test_rows_are_flushed_at_normal_interpreter_exit(ledger_url: str, tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        from tokenomy.ledger import Ledger, WriterOptions
        from tests.ledger import records as R
        ledger = Ledger.open({ledger_url!r}, options=WriterOptions(flush_interval_s=3600))
        w = ledger.writer()
        for i in range(500):
            w.record_call(R.call(f"c{{i}}", seq=i))
        # no flush, no close: the atexit hook must write them
        """
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", script], check=True, cwd=root, timeout=120)
    with _open(ledger_url) as ledger:
        assert ledger.count("calls") == 500


def _flush_until_ok(w: LedgerWriter) -> None:
    """flush() raises for a failure that happened while it waited; the rows are retried."""
    for _ in range(100):
        try:
            w.flush()
        except LedgerError:
            continue
        return
    w.flush()


def _calls(ledger: Ledger) -> list[R.CallRecord]:
    from tokenomy.ledger.queries import run_calls

    return list(run_calls(ledger, "run-1"))


def test_async_callers_record_from_the_event_loop(ledger: Ledger) -> None:
    import asyncio

    w = ledger.writer()

    async def agent(n: int) -> None:
        for i in range(50):
            w.record_call(R.call(f"a{n}-{i}", f"async-{n}", i))  # never awaits I/O
            await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(agent(n) for n in range(10)))
        await asyncio.to_thread(w.flush)  # flush waits: keep it off the loop

    asyncio.run(main())
    assert ledger.count("calls") == 500
