"""Every reference workload succeeds in every configuration that keeps content unchanged, and
meets the caching targets; the predicted cache reads match the emulator on every call."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.prefix_stability import RecordingSink
from tokenomy.workloads import reference_workloads
from tokenomy.workloads.runner import WorkloadResult, run_workload
from tokenomy.workloads.spec import ItemsSpec, Workload


def small(w: Workload) -> Workload:
    """The bulk workload with 100 items instead of 1,000 (same shape, a tenth of the time)."""
    if w.items is None:
        return w
    return w.model_copy(
        update={"items": ItemsSpec(count=100, tokens=w.items.tokens, labels=w.items.labels)}
    )


async def both(w: Workload) -> tuple[WorkloadResult, WorkloadResult]:
    naive = await run_workload(w, config="naive", sink=RecordingSink())
    cached = await run_workload(w, config="cache", sink=RecordingSink())
    return naive, cached


@pytest.mark.anyio
@pytest.mark.parametrize(
    "workload", [small(w) for w in reference_workloads()], ids=lambda w: w.name
)
async def test_reference_workload(workload: Workload) -> None:
    naive, cached = await both(workload)
    for r in (naive, cached):
        assert r.success, r.failures
        assert r.predictions_agree == r.predictions_checked == r.calls, r
    assert naive.cache_read_tokens == 0
    assert cached.efficiency is not None and cached.efficiency >= Decimal("0.95"), cached.efficiency
    saving = 1 - cached.cost_usd / naive.cost_usd
    if workload.name in ("founding-12-turn", "ten-step-20k"):
        assert saving >= Decimal("0.70"), saving
    assert saving > Decimal("0.5"), saving


@pytest.mark.anyio
async def test_the_bulk_job_in_batches_costs_at_most_half_of_interactive() -> None:
    w = small(next(w for w in reference_workloads() if w.name == "bulk-tickets"))
    assert w.batch_cache_ttl == "5m"
    interactive = await run_workload(w, config="cache", sink=RecordingSink())
    batched = await run_workload(w, config="full", sink=RecordingSink())
    assert batched.mode == "batch" and batched.success, batched.failures
    assert batched.calls == 100
    assert batched.hit_rate is not None and batched.hit_rate > 0.9
    # one batch is one steady stream: the prefix is written once at the 5m price, like the
    # interactive run, and every token costs half
    assert batched.cost_usd <= interactive.cost_usd / 2, batched.cost_usd / interactive.cost_usd
    assert batched.cache_read_tokens == interactive.cache_read_tokens


@pytest.mark.anyio
async def test_the_batch_runners_default_1h_ttl_costs_a_little_over_half() -> None:
    bulk = next(w for w in reference_workloads() if w.name == "bulk-tickets")
    w = small(bulk).model_copy(update={"batch_cache_ttl": "1h"})
    interactive = await run_workload(w, config="cache", sink=RecordingSink())
    batched = await run_workload(w, config="full", sink=RecordingSink())
    assert batched.success, batched.failures
    # the one write costs 2 x 0.5 = 1.0x the input price where the interactive run pays 1.25x
    ratio = batched.cost_usd / interactive.cost_usd
    assert Decimal("0.5") < ratio < Decimal("0.52"), ratio
