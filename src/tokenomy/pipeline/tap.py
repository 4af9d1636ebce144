"""Reading responses as they pass: usage, ids, stop reason, time to first token, errors.

Sans-I/O: :class:`StreamTap` is fed the raw bytes of an SSE response in whatever chunks they
arrive and never holds more than one partial frame; :func:`read_message` parses a whole JSON
response. Both produce the facts the meter needs; neither changes a byte.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from tokenomy.core.usage import StreamUsage, Usage
from tokenomy.errors import UsageError
from tokenomy.wire.sse import SSEDecoder

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


@dataclass(slots=True)
class StreamTap:
    """Folds an SSE byte stream into :class:`ResponseFacts` as it passes."""

    _decoder: SSEDecoder = field(default_factory=SSEDecoder)
    _usage: StreamUsage = field(default_factory=StreamUsage)
    facts: ResponseFacts = field(default_factory=ResponseFacts)
    first_content: bool = False

    def feed(self, chunk: bytes) -> bool:
        """Feed bytes; returns True when this chunk carried the first content event."""
        first_now = False
        for ev in self._decoder.feed(chunk):
            if ev.event == "ping":
                continue
            try:
                data = ev.json()
            except orjson.JSONDecodeError:
                continue
            if not isinstance(data, Mapping):
                continue
            kind = data.get("type", ev.event)
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
        for _ in self._decoder.flush():
            pass
        if self._usage.started:
            try:
                self.facts.usage = self._usage.usage()
            except UsageError as exc:
                self.facts.error_type = self.facts.error_type or "invalid_usage"
                self.facts.error_message = self.facts.error_message or str(exc)
        return self.facts
