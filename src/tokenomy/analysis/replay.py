"""Rebuilding Claude Code 2.1.330+ requests from their transcript, and re-pricing them exactly.

2.1.330 writes, before each API call, an ``api-request`` line: the request's parameters, its
``shapeHash`` (an ``api-request-shape`` line holds system + tools), its messages as a list of
content hashes — ``keep`` messages of the previous request of the same chain (``base``) then
``tail`` — and where its ``cache_control`` markers go. A message's hash is Claude Code's: the
SHA-256 of the message as JSON with sorted keys and no ``cache_control``, a string ``content``
read as one text block (checked against real 2.1.330 transcripts). Messages that are not in
the transcript as they were sent come as ``api-request-blob`` lines; the others are the
transcript's own user lines and assistant responses (all content blocks of one ``message.id``).
The response names its request (``requestRef``).

With the requests rebuilt, the pure cache model of :mod:`tokenomy.core.cache_model` runs over
them three times, from the request start times:

- as sent (each marker's own TTL), learning from the billed usage after each call — this
  calibrates token positions (a read or write gives the exact length of a prefix) and checks
  the rebuild: ``agree`` says the model predicted what the server billed;
- as if every marker had been ``5m``, and as if every marker had been ``1h`` — with the
  calibrated positions. Their reads and writes are the exact what-if answers.

The run's ideal cost (:class:`tokenomy.core.ideal.IdealCost`) is kept from the same chains.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

import orjson

from tokenomy.analysis.claude_code import (
    MessageLine,
    ReplayLine,
    TranscriptCall,
    parse_timestamp,
)
from tokenomy.core.anatomy import Anatomy, anatomy
from tokenomy.core.cache_model import BreakpointPos, CacheModel, Entry, Ttl
from tokenomy.core.canonical import BlockRef
from tokenomy.core.ideal import IdealCost
from tokenomy.core.pricing import MTOK, Rates
from tokenomy.core.tokens import estimate_block_tokens
from tokenomy.core.usage import Usage
from tokenomy.data.table import ModelInfo

__all__ = ["ReplayResult", "Replayer", "cc_message_hash"]

_KEEP_REQUESTS = 16  # earlier requests kept as possible bases (one per chain is the norm)
_TTLS: tuple[Ttl, Ttl] = ("5m", "1h")


def _js_json(value: Any) -> str:
    # JSON.stringify with keys sorted: Python's escaping matches it for everything a
    # transcript holds (control characters as \\uXXXX, non-ASCII kept).
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def cc_message_hash(message: Mapping[str, Any]) -> str:
    """Claude Code's content hash of a message (what ``tail`` lists)."""
    m = dict(message)
    if isinstance(m.get("content"), str):
        m["content"] = [{"type": "text", "text": m["content"]}]
    m = _strip(m)
    return hashlib.sha256(_js_json(m).encode()).hexdigest()


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """One call replayed: what the model predicted as sent, and the two what-ifs."""

    agree: bool
    # ttl -> (read, write 5m, write 1h, uncached) tokens, summing to the call's total input.
    what_if: Mapping[str, tuple[int, int, int, int]]

    def to_json(self) -> dict[str, Any]:
        return {"agree": self.agree, **{k: list(v) for k, v in self.what_if.items()}}


@dataclass(slots=True)
class _Request:
    hashes: list[str]
    shape: str | None
    params: Mapping[str, Any]
    markers: list[tuple[list[Any], Ttl]]
    at_s: float


@dataclass(slots=True)
class Replayer:
    """Replay state of one transcript file. Feed it lines in order; settle each response."""

    shapes: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    requests: OrderedDict[str, _Request] = field(default_factory=OrderedDict)
    pending: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)
    models: dict[str, CacheModel] = field(
        default_factory=lambda: {k: CacheModel() for k in ("sent", *_TTLS)}
    )
    ideal: IdealCost = field(default_factory=IdealCost)
    memo: dict[tuple[str, int], int] = field(default_factory=dict)
    calls: int = 0
    rebuilt: int = 0
    unresolved: int = 0

    @property
    def active(self) -> bool:
        return bool(self.requests) or bool(self.shapes)

    # ------------------------------------------------------------------ feeding

    def feed_replay(self, line: ReplayLine) -> None:
        d = line.data
        if line.kind == "api-request-shape":
            h, shape = d.get("shapeHash"), d.get("shape")
            if isinstance(h, str) and isinstance(shape, dict):
                self.shapes[h] = shape
        elif line.kind == "api-request-blob":
            h, msg = d.get("hash"), d.get("message")
            if isinstance(h, str) and isinstance(msg, dict):
                self.messages[h] = msg
        elif line.kind == "api-request":
            self._request(d)

    def _request(self, d: Mapping[str, Any]) -> None:
        rid = d.get("id")
        if not isinstance(rid, str):
            return
        base = d.get("base")
        keep = d.get("keep") if isinstance(d.get("keep"), int) else 0
        tail = [h for h in d.get("tail") or () if isinstance(h, str)]
        hashes: list[str] = []
        if keep:
            prev = self.requests.get(base) if isinstance(base, str) else None
            if prev is None or len(prev.hashes) < keep:
                self.unresolved += 1
                return
            hashes = prev.hashes[:keep]
        at = parse_timestamp(d.get("timestamp"))
        markers: list[tuple[list[Any], Ttl]] = []
        for m in d.get("cacheControl") or ():
            if isinstance(m, dict) and isinstance(m.get("path"), list):
                value = m.get("value")
                ttl: Ttl = "1h" if isinstance(value, dict) and value.get("ttl") == "1h" else "5m"
                markers.append((m["path"], ttl))
        params = d.get("params") if isinstance(d.get("params"), dict) else {}
        self.requests[rid] = _Request(
            hashes=hashes + tail,
            shape=d.get("shapeHash") if isinstance(d.get("shapeHash"), str) else None,
            params=cast(Mapping[str, Any], params),
            markers=markers,
            at_s=at.timestamp() if at else 0.0,
        )
        while len(self.requests) > _KEEP_REQUESTS:
            self.requests.popitem(last=False)

    def feed_user(self, line: MessageLine) -> None:
        self.messages[cc_message_hash(line.message)] = line.message

    def feed_assistant(self, message_id: str, content: Sequence[Mapping[str, Any]]) -> None:
        """One content-block line of a response; blocks are joined by message id."""
        if content:
            self.pending.setdefault(message_id, []).extend(content)

    def _flush_pending(self) -> None:
        for blocks in self.pending.values():
            msg = {"role": "assistant", "content": blocks}
            self.messages[cc_message_hash(msg)] = msg
        self.pending.clear()

    # ------------------------------------------------------------------ settling

    def request_of(self, call: TranscriptCall) -> tuple[dict[str, Any], _Request] | None:
        """The rebuilt request a response answered, or None when it cannot be rebuilt."""
        req = self.requests.get(call.request_ref or "")
        if req is None:
            return None
        missing = [h for h in req.hashes if h not in self.messages]
        shape = self.shapes.get(req.shape or "")
        if missing or shape is None:
            return None
        body: dict[str, Any] = {k: v for k, v in req.params.items() if k != "betas"}
        body["system"] = shape.get("system") or []
        body["tools"] = shape.get("tools") or []
        body["messages"] = [self.messages[h] for h in req.hashes]
        return body, req

    def settle(
        self, call: TranscriptCall, *, info: ModelInfo | None, rates: Rates | None
    ) -> ReplayResult | None:
        """Replay the response's request under the three TTL policies; None if not rebuilt."""
        self.calls += 1
        # This response's blocks are all in: the next request may list it by hash.
        self._flush_pending()
        built = self.request_of(call) if info is not None else None
        if built is None or info is None:
            return None
        body, req = built
        an = anatomy(body, model=info, memo=self.memo)
        index = {link.ref: i for i, link in enumerate(an.chain.links)}
        bps = _breakpoints(req.markers, index)
        if not bps:
            return None
        self.rebuilt += 1
        model = info.id
        usage = call.usage.billable()
        sent = self.models["sent"]
        pos = sent.positions(model, an)
        now = req.at_s
        key = call.request_ref or str(self.calls)
        p = sent.predict(
            model=model,
            anatomy=an,
            breakpoints=bps,
            min_cacheable_tokens=info.min_cacheable_tokens,
            now_s=now,
            positions=pos,
        )
        sent.begin(p, an, call_id=key, now_s=now)
        obs = sent.observe(p, an, usage, call_id=key)
        # The positions the as-sent model now knows exactly serve all three policies.
        pos = sent.positions(model, an)
        total = usage.total_input_tokens
        out: dict[str, tuple[int, int, int, int]] = {}
        for ttl in _TTLS:
            m = self.models[ttl]
            q = m.predict(
                model=model,
                anatomy=an,
                breakpoints=[BreakpointPos(b.index, ttl) for b in bps],
                min_cacheable_tokens=info.min_cacheable_tokens,
                now_s=now,
                positions=pos,
            )
            m.begin(q, an, call_id=key, now_s=now)
            m.started(key)
            read = min(q.read_tokens, total)
            written = min(q.write_tokens, total - read)
            out[ttl] = (
                read,
                written if ttl == "5m" else 0,
                written if ttl == "1h" else 0,
                total - read - written,
            )
        if rates is not None:
            self._ideal(an=an, pos=pos, usage=usage, model=model, info=info, rates=rates, now=now)
        return ReplayResult(agree=obs.reads_agree, what_if=out)

    def _ideal(
        self,
        *,
        an: Anatomy,
        pos: Sequence[int],
        usage: Usage,
        model: str,
        info: ModelInfo,
        rates: Rates,
        now: float,
    ) -> None:
        self.ideal.add_call(
            model=model,
            prefix_hashes=[link.prefix_hash for link in an.chain.links],
            positions=pos,
            total_input_tokens=usage.total_input_tokens,
            rates=rates,
            min_cacheable_tokens=info.min_cacheable_tokens,
            now_s=now,
            other_usd=usage.output_tokens * rates.output / MTOK,
        )

    def shape_tokens(self, shape_hash: str | None, info: ModelInfo | None) -> tuple[int, int]:
        """Estimated (tools, system) tokens of a request shape; (0, 0) if unknown."""
        shape = self.shapes.get(shape_hash or "")
        if shape is None:
            return 0, 0
        tok = info.tokenizer if info is not None else "2023"

        def est(blocks: Any) -> int:
            if isinstance(blocks, str):
                blocks = [{"type": "text", "text": blocks}]
            if not isinstance(blocks, list):
                return 0
            return sum(
                estimate_block_tokens(b, tokenizer=tok) for b in blocks if isinstance(b, dict)
            )

        tools = est(shape.get("tools"))
        if tools and info is not None and info.tool_system_tokens:
            tools += info.tool_system_tokens[0]
        return tools, est(shape.get("system"))

    # ------------------------------------------------------------------ persistence

    def dump(self) -> bytes:
        """The state needed to continue with the next appended lines, compressed."""
        self._flush_pending()
        live = {h for r in self.requests.values() for h in r.hashes}
        shapes = {r.shape for r in self.requests.values() if r.shape}
        state = {
            "shapes": {k: v for k, v in self.shapes.items() if k in shapes},
            "messages": {h: m for h, m in self.messages.items() if h in live},
            "requests": [
                [rid, r.hashes, r.shape, r.params, [[p, t] for p, t in r.markers], r.at_s]
                for rid, r in self.requests.items()
            ],
            "models": {k: _dump_model(m) for k, m in self.models.items()},
            "ideal": [str(self.ideal.input_usd), str(self.ideal.other_usd)],
            "counts": [self.calls, self.rebuilt, self.unresolved],
        }
        return zlib.compress(orjson.dumps(state), 3)

    @classmethod
    def load(cls, blob: bytes) -> Replayer:
        s = orjson.loads(zlib.decompress(blob))
        r = cls()
        r.shapes = dict(s["shapes"])
        r.messages = dict(s["messages"])
        for rid, hashes, shape, params, markers, at_s in s["requests"]:
            r.requests[rid] = _Request(hashes, shape, params, [(p, t) for p, t in markers], at_s)
        r.models = {k: _load_model(v) for k, v in s["models"].items()}
        # The ideal's per-prefix memory is not kept: a reuse across an import boundary is
        # counted as plain input, so the bound stays a bound (never below the true ideal).
        r.ideal = IdealCost(input_usd=Decimal(s["ideal"][0]), other_usd=Decimal(s["ideal"][1]))
        r.calls, r.rebuilt, r.unresolved = s["counts"]
        return r


def _breakpoints(
    markers: Sequence[tuple[list[Any], Ttl]], index: Mapping[BlockRef, int]
) -> list[BreakpointPos]:
    out: dict[int, Ttl] = {}
    for path, ttl in markers:
        ref: BlockRef | None = None
        if len(path) >= 2 and path[0] in ("system", "tools") and isinstance(path[1], int):
            ref = BlockRef(path[0], path[1])
        elif (
            len(path) >= 4
            and path[0] == "messages"
            and isinstance(path[1], int)
            and path[2] == "content"
            and isinstance(path[3], int)
        ):
            ref = BlockRef("messages", path[1], path[3])
        elif len(path) == 2 and path[0] == "messages" and isinstance(path[1], int):
            ref = BlockRef("messages", path[1], 0)
        i = index.get(ref) if ref is not None else None
        if i is not None:
            out[i] = ttl
    return [BreakpointPos(i, t) for i, t in sorted(out.items())]


def _dump_model(m: CacheModel) -> dict[str, Any]:
    return {
        "entries": [
            [e.model, e.prefix_hash.hex(), e.index, e.tokens, e.ttl, e.last_used_s, e.hits]
            for e in m.entries.values()
        ],
        "exact": [[k[0], k[1].hex(), v] for k, v in m.exact_tokens.items()],
        "ratio": m.ratio,
    }


def _load_model(d: Mapping[str, Any]) -> CacheModel:
    m = CacheModel()
    for model, h, index, tokens, ttl, last, hits in d["entries"]:
        key = (model, bytes.fromhex(h))
        m.entries[key] = Entry(model, key[1], index, tokens, ttl, last, readable=True, hits=hits)
    m.exact_tokens = {(k, bytes.fromhex(h)): v for k, h, v in d["exact"]}
    m.ratio = dict(d["ratio"])
    return m
