"""Claude Code transcript lines: what each line means for metering. No I/O here.

A transcript (``~/.claude/projects/<cwd>/<session>.jsonl``) holds one JSON object per line.
:func:`parse_line` turns the lines that matter into small records and says why it skipped the
others; the importer (:mod:`tokenomy.analysis.importer`) decides what becomes a run, a call or
an event. The line shapes are in ``../shared/reference/real-clients.md`` and
``anthropic-api.md`` §10; the rules (see ``docs/design/analysis.md``):

- An ``assistant`` line with ``message.usage`` is one API response — or part of one: a
  response is written as one line per content block, each repeating the usage, the early ones
  with partial output counts. The key ``message.id`` + ``requestId`` groups them; the importer
  keeps the most complete (largest token total).
- ``model: "<synthetic>"`` marks a message Claude Code made up locally: it costs nothing.
- ``system`` lines with subtype ``compact_boundary`` / ``microcompact_boundary``, user lines
  with ``isCompactSummary`` and (older versions) ``summary`` lines are compaction events.
- 2.1.330's ``api-request-shape`` / ``api-request-blob`` / ``api-request`` lines describe every
  outgoing request (:mod:`tokenomy.analysis.replay` rebuilds them).
- Anything else (attachments, snapshots, queue operations, lines of future versions) is
  skipped without parsing; a line that is not JSON is *bad* (counted, never fatal).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from tokenomy.core.usage import Usage
from tokenomy.errors import UsageError

__all__ = [
    "SYNTHETIC_MODEL",
    "BadLine",
    "CompactionLine",
    "MessageLine",
    "ReplayLine",
    "TranscriptCall",
    "parse_line",
    "parse_timestamp",
]

SYNTHETIC_MODEL = "<synthetic>"

# Cheap byte tests that decide whether a line is worth parsing at all. Claude Code writes
# compact JSON; the fallbacks (a space after the colon) keep hand-edited lines working.
_ASSISTANT = (b'"type":"assistant"', b'"type": "assistant"')
_USER = (b'"type":"user"', b'"type": "user"')
_REPLAY = b'"type":"api-request'
_MARKERS = (b"compact_boundary", b"isCompactSummary", b'"type":"summary"', b'"type": "summary"')


@dataclass(frozen=True, slots=True)
class TranscriptCall:
    """One assistant line that carries API usage (possibly one of several for a response)."""

    message_id: str | None
    request_id: str | None
    model: str
    usage: Usage
    at: datetime
    session_id: str | None
    agent_id: str | None
    sidechain: bool
    stop_reason: str | None
    version: str | None
    api_error: bool
    # 2.1.330+: the id of the ``api-request`` line this response answers.
    request_ref: str | None
    requested_model: str | None
    cwd: str | None
    content: tuple[Mapping[str, Any], ...]

    @property
    def synthetic(self) -> bool:
        return self.model == SYNTHETIC_MODEL

    @property
    def total_tokens(self) -> int:
        u = self.usage.billable()
        return u.input_tokens + u.output_tokens + u.cache_write_tokens + u.cache_read_tokens


@dataclass(frozen=True, slots=True)
class CompactionLine:
    """A compaction point: a boundary, a post-compaction summary, or an older summary line."""

    kind: Literal["compaction", "microcompaction", "compact_summary", "summary"]
    at: datetime | None
    data: Mapping[str, Any]
    sidechain: bool
    agent_id: str | None


@dataclass(frozen=True, slots=True)
class MessageLine:
    """A user line: the run's name comes from the first prompt; replay hashes its message."""

    message: Mapping[str, Any]
    at: datetime | None
    session_id: str | None
    agent_id: str | None
    sidechain: bool
    meta: bool
    cwd: str | None


@dataclass(frozen=True, slots=True)
class ReplayLine:
    """A 2.1.330 request-replay line (``api-request-shape`` / ``-blob`` / ``api-request``)."""

    kind: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that could not be read: not JSON, or usage that breaks the API's rules."""

    reason: str


ParsedLine = TranscriptCall | CompactionLine | MessageLine | ReplayLine | BadLine


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO-8601 timestamp (``2026-02-18T11:30:24.575Z``) as an aware UTC datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _str(d: Mapping[str, Any], key: str) -> str | None:
    v = d.get(key)
    return v if isinstance(v, str) and v else None


def parse_line(raw: bytes, *, want_user: bool = False) -> ParsedLine | None:
    """What ``raw`` (one line, without its newline) means; None for a line that does not matter.

    ``want_user``: also return user lines (for run names and request replay); they are the
    bulk of a transcript's bytes, so they are parsed only when asked for.
    """
    is_assistant = (_ASSISTANT[0] in raw or _ASSISTANT[1] in raw) and b'"usage"' in raw
    is_replay = not is_assistant and _REPLAY in raw[:40]
    is_marker = not is_assistant and not is_replay and any(m in raw for m in _MARKERS)
    is_user = want_user and not is_assistant and (_USER[0] in raw or _USER[1] in raw)
    if not (is_assistant or is_replay or is_marker or is_user):
        if raw.lstrip()[:1] not in (b"{", b""):
            return BadLine("not a JSON object")
        return None
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return BadLine(f"not valid JSON ({exc.msg})")
    if not isinstance(d, dict):
        return BadLine("not a JSON object")
    kind = d.get("type")
    if kind == "assistant":
        return _assistant(d)
    if isinstance(kind, str) and kind.startswith("api-request"):
        return ReplayLine(kind, d)
    if kind == "system" and d.get("subtype") in ("compact_boundary", "microcompact_boundary"):
        meta = d.get("compactMetadata") or d.get("microcompactMetadata") or {}
        return CompactionLine(
            "compaction" if d.get("subtype") == "compact_boundary" else "microcompaction",
            parse_timestamp(d.get("timestamp")),
            {
                "trigger": meta.get("trigger") if isinstance(meta, dict) else None,
                "pre_tokens": meta.get("preTokens") if isinstance(meta, dict) else None,
            },
            bool(d.get("isSidechain")),
            _str(d, "agentId"),
        )
    if kind == "summary":
        return CompactionLine(
            "summary",
            None,
            {"summary": d.get("summary"), "leaf_uuid": d.get("leafUuid")},
            False,
            None,
        )
    if kind == "user":
        message = d.get("message")
        if d.get("isCompactSummary") is True:
            return CompactionLine(
                "compact_summary",
                parse_timestamp(d.get("timestamp")),
                {},
                bool(d.get("isSidechain")),
                _str(d, "agentId"),
            )
        if want_user and isinstance(message, dict):
            return MessageLine(
                message,
                parse_timestamp(d.get("timestamp")),
                _str(d, "sessionId"),
                _str(d, "agentId"),
                bool(d.get("isSidechain")),
                bool(d.get("isMeta")),
                _str(d, "cwd"),
            )
    return None


def _assistant(d: Mapping[str, Any]) -> ParsedLine | None:
    message = d.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("usage"), dict):
        return None
    at = parse_timestamp(d.get("timestamp"))
    if at is None:
        return BadLine("an assistant line with usage but no valid timestamp")
    model = message.get("model")
    if not isinstance(model, str) or not model:
        return BadLine("an assistant line with usage but no model")
    try:
        usage = Usage.from_wire(message["usage"], where="message.usage")
    except UsageError as exc:
        return BadLine(str(exc))
    content = message.get("content")
    return TranscriptCall(
        message_id=_str(message, "id"),
        request_id=_str(d, "requestId"),
        model=model,
        usage=usage,
        at=at,
        session_id=_str(d, "sessionId"),
        agent_id=_str(d, "agentId"),
        sidechain=d.get("isSidechain") is True,
        stop_reason=_str(message, "stop_reason"),
        version=_str(d, "version"),
        api_error=d.get("isApiErrorMessage") is True,
        request_ref=_str(d, "requestRef"),
        requested_model=_str(d, "requestedModel"),
        cwd=_str(d, "cwd"),
        content=tuple(b for b in content if isinstance(b, dict))
        if isinstance(content, list)
        else (),
    )
