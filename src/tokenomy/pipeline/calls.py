"""What flows through the pipeline: its configuration, an outgoing call, a prepared call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from tokenomy.core.anatomy import Anatomy
from tokenomy.core.cache_model import Prediction
from tokenomy.core.cache_plan import CachePlan, PlannerConfig
from tokenomy.core.canonical import Chain
from tokenomy.core.records import RunSource
from tokenomy.core.stabilize import VolatileFinding
from tokenomy.data.table import ModelInfo
from tokenomy.pipeline.runs import Run

__all__ = ["CallContext", "Kind", "PipelineConfig", "Prepared"]

Kind = Literal["messages", "count_tokens", "other"]


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """What the pipeline does to requests. ``optimize=False`` meters and diagnoses only."""

    optimize: bool = True
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    pin_key_order: bool = True
    move_volatile_system: bool = False
    source: RunSource = "library"
    # Ask the server why a cache missed (beta cache-diagnosis-2026-04-07, Claude API only):
    # sends the previous response's id and records the server's answer beside the doctor's.
    cache_diagnostics: bool = False


@dataclass(frozen=True, slots=True)
class CallContext:
    """An outgoing HTTP request as a transport sees it."""

    method: str
    path: str
    body: bytes
    api_key: str | None = None
    mode: Literal["interactive", "batch"] = "interactive"
    # None: the pipeline's own setting.
    optimize: bool | None = None
    # ``body`` already decoded by the transport (the gateway reads it to find the run), so the
    # pipeline does not decode it again. Never modified; ``body`` stays what is sent unchanged.
    request: dict[str, Any] | None = None


@dataclass(slots=True)
class Prepared:
    """A call on its way: what to send, and what the meter will need when it comes back."""

    call_id: str
    kind: Kind
    body: bytes
    run: Run | None
    scope: str
    stream: bool
    model_requested: str | None
    started_at: datetime
    started_s: float
    api_key_fingerprint: str | None
    mode: Literal["interactive", "batch"] = "interactive"
    optimize: bool = True
    request: Mapping[str, Any] | None = None
    model: ModelInfo | None = None
    chain: Chain | None = None
    anatomy: Anatomy | None = None
    plan: CachePlan | None = None
    prediction: Prediction | None = None
    volatile: tuple[VolatileFinding, ...] = ()
    decisions: dict[str, Any] = field(default_factory=dict)
    # beta flags the transport must add to the anthropic-beta header
    add_betas: tuple[str, ...] = ()
    response_started_s: float | None = None
    first_content_s: float | None = None
    finished: bool = False

    @property
    def metered(self) -> bool:
        return self.kind == "messages"
