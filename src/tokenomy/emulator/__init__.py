"""tokenomy.emulator: an offline Anthropic API with real caching, billing, batches and faults.

``create_app(EmulatorConfig(...))`` gives an ASGI app (serve it with uvicorn, or mount it
in-process through ``httpx.ASGITransport``); ``tokenomy emulator`` serves one. See
``docs/emulator.md``.
"""

from __future__ import annotations

from tokenomy.emulator.app import API_VERSIONS, create_app, key_fingerprint, serve
from tokenomy.emulator.batches import BatchLimits, BatchTiming
from tokenomy.emulator.brains import (
    BRAIN_HEADER,
    Brain,
    BrainRequest,
    EchoBrain,
    FactsBrain,
    Reply,
    ScriptBrain,
    TextOut,
    ThinkingOut,
    ToolUseOut,
    load_brain,
    load_script,
)
from tokenomy.emulator.clock import VIRTUAL_EPOCH_S, ClockMode
from tokenomy.emulator.faults import FaultPlan, FaultRule, load_fault_plan, parse_fault_plan
from tokenomy.emulator.latency import LatencyMode, LatencyModel
from tokenomy.emulator.server import Admission, ApiError, ServerModel
from tokenomy.emulator.state import Emulator, EmulatorConfig

__all__ = [
    "API_VERSIONS",
    "BRAIN_HEADER",
    "VIRTUAL_EPOCH_S",
    "Admission",
    "ApiError",
    "BatchLimits",
    "BatchTiming",
    "Brain",
    "BrainRequest",
    "ClockMode",
    "EchoBrain",
    "Emulator",
    "EmulatorConfig",
    "FactsBrain",
    "FaultPlan",
    "FaultRule",
    "LatencyMode",
    "LatencyModel",
    "Reply",
    "ScriptBrain",
    "ServerModel",
    "TextOut",
    "ThinkingOut",
    "ToolUseOut",
    "create_app",
    "key_fingerprint",
    "load_brain",
    "load_fault_plan",
    "load_script",
    "parse_fault_plan",
    "serve",
]
