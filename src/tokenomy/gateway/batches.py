"""Message Batches through the gateway: ``results_url`` pointed at the gateway, results metered.

SDKs fetch a batch's results from its absolute ``results_url``. The gateway rewrites it to
point at itself, or results would bypass it and never be metered. Results stream through as
JSONL. Each line becomes :class:`ResponseFacts` and is metered at batch prices: the usage says
``service_tier: "batch"``, or :func:`usage_from_batch_result` makes it so.
:class:`BatchResultsMeter` relays a results stream and meters it, once per batch.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

import orjson

from tokenomy.core.records import CallRecord
from tokenomy.core.usage import usage_from_batch_result
from tokenomy.errors import UsageError
from tokenomy.gateway.metrics import GatewayMetrics
from tokenomy.gateway.relay import Reply
from tokenomy.pipeline import CallContext, Pipeline, ResponseFacts, Run

__all__ = [
    "BatchResult",
    "BatchResultsMeter",
    "LineSplitter",
    "batch_id_of",
    "own_results_url",
    "parse_result_line",
]


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


class BatchResultsMeter:
    """Relays a batch's results and meters each at batch prices, once per batch however often
    they are fetched (the last 10,000 batch ids are remembered)."""

    def __init__(self, pipeline: Pipeline, metrics: GatewayMetrics) -> None:
        self.pipeline = pipeline
        self.metrics = metrics
        self._metered: dict[str, None] = {}

    async def relay(
        self,
        path: str,
        status: int,
        headers: Mapping[str, str],
        stream: AsyncIterator[bytes],
        reply: Reply,
        *,
        run_of: Callable[[str], Run],
        api_key: str | None,
        key_fingerprint: str | None,
        charge: Callable[[CallRecord | None], None],
    ) -> None:
        """Forward the JSONL as it streams; meter each result at batch prices, once a batch.

        ``run_of(batch_id)`` is the run the results go to (asked only when they are metered);
        ``key_fingerprint`` goes on each call when set; ``charge`` gets each recorded call.
        """
        batch_id = batch_id_of(path)
        meter = batch_id not in self._metered
        splitter = LineSplitter()
        await reply.start(status, headers.items())
        async for chunk in stream:
            await reply.chunk(chunk)
            if meter:
                splitter.feed(chunk)
        await reply.end()
        if not meter:
            return
        run = run_of(batch_id)
        for raw in splitter.close():
            result = parse_result_line(raw)
            if result is not None:
                self._meter(
                    batch_id,
                    result,
                    run,
                    api_key=api_key,
                    key_fingerprint=key_fingerprint,
                    charge=charge,
                )
        self._metered[batch_id] = None
        while len(self._metered) > 10_000:
            del self._metered[next(iter(self._metered))]

    def _meter(
        self,
        batch_id: str,
        result: BatchResult,
        run: Run,
        *,
        api_key: str | None,
        key_fingerprint: str | None,
        charge: Callable[[CallRecord | None], None],
    ) -> None:
        p = self.pipeline.prepare(
            CallContext(
                method="POST",
                path="/v1/messages",
                body=b"",
                api_key=api_key,
                mode="batch",
            ),
            run=run,
        )
        # One row per batch result, however often the results are fetched.
        p.call_id = f"call_{batch_id}_{result.custom_id}"
        p.model_requested = result.model
        p.decisions = {"batch": {"batch_id": batch_id, "custom_id": result.custom_id}}
        if key_fingerprint is not None:
            p.api_key_fingerprint = key_fingerprint
        record = self.pipeline.finish(p, status=200, facts=result.facts)
        if record is not None:
            self.metrics.observe_call(record)
        charge(record)
