"""From an admitted request to a Message: brain, thinking, truncation, usage, and its stream.

The brain decides what to say; this module makes it a well-formed API reply:

- ids for the message and each ``tool_use`` from the emulator's seeded counters;
- a thinking block first when the request enables thinking (``enabled`` or ``adaptive``),
  with a deterministic signature; thinking blocks are dropped when it does not;
- ``stop_sequences`` cut the text at the first one found (``stop_reason: "stop_sequence"``);
- ``max_tokens`` cuts the content to fit (``stop_reason: "max_tokens"``); ``max_tokens: 0``
  (cache pre-warming) gives no content and no output tokens;
- output tokens counted by the server model's tokenizer; usage from the admission.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tokenomy.emulator.brains import (
    Brain,
    BrainRequest,
    OutBlock,
    Reply,
    StopReason,
    TextOut,
    ThinkingOut,
    ToolUseOut,
)
from tokenomy.emulator.faults import FaultRule
from tokenomy.emulator.latency import LatencyModel, Timing
from tokenomy.emulator.server import ApiError
from tokenomy.emulator.streaming import message_events
from tokenomy.wire.errors import error_body
from tokenomy.wire.sse import encode_event

if TYPE_CHECKING:
    from tokenomy.data.table import ModelInfo
    from tokenomy.emulator.server import Admission, ServerModel
    from tokenomy.emulator.state import Emulator

__all__ = [
    "DROP",
    "Built",
    "EventStreamResponse",
    "build_message",
    "process_batch_item",
    "stream_chunks",
]


@dataclass(frozen=True, slots=True)
class Built:
    """A complete Message body and its output token counts."""

    message: dict[str, Any]
    output_tokens: int
    thinking_tokens: int


def thinking_enabled(body: Mapping[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, Mapping) and thinking.get("type") in ("enabled", "adaptive")


def _signature(text: str) -> str:
    digest = hashlib.blake2b(text.encode(), digest_size=48, person=b"tokenomy-emu").digest()
    return base64.b64encode(digest).decode()


def _thinking_text(request: BrainRequest) -> str:
    n = len(request.messages)
    return f"The user wrote {n} message{'s' if n != 1 else ''}; I will answer briefly."


def build_message(
    em: Emulator,
    body: Mapping[str, Any],
    *,
    admission: Admission,
    brain: Brain,
    headers: Mapping[str, str],
    service_tier: str = "standard",
) -> Built:
    """Ask the brain, then shape, cut and count its reply into a Message."""
    request = BrainRequest(body=body, model_name=admission.model_name, headers=headers)
    reply = brain.reply(request)
    blocks = list(reply.blocks)
    if thinking_enabled(body):
        if not any(isinstance(b, ThinkingOut) for b in blocks):
            blocks.insert(0, ThinkingOut(_thinking_text(request)))
    else:
        blocks = [b for b in blocks if not isinstance(b, ThinkingOut)]
    wire = [_to_wire(em, b) for b in blocks]
    stop_reason: StopReason = Reply(tuple(blocks), reply.stop_reason).inferred_stop_reason
    stop_sequence = reply.stop_sequence if stop_reason == "stop_sequence" else None

    cut = _apply_stop_sequences(wire, body.get("stop_sequences"))
    if cut is not None:
        wire, stop_sequence = cut
        stop_reason = "stop_sequence"

    max_tokens = body.get("max_tokens")
    limit = max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else None
    wire, output_tokens, thinking_tokens, truncated = _fit(
        em.server, wire, model=admission.model, max_tokens=limit
    )
    if truncated:
        stop_reason, stop_sequence = "max_tokens", None
    usage = admission.usage(
        output_tokens=output_tokens,
        service_tier=service_tier,
        thinking_tokens=thinking_tokens if thinking_tokens else None,
    )
    message = {
        "id": em.ids.next("msg_"),
        "type": "message",
        "role": "assistant",
        "model": admission.model_name,
        "content": wire,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage,
    }
    return Built(message=message, output_tokens=output_tokens, thinking_tokens=thinking_tokens)


def _to_wire(em: Emulator, block: OutBlock) -> dict[str, Any]:
    if isinstance(block, TextOut):
        return {"type": "text", "text": block.text}
    if isinstance(block, ToolUseOut):
        return {
            "type": "tool_use",
            "id": block.id or em.ids.next("toolu_"),
            "name": block.name,
            "input": dict(block.input),
        }
    return {"type": "thinking", "thinking": block.thinking, "signature": _signature(block.thinking)}


def _apply_stop_sequences(
    wire: list[dict[str, Any]], stops: object
) -> tuple[list[dict[str, Any]], str] | None:
    if not isinstance(stops, list):
        return None
    seqs = [s for s in stops if isinstance(s, str) and s]
    for i, block in enumerate(wire):
        if block["type"] != "text":
            continue
        hits = [(block["text"].find(s), s) for s in seqs if s in block["text"]]
        if hits:
            at, seq = min(hits)
            kept = [*wire[:i], {"type": "text", "text": block["text"][:at]}] if at else wire[:i]
            return kept, seq
    return None


def _fit(
    server: ServerModel,
    wire: list[dict[str, Any]],
    *,
    model: ModelInfo,
    max_tokens: int | None,
) -> tuple[list[dict[str, Any]], int, int, bool]:
    """Keep what fits in ``max_tokens``: (blocks, output tokens, thinking tokens, truncated)."""
    if max_tokens is not None and max_tokens <= 0:
        return [], 0, 0, True
    kept: list[dict[str, Any]] = []
    total = thinking = 0
    for block in wire:
        n = server.block_tokens(block, model=model)
        if max_tokens is None or total + n <= max_tokens:
            kept.append(block)
            total += n
            thinking += n if block["type"] == "thinking" else 0
            continue
        part = _cut_block(server, block, model=model, budget=max_tokens - total)
        if part is not None:
            n = server.block_tokens(part, model=model)
            kept.append(part)
            total += n
            thinking += n if part["type"] == "thinking" else 0
        return kept, total, thinking, True
    return kept, total, thinking, False


def _cut_block(
    server: ServerModel, block: dict[str, Any], *, model: ModelInfo, budget: int
) -> dict[str, Any] | None:
    """The longest prefix of a text/thinking block within ``budget`` tokens (None: nothing)."""
    field = {"text": "text", "thinking": "thinking"}.get(block["type"])
    if field is None or budget <= 0:
        return None
    text: str = block[field]
    lo, hi = 0, len(text)
    while lo < hi:  # largest prefix length whose block fits
        mid = (lo + hi + 1) // 2
        if server.block_tokens({**block, field: text[:mid]}, model=model) <= budget:
            lo = mid
        else:
            hi = mid - 1
    if lo == 0:
        return None
    return {**block, field: text[:lo]}


def process_batch_item(
    em: Emulator, params: Mapping[str, Any], scope: str, now_s: float, brain_name: str
) -> dict[str, Any]:
    """One batch request, run at ``now_s``: the ``result`` object of its result line."""
    try:
        admission = em.server.admit(params, scope=scope, now_s=now_s, batch=True)
    except ApiError as exc:
        return {
            "type": "errored",
            "error": error_body(exc.status, exc.message, error_type=exc.error_type),
        }
    try:
        built = build_message(
            em,
            params,
            admission=admission,
            brain=em.brain(brain_name or None),
            headers={},
            service_tier="batch",
        )
    except BaseException:
        admission.abort()
        raise
    admission.commit()
    return {"type": "succeeded", "message": built.message}


# -- streaming ---------------------------------------------------------------------------------


class _Drop:
    """Yielded by a chunk stream: close the connection without finishing the response."""


DROP = _Drop()


class EventStreamResponse(Response):
    """``text/event-stream`` from an async iterator of frames; :data:`DROP` cuts it short."""

    media_type = "text/event-stream"

    def __init__(self, chunks: AsyncIterator[bytes | _Drop], *, headers: Mapping[str, str]) -> None:
        # Not Response.__init__: it would declare a Content-Length, and a stream has none.
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
        ]
        self._chunks = chunks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        async for chunk in self._chunks:
            if isinstance(chunk, _Drop):
                # Return without the final empty body: the server closes the connection and
                # the client sees a stream that broke right there.
                return
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def stream_chunks(
    message: Mapping[str, Any],
    *,
    admission: Admission,
    latency: LatencyModel,
    timing: Timing,
    stream_fault: FaultRule | None,
    extra_real_wait_ms: float = 0.0,
) -> AsyncIterator[bytes | _Drop]:
    """The SSE frames of ``message``, paced in ``real`` latency mode, with a stream fault."""
    events = list(message_events(message))
    deltas = sum(1 for e in events if e["type"] == "content_block_delta")
    real = latency.mode == "real"
    if real:
        await anyio.sleep(timing.ttft_ms / 1000 * latency.scale)
    elif extra_real_wait_ms > 0:
        await anyio.sleep(extra_real_wait_ms / 1000)
    per_delta_s = timing.output_ms / 1000 * latency.scale / deltas if real and deltas else 0.0
    for event in events:
        if event["type"] == "message_start":
            admission.commit()  # the response has started: its cache writes become readable
            yield encode_event(event)
            if stream_fault is not None and stream_fault.kind == "drop_after_start":
                yield DROP
                return
            continue
        is_delta = event["type"] == "content_block_delta"
        if is_delta and per_delta_s:
            await anyio.sleep(per_delta_s)
        erring = stream_fault is not None and stream_fault.kind == "stream_error"
        if erring and (is_delta or event["type"] == "message_delta"):
            # after the first delta (or before message_delta when there is none)
            if is_delta:
                yield encode_event(event)
            assert stream_fault is not None
            yield encode_event(_stream_error(stream_fault))
            return
        yield encode_event(event)


def _stream_error(rule: FaultRule) -> dict[str, Any]:
    messages = {"overloaded_error": "Overloaded", "api_error": "Internal server error"}
    text = rule.message or messages.get(rule.error_type, "Internal server error")
    return {"type": "error", "error": {"type": rule.error_type, "message": text}}
