"""The one funnel: ``request → policies (pure) → [transport] → meter → ledger``.

:class:`Pipeline` does no network I/O itself. A transport (the drop-in client's httpx
transports, the gateway's relay, the batch runner) calls :meth:`Pipeline.prepare` with the bytes
it is about to send and sends what comes back, tells :meth:`Pipeline.started` when the response
begins, and :meth:`Pipeline.finish` with what the response said. So the sync and async clients,
the gateway and the batch runner share every line of policy and metering.

Requests the API would reject are sent unchanged: its error is the truth.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from tokenomy.core.anatomy import anatomy
from tokenomy.core.cache_model import BreakpointPos, CacheModel, Ttl
from tokenomy.core.cache_plan import (
    CachePlan,
    PlanHistory,
    caller_breakpoints,
    is_cacheable,
    plan_cache,
)
from tokenomy.core.canonical import Chain, chain
from tokenomy.core.keys import fingerprint
from tokenomy.core.records import CallRecord, RunSource
from tokenomy.core.stabilize import (
    VolatileFinding,
    find_volatile,
    move_volatile_system_blocks,
    pin_key_orders,
)
from tokenomy.data.table import ModelTable
from tokenomy.pipeline.calls import CallContext, Kind, PipelineConfig, Prepared
from tokenomy.pipeline.meter import meter_call
from tokenomy.pipeline.runs import Run
from tokenomy.pipeline.tap import ResponseFacts
from tokenomy.ports import Clock, UsageSink

__all__ = ["CallContext", "Pipeline", "PipelineConfig", "Prepared"]

_DEFAULT_MIN_CACHEABLE = 1024
CACHE_DIAGNOSIS_BETA = "cache-diagnosis-2026-04-07"


class Pipeline:
    """Policies and metering for every call, per run and per API key."""

    def __init__(
        self,
        *,
        table: ModelTable,
        clock: Clock,
        sink: UsageSink | None = None,
        config: PipelineConfig | None = None,
        new_id: Callable[[str], str] | None = None,
    ) -> None:
        self.table = table
        self.clock = clock
        self.sink = sink
        self.config = config or PipelineConfig()
        self._new_id = new_id or _random_id
        self._lock = threading.RLock()
        self._caches: dict[str, CacheModel] = {}
        self._runs: dict[str, Run] = {}
        self._volatile_memo: dict[bytes, tuple[VolatileFinding, ...]] = {}
        self._calls = 0

    # ------------------------------------------------------------------ runs

    def start_run(
        self,
        name: str,
        *,
        parent: Run | None = None,
        tags: Mapping[str, str] | None = None,
        source: RunSource | None = None,
        external_id: str | None = None,
        run_id: str | None = None,
    ) -> Run:
        """Start a run (recorded at once, and again with its end)."""
        run = Run(
            self,
            run_id=run_id or self._new_id("run"),
            name=name,
            started_at=self.clock.now(),
            parent=parent,
            tags=tags,
            source=source or self.config.source,
            external_id=external_id,
        )
        if parent is not None:
            # Sub-agents share the API key's cache with their parent: the ideal is the whole
            # tree's (a sibling's write is a read for the next sibling), kept on the root.
            run.state.ideal = parent.state.ideal
        with self._lock:
            self._runs[run.run_id] = run
        if self.sink is not None:
            self.sink.record_run(run.record())
        return run

    def end_run(self, run: Run) -> None:
        """Record the run's end and stop tracking it (its object stays usable for its summary)."""
        run.ended_at = self.clock.now()
        self.forget_run(run.run_id)
        if self.sink is not None:
            self.sink.record_run(run.record())

    def get_run(self, run_id: str) -> Run | None:
        with self._lock:
            return self._runs.get(run_id)

    def forget_run(self, run_id: str) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    def cache_model(self, scope: str) -> CacheModel:
        with self._lock:
            model = self._caches.get(scope)
            if model is None:
                model = self._caches[scope] = CacheModel()
            return model

    # ------------------------------------------------------------------ prepare

    def prepare(self, ctx: CallContext, *, run: Run | None) -> Prepared:
        """Apply the policies to an outgoing request; returns what to send."""
        path = ctx.path.split("?", 1)[0].rstrip("/")
        kind: Kind = (
            "messages"
            if ctx.method == "POST" and path.endswith("/v1/messages")
            else "count_tokens"
            if ctx.method == "POST" and path.endswith("/v1/messages/count_tokens")
            else "other"
        )
        fp = fingerprint(ctx.api_key)
        p = Prepared(
            call_id=self._new_id("call"),
            kind=kind,
            body=ctx.body,
            run=run,
            scope=fp or "anonymous",
            stream=False,
            model_requested=None,
            started_at=self.clock.now(),
            started_s=self.clock.monotonic_s(),
            api_key_fingerprint=fp,
            mode=ctx.mode,
            optimize=self.config.optimize if ctx.optimize is None else ctx.optimize,
        )
        if kind != "messages":
            return p
        request: Any = ctx.request
        if request is None:
            try:
                request = orjson.loads(ctx.body)
            except orjson.JSONDecodeError:
                p.decisions["skipped"] = "body is not JSON: sent unchanged"
                return p
        if not isinstance(request, dict) or not isinstance(request.get("messages"), list):
            p.decisions["skipped"] = "not a Messages request: sent unchanged"
            return p
        model_name = request.get("model")
        p.model_requested = model_name if isinstance(model_name, str) else None
        p.stream = request.get("stream") is True
        with self._lock:
            self._plan(p, request, run)
        return p

    def _plan(self, p: Prepared, request: dict[str, Any], run: Run | None) -> None:
        info = self.table.find(p.model_requested) if p.model_requested else None
        p.model = info
        model_key = info.id if info else (p.model_requested or "?")
        min_tokens = info.min_cacheable_tokens if info else _DEFAULT_MIN_CACHEABLE
        state = run.state if run is not None else None
        cache = self.cache_model(p.scope)
        decisions = p.decisions
        rewritten: dict[str, Any] = request
        prev_chain = state.previous.chain if state is not None and state.previous else None
        ch = chain(rewritten, previous=prev_chain)
        if p.optimize and state is not None and self.config.pin_key_order:
            pinned, changes = pin_key_orders(rewritten, state.key_orders, ch)
            if changes:
                rewritten = pinned
                ch = chain(rewritten, previous=prev_chain)
                decisions["stabilize"] = {"key_order": list(changes)}
        an = anatomy(
            rewritten, model=info, request_chain=ch, memo=state.estimates if state else None
        )
        previous = state.previous if state else None
        volatile = self._volatile(ch, previous.chain if previous else None)
        if state is not None:
            state.volatile.update(v.ref for v in volatile if v.confirmed or v.pattern != "changed")
        if p.optimize and self.config.move_volatile_system and volatile:
            moved_req, moved = move_volatile_system_blocks(
                rewritten, frozenset(v.ref for v in volatile)
            )
            if moved:
                rewritten = moved_req
                ch = chain(rewritten)
                an = anatomy(
                    rewritten, model=info, request_chain=ch, memo=state.estimates if state else None
                )
                decisions.setdefault("stabilize", {})["moved"] = list(moved)
        now_s = p.started_s
        self._calls += 1
        if self._calls % 512 == 0:  # bounded memory in long-lived processes (the gateway)
            cache.purge(now_s)
        positions = cache.positions(model_key, an)
        if p.optimize:
            entry_indices = frozenset(
                i
                for i, link in enumerate(ch.links)
                if (e := cache.entries.get((model_key, link.prefix_hash))) is not None
                and e.live(now_s)
            )
            history = PlanHistory(
                gaps_s=tuple(state.gaps_s) if state else (),
                entry_indices=entry_indices,
                volatile=frozenset(state.volatile) if state else frozenset(v.ref for v in volatile),
                independent_streak=state.independent_streak if state else 0,
            )
            planned, plan = plan_cache(
                rewritten,
                anatomy=an,
                positions=positions,
                min_cacheable_tokens=min_tokens,
                history=history,
                config=self.config.planner,
            )
        else:
            planned = rewritten
            plan = CachePlan(
                tuple(caller_breakpoints(ch)),
                "observe mode: nothing changed",
                automatic=request.get("cache_control") is not None,
            )
        if p.optimize and self.config.cache_diagnostics and state and state.previous_message_id:
            planned = {**planned, "diagnostics": {"previous_message_id": state.previous_message_id}}
            p.add_betas = (CACHE_DIAGNOSIS_BETA,)
        if planned is not request:
            p.body = orjson.dumps(planned)
        bps = list(plan.positions())
        if planned.get("cache_control") is not None:
            auto = _automatic_position(ch, planned["cache_control"])
            if auto is not None and all(b.index != auto.index for b in bps):
                bps.append(auto)
        prediction = cache.predict(
            model=model_key,
            anatomy=an,
            breakpoints=bps,
            min_cacheable_tokens=min_tokens,
            now_s=now_s,
            positions=positions,
        )
        cache.begin(prediction, an, call_id=p.call_id, now_s=now_s)
        p.request, p.chain, p.anatomy, p.plan, p.prediction = planned, ch, an, plan, prediction
        p.volatile = volatile
        decisions["cache_plan"] = {
            "breakpoints": [
                {"ref": str(b.ref), "ttl": b.ttl, "role": b.role, "reason": b.reason}
                for b in plan.breakpoints
            ],
            "automatic": plan.automatic,
            "ttl_reason": plan.ttl_reason,
            "notes": list(plan.notes),
            "changed": plan.changed,
        }
        decisions["prediction"] = {
            "read_tokens": prediction.read_tokens,
            "write_5m_tokens": prediction.write_5m_tokens,
            "write_1h_tokens": prediction.write_1h_tokens,
            "hit": str(ch.links[prediction.hit_index].ref)
            if prediction.hit_index is not None
            else None,
        }
        parent_prev = run.parent.state.previous if run is not None and run.parent else None
        if run is not None and parent_prev is not None and run.state.calls == 0:
            # what this sub-agent re-sends of its parent's context (as of the parent's last call)
            parent_blocks = {link.block_hash for link in parent_prev.chain.links}
            dup = sum(
                n
                for link, n in zip(ch.links, an.block_tokens, strict=True)
                if link.block_hash in parent_blocks
            )
            decisions["duplicated_context_tokens"] = dup

    def _volatile(self, ch: Chain, previous: Chain | None) -> tuple[VolatileFinding, ...]:
        """Volatile findings in tools and system, memoised per block for pattern scans."""
        upto = max(
            (i for i, link in enumerate(ch.links) if link.ref.segment != "messages"), default=-1
        )
        if upto < 0:
            return ()
        key = ch.links[upto].prefix_hash + (
            previous.links[upto].prefix_hash if previous and len(previous.links) > upto else b""
        )
        hit = self._volatile_memo.get(key)
        if hit is None:
            hit = find_volatile(ch, upto=upto, previous=previous)
            if len(self._volatile_memo) > 4096:
                self._volatile_memo.clear()
            self._volatile_memo[key] = hit
        return hit

    # ------------------------------------------------------------------ response

    def started(self, p: Prepared) -> None:
        """The response began: entries this call writes are readable from now on."""
        if p.response_started_s is None:
            p.response_started_s = self.clock.monotonic_s()
            if p.prediction is not None:
                with self._lock:
                    self.cache_model(p.scope).started(p.call_id)

    def first_content(self, p: Prepared) -> None:
        """The first content event of a stream arrived (time to first token)."""
        if p.first_content_s is None:
            p.first_content_s = self.clock.monotonic_s()

    def finish(
        self,
        p: Prepared,
        *,
        status: int,
        facts: ResponseFacts,
        error: str | None = None,
        cancelled: bool = False,
    ) -> CallRecord | None:
        """Meter the call, diagnose it, hand it to the ledger. Idempotent."""
        if p.finished or not p.metered:
            return None
        p.finished = True
        ended_s = self.clock.monotonic_s()
        with self._lock:
            record = meter_call(
                p,
                table=self.table,
                cache=self.cache_model(p.scope),
                now=self.clock.now(),
                status=status,
                facts=facts,
                error=error,
                cancelled=cancelled,
                ended_s=ended_s,
            )
        if self.sink is not None:
            self.sink.record_call(record)
        return record


# uuid4's bits, from the process's Mersenne Twister (seeded from the OS, and again in a forked
# child): ids need to be unique, not secret, and os.urandom lets go of the GIL on every call,
# handing the core to the ledger writer in the middle of a request.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def _random_id(prefix: str) -> str:
    """``prefix_`` and the hex of a random version-4 UUID, as ``uuid.uuid4().hex`` gives."""
    return f"{prefix}_{random.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET:032x}"


def _automatic_position(ch: Chain, marker: Any) -> BreakpointPos | None:
    """Where the server puts a top-level automatic breakpoint: the last cacheable block."""
    ttl: Ttl = "1h" if isinstance(marker, Mapping) and marker.get("ttl") == "1h" else "5m"
    for i in range(len(ch.links) - 1, -1, -1):
        if is_cacheable(ch.links[i].block):
            return BreakpointPos(i, ttl)
    return None
