"""The optional warm-up: one request with the shared prefix, answered before the bulk is sent.

The docs' pattern for caching in batches (reference §3.6): write the shared prefix first, then
submit the rest, so that the batch's requests read it instead of racing to write it. The
warm-up is the job's first request sent interactively — through the pipeline, metered in the
job's run — as a cache pre-warm (``max_tokens: 0``: the prefix is written, no output is billed;
§1.6), or with ``max_tokens: 1`` where a pre-warm is refused (extended thinking, a forced tool
choice, a structured output format).

A failed warm-up is recorded and the job goes on: it only ever saves money.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from tokenomy.errors import TokenomyError
from tokenomy.pipeline import CallContext, Pipeline, PipelineConfig, read_message

from .planning import plan_request
from .source import RawLine, parse_line, read_span

if TYPE_CHECKING:
    from .jobs import JobRow
    from .runner import Runner

__all__ = ["prewarm_body", "run_warmup"]


def _prewarm_allowed(params: Mapping[str, Any]) -> bool:
    thinking = params.get("thinking")
    if isinstance(thinking, Mapping) and thinking.get("type") == "enabled":
        return False
    choice = params.get("tool_choice")
    if isinstance(choice, Mapping) and choice.get("type") in ("any", "tool"):
        return False
    config = params.get("output_config")
    return not (isinstance(config, Mapping) and config.get("format") is not None)


def prewarm_body(params: Mapping[str, Any]) -> dict[str, Any]:
    """The warm-up request for ``params`` (planned): same prompt, no output billed if allowed."""
    body = {k: v for k, v in params.items() if k != "stream"}
    body["max_tokens"] = 0 if _prewarm_allowed(params) else 1
    return body


async def run_warmup(runner: Runner, job: JobRow) -> None:
    """Send the warm-up request and record it on the job (its cost, or why it failed)."""
    first = next(iter(runner.store.requests(job.job_id)), None)
    if first is None:
        return
    try:
        with open(job.source_path, "rb") as fh:
            data = read_span(fh, first.byte_offset, first.byte_length)
        parsed = parse_line(RawLine(first.line, first.byte_offset, data), template=job.template)
        planned = plan_request(
            parsed.params,
            table=runner.table,
            shared_end=first.shared_end,
            ttl=job.options.cache_ttl,
        )
    except (OSError, TokenomyError) as exc:
        runner.store.update_job(
            job.job_id, now=runner.clock.now(), warmup={"error": f"not sent: {exc}"}
        )
        return
    pipeline = Pipeline(
        table=runner.table,
        clock=runner.clock,
        sink=runner.sink,
        config=PipelineConfig(optimize=False, source="batch"),
    )
    run = pipeline.start_run(
        job.name,
        run_id=job.run_id,
        source="batch",
        external_id=job.job_id,
        tags={"job_id": job.job_id},
    )
    prepared = pipeline.prepare(
        CallContext(
            method="POST",
            path="/v1/messages",
            body=orjson.dumps(prewarm_body(planned.params)),
            api_key=runner.api_key,
            optimize=False,
        ),
        run=run,
    )
    try:
        response = await runner.api.message(prepared.body)
    except TokenomyError as exc:
        pipeline.finish(prepared, status=0, facts=read_message(0, b""), error=str(exc))
        runner.store.update_job(job.job_id, now=runner.clock.now(), warmup={"error": str(exc)})
        return
    pipeline.started(prepared)
    facts = read_message(response.status, response.body)
    record = pipeline.finish(prepared, status=response.status, facts=facts)
    usage = facts.usage
    total = record.cost.total_usd if record is not None and record.cost is not None else None
    runner.store.update_job(
        job.job_id,
        now=runner.clock.now(),
        warmup={
            "status": response.status,
            "call_id": record.call_id if record is not None else None,
            "cost_usd": str(total) if total is not None else "0",
            "cache_write_tokens": usage.cache_write_tokens if usage else 0,
            "cache_read_tokens": usage.cache_read_tokens if usage else 0,
            "error": facts.error_message,
        },
    )
    runner.notes.append(f"warm-up sent (HTTP {response.status})")
