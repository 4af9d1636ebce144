"""LeanUpstream, the relay's way out, against a scripted HTTP/1.1 server on loopback.

The gateway suites run it against the emulator (streams, errors, hang-ups, faults); these
tests pin what a scripted peer can show: the exact request bytes (aiohttp's), keep-alive reuse,
the odd response shapes (interim 1xx, a body delimited by the end of the connection) and
failures before and during the body.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from tokenomy.errors import UpstreamError
from tokenomy.ports import UpstreamRequest
from tokenomy.upstream import AiohttpUpstream, LeanUpstream

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
REQUEST = UpstreamRequest(
    method="POST",
    path="/v1/messages",
    query="beta=true",
    headers={"x-api-key": "sk-ant-test", "content-type": "application/json"},
    body=b'{"model":"m"}',
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[tuple[str, list[int]]]:
    """A server on an ephemeral port; yields its URL and a list with one entry per connection."""
    connections: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", connections
    finally:
        server.close()


async def _answer_each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        await _read_request(reader)
        writer.write(OK)
        await writer.drain()


@pytest.mark.anyio
async def test_the_request_bytes_are_aiohttps() -> None:
    seen: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            seen.append(await _read_request(reader))
            writer.write(OK)
            await writer.drain()

    async with serving(record) as (url, _):
        for upstream in (LeanUpstream(url), AiohttpUpstream(url)):
            r = await upstream.send(REQUEST)
            assert (r.status, r.body) == (200, b"{}")
            await upstream.aclose()
    assert len(seen) == 2
    assert seen[0] == seen[1]
    assert seen[0].startswith(b"POST /v1/messages?beta=true HTTP/1.1\r\nHost: 127.0.0.1:")


@pytest.mark.anyio
async def test_a_connection_is_reused_after_a_whole_response_and_not_after_close() -> None:
    async with serving(_answer_each) as (url, connections):
        upstream = LeanUpstream(url)
        for _ in range(3):
            r = await upstream.send(REQUEST, stream=True)
            assert r.stream is not None
            assert b"".join([c async for c in r.stream]) == b"{}"
        assert len(connections) == 1
        await upstream.aclose()

    async def close_each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(OK.replace(b"200 OK\r\n", b"200 OK\r\nconnection: close\r\n"))
        await writer.drain()

    async with serving(close_each) as (url, connections):
        upstream = LeanUpstream(url)
        for _ in range(2):
            assert (await upstream.send(REQUEST)).body == b"{}"
        assert len(connections) == 2
        await upstream.aclose()


@pytest.mark.anyio
async def test_interim_answers_are_skipped_and_headers_kept_raw() -> None:
    async def continue_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nrequest-id: req_9\r\n"
            b"transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
        await writer.drain()

    async with serving(continue_first) as (url, _):
        upstream = LeanUpstream(url)
        r = await upstream.send(REQUEST)
        await upstream.aclose()
    assert (r.status, r.body) == (429, b"hello")
    assert r.headers == {"retry-after": "7", "request-id": "req_9"}


@pytest.mark.anyio
async def test_a_body_delimited_by_the_end_of_the_connection_is_read_whole() -> None:
    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\npart one, ")
        await writer.drain()
        writer.write(b"part two")
        await writer.drain()

    async with serving(until_close) as (url, _):
        upstream = LeanUpstream(url)
        r = await upstream.send(REQUEST)
        await upstream.aclose()
    assert r.body == b"part one, part two"


@pytest.mark.anyio
async def test_failures_before_and_during_the_body() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)

    async with serving(hang_up) as (url, _):
        upstream = LeanUpstream(url)
        with pytest.raises(UpstreamError, match="unreachable") as info:
            await upstream.send(REQUEST)
        assert not info.value.timeout
        await upstream.aclose()

    async def cut_short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this")
        await writer.drain()

    async with serving(cut_short) as (url, _):
        upstream = LeanUpstream(url)
        r = await upstream.send(REQUEST, stream=True)
        assert r.stream is not None
        with pytest.raises(UpstreamError, match="stream broke"):
            async for _ in r.stream:
                pass
        await upstream.aclose()

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nslow")
        await writer.drain()
        await asyncio.sleep(5)

    async with serving(stall) as (url, _):
        upstream = LeanUpstream(url, timeout_s=0.3)
        r = await upstream.send(REQUEST, stream=True)
        assert r.stream is not None
        with pytest.raises(UpstreamError) as broke:
            async for _ in r.stream:
                pass
        assert broke.value.timeout
        await upstream.aclose()

    refused = LeanUpstream("http://127.0.0.1:9")
    with pytest.raises(UpstreamError, match="unreachable"):
        await refused.send(REQUEST)
    await refused.aclose()


@pytest.mark.anyio
async def test_what_is_not_a_plain_post_goes_through_aiohttp() -> None:
    seen: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            seen.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(OK)
            await writer.drain()

    async with serving(record) as (url, _):
        upstream = LeanUpstream(url)
        r = await upstream.send(UpstreamRequest(method="GET", path="/v1/models", headers={}))
        assert (r.status, r.body) == (200, b"{}")
        await upstream.aclose()
    assert seen[0].startswith(b"GET /v1/models HTTP/1.1\r\n")
