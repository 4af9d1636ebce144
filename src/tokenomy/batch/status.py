"""What a job has done and cost so far, from the job store alone (no API call).

Costs are exact ``Decimal`` sums of per-chunk sums: the batch cost (batch prices), the same
usage at interactive prices (the saving is the difference: the batch discount), the optional
warm-up request, and any duplicate spend (a batch the runner could not avoid creating twice).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from .jobs import ChunkRow, JobRow
from .meter import Tally
from .store import JobStore

__all__ = ["ChunkReport", "JobStatus", "job_status"]


@dataclass(frozen=True, slots=True)
class ChunkReport:
    """One chunk: its batch, what came back, and its cost."""

    chunk_no: int
    kind: str
    state: str
    batch_id: str | None
    n_requests: int
    body_bytes: int
    succeeded: int
    errored: int
    expired: int
    canceled: int
    retried: int
    cost_usd: Decimal | None
    interactive_usd: Decimal | None
    cache_hit_rate: float | None
    note: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "chunk": self.chunk_no,
            "kind": self.kind,
            "state": self.state,
            "batch_id": self.batch_id,
            "requests": self.n_requests,
            "body_bytes": self.body_bytes,
            "succeeded": self.succeeded,
            "errored": self.errored,
            "expired": self.expired,
            "canceled": self.canceled,
            "retried": self.retried,
            "cost_usd": self.cost_usd,
            "interactive_usd": self.interactive_usd,
            "cache_hit_rate": self.cache_hit_rate,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class JobStatus:
    """A job's progress and money. ``requests`` counts requests by state."""

    job_id: str
    name: str
    state: str
    created_at: datetime
    ended_at: datetime | None
    n_requests: int
    n_skipped: int
    skipped: tuple[Mapping[str, Any], ...]
    requests: Mapping[str, int]
    retried_requests: int
    # Requests sent with no cache breakpoint: nothing shared, or a shared prefix shorter than
    # the model's minimum cacheable length.
    unmarked_requests: int
    chunks: tuple[ChunkReport, ...]
    tally: Tally
    cost_usd: Decimal
    interactive_usd: Decimal
    warmup_usd: Decimal
    duplicate_usd: Decimal
    duplicate_batches: int
    results_path: Path
    error: str | None
    elapsed_s: float
    eta_s: float | None

    @property
    def done(self) -> int:
        """Requests with a final outcome."""
        r = self.requests
        return r["succeeded"] + r["errored"] + r["expired"] + r["canceled"]

    @property
    def finished(self) -> bool:
        return self.state in ("ended", "canceled", "failed")

    @property
    def total_usd(self) -> Decimal:
        """Everything the job spent: its results, the warm-up, and any duplicate."""
        return self.cost_usd + self.warmup_usd + self.duplicate_usd

    @property
    def saving_usd(self) -> Decimal:
        """What batching saved against the same work (same caching) sent interactively."""
        return self.interactive_usd - self.cost_usd

    @property
    def saving_pct(self) -> float | None:
        if not self.interactive_usd:
            return None
        return float(self.saving_usd / self.interactive_usd * 100)

    @property
    def cache_hit_rate(self) -> float | None:
        return self.tally.cache_hit_rate

    def to_json(self) -> dict[str, Any]:
        t = self.tally
        return {
            "job_id": self.job_id,
            "name": self.name,
            "state": self.state,
            "created_at": self.created_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "requests": {"total": self.n_requests, **self.requests},
            "retried_requests": self.retried_requests,
            "requests_without_breakpoint": self.unmarked_requests,
            "skipped": {"count": self.n_skipped, "lines": list(self.skipped)},
            "tokens": {
                "input": t.input_tokens,
                "cache_read": t.cache_read_tokens,
                "cache_write_5m": t.cache_write_5m_tokens,
                "cache_write_1h": t.cache_write_1h_tokens,
                "output": t.output_tokens,
            },
            "cache_hit_rate": self.cache_hit_rate,
            "cost": {
                "batch_usd": self.cost_usd,
                "interactive_usd": self.interactive_usd,
                "saving_usd": self.saving_usd,
                "saving_pct": self.saving_pct,
                "warmup_usd": self.warmup_usd,
                "duplicate_usd": self.duplicate_usd,
                "duplicate_batches": self.duplicate_batches,
                "total_usd": self.total_usd,
            },
            "chunks": [c.to_json() for c in self.chunks],
            "results": str(self.results_path),
            "error": self.error,
            "elapsed_s": round(self.elapsed_s, 3),
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
        }


def _dec(value: str | None) -> Decimal | None:
    return Decimal(value) if value else None


def _chunk_report(c: ChunkRow) -> tuple[ChunkReport, Tally]:
    tally = Tally()
    if c.outcome:
        tally.merge(c.outcome)
    report = ChunkReport(
        chunk_no=c.chunk_no,
        kind=c.kind,
        state=c.state,
        batch_id=c.batch_id,
        n_requests=c.n_requests,
        body_bytes=c.body_bytes,
        succeeded=tally.succeeded,
        errored=tally.errored,
        expired=tally.expired,
        canceled=tally.canceled,
        retried=tally.retried,
        cost_usd=_dec(c.cost_usd),
        interactive_usd=_dec(c.interactive_usd),
        cache_hit_rate=tally.cache_hit_rate,
        note=c.note,
    )
    return report, tally


def job_status(store: JobStore, job: JobRow, *, now: datetime) -> JobStatus:
    """The status of ``job`` as the store has it."""
    counts = store.request_counts(job.job_id)
    chunks = store.chunks(job.job_id)
    total = Tally()
    cost = interactive = duplicate = Decimal(0)
    duplicates = 0
    reports: list[ChunkReport] = []
    for c in chunks:
        report, tally = _chunk_report(c)
        reports.append(report)
        if c.kind == "duplicate":
            duplicates += 1
            duplicate += report.cost_usd or Decimal(0)
            continue
        total.merge(tally.to_json())
        cost += report.cost_usd or Decimal(0)
        interactive += report.interactive_usd or Decimal(0)
    total.cost_usd, total.interactive_usd = cost, interactive
    warmup = Decimal(str(job.warmup.get("cost_usd") or 0)) if job.warmup else Decimal(0)
    end = job.ended_at or now
    elapsed = max(0.0, (end - job.created_at).total_seconds())
    done = counts["succeeded"] + counts["errored"] + counts["expired"] + counts["canceled"]
    eta: float | None = None
    if job.open and 0 < done < job.n_requests:
        eta = elapsed * (job.n_requests - done) / done
    return JobStatus(
        job_id=job.job_id,
        name=job.name,
        state=job.state,
        created_at=job.created_at,
        ended_at=job.ended_at,
        n_requests=job.n_requests,
        n_skipped=job.n_skipped,
        skipped=job.skipped,
        requests=counts,
        retried_requests=store.retried_requests(job.job_id),
        unmarked_requests=store.unmarked_requests(job.job_id),
        chunks=tuple(reports),
        tally=total,
        cost_usd=cost,
        interactive_usd=interactive,
        warmup_usd=warmup,
        duplicate_usd=duplicate,
        duplicate_batches=duplicates,
        results_path=Path(job.results_dir),
        error=job.error,
        elapsed_s=elapsed,
        eta_s=eta,
    )
