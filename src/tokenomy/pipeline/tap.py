"""Reading responses as they pass: usage, ids, stop reason, time to first token, errors.

Sans-I/O: :class:`StreamTap` is fed the raw bytes of an SSE response in whatever chunks they
arrive and never holds more than one partial frame; :func:`read_message` parses a whole JSON
response. Both produce the facts the meter needs; neither changes a byte.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from tokenomy.core.usage import StreamUsage, Usage
from tokenomy.errors import UsageError
from tokenomy.wire.sse import SSEDecoder, SSEEvent

__all__ = ["ResponseFacts", "StreamTap", "read_message"]

_CONTENT_EVENTS = frozenset({"content_block_start", "content_block_delta"})


@dataclass(slots=True)
class ResponseFacts:
    """What the meter needs from a response."""

    usage: Usage | None = None
    message_id: str | None = None
    model: str | None = None
    stop_reason: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    diagnostics: Any = None
    complete: bool = False
    request_id: str | None = None


def read_message(status: int, body: bytes) -> ResponseFacts:
    """Facts from a non-streaming response body (a Message or an error envelope)."""
    facts = ResponseFacts()
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        facts.error_type = "invalid_response"
        facts.error_message = f"upstream sent {len(body)} bytes that are not JSON"
        return facts
    if not isinstance(data, Mapping):
        return facts
    if status >= 400 or data.get("type") == "error":
        err = data.get("error")
        if isinstance(err, Mapping):
            facts.error_type = str(err.get("type"))
            facts.error_message = str(err.get("message"))
        return facts
    facts.message_id = _str(data.get("id"))
    facts.model = _str(data.get("model"))
    facts.stop_reason = _str(data.get("stop_reason"))
    facts.diagnostics = data.get("diagnostics")
    if isinstance(data.get("usage"), Mapping):
        try:
            facts.usage = Usage.from_wire(data["usage"])
        except UsageError as exc:
            facts.error_type = "invalid_usage"
            facts.error_message = str(exc)
    facts.complete = True
    return facts


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


# Frames the tap has no use for once it has seen the first content event. The API names each
# event after its data's ``type`` and writes ``type`` first, so a frame named ``X`` whose data
# starts ``{"type":"X"`` is an X: no need to decode its JSON.
_SKIPPABLE = {
    name: b'{"type":"' + name + b'"'
    for name in (b"content_block_start", b"content_block_delta", b"content_block_stop")
}
# Where str.splitlines (the decoder's line split) would cut a line besides "\n" and "\r" (which
# never reach the fast path): a frame with one of these is left to the decoder, so the facts are
# the decoder's to the byte. The ASCII ones cannot stand unescaped in valid JSON either.
_ODD_LINE_BREAK = re.compile(rb"[\x0b\x0c\x1c-\x1e]|\xc2\x85|\xe2\x80[\xa8\xa9]")


@dataclass(slots=True)
class StreamTap:
    """Folds an SSE byte stream into :class:`ResponseFacts` as it passes.

    The bytes are never copied more than once: complete frames are cut on the blank line,
    ``ping`` and content frames after the first are recognised by their event line alone, and
    only the few frames the meter needs (``message_start``, the first content event,
    ``message_delta``, ``message_stop``, ``error``) have their JSON decoded. A frame of any
    other shape (comments, several data lines, ``\r`` line ends) goes through
    :class:`~tokenomy.wire.sse.SSEDecoder`, which defines the result.
    """

    _usage: StreamUsage = field(default_factory=StreamUsage)
    facts: ResponseFacts = field(default_factory=ResponseFacts)
    first_content: bool = False
    _pending: bytes = b""
    # set once a "\r" shows up: from then on every byte goes through the decoder
    _decoder: SSEDecoder | None = None

    def feed(self, chunk: bytes) -> bool:
        """Feed bytes; returns True when this chunk carried the first content event."""
        if self._decoder is not None or b"\r" in chunk:
            return self._feed_decoder(chunk)
        buf = self._pending + chunk if self._pending else chunk
        first_now = False
        start = 0
        while (end := buf.find(b"\n\n", start)) != -1:
            frame = buf[start:end]
            start = end + 2
            if self._frame(frame):
                first_now = True
        self._pending = buf[start:]
        return first_now

    def _frame(self, frame: bytes) -> bool:
        if frame.startswith(b"event: "):
            nl = frame.find(b"\n")
            name = frame[7:nl]
            if nl > 7 and frame.startswith(b"data: ", nl + 1):
                data = frame[nl + 7 :]
                if name == b"ping":
                    return False
                if self.first_content and name in _SKIPPABLE and data.startswith(_SKIPPABLE[name]):
                    return False
                if b"\n" not in data and (data.isascii() or not _ODD_LINE_BREAK.search(data)):
                    try:
                        value = orjson.loads(data)
                    except orjson.JSONDecodeError:
                        pass  # e.g. bytes that are not UTF-8: the decoder replaces them
                    else:
                        return self._event(name.decode("utf-8", "replace"), value)
        return any(self._decoded(ev) for ev in SSEDecoder().feed(frame + b"\n\n"))

    def _feed_decoder(self, chunk: bytes) -> bool:
        if self._decoder is None:
            self._decoder = SSEDecoder()
            chunk, self._pending = self._pending + chunk, b""
        first_now = False
        for ev in self._decoder.feed(chunk):
            if self._decoded(ev):
                first_now = True
        return first_now

    def _decoded(self, ev: SSEEvent) -> bool:
        if ev.event == "ping":
            return False
        try:
            data = ev.json()
        except orjson.JSONDecodeError:
            return False
        return self._event(ev.event, data)

    def _event(self, name: str, data: Any) -> bool:
        """Fold one decoded event in; True when it is the first content event."""
        if not isinstance(data, Mapping):
            return False
        first_now = False
        kind = data.get("type", name)
        if kind in _CONTENT_EVENTS and not self.first_content:
            self.first_content = first_now = True
        if kind == "message_start" and isinstance(data.get("message"), Mapping):
            m = data["message"]
            self.facts.message_id = _str(m.get("id"))
            self.facts.model = _str(m.get("model"))
            if m.get("diagnostics") is not None:
                self.facts.diagnostics = m["diagnostics"]
        elif kind == "message_delta":
            if data.get("diagnostics") is not None:
                self.facts.diagnostics = data["diagnostics"]
            delta = data.get("delta")
            if isinstance(delta, Mapping) and delta.get("stop_reason") is not None:
                self.facts.stop_reason = _str(delta.get("stop_reason"))
        elif kind == "error":
            err = data.get("error")
            if isinstance(err, Mapping):
                self.facts.error_type = _str(err.get("type"))
                self.facts.error_message = _str(err.get("message"))
        elif kind == "message_stop":
            self.facts.complete = True
        self._usage.feed(data)
        return first_now

    def close(self) -> ResponseFacts:
        """The facts so far (a stream cut short keeps the usage it had)."""
        # A frame cut short (no blank line after it) is dropped, as the decoder's flush is.
        self._pending = b""
        if self._decoder is not None:
            for _ in self._decoder.flush():
                pass
        if self._usage.started:
            try:
                self.facts.usage = self._usage.usage()
            except UsageError as exc:
                self.facts.error_type = self.facts.error_type or "invalid_usage"
                self.facts.error_message = self.facts.error_message or str(exc)
        return self.facts
