"""The protocol every emulator route shares: auth, versions, bodies, envelopes, request ids.

:func:`endpoint` wraps a handler: it hands out the request id (``request-id`` on every
response), checks auth and ``anthropic-version`` on API routes, turns every error into the
API's envelope, and records API requests in the emulator's log. The API key itself is never
kept: :func:`key_fingerprint` names its scope.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import anyio.to_thread
import orjson
from starlette.requests import Request
from starlette.responses import Response

from tokenomy.emulator.brains import BRAIN_HEADER, Brain
from tokenomy.emulator.faults import HTTP_KINDS, FaultRule, http_error_headers
from tokenomy.emulator.latency import Timing
from tokenomy.emulator.server import ApiError
from tokenomy.emulator.state import Emulator
from tokenomy.errors import TokenomyError
from tokenomy.wire.errors import error_body

__all__ = [
    "API_VERSIONS",
    "Ctx",
    "Handler",
    "endpoint",
    "error_response",
    "fault_error",
    "json_response",
    "key_fingerprint",
    "latency_headers",
    "now_after_batches",
    "parse_json",
    "pick_brain",
    "read_body",
    "too_large",
]

log = logging.getLogger("tokenomy.emulator")

API_VERSIONS: Final = frozenset({"2023-06-01", "2026-10-21"})


def key_fingerprint(key: str) -> str:
    """A short, stable, non-reversible name for an API key: the cache and batch scope."""
    return "key_" + hashlib.blake2b(key.encode(), digest_size=8, person=b"tokenomy-key").hexdigest()


@dataclass(slots=True)
class Ctx:
    em: Emulator
    request_id: str
    scope: str = ""
    log: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[Request, Ctx], Awaitable[Response]]


def json_response(
    payload: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(payload),
        status_code=status,
        media_type="application/json",
        headers=dict(headers or {}),
    )


def error_response(exc: ApiError, request_id: str) -> Response:
    body = error_body(exc.status, exc.message, request_id=request_id, error_type=exc.error_type)
    return json_response(body, status=exc.status, headers=exc.headers)


def endpoint(route: str, *, api: bool = True) -> Callable[[Handler], Callable[..., Any]]:
    """Wrap a handler: request id, auth and version (API routes), errors as envelopes, log."""

    def wrap(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            em: Emulator = request.app.state.emulator
            ctx = Ctx(em=em, request_id=em.ids.next("req_"))
            try:
                if api:
                    ctx.scope = _authenticate(request)
                    ctx.log["auth"] = "x-api-key" if "x-api-key" in request.headers else "bearer"
                    ctx.log["anthropic_version"] = _check_version(request)
                response = await fn(request, ctx)
            except ApiError as exc:
                response = error_response(exc, ctx.request_id)
            except TokenomyError as exc:  # bad admin input, an unknown brain name …
                response = error_response(ApiError(400, str(exc)), ctx.request_id)
            except Exception:
                log.exception("emulator: unexpected error on %s %s", request.method, route)
                response = error_response(ApiError(500, "Internal server error"), ctx.request_id)
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


def too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        f"Request exceeds the maximum allowed number of bytes ({limit:,}).",
        error_type="request_too_large",
    )


async def read_body(request: Request, *, limit: int) -> bytes:
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
        raise too_large(limit)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"There was an error parsing the body as JSON: {exc}") from None


def fault_error(rule: FaultRule) -> ApiError:
    status, error_type, message = HTTP_KINDS[rule.kind]
    return ApiError(
        status, rule.message or message, error_type=error_type, headers=http_error_headers(rule)
    )


async def now_after_batches(em: Emulator) -> float:
    """The clock's time, after running every batch request due by then (time order)."""
    now = em.now_s()
    if em.batches.pending(now):
        await anyio.to_thread.run_sync(em.batches.progress, now)
    return now


def pick_brain(em: Emulator, request: Request) -> Brain:
    return em.brain(request.headers.get(BRAIN_HEADER))


def latency_headers(em: Emulator, timing: Timing) -> dict[str, str]:
    if not em.latency.enabled:
        return {}
    return {
        "x-emulator-ttft-ms": f"{timing.ttft_ms:.1f}",
        "x-emulator-duration-ms": f"{timing.duration_ms:.1f}",
    }
