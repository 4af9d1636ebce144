"""Every window a crash can leave, and what the next run does with it.

A SIGKILL cannot be aimed at a window from inside a test, so each window is built by hand —
exactly the rows and server state that a process killed there leaves — and a fresh runner is
pointed at it. (``test_crash.py`` kills a real runner process at random moments.)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.batch.conftest import KEY, Rig, write_job
from tokenomy.batch import Job, asubmit
from tokenomy.batch.jobs import ChunkRow, parse_internal_id
from tokenomy.batch.store import owner_is_dead
from tokenomy.emulator.faults import parse_fault_plan
from tokenomy.errors import BatchError

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _chunks_per_batch(rig: Rig, job_id: str) -> list[set[int]]:
    out = []
    for ids in rig.custom_ids():
        owners = {parse_internal_id(c) for c in ids}
        out.append({o[1] for o in owners if o is not None and o[0] == job_id})
    return out


async def _half_created(rig: Rig, job: Job, *, posts: int) -> ChunkRow:
    """Plan, mark chunk 1 ``creating`` and POST it ``posts`` times without recording an id."""
    runner = rig.env.runner(job.row(), api_key=KEY)
    try:
        await runner._set_horizon(job.row())
        runner._plan(job.row())
        row = job.row()
        chunk = rig.env.store.chunks(job.job_id)[0]
        body = runner.build_body(row, chunk)
        rig.env.store.set_chunk(
            job.job_id, chunk.chunk_no, state="creating", creating_at=rig.env.clock.now()
        )
        for _ in range(posts):
            outcome = await runner.api.create(body)
            assert outcome.batch is not None
    finally:
        await runner.api.aclose()
    return rig.env.store.chunk(job.job_id, chunk.chunk_no)


async def test_a_batch_created_but_not_recorded_is_found_not_sent_again(
    make_env: Callable[..., Rig], tmp_path: Path
) -> None:
    rig = make_env()
    job = await asubmit(
        write_job(tmp_path / "j.jsonl", 40), env=rig.env, api_key=KEY, max_per_batch=20,
        send=False,
    )  # fmt: skip
    await _half_created(rig, job, posts=1)
    rig.emulator.clock.advance(3600)  # the orphan batch ends, so its results name it
    status = await job.wait()

    assert status.state == "ended" and status.requests["succeeded"] == 40
    assert _chunks_per_batch(rig, job.job_id) == [{1}, {2}]  # chunk 1 was not sent twice
    assert status.chunks[0].note == "found on the server after a restart"
    assert status.duplicate_batches == 0
    assert len(list(job.results())) == 40


async def test_a_create_that_never_reached_the_api_is_sent_again(rig: Rig, tmp_path: Path) -> None:
    job = await asubmit(
        write_job(tmp_path / "j.jsonl", 40), env=rig.env, api_key=KEY, max_per_batch=20,
        send=False,
    )  # fmt: skip
    await _half_created(rig, job, posts=0)
    status = await job.wait()
    assert status.state == "ended" and status.requests["succeeded"] == 40
    assert sorted(map(sorted, _chunks_per_batch(rig, job.job_id))) == [[1], [2]]
    assert status.chunks[0].note == "its create never reached the API; sent again"


async def test_a_duplicate_that_could_not_be_avoided_is_reported_with_its_cost(
    rig: Rig, tmp_path: Path
) -> None:
    job = await asubmit(
        write_job(tmp_path / "j.jsonl", 20), env=rig.env, api_key=KEY, max_per_batch=10,
        send=False,
    )  # fmt: skip
    await _half_created(rig, job, posts=2)  # e.g. a client library that retried the create
    rig.emulator.clock.advance(3600)
    status = await job.wait()

    assert status.state == "ended" and status.requests["succeeded"] == 20
    assert status.duplicate_batches == 1
    dup = next(c for c in status.chunks if c.kind == "duplicate")
    assert dup.n_requests == 10 and dup.cost_usd is not None and dup.cost_usd > 0
    assert status.duplicate_usd == dup.cost_usd
    assert status.total_usd == status.cost_usd + status.duplicate_usd
    assert "a second batch for chunk 1" in (dup.note or "")
    # The results still hold each request once: the duplicate's lines were not used.
    assert sorted(x["custom_id"] for x in job.results()) == sorted(f"q{i}" for i in range(20))


@pytest.mark.parametrize(
    ("fault", "note"),
    [
        # 500 on the create: it may or may not exist; the runner lists batches before resending
        ({"kind": "api_error", "route": "batches", "nth": [2]}, "sent again"),
        # 429 on the create: refused before anything was made; sent again after retry-after
        ({"kind": "rate_limit", "route": "batches", "nth": [2], "retry_after_s": 0}, None),
    ],
    ids=["5xx", "429"],
)
async def test_a_failed_create_never_doubles_a_chunk(
    rig: Rig, tmp_path: Path, fault: dict[str, object], note: str | None
) -> None:
    rig.emulator.faults.replace(parse_fault_plan({"faults": [fault]}, source="test"))
    job = await asubmit(
        write_job(tmp_path / "j.jsonl", 30), env=rig.env, api_key=KEY, max_per_batch=10
    )
    status = await job.wait()
    assert rig.emulator.faults.counters()  # the fault fired
    assert status.state == "ended" and status.requests["succeeded"] == 30
    assert sorted(map(sorted, _chunks_per_batch(rig, job.job_id))) == [[1], [2], [3]]
    if note:
        assert note in (status.chunks[0].note or "")


async def test_polling_rides_out_transient_errors(rig: Rig, tmp_path: Path) -> None:
    rig.emulator.faults.replace(
        parse_fault_plan(
            {"faults": [{"kind": "overloaded", "route": "batches", "every": 3, "times": 6}]},
            source="test",
        )
    )
    job = await asubmit(
        write_job(tmp_path / "j.jsonl", 30), env=rig.env, api_key=KEY, max_per_batch=10
    )
    status = await job.wait()
    assert status.state == "ended" and status.requests["succeeded"] == 30
    assert sum(len(s) for s in _chunks_per_batch(rig, job.job_id)) == 3


async def test_one_process_runs_a_job_and_a_dead_holder_is_taken_over(
    rig: Rig, tmp_path: Path
) -> None:
    job = await asubmit(write_job(tmp_path / "j.jsonl", 4), env=rig.env, api_key=KEY, send=False)
    store, now = rig.env.store, rig.env.clock.now()
    host = os.uname().nodename
    alive = f"{host}:{os.getpid()}:other"
    store.acquire(job.job_id, alive, now=now, ttl_s=600)
    with pytest.raises(BatchError, match="is being run by another process"):
        await job.wait()
    store.release(job.job_id, alive)
    dead = f"{host}:999999999:gone"
    assert owner_is_dead(dead) and not owner_is_dead(alive)
    store.acquire(job.job_id, dead, now=now, ttl_s=600)  # then SIGKILLed
    status = await job.wait()
    assert status.state == "ended"
    assert store.get(job.job_id).lease_owner is None


async def test_a_job_whose_input_changed_refuses_to_send_the_rest(rig: Rig, tmp_path: Path) -> None:
    src = write_job(tmp_path / "j.jsonl", 4)
    job = await asubmit(src, env=rig.env, api_key=KEY, send=False)
    write_job(src, 5)  # rewritten in place
    with pytest.raises(BatchError, match=r"changed since it was submitted; restore it, or"):
        await job.wait()
    assert rig.batches() == []


async def test_resuming_with_another_key_is_refused(rig: Rig, tmp_path: Path) -> None:
    job = await asubmit(write_job(tmp_path / "j.jsonl", 2), env=rig.env, api_key=KEY, send=False)
    other = Job(job.job_id, rig.env, api_key="sk-ant-someone-else")
    with pytest.raises(BatchError, match="resume it with the key that submitted it"):
        await other.wait()


async def test_a_job_killed_while_being_read_is_read_again(rig: Rig, tmp_path: Path) -> None:
    job = await asubmit(write_job(tmp_path / "j.jsonl", 6), env=rig.env, api_key=KEY, send=False)
    store = rig.env.store
    # As if killed half-way through reading: the state says so, some rows are there.
    store.update_job(job.job_id, now=rig.env.clock.now(), state="validating")
    rows = list(store.requests(job.job_id))
    store.clear_requests(job.job_id)
    store.insert_requests(job.job_id, rows[:2])
    status = await job.wait()
    assert status.state == "ended" and status.requests["succeeded"] == 6


async def test_a_read_cut_short_goes_on_from_the_last_stored_row(rig: Rig, tmp_path: Path) -> None:
    src = write_job(tmp_path / "j.jsonl", 4500)  # more than one insert batch (2,000 rows)
    with src.open("ab") as fh:
        fh.write(b"not json\n")
    job = await asubmit(src, env=rig.env, api_key=KEY, send=False, skip_invalid=True)
    store = rig.env.store
    full = [
        (r.seq, r.custom_id, r.line, r.shared_end, r.body_bytes) for r in store.requests(job.job_id)
    ]
    # Killed after the second insert batch: 4,000 rows stored, the rest never read.
    store.update_job(job.job_id, now=rig.env.clock.now(), state="validating")
    keep = [r for r in store.requests(job.job_id) if r.seq < 4000]
    store.clear_requests(job.job_id)
    store.insert_requests(job.job_id, keep, skipped=[], n_skipped=0)

    status = await job.resume(wait=False)
    again = [
        (r.seq, r.custom_id, r.line, r.shared_end, r.body_bytes) for r in store.requests(job.job_id)
    ]
    assert again == full  # same rows, same planning hints, same sizes
    assert status.n_requests == 4500 and status.n_skipped == 1
    assert status.skipped[0]["line"] == 4501


def test_a_sigkilled_holder_is_dead_even_before_it_is_reaped() -> None:
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    owner = f"{os.uname().nodename}:{proc.pid}:x"
    try:
        assert not owner_is_dead(owner)
        proc.send_signal(signal.SIGKILL)
        # not waited for yet: a zombie until its parent (this test) reaps it
        import time

        deadline = time.monotonic() + 10
        while not owner_is_dead(owner):
            assert time.monotonic() < deadline, "the killed process still looks alive"
            time.sleep(0.01)
    finally:
        proc.wait()
    assert owner_is_dead(owner)
    assert not owner_is_dead(f"some-other-host:{proc.pid}:x")  # another host: cannot tell


async def test_a_chunk_the_api_refuses_fails_the_job_and_resume_goes_on(
    rig: Rig, tmp_path: Path
) -> None:
    # A 400 on create: nothing was made; the job fails with the API's message.
    job = await asubmit(write_job(tmp_path / "j.jsonl", 4), env=rig.env, api_key=KEY, send=False)
    runner = rig.env.runner(job.row(), api_key=KEY)
    try:
        from tokenomy.batch.transport import BatchApiError, CreateOutcome

        async def refused(body: bytes) -> CreateOutcome:
            err = BatchApiError(
                status=400, error_type="invalid_request_error", message="bad", retry_after=None
            )
            return CreateOutcome(error=err)

        runner.api.create = refused  # type: ignore[method-assign]
        with pytest.raises(BatchError, match="the API refused chunk 1"):
            await runner.run()
    finally:
        await runner.api.aclose()
    assert job.row().state == "failed" and "invalid_request_error" in (job.row().error or "")
    assert rig.batches() == []
    status = await job.wait()  # the cause is gone: resume goes on
    assert status.state == "ended" and status.requests["succeeded"] == 4
