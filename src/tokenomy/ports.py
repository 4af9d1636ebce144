"""The narrow interfaces the pipeline talks through; adapters live in ledger/ and upstream/."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from tokenomy.core.records import CallRecord, RunRecord

__all__ = ["Clock", "TokenCounter", "Upstream", "UpstreamRequest", "UpstreamResponse", "UsageSink"]


@runtime_checkable
class Clock(Protocol):
    """Wall time for records and a monotonic reading for latencies."""

    def now(self) -> datetime: ...

    def monotonic_s(self) -> float: ...


@runtime_checkable
class UsageSink(Protocol):
    """Where finished runs and calls go. ``record_*`` must not block on I/O."""

    def record_run(self, run: RunRecord) -> None: ...

    def record_call(self, call: CallRecord) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class TokenCounter(Protocol):
    """Exact token counts (``/v1/messages/count_tokens``)."""

    async def count(self, request: Mapping[str, Any]) -> int: ...


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """An HTTP request to the Anthropic API, as bytes: the pipeline decides what they say."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes = b""
    query: str = ""


@dataclass(slots=True)
class UpstreamResponse:
    """Status, headers and either a whole body or a byte stream."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Upstream(Protocol):
    """The one way out to the API (real or emulated)."""

    async def send(self, request: UpstreamRequest, *, stream: bool = False) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...
