"""The way out to the Anthropic API (real or emulated), over httpx.

- Requests go out as bytes; responses come back whole or as a raw byte stream (never decoded
  or re-chunked, so a relay can forward each frame the moment it arrives).
- Optional retries for callers that want them (the batch runner): 408/409/429/5xx/529 and
  connection errors, exponential backoff with jitter, honouring ``retry-after`` /
  ``retry-after-ms`` (up to 60 s, as the SDK does). A relay passes errors through instead.
- ``offline=True`` refuses any upstream that is not on this machine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from tokenomy.errors import ConfigError, UpstreamError
from tokenomy.ports import UpstreamRequest, UpstreamResponse

__all__ = ["HOP_BY_HOP", "HttpUpstream", "RetryPolicy", "is_local_url", "retry_after_s"]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


def is_local_url(url: str) -> bool:
    """Whether ``url`` points at this machine (loopback, localhost)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def retry_after_s(headers: httpx.Headers | dict[str, str]) -> float | None:
    """The server's ``retry-after-ms`` / ``retry-after`` in seconds, if sensible (≤ 60 s)."""
    for key, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(key)
        if value is None:
            continue
        try:
            s = float(value) * scale
        except ValueError:
            continue
        if 0 <= s <= 60:
            return s
    return None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a caller that wants retries gets them."""

    max_retries: int = 2
    initial_s: float = 0.5
    max_s: float = 8.0
    statuses: frozenset[int] = frozenset({408, 409, 429, 500, 502, 503, 504, 529})

    def backoff_s(self, attempt: int, *, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return retry_after
        base = min(self.max_s, self.initial_s * (2**attempt))
        return float(base * (1 - 0.25 * rng.random()))


class HttpUpstream:
    """An :class:`~tokenomy.ports.Upstream` over one pooled ``httpx.AsyncClient``."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 600.0,
        connect_timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        offline: bool = False,
        max_connections: int = 200,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        seed: int | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"upstream URL {base_url!r} must start with http:// or https://")
        if offline and transport is None and not is_local_url(base_url):
            raise ConfigError(
                f"offline mode: refusing to reach {base_url!r}; point the upstream at the emulator "
                "(tokenomy emulator) or unset TOKENOMY_OFFLINE"
            )
        self.base_url = base_url.rstrip("/")
        self.retry = retry
        self._sleep = sleep
        self._rng = random.Random(seed)
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        if transport is None:
            # TCP_NODELAY: a request goes out as headers then body; with Nagle's algorithm the
            # second write waits for the peer's delayed ACK (~40 ms on loopback).
            transport = httpx.AsyncHTTPTransport(
                limits=limits,
                socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            )
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            transport=transport,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=limits,
            follow_redirects=False,
        )

    async def send(self, request: UpstreamRequest, *, stream: bool = False) -> UpstreamResponse:
        """Send ``request``; with ``stream`` the body comes back as raw chunks."""
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        url = request.path + (f"?{request.query}" if request.query else "")
        attempts = 0
        while True:
            req = self._client.build_request(
                request.method, url, headers=headers, content=request.body
            )
            try:
                response = await self._client.send(req, stream=True)
            except httpx.TimeoutException as exc:
                if self._should_retry(attempts, None):
                    await self._wait(attempts, None)
                    attempts += 1
                    continue
                raise UpstreamError(
                    f"upstream {self.base_url} timed out ({type(exc).__name__})", timeout=True
                ) from exc
            except httpx.HTTPError as exc:
                if self._should_retry(attempts, None):
                    await self._wait(attempts, None)
                    attempts += 1
                    continue
                raise UpstreamError(
                    f"upstream {self.base_url} unreachable ({type(exc).__name__}: {exc}); "
                    "check the upstream URL and that it is running"
                ) from exc
            if self._should_retry(attempts, response.status_code):
                after = retry_after_s(response.headers)
                await response.aclose()
                await self._wait(attempts, after)
                attempts += 1
                continue
            out_headers = {k: v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP}
            if stream:
                return UpstreamResponse(
                    status=response.status_code,
                    headers=out_headers,
                    stream=_raw(response),
                    extra={"retries": attempts},
                )
            try:
                body = await response.aread()
            except httpx.HTTPError as exc:
                raise UpstreamError(
                    f"upstream {self.base_url} dropped the response ({exc})"
                ) from exc
            finally:
                await response.aclose()
            return UpstreamResponse(
                status=response.status_code,
                headers=out_headers,
                body=body,
                extra={"retries": attempts},
            )

    async def _wait(self, attempts: int, retry_after: float | None) -> None:
        assert self.retry is not None
        await self._sleep(self.retry.backoff_s(attempts, retry_after=retry_after, rng=self._rng))

    def _should_retry(self, attempts: int, status: int | None) -> bool:
        if self.retry is None or attempts >= self.retry.max_retries:
            return False
        return status is None or status in self.retry.statuses

    async def aclose(self) -> None:
        await self._client.aclose()


async def _raw(response: httpx.Response) -> AsyncIterator[bytes]:
    """The raw body as it arrives; the response is closed however the iteration ends."""
    try:
        async for chunk in response.aiter_raw():
            yield chunk
    except httpx.HTTPError as exc:
        raise UpstreamError(
            f"upstream stream broke: {type(exc).__name__}: {exc}",
            timeout=isinstance(exc, httpx.TimeoutException),
        ) from exc
    finally:
        await response.aclose()
