"""One transcript file, from a saved offset to its end: calls, events and the run they belong to.

The importer (:mod:`tokenomy.analysis.importer`) owns dedupe across files and the ledger; this
module turns the lines of *one* file into records, remembering in :class:`FileState` what it
needs to continue where it stopped (JSON-friendly, stored in ``import_files.state``).

Consecutive lines of one response (same ``message.id`` + ``requestId``) are folded into one
call, keeping the largest usage. The last response of a file stays *open* after an import: if
the next import finds more lines of it (Claude Code was still writing), the same call is
updated in place — same id, same position in the run. A call's priced ``calls`` row comes from
:func:`tokenomy.analysis.rows.transcript_call_row`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

import orjson

from tokenomy.analysis.claude_code import (
    _ASSISTANT_COMPACT as _ASSISTANT,
)
from tokenomy.analysis.claude_code import (
    AssistantLine,
    BadLine,
    CompactionLine,
    MessageLine,
    ReplayLine,
    TranscriptCall,
    output_tokens_of,
    parse_assistant,
    parse_line,
    parse_timestamp,
    request_id_of,
)
from tokenomy.analysis.replay import Replayer
from tokenomy.analysis.rows import Pricer, transcript_call_row
from tokenomy.analysis.segments import SegmentState, estimate_segments
from tokenomy.analysis.transcripts import TranscriptFile, read_lines
from tokenomy.core.records import RunRecord
from tokenomy.data.table import ModelTable
from tokenomy.ledger.codec import RunEvent

__all__ = ["FileResult", "FileState", "ImportedCall", "read_file", "run_ids_for"]

_NAME_CHARS = 80


@dataclass(slots=True)
class FileState:
    """What the importer remembers about one file between imports."""

    run_id: str | None = None
    session_id: str | None = None
    name: str | None = None
    summary: str | None = None
    project: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    seq: dict[str, int] = field(default_factory=dict)  # per run id
    segments: dict[str, dict[str, Any]] = field(default_factory=dict)  # per run id
    children: list[str] = field(default_factory=list)  # sidechain runs found in this file
    # The last response of the file, which may still grow: its call id, run, seq, best
    # token total, and the segment state from before it.
    open_call: dict[str, Any] | None = None
    replay: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "session_id": self.session_id,
            "name": self.name,
            "summary": self.summary,
            "project": self.project,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "seq": self.seq,
            "segments": self.segments,
            "children": self.children,
            "open_call": self.open_call,
            "replay": self.replay,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FileState:
        s = cls()
        for key in (
            "run_id",
            "session_id",
            "name",
            "summary",
            "project",
            "started_at",
            "ended_at",
            "open_call",
        ):
            setattr(s, key, d.get(key))
        s.seq = dict(d.get("seq") or {})
        s.segments = dict(d.get("segments") or {})
        s.children = list(d.get("children") or [])
        s.replay = bool(d.get("replay"))
        return s


class ImportedCall(NamedTuple):
    """A call read from a transcript: its ``calls`` row and what dedupe needs to know.

    A named tuple, not a dataclass: worker processes send tens of thousands of these.
    """

    call_id: str
    run_id: str
    message_id: str | None
    total_tokens: int
    sidechain: bool
    session_id: str | None
    row: tuple[Any, ...]  # packed for the ledger's backend (RowPacker)
    cost_usd: Decimal | None  # None when unpriced
    unpriced_model: str | None


@dataclass(slots=True)
class FileResult:
    """What reading a file produced."""

    calls: list[ImportedCall]
    events: list[RunEvent]
    runs: list[RunRecord]
    state: FileState
    offset: int
    lines: int
    bad: list[tuple[int, str]]
    pending_tail: bool
    synthetic: int
    folded: int  # duplicate lines of one response folded into its call
    bytes_read: int
    replay_blob: bytes | None


def run_ids_for(tf: TranscriptFile, session_id: str | None) -> tuple[str, str | None]:
    """(run id, parent run id) of a file's run."""
    stem = tf.path.name[: -len(".jsonl")]
    if tf.layout == "session":
        return f"cc:{tf.session_id}", None
    if tf.layout == "subagent":
        parent = f"cc:{tf.session_id}"
        return f"{parent}/agent-{tf.agent_id}", parent
    if tf.layout == "legacy-subagent":
        if session_id:
            parent = f"cc:{session_id}"
            return f"{parent}/agent-{tf.agent_id}", parent
        return f"cc:agent-{tf.agent_id}", None
    parent = f"cc:{tf.session_id}"
    return f"{parent}/{stem}", parent


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _prompt_text(message: Mapping[str, Any]) -> str | None:
    content = message.get("content")
    texts: list[str] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for b in content:
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str):
                texts.append(b["text"])
            elif isinstance(b, dict) and b.get("type") == "tool_result":
                return None
    text = " ".join(t for t in texts if not t.lstrip().startswith("<")).strip()
    return " ".join(text.split())[:_NAME_CHARS] or None


class _Reader:
    def __init__(
        self,
        tf: TranscriptFile,
        state: FileState,
        pricer: Pricer,
        replay: Replayer | None,
        first_line: int,
    ) -> None:
        self.tf = tf
        self.state = state
        self.pricer = pricer
        self.replay = replay
        self.line_no = first_line
        self.calls: list[ImportedCall] = []
        self.sink: Callable[[ImportedCall], None] | None = None
        self.events: list[RunEvent] = []
        self.bad: list[tuple[int, str]] = []
        self.synthetic = 0
        self.folded = 0
        self.current: AssistantLine | None = None
        # An unparsed response: (request id bytes, its most complete line, line no, total).
        self.pending: tuple[bytes, bytes, int, int] | None = None
        self.current_line = 0
        self.last_at: datetime | None = parse_timestamp(state.ended_at)
        self.segs: dict[str, SegmentState] = {
            k: SegmentState.from_json(v) for k, v in state.segments.items()
        }
        self.meta: dict[str, Any] = {}

    # ------------------------------------------------------------------ runs

    def ensure_run(self, session_id: str | None) -> str:
        s = self.state
        if s.run_id is None or (self.tf.layout == "legacy-subagent" and s.session_id is None):
            if session_id and s.session_id is None:
                s.session_id = session_id
            s.run_id, _ = run_ids_for(self.tf, s.session_id or self.tf.session_id)
        return s.run_id

    def run_of(self, call_sidechain: bool, agent_id: str | None, session_id: str | None) -> str:
        run = self.ensure_run(session_id)
        if call_sidechain and self.tf.layout == "session":
            # Older Claude Code wrote sub-agent lines into the session file itself.
            child = f"{run}/agent-{agent_id or 'sidechain'}"
            if child not in self.state.children:
                self.state.children.append(child)
            return child
        return run

    def touch(self, at: datetime | None) -> None:
        if at is None:
            return
        if self.state.started_at is None:
            self.state.started_at = at.isoformat()
        if self.last_at is None or at > self.last_at:
            self.last_at = at

    # ------------------------------------------------------------------ lines

    def line(self, raw: bytes, complete: bool) -> bool:
        """Handle one line; False when an incomplete last line is left for next time."""
        assistant = _ASSISTANT in raw
        if assistant and complete and self.replay is None and not self.state.replay:
            rid = request_id_of(raw)
            if rid is not None:
                self.line_no += 1
                self.assistant_raw(raw, rid)
                return True
        want_user = self.state.name is None or self.state.replay
        parsed = parse_line(raw, want_user=want_user, no_assistant=not assistant)
        if not complete:
            if isinstance(parsed, AssistantLine):
                # Complete JSON without its newline yet: count the call, re-read it next time.
                self.call(parsed, self.line_no + 1)
            return False
        self.line_no += 1
        if parsed is None:
            # Not parsed (not needed): a complete JSON object line at least ends with "}". A
            # line cut short by a crash does not.
            if raw and not raw.endswith(b"}") and not raw.rstrip().endswith(b"}"):
                self.bad.append((self.line_no, "a truncated line (not a complete JSON object)"))
            return True
        if isinstance(parsed, AssistantLine):
            self.call(parsed, self.line_no)
        elif isinstance(parsed, BadLine):
            self.bad.append((self.line_no, parsed.reason))
        elif isinstance(parsed, CompactionLine):
            self.settle_current()
            self.compaction(parsed)
        elif isinstance(parsed, MessageLine):
            self.user(parsed)
        elif isinstance(parsed, ReplayLine):
            self.settle_current()
            self.state.replay = True
            if self.replay is None:
                self.replay = Replayer()
            self.replay.feed_replay(parsed)
        return True

    def user(self, m: MessageLine) -> None:
        self.touch(m.at)
        if self.state.project is None and m.cwd:
            self.state.project = m.cwd
        if self.state.name is None and not m.meta and m.message.get("role") == "user":
            self.state.name = _prompt_text(m.message)
        if self.replay is not None or self.state.replay:
            if self.replay is None:
                self.replay = Replayer()
            self.replay.feed_user(m)

    def compaction(self, c: CompactionLine) -> None:
        at = c.at or self.last_at
        self.touch(c.at)
        if c.kind == "summary":
            summary = c.data.get("summary")
            if isinstance(summary, str) and summary.strip():
                self.state.summary = " ".join(summary.split())[:_NAME_CHARS]
        run = self.run_of(c.sidechain, c.agent_id, None)
        if c.kind in ("compaction", "compact_summary"):
            seg = self.segs.setdefault(run, SegmentState())
            seg.reset = True
        if at is None or c.kind == "summary":
            return
        data = {k: v for k, v in c.data.items() if v is not None}
        data["line"] = self.line_no
        self.events.append(RunEvent(run_id=run, at=at, kind=c.kind, data=data))

    def call(self, a: AssistantLine, line_no: int) -> None:
        if self.pending is not None:
            self.settle_current()
        self.touch(a.at)
        if a.synthetic:
            self.synthetic += 1
            return
        cur = self.current
        if cur is not None and cur.key == a.key and a.message_id is not None:
            self.folded += 1
            if self.replay is not None:
                self.replay.feed_assistant(a.message_id, a.content)
            if a.total_tokens >= cur.total_tokens:
                self.current, self.current_line = a, line_no
            return
        self.settle_current()
        if self.replay is not None and a.message_id is not None:
            self.replay.feed_assistant(a.message_id, a.content)
        self.current, self.current_line = a, line_no

    def assistant_raw(self, raw: bytes, rid: bytes) -> None:
        """An assistant line with a request id, not parsed yet: a response's lines repeat its
        usage, so only the most complete one is parsed, when the response is over."""
        total = output_tokens_of(raw)
        if total is None:
            parsed = parse_line(raw)
            if isinstance(parsed, AssistantLine):
                self.call(parsed, self.line_no)
            elif isinstance(parsed, BadLine):
                self.bad.append((self.line_no, parsed.reason))
            return
        p = self.pending
        if p is not None and p[0] == rid:
            self.folded += 1
            if total >= p[3]:
                self.pending = (rid, raw, self.line_no, total)
            return
        self.settle_current()
        self.pending = (rid, raw, self.line_no, total)

    def settle_current(self, *, final: bool = False) -> None:
        """The response being read is complete: another kind of line came, or the file ended
        (``final``: the response stays open, the next import may find more of it)."""
        p = self.pending
        if p is not None:
            self.pending = None
            parsed = parse_assistant(p[1])
            if isinstance(parsed, AssistantLine):
                self.call(parsed, p[2])
            elif isinstance(parsed, BadLine):
                self.bad.append((p[2], parsed.reason))
        if self.current is not None:
            self.settle(self.current, self.current_line, final=final)
            self.current = None

    # ------------------------------------------------------------------ settling

    def settle(self, a: AssistantLine, line_no: int, *, final: bool = False) -> None:
        c = a.call()
        if isinstance(c, BadLine):
            self.bad.append((line_no, c.reason))
            return
        if self.state.project is None and c.cwd:
            self.state.project = c.cwd
        run = self.run_of(c.sidechain, c.agent_id, c.session_id)
        call_id = call_key(c, session=self.state.session_id or self.tf.session_id)
        oc = self.state.open_call
        if oc is not None and oc.get("call_id") == call_id and oc.get("run") == run:
            # More lines of the response the last import left open.
            if c.total_tokens <= int(oc["total"]):
                return
            seq = int(oc["seq"])
            seg = SegmentState.from_json(oc["seg_before"])
            replayed = oc.get("replay")
        else:
            seq = self.state.seq.get(run, 0) + 1
            self.state.seq[run] = seq
            seg = self.segs.setdefault(run, SegmentState())
            replayed = None
        # Only the file's last response stays open: it alone needs the state from before it.
        seg_before = seg.to_json() if final else None
        imported, replay_json = self.record(
            c, call_id=call_id, run=run, seq=seq, seg=seg, line_no=line_no, replayed=replayed
        )
        self.segs[run] = seg
        if self.sink is not None:
            self.sink(imported)
        else:
            self.calls.append(imported)
        self.state.open_call = (
            {
                "call_id": call_id,
                "run": run,
                "seq": seq,
                "total": c.total_tokens,
                "seg_before": seg_before,
                "replay": replay_json,
            }
            if final
            else None
        )

    def record(
        self,
        c: TranscriptCall,
        *,
        call_id: str,
        run: str,
        seq: int,
        seg: SegmentState,
        line_no: int,
        replayed: Any,
    ) -> tuple[ImportedCall, Any]:
        pricer = self.pricer
        info = pricer.info(c.model)
        r = pricer.rates(c.model, c)
        rp = self.replay
        replay_json = replayed
        if rp is not None and replayed is None:
            if not seg.prefix_known and rp.requests:
                req = rp.requests.get(c.request_ref or "")
                tools, system = rp.shape_tokens(req.shape if req else None, info)
                seg.known_prefix(tools_tokens=tools, system_tokens=system)
            result = rp.settle(c, info=info, rates=r)
            replay_json = result.to_json() if result is not None else {"rebuilt": False}
        segments = estimate_segments(seg, c.usage)
        decisions: dict[str, Any] = {
            "transcript": {  # the file is in the run's tags
                "line": line_no,
                "sidechain": c.sidechain,
                "version": c.version,
            }
        }
        if replay_json is not None:
            decisions["replay"] = replay_json
        row, cost_usd, unpriced = transcript_call_row(
            c,
            pricer=pricer,
            info=info,
            rates=r,
            call_id=call_id,
            run_id=run,
            seq=seq,
            segments=segments,
            decisions=decisions,
        )
        imported = ImportedCall(
            call_id=call_id,
            run_id=run,
            message_id=c.message_id,
            total_tokens=c.total_tokens,
            sidechain=c.sidechain,
            session_id=c.session_id,
            row=row,
            cost_usd=cost_usd,
            unpriced_model=unpriced,
        )
        return imported, replay_json

    def finish(self) -> None:
        self.settle_current(final=True)
        self.state.ended_at = _iso(self.last_at)
        self.state.segments = {k: v.to_json() for k, v in self.segs.items()}

    def runs(self) -> list[RunRecord]:
        s = self.state
        if s.run_id is None or s.started_at is None:
            return []
        start = parse_timestamp(s.started_at)
        assert start is not None
        end = parse_timestamp(s.ended_at)
        _, parent = run_ids_for(self.tf, s.session_id or self.tf.session_id)
        meta = self.meta
        agent_type = meta.get("agentType")
        description = meta.get("description")
        if self.tf.is_subagent and isinstance(description, str):
            name = f"{agent_type}: {description}" if isinstance(agent_type, str) else description
        else:
            name = s.summary or s.name or ""
        tags = {"file": str(self.tf.path)}
        if isinstance(agent_type, str):
            tags["agent_type"] = agent_type
        project = s.project or self.tf.project_dir
        external = s.session_id or self.tf.session_id
        ideal = None
        rp = self.replay
        if rp is not None and rp.calls and rp.rebuilt == rp.calls:
            ideal = rp.ideal.total_usd
        out = [
            RunRecord(
                run_id=s.run_id,
                name=name,
                started_at=start,
                parent_run_id=parent,
                tags=tags,
                source="claude-code",
                ended_at=end,
                external_id=external,
                project=project,
                ideal_usd=ideal,
            )
        ]
        for child in s.children:
            out.append(
                RunRecord(
                    run_id=child,
                    name=f"sidechain {child.rsplit('/', 1)[-1]}",
                    started_at=start,
                    parent_run_id=s.run_id,
                    tags={"file": str(self.tf.path)},
                    source="claude-code",
                    ended_at=end,
                    external_id=external,
                    project=project,
                )
            )
        return out


def call_key(c: TranscriptCall, *, session: str | None) -> str:
    """The call's id: ``message.id`` + ``requestId`` (global: forks copy responses)."""
    if c.message_id and c.request_id:
        return f"cc:{c.message_id}:{c.request_id}"
    if c.message_id and c.message_id.startswith("msg_"):
        return f"cc:{c.message_id}:{session or ''}"
    return f"cc:{c.message_id or ''}:{session or ''}:{c.at.isoformat()}"


def _agent_meta(tf: TranscriptFile) -> dict[str, Any]:
    if not tf.is_subagent:
        return {}
    meta = tf.path.with_name(tf.path.name[: -len(".jsonl")] + ".meta.json")
    try:
        data = orjson.loads(meta.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def read_file(
    tf: TranscriptFile,
    *,
    offset: int,
    first_line: int,
    state: FileState,
    replay_blob: bytes | None,
    table: ModelTable,
    pricer: Pricer | None = None,
    sink: Callable[[ImportedCall], None] | None = None,
) -> FileResult:
    """Read ``tf`` from ``offset`` to its end. Raises OSError if it cannot be read.

    ``sink`` takes each call as it is read (a file of any size then needs no more memory
    than its longest line); without it the calls come back in the result.
    """
    replay = Replayer.load(replay_blob) if replay_blob else None
    reader = _Reader(tf, state, pricer or Pricer(table), replay, first_line)
    reader.sink = sink
    reader.meta = _agent_meta(tf)
    end = offset
    pending = False
    for after, raw, complete in read_lines(tf.path, offset):
        if not reader.line(raw, complete):
            pending = True
            break
        end = after
    reader.finish()
    rp = reader.replay
    return FileResult(
        calls=reader.calls,
        events=reader.events,
        runs=reader.runs(),
        state=reader.state,
        offset=end,
        lines=reader.line_no,
        bad=reader.bad,
        pending_tail=pending,
        synthetic=reader.synthetic,
        folded=reader.folded,
        bytes_read=end - offset,
        replay_blob=rp.dump() if rp is not None and rp.active else None,
    )
