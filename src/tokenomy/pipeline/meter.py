"""Metering: what a finished call cost, by segment; what the doctor says; the run's totals.

Called by :meth:`tokenomy.pipeline.Pipeline.finish` under the pipeline's lock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tokenomy.core.anatomy import apportion, segment_costs
from tokenomy.core.cache_model import CacheModel, Observation
from tokenomy.core.canonical import Chain
from tokenomy.core.doctor import Diagnosis, PreviousCall, diagnose
from tokenomy.core.pricing import CostBreakdown, Rates, Unpriced, cost, rates
from tokenomy.core.records import CallRecord, CallStatus
from tokenomy.core.usage import Usage
from tokenomy.data.table import ModelTable
from tokenomy.pipeline.calls import Prepared
from tokenomy.pipeline.runs import Run
from tokenomy.pipeline.tap import ResponseFacts

__all__ = ["meter_call"]


def meter_call(
    p: Prepared,
    *,
    table: ModelTable,
    cache: CacheModel,
    now: datetime,
    status: int,
    facts: ResponseFacts,
    error: str | None,
    cancelled: bool,
    ended_s: float,
) -> CallRecord:
    """The call's record: exact cost, segments, the doctor's diagnosis; updates its run."""
    run = p.run
    state = run.state if run else None
    usage = facts.usage
    model_used = facts.model or p.model_requested
    call_status: CallStatus = (
        "cancelled"
        if cancelled
        else "ok"
        if status < 400 and usage is not None and not facts.error_type and error is None
        else "error"
    )
    price: CostBreakdown | Unpriced | None = None
    segments = seg_costs = None
    diagnosis: Diagnosis | None = None
    decisions = p.decisions
    if usage is not None:
        request_geo = p.request.get("inference_geo") if p.request else None
        price = cost(
            usage,
            model_used or "?",
            table=table,
            inference_geo=request_geo if isinstance(request_geo, str) else None,
        )
        billable = usage.billable()
        if p.anatomy is not None:
            segments = apportion(
                p.anatomy.estimated,
                billable.total_input_tokens,
                output_tokens=billable.output_tokens,
            )
            info = table.find(model_used or "")
            if info is not None:
                r = rates(
                    info,
                    table=table,
                    total_input_tokens=billable.total_input_tokens,
                    batch=usage.is_batch,
                    fast=usage.speed == "fast",
                    geo_us=(usage.inference_geo or request_geo or "") == "us",
                )
                if not isinstance(r, Unpriced):
                    seg_costs = segment_costs(segments, usage, r)
                    diagnosis = _diagnose(p, usage, r, cache)
    elif p.prediction is not None:
        cache.abort(p.call_id)
    if diagnosis is not None:
        decisions["doctor"] = diagnosis.to_json()
    if facts.diagnostics is not None:
        decisions["server_diagnostics"] = facts.diagnostics
    if state is not None and run is not None:
        _update_run(
            run,
            p,
            usage=usage,
            price=price,
            diagnosis=diagnosis,
            facts=facts,
            table=table,
            cache=cache,
        )
    latency_ms = (ended_s - p.started_s) * 1000.0
    ttft_ms = (p.first_content_s - p.started_s) * 1000.0 if p.first_content_s is not None else None
    return CallRecord(
        call_id=p.call_id,
        run_id=run.run_id if run else "",
        seq=state.calls if state else 0,
        started_at=p.started_at,
        model_requested=p.model_requested or "?",
        model_used=model_used,
        mode=p.mode,
        status=call_status,
        stream=p.stream,
        usage=usage,
        cost=price,
        segments=segments,
        segment_costs=seg_costs,
        ended_at=now,
        latency_ms=latency_ms,
        ttft_ms=ttft_ms,
        http_status=status,
        error_type=facts.error_type or (None if not error else "transport_error"),
        error_message=facts.error_message or error,
        request_id=facts.request_id,
        message_id=facts.message_id,
        stop_reason=facts.stop_reason,
        prefix_hash=p.chain.head_hex if p.chain else None,
        breakpoints=tuple(b.describe() for b in p.plan.breakpoints) if p.plan else (),
        decisions=decisions,
        api_key_fingerprint=p.api_key_fingerprint,
    )


def _diagnose(p: Prepared, usage: Usage, r: Rates, cache: CacheModel) -> Diagnosis | None:
    if (
        p.prediction is None
        or p.anatomy is None
        or p.chain is None
        or p.plan is None
        or p.request is None
    ):
        return None
    observation: Observation = cache.observe(p.prediction, p.anatomy, usage, call_id=p.call_id)
    previous = p.run.state.previous if p.run else None
    return diagnose(
        chain=p.chain,
        request=p.request,
        model=p.prediction.model,
        prediction=p.prediction,
        observation=observation,
        plan=p.plan,
        usage=usage,
        rates=r,
        previous=previous,
        volatile=p.volatile,
        min_cacheable_tokens=p.model.min_cacheable_tokens if p.model else 0,
    )


def _update_run(
    run: Run,
    p: Prepared,
    *,
    usage: Any,
    price: CostBreakdown | Unpriced | None,
    diagnosis: Diagnosis | None,
    facts: ResponseFacts,
    table: ModelTable,
    cache: CacheModel,
) -> None:
    s = run.state
    s.calls += 1
    if facts.message_id:
        s.previous_message_id = facts.message_id
    if usage is None:
        s.errors += 1
        return
    billable = usage.billable()
    s.input_tokens += billable.total_input_tokens
    s.cache_read_tokens += billable.cache_read_tokens
    s.output_tokens += billable.output_tokens
    if isinstance(price, CostBreakdown):
        s.cost_usd += price.total_usd
    else:
        s.unpriced_calls += 1
    if diagnosis is not None:
        s.lost_usd += diagnosis.lost_usd
        if diagnosis.agree is not None:
            s.predictions_checked += 1
            s.predictions_agree += int(diagnosis.agree)
    if p.chain is None or p.anatomy is None or p.plan is None or p.request is None:
        return
    prev = s.previous
    if prev is not None:
        gap = p.started_s - prev.started_s
        s.gaps_s.append(gap)
        del s.gaps_s[:-8]
        # the doctor compared the chains already: reuse its divergence when it has one
        div = diagnosis.divergence if diagnosis is not None else None
        shared = (
            p.chain.first_divergence(prev.chain)
            if diagnosis is None
            else (div.index if div is not None else len(prev.chain))
        )
        extends = shared >= _messages_start(prev.chain)
        s.independent_streak = 0 if extends else s.independent_streak + 1
    model_key = p.prediction.model if p.prediction else (p.model_requested or "?")
    positions = p.prediction.positions if p.prediction else cache.positions(model_key, p.anatomy)
    s.previous = PreviousCall(
        chain=p.chain,
        request=p.request,
        model=model_key,
        breakpoints=p.plan.breakpoints,
        positions=positions,
        started_s=p.started_s,
    )
    if isinstance(price, CostBreakdown) and p.model is not None:
        r = rates(
            p.model,
            table=table,
            total_input_tokens=billable.total_input_tokens,
            batch=usage.is_batch,
            fast=usage.speed == "fast",
        )
        if not isinstance(r, Unpriced):
            s.ideal.add_call(
                model=model_key,
                prefix_hashes=[link.prefix_hash for link in p.chain.links],
                positions=positions,
                total_input_tokens=billable.total_input_tokens,
                rates=r,
                min_cacheable_tokens=p.model.min_cacheable_tokens,
                now_s=p.started_s,
                other_usd=price.output_usd + price.server_tools_usd,
            )


def _messages_start(ch: Chain) -> int:
    for i, link in enumerate(ch.links):
        if link.ref.segment == "messages":
            return i + 1  # extending means at least the first message is shared
    return len(ch.links)
