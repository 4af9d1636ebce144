"""The emulator's HTTP surface: a Starlette app that speaks the Anthropic API.

Handlers are thin: check the protocol (:mod:`.protocol`: auth, version, body size, JSON), ask
the server model, the brains and the batch store, write the reply. Every response carries a
``request-id`` header; every error is the API's envelope. Routes match on the path only (Claude
Code adds ``?beta=true``); anything unknown — ``HEAD /`` included — is a 404
``not_found_error``. The admin routes live in :mod:`.admin`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, date, datetime
from functools import partial
from typing import Any, Final, cast

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tokenomy.data.table import ModelInfo
from tokenomy.emulator.admin import admin_routes
from tokenomy.emulator.batches import paginate
from tokenomy.emulator.messages import EventStreamResponse, build_message, stream_chunks
from tokenomy.emulator.protocol import (
    API_VERSIONS,
    Ctx,
    endpoint,
    error_response,
    fault_error,
    json_response,
    key_fingerprint,
    latency_headers,
    now_after_batches,
    parse_json,
    pick_brain,
    read_body,
    too_large,
)
from tokenomy.emulator.server import ApiError, ServerModel
from tokenomy.emulator.state import Emulator, EmulatorConfig

__all__ = ["API_VERSIONS", "create_app", "key_fingerprint", "serve"]

_EPOCH: Final = "1970-01-01T00:00:00Z"


# -- Messages ---------------------------------------------------------------------------------


@endpoint("messages")
async def _messages(request: Request, ctx: Ctx) -> Response:
    em = ctx.em
    body = parse_json(await read_body(request, limit=em.config.max_body_bytes))
    fields = body if isinstance(body, dict) else {}
    stream = fields.get("stream") is True
    model = fields.get("model") if isinstance(fields.get("model"), str) else None
    brain = pick_brain(em, request)
    ctx.log.update(model=model, stream=stream, brain=brain.name)
    decision = em.faults.decide(route="messages", model=model, stream=stream)
    if decision.fired:
        ctx.log["faults"] = list(decision.fired)
    if decision.http_error is not None:
        raise fault_error(decision.http_error)
    now = await now_after_batches(em)
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
    headers = latency_headers(em, timing)
    ctx.log["usage"] = built.message["usage"]
    if not stream:
        if em.latency.mode == "real":
            await anyio.sleep(timing.duration_ms / 1000 * em.latency.scale)
        elif real_wait_ms:
            await anyio.sleep(real_wait_ms / 1000)
        admission.commit()
        return json_response(built.message, headers=headers)
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


@endpoint("count_tokens")
async def _count_tokens(request: Request, ctx: Ctx) -> Response:
    em = ctx.em
    body = parse_json(await read_body(request, limit=em.config.max_body_bytes))
    model = body.get("model") if isinstance(body, dict) else None
    decision = em.faults.decide(
        route="count_tokens", model=model if isinstance(model, str) else None, stream=False
    )
    if decision.http_error is not None:
        raise fault_error(decision.http_error)
    n = em.server.count_tokens(cast(Mapping[str, Any], body))
    return json_response({"input_tokens": n})


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


@endpoint("models")
async def _models(request: Request, ctx: Ctx) -> Response:
    decision = ctx.em.faults.decide(route="models", model=None, stream=False)
    if decision.http_error is not None:
        raise fault_error(decision.http_error)
    # In the table's order (curated, newest first within each family); retired models are gone.
    wire = [_model_wire(m) for m in ctx.em.table if m.status != "retired"]
    start, end, more = paginate(
        [w["id"] for w in wire],
        limit=_limit(request),
        after_id=request.query_params.get("after_id"),
        before_id=request.query_params.get("before_id"),
    )
    return json_response(_page(wire[start:end], more))


@endpoint("models")
async def _model(request: Request, ctx: Ctx) -> Response:
    name = str(request.path_params["model_id"])
    m = ctx.em.table.find(name)
    if m is None:
        raise ApiError(404, f"model: {name}", error_type="not_found_error")
    return json_response(_model_wire(m))


# -- Batches ----------------------------------------------------------------------------------


def _batch_fault(em: Emulator) -> None:
    decision = em.faults.decide(route="batches", model=None, stream=False)
    if decision.http_error is not None:
        raise fault_error(decision.http_error)


@endpoint("batches")
async def _batch_create(request: Request, ctx: Ctx) -> Response:
    em = ctx.em
    _batch_fault(em)
    brain = pick_brain(em, request)
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
        raise too_large(limit)
    now = await now_after_batches(em)
    create = partial(em.batches.create, path, scope=ctx.scope, now_s=now, tag=brain.name)
    batch = await anyio.to_thread.run_sync(create)
    ctx.log["batch_id"] = batch.id
    return json_response(batch.to_wire(now, base_url=str(request.base_url)))


@endpoint("batches")
async def _batch_retrieve(request: Request, ctx: Ctx) -> Response:
    em = ctx.em
    _batch_fault(em)
    batch_id = str(request.path_params["batch_id"])
    now = await now_after_batches(em)
    batch = em.batches.get(batch_id, scope=ctx.scope)
    step = em.batches.timing.poll_advance_s
    if step and batch.status(now) != "ended":
        em.clock.advance(step)  # opt-in: a poll moves a virtual clock so batches make progress
        now = await now_after_batches(em)
    return json_response(batch.to_wire(now, base_url=str(request.base_url)))


@endpoint("batches")
async def _batch_list(request: Request, ctx: Ctx) -> Response:
    em = ctx.em
    _batch_fault(em)
    now = await now_after_batches(em)
    page, more = em.batches.list_page(
        scope=ctx.scope,
        limit=_limit(request),
        after_id=request.query_params.get("after_id"),
        before_id=request.query_params.get("before_id"),
    )
    base = str(request.base_url)
    return json_response(_page([b.to_wire(now, base_url=base) for b in page], more))


@endpoint("batches")
async def _batch_cancel(request: Request, ctx: Ctx) -> Response:
    em = ctx.em
    _batch_fault(em)
    now = await now_after_batches(em)
    cancel = partial(
        em.batches.cancel, str(request.path_params["batch_id"]), scope=ctx.scope, now_s=now
    )
    batch = await anyio.to_thread.run_sync(cancel)
    return json_response(batch.to_wire(now, base_url=str(request.base_url)))


@endpoint("batches")
async def _batch_delete(request: Request, ctx: Ctx) -> Response:
    em = ctx.em
    _batch_fault(em)
    batch_id = str(request.path_params["batch_id"])
    now = await now_after_batches(em)
    await anyio.to_thread.run_sync(partial(em.batches.delete, batch_id, scope=ctx.scope, now_s=now))
    return json_response({"id": batch_id, "type": "message_batch_deleted"})


@endpoint("batches")
async def _batch_results(request: Request, ctx: Ctx) -> Response:
    em = ctx.em
    _batch_fault(em)
    batch_id = str(request.path_params["batch_id"])
    now = await now_after_batches(em)
    chunks = await anyio.to_thread.run_sync(
        partial(em.batches.results, batch_id, scope=ctx.scope, now_s=now)
    )
    return StreamingResponse(chunks, media_type="application/binary")


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
    response = error_response(ApiError(404, message, error_type="not_found_error"), request_id)
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
        *admin_routes(),
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
