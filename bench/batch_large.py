"""The large batch job: 100,000 requests sharing a 3,000-token prefix, against the emulator.

Three measurements, each from a ``tokenomy batch`` subprocess talking HTTP to the emulator that
this process serves (``tests/emulator/harness.py``):

1. **clean run** — ``tokenomy batch submit FILE --wait``: wall time, the runner's peak RSS
   (``getrusage(RUSAGE_CHILDREN)``: its own memory, not the emulator's), and the checks that
   every result is written exactly once and the ledger agrees with the job's cost;
2. **interactive comparison** — a sample of the same items sent one by one through the
   pipeline (``tokenomy.AsyncAnthropic``) to a fresh emulator: cost per request and cache hit
   rate, against the batch job's;
3. **crash run** — the same job submitted again and its runner SIGKILLed at ``--kills`` seeded
   random moments spread over the clean run's duration, resumed each time, then checked the
   same way (see ``tests/batch/crash_driver.py``).

Usage::

    .venv/bin/python bench/batch_large.py                 # 100,000 requests, 20 kills
    .venv/bin/python bench/batch_large.py --requests 5000 --kills 5   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.batch.crash_driver import (  # noqa: E402
    KEY,
    check,
    crash_job,
    run_round,
    runner_env,
    summary,
)
from tests.emulator.harness import EmulatorServer, serve_app  # noqa: E402

from _report import markdown_table, print_table, publish  # noqa: E402
from tokenomy.batch.status import job_status  # noqa: E402
from tokenomy.batch.store import JobStore  # noqa: E402
from tokenomy.client import AsyncAnthropic  # noqa: E402
from tokenomy.data import builtin_table  # noqa: E402
from tokenomy.emulator import BatchTiming, EmulatorConfig, create_app  # noqa: E402
from tokenomy.ledger import Ledger  # noqa: E402
from tokenomy.pipeline import FollowClock, Pipeline  # noqa: E402

MODEL = "claude-sonnet-4-6"
# 428 clauses = 3,000 tokens (+/- 1%) on the emulator's tokenizer (checked at run time).
PREFIX = " ".join(f"clause{i % 89} of the shared policy text" for i in range(428))
TIMING = BatchTiming(poll_advance_s=600.0)


def params(i: int) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 64,
        "system": PREFIX,
        "messages": [{"role": "user", "content": f"Ticket {i}: classify its urgency."}],
    }


def write_input(path: Path, n: int) -> int:
    with path.open("wb") as fh:
        for i in range(n):
            fh.write(orjson.dumps({"custom_id": f"ticket-{i}", "params": params(i)}))
            fh.write(b"\n")
    return path.stat().st_size


def prefix_tokens(server: EmulatorServer) -> int:
    h = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    url = server.base_url + "/v1/messages/count_tokens"
    base = {"model": MODEL, "messages": [{"role": "user", "content": "x"}]}
    with_prefix = httpx2.post(url, headers=h, json={**base, "system": PREFIX}).json()
    without = httpx2.post(url, headers=h, json=base).json()
    return int(with_prefix["input_tokens"]) - int(without["input_tokens"])


def status_of(data_dir: Path, job_id: str) -> Any:
    ledger = Ledger.open(f"sqlite:///{data_dir / 'ledger.db'}")
    try:
        store = JobStore(ledger)
        job = store.get(job_id)
        return job_status(store, job, now=job.updated_at)
    finally:
        ledger.close()


RUN_ARGS = ["--poll-interval", "0.2", "--poll-max", "1", "--reconcile-settle", "2"]


def clean_run(workdir: Path, source: Path) -> dict[str, Any]:
    data_dir = workdir / "clean"
    with serve_app(batch_timing=TIMING) as server:
        env = runner_env(data_dir, server.base_url)
        t0 = time.monotonic()
        killed, _, _ = run_round(
            ["batch", "submit", str(source), "--wait", "--json", *RUN_ARGS],
            env=env,
            kill_after_s=7200,
        )
        wall = time.monotonic() - t0
        rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        ledger = Ledger.open(f"sqlite:///{data_dir / 'ledger.db'}")
        try:
            job_id = JobStore(ledger).list_jobs(limit=1)[0].job_id
        finally:
            ledger.close()
        status = status_of(data_dir, job_id)
        from tests.batch.crash_driver import Outcome

        problems = check(
            Outcome(job_id=job_id, status=status), server=server, data_dir=data_dir, source=source
        )
        tokens = prefix_tokens(server)
    return {
        "job_id": job_id,
        "wall_s": wall,
        "peak_rss_mb": rss_kb / 1024,
        "status": status,
        "problems": problems,
        "prefix_tokens": tokens,
        "killed": killed,
    }


async def interactive_sample(n: int) -> dict[str, Any]:
    """``n`` of the same items through the pipeline, one by one, on a fresh emulator."""
    app = create_app(EmulatorConfig())
    pipeline = Pipeline(
        table=builtin_table(), clock=FollowClock(app.state.emulator.clock.now_s), sink=None
    )
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://emu")
    client = AsyncAnthropic(
        api_key=KEY, base_url="http://emu", http_client=http, pipeline=pipeline, max_retries=0
    )
    run = pipeline.start_run("interactive-sample")
    with run:
        for i in range(n):
            await client.messages.create(**params(i))
    await http.aclose()
    s = run.state
    total_input = s.input_tokens
    return {
        "requests": n,
        "cost_usd": s.cost_usd,
        "per_request_usd": s.cost_usd / n,
        "cache_hit_rate": (s.cache_read_tokens / total_input) if total_input else None,
    }


def crash_run(workdir: Path, source: Path, *, kills: int, seed: int, clean_s: float) -> Any:
    # Kill points spread so that all rounds land before the job could end on its own.
    spread = max(1.0, 1.2 * clean_s / kills)
    with serve_app(batch_timing=TIMING) as server:
        return crash_job(
            server=server,
            source=source,
            data_dir=workdir / "crash",
            kills=kills,
            seed=seed,
            kill_window_s=(0.0, spread),
            submit_args=[],
            run_args=RUN_ARGS,
            gap_s=5.0,
            final_timeout_s=7200,
        )


def usd(v: Decimal | None, places: int = 4) -> str:
    return "n/a" if v is None else f"${v.quantize(Decimal(1).scaleb(-places)):,}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=20261122)
    ap.add_argument("--interactive", type=int, default=1000, help="items sent interactively")
    ap.add_argument("--no-publish", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="tokenomy-batch-bench-") as tmp:
        workdir = Path(tmp)
        source = workdir / "tickets.jsonl"
        t0 = time.monotonic()
        size = write_input(source, args.requests)
        took = time.monotonic() - t0
        print(f"input: {args.requests:,} requests, {size / 1e6:,.0f} MB ({took:.0f}s)")

        clean = clean_run(workdir, source)
        s = clean["status"]
        print(f"clean run: {clean['wall_s']:.0f}s, peak RSS {clean['peak_rss_mb']:.0f} MB")
        inter = asyncio.run(interactive_sample(min(args.interactive, args.requests)))
        crash = (
            crash_run(workdir, source, kills=args.kills, seed=args.seed, clean_s=clean["wall_s"])
            if args.kills
            else None
        )

    batch_per = s.cost_usd / s.n_requests
    rows = [
        ["requests", f"{s.n_requests:,}"],
        ["shared prefix (emulator tokens)", f"{clean['prefix_tokens']:,}"],
        ["input file", f"{size / 1e6:,.0f} MB"],
        ["batches (chunks)", f"{len(s.chunks)}"],
        ["clean run, submit → all results", f"{clean['wall_s']:.0f} s"],
        ["runner peak RSS", f"{clean['peak_rss_mb']:.0f} MB (target < 300 MB)"],
        ["results written exactly once", "yes" if not clean["problems"] else "NO"],
        ["batch cost", usd(s.cost_usd)],
        ["same usage at interactive prices", usd(s.interactive_usd)],
        ["saving", f"{usd(s.saving_usd)} ({s.saving_pct:.1f}%)"],
        ["cache hit rate (batch)", f"{s.cache_hit_rate:.2%}"],
        [
            f"interactive through the pipeline ({inter['requests']:,} of the same items)",
            f"{usd(inter['per_request_usd'], 6)}/request, hit rate {inter['cache_hit_rate']:.2%}",
        ],
        ["batch, per request", f"{usd(batch_per, 6)}/request"],
        [
            "batch / interactive, per request",
            f"{float(batch_per / inter['per_request_usd']):.3f}",
        ],
    ]
    crash_summary = summary(crash) if crash is not None else None
    if crash is not None and crash_summary is not None:
        c = crash_summary
        windows = ", ".join(f"{k}: {v}" for k, v in c["windows"].items())
        dup = f"{c['duplicates']} ({usd(Decimal(c['duplicate_usd']))})"
        verdict = "yes" if not crash.problems else f"NO: {crash.problems}"
        rows += [
            [f"crash run: SIGKILLs ({args.kills} rounds, seed {args.seed})", f"{c['kills']}"],
            ["  windows hit", windows],
            ["  chunks found on the server after a kill", f"{c['found_after_crash']}"],
            ["  chunks sent again (create never arrived)", f"{c['resent_after_crash']}"],
            ["  duplicate batches (reported spend)", dup],
            ["  final resume to the end", f"{crash.final_s:.0f} s"],
            ["  every result exactly once, no chunk twice", verdict],
        ]
    print_table("batch_large", ["measure", "value"], rows)
    data = {
        "requests": s.n_requests,
        "prefix_tokens": clean["prefix_tokens"],
        "input_bytes": size,
        "chunks": len(s.chunks),
        "clean_wall_s": clean["wall_s"],
        "peak_rss_mb": clean["peak_rss_mb"],
        "clean_problems": clean["problems"],
        "batch": s.to_json(),
        "interactive_sample": {k: str(v) for k, v in inter.items()},
        "crash": crash_summary,
        "crash_final_s": crash.final_s if crash else None,
    }
    ok = not clean["problems"] and (crash is None or not crash.problems)
    if not args.no_publish:
        publish(
            "batch_large",
            title="Batch jobs: a 100,000-request job, peak memory, crash recovery",
            command=" ".join(["python bench/batch_large.py", *sys.argv[1:]]),
            body_md=markdown_table(["measure", "value"], rows)
            + "\n\nThe emulator serves over HTTP from the benchmark process; the runner is a "
            "`tokenomy batch` subprocess, so its peak RSS is its own. The interactive row sends "
            "a sample of the same items one by one through the pipeline to a fresh emulator.",
            data=json.loads(json.dumps(data, default=str)),
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
