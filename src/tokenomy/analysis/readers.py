"""Reading transcript files in worker processes, for :mod:`tokenomy.analysis.importer`.

Parsing and pricing is CPU-bound Python and most of an import's work: one reader process per
CPU, handed consecutive files in parts of a few MB (one hand-over per part, not per file),
with a bounded window of parts in flight; the importing process takes the results in file
order and writes them (``docs/design/analysis.md``).
"""

from __future__ import annotations

import multiprocessing as mp
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tokenomy.analysis.filereader import FileResult, FileState, read_file
from tokenomy.analysis.rows import Pricer
from tokenomy.analysis.transcripts import FileIdentity, TranscriptFile
from tokenomy.data.table import ModelTable

__all__ = ["BIG_FILE_BYTES", "ReadOutcome", "ReadTask", "parts", "read_in_workers"]

BIG_FILE_BYTES = 64 << 20  # read in the importing process, calls streamed (bounded memory)
_PART_BYTES = 4 << 20  # files handed to a reader at once: about this much of them
_PART_FILES = 64  # and at most this many
_AHEAD_PARTS = 16  # parts handed to each reader before their results are taken
_AHEAD_BYTES = 128 << 20  # at most this much of them


def read_in_workers(
    tasks: Sequence[ReadTask],
    *,
    workers: int,
    table: ModelTable,
    sqlite: bool,
    take: Callable[[ReadTask, ReadOutcome | None], None],
    tick: Callable[[ReadTask], None],
) -> None:
    """Read ``tasks`` in ``workers`` processes and ``take`` each result in file order (None:
    a file too big to hand over, for ``take`` to read itself); at most a few parts wait
    (bounded memory)."""
    ctx = mp.get_context("fork")
    init = (table, sqlite)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init, initargs=init) as pool:
        window: deque[tuple[list[ReadTask], Future[list[ReadOutcome]]]] = deque()
        ahead = 0  # bytes of the files in the window

        def take_oldest() -> None:
            nonlocal ahead
            part, fut = window.popleft()
            for t, got in zip(part, fut.result(), strict=True):
                ahead -= t.ident.size - t.offset
                take(t, got)
                tick(t)

        for part in parts(tasks):
            if len(part) == 1 and part[0].ident.size - part[0].offset > BIG_FILE_BYTES:
                # A very big file is read here, its calls streamed to the ledger: a worker
                # would hand all of them over at once. Files stay in order.
                while window:
                    take_oldest()
                take(part[0], None)
                tick(part[0])
                continue
            window.append((part, pool.submit(_read, [t.args() for t in part])))
            ahead += sum(t.ident.size - t.offset for t in part)
            # Keep the readers busy while this process writes, within bounded memory.
            while len(window) > _AHEAD_PARTS * workers or ahead > _AHEAD_BYTES:
                take_oldest()
        while window:
            take_oldest()


@dataclass(slots=True)
class ReadTask:
    tf: TranscriptFile
    ident: FileIdentity
    offset: int
    first_line: int
    state: FileState
    replay: bytes | None
    resets: list[str] = field(default_factory=list)  # runs of a rewritten file: cleared first

    def args(self) -> tuple[Any, ...]:
        return (self.tf, self.offset, self.first_line, self.state, self.replay)


class ReadOutcome(NamedTuple):
    """A worker's file: the result, or why the file could not be read."""

    result: FileResult | None
    error: str | None


def parts(tasks: Sequence[ReadTask]) -> Iterator[list[ReadTask]]:
    """Consecutive files in parts of about ``_PART_BYTES`` (a big file alone): one hand-over
    to a reader per part, not per file."""
    part: list[ReadTask] = []
    size = 0
    for task in tasks:
        n = task.ident.size - task.offset
        if part and (size + n > _PART_BYTES or len(part) >= _PART_FILES):
            yield part
            part, size = [], 0
        part.append(task)
        size += n
    if part:
        yield part


# One pricer per worker process, its memos shared by the files that process reads.
_WORKER: dict[str, Pricer] = {}


def _init(table: ModelTable, sqlite: bool) -> None:
    _WORKER["pricer"] = Pricer(table, sqlite=sqlite)


def _read(part: list[tuple[Any, ...]]) -> list[ReadOutcome]:
    """Read a part's files (in a worker)."""
    pricer = _WORKER["pricer"]
    out: list[ReadOutcome] = []
    for tf, offset, first_line, state, replay in part:
        try:
            result = read_file(
                tf,
                offset=offset,
                first_line=first_line,
                state=state,
                replay_blob=replay,
                table=pricer.table,
                pricer=pricer,
            )
        except OSError as exc:
            out.append(ReadOutcome(None, exc.strerror or str(exc)))
            continue
        out.append(ReadOutcome(result, None))
    return out
