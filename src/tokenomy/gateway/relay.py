"""ASGI plumbing for the relay: bounded body reads, responses, and client hang-up detection.

- :func:`read_body` reads a request body up to a limit (the API's 32 MB) and stops there.
- :func:`until_disconnect` runs the relay of one response while watching ``receive`` for the
  client hanging up; a hang-up cancels the relay, whose ``finally`` closes the upstream
  response (so the upstream request is cancelled too and no connection leaks).
- :class:`Reply` sends a response: a whole body, or a stream written frame by frame as the
  upstream sends it (no buffering, no re-chunking).
- :func:`primed` puts the first chunk of an upstream body, already read, back in front of it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
    MutableMapping,
)
from typing import Any

import orjson

__all__ = [
    "ASGIReceive",
    "ASGISend",
    "BodyTooLarge",
    "ClientGone",
    "Reply",
    "primed",
    "read_body",
    "until_disconnect",
]

ASGIReceive = Callable[[], Awaitable[MutableMapping[str, Any]]]
ASGISend = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class BodyTooLarge(Exception):
    """The request body is over the limit; ``seen`` bytes were read before stopping."""

    def __init__(self, seen: int) -> None:
        super().__init__(seen)
        self.seen = seen


class ClientGone(Exception):
    """The client disconnected before its request body was complete."""


async def read_body(receive: ASGIReceive, *, limit: int, declared: int | None) -> bytes:
    """The whole request body; raises BodyTooLarge past ``limit`` (checked before reading
    when the client declared a ``content-length``), ClientGone on a hang-up."""
    if declared is not None and declared > limit:
        raise BodyTooLarge(0)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.disconnect":
            raise ClientGone()
        if kind != "http.request":
            continue
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(size)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _wait_disconnect(receive: ASGIReceive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def until_disconnect(receive: ASGIReceive, work: Coroutine[Any, Any, None]) -> bool:
    """Run ``work``; cancel it if the client hangs up first. Returns True on a hang-up.

    ``work`` must clean up (close the upstream response, meter the call) in its own
    ``finally``: cancellation reaches it as ``CancelledError`` wherever it is waiting.
    """
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_disconnect(receive))
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        watcher.cancel()
        raise
    if task in done:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        task.result()  # re-raise what the relay raised
        return False
    # The watcher finished first and the relay has not: the client is gone mid-response.
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return True


def _headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]


class Reply:
    """Sends one response over ASGI ``send``."""

    def __init__(self, send: ASGISend) -> None:
        self._send = send
        self.started = False
        self.status = 0
        self.complete = False

    async def start(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        self.started = True
        self.status = status
        await self._send(
            {"type": "http.response.start", "status": status, "headers": _headers(headers)}
        )

    async def chunk(self, data: bytes) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def end(self, data: bytes = b"") -> None:
        self.complete = True
        await self._send({"type": "http.response.body", "body": data, "more_body": False})

    async def whole(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        out = [(k, v) for k, v in headers.items() if k.lower() != "content-length"]
        out.append(("content-length", str(len(body))))
        await self.start(status, out)
        await self.end(body)

    async def json(
        self, status: int, data: Any, *, headers: Mapping[str, str] | None = None
    ) -> None:
        await self.whole(
            status, {"content-type": "application/json", **(headers or {})}, orjson.dumps(data)
        )


async def primed(first: bytes | None, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``first`` (already read) followed by the rest of ``rest``; closing this closes ``rest``."""
    try:
        if first is None:
            return
        yield first
        async for chunk in rest:
            yield chunk
    finally:
        aclose = getattr(rest, "aclose", None)
        if aclose is not None:
            await aclose()
