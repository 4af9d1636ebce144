"""The write-behind writer: ``record_*`` appends to a bounded queue, one thread commits batches.

Guarantees (see ``docs/design/ledger.md`` for the reasoning and the measured numbers):

- ``record_run`` / ``record_call`` / ``record_event`` never touch the database. They turn the
  record into a row on the caller's thread (so a bad value fails there, loudly) and append it.
- One background thread commits up to ``batch_rows`` rows per transaction, as soon as a batch
  is full, else when the oldest waiting row is ``flush_interval_s`` old.
- Memory is bounded by ``queue_max_rows`` (rows waiting *or* being written). When the queue is
  full, ``record_*`` blocks the producer until there is room, up to ``max_block_s``; then the
  row is dropped, counted (``dropped``) and logged — never silently.
- ``flush()`` returns once everything recorded before it is committed, or raises LedgerError as
  soon as a write fails (the rows stay queued and are retried with backoff).
- ``close()`` flushes and stops; an ``atexit`` hook closes on a normal interpreter exit.
- A hard kill (SIGKILL, power loss aside) loses exactly the rows still queued: at most
  ``queue_max_rows``, and in practice one batch plus what arrived in the last flush interval.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from itertools import islice

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from tokenomy.core.records import CallRecord, RunRecord
from tokenomy.errors import LedgerError

from .codec import RunEvent, call_to_row, event_to_row, run_to_row
from .engine import ledger_error
from .store import Ledger, PendingRow, WriterOptions

__all__ = ["LedgerWriter", "WriterStats"]

log = logging.getLogger("tokenomy.ledger")

_BACKOFF_MIN_S = 0.05
_BACKOFF_MAX_S = 2.0
_STOP_WAIT_S = 5.0


@dataclass(frozen=True, slots=True)
class WriterStats:
    """Counters since the writer started (for metrics and the kill benchmark)."""

    queued: int  # rows waiting now, including the batch being written
    recorded: int  # rows accepted by record_*
    written: int  # rows committed
    batches: int  # transactions committed
    max_queue_depth: int
    blocked: int  # record_* calls that waited for room in a full queue
    blocked_ms: float  # total time producers waited
    dropped: int  # rows given up after max_block_s in a full queue (logged)
    rejected: int  # rows the database refused as invalid (logged)
    failed_batches: int  # write attempts that failed and were retried
    last_error: str | None


class LedgerWriter:
    """A :class:`~tokenomy.ports.UsageSink` over a :class:`Ledger`. Thread-safe."""

    def __init__(self, ledger: Ledger, *, options: WriterOptions | None = None) -> None:
        self._ledger = ledger
        self._opt = options or ledger.options
        self._cond = threading.Condition()
        # (monotonic time enqueued, row); rows leave only once committed (or rejected).
        self._queue: deque[tuple[float, PendingRow]] = deque()
        self._enqueued = 0  # sequence number of the last row appended
        self._done = 0  # rows at the front of the queue that are settled (committed/rejected)
        self._flush_to = 0
        self._closing = False
        self._stop = False
        self._closed = False
        self._failing = False
        self._error_gen = 0
        self._last_exc: LedgerError | None = None
        # counters
        self._written = self._batches = self._max_depth = 0
        self._blocked = self._dropped = self._rejected = self._failed = 0
        self._blocked_s = 0.0
        self._thread = threading.Thread(
            target=self._run, name=f"tokenomy-ledger-writer:{ledger.display}", daemon=True
        )
        self._thread.start()
        atexit.register(self._at_exit)

    # ------------------------------------------------------------------ UsageSink

    def record_run(self, run: RunRecord) -> None:
        """Queue ``run``; recording the same run_id again later replaces it (upsert)."""
        self._put(PendingRow("run", run_to_row(run)))

    def record_call(self, call: CallRecord) -> None:
        """Queue ``call``; recording the same call_id again replaces it (upsert)."""
        self._put(PendingRow("call", call_to_row(call)))

    def record_event(self, event: RunEvent) -> None:
        """Queue an event of a run (a compaction boundary, …)."""
        self._put(PendingRow("event", event_to_row(event)))

    def flush(self, *, timeout_s: float | None = None) -> None:
        """Wait until every row recorded so far is committed.

        Raises LedgerError when a write fails meanwhile (the rows stay queued and are
        retried), or when ``timeout_s`` passes first.
        """
        with self._cond:
            target = self._enqueued
            self._flush_to = max(self._flush_to, target)
            gen = self._error_gen
            rejected = self._rejected
            self._cond.notify_all()
            deadline = None if timeout_s is None else time.monotonic() + timeout_s
            while self._done < target:
                if self._rejected != rejected and self._last_exc is not None:
                    raise LedgerError(str(self._last_exc))
                if self._error_gen != gen and self._last_exc is not None:
                    raise LedgerError(
                        f"{self._last_exc} ({len(self._queue)} rows kept in memory and retried)"
                    )
                if not self._thread.is_alive():
                    raise LedgerError(
                        f"the ledger writer has stopped with {len(self._queue)} rows unwritten"
                    )
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise LedgerError(
                        f"timed out after {timeout_s}s flushing the ledger {self._ledger.display!r}"
                        f" ({target - self._done} rows still waiting)"
                    )
                self._cond.wait(remaining)
            if self._rejected != rejected and self._last_exc is not None:
                # Settled, but not all written: say so even if it all happened before we woke.
                raise LedgerError(str(self._last_exc))

    def close(self, *, timeout_s: float | None = None) -> None:
        """Flush what is queued and stop the thread. Idempotent.

        Raises LedgerError naming how many rows could not be written within ``timeout_s``
        (default ``close_timeout_s``).
        """
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._closing = True
            self._cond.notify_all()
        atexit.unregister(self._at_exit)
        wait_s = self._opt.close_timeout_s if timeout_s is None else timeout_s
        self._thread.join(wait_s)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        # A write stuck in the database is left to its own timeout; its rows count as lost.
        self._thread.join(_STOP_WAIT_S)
        with self._cond:
            lost = len(self._queue)
            exc = self._last_exc
        if lost:
            raise LedgerError(
                f"{lost} rows could not be written: {exc}"
                if exc
                else f"{lost} rows could not be written to the ledger {self._ledger.display!r}"
            )

    # ------------------------------------------------------------------ counters

    def stats(self) -> WriterStats:
        with self._cond:
            return WriterStats(
                queued=len(self._queue),
                recorded=self._enqueued,
                written=self._written,
                batches=self._batches,
                max_queue_depth=self._max_depth,
                blocked=self._blocked,
                blocked_ms=self._blocked_s * 1000,
                dropped=self._dropped,
                rejected=self._rejected,
                failed_batches=self._failed,
                last_error=None if self._last_exc is None else str(self._last_exc),
            )

    # ------------------------------------------------------------------ producer side

    def _put(self, row: PendingRow) -> None:
        opt = self._opt
        with self._cond:
            if self._closed:
                raise LedgerError(f"the ledger writer for {self._ledger.display!r} is closed")
            if len(self._queue) >= opt.queue_max_rows:
                start = time.monotonic()
                deadline = start + opt.max_block_s
                self._blocked += 1
                self._cond.notify_all()  # the writer: write now, do not wait for the timer
                while len(self._queue) >= opt.queue_max_rows and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                self._blocked_s += time.monotonic() - start
                if len(self._queue) >= opt.queue_max_rows or self._closed:
                    self._dropped += 1
                    if self._dropped == 1 or self._dropped % 1000 == 0:
                        log.error(
                            "ledger queue full for %.1fs (%d rows): dropped %d rows so far; "
                            "last error: %s",
                            opt.max_block_s,
                            opt.queue_max_rows,
                            self._dropped,
                            self._last_exc,
                        )
                    return
            self._queue.append((time.monotonic(), row))
            self._enqueued += 1
            depth = len(self._queue)
            self._max_depth = max(self._max_depth, depth)
            if depth in (1, opt.batch_rows, opt.queue_max_rows):
                self._cond.notify_all()

    # ------------------------------------------------------------------ writer thread

    def _run(self) -> None:
        backoff = _BACKOFF_MIN_S
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._ledger.write_batch(batch)
            except Exception as exc:
                if _is_bad_data(exc):
                    self._write_one_by_one(batch)
                    continue
                self._failed_attempt(exc)
                with self._cond:
                    self._cond.wait_for(lambda: self._stop, timeout=backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
                continue
            backoff = _BACKOFF_MIN_S
            self._settle(len(batch), written=len(batch))

    def _next_batch(self) -> list[PendingRow] | None:
        opt = self._opt
        with self._cond:
            while True:
                if self._stop:
                    return None
                if self._queue:
                    age = time.monotonic() - self._queue[0][0]
                    if (
                        self._closing
                        or self._flush_to > self._done
                        or len(self._queue) >= min(opt.batch_rows, opt.queue_max_rows)
                        or age >= opt.flush_interval_s
                    ):
                        return [row for _, row in islice(self._queue, opt.batch_rows)]
                    self._cond.wait(opt.flush_interval_s - age)
                elif self._closing:
                    return None
                else:
                    self._cond.wait()

    def _settle(self, n: int, *, written: int) -> None:
        with self._cond:
            for _ in range(n):
                self._queue.popleft()
            self._done += n
            self._written += written
            if written:
                self._batches += 1
            self._failing = False
            self._cond.notify_all()

    def _failed_attempt(self, exc: BaseException) -> None:
        err = exc if isinstance(exc, LedgerError) else ledger_error(exc, self._ledger.target)
        with self._cond:
            self._failed += 1
            self._error_gen += 1
            self._last_exc = err
            if not self._failing:
                log.warning("ledger write failed, will retry: %s", err)
            self._failing = True
            self._cond.notify_all()

    def _write_one_by_one(self, batch: list[PendingRow]) -> None:
        """Find the rows the database refuses, reject (count, log) them and keep the rest."""
        for row in batch:
            try:
                self._ledger.write_batch([row])
            except Exception as exc:
                if not _is_bad_data(exc):
                    self._failed_attempt(exc)
                    return  # the rest of the queue is retried as usual
                err = LedgerError(
                    f"the ledger {self._ledger.display!r} refused the {row.kind} "
                    f"{_row_id(row)!r}: {str(exc).splitlines()[0]}"
                )
                with self._cond:
                    self._rejected += 1
                    self._error_gen += 1
                    self._last_exc = err
                log.error("%s", err)
                self._settle(1, written=0)
            else:
                self._settle(1, written=1)

    def _at_exit(self) -> None:
        try:
            self.close()
        except LedgerError as exc:
            log.error("on exit: %s", exc)


def _is_bad_data(exc: BaseException) -> bool:
    """An error about the rows themselves: retrying them as they are would fail forever."""
    if isinstance(exc, IntegrityError | DataError):
        return True
    if isinstance(exc, DBAPIError):
        return False
    # A value the driver could not bind: a TypeError, ValueError or OverflowError, raised as
    # is (sqlite3) or inside a StatementError.
    bad = TypeError | ValueError | ArithmeticError
    return isinstance(exc, bad) or (isinstance(exc, StatementError) and isinstance(exc.orig, bad))


def _row_id(row: PendingRow) -> object:
    v = row.values
    return v.get("call_id") or v.get("run_id")
