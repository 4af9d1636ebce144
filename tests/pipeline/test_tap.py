"""StreamTap decodes only the frames the meter needs: its facts must be the full decoder's.

The reference is the tap's decoder path, the one it had before it learnt to skip frames: every
frame through :class:`~tokenomy.wire.sse.SSEDecoder` and its JSON decoded. Both are fed the same
bytes cut at arbitrary places, and must agree on every fact and on which chunk carried the first
content.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tokenomy.pipeline import ResponseFacts, StreamTap
from tokenomy.wire.sse import SSEDecoder

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
STREAMS = [
    (FIXTURES / "emulator" / "stream_text.txt").read_bytes(),
    (FIXTURES / "emulator" / "stream_thinking_tool_use.txt").read_bytes(),
    (FIXTURES / "usage" / "stream_sonnet46.txt").read_bytes(),
]


def reference_tap() -> StreamTap:
    """The tap with every byte through the decoder (the path a ``\\r`` in a stream takes)."""
    return StreamTap(_decoder=SSEDecoder())


def _run(tap: StreamTap, chunks: list[bytes]) -> tuple[list[bool], ResponseFacts]:
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
    assert _run(StreamTap(), chunks) == _run(reference_tap(), chunks)


def test_a_whole_stream_gives_usage_ids_and_the_first_content_chunk() -> None:
    chunks = _cut(STREAMS[0], [500, 900])
    firsts, facts = _run(StreamTap(), chunks)
    assert firsts == _run(reference_tap(), chunks)[0]
    assert sum(firsts) == 1
    assert facts.complete
    assert facts.usage is not None
    assert facts.message_id is not None
    assert facts.stop_reason is not None
