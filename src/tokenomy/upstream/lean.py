"""The relay's hot path out: ``POST`` over pooled HTTP/1.1 connections, parsed by httptools.

A gateway relays many small streamed calls, and its added latency is its CPU per call. aiohttp
spends about 0.1 ms of it per call on request and response objects, timers and stream readers
(``docs/design/gateway.md``). :class:`LeanUpstream` sends a ``POST`` as one write on a pooled
connection and reads the answer with httptools' C parser (the parser uvicorn uses), handing the
body over as it arrives. Every other request (``GET``, ``HEAD``, a path or query it would have
to re-encode) goes through :class:`~tokenomy.upstream.aio.AiohttpUpstream`.

Behaviour matches AiohttpUpstream: the same request bytes (``Host``, the caller's headers,
``Content-Length``), raw body bytes back (never decompressed or re-chunked), a connection reused
only after a complete response, errors as :class:`~tokenomy.errors.UpstreamError` (``timeout``
set when the upstream was too slow; ``timeout_s`` bounds the whole call, body included).
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import AsyncIterator
from typing import cast
from urllib.parse import urlsplit

import httptools

from tokenomy.errors import UpstreamError
from tokenomy.ports import UpstreamRequest, UpstreamResponse
from tokenomy.upstream.aio import AiohttpUpstream
from tokenomy.upstream.http import HOP_BY_HOP

__all__ = ["LeanUpstream"]

# Paths and queries sent as they are: nothing in them a URL library would re-encode.
_PLAIN = re.compile(r"[A-Za-z0-9/_.~-]*")
_PLAIN_QUERY = re.compile(r"[A-Za-z0-9/_.~=&%+,:-]*")
_BAD_HEADER = re.compile(r"[\r\n\0]")
# An idle connection older than this is closed rather than reused (aiohttp's keep-alive
# timeout): a peer or a middlebox may have dropped it without a word.
_IDLE_S = 15.0
# Stop reading a response whose reader is this far behind (a slow client); resume once it
# has caught up.
_HIGH_WATER_BYTES = 256 * 1024


class LeanUpstream:
    """An :class:`~tokenomy.ports.Upstream` for a relay; see the module docstring."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 600.0,
        connect_timeout_s: float = 10.0,
        offline: bool = False,
        max_connections: int = 200,
    ) -> None:
        # The fallback checks the URL (scheme, offline) and serves what this does not.
        self._fallback = AiohttpUpstream(
            base_url,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            offline=offline,
            max_connections=max_connections,
        )
        self.base_url = self._fallback.base_url
        parts = urlsplit(self.base_url)
        self._tls = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._tls else 80)
        host = f"[{self._host}]" if ":" in self._host else self._host
        default = 443 if self._tls else 80
        self._host_header = host if self._port == default else f"{host}:{self._port}"
        self._prefix = parts.path.rstrip("/")
        self._lean = not parts.query and not parts.fragment and bool(_PLAIN.fullmatch(self._prefix))
        self._timeout_s = timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._max_connections = max_connections
        self._ssl: ssl.SSLContext | None = ssl.create_default_context() if self._tls else None
        self._idle: list[_Connection] = []
        self._slots: asyncio.Semaphore | None = None
        self._closed = False

    async def send(self, request: UpstreamRequest, *, stream: bool = False) -> UpstreamResponse:
        """Send ``request``; with ``stream`` the body comes back as raw chunks."""
        if not (
            self._lean
            and request.method == "POST"
            and _PLAIN.fullmatch(request.path)
            and _PLAIN_QUERY.fullmatch(request.query)
        ):
            return await self._fallback.send(request, stream=stream)
        head = self._head(request)
        loop = asyncio.get_running_loop()
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max_connections)
        timer: asyncio.TimerHandle | None = None
        conn: _Connection | None = None
        await self._slots.acquire()
        try:
            deadline = loop.time() + self._timeout_s
            conn = await self._connection(deadline)
            timer = loop.call_at(deadline, conn.time_out)
            conn.send(head, request.body)
            await conn.wait_head()
        except BaseException as exc:
            if timer is not None:
                timer.cancel()
            if conn is not None:
                conn.close()
            self._slots.release()
            if isinstance(exc, TimeoutError):
                raise UpstreamError(
                    f"upstream {self.base_url} timed out ({type(exc).__name__})", timeout=True
                ) from exc
            if isinstance(exc, OSError | httptools.HttpParserError | _Disconnected):
                raise UpstreamError(
                    f"upstream {self.base_url} unreachable ({type(exc).__name__}: {exc}); "
                    "check the upstream URL and that it is running"
                ) from exc
            raise
        headers = {}
        for name, value in conn.headers:
            key = name.decode("latin-1").lower()
            if key not in HOP_BY_HOP:
                headers[key] = value.decode("latin-1")
        status = conn.status  # the connection forgets it when it goes back to the pool
        body = self._body(conn, timer)
        if stream:
            return UpstreamResponse(status=status, headers=headers, stream=body)
        try:
            data = b"".join([chunk async for chunk in body])
        except UpstreamError as exc:
            raise UpstreamError(
                f"upstream {self.base_url} dropped the response ({exc})", timeout=exc.timeout
            ) from exc
        return UpstreamResponse(status=status, headers=headers, body=data)

    def _head(self, request: UpstreamRequest) -> bytes:
        target = self._prefix + request.path + (f"?{request.query}" if request.query else "")
        lines = [f"POST {target} HTTP/1.1\r\nHost: {self._host_header}\r\n"]
        for name, value in request.headers.items():
            if name.lower() in HOP_BY_HOP:
                continue
            if _BAD_HEADER.search(name) or _BAD_HEADER.search(value):
                raise UpstreamError(f"header {name!r} has a line break in it: not sent")
            lines.append(f"{name}: {value}\r\n")
        lines.append(f"Content-Length: {len(request.body)}\r\n\r\n")
        text = "".join(lines)
        try:
            return text.encode("latin-1")
        except UnicodeEncodeError:
            return text.encode("utf-8")

    async def _connection(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        while self._idle:
            conn = self._idle.pop()
            if conn.reusable and loop.time() - conn.idle_since < _IDLE_S:
                return conn
            conn.close()
        timeout = min(self._connect_timeout_s, max(0.0, deadline - loop.time()))
        async with asyncio.timeout(timeout):
            _, conn = await loop.create_connection(
                _Connection,
                self._host,
                self._port,
                ssl=self._ssl,
                server_hostname=self._host if self._tls else None,
            )
        return conn

    async def _body(
        self, conn: _Connection, timer: asyncio.TimerHandle | None
    ) -> AsyncIterator[bytes]:
        """The raw body as it arrives; the connection goes back to the pool once it is whole."""
        done = False
        try:
            while True:
                data = conn.take()
                if data:
                    yield data
                elif conn.complete:
                    done = True
                    return
                elif conn.error is not None:
                    exc = conn.error
                    raise UpstreamError(
                        f"upstream stream broke: {type(exc).__name__}: {exc}",
                        timeout=isinstance(exc, TimeoutError),
                    ) from exc
                else:
                    await conn.wait_body()
        finally:
            if timer is not None:
                timer.cancel()
            if done and conn.keep_alive and not self._closed:
                conn.reset()
                conn.idle_since = asyncio.get_running_loop().time()
                self._idle.append(conn)
            else:
                # A hang-up, an error, or a body left unread: the connection cannot be reused.
                conn.close()
            assert self._slots is not None
            self._slots.release()

    async def aclose(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()
        await self._fallback.aclose()


class _Disconnected(ConnectionError):
    """The upstream closed the connection before the response was complete."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection: writes a request, parses its response as it arrives."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._paused = False
        self._interim = False
        self._lost = False
        self.headers: list[tuple[bytes, bytes]] = []
        self.status = 0
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.error: BaseException | None = None
        self.idle_since = 0.0

    # ---------------------------------------------------------------- the caller's side

    @property
    def reusable(self) -> bool:
        return not self._lost and self._transport is not None and not self._transport.is_closing()

    def send(self, head: bytes, body: bytes) -> None:
        assert self._transport is not None
        self._transport.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self._transport.write(body)

    async def wait_head(self) -> None:
        while not self.head_done:
            if self.error is not None:
                raise self.error
            await self._wait()

    async def wait_body(self) -> None:
        await self._wait()

    def take(self) -> bytes:
        """The body bytes received so far, joined, and forgotten."""
        chunks = self._chunks
        if not chunks:
            return b""
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = []
        self._buffered = 0
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        return data

    def time_out(self) -> None:
        self._fail(TimeoutError())
        self.close()

    def reset(self) -> None:
        """Ready for the next request on this connection."""
        self.headers = []
        self.status = 0
        self.head_done = self.complete = self.keep_alive = False

    def close(self) -> None:
        self._lost = True
        if self._transport is not None:
            self._transport.close()

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self.error is None and not self.complete:
            self.error = exc
        self._wake()

    # ---------------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(_Disconnected("the upstream switched protocols"))
            self.close()
        except httptools.HttpParserError as exc:
            self._fail(exc)
            self.close()
        if self._buffered > _HIGH_WATER_BYTES and not self._paused and self._transport:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self.head_done and not self.complete and self._reads_to_eof():
            self.complete = True  # a body delimited by the end of the connection
        elif not self.complete:
            self._fail(exc or _Disconnected("the upstream closed the connection"))
        self._wake()

    def _reads_to_eof(self) -> bool:
        return not any(
            name.lower() in (b"content-length", b"transfer-encoding") for name, _ in self.headers
        )

    # ---------------------------------------------------------------- httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            # an interim answer (100 Continue, 103 Early Hints): the real one follows
            self._interim = True
            self.headers = []
            return
        self.status = status
        self.keep_alive = self._parser.should_keep_alive()
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self.complete = True
