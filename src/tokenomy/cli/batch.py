"""``tokenomy batch``: durable Message Batches jobs (logic: :mod:`tokenomy.batch`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tokenomy.cli import _render
from tokenomy.cli._app import app
from tokenomy.errors import InputError

if TYPE_CHECKING:  # the runner pulls in the ledger and httpx: imported by the commands
    from tokenomy.batch import BatchEnv, Job, JobStatus

batch = typer.Typer(
    name="batch",
    help="Batch jobs for work nobody waits on: half price, cached, and safe to kill.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(batch, name="batch")

ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        help="API key for the batch endpoints (default: ANTHROPIC_API_KEY; never stored, the "
        "job keeps a fingerprint).",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
PollInterval = Annotated[
    float, typer.Option("--poll-interval", min=0, help="First wait between polls, seconds.")
]
PollMax = Annotated[float, typer.Option("--poll-max", min=0, help="Longest wait between polls.")]
Settle = Annotated[
    float,
    typer.Option(
        "--reconcile-settle",
        min=0,
        help="After a crash, how long a create with no batch on the server may still appear.",
    ),
]
JobArg = Annotated[str, typer.Argument(help="The job id (tokenomy batch list shows them).")]


def _env(interval: float | None = None, poll_max: float = 60.0, settle: float = 30.0) -> BatchEnv:
    from tokenomy.batch import BatchEnv, PollPolicy

    if interval is None:
        return BatchEnv()
    return BatchEnv(
        poll=PollPolicy(
            initial_s=interval, max_s=max(poll_max, interval), reconcile_settle_s=settle
        )
    )


def _open(job_id: str, env: BatchEnv, *, api_key: str | None = None) -> Job:
    from tokenomy.batch import open_job

    return open_job(job_id, env=env, api_key=_key(env, api_key))


def _key(env: BatchEnv, given: str | None) -> str | None:
    """The key given on the command line, else the one in the settings (ANTHROPIC_API_KEY)."""
    return given or env.settings.api_key()


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA ?"
    if seconds < 90:
        return f"ETA {seconds:.0f}s"
    if seconds < 5400:
        return f"ETA {seconds / 60:.0f}m"
    return f"ETA {seconds / 3600:.1f}h"


def _info(s: JobStatus) -> str:
    r = s.requests
    return (
        f"errored {r['errored']} · expired {r['expired']} · {_render.usd(s.total_usd)} so far · "
        + ("done" if s.finished else _eta(s.eta_s))
    )


def _show(s: JobStatus, *, json: bool, chunks: bool = True) -> None:
    if json:
        _render.json_out(s.to_json())
        return
    r = s.requests
    saving = f" ({s.saving_pct:.0f}% off)" if s.saving_pct is not None else ""
    rows: dict[str, Any] = {
        "job": f"{s.job_id}  {s.name}",
        "state": s.state + (f" — {s.error}" if s.error else ""),
        "requests": (
            f"{s.n_requests:,}: {r['succeeded']:,} succeeded, {r['errored']:,} errored, "
            f"{r['expired']:,} expired, {r['canceled']:,} canceled, "
            f"{r['pending'] + r['queued']:,} in progress"
            + (f"; {s.retried_requests:,} needed a retry" if s.retried_requests else "")
        ),
        "cost (batch)": _render.usd(s.cost_usd, places=6),
        "same, interactive": _render.usd(s.interactive_usd, places=6),
        "saving": _render.usd(s.saving_usd, places=6) + saving,
        "cache hit rate": _render.pct(s.cache_hit_rate) or "n/a",
    }
    if s.unmarked_requests:
        rows["not cached"] = (
            f"{s.unmarked_requests:,} request(s) carry no cache breakpoint: nothing shared "
            "with the others, or a shared prefix below the model's minimum cacheable length"
        )
    if s.warmup_usd:
        rows["warm-up"] = _render.usd(s.warmup_usd, places=6)
    if s.duplicate_batches:
        rows["duplicate spend"] = (
            f"{_render.usd(s.duplicate_usd, places=6)} in {s.duplicate_batches} batch(es) "
            "created twice after a crash (their results were not used)"
        )
    if s.n_skipped:
        rows["skipped"] = f"{s.n_skipped} invalid line(s) (--json lists them)"
    rows["results"] = str(s.results_path)
    if not s.finished and s.eta_s is not None:
        rows["eta"] = _eta(s.eta_s)
    _render.kv(rows)
    if chunks and s.chunks:
        _render.table(
            None,
            ["chunk", "kind", "state", "batch", "requests", "ok", "err", "exp", "cost", "hit"],
            [
                [
                    c.chunk_no,
                    c.kind,
                    c.state,
                    c.batch_id or "",
                    f"{c.n_requests:,}",
                    c.succeeded,
                    c.errored,
                    c.expired,
                    _render.usd(c.cost_usd, places=6) if c.cost_usd is not None else "",
                    _render.pct(c.cache_hit_rate),
                ]
                for c in s.chunks
            ],
            right=("chunk", "requests", "ok", "err", "exp", "cost", "hit"),
        )


def _drive(job: Job, *, wait: bool, json: bool) -> JobStatus:
    """Run the job's loop, with a progress bar unless printing JSON."""
    if json:
        return asyncio.run(job.resume(wait=wait))
    total = job.row().n_requests
    with _render.progress(f"{job.job_id}", total=total) as update:

        def on_progress(s: JobStatus) -> None:
            update(s.done, _info(s))

        status = asyncio.run(job.resume(wait=wait, on_progress=on_progress))
        on_progress(status)
        return status


def _with(env: BatchEnv, fn: Callable[[], None]) -> None:
    try:
        fn()
    finally:
        env.close()


@batch.command("submit")
def submit_cmd(
    file: Annotated[Path, typer.Argument(help="JSONL: one {custom_id, params} per line.")],
    *,
    name: Annotated[str | None, typer.Option(help="A name for the job.")] = None,
    template: Annotated[
        Path | None,
        typer.Option(help="A request with {{field}} placeholders; FILE then holds items."),
    ] = None,
    max_per_batch: Annotated[
        int | None, typer.Option(min=1, max=100_000, help="Requests per batch (API max 100,000).")
    ] = None,
    max_batch_bytes: Annotated[
        int | None, typer.Option(help="Bytes per batch body (default 32 MiB; API max 256 MB).")
    ] = None,
    max_attempts: Annotated[
        int, typer.Option(min=1, max=20, help="Attempts per request (errored/expired retried).")
    ] = 3,
    cache_ttl: Annotated[
        str, typer.Option(help="TTL of the shared-prefix breakpoints: 1h, 5m or off.")
    ] = "1h",
    warmup: Annotated[
        bool, typer.Option(help="Write the shared prefix with one request before the bulk.")
    ] = False,
    skip_invalid: Annotated[
        bool, typer.Option(help="Send the valid lines and report the invalid ones.")
    ] = False,
    max_inflight: Annotated[
        int | None, typer.Option(min=1, help="At most this many requests waiting in the API.")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Then wait until the job ends.")] = False,
    json: Json = False,
    api_key: ApiKey = None,
    poll_interval: PollInterval = 5.0,
    poll_max: PollMax = 60.0,
    reconcile_settle: Settle = 30.0,
) -> None:
    """Check FILE, split it into batches within the API's limits, submit; print the job id."""
    if cache_ttl not in ("1h", "5m", "off"):
        raise InputError(f"--cache-ttl must be 1h, 5m or off, got {cache_ttl!r}")
    env = _env(poll_interval, poll_max, reconcile_settle)

    def run() -> None:
        from tokenomy.batch import asubmit

        job = asyncio.run(
            asubmit(
                file,
                env=env,
                api_key=_key(env, api_key),
                name=name,
                template=template,
                max_per_batch=max_per_batch,
                max_batch_bytes=max_batch_bytes,
                max_attempts=max_attempts,
                cache_ttl="1h" if cache_ttl == "1h" else "5m" if cache_ttl == "5m" else "off",
                warmup=warmup,
                skip_invalid=skip_invalid,
                max_inflight_requests=max_inflight,
            )
        )
        status = _drive(job, wait=True, json=json) if wait else job.status()
        for problem in status.skipped[:20]:
            _render.warn(
                f"skipped line {problem.get('line')}"
                + (f" ({problem['custom_id']!r})" if problem.get("custom_id") else "")
                + f": {problem.get('reason')}"
            )
        if json:
            _render.json_out(status.to_json())
            return
        sent = sum(1 for c in status.chunks if c.batch_id)
        _render.line(
            f"{status.job_id}: {status.n_requests:,} requests in {len(status.chunks)} batch(es), "
            f"{sent} submitted"
            + (f"; {status.n_skipped} invalid line(s) skipped" if status.n_skipped else "")
        )
        if wait:
            _show(status, json=False)
        else:
            _render.line(f"next: tokenomy batch wait {status.job_id}")

    _with(env, run)


@batch.command("status")
def status_cmd(job_id: JobArg, *, json: Json = False) -> None:
    """Progress and cost of a job, from the ledger (no API call)."""
    env = _env()
    _with(env, lambda: _show(_open(job_id, env).status(), json=json))


@batch.command("wait")
def wait_cmd(
    job_id: JobArg,
    *,
    json: Json = False,
    api_key: ApiKey = None,
    poll_interval: PollInterval = 5.0,
    poll_max: PollMax = 60.0,
    reconcile_settle: Settle = 30.0,
) -> None:
    """Poll until the job ends (progress bar), collecting and retrying as batches finish."""
    env = _env(poll_interval, poll_max, reconcile_settle)
    _resume(env, job_id, wait=True, json=json, api_key=api_key)


@batch.command("resume")
def resume_cmd(
    job_id: JobArg,
    *,
    wait: Annotated[bool, typer.Option(help="Wait until the job ends (else: until sent).")] = True,
    json: Json = False,
    api_key: ApiKey = None,
    poll_interval: PollInterval = 5.0,
    poll_max: PollMax = 60.0,
    reconcile_settle: Settle = 30.0,
) -> None:
    """Go on with a job whose process stopped: reconcile, send what is left, collect."""
    env = _env(poll_interval, poll_max, reconcile_settle)
    _resume(env, job_id, wait=wait, json=json, api_key=api_key)


def _resume(env: BatchEnv, job_id: str, *, wait: bool, json: bool, api_key: str | None) -> None:
    """Run a job's loop (until it ends, or until sent), show where it stands, close ``env``."""

    def run() -> None:
        job = _open(job_id, env, api_key=api_key)
        _show(_drive(job, wait=wait, json=json), json=json)

    _with(env, run)


@batch.command("cancel")
def cancel_cmd(job_id: JobArg, *, json: Json = False, api_key: ApiKey = None) -> None:
    """Send nothing more and cancel the batches in flight; 'wait' then collects what ran."""
    env = _env()

    def run() -> None:
        status = asyncio.run(_open(job_id, env, api_key=api_key).cancel())
        if json:
            _render.json_out(status.to_json())
            return
        _render.line(f"{job_id}: {status.state}")
        if not status.finished:
            _render.line(f"next: tokenomy batch wait {job_id}  (collects the partial results)")

    _with(env, run)


@batch.command("results")
def results_cmd(
    job_id: JobArg,
    *,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write to this file, not stdout.")
    ] = None,
    partial: Annotated[
        bool, typer.Option(help="Print the results collected so far of an unfinished job.")
    ] = False,
) -> None:
    """One line per request, its final result, keeping your custom_id."""
    env = _env()

    def run() -> None:
        job = _open(job_id, env)
        status = job.status()
        if not status.finished and not partial:
            raise InputError(
                f"job {job_id!r} is {status.state} ({status.done:,} of {status.n_requests:,} "
                f"requests done); 'tokenomy batch wait {job_id}' first, or pass --partial"
            )
        if output is not None:
            n = job.write_results(output)
            _render.line(f"wrote {n:,} result lines to {output}")
        else:
            _render.raw_lines(job.iter_lines())

    _with(env, run)


@batch.command("list")
def list_cmd(
    *,
    json: Json = False,
    limit: Annotated[int, typer.Option(min=1, help="Show at most N jobs.")] = 20,
) -> None:
    """The newest jobs first."""
    env = _env()

    def run() -> None:
        from tokenomy.batch import list_jobs

        jobs = list_jobs(env=env, limit=limit)
        if json:
            _render.json_out({"jobs": [j.to_json() for j in jobs]})
            return
        if not jobs:
            _render.line("No batch jobs yet: tokenomy batch submit FILE.jsonl")
            return
        _render.table(
            None,
            ["job", "name", "state", "created (UTC)", "requests", "done", "cost", "saving", "hit"],
            [
                [
                    j.job_id,
                    j.name,
                    j.state,
                    j.created_at.strftime("%Y-%m-%d %H:%M"),
                    f"{j.n_requests:,}",
                    f"{j.done:,}",
                    _render.usd(j.total_usd, places=4),
                    _render.usd(j.saving_usd, places=4) if j.saving_usd else "",
                    _render.pct(j.cache_hit_rate),
                ]
                for j in jobs
            ],
            right=("requests", "done", "cost", "saving", "hit"),
        )

    _with(env, run)
