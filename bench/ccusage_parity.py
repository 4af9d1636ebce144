"""tokenomy vs ccusage on a generated Claude Code corpus: totals to the token, and speed.

A deterministic corpus (``--mb``, at least 500 MB by default) of Claude Code transcripts with
the line shapes of ``../shared/reference/real-clients.md``: one line per content block with
partial usage on the early ones, tool results, attachments, sub-agents in both layouts,
``/btw``-style sidechain replays, forked sessions that copy earlier responses, compaction
boundaries, ``<synthetic>`` messages, 5m and 1h writes (and old lines with no TTL split), a few
truncated lines, a model no price table knows. Then, side by side in one run:

1. ``ccusage claude session --json --offline`` (ccusage@20.0.24 from npm, in ``.bench/``);
2. ``tokenomy report --refresh --by session --json`` (one command, like ccusage's) on a fresh
   ledger, then ``tokenomy import claude-code`` + ``tokenomy report --by session --json`` (two
   commands) on another fresh ledger; both must print the same report; these first-pass steps
   run in ``--rounds`` interleaved rounds (default 3) and their medians are reported;
3. one session appended; ccusage again vs ``tokenomy import`` (incremental) + the report.

Per session (a session and its sub-agents) the token totals must match ccusage exactly, except
where ccusage is known to differ (listed in ``docs/analysis.md``): the bench counts and names
every difference. Costs are compared where ccusage has a price.

    .venv/bin/python bench/ccusage_parity.py [--mb 520] [--keep DIR] [--no-publish]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from _report import ROOT, markdown_table, print_table, publish

CCUSAGE = ROOT / ".bench" / "node_modules" / ".bin" / "ccusage"
TOKENOMY = ROOT / ".venv" / "bin" / "tokenomy"
MODELS = (
    ("claude-sonnet-4-5-20250929", 0.55),
    ("claude-opus-4-5-20251101", 0.25),
    ("claude-haiku-4-5-20251001", 0.15),
    ("claude-opus-4-1-20250805", 0.049),
    ("claude-experimental-zeta", 0.001),  # in no price table: unpriced, never $0
)
T0 = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)


# ---------------------------------------------------------------------- the corpus


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    x = rng.random() * sum(w for _, w in weighted)
    for value, w in weighted:
        x -= w
        if x <= 0:
            return value
    return weighted[-1][0]


def _text(rng: random.Random, n: int) -> str:
    words = ("the", "cache", "token", "call", "agent", "file", "test", "build", "fix", "run")
    out = " ".join(rng.choice(words) for _ in range(max(1, n // 5)))
    return out[:n]


def _ts(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


@dataclass
class _Conv:
    """One conversation being written: its file, context size and cache state."""

    out: Any
    session: str
    cwd: str
    version: str
    model: str
    ttl_1h: bool
    split: bool
    agent: str | None = None
    context: int = 0
    prefix: int = 0
    cached_end: int = 0
    cached_at: datetime | None = None
    parent_uuid: str | None = None
    lines: list[bytes] = field(default_factory=list)  # assistant lines kept for forks/replays


class Corpus:
    def __init__(self, root: Path, seed: int) -> None:
        self.root = root
        self.rng = random.Random(seed)
        self.bytes = 0
        self.sessions = 0
        self.forkable: list[tuple[str, str, list[bytes]]] = []
        self.req = 0

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _write(self, c: _Conv, obj: dict[str, Any] | bytes) -> bytes:
        line = obj if isinstance(obj, bytes) else orjson.dumps(obj)
        c.out.write(line + b"\n")
        self.bytes += len(line) + 1
        return line

    def _base(self, c: _Conv, kind: str, at: datetime) -> dict[str, Any]:
        u = self._uuid()
        d: dict[str, Any] = {
            "parentUuid": c.parent_uuid,
            "isSidechain": c.agent is not None,
            "userType": "external",
            "cwd": c.cwd,
            "sessionId": c.session,
            "version": c.version,
            "gitBranch": "main",
        }
        if c.agent is not None:
            d["agentId"] = c.agent
        d.update({"type": kind, "uuid": u, "timestamp": _ts(at)})
        c.parent_uuid = u
        return d

    def _user(self, c: _Conv, at: datetime, content: Any, **extra: Any) -> None:
        d = self._base(c, "user", at)
        d["message"] = {"role": "user", "content": content}
        d.update(extra)
        self._write(c, d)

    def _usage(self, c: _Conv, at: datetime, new_tokens: int, output: int) -> dict[str, Any]:
        rng = self.rng
        c.context += new_tokens
        ttl = 3600 if c.ttl_1h else 300
        alive = c.cached_at is not None and (at - c.cached_at).total_seconds() < ttl
        read = c.cached_end if alive else (c.prefix if rng.random() < 0.3 else 0)
        uncached = rng.randint(1, 12)
        write = max(0, c.context - read - uncached)
        c.cached_end, c.cached_at = read + write, at
        u: dict[str, Any] = {
            "input_tokens": uncached,
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
            "output_tokens": output,
        }
        if c.split:
            u["cache_creation"] = {
                "ephemeral_5m_input_tokens": 0 if c.ttl_1h else write,
                "ephemeral_1h_input_tokens": write if c.ttl_1h else 0,
            }
        u["service_tier"] = "standard"
        c.context += output
        return u

    def _response(self, c: _Conv, at: datetime, *, tool: bool) -> list[bytes]:
        """One API response as Claude Code writes it: a line per content block."""
        rng = self.rng
        msg_id = "msg_01" + self._uuid().replace("-", "")[:22]
        self.req += 1
        req_id = f"req_011C{self.req:012d}{rng.randint(0, 9999):04d}"
        blocks: list[dict[str, Any]] = []
        if rng.random() < 0.6:
            blocks.append(
                {
                    "type": "thinking",
                    "thinking": _text(rng, rng.randint(100, 900)),
                    "signature": "sig" + self._uuid()[:12],
                }
            )
        blocks.append({"type": "text", "text": _text(rng, rng.randint(40, 1400))})
        if tool:
            size = int(rng.lognormvariate(6.5, 1.2))
            tool_input: dict[str, Any] = {
                "file_path": f"{c.cwd}/src/m{rng.randint(1, 99)}.py",
                "content": _text(rng, min(size, 40_000)),
            }
            if rng.random() < 0.004:
                tool_input["meta"] = {"id": None, "model": None}  # JSON data that holds nulls
            blocks.append(
                {
                    "type": "tool_use",
                    "id": "toolu_01" + self._uuid()[:20],
                    "name": rng.choice(("Write", "Edit", "Bash", "Read")),
                    "input": tool_input,
                }
            )
        output = sum(len(orjson.dumps(b)) for b in blocks) // 4 + rng.randint(5, 50)
        usage = self._usage(c, at, rng.randint(20, 400), output)
        model = c.model
        lines = []
        for i, block in enumerate(blocks):
            last = i == len(blocks) - 1
            u = dict(usage)
            if not last:
                u["output_tokens"] = rng.choice((1, 2, 8))  # partial counts while streaming
            d = self._base(c, "assistant", at + timedelta(milliseconds=40 * i))
            d["message"] = {
                "model": model,
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "content": [block],
                "stop_reason": ("tool_use" if tool else "end_turn") if last else None,
                "stop_sequence": None,
                "usage": u,
            }
            d["requestId"] = req_id
            lines.append(self._write(c, d))
        return lines

    def conversation(self, c: _Conv, start: datetime, calls: int) -> datetime:
        rng = self.rng
        at = start
        c.prefix = rng.randint(14_000, 26_000)
        c.context = c.prefix
        self._user(c, at, _text(rng, rng.randint(20, 300)))
        for i in range(calls):
            tool = i < calls - 1 and rng.random() < 0.85
            lines = self._response(c, at, tool=tool)
            c.lines.extend(lines)
            if rng.random() < 0.01:
                bad = lines[-1][: len(lines[-1]) // 2]  # a line cut short by a crash
                self._write(c, bad)
            if tool:
                size = int(rng.lognormvariate(7.2, 1.3))
                self._user(
                    c,
                    at + timedelta(seconds=rng.uniform(0.5, 20)),
                    [
                        {
                            "tool_use_id": "toolu_01x",
                            "type": "tool_result",
                            "content": _text(rng, min(size, 120_000)),
                            "is_error": False,
                        }
                    ],
                    toolUseResult={"stdout": "", "stderr": ""},
                )
                c.context += min(size, 120_000) // 4
            if rng.random() < 0.05:
                self._write(
                    c,
                    {
                        "type": "file-history-snapshot",
                        "messageId": self._uuid(),
                        "snapshot": {"trackedFileBackups": {}, "blob": _text(rng, 3000)},
                        "isSnapshotUpdate": False,
                    },
                )
            if rng.random() < 0.02:
                d = self._base(c, "assistant", at)
                d["message"] = {
                    "model": "<synthetic>",
                    "id": self._uuid(),
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "text", "text": "No response requested."}],
                    "stop_reason": "stop_sequence",
                    "stop_sequence": "",
                    "usage": {
                        "input_tokens": 0,
                        "output_tokens": 0,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                    },
                }
                self._write(c, d)
            if c.context > 160_000 and c.agent is None:
                pre = c.context
                d = self._base(c, "system", at + timedelta(seconds=2))
                d.update(
                    {
                        "subtype": "compact_boundary",
                        "content": "Conversation compacted",
                        "isMeta": False,
                        "level": "info",
                        "compactMetadata": {"trigger": "auto", "preTokens": pre},
                    }
                )
                self._write(c, d)
                self._user(
                    c,
                    at + timedelta(seconds=3),
                    "This session is being continued from a previous conversation. "
                    + _text(rng, 6000),
                    isCompactSummary=True,
                )
                c.context = c.prefix + 1_500
                c.cached_end = 0
            gap = rng.uniform(2, 45)
            if rng.random() < 0.07:
                gap = rng.uniform(240, 1500)  # the human was away: 4 to 25 minutes
            at += timedelta(seconds=gap)
        return at

    def session(self, project: str, start: datetime) -> datetime:
        rng = self.rng
        sid = self._uuid()
        pdir = self.root / "projects" / project
        pdir.mkdir(parents=True, exist_ok=True)
        legacy = rng.random() < 0.2
        version = (
            rng.choice(("1.0.88", "1.0.112"))
            if legacy
            else rng.choice(("2.1.44", "2.1.144", "2.1.197"))
        )
        model = _pick(rng, MODELS)
        split = not legacy or rng.random() < 0.5
        ttl_1h = split and rng.random() < 0.35
        calls = int(min(400, rng.lognormvariate(3.6, 0.8))) + 2
        with (pdir / f"{sid}.jsonl").open("wb") as f:
            cwd = "/home/dev/" + project.rsplit("-", maxsplit=1)[-1]
            c = _Conv(f, sid, cwd, version, model, ttl_1h, split)
            fork = self.forkable and rng.random() < 0.03
            if fork:
                _, _, copied = rng.choice(self.forkable)
                for line in copied[: rng.randint(2, 30)]:
                    d = orjson.loads(line)
                    d["sessionId"] = sid  # a fork copies earlier responses into its own file
                    self._write(c, d)
            end = self.conversation(c, start, calls)
            self._write(
                c, {"type": "summary", "summary": _text(rng, 60), "leafUuid": c.parent_uuid}
            )
        self.forkable.append((project, sid, c.lines[:40]))
        if len(self.forkable) > 50:
            self.forkable.pop(0)
        for _ in range(rng.choice((0, 0, 0, 1, 1, 2, 3))):
            agent = self._uuid().replace("-", "")[:17]
            path = (
                (pdir / f"agent-{agent}.jsonl")
                if legacy
                else (pdir / sid / "subagents" / f"agent-{agent}.jsonl")
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as f:
                a = _Conv(f, sid, c.cwd, version, _pick(rng, MODELS[:3]), ttl_1h, split, agent)
                self.conversation(
                    a, start + timedelta(seconds=rng.uniform(5, 600)), rng.randint(2, 40)
                )
            if not legacy:
                meta = {"agentType": "general-purpose", "description": _text(rng, 30)}
                path.with_name(path.name[:-6] + ".meta.json").write_bytes(orjson.dumps(meta))
        if not legacy and rng.random() < 0.08 and c.lines:
            # A /btw side question: its file replays parent responses (same message id, new
            # request id, same timestamp), then asks its own.
            aside = self._uuid().replace("-", "")[:17]
            path = pdir / sid / "subagents" / f"agent-aside_question-{aside}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as f:
                a = _Conv(f, sid, c.cwd, version, model, ttl_1h, split, "aside_question-" + aside)
                for line in rng.sample(c.lines, min(2, len(c.lines))):
                    d = orjson.loads(line)
                    d["isSidechain"] = True
                    d["agentId"] = a.agent
                    self.req += 1
                    d["requestId"] = f"req_011Cside{self.req:010d}"
                    self._write(a, d)
                self.conversation(a, end, 1)
        self.sessions += 1
        return end


def generate(root: Path, *, target_mb: int, seed: int = 7) -> Corpus:
    corpus = Corpus(root, seed)
    projects = [
        f"-home-dev-{name}"
        for name in (
            "api",
            "web",
            "infra",
            "ml",
            "docs",
            "cli",
            "mobile",
            "data",
            "auth",
            "billing",
        )
    ]
    at = T0
    while corpus.bytes < target_mb * 1_000_000:
        at = corpus.session(corpus.rng.choice(projects), at) + timedelta(
            minutes=corpus.rng.uniform(1, 180)
        )
    return corpus


# ---------------------------------------------------------------------- running


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, bytes, float]:
    """(seconds, stdout, peak RSS in MB of the command, from GNU time; 0 without it)."""
    gnu_time = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    with tempfile.NamedTemporaryFile(suffix=".rss") as rss_file:
        full = [gnu_time, "-o", rss_file.name, "-f", "%M", *cmd] if gnu_time else cmd
        t = time.perf_counter()
        r = subprocess.run(full, env=env, capture_output=True, check=False)
        dt = time.perf_counter() - t
        if r.returncode != 0:
            raise SystemExit(
                f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.decode()[-2000:]}"
            )
        text = Path(rss_file.name).read_text().strip().splitlines()
    rss_mb = int(text[-1]) / 1024 if gnu_time and text and text[-1].isdigit() else 0.0
    return dt, r.stdout, rss_mb


def ccusage(
    corpus: Path, home: Path, *, single: bool = False
) -> tuple[float, dict[str, Any], float]:
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "CLAUDE_CONFIG_DIR": str(corpus)}
    cmd = [str(CCUSAGE), "claude", "session", "--json", "--offline"]
    if single:
        cmd.append("--single-thread")
    dt, out, rss = _run(cmd, env)
    return dt, orjson.loads(out), rss


def _env(corpus: Path, data: Path) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(data),
        "TOKENOMY_DATA_DIR": str(data),
        "TOKENOMY_OFFLINE": "1",
        "CLAUDE_CONFIG_DIR": str(corpus),
    }


def tokenomy(corpus: Path, data: Path) -> tuple[float, float, dict[str, Any], float]:
    """``tokenomy import claude-code`` then ``tokenomy report --by session``: two commands."""
    env = _env(corpus, data)
    t_imp, _, rss1 = _run([str(TOKENOMY), "import", "claude-code", str(corpus), "--json"], env)
    t_rep, out, rss2 = _run([str(TOKENOMY), "report", "--by", "session", "--json"], env)
    return t_imp, t_rep, orjson.loads(out), max(rss1, rss2)


def tokenomy_refresh(corpus: Path, data: Path) -> tuple[float, dict[str, Any], float]:
    """``tokenomy report --refresh --by session``: import what is new and report, one command."""
    t, out, rss = _run(
        [str(TOKENOMY), "report", "--refresh", "--by", "session", "--json"], _env(corpus, data)
    )
    return t, orjson.loads(out), rss


# ---------------------------------------------------------------------- comparing


_NULLS = (b'"id":null', b'"model":null', b'"version":null', b'"cwd":null', b'"speed":null')


def _known_differences(corpus: Path) -> dict[str, set[str]]:
    """Sessions where ccusage is known to count differently (docs/analysis.md):

    - ``null field``: it drops an assistant line in which any object has ``"id": null`` or
      ``"model": null`` (its schema check runs on the raw bytes, so tool input data trips it)
      and keeps an earlier, partial line of the same response: it under-counts the output;
    - ``fork copy``: its dedupe key includes the session, so a response that a forked
      session copied is counted in both sessions; tokenomy counts it once;
    - ``replay``: it drops a sidechain replay only when its timestamp equals the kept line's;
      a replay of an early (partial) line of a response has the timestamp of that line, so
      ccusage counts it as one more call; tokenomy drops it (same message id, same session).
    """
    nulls: set[str] = set()
    forks: set[str] = set()
    replays: set[str] = set()
    seen: dict[bytes, str] = {}
    main_ids: dict[str, set[bytes]] = defaultdict(set)
    for f in sorted(corpus.glob("projects/**/*.jsonl"), key=lambda p: ("subagents" in p.parts, p)):
        rel = f.relative_to(corpus / "projects").parts
        sid = rel[1][:-6] if len(rel) == 2 else rel[1]
        with f.open("rb") as fh:
            if sid.startswith("agent-"):  # the older layout: the session is in its lines
                sid = orjson.loads(fh.readline())["sessionId"]
                fh.seek(0)
            for line in fh:
                if b'"type":"assistant"' not in line:
                    continue
                if any(n in line for n in _NULLS):
                    nulls.add(sid)
                i = line.find(b'"requestId":"')
                j = line.find(b'"id":"msg_')
                if i < 0 or j < 0:
                    continue
                msg = line[j : line.find(b'"', j + 6)]
                key = msg + line[i : line.find(b'"', i + 13)]
                if b'"isSidechain":true' in line and msg in main_ids[sid]:
                    replays.add(sid)
                    continue
                if b'"isSidechain":false' in line:
                    main_ids[sid].add(msg)
                other = seen.setdefault(key, sid)
                if other != sid:
                    forks.update((sid, other))
    return {"null field": nulls, "fork copy": forks, "replay": replays}


def compare(cc: dict[str, Any], ours: dict[str, Any], corpus: Path) -> dict[str, Any]:
    """Per session token totals; ccusage's legacy agent-<id> sessions folded into their parent."""
    parent_of: dict[str, str] = {}
    for f in corpus.glob("projects/*/agent-*.jsonl"):
        with f.open("rb") as fh:
            first = orjson.loads(fh.readline())
        parent_of[f.name[:-6]] = first["sessionId"]
    theirs: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    their_cost: dict[str, Decimal] = defaultdict(Decimal)
    unpriced_sessions: set[str] = set()
    folded = 0
    for s in cc["sessions"]:
        sid = s["sessionId"]
        if sid in parent_of:
            sid = parent_of[sid]
            folded += 1
        for k in ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens"):
            theirs[sid][k] += int(s[k])
        their_cost[sid] += Decimal(str(s["totalCost"]))
        if any(m.get("missingPricing") for m in s.get("modelBreakdowns", ())):
            unpriced_sessions.add(sid)
    mine: dict[str, dict[str, Any]] = {}
    for r in ours["rows"]:
        sid = r["key"].removeprefix("cc:")
        mine[sid] = r
    token_diffs = []
    cost_rows = []
    for sid in sorted(set(theirs) | set(mine)):
        t, m = theirs.get(sid), mine.get(sid)
        if t is None or m is None:
            token_diffs.append((sid, "missing in " + ("ccusage" if t is None else "tokenomy")))
            continue
        ours_t = {
            "inputTokens": m["input_tokens"],
            "outputTokens": m["output_tokens"],
            "cacheCreationTokens": m["cache_write_5m_tokens"] + m["cache_write_1h_tokens"],
            "cacheReadTokens": m["cache_read_tokens"],
        }
        diff = {k: ours_t[k] - t[k] for k in ours_t if ours_t[k] != t[k]}
        if diff:
            token_diffs.append((sid, diff))
        if sid not in unpriced_sessions and not m["unpriced_calls"]:
            cost_rows.append((sid, Decimal(m["total_usd"]), their_cost[sid]))
    known = _known_differences(corpus)
    reasons: dict[str, int] = defaultdict(int)
    unexplained = []
    for sid, diff in token_diffs:
        why = [w for w, sessions in known.items() if sid in sessions]
        reasons[" + ".join(why) or "unexplained"] += 1
        if not why:
            unexplained.append((sid, diff))
    return {
        "reasons": dict(reasons),
        "unexplained": unexplained,
        "sessions_ccusage": len(cc["sessions"]),
        "sessions_tokenomy": len(ours["rows"]),
        "legacy_agent_sessions_folded": folded,
        "token_diffs": token_diffs,
        "cost_rows": cost_rows,
        "unpriced_sessions": len(unpriced_sessions),
    }


# ---------------------------------------------------------------------- main


def _append_session(corpus: Path, *, seed: int) -> None:
    """One more session, as Claude Code would write it tomorrow."""
    c = Corpus(corpus, seed=seed)
    c.session("-home-dev-api", T0 + timedelta(days=60 + seed % 10))


def _reasons(reasons: dict[str, int]) -> str:
    return ", ".join(f"{n} {why}" for why, n in sorted(reasons.items(), key=lambda kv: -kv[1]))


def _fmt_s(x: float) -> str:
    return f"{x:.2f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=520, help="corpus size in MB (default 520)")
    ap.add_argument("--keep", type=Path, help="generate into (or reuse) this folder")
    ap.add_argument("--no-publish", action="store_true", help="do not rewrite docs/benchmarks.md")
    ap.add_argument(
        "--rounds", type=int, default=5, help="interleaved rounds of the first pass (median)"
    )
    args = ap.parse_args()
    if not CCUSAGE.exists():
        raise SystemExit(
            "ccusage is not installed: npm install --prefix .bench ccusage@20.0.24 "
            "(20.0.26 has no linux-x64 binary)"
        )
    work = Path(tempfile.mkdtemp(prefix="tokenomy-parity-"))
    corpus = args.keep or work / "corpus"
    try:
        if not (corpus / "projects").is_dir():
            t = time.perf_counter()
            gen = generate(corpus, target_mb=args.mb)
            print(
                f"generated {gen.bytes / 1e6:.0f} MB, {gen.sessions} sessions "
                f"in {time.perf_counter() - t:.0f} s",
                file=sys.stderr,
            )
        size = sum(f.stat().st_size for f in corpus.rglob("*.jsonl"))
        files = sum(1 for _ in corpus.rglob("*.jsonl"))
        home = work / "home"
        home.mkdir()
        data = work / "data"
        # First pass, side by side on fresh ledgers, in interleaved rounds (the machine is
        # shared: each step's median over the rounds): ccusage with its default threads and
        # single-threaded, tokenomy's one command (`report --refresh`), tokenomy's two commands
        # (`import claude-code`, then `report`). Every round, both tokenomy paths must print
        # the same report (parity is computed once, from data both agree on).
        first_runs: dict[str, list[float]] = defaultdict(list)
        rss: dict[str, float] = defaultdict(float)
        for r in range(args.rounds):
            t, cc_json, m = ccusage(corpus, home)
            first_runs["cc"].append(t)
            rss["cc"] = max(rss["cc"], m)
            t, _, m = ccusage(corpus, home, single=True)
            first_runs["cc1"].append(t)
            rss["cc1"] = max(rss["cc1"], m)
            shutil.rmtree(data, ignore_errors=True)
            t, ours1, m = tokenomy_refresh(corpus, data)
            first_runs["one"].append(t)
            rss["one"] = max(rss["one"], m)
            shutil.rmtree(data, ignore_errors=True)
            t_imp, t_rep, ours, m = tokenomy(corpus, data)
            first_runs["imp"].append(t_imp)
            first_runs["rep"].append(t_rep)
            first_runs["two"].append(t_imp + t_rep)
            rss["two"] = max(rss["two"], m)
            if ours1 != ours:
                raise SystemExit(
                    f"round {r + 1}: `tokenomy report --refresh --by session --json` on a fresh "
                    "ledger differs from `tokenomy import claude-code` + `tokenomy report "
                    "--by session --json`"
                )
        med = {k: statistics.median(v) for k, v in first_runs.items()}
        cc_t, cc1_t, one_t = med["cc"], med["cc1"], med["one"]
        imp_t, rep_t, first = med["imp"], med["rep"], med["two"]
        cc_rss, cc1_rss, one_rss, our_rss = rss["cc"], rss["cc1"], rss["one"], rss["two"]
        parity = compare(cc_json, ours, corpus)
        # Second pass: one session appended; then another, for the one-command form.
        _append_session(corpus, seed=99)
        cc2_t, cc2_json, _ = ccusage(corpus, home)
        imp2_t, rep2_t, ours2, _ = tokenomy(corpus, data)
        parity2 = compare(cc2_json, ours2, corpus)
        _append_session(corpus, seed=100)
        cc3_t, cc3_json, _ = ccusage(corpus, home)
        ref_t, ours3, _ = tokenomy_refresh(corpus, data)
        parity3 = compare(cc3_json, ours3, corpus)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            shutil.rmtree(work / "data", ignore_errors=True)
    again = imp2_t + rep2_t
    rows = [
        ["first: ccusage session (default threads)", _fmt_s(cc_t), f"{cc_rss:.0f} MB"],
        ["first: ccusage session --single-thread", _fmt_s(cc1_t), f"{cc1_rss:.0f} MB"],
        [
            "first: tokenomy report --refresh --by session (one command)",
            _fmt_s(one_t),
            f"{one_rss:.0f} MB",
        ],
        ["first: tokenomy import claude-code", _fmt_s(imp_t), f"{our_rss:.0f} MB"],
        ["first: tokenomy report --by session", _fmt_s(rep_t), ""],
        ["first: tokenomy import + report (two commands)", _fmt_s(first), ""],
        ["after one more session: ccusage session", _fmt_s(cc2_t), ""],
        ["after one more session: tokenomy import + report", _fmt_s(again), ""],
        ["after another: ccusage session", _fmt_s(cc3_t), ""],
        ["after another: tokenomy report --refresh (one command)", _fmt_s(ref_t), ""],
    ]
    cost_exact = sum(1 for _, ours_c, theirs_c in parity["cost_rows"] if ours_c == theirs_c)
    cost_close = sum(
        1
        for _, ours_c, theirs_c in parity["cost_rows"]
        if abs(ours_c - theirs_c) <= Decimal("0.000001") * max(1, theirs_c)
    )
    print_table(
        f"tokenomy vs ccusage on {size / 1e6:.0f} MB ({files} files)",
        ["step", "time", "peak RSS"],
        rows,
    )
    print(
        f"sessions: ccusage {parity['sessions_ccusage']} "
        f"({parity['legacy_agent_sessions_folded']} legacy agent files folded into their "
        f"session), tokenomy {parity['sessions_tokenomy']}"
    )
    print(
        f"token totals that differ: {len(parity['token_diffs'])} "
        f"(after appending: {len(parity2['token_diffs'])}, {len(parity3['token_diffs'])})"
    )
    print(f"  by known cause: {parity['reasons']}")
    for p in (parity, parity2, parity3):
        if p["unexplained"]:
            print(f"  UNEXPLAINED: {p['unexplained'][:10]}")
    print(
        f"costs compared (sessions ccusage prices): {len(parity['cost_rows'])}, "
        f"equal {cost_exact}, within a millionth {cost_close}"
    )
    ratio_one = one_t / cc_t
    ratio = first / cc_t
    ratio1 = first / cc1_t
    target = "meets" if ratio_one <= 2 else "misses"
    print(
        f"first read + report: one command {ratio_one:.2f}x ccusage ({target} the 2x target), "
        f"two commands {ratio:.2f}x"
    )
    same = parity["sessions_tokenomy"] - len(parity["token_diffs"])
    body = markdown_table(["step", "time", "peak RSS"], rows) + (
        f"\n\nCorpus: {size / 1e6:.0f} MB in {files} files, generated by the script (seed 7). "
        f"The first-pass rows are medians of {args.rounds} interleaved rounds, each on fresh "
        "ledgers (peak RSS: the largest). "
        f"First read + report as one command (`tokenomy report --refresh --by session --json` "
        f"on a fresh ledger, ccusage's equivalent): **{ratio_one:.1f}x** ccusage's time, which "
        f"{target} the 2x target; as two commands (`import claude-code`, then `report`): "
        f"{ratio:.1f}x ({ratio1:.1f}x ccusage's single-thread time). Both print the same "
        "report (checked). After appending one session, tokenomy "
        f"(import of the new bytes + report) takes {again:.2f} s against ccusage's "
        f"{cc2_t:.2f} s re-read ({ref_t:.2f} s against {cc3_t:.2f} s as one "
        f"`tokenomy report --refresh`). Per-session token totals equal ccusage's in {same} of "
        f"{parity['sessions_tokenomy']} sessions; every difference has a known cause "
        f"({_reasons(parity['reasons'])}; unexplained: {len(parity['unexplained'])}), "
        "listed in docs/analysis.md. Costs equal to the micro-dollar in "
        f"{cost_close} of {len(parity['cost_rows'])} sessions ccusage can price "
        "(ccusage sums floats).\n"
    )
    if not args.no_publish:
        publish(
            "ccusage_parity",
            title="Transcript import vs ccusage (bench/ccusage_parity.py)",
            command=(
                f".venv/bin/python bench/ccusage_parity.py --mb {args.mb} --rounds {args.rounds}"
            ),
            body_md=body,
            data={
                "bytes": size,
                "files": files,
                "ccusage_s": cc_t,
                "ccusage_single_thread_s": cc1_t,
                "tokenomy_import_s": imp_t,
                "tokenomy_report_s": rep_t,
                "tokenomy_one_command_s": one_t,
                "ratio_first_one_command": ratio_one,
                "ratio_first": ratio,
                "rounds": args.rounds,
                "first_runs_s": dict(first_runs),
                "ccusage_again_s": cc2_t,
                "tokenomy_again_s": again,
                "tokenomy_refresh_s": ref_t,
                "ccusage_third_s": cc3_t,
                "reasons": parity["reasons"],
                "unexplained": len(parity["unexplained"]),
                "token_diffs": [[s, d] for s, d in parity["token_diffs"]],
                "cost_rows": [[s, str(a), str(b)] for s, a, b in parity["cost_rows"]],
                "peak_rss_mb": {"ccusage": cc_rss, "tokenomy": our_rss, "one_command": one_rss},
            },
        )


if __name__ == "__main__":
    main()
