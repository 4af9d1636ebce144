"""The job store: the batch tables of the ledger database (migration 0002).

Every public method of :class:`JobStore` is one committed transaction: the runner writes each
state change before the API call it announces and after the answer (see
``docs/design/batches.md``). A lease in the job row makes one process at a time run a job; a
holder that died on this host (its pid is gone, :mod:`tokenomy.batch.lease`) is taken over at
once, any other after its lease expires.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, get_args

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from tokenomy.errors import BatchError
from tokenomy.ledger import Ledger
from tokenomy.ledger.schema import batch_chunks, batch_jobs, batch_requests

from .jobs import (
    ChunkKind,
    ChunkRow,
    JobRow,
    RequestRow,
    RequestState,
    RequestUpdate,
    envelope_bytes,
)
from .lease import lease_owner_id, owner_is_dead

__all__ = ["JobStore", "lease_owner_id", "owner_is_dead"]


class JobStore:
    """The batch tables of one ledger. Every public method is one transaction."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._engine = ledger.engine
        # Take SQLite's write lock at BEGIN (see tokenomy.ledger.engine).
        self._write = ledger.engine.execution_options(sqlite_begin="IMMEDIATE")

    # ------------------------------------------------------------------ plumbing

    def _tx(self) -> Any:
        return self._write.begin()

    def _read(self) -> Any:
        return self.ledger.read()

    def _wrap(self, fn: Callable[[Connection], Any]) -> Any:
        try:
            with self._tx() as conn:
                return fn(conn)
        except SQLAlchemyError as exc:
            raise BatchError(
                f"the batch job store in {self.ledger.display!r} failed: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            ) from exc

    # ------------------------------------------------------------------ jobs

    def create_job(self, values: Mapping[str, Any]) -> None:
        self._wrap(lambda conn: conn.execute(insert(batch_jobs).values(**values)))

    def insert_requests(
        self,
        job_id: str,
        rows: Sequence[RequestRow],
        *,
        skipped: Sequence[Mapping[str, Any]] | None = None,
        n_skipped: int | None = None,
    ) -> None:
        """Store read requests and, in the same transaction, the lines skipped so far."""
        payload = [r.to_row(job_id) for r in rows]

        def run(conn: Connection) -> None:
            if payload:
                conn.execute(insert(batch_requests), payload)
            if skipped is not None:
                conn.execute(
                    update(batch_jobs)
                    .where(batch_jobs.c.job_id == job_id)
                    .values(skipped=list(skipped), n_skipped=n_skipped or 0)
                )

        self._wrap(run)

    def custom_ids(self, job_id: str) -> Iterator[tuple[str, int]]:
        """``(custom_id, line)`` of every stored request (two columns: cheap to read)."""
        with self._read() as conn:
            rows = conn.execute(
                select(batch_requests.c.custom_id, batch_requests.c.line).where(
                    batch_requests.c.job_id == job_id
                )
            ).all()
        for cid, line in rows:
            yield str(cid), int(line)

    def edge_requests(self, job_id: str, *, n: int) -> list[RequestRow]:
        """The first and the last ``n`` stored requests, in seq order (no row twice)."""
        with self._read() as conn:
            first = conn.execute(
                select(batch_requests)
                .where(batch_requests.c.job_id == job_id)
                .order_by(batch_requests.c.seq)
                .limit(n)
            ).all()
            last = conn.execute(
                select(batch_requests)
                .where(batch_requests.c.job_id == job_id)
                .order_by(batch_requests.c.seq.desc())
                .limit(n)
            ).all()
        rows = {r._mapping["seq"]: RequestRow.from_row(r._mapping) for r in [*first, *last]}
        return [rows[k] for k in sorted(rows)]

    def intake_totals(self, job_id: str) -> tuple[int, int, dict[str, int]]:
        """Requests stored for a job, their encoded bytes, and how many per model."""
        with self._read() as conn:
            rows = conn.execute(
                select(batch_requests.c.model, func.count(), func.sum(batch_requests.c.body_bytes))
                .where(batch_requests.c.job_id == job_id)
                .group_by(batch_requests.c.model)
            ).all()
        models = {str(m): int(n) for m, n, _ in rows}
        return sum(models.values()), sum(int(b or 0) for _, _, b in rows), models

    def delete_job(self, job_id: str) -> None:
        def run(conn: Connection) -> None:
            conn.execute(delete(batch_requests).where(batch_requests.c.job_id == job_id))
            conn.execute(delete(batch_chunks).where(batch_chunks.c.job_id == job_id))
            conn.execute(delete(batch_jobs).where(batch_jobs.c.job_id == job_id))

        self._wrap(run)

    def clear_requests(self, job_id: str) -> None:
        """Forget a half-validated job's requests (validation starts over)."""
        self._wrap(
            lambda conn: conn.execute(
                delete(batch_requests).where(batch_requests.c.job_id == job_id)
            )
        )

    def get(self, job_id: str) -> JobRow:
        with self._read() as conn:
            row = conn.execute(select(batch_jobs).where(batch_jobs.c.job_id == job_id)).first()
        if row is None:
            raise BatchError(
                f"no batch job {job_id!r} in the ledger at {self.ledger.display}; "
                "'tokenomy batch list' shows the jobs"
            )
        return JobRow.from_row(row._mapping)

    def list_jobs(self, *, limit: int = 50) -> list[JobRow]:
        with self._read() as conn:
            rows = conn.execute(
                select(batch_jobs).order_by(batch_jobs.c.created_at.desc()).limit(limit)
            ).all()
        return [JobRow.from_row(r._mapping) for r in rows]

    def update_job(self, job_id: str, *, now: datetime, **values: Any) -> None:
        self._wrap(
            lambda conn: conn.execute(
                update(batch_jobs)
                .where(batch_jobs.c.job_id == job_id)
                .values(updated_at=now, **values)
            )
        )

    # ------------------------------------------------------------------ lease

    def acquire(self, job_id: str, owner: str, *, now: datetime, ttl_s: float) -> None:
        """Make ``owner`` the one process that runs ``job_id``; BatchError if another does."""
        until = now + timedelta(seconds=ttl_s)

        def run(conn: Connection) -> str | None:
            row = conn.execute(
                select(batch_jobs.c.lease_owner, batch_jobs.c.lease_until).where(
                    batch_jobs.c.job_id == job_id
                )
            ).first()
            if row is None:
                return "missing"
            holder, holder_until = row
            free = (
                holder is None
                or holder == owner
                or holder_until is None
                or holder_until < now
                or owner_is_dead(holder)
            )
            if not free:
                return f"{holder} until {holder_until:%Y-%m-%d %H:%M:%S} UTC"
            conn.execute(
                update(batch_jobs)
                .where(batch_jobs.c.job_id == job_id)
                .values(lease_owner=owner, lease_until=until)
            )
            return None

        busy = self._wrap(run)
        if busy == "missing":
            self.get(job_id)  # raises the "no such job" error
        if busy is not None:
            raise BatchError(
                f"batch job {job_id!r} is being run by another process ({busy}); wait for it "
                "to finish or stop it, then 'tokenomy batch resume'"
            )

    def release(self, job_id: str, owner: str) -> None:
        self._wrap(
            lambda conn: conn.execute(
                update(batch_jobs)
                .where(and_(batch_jobs.c.job_id == job_id, batch_jobs.c.lease_owner == owner))
                .values(lease_owner=None, lease_until=None)
            )
        )

    # ------------------------------------------------------------------ requests

    def request_counts(self, job_id: str) -> dict[str, int]:
        with self._read() as conn:
            rows = conn.execute(
                select(batch_requests.c.state, func.count())
                .where(batch_requests.c.job_id == job_id)
                .group_by(batch_requests.c.state)
            ).all()
        counts = dict.fromkeys(get_args(RequestState), 0)
        counts.update({state: int(n) for state, n in rows})
        return counts

    def unmarked_requests(self, job_id: str) -> int:
        """Requests sent without any cache breakpoint (nothing shared, or below the minimum)."""
        with self._read() as conn:
            n = conn.execute(
                select(func.count()).where(
                    and_(batch_requests.c.job_id == job_id, batch_requests.c.breakpoints == "")
                )
            ).scalar_one()
        return int(n)

    def retried_requests(self, job_id: str) -> int:
        """Requests that needed more than one attempt."""
        with self._read() as conn:
            n = conn.execute(
                select(func.count()).where(
                    and_(batch_requests.c.job_id == job_id, batch_requests.c.attempts > 1)
                )
            ).scalar_one()
        return int(n)

    def requests(
        self, job_id: str, *, chunk_no: int | None = None, seqs: Iterable[int] | None = None
    ) -> Iterator[RequestRow]:
        """Requests of a job (or of one chunk), in ``seq`` order, read in pages."""
        cond = [batch_requests.c.job_id == job_id]
        if chunk_no is not None:
            cond.append(batch_requests.c.chunk_no == chunk_no)
        last = -1
        wanted = sorted(set(seqs)) if seqs is not None else None
        while True:
            stmt = select(batch_requests).where(*cond, batch_requests.c.seq > last)
            if wanted is not None:
                page_seqs = [s for s in wanted if s > last][:500]
                if not page_seqs:
                    return
                stmt = stmt.where(batch_requests.c.seq.in_(page_seqs))
            with self._read() as conn:
                rows = conn.execute(stmt.order_by(batch_requests.c.seq).limit(2000)).all()
            if not rows:
                return
            for r in rows:
                yield RequestRow.from_row(r._mapping)
            last = rows[-1]._mapping["seq"]

    def pending_sizes(self, job_id: str) -> list[tuple[int, int]]:
        """``(seq, body_bytes)`` of every pending request, in order (what planning packs)."""
        with self._read() as conn:
            rows = conn.execute(
                select(batch_requests.c.seq, batch_requests.c.body_bytes)
                .where(and_(batch_requests.c.job_id == job_id, batch_requests.c.state == "pending"))
                .order_by(batch_requests.c.seq)
            ).all()
        return [(int(s), int(b)) for s, b in rows]

    # ------------------------------------------------------------------ chunks

    def chunks(self, job_id: str, *, states: Iterable[str] | None = None) -> list[ChunkRow]:
        stmt = select(batch_chunks).where(batch_chunks.c.job_id == job_id)
        if states is not None:
            stmt = stmt.where(batch_chunks.c.state.in_(list(states)))
        with self._read() as conn:
            rows = conn.execute(stmt.order_by(batch_chunks.c.chunk_no)).all()
        return [ChunkRow.from_row(r._mapping) for r in rows]

    def chunk(self, job_id: str, chunk_no: int) -> ChunkRow:
        with self._read() as conn:
            row = conn.execute(select(batch_chunks).where(_the_chunk(job_id, chunk_no))).first()
        if row is None:
            raise BatchError(f"batch job {job_id!r} has no chunk {chunk_no}")
        return ChunkRow.from_row(row._mapping)

    def plan_chunks(
        self,
        job_id: str,
        groups: Sequence[Sequence[int]],
        *,
        kind: ChunkKind,
        sizes: Mapping[int, int],
        now: datetime,
    ) -> list[int]:
        """Record new chunks (each a list of pending seqs) and queue their requests, at once."""

        def run(conn: Connection) -> list[int]:
            next_no = _next_chunk_no(conn, job_id)
            made: list[int] = []
            for group in groups:
                no = next_no
                next_no += 1
                conn.execute(
                    insert(batch_chunks).values(
                        job_id=job_id,
                        chunk_no=no,
                        kind=kind,
                        state="planned",
                        n_requests=len(group),
                        body_bytes=envelope_bytes(sizes[s] for s in group),
                        planned_at=now,
                    )
                )
                for lo, hi in _runs(group):
                    conn.execute(
                        update(batch_requests)
                        .where(
                            and_(
                                batch_requests.c.job_id == job_id,
                                batch_requests.c.seq.between(lo, hi),
                                batch_requests.c.state == "pending",
                            )
                        )
                        .values(state="queued", chunk_no=no)
                    )
                made.append(no)
            return made

        made: list[int] = self._wrap(run)
        return made

    def set_chunk(self, job_id: str, chunk_no: int, **values: Any) -> None:
        self._wrap(
            lambda conn: conn.execute(
                update(batch_chunks).where(_the_chunk(job_id, chunk_no)).values(**values)
            )
        )

    def claim_batch(
        self, job_id: str, chunk_no: int, *, batch_id: str, batch: Mapping[str, Any], now: datetime
    ) -> bool:
        """Record that ``batch_id`` is this chunk's batch; False if another chunk holds it."""
        try:
            self._write_claim(job_id, chunk_no, batch_id=batch_id, batch=batch, now=now)
        except IntegrityError:
            return False
        return True

    def _write_claim(
        self, job_id: str, chunk_no: int, *, batch_id: str, batch: Mapping[str, Any], now: datetime
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                update(batch_chunks)
                .where(_the_chunk(job_id, chunk_no))
                .values(state="submitted", batch_id=batch_id, batch=dict(batch), submitted_at=now)
            )

    def known_batch_ids(self, batch_ids: Iterable[str]) -> set[str]:
        """Which of ``batch_ids`` some chunk (of any job) already holds."""
        ids = list(batch_ids)
        if not ids:
            return set()
        with self._read() as conn:
            rows = conn.execute(
                select(batch_chunks.c.batch_id).where(batch_chunks.c.batch_id.in_(ids))
            ).all()
        return {r[0] for r in rows}

    def commit_collection(
        self,
        job_id: str,
        chunk_no: int,
        *,
        updates: Sequence[RequestUpdate],
        outcome: Mapping[str, Any],
        cost_usd: str,
        interactive_usd: str,
        now: datetime,
    ) -> None:
        """One transaction: every request's outcome, and the chunk ``collected``."""
        by_state: dict[tuple[str, bool], list[dict[str, Any]]] = {}
        for u in updates:
            by_state.setdefault((u.state, u.state == "pending"), []).append(
                {"b_seq": u.seq, "b_reasons": list(u.reasons) or None}
            )

        def run(conn: Connection) -> None:
            for (state, retry), params in by_state.items():
                stmt = (
                    update(batch_requests)
                    .where(
                        and_(
                            batch_requests.c.job_id == job_id,
                            batch_requests.c.seq == bindparam("b_seq"),
                            batch_requests.c.chunk_no == chunk_no,
                        )
                    )
                    .values(
                        state=state,
                        reasons=bindparam("b_reasons"),
                        attempts=batch_requests.c.attempts + 1,
                        chunk_no=None if retry else chunk_no,
                    )
                )
                conn.execute(stmt, params)
            conn.execute(
                update(batch_chunks)
                .where(_the_chunk(job_id, chunk_no))
                .values(
                    state="collected",
                    collected_at=now,
                    outcome=dict(outcome),
                    cost_usd=cost_usd,
                    interactive_usd=interactive_usd,
                )
            )

        self._wrap(run)

    def drop_unsent(self, job_id: str, *, now: datetime) -> int:
        """Cancel: planned chunks are dropped and every unsent request ends ``canceled``."""

        def run(conn: Connection) -> int:
            planned = [
                r[0]
                for r in conn.execute(
                    select(batch_chunks.c.chunk_no).where(
                        and_(batch_chunks.c.job_id == job_id, batch_chunks.c.state == "planned")
                    )
                ).all()
            ]
            if planned:
                conn.execute(
                    update(batch_chunks)
                    .where(
                        and_(
                            batch_chunks.c.job_id == job_id,
                            batch_chunks.c.chunk_no.in_(planned),
                        )
                    )
                    .values(state="dropped", note="canceled before it was sent")
                )
            result = conn.execute(
                update(batch_requests)
                .where(
                    and_(
                        batch_requests.c.job_id == job_id,
                        or_(
                            batch_requests.c.state == "pending",
                            and_(
                                batch_requests.c.state == "queued",
                                batch_requests.c.chunk_no.in_(planned or [-1]),
                            ),
                        ),
                    )
                )
                .values(state="canceled")
            )
            conn.execute(
                update(batch_jobs).where(batch_jobs.c.job_id == job_id).values(updated_at=now)
            )
            return int(result.rowcount or 0)

        n: int = self._wrap(run)
        return n

    def add_duplicate(
        self,
        job_id: str,
        *,
        batch_id: str,
        batch: Mapping[str, Any],
        of_chunk: int | None,
        n_requests: int,
        outcome: Mapping[str, Any],
        cost_usd: str,
        interactive_usd: str,
        now: datetime,
    ) -> int:
        """Record a batch that carries this job's ids but no chunk owns: spend to report."""

        def run(conn: Connection) -> int:
            no = _next_chunk_no(conn, job_id)
            conn.execute(
                insert(batch_chunks).values(
                    job_id=job_id,
                    chunk_no=no,
                    kind="duplicate",
                    state="collected",
                    batch_id=batch_id,
                    n_requests=n_requests,
                    body_bytes=0,
                    planned_at=now,
                    submitted_at=now,
                    ended_at=now,
                    collected_at=now,
                    batch=dict(batch),
                    outcome=dict(outcome),
                    cost_usd=cost_usd,
                    interactive_usd=interactive_usd,
                    note=(
                        f"a second batch for chunk {of_chunk}: its results were not used"
                        if of_chunk is not None
                        else "a batch with this job's ids that no chunk owns"
                    ),
                )
            )
            return no

        no: int = self._wrap(run)
        return no


def _the_chunk(job_id: str, chunk_no: int) -> Any:
    """``WHERE`` one chunk of one job."""
    return and_(batch_chunks.c.job_id == job_id, batch_chunks.c.chunk_no == chunk_no)


def _next_chunk_no(conn: Connection, job_id: str) -> int:
    """The number a new chunk of ``job_id`` gets: one past the highest, 1 for the first."""
    top = conn.execute(
        select(func.max(batch_chunks.c.chunk_no)).where(batch_chunks.c.job_id == job_id)
    ).scalar_one()
    return 1 if top is None else int(top) + 1


def _runs(seqs: Sequence[int]) -> Iterator[tuple[int, int]]:
    """Contiguous ranges of a sorted list of ints: [1,2,3,7,8] -> (1,3), (7,8)."""
    if not seqs:
        return
    lo = prev = seqs[0]
    for s in seqs[1:]:
        if s != prev + 1:
            yield lo, prev
            lo = s
        prev = s
    yield lo, prev
