"""The gateway's way out: the same :class:`~tokenomy.ports.Upstream` on aiohttp.

A relay sends many small streaming requests; aiohttp's C-accelerated HTTP/1.1 client costs a
fraction of httpx's CPU per call (``docs/design/gateway.md`` has the measurements), which is
what a proxy's added latency is made of. Behaviour matches :class:`HttpUpstream` without
retries: bytes out, raw bytes back (never decompressed or re-chunked), errors as
:class:`~tokenomy.errors.UpstreamError` with ``timeout`` set when the upstream was too slow.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp

from tokenomy.errors import ConfigError, UpstreamError
from tokenomy.ports import UpstreamRequest, UpstreamResponse
from tokenomy.upstream.http import HOP_BY_HOP, is_local_url

__all__ = ["AiohttpUpstream"]


class AiohttpUpstream:
    """An :class:`~tokenomy.ports.Upstream` over one pooled ``aiohttp.ClientSession``."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 600.0,
        connect_timeout_s: float = 10.0,
        offline: bool = False,
        max_connections: int = 200,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"upstream URL {base_url!r} must start with http:// or https://")
        if offline and not is_local_url(base_url):
            raise ConfigError(
                f"offline mode: refusing to reach {base_url!r}; point the upstream at the emulator "
                "(tokenomy emulator) or unset TOKENOMY_OFFLINE"
            )
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=connect_timeout_s)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Created on first use: aiohttp binds a session to the running event loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300),
                timeout=self._timeout,
                auto_decompress=False,  # relay the bytes as they come
                # add nothing the client did not send
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            )
        return self._session

    async def send(self, request: UpstreamRequest, *, stream: bool = False) -> UpstreamResponse:
        """Send ``request``; with ``stream`` the body comes back as raw chunks."""
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        url = self.base_url + request.path + (f"?{request.query}" if request.query else "")
        try:
            response = await self._open().request(
                request.method,
                url,
                data=request.body or None,
                headers=headers,
                allow_redirects=False,
            )
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamError(
                f"upstream {self.base_url} timed out ({type(exc).__name__})", timeout=True
            ) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(
                f"upstream {self.base_url} unreachable ({type(exc).__name__}: {exc}); "
                "check the upstream URL and that it is running"
            ) from exc
        out_headers = {
            k.lower(): v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP
        }
        if stream:
            return UpstreamResponse(
                status=response.status, headers=out_headers, stream=_raw(response)
            )
        try:
            body = await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamError(
                f"upstream {self.base_url} dropped the response ({type(exc).__name__}: {exc})",
                timeout=isinstance(exc, TimeoutError),
            ) from exc
        finally:
            response.release()
        return UpstreamResponse(status=response.status, headers=out_headers, body=body)

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


async def _raw(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The raw body as it arrives; the connection is released however the iteration ends."""
    try:
        async for chunk in response.content.iter_any():
            yield chunk
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise UpstreamError(
            f"upstream stream broke: {type(exc).__name__}: {exc}",
            timeout=isinstance(exc, TimeoutError),
        ) from exc
    except asyncio.CancelledError:
        response.close()  # the client hung up: drop the upstream connection, do not reuse it
        raise
    finally:
        response.release()
