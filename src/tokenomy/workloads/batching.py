"""The `full` configuration of bulk workloads: the items go through Message Batches.

The same requests the interactive runner would send (same system prompt, same items, same
headers) become one batch job run by :mod:`tokenomy.batch` against the workload's emulator:
the job's shared prefix is marked with a breakpoint of the workload's ``batch_cache_ttl`` (the
runner's default, 1 hour, unless the workload says otherwise), it is chunked, submitted, polled on
the emulator's virtual clock, collected and metered at batch prices. The answers are checked
like the interactive ones.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tokenomy.batch import BatchEnv, PollPolicy, asubmit
from tokenomy.config import Settings
from tokenomy.pipeline import Run
from tokenomy.ports import Clock, UsageSink
from tokenomy.workloads.build import Context, item_message

__all__ = ["BatchOutcome", "run_items_as_batch"]


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What the batch job cost and answered."""

    calls: int
    cost_usd: Decimal
    input_tokens: int
    cache_read_tokens: int
    output_tokens: int
    failures: list[str]


async def run_items_as_batch(
    ctx: Context,
    *,
    app: Any,
    api_key: str,
    run: Run,
    clock: Clock,
    advance: Callable[[float], None],
    sink: UsageSink | None,
) -> BatchOutcome:
    """Send ``ctx``'s items as one batch job through the emulator ``app``; check the answers."""
    w = ctx.workload
    params_base: dict[str, Any] = {
        "model": w.model,
        "max_tokens": w.max_tokens,
        "system": ctx.system,
    }
    if ctx.tools:
        params_base["tools"] = ctx.tools
    items = [
        {
            "custom_id": f"item-{i + 1}",
            "params": {**params_base, "messages": [item_message(ctx, i)]},
        }
        for i in range(len(ctx.items))
    ]

    async def sleep(seconds: float) -> None:
        advance(seconds)  # the runner waits on the emulator's clock: no real sleeping

    with tempfile.TemporaryDirectory(prefix="tokenomy-workload-batch-") as tmp:
        settings = Settings(
            data_dir=Path(tmp), config_dir=Path(tmp), upstream_url="http://emulator"
        )
        env = BatchEnv(
            settings,
            clock=clock,
            sink=sink,
            transport=httpx.ASGITransport(app=app),
            poll=PollPolicy(initial_s=30.0, max_s=120.0, jitter=0.0),
            sleep=sleep,
        )
        try:
            job = await asubmit(
                items,
                env=env,
                api_key=api_key,
                name=f"{w.name} (batch)",
                cache_ttl=w.batch_cache_ttl,
            )
            status = await job.wait()
            answers = {r["custom_id"]: _text(r) for r in job.results()}
        finally:
            env.close()
    failures: list[str] = []
    for i, (_, expected) in enumerate(ctx.items):
        text = answers.get(f"item-{i + 1}", "")
        failures += [
            f"item {i + 1}: answer lacks {k}={v}"
            for k, v in expected.items()
            if f"⟦answer:{k}={v}⟧" not in text
        ]
    t = status.tally
    run.tags["batch_job"] = status.job_id
    return BatchOutcome(
        calls=t.succeeded + t.errored + t.expired + t.canceled,
        cost_usd=status.total_usd,
        input_tokens=t.total_input_tokens,
        cache_read_tokens=t.cache_read_tokens,
        output_tokens=t.output_tokens,
        failures=failures[:10]
        + ([f"… and {len(failures) - 10} more"] if len(failures) > 10 else []),
    )


def _text(result_line: dict[str, Any]) -> str:
    result = result_line.get("result") or {}
    message = result.get("message") or {}
    return "".join(b.get("text", "") for b in message.get("content", []) if isinstance(b, dict))
