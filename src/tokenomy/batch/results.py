"""Collecting a chunk: its results streamed to disk, metered, and each request's fate decided.

Exactly once, whatever the moment of a crash:

1. the batch's result lines are streamed into two temporary files — the lines that are final
   (``chunk-NNNNNN.jsonl``) and those of requests that will be tried again
   (``chunk-NNNNNN.retried.jsonl``, kept for the record) — then synced and renamed;
2. each line is metered into the ledger (deterministic call ids: upserts) and flushed;
3. one transaction records every request's new state and marks the chunk ``collected``.

A crash before 3 collects the chunk again from the API (results stay downloadable for 29
days), rewriting the same files and rows. A request's final line lives in exactly one chunk
file, so the job's results are those files concatenated in chunk order.

Each line keeps the caller's ``custom_id``; the ``tokenomy`` object says which batch answered
and what earlier attempts ended with.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Final

import orjson

from tokenomy.core.records import CallRecord
from tokenomy.data.table import ModelTable
from tokenomy.errors import BatchError
from tokenomy.ports import Clock, UsageSink

from .jobs import ChunkRow, JobRow, RequestRow, RequestState, RequestUpdate
from .jobs import parse_internal_id as parse_id
from .meter import Tally, meter_result
from .store import JobStore
from .transport import BatchApi

__all__ = [
    "RETRYABLE_ERRORS",
    "chunk_file",
    "collect_chunk",
    "decide",
    "iter_results",
    "parse_time",
]

# Errors worth another attempt: the server's trouble, not the request's.
RETRYABLE_ERRORS: Final = frozenset(
    {"api_error", "overloaded_error", "rate_limit_error", "timeout_error", "missing_result"}
)
_FLUSH_EVERY: Final = 5000


def chunk_file(results_dir: str | Path, chunk_no: int, *, retried: bool = False) -> Path:
    suffix = ".retried.jsonl" if retried else ".jsonl"
    return Path(results_dir) / f"chunk-{chunk_no:06d}{suffix}"


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def decide(
    kind: str, error_type: str | None, *, attempts_after: int, max_attempts: int
) -> RequestState:
    """A request's state after a result: final, or ``pending`` for one more attempt."""
    if kind == "succeeded":
        return "succeeded"
    if kind == "canceled":
        return "canceled"
    retry = kind == "expired" or (kind == "errored" and error_type in RETRYABLE_ERRORS)
    if retry and attempts_after < max_attempts:
        return "pending"
    return "expired" if kind == "expired" else "errored"


def _reason(kind: str, error_type: str | None, message: str | None) -> str:
    if kind == "errored":
        return f"errored: {error_type}" + (f" ({message[:120]})" if message else "")
    return kind


def _missing_line(custom_id: str) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "result": {
            "type": "errored",
            "error": {
                "type": "error",
                "error": {
                    "type": "missing_result",
                    "message": "the batch ended without a result line for this request",
                },
            },
        },
    }


class _Writer:
    """The two result files of a chunk, written under temporary names until complete."""

    def __init__(self, results_dir: str, chunk_no: int) -> None:
        Path(results_dir).mkdir(parents=True, exist_ok=True)
        self.final = chunk_file(results_dir, chunk_no)
        self.retried = chunk_file(results_dir, chunk_no, retried=True)
        self._tmp = {p: p.with_name(p.name + ".tmp") for p in (self.final, self.retried)}
        self._fh: dict[Path, IO[bytes]] = {p: t.open("wb") for p, t in self._tmp.items()}

    def write(self, line: Mapping[str, Any], *, final: bool) -> None:
        fh = self._fh[self.final if final else self.retried]
        fh.write(orjson.dumps(line))
        fh.write(b"\n")

    def commit(self) -> None:
        for path, fh in self._fh.items():
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            os.replace(self._tmp[path], path)
        _fsync_dir(self.final.parent)

    def abort(self) -> None:
        for path, fh in self._fh.items():
            fh.close()
            with contextlib.suppress(OSError):
                self._tmp[path].unlink()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


async def collect_chunk(
    *,
    api: BatchApi,
    store: JobStore,
    job: JobRow,
    chunk: ChunkRow,
    table: ModelTable,
    sink: UsageSink | None,
    clock: Clock,
) -> Tally:
    """Stream, meter and record the results of an ended chunk (see the module doc)."""
    assert chunk.batch_id is not None
    requests: dict[int, RequestRow] = {
        r.seq: r for r in store.requests(job.job_id, chunk_no=chunk.chunk_no)
    }
    batch = chunk.batch or {}
    started_at = parse_time(batch.get("created_at")) or chunk.submitted_at or clock.now()
    ended_at = parse_time(batch.get("ended_at")) or chunk.ended_at
    tally = Tally()
    updates: list[RequestUpdate] = []
    seen: set[int] = set()
    cost_usd = interactive_usd = Decimal(0)
    # A canceled job sends nothing more: every outcome is final.
    max_attempts = 0 if job.state == "canceling" else job.options.max_attempts
    out = _Writer(job.results_dir, chunk.chunk_no)
    recorded = 0

    def settle(line: Mapping[str, Any], request: RequestRow) -> _Settled:
        return _settle(
            line,
            request,
            chunk=chunk,
            job=job,
            table=table,
            tally=tally,
            started_at=started_at,
            ended_at=ended_at,
            max_attempts=max_attempts,
        )

    try:
        async for raw in api.results(chunk.batch_id):
            line = orjson.loads(raw)
            cid = line.get("custom_id") if isinstance(line, dict) else None
            parsed = parse_id(cid) if isinstance(cid, str) else None
            if parsed is None or parsed[:2] != (job.job_id, chunk.chunk_no):
                continue  # not one of this chunk's requests
            seq = parsed[2]
            request = requests.get(seq)
            if request is None or seq in seen:
                continue
            seen.add(seq)
            line_out = dict(line)
            line_out["custom_id"] = request.custom_id
            settled = settle(line_out, request)
            out.write(_annotated(line_out, request, chunk, settled.update), final=settled.final)
            updates.append(settled.update)
            if settled.money is not None:
                cost_usd += settled.money[0]
                interactive_usd += settled.money[1]
            if sink is not None:
                sink.record_call(settled.record)
                recorded += 1
                if recorded % _FLUSH_EVERY == 0:
                    sink.flush()
        for seq, request in requests.items():
            if seq in seen:
                continue
            tally.missing += 1
            line_out = _missing_line(request.custom_id)
            settled = settle(line_out, request)
            out.write(_annotated(line_out, request, chunk, settled.update), final=settled.final)
            updates.append(settled.update)
            if sink is not None:
                sink.record_call(settled.record)
        out.commit()
    except BaseException:
        out.abort()
        raise
    if sink is not None:
        sink.flush()
    store.commit_collection(
        job.job_id,
        chunk.chunk_no,
        updates=updates,
        outcome=tally.to_json(),
        cost_usd=str(cost_usd),
        interactive_usd=str(interactive_usd),
        now=clock.now(),
    )
    tally.cost_usd, tally.interactive_usd = cost_usd, interactive_usd
    return tally


@dataclass(frozen=True, slots=True)
class _Settled:
    """One result line, decided and metered."""

    update: RequestUpdate
    record: CallRecord
    # (batch cost, interactive-equivalent cost) when the line was billed and priced
    money: tuple[Decimal, Decimal] | None

    @property
    def final(self) -> bool:
        return self.update.state != "pending"


def _settle(
    line: Mapping[str, Any],
    request: RequestRow,
    *,
    chunk: ChunkRow,
    job: JobRow,
    table: ModelTable,
    tally: Tally,
    started_at: datetime,
    ended_at: datetime | None,
    max_attempts: int,
) -> _Settled:
    result = line.get("result")
    kind = str(result.get("type")) if isinstance(result, Mapping) else "errored"
    attempt = request.attempts + 1
    metered = meter_result(
        line,
        request=request,
        call_id=f"{job.job_id}-{chunk.chunk_no:06d}-{request.seq:08d}",
        run_id=job.run_id,
        table=table,
        started_at=started_at,
        ended_at=ended_at,
        decisions={
            "batch": {
                "job_id": job.job_id,
                "chunk": chunk.chunk_no,
                "batch_id": chunk.batch_id,
                "attempt": attempt,
                "custom_id": request.custom_id,
            }
        },
    )
    record = metered.record
    state = decide(kind, record.error_type, attempts_after=attempt, max_attempts=max_attempts)
    reasons = request.reasons
    if kind != "succeeded":
        reasons = (*reasons, _reason(kind, record.error_type, record.error_message))
    if kind == "succeeded":
        tally.succeeded += 1
    elif kind == "canceled":
        tally.canceled += 1
    elif kind == "expired":
        tally.expired += 1
    else:
        tally.errored += 1
        key = record.error_type or "api_error"
        tally.errors[key] = tally.errors.get(key, 0) + 1
    if state == "pending":
        tally.retried += 1
    money: tuple[Decimal, Decimal] | None = None
    if metered.usage is not None:
        tally.add_usage(metered.usage)
        if metered.cost_usd is not None and metered.interactive_usd is not None:
            money = (metered.cost_usd, metered.interactive_usd)
        else:
            tally.unpriced += 1
    return _Settled(RequestUpdate(seq=request.seq, state=state, reasons=reasons), record, money)


def _annotated(
    line: Mapping[str, Any], request: RequestRow, chunk: ChunkRow, update: RequestUpdate
) -> dict[str, Any]:
    return {
        "custom_id": line["custom_id"],
        "result": line.get("result"),
        "tokenomy": {
            "batch_id": chunk.batch_id,
            "chunk": chunk.chunk_no,
            "attempt": request.attempts + 1,
            "retrying": update.state == "pending",
            "earlier": list(request.reasons),
        },
    }


def iter_results(store: JobStore, job: JobRow) -> Iterator[bytes]:
    """Every final result line of a job, in chunk order, read from disk (one line at a time)."""
    for chunk in store.chunks(job.job_id, states=("collected",)):
        if chunk.kind == "duplicate":
            continue
        path = chunk_file(job.results_dir, chunk.chunk_no)
        try:
            fh = path.open("rb")
        except FileNotFoundError:
            raise BatchError(
                f"results of chunk {chunk.chunk_no} of job {job.job_id!r} are missing from "
                f"{path}; 'tokenomy batch resume {job.job_id}' cannot restore deleted files"
            ) from None
        with fh:
            for line in fh:
                if line.strip():
                    yield line.rstrip(b"\n")
