"""The Python face of batch jobs: ``submit(...)``, ``await job.wait()``, ``job.results()``.

::

    import tokenomy.batch

    job = tokenomy.batch.submit("questions.jsonl", name="triage", api_key=key)
    status = await job.wait()          # or job.wait_sync()
    for line in job.results():         # each line: {"custom_id", "result", "tokenomy"}
        ...
    job.close()

A job lives in the ledger database (``settings.ledger_url``) and its results in
``<data_dir>/batches/<job_id>/``; any process can open it again by id (:func:`open_job`) and
resume it. The API key is used for the calls and never stored (the job keeps a fingerprint, to
warn when another key resumes it).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import orjson

from tokenomy.config import Settings, load_settings
from tokenomy.core.keys import fingerprint
from tokenomy.core.records import RunRecord
from tokenomy.data import load_table
from tokenomy.errors import BatchError, InputError
from tokenomy.pipeline import SystemClock
from tokenomy.ports import Clock, UsageSink
from tokenomy.upstream import is_local_url
from tokenomy.wiring import open_ledger

from .intake import IntakeReport, read_job
from .jobs import DEFAULT_BATCH_BYTES, MAX_BATCH_REQUESTS, JobOptions, JobRow, new_job_id
from .results import iter_results
from .runner import PollPolicy, ProgressFn, Runner
from .source import check_template, load_template
from .status import JobStatus, job_status
from .store import JobStore
from .transport import open_batch_api

__all__ = ["BatchEnv", "Job", "asubmit", "list_jobs", "open_job", "submit"]

T = TypeVar("T")
Source = str | Path | Iterable[Any]


class BatchEnv:
    """What jobs run with: settings, the ledger (job store and meter), the model table, a clock."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        clock: Clock | None = None,
        sink: UsageSink | Literal["ledger"] | None = "ledger",
        transport: Any = None,
        poll: PollPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.ledger = open_ledger(self.settings)
        self.store = JobStore(self.ledger)
        self.table = load_table(self.settings.user_models_file)
        self.clock: Clock = clock or SystemClock()
        self.sink: UsageSink | None = self.ledger.writer() if sink == "ledger" else sink
        self.transport = transport
        self.poll = poll
        self.sleep = sleep or asyncio.sleep

    @property
    def jobs_dir(self) -> Path:
        return self.settings.data_dir / "batches"

    def runner(self, job: JobRow, *, api_key: str | None) -> Runner:
        api_key = require_key(job, api_key)
        api = open_batch_api(
            job.upstream,
            api_key=api_key,
            offline=self.settings.offline,
            transport=self.transport,
            sleep=self.sleep,
        )
        return Runner(
            store=self.store,
            job_id=job.job_id,
            api=api,
            table=self.table,
            sink=self.sink,
            clock=self.clock,
            api_key=api_key,
            policy=self.poll,
            sleep=self.sleep,
        )

    def close(self) -> None:
        self.ledger.close()

    def __enter__(self) -> BatchEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Job:
    """A batch job by id: its status, its results, and the loop that finishes it."""

    def __init__(
        self, job_id: str, env: BatchEnv, *, api_key: str | None = None, owns_env: bool = False
    ) -> None:
        self.job_id = job_id
        self.env = env
        self._api_key = api_key
        self._owns_env = owns_env
        env.store.get(job_id)  # a clear error for an unknown id

    def close(self) -> None:
        """Release the ledger connection (only when this job opened it)."""
        if self._owns_env:
            self.env.close()

    def __enter__(self) -> Job:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def row(self) -> JobRow:
        return self.env.store.get(self.job_id)

    def status(self) -> JobStatus:
        """Progress and money so far, from the ledger (no API call)."""
        return job_status(self.env.store, self.row(), now=self.env.clock.now())

    async def wait(self, *, on_progress: ProgressFn | None = None) -> JobStatus:
        """Run the job to its end: submit, poll, collect, retry, reconcile after a crash."""
        return await self.resume(wait=True, on_progress=on_progress)

    def wait_sync(self, *, on_progress: ProgressFn | None = None) -> JobStatus:
        return _run_sync(lambda: self.wait(on_progress=on_progress))

    async def resume(
        self, *, wait: bool = True, on_progress: ProgressFn | None = None
    ) -> JobStatus:
        """Go on from wherever the job stopped; with ``wait=False``, return once all is sent."""
        job = self.row()
        if job.state == "validating":
            require_key(job, self._api_key)  # before the work, not after it
            _intake(self.env, job, resume=True)
            job = self.row()
        if job.state == "failed":
            # The API refused a chunk (its message is the job's error); the caller fixed the
            # cause: the refused chunk is `planned` again, so the job simply goes on.
            self.env.store.update_job(
                job.job_id, now=self.env.clock.now(), state="submitting", error=None
            )
            job = self.row()
        if not job.open:
            return self.status()
        self._check_key(job)
        runner = self.env.runner(job, api_key=self._api_key)
        try:
            return await runner.run(wait=wait, on_progress=on_progress)
        finally:
            await runner.api.aclose()

    async def cancel(self) -> JobStatus:
        """Send nothing more and cancel the batches in flight (collect with :meth:`wait`)."""
        job = self.row()
        if not job.open:
            return self.status()
        runner = self.env.runner(job, api_key=self._api_key)
        try:
            return await runner.cancel()
        finally:
            await runner.api.aclose()

    def iter_lines(self) -> Iterator[bytes]:
        """The final result lines (JSON bytes), one per request, read from disk."""
        return iter_results(self.env.store, self.row())

    def results(self) -> Iterator[dict[str, Any]]:
        """The final result of every request: ``{"custom_id", "result", "tokenomy"}``."""
        for line in self.iter_lines():
            item: dict[str, Any] = orjson.loads(line)
            yield item

    def write_results(self, path: Path) -> int:
        """Write the results to ``path`` (JSONL); returns the number of lines."""
        n = 0
        tmp = path.with_name(path.name + ".part")
        with tmp.open("wb") as out:
            for line in self.iter_lines():
                out.write(line + b"\n")
                n += 1
        tmp.replace(path)
        return n

    def _check_key(self, job: JobRow) -> None:
        fp = fingerprint(self._api_key)
        if job.api_key_fingerprint and fp and fp != job.api_key_fingerprint:
            raise BatchError(
                f"batch job {job.job_id!r} was submitted with API key {job.api_key_fingerprint} "
                f"but this is {fp}: batches belong to a workspace, so resume it with the key "
                "that submitted it"
            )


def require_key(job: JobRow, api_key: str | None) -> str:
    if not api_key:
        raise BatchError(
            f"batch job {job.job_id!r} needs an API key to call the batch endpoints: "
            "set ANTHROPIC_API_KEY or pass --api-key (api_key= in Python)"
        )
    return api_key


def _run_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_await(make))
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(_await(make))
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="tokenomy-batch")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


async def _await(make: Callable[[], Awaitable[T]]) -> T:
    return await make()


def _spool(items: Iterable[Any], path: Path) -> None:
    """Write a Python iterable as JSONL (one item at a time: bounded memory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for item in items:
            out.write(orjson.dumps(item))
            out.write(b"\n")


def _intake(env: BatchEnv, job: JobRow, *, resume: bool = False) -> IntakeReport:
    """Read a job's input into the store (``resume``: go on after a crash cut it short)."""
    try:
        report = read_job(
            Path(job.source_path),
            store=env.store,
            job_id=job.job_id,
            table=env.table,
            options=job.options,
            template=job.template,
            resume=resume,
        )
    except BatchError:
        env.store.delete_job(job.job_id)
        if job.source_owned:
            shutil.rmtree(Path(job.results_dir), ignore_errors=True)
        raise
    env.store.update_job(
        job.job_id,
        now=env.clock.now(),
        state="submitting",
        n_requests=report.n_requests,
        n_skipped=report.n_skipped,
        skipped=[p.to_json() for p in report.skipped],
    )
    return report


def _options(
    *,
    max_per_batch: int | None,
    max_batch_bytes: int | None,
    max_attempts: int,
    cache_ttl: Literal["1h", "5m", "off"],
    warmup: bool,
    skip_invalid: bool,
    max_inflight_requests: int | None,
) -> JobOptions:
    return JobOptions(
        max_per_batch=max_per_batch or MAX_BATCH_REQUESTS,
        max_batch_bytes=max_batch_bytes or DEFAULT_BATCH_BYTES,
        max_attempts=max_attempts,
        cache_ttl=cache_ttl,
        warmup=warmup,
        skip_invalid=skip_invalid,
        max_inflight_requests=max_inflight_requests,
    )


async def asubmit(
    source: Source,
    *,
    env: BatchEnv,
    api_key: str | None,
    name: str | None = None,
    template: Path | Mapping[str, Any] | None = None,
    max_per_batch: int | None = None,
    max_batch_bytes: int | None = None,
    max_attempts: int = 3,
    cache_ttl: Literal["1h", "5m", "off"] = "1h",
    warmup: bool = False,
    skip_invalid: bool = False,
    max_inflight_requests: int | None = None,
    send: bool = True,
) -> Job:
    """Check and record a job, then send its batches (``send=False``: record only)."""
    options = _options(
        max_per_batch=max_per_batch,
        max_batch_bytes=max_batch_bytes,
        max_attempts=max_attempts,
        cache_ttl=cache_ttl,
        warmup=warmup,
        skip_invalid=skip_invalid,
        max_inflight_requests=max_inflight_requests,
    )
    if send and not api_key:
        raise BatchError(
            "submitting a batch job needs an API key: set ANTHROPIC_API_KEY or pass --api-key "
            "(api_key= in Python)"
        )
    if template is None:
        tpl = None
    elif isinstance(template, Mapping):
        tpl = check_template(dict(template))
    else:
        tpl = load_template(Path(template))
    job_id = new_job_id()
    job_dir = env.jobs_dir / job_id
    if isinstance(source, str | Path):
        path = Path(source).resolve()
        if not path.is_file():
            raise InputError(f"job file {str(source)!r} does not exist")
        owned = False
        default_name = path.stem
    else:
        path = job_dir / "input.jsonl"
        _spool(source, path)
        owned = True
        default_name = "python-job"
    st = path.stat()
    upstream = env.settings.upstream_url
    if env.settings.offline and not is_local_url(upstream) and env.transport is None:
        raise BatchError(
            f"offline mode: refusing to send batches to {upstream!r}; point TOKENOMY_UPSTREAM at "
            "the emulator or unset TOKENOMY_OFFLINE"
        )
    now = env.clock.now()
    env.store.create_job(
        {
            "job_id": job_id,
            "name": name or default_name,
            "state": "validating",
            "created_at": now,
            "updated_at": now,
            "source_path": str(path),
            "source_owned": owned,
            "source_size": st.st_size,
            "source_mtime_ns": st.st_mtime_ns,
            "template": tpl,
            "options": options.to_json(),
            "n_requests": 0,
            "n_skipped": 0,
            "skipped": [],
            "api_key_fingerprint": fingerprint(api_key),
            "upstream": upstream,
            "run_id": f"run_{job_id}",
            "results_dir": str(job_dir),
        }
    )
    job = env.store.get(job_id)
    _intake(env, job)
    if env.sink is not None:
        env.sink.record_run(
            RunRecord(
                run_id=job.run_id,
                name=job.name,
                started_at=now,
                tags={"job_id": job_id},
                source="batch",
                external_id=job_id,
            )
        )
    handle = Job(job_id, env, api_key=api_key)
    if send:
        await handle.resume(wait=False)
    return handle


def submit(source: Source, **kwargs: Any) -> Job:
    """:func:`asubmit` from sync code; ``env`` defaults to one built from the settings."""
    env = kwargs.pop("env", None)
    own = env is None
    env = env or BatchEnv()
    try:
        job = _run_sync(lambda: asubmit(source, env=env, **kwargs))
    except BaseException:
        if own:
            with contextlib.suppress(Exception):
                env.close()
        raise
    job._owns_env = own
    return job


def open_job(job_id: str, *, env: BatchEnv | None = None, api_key: str | None = None) -> Job:
    """A job recorded earlier, by id (any process may resume it); close it when done."""
    if env is not None:
        return Job(job_id, env, api_key=api_key)
    own = BatchEnv()
    try:
        return Job(job_id, own, api_key=api_key, owns_env=True)
    except BaseException:
        own.close()
        raise


def list_jobs(*, env: BatchEnv | None = None, limit: int = 50) -> list[JobStatus]:
    """The newest jobs first, with their status."""
    use = env or BatchEnv()
    try:
        now = use.clock.now()
        return [job_status(use.store, job, now=now) for job in use.store.list_jobs(limit=limit)]
    finally:
        if env is None:
            use.close()
