"""The gateway: an ASGI app that speaks the Anthropic API and sends every call through the pipeline.

Routes are matched on the path (the query, e.g. Claude Code's ``?beta=true``, is passed on):

- ``POST /v1/messages`` — prepared by the pipeline (optimize: cache plan; observe: not a byte
  changed), relayed (streams frame by frame), metered, recorded in the ledger.
- ``GET /v1/messages/batches/{id}/results`` — relayed as it streams and each result metered at
  batch prices (once per batch, keyed by batch and ``custom_id``).
- ``GET /healthz``, ``GET /metrics`` — the gateway's own.
- anything else (``count_tokens``, the other batch routes, ``/v1/models``, ``HEAD /``, unknown
  routes) — passed through verbatim.

Errors the gateway answers itself are the API's envelope with the status the API would give;
they carry ``x-tokenomy-origin: gateway`` so they can be told apart from relayed ones. Upstream
errors — status, body, ``retry-after``, ``request-id`` — reach the client unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from tokenomy.core.keys import fingerprint
from tokenomy.core.records import CallRecord
from tokenomy.errors import UpstreamError
from tokenomy.gateway.admission import Admission, Admitted, Refusal
from tokenomy.gateway.auth import ClientKey, GatewayKey, client_key
from tokenomy.gateway.batches import BatchResultsMeter, own_results_url
from tokenomy.gateway.budgets import Budgets
from tokenomy.gateway.metrics import CONTENT_TYPE, GatewayMetrics
from tokenomy.gateway.relay import (
    ASGIReceive,
    ASGISend,
    BodyTooLarge,
    ClientGone,
    Reply,
    primed,
    read_body,
    until_disconnect,
)
from tokenomy.gateway.routing import MAX_BODY_BYTES, GatewayConfig, Route, route_of
from tokenomy.gateway.runs import PARENT_HEADER, RUN_HEADER, SUBAGENT_HEADER, RunRegistry
from tokenomy.pipeline import (
    CallContext,
    Pipeline,
    Prepared,
    ResponseFacts,
    StreamTap,
    read_message,
)
from tokenomy.ports import Upstream, UpstreamRequest
from tokenomy.wire.errors import error_body

__all__ = ["MAX_BODY_BYTES", "Gateway", "GatewayConfig", "Route", "route_of"]

log = logging.getLogger("tokenomy.gateway")

# Never forwarded: hop-by-hop, recomputed, or the gateway's own instructions.
_DROP_REQUEST = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "upgrade",
        "proxy-authorization",
        RUN_HEADER,
        SUBAGENT_HEADER,
        PARENT_HEADER,
    }
)
_ORIGIN = ("x-tokenomy-origin", "gateway")


@dataclass(slots=True)
class _Call:
    """One request on its way through."""

    route: Route
    method: str
    path: str
    query: str
    # The client's headers (lower-case names); they hold its API key: never print them.
    headers: dict[str, str] = field(repr=False)
    scheme: str = "http"
    key: ClientKey | None = None
    gateway_key: GatewayKey | None = None
    prepared: Prepared | None = None
    max_cost_usd: Decimal | None = None
    upstream_s: float = 0.0


class Gateway:
    """The ASGI application. ``await gateway.aclose()`` (or the ASGI lifespan) shuts it down."""

    def __init__(
        self,
        *,
        pipeline: Pipeline,
        upstream: Upstream,
        config: GatewayConfig | None = None,
        budgets: Budgets | None = None,
        upstream_label: str = "upstream",
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.upstream = upstream
        self.config = config or GatewayConfig()
        self.budgets = budgets
        self.metrics = GatewayMetrics()
        self.admission = Admission(
            budgets=budgets,
            upstream_api_key=self.config.upstream_api_key,
            require_gateway_key=self.config.require_gateway_key,
            metrics=self.metrics,
        )
        self.runs = RunRegistry(
            pipeline,
            idle_s=self.config.run_idle_s,
            hibernate_s=self.config.run_hibernate_s,
            max_runs=self.config.max_runs,
        )
        self._upstream_label = upstream_label
        self._on_close = on_close
        self._optimize = self.config.mode == "optimize"
        self._tasks: set[asyncio.Task[None]] = set()
        self._batch_results = BatchResultsMeter(pipeline, self.metrics)
        self._in_flight = 0
        self.metrics.in_flight.set_function(lambda: self._in_flight)
        self._requests = 0
        # cache scopes (upstream key fingerprints) seen, for the periodic purge
        self._scopes: dict[str, None] = {}
        self._closed = False

    # ------------------------------------------------------------------ ASGI

    async def __call__(
        self, scope: MutableMapping[str, Any], receive: ASGIReceive, send: ASGISend
    ) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: ASGIReceive, send: ASGISend) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def drain(self) -> None:
        """Wait for background work (budget updates) started so far."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def aclose(self) -> None:
        """Finish background work, end open runs, close the upstream and the ledger sink."""
        if self._closed:
            return
        self._closed = True
        await self.drain()
        self.runs.close()
        await self.upstream.aclose()
        if self.budgets is not None:
            await self.budgets.aclose()
        if self._on_close is not None:
            await asyncio.to_thread(self._on_close)

    async def _http(
        self, scope: MutableMapping[str, Any], receive: ASGIReceive, send: ASGISend
    ) -> None:
        method: str = scope["method"]
        path: str = scope["path"]
        route = route_of(method, path)
        reply = Reply(send)
        if route == "healthz":
            await reply.json(200, self.health())
            return
        if route == "metrics":
            self.metrics.runs.set(len(self.runs))
            await reply.whole(200, {"content-type": CONTENT_TYPE}, self.metrics.render())
            return
        headers: dict[str, str] = {}
        for k, v in scope["headers"]:
            name = k.decode("latin-1").lower()
            value = v.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        call = _Call(
            route=route,
            method=method,
            path=path,
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            scheme=scope.get("scheme", "http"),
        )
        self._in_flight += 1
        try:
            await self._handle(call, receive, reply)
        finally:
            self._in_flight -= 1
            self.metrics.count_request(route, reply.status or 499)

    # ------------------------------------------------------------------ one request

    async def _handle(self, call: _Call, receive: ASGIReceive, reply: Reply) -> None:
        declared = call.headers.get("content-length")
        try:
            body = await read_body(
                receive,
                limit=self.config.body_limit(call.route),
                declared=int(declared) if declared and declared.isdigit() else None,
            )
        except BodyTooLarge:
            mib = self.config.body_limit(call.route) // (1024 * 1024)
            await self._refuse(
                call,
                reply,
                413,
                f"Request exceeds the maximum allowed size of {mib} MB",
                error_type="request_too_large",
            )
            return
        except ClientGone:
            return
        if call.path.startswith("/v1/") and not await self._authorize(call, reply):
            return
        request: dict[str, Any] | None = None
        if call.route == "messages":
            try:
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                await self._refuse(call, reply, 400, f"The request body is not valid JSON: {exc}")
                return
            request = parsed if isinstance(parsed, dict) else None
            if call.gateway_key is not None and not await self._within_budget(call, reply):
                return
        elif (
            call.route == "batches"
            and call.method == "POST"
            and call.gateway_key is not None
            and not await self._within_budget(call, reply)
        ):
            return
        if call.route == "messages":
            self._maintain()
            run = self.runs.resolve(call.headers, request, scope=self._scope(call))
            p = self.pipeline.prepare(
                CallContext(
                    method=call.method,
                    path=call.path,
                    body=body,
                    api_key=self._upstream_key(call),
                    optimize=self._optimize,
                    request=request,
                ),
                run=run,
            )
            call.prepared = p
            if call.gateway_key is not None and call.key is not None:
                call.max_cost_usd = self.admission.attribute(
                    p, Admitted(call.key, call.gateway_key)
                )
            body = p.body
        hung_up = await until_disconnect(receive, self._relay(call, body, reply))
        if hung_up:
            self.metrics.cancelled.inc()

    def _scope(self, call: _Call) -> str:
        scope = fingerprint(self._upstream_key(call)) or "anonymous"
        if scope not in self._scopes:
            self._scopes[scope] = None
            while len(self._scopes) > 10_000:
                del self._scopes[next(iter(self._scopes))]
        return scope

    def _maintain(self) -> None:
        """Every so often: drop expired entries from the predicted caches (flat memory)."""
        self._requests += 1
        if self._requests % 500:
            return
        now_s = self.pipeline.clock.monotonic_s()
        for scope in list(self._scopes):
            self.pipeline.cache_model(scope).purge(now_s)

    def _upstream_key(self, call: _Call) -> str | None:
        if call.gateway_key is not None:
            return self.config.upstream_api_key
        return call.key.value if call.key is not None else None

    async def _authorize(self, call: _Call, reply: Reply) -> bool:
        verdict = await self.admission.admit(call.headers)
        if isinstance(verdict, Refusal):
            call.key = client_key(call.headers)
            await self._refuse(call, reply, verdict.status, verdict.message)
            return False
        call.key, call.gateway_key = verdict.key, verdict.gateway_key
        return True

    async def _within_budget(self, call: _Call, reply: Reply) -> bool:
        refusal = self.admission.over_budget(call.gateway_key)
        if refusal is None:
            return True
        await self._refuse(call, reply, refusal.status, refusal.message)
        return False

    def _charge(self, call: _Call, record: CallRecord | None) -> None:
        update = self.admission.charge(call.gateway_key, call.max_cost_usd, record)
        call.max_cost_usd = None
        if update is not None:
            self._spawn(update)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("gateway background task failed: %s", task.exception())

    # ------------------------------------------------------------------ relay

    def _outgoing_headers(self, call: _Call) -> dict[str, str]:
        out = {k: v for k, v in call.headers.items() if k not in _DROP_REQUEST}
        if call.route in ("messages", "batch_results"):
            # We read these responses as they pass: ask for them uncompressed.
            out["accept-encoding"] = "identity"
        if call.gateway_key is not None and call.key is not None:
            name, value = self.admission.outgoing_auth(call.key)
            out[name] = value
        return out

    async def _relay(self, call: _Call, body: bytes, reply: Reply) -> None:
        p = call.prepared
        loop = asyncio.get_running_loop()
        started = loop.time()
        facts: ResponseFacts | None = None
        status = 0
        error: str | None = None
        cancelled = True
        tap: StreamTap | None = None
        stream: AsyncIterator[bytes] | None = None
        raw: AsyncIterator[bytes] | None = None
        try:
            try:
                response = await self.upstream.send(
                    UpstreamRequest(
                        method=call.method,
                        path=call.path,
                        headers=self._outgoing_headers(call),
                        body=body,
                        query=call.query,
                    ),
                    stream=True,
                )
            except UpstreamError as exc:
                timeout = exc.timeout
                status = 504 if timeout else 502
                error = str(exc)
                facts = ResponseFacts(
                    error_type="timeout_error" if timeout else "api_error", error_message=error
                )
                cancelled = False
                log.warning("%s %s: %s", call.method, call.path, exc)
                await self._answer_error(
                    call,
                    reply,
                    status,
                    f"the gateway's upstream {'timed out' if timeout else 'is unreachable'}: {exc}",
                )
                return
            status = response.status
            if p is not None:
                self.pipeline.started(p)
            assert response.stream is not None
            raw = response.stream
            # Start the upstream body before answering: from here on, closing `raw` (a
            # started generator) always closes the upstream response.
            stream = primed(await anext(raw, None), raw)
            headers = dict(response.headers)
            is_sse = headers.get("content-type", "").startswith("text/event-stream")
            if p is not None and is_sse:
                tap = StreamTap()
                tap.facts.request_id = headers.get("request-id")
                await reply.start(status, headers.items())
                async for chunk in stream:
                    if tap.feed(chunk):
                        self.pipeline.first_content(p)
                    await reply.chunk(chunk)
                await reply.end()
                facts = tap.close()
            elif p is not None:
                data = b"".join([c async for c in stream])
                facts = read_message(status, data)
                facts.request_id = headers.get("request-id")
                await reply.whole(status, headers, data)
            elif call.route == "batch_results" and status < 400:
                await self._relay_batch_results(call, status, headers, stream, reply)
            elif call.route == "batches" and status < 400:
                data = b"".join([c async for c in stream])
                await reply.whole(status, headers, self._own_results_url(call, data))
            else:
                # Pass-through: forwarded as it arrives (a long list, a results file).
                await reply.start(status, headers.items())
                async for chunk in stream:
                    await reply.chunk(chunk)
                await reply.end()
            cancelled = False
            if status >= 400:
                self._count_upstream_error(facts, status)
        except UpstreamError as exc:
            # The upstream broke mid-response: mirror it (the client sees a cut connection,
            # as it would talking to the API directly) and record what we had.
            error = str(exc)
            cancelled = False
            log.warning("%s %s: %s", call.method, call.path, exc)
            if tap is not None:
                facts = tap.close()
                facts.error_type = facts.error_type or "upstream_connection_error"
                facts.error_message = facts.error_message or error
            if not reply.started:
                status = 502
                await self._answer_error(call, reply, 502, f"the gateway's upstream {exc}")
        finally:
            if raw is not None and not reply.complete:
                aclose = getattr(raw, "aclose", None)
                if aclose is not None:
                    await asyncio.shield(aclose())
            self.metrics.observe_upstream_latency(call.route, loop.time() - started)
            if p is not None:
                if facts is None:
                    facts = tap.close() if tap is not None else ResponseFacts()
                record = self.pipeline.finish(
                    p,
                    status=status,
                    facts=facts,
                    error=error
                    if error is not None
                    else ("client disconnected" if cancelled else None),
                    cancelled=cancelled,
                )
                if record is not None:
                    self.metrics.observe_call(record)
                self._charge(call, record)

    def _count_upstream_error(self, facts: ResponseFacts | None, status: int) -> None:
        kind = facts.error_type if facts is not None and facts.error_type else str(status)
        self.metrics.errors.labels("upstream", kind).inc()

    # ------------------------------------------------------------------ batches

    def _own_results_url(self, call: _Call, body: bytes) -> bytes:
        upstream = getattr(self.upstream, "base_url", None)
        host = call.headers.get("host")
        if not isinstance(upstream, str) or not host:
            return body
        return own_results_url(body, upstream_base=upstream, own_base=f"{call.scheme}://{host}")

    async def _relay_batch_results(
        self,
        call: _Call,
        status: int,
        headers: Mapping[str, str],
        stream: AsyncIterator[bytes],
        reply: Reply,
    ) -> None:
        """Forward the JSONL as it streams; meter each result at batch prices, once a batch."""
        key = call.key if call.gateway_key is not None else None
        await self._batch_results.relay(
            call.path,
            status,
            headers,
            stream,
            reply,
            run_of=lambda batch_id: self.runs.resolve(
                {RUN_HEADER: f"batch {batch_id}"}, None, scope=self._scope(call)
            ),
            api_key=self._upstream_key(call),
            key_fingerprint=fingerprint(key.value) if key is not None else None,
            charge=lambda record: self._charge(call, record),
        )

    # ------------------------------------------------------------------ gateway's own answers

    async def _refuse(
        self,
        call: _Call,
        reply: Reply,
        status: int,
        message: str,
        *,
        error_type: str | None = None,
    ) -> None:
        """Answer with an API error of our own; a Messages call is still recorded with it."""
        if call.route == "messages":
            run = self.runs.resolve(call.headers, None, scope=self._scope(call))
            p = self.pipeline.prepare(
                CallContext(
                    method=call.method,
                    path=call.path,
                    body=b"",
                    api_key=self._upstream_key(call),
                    optimize=False,
                ),
                run=run,
            )
            self.pipeline.finish(
                p,
                status=status,
                facts=ResponseFacts(
                    error_type=error_type or error_body(status, "")["error"]["type"],
                    error_message=message,
                ),
            )
        await self._answer_error(call, reply, status, message, error_type=error_type)

    async def _answer_error(
        self,
        call: _Call,
        reply: Reply,
        status: int,
        message: str,
        *,
        error_type: str | None = None,
    ) -> None:
        envelope = error_body(
            status,
            message,
            request_id=f"req_tokenomy_{secrets.token_hex(8)}",
            error_type=error_type,
        )
        self.metrics.errors.labels("gateway", envelope["error"]["type"]).inc()
        await reply.json(status, envelope, headers=dict([_ORIGIN]))

    def health(self) -> dict[str, Any]:
        sink = self.pipeline.sink
        stats = getattr(sink, "stats", None)
        ledger: dict[str, Any] | None = None
        if callable(stats):
            s = stats()
            ledger = {
                "queued": s.queued,
                "written": s.written,
                "dropped": s.dropped,
                "last_error": s.last_error,
            }
        return {
            "status": "ok",
            "mode": self.config.mode,
            "upstream": self._upstream_label,
            "runs": len(self.runs),
            "active_runs": self.runs.active,
            "in_flight": self._in_flight,
            "ledger": ledger,
        }
