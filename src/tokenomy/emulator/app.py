"""The emulator's HTTP surface: a Starlette app that speaks the Anthropic API.

Handlers are thin: check the protocol (auth, version, body size, JSON), ask the server model,
the brains and the batch store, write the reply. Every response carries a ``request-id``
header; every error is the API's envelope. Routes match on the path only (Claude Code adds
``?beta=true``); anything unknown — ``HEAD /`` included — is a 404 ``not_found_error``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from typing import Any, Final, cast

import anyio
import anyio.to_thread
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tokenomy.data.table import ModelInfo
from tokenomy.emulator.batches import paginate
from tokenomy.emulator.brains import BRAIN_HEADER, Brain
from tokenomy.emulator.clock import rfc3339
from tokenomy.emulator.faults import HTTP_KINDS, FaultRule, http_error_headers, parse_fault_plan
from tokenomy.emulator.latency import Timing
from tokenomy.emulator.messages import EventStreamResponse, build_message, stream_chunks
from tokenomy.emulator.server import ApiError, ServerModel
from tokenomy.emulator.state import Emulator, EmulatorConfig
from tokenomy.errors import TokenomyError
from tokenomy.wire.errors import error_body

__all__ = ["API_VERSIONS", "create_app", "key_fingerprint", "serve"]

log = logging.getLogger("tokenomy.emulator")

API_VERSIONS: Final = frozenset({"2023-06-01", "2026-10-21"})
_EPOCH: Final = "1970-01-01T00:00:00Z"


def key_fingerprint(key: str) -> str:
    """A short, stable, non-reversible name for an API key: the cache and batch scope."""
    return "key_" + hashlib.blake2b(key.encode(), digest_size=8, person=b"tokenomy-key").hexdigest()


@dataclass(slots=True)
class _Ctx:
    em: Emulator
    request_id: str
    scope: str = ""
    log: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[Request, _Ctx], Awaitable[Response]]


def _json_response(
    payload: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(payload),
        status_code=status,
        media_type="application/json",
        headers=dict(headers or {}),
    )


def _error_response(exc: ApiError, request_id: str) -> Response:
    body = error_body(exc.status, exc.message, request_id=request_id, error_type=exc.error_type)
    return _json_response(body, status=exc.status, headers=exc.headers)


def _endpoint(route: str, *, api: bool = True) -> Callable[[Handler], Callable[..., Any]]:
    """Wrap a handler: request id, auth and version (API routes), errors as envelopes, log."""

    def wrap(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            em: Emulator = request.app.state.emulator
            ctx = _Ctx(em=em, request_id=em.ids.next("req_"))
            try:
                if api:
                    ctx.scope = _authenticate(request)
                    ctx.log["auth"] = "x-api-key" if "x-api-key" in request.headers else "bearer"
                    ctx.log["anthropic_version"] = _check_version(request)
                response = await fn(request, ctx)
            except ApiError as exc:
                response = _error_response(exc, ctx.request_id)
            except TokenomyError as exc:  # bad admin input, an unknown brain name …
                response = _error_response(ApiError(400, str(exc)), ctx.request_id)
            except Exception:
                log.exception("emulator: unexpected error on %s %s", request.method, route)
                response = _error_response(ApiError(500, "Internal server error"), ctx.request_id)
            response.headers["request-id"] = ctx.request_id
            if api:
                em.record(
                    {
                        "request_id": ctx.request_id,
                        "at_s": em.now_s(),
                        "route": route,
                        "status": response.status_code,
                        "scope": ctx.scope,
                        **ctx.log,
                    }
                )
            return response

        return endpoint

    return wrap


def _authenticate(request: Request) -> str:
    key = request.headers.get("x-api-key", "").strip()
    if not key:
        auth = request.headers.get("authorization", "").strip()
        scheme, _, value = auth.partition(" ")
        if auth and (scheme.lower() != "bearer" or not value.strip()):
            raise ApiError(401, "invalid x-api-key", error_type="authentication_error")
        key = value.strip()
    if not key:
        raise ApiError(401, "x-api-key header is required", error_type="authentication_error")
    return key_fingerprint(key)


def _check_version(request: Request) -> str:
    version = request.headers.get("anthropic-version", "").strip()
    if not version:
        raise ApiError(400, "anthropic-version: header is required")
    if version not in API_VERSIONS:
        raise ApiError(
            400,
            f"anthropic-version: {version!r} is not a valid version; "
            f"use one of {', '.join(sorted(API_VERSIONS))}",
        )
    return version


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        f"Request exceeds the maximum allowed number of bytes ({limit:,}).",
        error_type="request_too_large",
    )


async def _read_body(request: Request, *, limit: int) -> bytes:
    """The body, or 413 once it passes ``limit`` (read to the end, so the client sees the 413)."""
    declared = request.headers.get("content-length", "")
    over = declared.isdigit() and int(declared) > limit
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            over = True
        if not over:
            chunks.append(chunk)
    if over:
        raise _too_large(limit)
    return b"".join(chunks)


def _parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"There was an error parsing the body as JSON: {exc}") from None


def _fault_error(rule: FaultRule) -> ApiError:
    status, error_type, message = HTTP_KINDS[rule.kind]
    return ApiError(
        status, rule.message or message, error_type=error_type, headers=http_error_headers(rule)
    )


async def _now(em: Emulator) -> float:
    """The clock's time, after running every batch request due by then (time order)."""
    now = em.now_s()
    if em.batches.pending(now):
        await anyio.to_thread.run_sync(em.batches.progress, now)
    return now


def _pick_brain(em: Emulator, request: Request) -> Brain:
    return em.brain(request.headers.get(BRAIN_HEADER))


def _latency_headers(em: Emulator, timing: Timing) -> dict[str, str]:
    if not em.latency.enabled:
        return {}
    return {
        "x-emulator-ttft-ms": f"{timing.ttft_ms:.1f}",
        "x-emulator-duration-ms": f"{timing.duration_ms:.1f}",
    }


# -- Messages ---------------------------------------------------------------------------------


@_endpoint("messages")
async def _messages(request: Request, ctx: _Ctx) -> Response:
    em = ctx.em
    body = _parse_json(await _read_body(request, limit=em.config.max_body_bytes))
    fields = body if isinstance(body, dict) else {}
    stream = fields.get("stream") is True
    model = fields.get("model") if isinstance(fields.get("model"), str) else None
    brain = _pick_brain(em, request)
    ctx.log.update(model=model, stream=stream, brain=brain.name)
    decision = em.faults.decide(route="messages", model=model, stream=stream)
    if decision.fired:
        ctx.log["faults"] = list(decision.fired)
    if decision.http_error is not None:
        raise _fault_error(decision.http_error)
    now = await _now(em)
    admission = em.server.admit(cast(Mapping[str, Any], body), scope=ctx.scope, now_s=now)
    try:
        built = build_message(
            em, fields, admission=admission, brain=brain, headers=dict(request.headers)
        )
    except BaseException:
        admission.abort()
        raise
    timing = em.latency.timing(
        uncached_input_tokens=admission.uncached_input_tokens,
        cache_read_tokens=admission.cache_read_tokens,
        output_tokens=built.output_tokens,
        extra_ttft_ms=decision.extra_ttft_ms,
    )
    if em.latency.mode == "virtual":
        em.clock.advance(timing.duration_ms / 1000)
    # A slow-first-token fault waits for real when latency is off (a client timeout test).
    real_wait_ms = decision.extra_ttft_ms if em.latency.mode == "off" else 0.0
    headers = _latency_headers(em, timing)
    ctx.log["usage"] = built.message["usage"]
    if not stream:
        if em.latency.mode == "real":
            await anyio.sleep(timing.duration_ms / 1000 * em.latency.scale)
        elif real_wait_ms:
            await anyio.sleep(real_wait_ms / 1000)
        admission.commit()
        return _json_response(built.message, headers=headers)
    chunks = stream_chunks(
        built.message,
        admission=admission,
        latency=em.latency,
        timing=timing,
        stream_fault=decision.stream_fault,
        extra_real_wait_ms=real_wait_ms,
    )
    return EventStreamResponse(_abort_unless_started(chunks, admission.abort), headers=headers)


async def _abort_unless_started(
    chunks: AsyncIterator[Any], abort: Callable[[], None]
) -> AsyncIterator[Any]:
    # If the stream never reaches message_start (a client gone early), nothing is written;
    # after a commit, abort is a no-op.
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        abort()


@_endpoint("count_tokens")
async def _count_tokens(request: Request, ctx: _Ctx) -> Response:
    em = ctx.em
    body = _parse_json(await _read_body(request, limit=em.config.max_body_bytes))
    model = body.get("model") if isinstance(body, dict) else None
    decision = em.faults.decide(
        route="count_tokens", model=model if isinstance(model, str) else None, stream=False
    )
    if decision.http_error is not None:
        raise _fault_error(decision.http_error)
    n = em.server.count_tokens(cast(Mapping[str, Any], body))
    return _json_response({"input_tokens": n})


# -- Models -----------------------------------------------------------------------------------


def _created_at(m: ModelInfo) -> str:
    # The table has no release dates; a dated snapshot id carries one, else the epoch (as the
    # SDK documents for an unknown date).
    tail = m.id.rsplit("-", 1)[-1]
    if len(tail) == 8 and tail.isdigit():
        with contextlib.suppress(ValueError):
            d = date(int(tail[:4]), int(tail[4:6]), int(tail[6:]))
            return datetime(d.year, d.month, d.day, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return _EPOCH


def _day(d: date | None) -> str | None:
    return None if d is None else f"{d.isoformat()}T00:00:00Z"


def _model_wire(m: ModelInfo) -> dict[str, Any]:
    return {
        "type": "model",
        "id": m.id,
        "display_name": m.display_name,
        "created_at": _created_at(m),
        "lifecycle": m.status,
        "deprecated_at": _day(m.deprecated_on),
        "retires_at": _day(m.retired_on or m.retires_not_before),
        "max_input_tokens": m.context_window_tokens,
        "max_tokens": m.max_output_tokens,
    }


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return 20
    if not raw.strip().isdigit() or not 1 <= int(raw) <= 1000:
        raise ApiError(400, f"limit: Input should be an integer from 1 to 1000, got {raw!r}")
    return int(raw)


def _page(items: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "data": items,
        "has_more": has_more,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
    }


@_endpoint("models")
async def _models(request: Request, ctx: _Ctx) -> Response:
    decision = ctx.em.faults.decide(route="models", model=None, stream=False)
    if decision.http_error is not None:
        raise _fault_error(decision.http_error)
    # In the table's order (curated, newest first within each family); retired models are gone.
    wire = [_model_wire(m) for m in ctx.em.table if m.status != "retired"]
    start, end, more = paginate(
        [w["id"] for w in wire],
        limit=_limit(request),
        after_id=request.query_params.get("after_id"),
        before_id=request.query_params.get("before_id"),
    )
    return _json_response(_page(wire[start:end], more))


@_endpoint("models")
async def _model(request: Request, ctx: _Ctx) -> Response:
    name = str(request.path_params["model_id"])
    m = ctx.em.table.find(name)
    if m is None:
        raise ApiError(404, f"model: {name}", error_type="not_found_error")
    return _json_response(_model_wire(m))


# -- Batches ----------------------------------------------------------------------------------


def _batch_fault(em: Emulator) -> None:
    decision = em.faults.decide(route="batches", model=None, stream=False)
    if decision.http_error is not None:
        raise _fault_error(decision.http_error)


@_endpoint("batches")
async def _batch_create(request: Request, ctx: _Ctx) -> Response:
    em = ctx.em
    _batch_fault(em)
    brain = _pick_brain(em, request)
    limit = em.batches.limits.max_body_bytes
    declared = request.headers.get("content-length", "")
    over = declared.isdigit() and int(declared) > limit
    path = em.batches.new_spool_path()
    size = 0
    try:
        with path.open("wb") as fh:
            async for chunk in request.stream():
                size += len(chunk)
                over = over or size > limit
                if not over:
                    fh.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if over:
        path.unlink(missing_ok=True)
        raise _too_large(limit)
    now = await _now(em)
    create = partial(em.batches.create, path, scope=ctx.scope, now_s=now, tag=brain.name)
    batch = await anyio.to_thread.run_sync(create)
    ctx.log["batch_id"] = batch.id
    return _json_response(batch.to_wire(now, base_url=str(request.base_url)))


@_endpoint("batches")
async def _batch_retrieve(request: Request, ctx: _Ctx) -> Response:
    em = ctx.em
    _batch_fault(em)
    batch_id = str(request.path_params["batch_id"])
    now = await _now(em)
    batch = em.batches.get(batch_id, scope=ctx.scope)
    step = em.batches.timing.poll_advance_s
    if step and batch.status(now) != "ended":
        em.clock.advance(step)  # opt-in: a poll moves a virtual clock so batches make progress
        now = await _now(em)
    return _json_response(batch.to_wire(now, base_url=str(request.base_url)))


@_endpoint("batches")
async def _batch_list(request: Request, ctx: _Ctx) -> Response:
    em = ctx.em
    _batch_fault(em)
    now = await _now(em)
    page, more = em.batches.list_page(
        scope=ctx.scope,
        limit=_limit(request),
        after_id=request.query_params.get("after_id"),
        before_id=request.query_params.get("before_id"),
    )
    base = str(request.base_url)
    return _json_response(_page([b.to_wire(now, base_url=base) for b in page], more))


@_endpoint("batches")
async def _batch_cancel(request: Request, ctx: _Ctx) -> Response:
    em = ctx.em
    _batch_fault(em)
    now = await _now(em)
    cancel = partial(
        em.batches.cancel, str(request.path_params["batch_id"]), scope=ctx.scope, now_s=now
    )
    batch = await anyio.to_thread.run_sync(cancel)
    return _json_response(batch.to_wire(now, base_url=str(request.base_url)))


@_endpoint("batches")
async def _batch_delete(request: Request, ctx: _Ctx) -> Response:
    em = ctx.em
    _batch_fault(em)
    batch_id = str(request.path_params["batch_id"])
    now = await _now(em)
    await anyio.to_thread.run_sync(partial(em.batches.delete, batch_id, scope=ctx.scope, now_s=now))
    return _json_response({"id": batch_id, "type": "message_batch_deleted"})


@_endpoint("batches")
async def _batch_results(request: Request, ctx: _Ctx) -> Response:
    em = ctx.em
    _batch_fault(em)
    batch_id = str(request.path_params["batch_id"])
    now = await _now(em)
    chunks = await anyio.to_thread.run_sync(
        partial(em.batches.results, batch_id, scope=ctx.scope, now_s=now)
    )
    return StreamingResponse(chunks, media_type="application/binary")


# -- Admin ------------------------------------------------------------------------------------


async def _admin_json(request: Request) -> Any:
    raw = await _read_body(request, limit=1024 * 1024)
    return _parse_json(raw) if raw.strip() else {}


def _clock_state(em: Emulator) -> dict[str, Any]:
    now = em.now_s()
    return {"mode": em.clock.mode, "now_s": now, "now": rfc3339(now)}


@_endpoint("admin", api=False)
async def _admin_clock(request: Request, ctx: _Ctx) -> Response:
    em = ctx.em
    if request.method == "POST":
        body = await _admin_json(request)
        if not isinstance(body, dict) or set(body) - {"advance_s"}:
            raise ApiError(400, 'expected {"advance_s": <seconds ≥ 0>}')
        em.clock.advance(body.get("advance_s", 0))
        await _now(em)
    return _json_response(_clock_state(em))


@_endpoint("admin", api=False)
async def _admin_reset(request: Request, ctx: _Ctx) -> Response:
    await anyio.to_thread.run_sync(ctx.em.reset)
    return _json_response({"reset": True, **_clock_state(ctx.em)})


@_endpoint("admin", api=False)
async def _admin_cache(request: Request, ctx: _Ctx) -> Response:
    now = await _now(ctx.em)
    return _json_response({"now_s": now, "entries": ctx.em.server.entries(now_s=now)})


@_endpoint("admin", api=False)
async def _admin_stats(request: Request, ctx: _Ctx) -> Response:
    em = ctx.em
    now = await _now(em)
    return _json_response(
        {
            "now_s": now,
            "server": em.server.stats(),
            "http": em.counters(),
            "batches": em.batches.stats(now),
            "faults": em.faults.counters(),
        }
    )


@_endpoint("admin", api=False)
async def _admin_faults(request: Request, ctx: _Ctx) -> Response:
    em = ctx.em
    if request.method == "POST":
        em.faults.replace(
            parse_fault_plan(await _admin_json(request), source="POST /_emulator/faults")
        )
    return _json_response(em.faults.plan.to_json())


@_endpoint("admin", api=False)
async def _admin_requests(request: Request, ctx: _Ctx) -> Response:
    return _json_response({"requests": ctx.em.recent()})


async def _not_found(request: Request, exc: Exception) -> Response:
    em: Emulator = request.app.state.emulator
    request_id = em.ids.next("req_")
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    method = request.method
    message = (
        f"{method} {request.url.path} is not a supported route"
        if status in (404, 405)
        else "Not Found"
    )
    response = _error_response(ApiError(404, message, error_type="not_found_error"), request_id)
    response.headers["request-id"] = request_id
    return response


def create_app(
    config: EmulatorConfig | None = None, *, server: ServerModel | None = None
) -> Starlette:
    """The emulator as an ASGI app; its state is ``app.state.emulator`` (an :class:`Emulator`)."""
    config = config or EmulatorConfig()
    emulator = Emulator(config, server=server or ServerModel(table=config.table))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            emulator.close()

    routes = [
        Route("/v1/messages", _messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", _count_tokens, methods=["POST"]),
        Route("/v1/messages/batches", _batch_create, methods=["POST"]),
        Route("/v1/messages/batches", _batch_list, methods=["GET"]),
        Route("/v1/messages/batches/{batch_id}", _batch_retrieve, methods=["GET"]),
        Route("/v1/messages/batches/{batch_id}", _batch_delete, methods=["DELETE"]),
        Route("/v1/messages/batches/{batch_id}/cancel", _batch_cancel, methods=["POST"]),
        Route("/v1/messages/batches/{batch_id}/results", _batch_results, methods=["GET"]),
        Route("/v1/models", _models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", _model, methods=["GET"]),
        Route("/_emulator/clock", _admin_clock, methods=["GET", "POST"]),
        Route("/_emulator/reset", _admin_reset, methods=["POST"]),
        Route("/_emulator/cache", _admin_cache, methods=["GET"]),
        Route("/_emulator/stats", _admin_stats, methods=["GET"]),
        Route("/_emulator/faults", _admin_faults, methods=["GET", "POST"]),
        Route("/_emulator/requests", _admin_requests, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={404: _not_found, 405: _not_found},
        lifespan=lifespan,
    )
    app.state.emulator = emulator
    return app


def serve(config: EmulatorConfig, *, host: str = "127.0.0.1", port: int = 8788) -> None:
    """Serve an emulator with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(config), host=host, port=port, log_level="warning", lifespan="on")
