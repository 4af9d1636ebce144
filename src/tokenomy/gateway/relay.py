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


async def until_disconnect(receive: ASGIReceive, work: Coroutine[Any, Any, None]) -> bool:
    """Run ``work``; cancel it if the client hangs up first. Returns True on a hang-up.

    ``work`` must clean up (close the upstream response, meter the call) in its own
    ``finally``: cancellation reaches it as ``CancelledError`` wherever it is waiting.
    ``work`` runs in the calling task; one watcher task waits on ``receive`` beside it.
    """
    task = asyncio.current_task()
    assert task is not None
    watcher = _Watcher(receive, task)
    try:
        await work
    except asyncio.CancelledError:
        # Ours (the client hung up) or from outside (shutdown): only ours is swallowed.
        if watcher.hung_up and task.uncancel() == 0:
            return True
        raise
    finally:
        watcher.stop()
    if watcher.hung_up:  # the cancel came, and ``work`` ended without letting it out
        task.uncancel()
        return True
    return False


class _Watcher:
    """Waits for ``http.disconnect`` and then cancels ``task``, unless stopped first.

    Once stopped it is left to end by itself rather than cancelled: uvicorn answers ``receive``
    with ``http.disconnect`` as soon as the response is complete (or the connection gone), and a
    cancelled task would leave an exception and its frames for the cycle collector.
    """

    __slots__ = ("_future", "_receive", "_stopped", "_task", "hung_up")

    def __init__(self, receive: ASGIReceive, task: asyncio.Task[Any]) -> None:
        self._receive = receive
        self._task = task
        self._stopped = False
        self.hung_up = False
        self._future = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while True:
            message = await self._receive()
            if self._stopped:
                return
            if message["type"] == "http.disconnect":
                break
        self.hung_up = True
        self._task.cancel()

    def stop(self) -> None:
        self._stopped = True


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
