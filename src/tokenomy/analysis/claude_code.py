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
from typing import Any, Literal, NamedTuple

import orjson

from tokenomy.core.usage import Usage
from tokenomy.errors import UsageError

__all__ = [
    "SYNTHETIC_MODEL",
    "AssistantLine",
    "BadLine",
    "CompactionLine",
    "MessageLine",
    "ReplayLine",
    "TranscriptCall",
    "output_tokens_of",
    "parse_assistant",
    "parse_line",
    "parse_timestamp",
    "request_id_of",
    "usage_total",
]

SYNTHETIC_MODEL = "<synthetic>"

# Cheap byte tests that decide whether a line is worth parsing at all. Claude Code writes
# compact JSON; the fallbacks (a space after the colon) keep hand-edited lines working.
_ASSISTANT_COMPACT = b'"type":"assistant"'
_ASSISTANT = (_ASSISTANT_COMPACT, b'"type": "assistant"')
_USER = (b'"type":"user"', b'"type": "user"')
_REPLAY = b'"type":"api-request'
_MARKERS = (b"compact_boundary", b"isCompactSummary", b'"type":"summary"', b'"type": "summary"')


class TranscriptCall(NamedTuple):
    """One assistant line that carries API usage (possibly one of several for a response).

    A named tuple (immutable, named) rather than a frozen dataclass: one is made per API
    response on an import, and a frozen dataclass takes twice as long to build.
    """

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
    return v if type(v) is str and v else None  # orjson makes no str subclasses


def parse_line(
    raw: bytes, *, want_user: bool = False, no_assistant: bool = False
) -> ParsedLine | None:
    """What ``raw`` (one line, without its newline) means; None for a line that does not matter.

    ``want_user``: also return user lines (for run names and request replay); they are the
    bulk of a transcript's bytes, so they are parsed only when asked for. ``no_assistant``:
    the caller already found no ``"type":"assistant"`` in the line (not scanned again).
    """
    # Byte tests first: most lines (tool results, attachments) are skipped unparsed. Each test
    # scans the line once; a line written with spaces after its colons (hand-edited) shows it
    # in its first bytes and is tested with the spaced forms.
    spaced = b'": ' in raw[:160]
    i = 1 if spaced else 0
    is_assistant = (spaced or not no_assistant) and _ASSISTANT[i] in raw and b'"usage"' in raw
    is_replay = not is_assistant and _REPLAY in raw[:40]
    is_marker = (
        not is_assistant
        and not is_replay
        and (b"ompact" in raw or b'"summary"' in raw[:48] or (spaced and _MARKERS[3] in raw))
    )
    is_user = want_user and not is_assistant and _USER[i] in raw
    if not (is_assistant or is_replay or is_marker or is_user):
        first = raw[:1]
        if first not in (b"{", b"") and raw.lstrip()[:1] != b"{":
            return BadLine("not a JSON object")
        return None
    return _parse(raw, want_user=want_user)


def parse_assistant(raw: bytes) -> ParsedLine | None:
    """:func:`parse_line` for a line whose bytes already show an assistant line with usage
    (``"type":"assistant"``, a request id, a usage object): parsed without the byte tests."""
    return _parse(raw, want_user=False)


def _parse(raw: bytes, *, want_user: bool) -> ParsedLine | None:
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


_REQUEST_ID = b'"requestId":"'
_USAGE = b'"usage":{'


def request_id_of(raw: bytes) -> bytes | None:
    """The ``requestId`` of an assistant line, found without parsing it (compact JSON).

    Searched from the end: Claude Code writes it after the message, whose content can be long.
    """
    i = raw.rfind(_REQUEST_ID)
    if i < 0:
        return None
    start = i + len(_REQUEST_ID)
    end = raw.find(b'"', start)
    return raw[start:end] if end > start else None


_OUTPUT = b'"output_tokens":'


def output_tokens_of(raw: bytes) -> int | None:
    """The ``output_tokens`` of an assistant line's usage, found without parsing it.

    The lines of one response differ only there (its input side comes from the stream's
    start; its output count grows as Claude Code writes each content block), so comparing it
    picks the most complete line. None when it cannot be found that way.
    """
    u = raw.rfind(_USAGE)
    if u < 0:
        return None
    i = raw.find(_OUTPUT, u)
    if i < 0:
        return None
    start = i + len(_OUTPUT)
    end = start
    n = len(raw)
    while end < n and 48 <= raw[end] <= 57:
        end += 1
    return int(raw[start:end]) if end > start else None


def usage_total(raw: bytes) -> int | None:
    """The token total of the ``usage`` object of an assistant line, parsing only that object;
    None when it cannot be found that way (the caller then parses the whole line)."""
    i = raw.find(_USAGE)
    if i < 0:
        return None
    start = i + len(_USAGE) - 1
    depth, j = 0, start
    find = raw.find
    while True:  # usage holds a few nested objects and no braces inside its strings
        o, c = find(b"{", j), find(b"}", j)
        if c < 0:
            return None
        if 0 <= o < c:
            depth, j = depth + 1, o + 1
        else:
            depth, j = depth - 1, c + 1
            if depth == 0:
                break
    try:
        u = orjson.loads(raw[start:j])
    except orjson.JSONDecodeError:
        return None
    return _raw_total(u) if isinstance(u, dict) else None


_FAST_FIELDS = frozenset(
    {
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "cache_creation",
        "service_tier",
        "server_tool_use",
        "inference_geo",
        "speed",
        "iterations",
        "output_tokens_details",
        "fallback_credit",
    }
)


def _count(v: Any) -> int | None:
    if v is None:
        return 0
    return v if type(v) is int and v >= 0 else None


def _fast_usage(u: Mapping[str, Any]) -> Usage | None:
    """:meth:`Usage.from_wire` for the shapes Claude Code writes, several times faster; None
    for anything else (then ``from_wire`` reads it, with its messages for bad values)."""
    if not u.keys() <= _FAST_FIELDS or u.get("iterations"):
        return None
    get = u.get
    inp, out = get("input_tokens"), get("output_tokens")
    writes, read = get("cache_creation_input_tokens"), get("cache_read_input_tokens")
    # the common case, four counts, tested in one expression (no call per count)
    if not (
        type(inp) is int
        and type(out) is int
        and type(writes) is int
        and type(read) is int
        and inp >= 0
        and out >= 0
        and writes >= 0
        and read >= 0
    ):
        inp, out, writes, read = _count(inp), _count(out), _count(writes), _count(read)
        if inp is None or out is None or writes is None or read is None:
            return None
    split = get("cache_creation")
    if isinstance(split, dict) and (
        "ephemeral_5m_input_tokens" in split or "ephemeral_1h_input_tokens" in split
    ):
        w5 = split.get("ephemeral_5m_input_tokens")
        w1 = split.get("ephemeral_1h_input_tokens")
        if not (type(w5) is int and type(w1) is int and w5 >= 0 and w1 >= 0):
            w5, w1 = _count(w5), _count(w1)
            if w5 is None or w1 is None:
                return None
        unexplained = writes - (w5 + w1)
        known = unexplained <= 0
        if not known:
            w5 += unexplained
    elif split is None or isinstance(split, dict):
        w5, w1, known = writes, 0, writes == 0
    else:
        return None
    stu = u.get("server_tool_use")
    searches = fetches = 0
    if stu is not None:
        if not isinstance(stu, dict):
            return None
        s_n, f_n = _count(stu.get("web_search_requests")), _count(stu.get("web_fetch_requests"))
        if s_n is None or f_n is None:
            return None
        searches, fetches = s_n, f_n
    details = u.get("output_tokens_details")
    thinking = None
    if details is not None:
        if not isinstance(details, dict):
            return None
        if details.get("thinking_tokens") is not None:
            thinking = _count(details["thinking_tokens"])
            if thinking is None:
                return None
    tier, speed, geo = u.get("service_tier"), u.get("speed"), u.get("inference_geo")
    for v in (tier, speed, geo):
        if v is not None and not isinstance(v, str):
            return None
    return Usage(
        input_tokens=inp,
        output_tokens=out,
        cache_read_tokens=read,
        cache_write_5m_tokens=w5,
        cache_write_1h_tokens=w1,
        ttl_split_known=known,
        thinking_tokens=thinking,
        web_search_requests=searches,
        web_fetch_requests=fetches,
        service_tier=tier,
        speed=speed,
        inference_geo=geo,
    )


def _n(v: Any) -> int:
    return v if type(v) is int and v > 0 else 0


def _raw_total(u: Mapping[str, Any]) -> int:
    """A line's token total from its raw usage, for picking the most complete duplicate
    (the full parse, with every check, happens once per response, in :meth:`call`)."""
    writes = _n(u.get("cache_creation_input_tokens"))
    split = u.get("cache_creation")
    if isinstance(split, dict):
        split_sum = _n(split.get("ephemeral_5m_input_tokens")) + _n(
            split.get("ephemeral_1h_input_tokens")
        )
        writes = max(writes, split_sum)
    return (
        _n(u.get("input_tokens"))
        + _n(u.get("output_tokens"))
        + writes
        + _n(u.get("cache_read_input_tokens"))
    )


class AssistantLine(NamedTuple):
    """An assistant line with usage, read just enough to group the lines of one response
    (a named tuple, as :class:`TranscriptCall`)."""

    d: Mapping[str, Any]
    message_id: str | None
    request_id: str | None
    model: str
    at: datetime
    sidechain: bool

    @property
    def total_tokens(self) -> int:
        """The line's token total from its raw usage, for picking the most complete line of a
        response (computed when lines are compared: most responses never are)."""
        return _raw_total(self.d["message"]["usage"])

    @property
    def synthetic(self) -> bool:
        return self.model == SYNTHETIC_MODEL

    @property
    def key(self) -> tuple[str | None, str | None]:
        return self.message_id, self.request_id

    @property
    def content(self) -> tuple[Mapping[str, Any], ...]:
        content = self.d["message"].get("content")
        if not isinstance(content, list):
            return ()
        return tuple(b for b in content if isinstance(b, dict))

    def call(self) -> TranscriptCall | BadLine:
        """The full record, usage checked; a BadLine when the usage breaks the API's rules."""
        d = self.d
        message = d["message"]
        usage = _fast_usage(message["usage"])
        if usage is None:
            try:
                usage = Usage.from_wire(message["usage"], where="message.usage")
            except UsageError as exc:
                return BadLine(str(exc))
        return TranscriptCall(
            message_id=self.message_id,
            request_id=self.request_id,
            model=self.model,
            usage=usage,
            at=self.at,
            session_id=_str(d, "sessionId"),
            agent_id=_str(d, "agentId"),
            sidechain=self.sidechain,
            stop_reason=_str(message, "stop_reason"),
            version=_str(d, "version"),
            api_error=d.get("isApiErrorMessage") is True,
            request_ref=_str(d, "requestRef"),
            requested_model=_str(d, "requestedModel"),
            cwd=_str(d, "cwd"),
        )


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
    return AssistantLine(
        d=d,
        message_id=_str(message, "id"),
        request_id=_str(d, "requestId"),
        model=model,
        at=at,
        sidechain=d.get("isSidechain") is True,
    )


ParsedLine = AssistantLine | CompactionLine | MessageLine | ReplayLine | BadLine
