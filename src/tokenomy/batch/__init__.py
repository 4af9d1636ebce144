"""Batch jobs: durable, resumable Message Batches for work nobody waits on.

Half price on every token: a job (a JSONL file of requests, or items plus a template) is
checked, planned for caching (the shared prefix marked with a 1h TTL), split into batches
within the API's limits, submitted, polled, collected to disk and metered — and it survives a
crash at any moment without sending a chunk twice or losing a result.

- :func:`submit` / :func:`asubmit` — record and send a job; returns a :class:`Job`;
- :meth:`Job.wait` — run it to the end; :meth:`Job.results` — one final line per request;
- :func:`open_job`, :func:`list_jobs` — jobs recorded earlier, by any process.

See ``docs/batches.md`` (the workflow) and ``docs/design/batches.md`` (why it is safe).
"""

from tokenomy.batch.api import BatchEnv, Job, asubmit, list_jobs, open_job, submit
from tokenomy.batch.jobs import JobOptions
from tokenomy.batch.runner import PollPolicy
from tokenomy.batch.status import ChunkReport, JobStatus

__all__ = [
    "BatchEnv",
    "ChunkReport",
    "Job",
    "JobOptions",
    "JobStatus",
    "PollPolicy",
    "asubmit",
    "list_jobs",
    "open_job",
    "submit",
]
