"""Play a workload out through the real pipeline against an in-process emulator.

The runner is the agent: it sends each request through ``tokenomy.AsyncAnthropic`` (so every
call takes the same funnel as a user's), executes the tools the emulated model calls (fetching
generated artifacts, running sub-agents), waits the workload's gaps on the emulator's virtual
clock, and checks the final answers against the facts it planted.

Configurations (``docs/workloads.md``):

- ``naive``: no cache markers at all, the pipeline meters only — what a plain client pays;
- ``cache``: the levers that never change what the model sees — the cache planner and
  stabilizer on top of the caller's own markers;
- ``full``: ``cache`` plus Message Batches for work nobody waits on, and the stabilizer's safe
  fix; levers that change content (compaction, routing) join here when they land, gated by
  the checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import httpx2

from tokenomy.client import AsyncAnthropic
from tokenomy.core.cache_plan import PlannerConfig
from tokenomy.data import builtin_table
from tokenomy.data.table import ModelTable
from tokenomy.emulator import EmulatorConfig, LatencyModel, create_app
from tokenomy.errors import WorkloadError
from tokenomy.pipeline import FollowClock, Pipeline, PipelineConfig, Run
from tokenomy.ports import UsageSink
from tokenomy.workloads.batching import run_items_as_batch
from tokenomy.workloads.build import Context, build_context, item_message, mark_newest, turn_message
from tokenomy.workloads.spec import Workload

__all__ = ["CONFIGS", "Config", "WorkloadResult", "run_workload"]

Config = Literal["naive", "cache", "full"]
CONFIGS: tuple[Config, ...] = ("naive", "cache", "full")
BRAIN_HEADER = "x-tokenomy-brain"
FETCH_TOOL_HEADER = "x-tokenomy-fetch-tool"
MAX_STEPS = 64
API_KEY = "sk-ant-workload-0000"


@dataclass(frozen=True, slots=True)
class WorkloadResult:
    """One workload in one configuration."""

    workload: str
    config: Config
    mode: Literal["interactive", "batch"]
    calls: int
    cost_usd: Decimal
    # None in batch mode: the ideal is defined for calls the pipeline sees one by one
    ideal_usd: Decimal | None
    cache_read_tokens: int
    input_tokens: int
    output_tokens: int
    success: bool
    failures: tuple[str, ...]
    emulated_s: float
    predictions_agree: int
    predictions_checked: int
    run_id: str

    @property
    def efficiency(self) -> Decimal | None:
        if self.ideal_usd is None or self.cost_usd <= 0:
            return None
        return self.ideal_usd / self.cost_usd

    @property
    def hit_rate(self) -> float | None:
        return self.cache_read_tokens / self.input_tokens if self.input_tokens else None


@dataclass(slots=True)
class _Env:
    workload: Workload
    config: Config
    ctx: Context
    client: AsyncAnthropic
    pipeline: Pipeline
    advance: Callable[[float], None]
    tool_calls: dict[str, int] = field(default_factory=dict)


def _pipeline_config(w: Workload, config: Config) -> PipelineConfig:
    if config == "naive":
        return PipelineConfig(optimize=False, source="workload")
    return PipelineConfig(
        optimize=True,
        planner=PlannerConfig(expected_gap_s=w.expected_gap_s),
        move_volatile_system=config == "full",
        source="workload",
    )


async def run_workload(
    w: Workload,
    *,
    config: Config,
    sink: UsageSink | None = None,
    latency: bool = True,
    table: ModelTable | None = None,
) -> WorkloadResult:
    """Run ``w`` in ``config`` against a fresh in-process emulator; never raises on a failed
    check (it is reported in the result)."""
    if config not in CONFIGS:
        raise WorkloadError(f"unknown configuration {config!r}; choose naive, cache or full")
    table = table or builtin_table()
    if table.find(w.model) is None:
        raise WorkloadError(f"workload {w.name}: model {w.model!r} is not in the model table")
    app = create_app(
        EmulatorConfig(
            brain="facts",
            latency=LatencyModel(mode="virtual" if latency else "off"),
            seed=w.seed,
        )
    )
    emulator = app.state.emulator
    try:
        pipeline = Pipeline(
            table=table,
            clock=FollowClock(emulator.clock.now_s),
            sink=sink,
            config=_pipeline_config(w, config),
        )
        http = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://emulator"
        )
        client = AsyncAnthropic(
            api_key=API_KEY,
            base_url="http://emulator",
            http_client=http,
            pipeline=pipeline,
            max_retries=0,
        )
        ctx = build_context(w, caller_markers=config != "naive")
        env = _Env(w, config, ctx, client, pipeline, emulator.clock.advance)
        start_s = emulator.clock.now_s()
        run = pipeline.start_run(w.name, tags={"workload": w.name, "config": config})
        with run:
            if w.items is not None and config == "full" and w.batchable:
                outcome = await run_items_as_batch(
                    ctx,
                    app=app,
                    api_key=API_KEY,
                    run=run,
                    clock=pipeline.clock,
                    advance=emulator.clock.advance,
                    sink=sink,
                )
                await http.aclose()
                return WorkloadResult(
                    workload=w.name,
                    config=config,
                    mode="batch",
                    calls=outcome.calls,
                    cost_usd=outcome.cost_usd,
                    ideal_usd=None,
                    cache_read_tokens=outcome.cache_read_tokens,
                    input_tokens=outcome.input_tokens,
                    output_tokens=outcome.output_tokens,
                    success=not outcome.failures,
                    failures=tuple(outcome.failures),
                    emulated_s=emulator.clock.now_s() - start_s,
                    predictions_agree=0,
                    predictions_checked=0,
                    run_id=run.run_id,
                )
            if w.items is not None:
                failures = await _run_items(env)
            else:
                failures = await _run_conversation(env, run)
        failures += _check_tools(env)
        await http.aclose()
        return _result(
            w,
            config=config,
            mode="interactive",
            run=run,
            failures=failures,
            emulated_s=emulator.clock.now_s() - start_s,
        )
    finally:
        emulator.close()


def _result(
    w: Workload,
    *,
    config: Config,
    mode: Literal["interactive", "batch"],
    run: Run,
    failures: list[str],
    emulated_s: float,
) -> WorkloadResult:
    runs = _tree(run)
    return WorkloadResult(
        workload=w.name,
        config=config,
        mode=mode,
        calls=sum(r.state.calls for r in runs),
        cost_usd=sum((r.state.cost_usd for r in runs), Decimal(0)),
        ideal_usd=run.state.ideal.total_usd,  # the tree's, kept on the root
        cache_read_tokens=sum(r.state.cache_read_tokens for r in runs),
        input_tokens=sum(r.state.input_tokens for r in runs),
        output_tokens=sum(r.state.output_tokens for r in runs),
        success=not failures,
        failures=tuple(failures),
        emulated_s=emulated_s,
        predictions_agree=sum(r.state.predictions_agree for r in runs),
        predictions_checked=sum(r.state.predictions_checked for r in runs),
        run_id=run.run_id,
    )


def _tree(run: Run) -> list[Run]:
    out = [run]
    for child in run.children:
        out += _tree(child)
    return out


def _check_tools(env: _Env) -> list[str]:
    checks = env.workload.checks
    out: list[str] = []
    if checks.tool_called and env.tool_calls.get(checks.tool_called, 0) == 0:
        out.append(f"tool {checks.tool_called!r} was never called")
    total = sum(env.tool_calls.values())
    if total < checks.min_tool_calls:
        out.append(f"{total} tool calls, expected at least {checks.min_tool_calls}")
    return out


# ---------------------------------------------------------------------------- the agent loop


async def _converse(
    env: _Env,
    messages: list[dict[str, Any]],
    *,
    fetch_tool: str | None,
    parallel: bool,
    subagent_parent: Run | None = None,
) -> str:
    """Call the model until it stops calling tools; returns its final text."""
    w, ctx = env.workload, env.ctx
    headers = {BRAIN_HEADER: "facts"}
    if fetch_tool:
        headers[FETCH_TOOL_HEADER] = fetch_tool
    params: dict[str, Any] = {"model": w.model, "max_tokens": w.max_tokens, "system": ctx.system}
    if ctx.tools:
        params["tools"] = ctx.tools
        params["tool_choice"] = {"type": "auto", "disable_parallel_tool_use": not parallel}
    for _ in range(MAX_STEPS):
        sent = (
            mark_newest(messages)
            if ctx.caller_markers and w.caller_cache == "claude-code"
            else messages
        )
        reply = await env.client.messages.create(
            messages=sent,  # type: ignore[arg-type]  # plain JSON dicts, as a client sends them
            extra_headers=headers,
            **params,
        )
        content = [block.model_dump(mode="json", exclude_none=True) for block in reply.content]
        messages.append({"role": "assistant", "content": content})
        uses = [b for b in content if b.get("type") == "tool_use"]
        if reply.stop_reason != "tool_use" or not uses:
            return "".join(b.get("text", "") for b in content if b.get("type") == "text")
        results = await asyncio.gather(*(_execute(env, u, subagent_parent) for u in uses))
        messages.append({"role": "user", "content": list(results)})
        env.advance(w.gap_s)
    raise WorkloadError(f"workload {w.name}: the model did not finish within {MAX_STEPS} calls")


async def _execute(env: _Env, use: Mapping[str, Any], parent: Run | None) -> dict[str, Any]:
    name = str(use.get("name"))
    env.tool_calls[name] = env.tool_calls.get(name, 0) + 1
    arg = next((v for v in dict(use.get("input") or {}).values() if isinstance(v, str)), "")
    if name == "run_subagent" and parent is not None:
        body = await _run_subagent(env, parent, arg)
    else:
        found = env.ctx.artifacts.get(arg)
        body = found if found is not None else f"no record {arg!r}"
    return {"type": "tool_result", "tool_use_id": use["id"], "content": body}


async def _run_subagent(env: _Env, parent: Run, agent_id: str) -> str:
    task = env.ctx.subagent_tasks.get(agent_id)
    if task is None:
        return f"no sub-agent {agent_id!r}"
    with parent.child(agent_id, tags={"role": "subagent"}):
        answer = await _converse(
            env,
            [{"role": "user", "content": task}],
            fetch_tool=env.workload.tools.fetch_tool,
            parallel=False,
        )
    # the sub-agent's answers come back to the orchestrator as facts of an artifact
    return f"⟦artifact:{agent_id}⟧\n" + answer.replace("⟦answer:", "⟦fact:")


async def _run_conversation(env: _Env, run: Run) -> list[str]:
    w, ctx = env.workload, env.ctx
    messages: list[dict[str, Any]] = []
    failures: list[str] = []
    for t in range(len(w.conversation)):
        messages += turn_message(ctx, t)
        first_fans_out = t == 0 and w.subagents is not None
        answer = await _converse(
            env,
            messages,
            fetch_tool="run_subagent" if first_fans_out else w.tools.fetch_tool,
            parallel=bool(first_fans_out and w.subagents and w.subagents.parallel),
            subagent_parent=run if first_fans_out else None,
        )
        if w.checks.answers_contain_facts:
            failures += _missing(answer, ctx.expected[t], where=f"turn {t + 1}")
        env.advance(w.human_gap_s)
    return failures


async def _run_items(env: _Env) -> list[str]:
    failures: list[str] = []
    for i in range(len(env.ctx.items)):
        answer = await _converse(env, [item_message(env.ctx, i)], fetch_tool=None, parallel=False)
        failures += _missing(answer, env.ctx.items[i][1], where=f"item {i + 1}")
        env.advance(env.workload.gap_s)
    return failures[:10] + ([f"… and {len(failures) - 10} more"] if len(failures) > 10 else [])


def _missing(answer: str, expected: Mapping[str, str], *, where: str) -> list[str]:
    return [
        f"{where}: answer lacks {k}={v}"
        for k, v in expected.items()
        if f"⟦answer:{k}={v}⟧" not in answer
    ]


def expected_calls(w: Workload) -> Sequence[int]:
    """For docs and tests: calls per user turn when every fetch is one call."""
    return [1 + (t.artifacts.count if t.artifacts else 0) for t in w.conversation]
