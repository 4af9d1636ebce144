"""tokenomy: make Claude agent runs cheap and fast without making them dumber — and prove it.

The public API (imported lazily: ``import tokenomy`` stays fast for the CLI):

- :class:`Anthropic`, :class:`AsyncAnthropic` — drop-in SDK clients over the pipeline;
- :func:`run` — group calls into a run (``with tokenomy.run("triage") as r: ...``);
- :class:`Pipeline`, :class:`PipelineConfig`, :class:`Run` — the funnel itself;
- :class:`TokenomyError` — the root of every error tokenomy raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tokenomy._version import __version__
from tokenomy.errors import TokenomyError

if TYPE_CHECKING:
    from tokenomy.client import Anthropic, AsyncAnthropic
    from tokenomy.pipeline import Pipeline, PipelineConfig, Run

__all__ = [
    "Anthropic",
    "AsyncAnthropic",
    "Pipeline",
    "PipelineConfig",
    "Run",
    "TokenomyError",
    "__version__",
    "run",
]

_LAZY = {
    "Anthropic": "tokenomy.client",
    "AsyncAnthropic": "tokenomy.client",
    "Pipeline": "tokenomy.pipeline",
    "PipelineConfig": "tokenomy.pipeline",
    "Run": "tokenomy.pipeline",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tokenomy' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def run(
    name: str,
    *,
    tags: Mapping[str, str] | None = None,
    pipeline: Pipeline | None = None,
) -> Run:
    """Start a run on the default pipeline (or ``pipeline``); use it as a context manager.

    Calls made inside ``with tokenomy.run("triage") as r:`` by any tokenomy client belong to
    ``r``; ``r.child("researcher")`` makes a sub-agent run that rolls up into ``r``.
    """
    from tokenomy.wiring import default_pipeline

    return (pipeline or default_pipeline()).start_run(name, tags=tags)
