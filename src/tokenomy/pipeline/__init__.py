"""The pipeline: the one funnel every call goes through (see ARCHITECTURE.md §2)."""

from tokenomy.pipeline.calls import CallContext, PipelineConfig, Prepared
from tokenomy.pipeline.clock import FollowClock, ManualClock, SystemClock
from tokenomy.pipeline.engine import Pipeline
from tokenomy.pipeline.runs import Run, RunState, RunSummary, current_run
from tokenomy.pipeline.tap import ResponseFacts, StreamTap, read_message

__all__ = [
    "CallContext",
    "FollowClock",
    "ManualClock",
    "Pipeline",
    "PipelineConfig",
    "Prepared",
    "ResponseFacts",
    "Run",
    "RunState",
    "RunSummary",
    "StreamTap",
    "SystemClock",
    "current_run",
    "read_message",
]
