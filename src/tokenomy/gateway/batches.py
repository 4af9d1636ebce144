"""Message Batches through the gateway: ``results_url`` pointed at the gateway, results metered.

SDKs fetch a batch's results from its absolute ``results_url``. The gateway rewrites it to
point at itself, or results would bypass it and never be metered. Results stream through as
JSONL. Each line becomes :class:`ResponseFacts` and is metered at batch prices: the usage says
``service_tier: "batch"``, or :func:`usage_from_batch_result` makes it so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from tokenomy.core.usage import usage_from_batch_result
from tokenomy.errors import UsageError
from tokenomy.pipeline import ResponseFacts

__all__ = ["BatchResult", "LineSplitter", "batch_id_of", "own_results_url", "parse_result_line"]


def own_results_url(body: bytes, *, upstream_base: str, own_base: str) -> bytes:
    """``body`` with every ``"results_url": "<upstream_base>…"`` pointing at ``own_base``."""
    if b'"results_url"' not in body:
        return body
    pattern = re.compile(rb'("results_url"\s*:\s*")' + re.escape(upstream_base.encode()))
    own = own_base.encode()
    return pattern.sub(lambda m: m.group(1) + own, body)


def batch_id_of(path: str) -> str:
    """``/v1/messages/batches/{id}/results`` → ``id``."""
    return path.rstrip("/").split("/")[-2]


class LineSplitter:
    """Complete JSONL lines out of chunks; never holds more than one partial line."""

    def __init__(self) -> None:
        self._pending = b""
        self.lines: list[bytes] = []

    def feed(self, chunk: bytes) -> None:
        self._pending += chunk
        *done, self._pending = self._pending.split(b"\n")
        self.lines.extend(d for d in done if d.strip())

    def close(self) -> list[bytes]:
        if self._pending.strip():
            self.lines.append(self._pending)
        self._pending = b""
        return self.lines


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One result line, as the meter needs it."""

    custom_id: str
    model: str | None
    facts: ResponseFacts


def parse_result_line(raw: bytes) -> BatchResult | None:
    """A succeeded or errored result. None for canceled or expired results (never billed,
    nothing was sent) and for lines that are not results."""
    try:
        line = orjson.loads(raw)
        usage = usage_from_batch_result(line)
    except (orjson.JSONDecodeError, UsageError):
        return None
    result = line.get("result", {})
    custom_id = str(line.get("custom_id", ""))
    if usage is None:
        if result.get("type") != "errored":
            return None
        err = result.get("error", {})
        err = err.get("error", err) if isinstance(err, dict) else {}
        facts = ResponseFacts(
            error_type=str(err.get("type", "errored")), error_message=err.get("message")
        )
        return BatchResult(custom_id, None, facts)
    message = result.get("message") if isinstance(result.get("message"), dict) else {}
    model = message.get("model")
    facts = ResponseFacts(
        usage=usage,
        message_id=message.get("id"),
        model=model,
        stop_reason=message.get("stop_reason"),
        complete=True,
    )
    return BatchResult(custom_id, model if isinstance(model, str) else None, facts)
