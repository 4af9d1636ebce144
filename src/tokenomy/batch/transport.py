"""The Message Batches endpoints over :class:`~tokenomy.upstream.HttpUpstream` (reference §3.1).

Two upstreams, because two kinds of call differ in what a retry may do:

- reads (retrieve, list, results) and cancel are idempotent: retried on 408/409/429/5xx/529
  and connection errors, with backoff and jitter, honouring ``retry-after``;
- create is not: a create whose answer was lost may have made a batch, and sending it again
  would pay twice. Only a 429 (refused before anything was made) is retried; any other failure
  leaves the chunk ``creating`` for the runner to reconcile by listing batches.

The API key goes in a header of each request and is never kept anywhere else.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

import orjson

from tokenomy.errors import UpstreamError
from tokenomy.ports import Upstream, UpstreamRequest, UpstreamResponse
from tokenomy.upstream import HttpUpstream, RetryPolicy, retry_after_s

__all__ = ["BatchApi", "BatchApiError", "CreateOutcome", "open_batch_api"]

API_VERSION: Final = "2023-06-01"
_BATCHES: Final = "/v1/messages/batches"
# Idempotent calls: patient, since a batch job has hours, not seconds.
READ_RETRY: Final = RetryPolicy(max_retries=6, initial_s=1.0, max_s=30.0)


class BatchApiError(UpstreamError):
    """The API answered a batch call with an error."""

    def __init__(
        self, *, status: int, error_type: str, message: str, retry_after: float | None
    ) -> None:
        super().__init__(f"{status} {error_type}: {message}")
        self.status = status
        self.error_type = error_type
        self.api_message = message
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        return self.status in (408, 409, 429) or self.status >= 500


@dataclass(frozen=True, slots=True)
class CreateOutcome:
    """What became of a create: the batch, or "refused, try later", or "unknown"."""

    batch: Mapping[str, Any] | None = None
    # Refused before anything was made (429 queue/rate limit): try again after this.
    retry_after_s: float | None = None
    # The answer was lost or was a 5xx: the batch may exist; reconcile before sending again.
    unknown: str | None = None
    # Refused for good (400, 413, 401…): the message says why.
    error: BatchApiError | None = None


def _error(response: UpstreamResponse, body: bytes) -> BatchApiError:
    error_type, message = "api_error", body[:200].decode("utf-8", "replace")
    try:
        data = orjson.loads(body)
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict):
            error_type = str(err.get("type", error_type))
            message = str(err.get("message", message))
    except orjson.JSONDecodeError:
        pass
    return BatchApiError(
        status=response.status,
        error_type=error_type,
        message=message,
        retry_after=retry_after_s(dict(response.headers)),
    )


class BatchApi:
    """Create, retrieve, list, cancel and read the results of Message Batches."""

    def __init__(
        self,
        *,
        reads: Upstream,
        writes: Upstream,
        api_key: str,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        seed: int | None = None,
    ) -> None:
        self._reads = reads
        self._writes = writes
        self._headers = {
            "x-api-key": api_key,
            "anthropic-version": API_VERSION,
            "content-type": "application/json",
            "accept": "application/json",
        }
        self._sleep = sleep
        self._rng = random.Random(seed)

    async def aclose(self) -> None:
        await self._reads.aclose()
        if self._writes is not self._reads:
            await self._writes.aclose()

    def _req(
        self, method: str, path: str, *, body: bytes = b"", query: str = ""
    ) -> UpstreamRequest:
        return UpstreamRequest(method, path, self._headers, body=body, query=query)

    async def _json(self, method: str, path: str, *, query: str = "") -> dict[str, Any]:
        response = await self._reads.send(self._req(method, path, query=query))
        if response.status >= 400:
            raise _error(response, response.body)
        data = orjson.loads(response.body)
        if not isinstance(data, dict):
            raise UpstreamError(f"{method} {path}: expected a JSON object, got {data!r:.80}")
        return data

    # ------------------------------------------------------------------ endpoints

    async def create(self, body: bytes) -> CreateOutcome:
        """POST a batch once; see :class:`CreateOutcome` for what a failure means."""
        try:
            response = await self._writes.send(self._req("POST", _BATCHES, body=body))
        except UpstreamError as exc:
            return CreateOutcome(unknown=f"the create's answer was lost ({exc})")
        if response.status < 400:
            try:
                data = orjson.loads(response.body)
            except orjson.JSONDecodeError:
                return CreateOutcome(unknown="the create's answer was not JSON")
            if isinstance(data, dict) and isinstance(data.get("id"), str):
                return CreateOutcome(batch=data)
            return CreateOutcome(unknown=f"the create's answer has no batch id: {data!r:.80}")
        err = _error(response, response.body)
        if response.status == 429:
            return CreateOutcome(retry_after_s=err.retry_after, error=err)
        if response.status >= 500 or response.status in (408, 409):
            return CreateOutcome(unknown=f"the create failed with {err}", error=err)
        return CreateOutcome(error=err)

    async def retrieve(self, batch_id: str) -> dict[str, Any]:
        return await self._json("GET", f"{_BATCHES}/{batch_id}")

    async def cancel(self, batch_id: str) -> dict[str, Any]:
        return await self._json("POST", f"{_BATCHES}/{batch_id}/cancel")

    async def list_page(self, *, limit: int = 100, after_id: str | None = None) -> dict[str, Any]:
        query: dict[str, str | int] = {"limit": limit}
        if after_id:
            query["after_id"] = after_id
        return await self._json("GET", _BATCHES, query=urlencode(query))

    async def newest(self) -> Mapping[str, Any] | None:
        """The newest batch of the workspace, if any (a job's horizon)."""
        page = await self.list_page(limit=1)
        data = page.get("data") or []
        return data[0] if data else None

    async def list_since(self, horizon: Mapping[str, Any] | None) -> AsyncIterator[dict[str, Any]]:
        """Batches newest first, down to (not including) the ``horizon`` batch."""
        stop_id = horizon.get("id") if horizon else None
        stop_at = str(horizon.get("created_at") or "") if horizon else ""
        after: str | None = None
        while True:
            page = await self.list_page(limit=100, after_id=after)
            data = page.get("data") or []
            for batch in data:
                if batch.get("id") == stop_id or (
                    stop_at and str(batch.get("created_at") or "") < stop_at
                ):
                    return
                yield batch
            if not page.get("has_more") or not data:
                return
            after = str(data[-1].get("id"))

    async def results(self, batch_id: str) -> AsyncIterator[bytes]:
        """The result lines of an ended batch, as they arrive (never the whole file)."""
        path = f"{_BATCHES}/{batch_id}/results"
        response = await self._reads.send(self._req("GET", path), stream=True)
        stream = response.stream
        if response.status >= 400:
            body = b""
            if stream is not None:
                async for chunk in stream:
                    body += chunk
            raise _error(response, body)
        if stream is None:
            for line in response.body.splitlines():
                if line.strip():
                    yield line
            return
        buffer = b""
        try:
            async for chunk in stream:
                buffer += chunk
                if b"\n" not in buffer:
                    continue
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield line
            if buffer.strip():
                yield buffer
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()

    async def first_result_id(self, batch_id: str) -> str | None:
        """The custom_id of the first result line of an ended batch (identifies its creator)."""
        lines = self.results(batch_id)
        try:
            async for line in lines:
                data = orjson.loads(line)
                cid = data.get("custom_id") if isinstance(data, dict) else None
                return cid if isinstance(cid, str) else None
        finally:
            await lines.aclose()  # type: ignore[attr-defined]
        return None

    async def message(self, body: bytes) -> UpstreamResponse:
        """POST /v1/messages (the optional warm-up request); retried like a read."""
        return await self._reads.send(self._req("POST", "/v1/messages", body=body))

    async def backoff(self, attempt: int, *, retry_after: float | None) -> None:
        """Wait before polling again (the runner's loop; jittered, or what the server said)."""
        await self._sleep(READ_RETRY.backoff_s(attempt, retry_after=retry_after, rng=self._rng))


def open_batch_api(
    base_url: str,
    *,
    api_key: str,
    offline: bool = False,
    transport: Any = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    seed: int | None = None,
) -> BatchApi:
    """A :class:`BatchApi` on ``base_url`` (``transport``: an httpx transport, for tests)."""
    reads = HttpUpstream(
        base_url, retry=READ_RETRY, offline=offline, transport=transport, sleep=sleep, seed=seed
    )
    writes = HttpUpstream(base_url, retry=None, offline=offline, transport=transport, seed=seed)
    return BatchApi(reads=reads, writes=writes, api_key=api_key, sleep=sleep, seed=seed)
