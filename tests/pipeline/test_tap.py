"""StreamTap decodes only the frames the meter needs: its facts must be the full decoder's.

The reference below is the tap as it was before it learnt to skip frames: every frame through
:class:`~tokenomy.wire.sse.SSEDecoder` and its JSON decoded. Both are fed the same bytes cut at
arbitrary places, and must agree on every fact and on which chunk carried the first content.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenomy.core.usage import StreamUsage
from tokenomy.errors import UsageError
from tokenomy.pipeline import ResponseFacts, StreamTap
from tokenomy.wire.sse import SSEDecoder

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
STREAMS = [
    (FIXTURES / "emulator" / "stream_text.txt").read_bytes(),
    (FIXTURES / "emulator" / "stream_thinking_tool_use.txt").read_bytes(),
    (FIXTURES / "usage" / "stream_sonnet46.txt").read_bytes(),
]


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


@dataclass
class ReferenceTap:
    decoder: SSEDecoder = field(default_factory=SSEDecoder)
    usage: StreamUsage = field(default_factory=StreamUsage)
    facts: ResponseFacts = field(default_factory=ResponseFacts)
    first_content: bool = False

    def feed(self, chunk: bytes) -> bool:
        first_now = False
        for ev in self.decoder.feed(chunk):
            if ev.event == "ping":
                continue
            try:
                data = ev.json()
            except orjson.JSONDecodeError:
                continue
            if not isinstance(data, Mapping):
                continue
            kind = data.get("type", ev.event)
            if kind in ("content_block_start", "content_block_delta") and not self.first_content:
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
            self.usage.feed(data)
        return first_now

    def close(self) -> ResponseFacts:
        for _ in self.decoder.flush():
            pass
        if self.usage.started:
            try:
                self.facts.usage = self.usage.usage()
            except UsageError as exc:
                self.facts.error_type = self.facts.error_type or "invalid_usage"
                self.facts.error_message = self.facts.error_message or str(exc)
        return self.facts


def _run(tap: StreamTap | ReferenceTap, chunks: list[bytes]) -> tuple[list[bool], ResponseFacts]:
    firsts = [tap.feed(c) for c in chunks]
    return firsts, tap.close()


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


# Odd but legal SSE, and some that is not: each must fold exactly as the decoder folds it.
ODD_FRAMES = [
    b": a comment\n\n",
    b"event: ping\ndata: {}\n\n",
    b'event: content_block_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"x"}}\n\n',
    b'event: content_block_stop\ndata: {"index":0,"type":"content_block_stop"}\n\n',
    b'data: {"type":"message_delta","usage":{"output_tokens":99}}\n\n',
    b'event: message_delta\ndata: {"type":"message_delta",\ndata: "usage":{"output_tokens":7}}\n\n',
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"a\xe2\x80\xa8b"}}'
    b"\n\n",
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"\xff"}}\n\n',
    b"event: message_delta\ndata: not json\n\n",
    b"event: message_delta\ndata: [1, 2]\n\n",
    b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"busy"}}'
    b"\n\n",
    b'event: message_delta\r\ndata: {"type":"message_delta","usage":{"output_tokens":3}}\r\n\r\n',
    b"\n",
    b"event: message_delta\n\n",
    b'event:message_delta\ndata:{"type":"message_delta","usage":{"output_tokens":5}}\n\n',
    b'event: message_stop\ndata: {"type":"message_stop"}\nid: 9\n\n',
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{}}\n\n',
]


@settings(max_examples=300, deadline=None)
@given(
    stream=st.sampled_from(range(len(STREAMS))),
    odd=st.lists(st.sampled_from(ODD_FRAMES), max_size=4),
    where=st.integers(min_value=0, max_value=40),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12),
    tail=st.sampled_from([b"", b"event: message_delta\ndata: {", b"event: pi"]),
)
def test_the_tap_folds_any_cut_of_a_stream_as_the_decoder_does(
    stream: int, odd: list[bytes], where: int, cuts: list[int], tail: bytes
) -> None:
    frames = STREAMS[stream].split(b"\n\n")
    frames = [f + b"\n\n" for f in frames if f]
    at = min(where, len(frames))
    data = b"".join([*frames[:at], *odd, *frames[at:]]) + tail
    chunks = _cut(data, cuts)
    assert _run(StreamTap(), chunks) == _run(ReferenceTap(), chunks)


def test_a_whole_stream_gives_usage_ids_and_the_first_content_chunk() -> None:
    chunks = _cut(STREAMS[0], [500, 900])
    firsts, facts = _run(StreamTap(), chunks)
    assert firsts == _run(ReferenceTap(), chunks)[0]
    assert sum(firsts) == 1
    assert facts.complete
    assert facts.usage is not None
    assert facts.message_id is not None
    assert facts.stop_reason is not None
