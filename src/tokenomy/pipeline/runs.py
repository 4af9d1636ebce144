"""Runs: groups of calls (an agent run, a session, a sub-agent) and what the pipeline remembers.

``with tokenomy.run("triage") as run:`` makes ``run`` the current run of the calling context
(a :mod:`contextvars` variable, so threads and asyncio tasks each see their own);
``run.child("researcher")`` starts a sub-agent run whose spend rolls up to its parent.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tokenomy.core.canonical import BlockRef
from tokenomy.core.doctor import PreviousCall
from tokenomy.core.ideal import IdealCost
from tokenomy.core.records import RunRecord, RunSource
from tokenomy.core.stabilize import KeyOrderMemo

if TYPE_CHECKING:
    from tokenomy.pipeline.engine import Pipeline

__all__ = ["Run", "RunState", "RunSummary", "current_run"]

_current: contextvars.ContextVar[Run | None] = contextvars.ContextVar("tokenomy_run", default=None)


def current_run() -> Run | None:
    """The run of the calling context, if any."""
    return _current.get()


@dataclass(slots=True)
class RunState:
    """What the pipeline remembers about a run between its calls."""

    calls: int = 0
    previous: PreviousCall | None = None
    previous_started_s: float | None = None
    previous_message_id: str | None = None
    gaps_s: list[float] = field(default_factory=list)
    key_orders: KeyOrderMemo = field(default_factory=KeyOrderMemo)
    estimates: dict[tuple[str, int], int] = field(default_factory=dict)
    volatile: set[BlockRef] = field(default_factory=set)
    independent_streak: int = 0
    ideal: IdealCost = field(default_factory=IdealCost)
    cost_usd: Decimal = Decimal(0)
    unpriced_calls: int = 0
    input_tokens: int = 0
    cache_read_tokens: int = 0
    output_tokens: int = 0
    errors: int = 0
    lost_usd: Decimal = Decimal(0)
    predictions_agree: int = 0
    predictions_checked: int = 0


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A run's totals, sub-agents rolled up."""

    run_id: str
    name: str
    calls: int
    cost_usd: Decimal
    subagent_usd: Decimal
    # The run tree's ideal cost (sub-agents share their parent's cache); on a sub-agent run it
    # is the tree's too, and its own efficiency is not defined (None).
    ideal_usd: Decimal
    cache_efficiency: Decimal | None
    cache_hit_rate: float | None
    input_tokens: int
    cache_read_tokens: int
    output_tokens: int
    lost_usd: Decimal
    unpriced_calls: int
    errors: int
    predictions_agree: int
    predictions_checked: int

    @property
    def total_usd(self) -> Decimal:
        return self.cost_usd + self.subagent_usd


class Run:
    """A group of calls. Use as a context manager to make it the current run."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        run_id: str,
        name: str,
        started_at: datetime,
        parent: Run | None = None,
        tags: Mapping[str, str] | None = None,
        source: RunSource = "library",
        external_id: str | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.run_id = run_id
        self.name = name
        self.started_at = started_at
        self.parent = parent
        self.tags: dict[str, str] = dict(tags or {})
        self.source: RunSource = source
        self.external_id = external_id
        self.ended_at: datetime | None = None
        self.state = RunState()
        self.children: list[Run] = []
        self._tokens: list[contextvars.Token[Run | None]] = []
        if parent is not None:
            parent.children.append(self)

    def __repr__(self) -> str:
        return f"Run({self.name!r}, id={self.run_id!r}, calls={self.state.calls})"

    def child(self, name: str, *, tags: Mapping[str, str] | None = None) -> Run:
        """A sub-agent run; its spend rolls up to this run as sub-agent overhead."""
        return self.pipeline.start_run(name, parent=self, tags=tags, source=self.source)

    def __enter__(self) -> Run:
        self._tokens.append(_current.set(self))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _current.reset(self._tokens.pop())
        self.pipeline.end_run(self)

    async def __aenter__(self) -> Run:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def record(self) -> RunRecord:
        s = self.state
        return RunRecord(
            run_id=self.run_id,
            name=self.name,
            started_at=self.started_at,
            parent_run_id=self.parent.run_id if self.parent else None,
            tags=dict(self.tags),
            source=self.source,
            ended_at=self.ended_at,
            external_id=self.external_id,
            # The ideal covers the whole run tree and lives on the root.
            ideal_usd=s.ideal.total_usd if s.calls and self.parent is None else None,
        )

    def summary(self) -> RunSummary:
        s = self.state
        sub = sum((c.summary().total_usd for c in self.children), Decimal(0))
        total_in = s.input_tokens
        root = self.parent is None
        return RunSummary(
            run_id=self.run_id,
            name=self.name,
            calls=s.calls,
            cost_usd=s.cost_usd,
            subagent_usd=sub,
            ideal_usd=s.ideal.total_usd,
            cache_efficiency=s.ideal.efficiency(s.cost_usd + sub) if root else None,
            cache_hit_rate=(s.cache_read_tokens / total_in) if total_in else None,
            input_tokens=total_in,
            cache_read_tokens=s.cache_read_tokens,
            output_tokens=s.output_tokens,
            lost_usd=s.lost_usd,
            unpriced_calls=s.unpriced_calls,
            errors=s.errors,
            predictions_agree=s.predictions_agree,
            predictions_checked=s.predictions_checked,
        )

    def info(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "name": self.name, "tags": self.tags}
