"""Kill a real ``tokenomy batch`` process with SIGKILL at random moments, then check the job.

Used by ``test_crash.py`` (a small job) and ``bench/batch_large.py`` (the large one):

1. the emulator serves over real HTTP in this process; its virtual clock moves when the runner
   polls a running batch (``poll_advance_s``) and by ``gap_s`` after each kill (the time a
   restart takes), so batches end as the job is driven;
2. ``tokenomy batch submit`` starts the job; each of ``kills`` rounds starts the runner
   (``submit`` until a job exists, then ``resume``), lets it run a seeded random while, and
   SIGKILLs it; what the job's rows looked like at that moment is recorded (the window hit);
3. a last ``resume`` runs to the end; :func:`check` then verifies that every request has
   exactly one result, that no chunk was sent in two batches (or that the job reports each
   extra batch as duplicate spend), and that the ledger's calls add up to the job's cost.
"""

from __future__ import annotations

import os
import random
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, select

from tests.emulator.harness import EmulatorServer
from tokenomy.batch.jobs import parse_internal_id
from tokenomy.batch.results import chunk_file
from tokenomy.batch.status import JobStatus, job_status
from tokenomy.batch.store import JobStore
from tokenomy.ledger import Ledger
from tokenomy.ledger.schema import calls

KEY = "sk-ant-test-crash-0000"
ENTRY = "import sys; from tokenomy.cli import main; sys.exit(main())"


@dataclass
class Round:
    """One run of the runner process: how long it lived and what it was doing when killed."""

    command: str
    lived_s: float
    killed: bool
    window: str
    max_rss_kb: int = 0


@dataclass
class Outcome:
    job_id: str
    status: JobStatus
    rounds: list[Round] = field(default_factory=list)
    final_s: float = 0.0
    final_rss_kb: int = 0
    startup_s: float = 0.0
    problems: list[str] = field(default_factory=list)


def runner_env(data_dir: Path, base_url: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TOKENOMY_", "ANTHROPIC_")) and k not in ("COVERAGE_PROCESS_START",)
    }
    env.update(
        {
            "TOKENOMY_DATA_DIR": str(data_dir),
            "TOKENOMY_UPSTREAM": base_url,
            "TOKENOMY_OFFLINE": "1",
            "TOKENOMY_CONFIG": "",
            "ANTHROPIC_API_KEY": KEY,
        }
    )
    return env


def _open_store(data_dir: Path) -> tuple[Ledger, JobStore]:
    ledger = Ledger.open(f"sqlite:///{data_dir / 'ledger.db'}")
    return ledger, JobStore(ledger)


def _job_id(data_dir: Path) -> str | None:
    if not (data_dir / "ledger.db").exists():
        return None
    ledger, store = _open_store(data_dir)
    try:
        jobs = store.list_jobs(limit=5)
        return jobs[0].job_id if jobs else None
    finally:
        ledger.close()


def window(data_dir: Path, job_id: str | None) -> str:
    """Which moment of the job's life the rows show (after a kill)."""
    if job_id is None:
        return "before the job existed"
    ledger, store = _open_store(data_dir)
    try:
        job = store.get(job_id)
        if job.state == "validating":
            return "reading the input"
        chunks = store.chunks(job_id)
        states = Counter(c.state for c in chunks)
        tmp = any(Path(job.results_dir).glob("*.tmp")) if Path(job.results_dir).exists() else False
        if tmp:
            return "writing a chunk's results"
        if states["creating"]:
            return "creating a batch (id not recorded)"
        if states["ended"]:
            return "collecting an ended batch"
        if not chunks:
            return "before planning"
        if states["submitted"]:
            return "polling"
        if states["planned"]:
            return "between chunks"
        return f"job {job.state}"
    finally:
        ledger.close()


def _child_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def run_round(
    args: Sequence[str], *, env: dict[str, str], kill_after_s: float | None
) -> tuple[bool, float, int]:
    """Run the CLI; SIGKILL it after ``kill_after_s``. Returns (killed, lived_s, exit code)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-c", ENTRY, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _, err = proc.communicate(timeout=kill_after_s)
        if proc.returncode != 0:
            raise RuntimeError(f"tokenomy {' '.join(args)} exited {proc.returncode}: {err!r}")
        return False, time.monotonic() - started, proc.returncode
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        return True, time.monotonic() - started, -9


def crash_job(
    *,
    server: EmulatorServer,
    source: Path,
    data_dir: Path,
    kills: int,
    seed: int,
    # seconds after the runner's start-up time
    kill_window_s: tuple[float, float],
    submit_args: Sequence[str],
    run_args: Sequence[str],
    gap_s: float = 5.0,
    final_timeout_s: float = 600.0,
) -> Outcome:
    """Submit ``source``, SIGKILL the runner ``kills`` times, then let it finish."""
    rng = random.Random(seed)
    env = runner_env(data_dir, server.base_url)
    rounds: list[Round] = []
    # Kill points count from when a runner is up: the interpreter and imports take a while
    # (more on a busy machine), and a kill before that tests nothing.
    startup_s = min(run_round(["batch", "list"], env=env, kill_after_s=60)[1] for _ in range(2))
    for _ in range(kills):
        job_id = _job_id(data_dir)
        args = (
            ["batch", "submit", str(source), "--wait", *submit_args, *run_args]
            if job_id is None
            else ["batch", "resume", job_id, *run_args]
        )
        delay = startup_s + rng.uniform(*kill_window_s)
        killed, lived, _ = run_round(args, env=env, kill_after_s=delay)
        job_id = _job_id(data_dir)
        rounds.append(
            Round(
                command=args[1],
                lived_s=lived,
                killed=killed,
                window=window(data_dir, job_id) if killed else "finished",
            )
        )
        server.emulator.clock.advance(gap_s)
    job_id = _job_id(data_dir)
    assert job_id is not None, "the job was never created"
    t0 = time.monotonic()
    run_round(["batch", "resume", job_id, *run_args], env=env, kill_after_s=final_timeout_s)
    final_s = time.monotonic() - t0
    ledger, store = _open_store(data_dir)
    try:
        status = job_status(store, store.get(job_id), now=store.get(job_id).updated_at)
    finally:
        ledger.close()
    out = Outcome(
        job_id=job_id,
        status=status,
        rounds=rounds,
        final_s=final_s,
        final_rss_kb=_child_rss_kb(),
        startup_s=startup_s,
    )
    out.problems = check(out, server=server, data_dir=data_dir, source=source)
    return out


def check(out: Outcome, *, server: EmulatorServer, data_dir: Path, source: Path) -> list[str]:
    """Every invariant of a finished job; returns what is violated (empty: all hold)."""
    problems: list[str] = []
    status = out.status
    if status.state != "ended":
        problems.append(f"the job ended {status.state!r}, not 'ended'")
    expected = Counter(
        orjson.loads(line)["custom_id"] for line in source.read_bytes().splitlines() if line
    )
    got: Counter[str] = Counter()
    lines = 0
    for chunk in status.chunks:
        if chunk.kind == "duplicate" or chunk.state != "collected":
            continue
        for line in chunk_file(status.results_path, chunk.chunk_no).read_bytes().splitlines():
            got[orjson.loads(line)["custom_id"]] += 1
            lines += 1
    if got != expected:
        missing = sorted(set(expected) - set(got))[:5]
        twice = sorted(k for k, n in got.items() if n > 1)[:5]
        problems.append(f"results: missing {missing}, more than once {twice}")
    if lines != sum(expected.values()):
        problems.append(f"{lines} result lines for {sum(expected.values())} requests")
    # The server's side: which chunk each batch carried.
    per_chunk: Counter[int] = Counter()
    for batch in server.emulator.batches._batches.values():
        owners = {parse_internal_id(cid) for cid in batch.custom_ids}
        chunks = {o[1] for o in owners if o is not None and o[0] == out.job_id}
        if len(chunks) > 1:
            problems.append(f"batch {batch.id} mixes chunks {sorted(chunks)}")
        per_chunk.update(chunks)
    extra = sum(n - 1 for n in per_chunk.values() if n > 1)
    if extra != status.duplicate_batches:
        problems.append(
            f"{extra} chunk(s) sent twice but {status.duplicate_batches} duplicate(s) reported"
        )
    # The ledger: the job's calls add up to its cost exactly (no call metered twice).
    ledger = Ledger.open(f"sqlite:///{data_dir / 'ledger.db'}")
    try:
        with ledger.read() as conn:
            n_calls, pusd = conn.execute(
                select(func.count(), func.sum(calls.c.cost_total_pusd)).where(
                    calls.c.run_id == f"run_{out.job_id}", calls.c.mode == "batch"
                )
            ).one()
    finally:
        ledger.close()
    ledger_usd = Decimal(int(pusd or 0)) / Decimal(10**12)
    if ledger_usd != status.total_usd:
        problems.append(f"ledger calls cost {ledger_usd}, the job says {status.total_usd}")
    attempts = sum(c.n_requests for c in status.chunks if c.state == "collected")
    if n_calls != attempts:
        problems.append(f"{n_calls} calls in the ledger for {attempts} collected attempts")
    return problems


def summary(out: Outcome) -> dict[str, Any]:
    s = out.status
    return {
        "job_id": out.job_id,
        "kills": sum(r.killed for r in out.rounds),
        "windows": dict(Counter(r.window for r in out.rounds)),
        "chunks": len([c for c in s.chunks if c.kind != "duplicate"]),
        "retry_chunks": len([c for c in s.chunks if c.kind == "retry"]),
        "resent_after_crash": len([c for c in s.chunks if (c.note or "").endswith("sent again")]),
        "found_after_crash": len([c for c in s.chunks if (c.note or "").startswith("found")]),
        "duplicates": s.duplicate_batches,
        "duplicate_usd": str(s.duplicate_usd),
        "requests": s.n_requests,
        "succeeded": s.requests["succeeded"],
        "problems": out.problems,
    }
