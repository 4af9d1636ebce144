"""The runner: submit, poll, reconcile, collect and retry — resumable after a kill at any moment.

One process runs a job at a time (a lease in the job row; a successor on the same host takes
over at once when the holder's pid is gone). Each :meth:`Runner.step`:

1. **reconciles** chunks left ``creating`` (a create whose answer never got recorded): it lists
   the workspace's batches since the job's horizon and identifies its own by the custom ids in
   their results (job and chunk are embedded); a chunk whose batch is not there (after a settle
   time) is sent again, one that may still be running waits;
2. **plans** chunks for pending requests (the first bulk, then retries);
3. **submits** planned chunks — ``creating`` committed before the call, ``submitted`` with the
   batch id after — within the in-flight limit, backing off on 429;
4. **polls** submitted chunks and records those that ended;
5. **collects** ended chunks (:mod:`tokenomy.batch.results`);
6. ends the job when every request is final, after a last sweep for duplicate batches.

Between steps the runner waits with backoff and jitter (reset when something changed).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import orjson

from tokenomy.core.records import RunRecord
from tokenomy.data.table import ModelTable
from tokenomy.errors import BatchError, UpstreamError
from tokenomy.ports import Clock, UsageSink

from .chunking import pack
from .jobs import (
    MAX_BATCH_BYTES,
    ChunkKind,
    ChunkRow,
    JobRow,
    internal_id,
    parse_internal_id,
)
from .lease import lease_owner_id
from .meter import Tally, meter_result
from .planning import plan_request
from .results import collect_chunk, parse_time
from .source import RawLine, parse_line, read_span
from .status import JobStatus, job_status
from .store import JobStore
from .transport import BatchApi, BatchApiError
from .warmup import run_warmup

__all__ = ["PollPolicy", "Runner"]

_IN_FLIGHT: Final = ("creating", "submitted", "ended")


@dataclass(frozen=True, slots=True, kw_only=True)
class PollPolicy:
    """How often the runner looks, and how long it trusts that a lost create did nothing."""

    initial_s: float = 5.0
    max_s: float = 60.0
    factor: float = 1.5
    jitter: float = 0.2
    # A create with no recorded answer and no batch on the server after this long never happened.
    reconcile_settle_s: float = 30.0
    lease_ttl_s: float = 600.0

    def delay_s(self, idle_steps: int, rng: random.Random) -> float:
        base = min(self.max_s, self.initial_s * self.factor**idle_steps)
        return base * (1 - self.jitter * rng.random())


ProgressFn = Callable[[JobStatus], None]


class Runner:
    """Runs one job to its end (or as far as asked) against the Message Batches API."""

    def __init__(
        self,
        *,
        store: JobStore,
        job_id: str,
        api: BatchApi,
        table: ModelTable,
        sink: UsageSink | None,
        clock: Clock,
        api_key: str,
        policy: PollPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        seed: int | None = None,
    ) -> None:
        self.store = store
        self.job_id = job_id
        self.api = api
        self.table = table
        self.sink = sink
        self.clock = clock
        self.policy = policy or PollPolicy()
        self.api_key = api_key  # in memory only: never stored or logged
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._owner = lease_owner_id()
        self._hold_submits_until_s = 0.0
        self.notes: list[str] = []

    # ------------------------------------------------------------------ public

    def job(self) -> JobRow:
        return self.store.get(self.job_id)

    def status(self) -> JobStatus:
        return job_status(self.store, self.job(), now=self.clock.now())

    async def run(self, *, wait: bool = True, on_progress: ProgressFn | None = None) -> JobStatus:
        """Drive the job: until it ends (``wait``), or until everything is sent."""
        self.store.acquire(self.job_id, self._owner, now=self.clock.now(), ttl_s=self._ttl())
        try:
            idle = 0
            while True:
                changed = await self.step()
                status = self.status()
                if on_progress is not None:
                    on_progress(status)
                if status.finished:
                    return status
                if not wait and not self.store.chunks(self.job_id, states=("planned",)):
                    return status
                idle = 0 if changed else idle + 1
                await self._sleep(self.policy.delay_s(idle, self._rng))
                self.store.acquire(
                    self.job_id, self._owner, now=self.clock.now(), ttl_s=self._ttl()
                )
        finally:
            self.store.release(self.job_id, self._owner)

    async def step(self) -> bool:
        """One round of the loop (see the module doc); True when something changed."""
        job = self.job()
        if not job.open:
            return False
        if job.state == "validating":
            raise BatchError(
                f"batch job {job.job_id!r} was not fully read when its process stopped; "
                f"'tokenomy batch resume {job.job_id}' reads it again"
            )
        changed = await self._reconcile(job)
        if job.state == "canceling":
            self.store.drop_unsent(job.job_id, now=self.clock.now())
        if job.horizon is None:
            await self._set_horizon(job)
            job = self.job()
        if job.state != "canceling":
            changed |= self._plan(job)
            if job.options.warmup and job.warmup is None:
                await run_warmup(self, job)
                job = self.job()
            changed |= await self._submit_planned(job)
        changed |= await self._poll(self.job())
        changed |= await self._collect(self.job())
        changed |= await self._maybe_finish(self.job())
        return changed

    async def cancel(self) -> JobStatus:
        """Cancel the job: nothing more is sent, in-flight batches are canceled."""
        job = self.job()
        if not job.open:
            return self.status()
        self.store.acquire(self.job_id, self._owner, now=self.clock.now(), ttl_s=self._ttl())
        try:
            now = self.clock.now()
            self.store.update_job(self.job_id, now=now, state="canceling")
            self.store.drop_unsent(self.job_id, now=now)
            for chunk in self.store.chunks(self.job_id, states=("submitted",)):
                await self._cancel_batch(chunk)
            await self._maybe_finish(self.job())
        finally:
            self.store.release(self.job_id, self._owner)
        return self.status()

    # ------------------------------------------------------------------ steps

    def _ttl(self) -> float:
        return self.policy.lease_ttl_s

    async def _set_horizon(self, job: JobRow) -> None:
        """Remember the newest batch before this job's first: reconciling never looks past it."""
        newest = await self.api.newest()
        horizon = (
            {"id": newest.get("id"), "created_at": newest.get("created_at")}
            if newest
            else {"id": None, "created_at": None}
        )
        self.store.update_job(job.job_id, now=self.clock.now(), horizon=horizon)

    def _plan(self, job: JobRow) -> bool:
        sizes = self.store.pending_sizes(job.job_id)
        if not sizes:
            return False
        groups = list(
            pack(
                sizes,
                max_requests=job.options.max_per_batch,
                max_bytes=min(job.options.max_batch_bytes, MAX_BATCH_BYTES),
            )
        )
        kind: ChunkKind = "retry" if self.store.chunks(job.job_id) else "bulk"
        made = self.store.plan_chunks(
            job.job_id, groups, kind=kind, sizes=dict(sizes), now=self.clock.now()
        )
        self.store.update_job(job.job_id, now=self.clock.now(), state="submitting")
        self.notes.append(f"planned {len(made)} {kind} chunk(s) of {len(sizes)} request(s)")
        return True

    async def _submit_planned(self, job: JobRow) -> bool:
        planned = self.store.chunks(job.job_id, states=("planned",))
        if not planned:
            if job.state == "submitting":
                self.store.update_job(job.job_id, now=self.clock.now(), state="running")
            return False
        if self.clock.monotonic_s() < self._hold_submits_until_s:
            return False
        limit = job.options.max_inflight_requests
        in_flight = sum(c.n_requests for c in self.store.chunks(job.job_id, states=_IN_FLIGHT))
        changed = False
        for chunk in planned:
            if limit is not None and in_flight and in_flight + chunk.n_requests > limit:
                break
            sent = await self._submit(job, chunk)
            changed = True
            if not sent:
                break
            in_flight += chunk.n_requests
        if not self.store.chunks(job.job_id, states=("planned",)):
            self.store.update_job(job.job_id, now=self.clock.now(), state="running")
        return changed

    def build_body(self, job: JobRow, chunk: ChunkRow) -> bytes:
        """The create body of ``chunk``, rebuilt from the input file (same bytes each time)."""
        self._check_source(job)
        memo: dict[tuple[str, int], int] = {}
        out = bytearray(b'{"requests":[')
        n = 0
        with Path(job.source_path).open("rb") as fh:
            for r in self.store.requests(job.job_id, chunk_no=chunk.chunk_no):
                raw = RawLine(r.line, r.byte_offset, read_span(fh, r.byte_offset, r.byte_length))
                parsed = parse_line(raw, template=job.template)
                planned = plan_request(
                    parsed.params,
                    table=self.table,
                    shared_end=r.shared_end,
                    ttl=job.options.cache_ttl,
                    memo=memo,
                )
                if n:
                    out += b","
                out += orjson.dumps(
                    {
                        "custom_id": internal_id(job.job_id, chunk.chunk_no, r.seq),
                        "params": planned.params,
                    }
                )
                n += 1
        out += b"]}"
        if n != chunk.n_requests:
            raise BatchError(
                f"chunk {chunk.chunk_no} of job {job.job_id!r} should hold {chunk.n_requests} "
                f"requests but {n} are recorded; the job store is inconsistent"
            )
        if len(out) > MAX_BATCH_BYTES:
            raise BatchError(
                f"chunk {chunk.chunk_no} is {len(out):,} bytes, over the API's 256 MB; the "
                "model table changed since the job was read? lower --max-batch-bytes"
            )
        return bytes(out)

    def _check_source(self, job: JobRow) -> None:
        path = Path(job.source_path)
        try:
            st = path.stat()
        except OSError:
            raise BatchError(
                f"the input of job {job.job_id!r} ({path}) is gone; requests not yet sent "
                f"need it: restore it, or 'tokenomy batch cancel {job.job_id}'"
            ) from None
        if st.st_size != job.source_size or st.st_mtime_ns != job.source_mtime_ns:
            raise BatchError(
                f"the input of job {job.job_id!r} ({path}) changed since it was submitted; "
                f"restore it, or 'tokenomy batch cancel {job.job_id}' and submit it again"
            )

    async def _submit(self, job: JobRow, chunk: ChunkRow) -> bool:
        """Send one chunk; True when it was created (or may have been)."""
        body = self.build_body(job, chunk)
        self.store.set_chunk(
            job.job_id,
            chunk.chunk_no,
            state="creating",
            creating_at=self.clock.now(),
            body_bytes=len(body),
            horizon=job.horizon,
        )
        outcome = await self.api.create(body)
        del body
        now = self.clock.now()
        if outcome.batch is not None:
            batch = outcome.batch
            if not self.store.claim_batch(
                job.job_id, chunk.chunk_no, batch_id=str(batch["id"]), batch=batch, now=now
            ):
                raise BatchError(f"batch {batch['id']!r} is already recorded for another chunk")
            return True
        if outcome.unknown is not None:
            self.store.set_chunk(job.job_id, chunk.chunk_no, note=outcome.unknown)
            return True
        err = outcome.error
        assert err is not None
        self.store.set_chunk(
            job.job_id, chunk.chunk_no, state="planned", creating_at=None, note=str(err)
        )
        if outcome.retry_after_s is not None or err.status == 429:
            wait_s = outcome.retry_after_s or self.policy.initial_s
            self._hold_submits_until_s = self.clock.monotonic_s() + wait_s
            self.notes.append(f"create refused ({err.error_type}); trying again in {wait_s:.0f}s")
            return False
        self.store.update_job(job.job_id, now=now, state="failed", error=str(err))
        raise BatchError(
            f"the API refused chunk {chunk.chunk_no} of job {job.job_id!r}: {err}; nothing of "
            "this chunk was created. Fix the cause, then 'tokenomy batch resume'"
        )

    async def _reconcile(self, job: JobRow) -> bool:
        creating = self.store.chunks(job.job_id, states=("creating",))
        if not creating:
            return False
        if job.horizon is not None and not job.horizon.get("doubt"):
            # A create's outcome was in doubt: the job's end sweeps for duplicates.
            self.store.update_job(
                job.job_id, now=self.clock.now(), horizon={**job.horizon, "doubt": True}
            )
        listing = [b async for b in self.api.list_since(job.horizon)]
        known = self.store.known_batch_ids(str(b.get("id")) for b in listing)
        changed = False
        for chunk in creating:
            matched, waiting = await self._find(job, chunk, listing, known)
            now = self.clock.now()
            if matched is not None:
                bid = str(matched["id"])
                if self.store.claim_batch(
                    job.job_id, chunk.chunk_no, batch_id=bid, batch=matched, now=now
                ):
                    known.add(bid)
                    self.store.set_chunk(
                        job.job_id, chunk.chunk_no, note="found on the server after a restart"
                    )
                    self.notes.append(f"chunk {chunk.chunk_no}: reconciled with batch {bid}")
                    if job.state == "canceling":
                        await self._cancel_batch(self.store.chunk(job.job_id, chunk.chunk_no))
                    changed = True
                continue
            if waiting:
                self.store.set_chunk(
                    job.job_id,
                    chunk.chunk_no,
                    note=f"waiting for {waiting} running batch(es) to end to tell if one is ours",
                )
                continue
            started = chunk.creating_at or now
            if (now - started).total_seconds() < self.policy.reconcile_settle_s:
                continue
            self.store.set_chunk(
                job.job_id,
                chunk.chunk_no,
                state="planned",
                creating_at=None,
                note="its create never reached the API; sent again",
            )
            self.notes.append(f"chunk {chunk.chunk_no}: not on the server; will send it again")
            changed = True
        return changed

    async def _find(
        self, job: JobRow, chunk: ChunkRow, listing: list[dict[str, Any]], known: set[str]
    ) -> tuple[dict[str, Any] | None, int]:
        waiting = 0
        for batch in listing:
            bid = str(batch.get("id"))
            if bid in known or _total(batch) != chunk.n_requests:
                continue
            if batch.get("processing_status") != "ended":
                fresh = await self.api.retrieve(bid)  # the listing may be stale
                if fresh.get("processing_status") != "ended":
                    waiting += 1
                    continue
                batch = fresh  # noqa: PLW2901 - the same batch, newer
            cid = await self.api.first_result_id(bid)
            owner = parse_internal_id(cid) if cid else None
            if owner is not None and owner[:2] == (job.job_id, chunk.chunk_no):
                return batch, 0
        return None, waiting

    async def _poll(self, job: JobRow) -> bool:
        changed = False
        for chunk in self.store.chunks(job.job_id, states=("submitted",)):
            assert chunk.batch_id is not None
            try:
                batch = await self.api.retrieve(chunk.batch_id)
            except BatchApiError as exc:
                if exc.status == 404:
                    raise BatchError(
                        f"batch {chunk.batch_id} of job {job.job_id!r} (chunk {chunk.chunk_no}) "
                        "is not found: deleted, or another workspace's API key? Run the job "
                        "with the key that submitted it"
                    ) from None
                if exc.transient:
                    self.notes.append(f"poll failed ({exc}); trying again later")
                    return changed
                raise
            except UpstreamError as exc:
                self.notes.append(f"poll failed ({exc}); trying again later")
                return changed
            if batch.get("processing_status") == "ended":
                self.store.set_chunk(
                    job.job_id,
                    chunk.chunk_no,
                    state="ended",
                    batch=batch,
                    ended_at=parse_time(batch.get("ended_at")) or self.clock.now(),
                )
                changed = True
        return changed

    async def _collect(self, job: JobRow) -> bool:
        changed = False
        for chunk in self.store.chunks(job.job_id, states=("ended",)):
            await collect_chunk(
                api=self.api,
                store=self.store,
                job=job,
                chunk=chunk,
                table=self.table,
                sink=self.sink,
                clock=self.clock,
            )
            changed = True
        return changed

    async def _maybe_finish(self, job: JobRow) -> bool:
        counts = self.store.request_counts(job.job_id)
        if counts["pending"] or counts["queued"]:
            return False
        if self.store.chunks(job.job_id, states=("planned", *_IN_FLIGHT)):
            return False
        if job.horizon and job.horizon.get("doubt"):
            await self._sweep_duplicates(job)
        now = self.clock.now()
        final = "canceled" if job.state == "canceling" else "ended"
        self.store.update_job(job.job_id, now=now, state=final, ended_at=now)
        if self.sink is not None:
            self.sink.record_run(
                RunRecord(
                    run_id=job.run_id,
                    name=job.name,
                    started_at=job.created_at,
                    tags={"job_id": job.job_id},
                    source="batch",
                    ended_at=now,
                    external_id=job.job_id,
                )
            )
            self.sink.flush()
        return True

    async def _cancel_batch(self, chunk: ChunkRow) -> None:
        if chunk.batch_id is None:
            return
        try:
            await self.api.cancel(chunk.batch_id)
        except BatchApiError as exc:
            self.notes.append(f"cancel of {chunk.batch_id} answered {exc}")

    async def _sweep_duplicates(self, job: JobRow) -> None:
        """Find batches carrying this job's ids that no chunk owns, and report their spend."""
        chunks = self.store.chunks(job.job_id)
        sizes = {c.n_requests for c in chunks if c.kind != "duplicate"}
        listing = [b async for b in self.api.list_since(job.horizon)]
        known = self.store.known_batch_ids(str(b.get("id")) for b in listing)
        for batch in listing:
            bid = str(batch.get("id"))
            if bid in known or _total(batch) not in sizes:
                continue
            if batch.get("processing_status") != "ended":
                self.notes.append(f"batch {bid} is still running: not checked for duplicates")
                continue
            cid = await self.api.first_result_id(bid)
            owner = parse_internal_id(cid) if cid else None
            if owner is None or owner[0] != job.job_id:
                continue
            await self._record_duplicate(job, batch, of_chunk=owner[1])

    async def _record_duplicate(
        self, job: JobRow, batch: Mapping[str, Any], *, of_chunk: int
    ) -> None:
        bid = str(batch["id"])
        tally = Tally()
        cost_usd = interactive_usd = Decimal(0)
        requests = {r.seq: r for r in self.store.requests(job.job_id, chunk_no=of_chunk)}
        started = parse_time(batch.get("created_at")) or self.clock.now()
        async for raw in self.api.results(bid):
            line = orjson.loads(raw)
            owner = parse_internal_id(str(line.get("custom_id")))
            request = requests.get(owner[2]) if owner else None
            if request is None:
                continue
            metered = meter_result(
                line,
                request=request,
                call_id=f"{job.job_id}-dup-{bid}-{request.seq:08d}",
                run_id=job.run_id,
                table=self.table,
                started_at=started,
                ended_at=parse_time(batch.get("ended_at")),
                decisions={"batch": {"job_id": job.job_id, "duplicate_of_chunk": of_chunk}},
            )
            if metered.usage is not None:
                tally.succeeded += 1
                tally.add_usage(metered.usage)
                cost_usd += metered.cost_usd or Decimal(0)
                interactive_usd += metered.interactive_usd or Decimal(0)
            if self.sink is not None:
                self.sink.record_call(metered.record)
        no = self.store.add_duplicate(
            job.job_id,
            batch_id=bid,
            batch=batch,
            of_chunk=of_chunk,
            n_requests=_total(batch),
            outcome=tally.to_json(),
            cost_usd=str(cost_usd),
            interactive_usd=str(interactive_usd),
            now=self.clock.now(),
        )
        self.notes.append(f"duplicate batch {bid} of chunk {of_chunk} recorded as chunk {no}")


def _total(batch: Mapping[str, Any]) -> int:
    counts = batch.get("request_counts")
    if not isinstance(counts, Mapping):
        return -1
    return sum(int(v) for v in counts.values() if isinstance(v, int))
