"""``/_emulator/*``: the clock, reset, cache entries, stats, faults and the request log.

No auth, never faulted, not recorded in the request log.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokenomy.emulator.clock import rfc3339
from tokenomy.emulator.faults import parse_fault_plan
from tokenomy.emulator.protocol import (
    Ctx,
    endpoint,
    json_response,
    now_after_batches,
    parse_json,
    read_body,
)
from tokenomy.emulator.server import ApiError
from tokenomy.emulator.state import Emulator

__all__ = ["admin_routes"]


async def _admin_json(request: Request) -> Any:
    raw = await read_body(request, limit=1024 * 1024)
    return parse_json(raw) if raw.strip() else {}


def _clock_state(em: Emulator) -> dict[str, Any]:
    now = em.now_s()
    return {"mode": em.clock.mode, "now_s": now, "now": rfc3339(now)}


@endpoint("admin", api=False)
async def _admin_clock(request: Request, ctx: Ctx) -> Response:
    em = ctx.em
    if request.method == "POST":
        body = await _admin_json(request)
        if not isinstance(body, dict) or set(body) - {"advance_s"}:
            raise ApiError(400, 'expected {"advance_s": <seconds ≥ 0>}')
        em.clock.advance(body.get("advance_s", 0))
        await now_after_batches(em)
    return json_response(_clock_state(em))


@endpoint("admin", api=False)
async def _admin_reset(request: Request, ctx: Ctx) -> Response:
    await anyio.to_thread.run_sync(ctx.em.reset)
    return json_response({"reset": True, **_clock_state(ctx.em)})


@endpoint("admin", api=False)
async def _admin_cache(request: Request, ctx: Ctx) -> Response:
    now = await now_after_batches(ctx.em)
    return json_response({"now_s": now, "entries": ctx.em.server.entries(now_s=now)})


@endpoint("admin", api=False)
async def _admin_stats(request: Request, ctx: Ctx) -> Response:
    em = ctx.em
    now = await now_after_batches(em)
    return json_response(
        {
            "now_s": now,
            "server": em.server.stats(),
            "http": em.counters(),
            "batches": em.batches.stats(now),
            "faults": em.faults.counters(),
        }
    )


@endpoint("admin", api=False)
async def _admin_faults(request: Request, ctx: Ctx) -> Response:
    em = ctx.em
    if request.method == "POST":
        em.faults.replace(
            parse_fault_plan(await _admin_json(request), source="POST /_emulator/faults")
        )
    return json_response(em.faults.plan.to_json())


@endpoint("admin", api=False)
async def _admin_requests(request: Request, ctx: Ctx) -> Response:
    return json_response({"requests": ctx.em.recent()})


def admin_routes() -> list[Route]:
    return [
        Route("/_emulator/clock", _admin_clock, methods=["GET", "POST"]),
        Route("/_emulator/reset", _admin_reset, methods=["POST"]),
        Route("/_emulator/cache", _admin_cache, methods=["GET"]),
        Route("/_emulator/stats", _admin_stats, methods=["GET"]),
        Route("/_emulator/faults", _admin_faults, methods=["GET", "POST"]),
        Route("/_emulator/requests", _admin_requests, methods=["GET"]),
    ]
