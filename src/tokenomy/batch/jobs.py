"""Batch jobs: the job, each request, each chunk (one Message Batch) — what is stored, row by row.

Every state change is one committed transaction, written *before* the API call it announces and
*after* the answer, so that a process killed at any moment leaves a state that says what to do
next (``docs/design/batches.md`` walks through each window):

- job: ``validating → submitting → running → ended``; or ``canceling → canceled``; ``failed``.
- chunk: ``planned → creating → submitted → ended → collected``; ``dropped`` (canceled unsent).
- request: ``pending → queued → succeeded | errored | expired | canceled`` (final), or back to
  ``pending`` for another attempt when an errored/expired result may succeed on a retry.

Internal custom ids embed the job, the chunk and the request: ``<job>-<chunk:06>-<seq:08>``,
so a batch found on the server can be matched to the chunk that created it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from tokenomy.errors import InputError

__all__ = [
    "FINAL_STATES",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_REQUESTS",
    "ChunkKind",
    "ChunkRow",
    "ChunkState",
    "JobOptions",
    "JobRow",
    "JobState",
    "RequestRow",
    "RequestState",
    "RequestUpdate",
    "envelope_bytes",
    "internal_id",
    "new_job_id",
    "parse_internal_id",
]

JobState = Literal[
    "validating", "submitting", "running", "canceling", "ended", "canceled", "failed"
]
ChunkState = Literal["planned", "creating", "submitted", "ended", "collected", "dropped"]
ChunkKind = Literal["bulk", "retry", "duplicate"]
RequestState = Literal["pending", "queued", "succeeded", "errored", "expired", "canceled"]
FINAL_STATES: Final = frozenset({"succeeded", "errored", "expired", "canceled"})
OPEN_JOB_STATES: Final = frozenset({"validating", "submitting", "running", "canceling"})

# The API's limits per batch (reference §3.4).
MAX_BATCH_REQUESTS: Final = 100_000
MAX_BATCH_BYTES: Final = 256 * 1024 * 1024
# The runner holds one batch body in memory while it uploads it (about three copies at the
# peak: built, frozen, and the socket's send buffer): the default keeps it small.
DEFAULT_BATCH_BYTES: Final = 32 * 1024 * 1024
_JOB_PREFIX: Final = "job"


def new_job_id() -> str:
    """``job`` + 12 hex digits: short, and free of the ``-`` that separates internal ids."""
    return _JOB_PREFIX + secrets.token_hex(6)


def internal_id(job_id: str, chunk_no: int, seq: int) -> str:
    """The custom_id sent to the API for request ``seq`` in chunk ``chunk_no`` (fixed width)."""
    return f"{job_id}-{chunk_no:06d}-{seq:08d}"


def parse_internal_id(custom_id: str) -> tuple[str, int, int] | None:
    """``(job_id, chunk_no, seq)`` of an internal id; None for anything else."""
    parts = custom_id.rsplit("-", 2)
    if len(parts) != 3 or not parts[0].startswith(_JOB_PREFIX):
        return None
    job, chunk, seq = parts
    if not (chunk.isdigit() and seq.isdigit()):
        return None
    return job, int(chunk), int(seq)


@dataclass(frozen=True, slots=True, kw_only=True)
class JobOptions:
    """How a job is chunked, cached, retried and polled. Stored with the job."""

    max_per_batch: int = MAX_BATCH_REQUESTS
    max_batch_bytes: int = DEFAULT_BATCH_BYTES
    # Attempts per request, the first included: errored (retryable) and expired results are
    # sent again in a new batch until this many attempts were made.
    max_attempts: int = 3
    # The TTL of the shared-prefix breakpoints the planner adds ("off": send params as given).
    cache_ttl: Literal["1h", "5m", "off"] = "1h"
    # Send the first request alone, interactively, before the bulk (writes the shared prefix).
    warmup: bool = False
    skip_invalid: bool = False
    # Requests this job keeps waiting in the API's queue at most (None: no limit).
    max_inflight_requests: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.max_per_batch <= MAX_BATCH_REQUESTS:
            raise InputError(
                f"max_per_batch must be 1..{MAX_BATCH_REQUESTS:,} (the API's limit), "
                f"got {self.max_per_batch}"
            )
        if not 1024 <= self.max_batch_bytes <= MAX_BATCH_BYTES:
            raise InputError(
                f"max_batch_bytes must be 1 KiB..256 MiB (the API's limit), "
                f"got {self.max_batch_bytes}"
            )
        if not 1 <= self.max_attempts <= 20:
            raise InputError(f"max_attempts must be 1..20, got {self.max_attempts}")
        if self.cache_ttl not in ("1h", "5m", "off"):
            raise InputError(f"cache_ttl must be 1h, 5m or off, got {self.cache_ttl!r}")
        if self.max_inflight_requests is not None and self.max_inflight_requests < 1:
            raise InputError(
                f"max_inflight_requests must be at least 1, got {self.max_inflight_requests}"
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "max_per_batch": self.max_per_batch,
            "max_batch_bytes": self.max_batch_bytes,
            "max_attempts": self.max_attempts,
            "cache_ttl": self.cache_ttl,
            "warmup": self.warmup,
            "skip_invalid": self.skip_invalid,
            "max_inflight_requests": self.max_inflight_requests,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobOptions:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True, slots=True)
class JobRow:
    """One job as stored."""

    job_id: str
    name: str
    state: JobState
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    source_path: str
    source_owned: bool
    source_size: int
    source_mtime_ns: int
    template: Any
    options: JobOptions
    n_requests: int
    n_skipped: int
    skipped: tuple[Mapping[str, Any], ...]
    api_key_fingerprint: str | None
    upstream: str
    run_id: str
    results_dir: str
    horizon: Mapping[str, Any] | None
    warmup: Mapping[str, Any] | None
    lease_owner: str | None
    lease_until: datetime | None
    error: str | None

    @property
    def open(self) -> bool:
        return self.state in OPEN_JOB_STATES

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> JobRow:
        """The job from its ``batch_jobs`` row."""
        return cls(
            job_id=row["job_id"],
            name=row["name"],
            state=row["state"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            ended_at=row["ended_at"],
            source_path=row["source_path"],
            source_owned=bool(row["source_owned"]),
            source_size=int(row["source_size"]),
            source_mtime_ns=int(row["source_mtime_ns"]),
            template=row["template"],
            options=JobOptions.from_json(row["options"] or {}),
            n_requests=int(row["n_requests"]),
            n_skipped=int(row["n_skipped"]),
            skipped=tuple(row["skipped"] or ()),
            api_key_fingerprint=row["api_key_fingerprint"],
            upstream=row["upstream"],
            run_id=row["run_id"],
            results_dir=row["results_dir"],
            horizon=row["horizon"],
            warmup=row["warmup"],
            lease_owner=row["lease_owner"],
            lease_until=row["lease_until"],
            error=row["error"],
        )


@dataclass(frozen=True, slots=True)
class ChunkRow:
    """One chunk: a set of requests sent (or to be sent) as one Message Batch."""

    job_id: str
    chunk_no: int
    kind: ChunkKind
    state: ChunkState
    batch_id: str | None
    n_requests: int
    body_bytes: int
    planned_at: datetime
    creating_at: datetime | None
    submitted_at: datetime | None
    ended_at: datetime | None
    collected_at: datetime | None
    horizon: Mapping[str, Any] | None
    batch: Mapping[str, Any] | None
    outcome: Mapping[str, Any] | None
    cost_usd: str | None
    interactive_usd: str | None
    note: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ChunkRow:
        """The chunk from its ``batch_chunks`` row."""
        return cls(**{name: row[name] for name in cls.__slots__})


@dataclass(frozen=True, slots=True)
class RequestRow:
    """One request of a job: where it is in the input file and what became of it."""

    seq: int
    custom_id: str
    line: int
    byte_offset: int
    byte_length: int
    body_bytes: int
    model: str
    shared_end: int
    est_tools: int
    est_system: int
    est_history: int
    est_new: int
    prefix_hash: str | None
    breakpoints: str
    state: RequestState = "pending"
    chunk_no: int | None = None
    attempts: int = 0
    reasons: tuple[str, ...] = field(default=())

    def to_row(self, job_id: str) -> dict[str, Any]:
        """The ``batch_requests`` row of this request of ``job_id``."""
        return {
            "job_id": job_id,
            **{name: getattr(self, name) for name in self.__slots__},
            "reasons": list(self.reasons) or None,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RequestRow:
        """The request from its ``batch_requests`` row."""
        values = {name: row[name] for name in cls.__slots__}
        values["reasons"] = tuple(row["reasons"] or ())
        return cls(**values)


@dataclass(frozen=True, slots=True)
class RequestUpdate:
    """What collecting a chunk decided for one request."""

    seq: int
    state: RequestState
    reasons: tuple[str, ...]


def envelope_bytes(item_sizes: Iterable[int]) -> int:
    """Size of ``{"requests":[item,item,…]}`` for items of these encoded sizes."""
    n = 0
    total = 0
    for size in item_sizes:
        total += size
        n += 1
    return len(b'{"requests":[]}') + total + max(0, n - 1)
