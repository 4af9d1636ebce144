"""Run every reference workload in every configuration: what ``make demo`` shows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import anyio

from tokenomy.ports import UsageSink
from tokenomy.workloads import reference_workloads
from tokenomy.workloads.runner import CONFIGS, Config, WorkloadResult, run_workload
from tokenomy.workloads.spec import Workload

__all__ = ["DemoRow", "run_all", "saving"]


@dataclass(frozen=True, slots=True)
class DemoRow:
    result: WorkloadResult
    naive_usd: Decimal

    @property
    def saving(self) -> Decimal | None:
        return saving(self.naive_usd, self.result.cost_usd)


def saving(naive_usd: Decimal, cost_usd: Decimal) -> Decimal | None:
    """``1 - cost / naive``; None when the naive run cost nothing."""
    return None if naive_usd <= 0 else 1 - cost_usd / naive_usd


def run_all(
    *,
    workloads: Sequence[Workload] | None = None,
    configs: Sequence[Config] = CONFIGS,
    sink: UsageSink | None = None,
    latency: bool = True,
    progress: Callable[[str], None] | None = None,
) -> list[DemoRow]:
    """Every workload in every configuration, naive first (the baseline of the savings)."""
    chosen = list(workloads) if workloads is not None else reference_workloads()
    order: list[Config] = ["naive", *[c for c in configs if c != "naive"]]

    async def go() -> list[DemoRow]:
        rows: list[DemoRow] = []
        for w in chosen:
            naive_usd = Decimal(0)
            for config in order:
                if progress is not None:
                    progress(f"{w.name} ({config})")
                r = await run_workload(w, config=config, sink=sink, latency=latency)
                if config == "naive":
                    naive_usd = r.cost_usd
                if config in configs:
                    rows.append(DemoRow(result=r, naive_usd=naive_usd))
        return rows

    return anyio.run(go)
