"""Server-sent events as the Messages API speaks them: parse incrementally, emit exactly.

Sans-I/O: :class:`SSEDecoder` takes bytes as they arrive and yields complete events; it never
reads a socket. Frames are ``event: <name>\\ndata: <json>\\n\\n``; ``ping`` may come anywhere and
unknown event names must be tolerated.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["SSEDecoder", "SSEEvent", "encode_event"]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One event: its name (``event:`` line, or ``message``), raw data and the bytes it came in."""

    event: str
    data: str
    raw: bytes

    def json(self) -> Any:
        """The data decoded as JSON (raises ``orjson.JSONDecodeError`` when it is not)."""
        return orjson.loads(self.data)


class SSEDecoder:
    """Incremental decoder: ``feed(chunk)`` yields every event completed by the chunk."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> Iterator[SSEEvent]:
        self._buf += chunk
        while True:
            frame, sep_len = self._next_frame()
            if frame is None:
                return
            raw = bytes(self._buf[: len(frame) + sep_len])
            del self._buf[: len(frame) + sep_len]
            event = _parse_frame(frame, raw)
            if event is not None:
                yield event

    def flush(self) -> Iterator[SSEEvent]:
        """Events left in the buffer when the stream ends without a final blank line."""
        if self._buf.strip():
            raw = bytes(self._buf)
            self._buf.clear()
            event = _parse_frame(raw, raw)
            if event is not None:
                yield event
        else:
            self._buf.clear()

    @property
    def pending_bytes(self) -> int:
        return len(self._buf)

    def _next_frame(self) -> tuple[bytes | None, int]:
        best = -1
        best_len = 0
        for sep in (b"\n\n", b"\r\n\r\n", b"\r\r"):
            i = self._buf.find(sep)
            if i != -1 and (best == -1 or i < best):
                best, best_len = i, len(sep)
        if best == -1:
            return None, 0
        return bytes(self._buf[:best]), best_len


def _parse_frame(frame: bytes, raw: bytes) -> SSEEvent | None:
    name = "message"
    data: list[str] = []
    for line in frame.decode("utf-8", errors="replace").splitlines():
        if not line or line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    if not data and name == "message":
        return None
    return SSEEvent(event=name, data="\n".join(data), raw=raw)


def encode_event(data: Mapping[str, Any], *, event: str | None = None) -> bytes:
    """One SSE frame; the event name defaults to the payload's ``type``, as the API does."""
    name = event if event is not None else str(data.get("type", "message"))
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
