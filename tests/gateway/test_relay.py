"""The relay over real HTTP: byte-identical observe mode, frames as they come, hang-ups, errors."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import orjson
import pytest

from tests.emulator.harness import TEST_KEY, EmulatorServer
from tests.gateway.conftest import GatewayHarness, Served, build_harness
from tokenomy.core.records import CallRecord
from tokenomy.emulator import EmulatorConfig, create_app
from tokenomy.wire.sse import encode_event

MODEL = "claude-sonnet-4-6"
HEADERS = {"x-api-key": TEST_KEY, "anthropic-version": "2023-06-01"}
REQUEST = {
    "model": MODEL,
    "max_tokens": 64,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": "hello there"}],
}


def wait_for(predicate: Callable[[], bool], *, what: str, timeout_s: float = 10.0) -> None:
    """Wait for something another thread does (not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


class Capture:
    """ASGI middleware keeping the bodies an upstream received."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = app.state
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def recv() -> Any:
            m = await receive()
            if m["type"] == "http.request":
                chunks.append(m.get("body", b""))
                if not m.get("more_body"):
                    self.bodies.append(b"".join(chunks))
            return m

        await self.app(scope, recv, send)


def _post(url: str, payload: bytes, *, stream: bool) -> tuple[int, dict[str, str], bytes]:
    with httpx2.Client(base_url=url) as http:
        r = http.post("/v1/messages?beta=true", content=payload, headers=HEADERS)
        return r.status_code, dict(r.headers), r.content


@pytest.mark.parametrize("stream", [False, True])
def test_observe_round_trip_is_byte_identical_to_going_direct(
    serve_gateway: Callable[..., Served], stream: bool
) -> None:
    # Two identical emulators (same seed): one called directly, one through the gateway.
    direct_app = Capture(create_app(EmulatorConfig()))
    direct = EmulatorServer(direct_app).start()  # type: ignore[arg-type]
    try:
        payload = orjson.dumps({**REQUEST, "stream": stream})
        want = _post(direct.base_url, payload, stream=stream)
    finally:
        direct.stop()
        direct_app.state.emulator.close()
    spies: list[Capture] = []

    def spy(app: Any) -> Capture:
        spies.append(Capture(app))
        return spies[-1]

    s = serve_gateway(mode="observe", wrap=spy)
    got = _post(s.url, payload, stream=stream)
    assert got[0] == want[0] == 200
    assert got[2] == want[2]  # the response body, byte for byte
    for h in ("request-id", "content-type"):
        assert got[1][h] == want[1][h]
    assert spies[0].bodies == [payload]  # the request reached upstream unchanged
    wait_for(lambda: len(s.sink.calls) == 1, what="the call to be metered")
    [call] = s.sink.calls
    assert call.status == "ok" and call.stream is stream


class Staged:
    """An upstream that sends ``message_start``, then waits to be told to go on."""

    def __init__(self, *, hang: bool = False) -> None:
        self.go = threading.Event()
        self.disconnected = threading.Event()
        self.hang = hang
        self.state = type("S", (), {})()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                m = await receive()
                await send({"type": m["type"] + ".complete"})
                if m["type"] == "lifespan.shutdown":
                    return
        while (await receive()).get("more_body"):
            pass
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"request-id", b"req_1")],
            }
        )
        start = {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": MODEL,
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 10, "output_tokens": 1},
            },
        }
        await send({"type": "http.response.body", "body": encode_event(start), "more_body": True})
        if self.hang:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.disconnected.set()
            return
        await asyncio.to_thread(self.go.wait, 10)
        rest = b"".join(
            encode_event(e)
            for e in (
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": "hi"},
                },
                {"type": "content_block_stop", "index": 0},
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": 2},
                },
                {"type": "message_stop"},
            )
        )
        await send({"type": "http.response.body", "body": rest, "more_body": False})


def _gateway_over(
    upstream: Any, **kwargs: Any
) -> tuple[EmulatorServer, EmulatorServer, GatewayHarness]:
    up = EmulatorServer(upstream).start()
    h = build_harness(upstream_url=up.base_url, **kwargs)
    gws = EmulatorServer(h.gateway).start()  # type: ignore[arg-type]
    return up, gws, h


def test_each_frame_is_forwarded_the_moment_it_arrives() -> None:
    staged = Staged()
    up, gws, h = _gateway_over(staged)
    try:
        with (
            httpx2.Client(base_url=gws.base_url, timeout=10) as http,
            http.stream(
                "POST", "/v1/messages", json={**REQUEST, "stream": True}, headers=HEADERS
            ) as r,
        ):
            chunks = r.iter_raw()
            first = next(chunks)
            # message_start reached us while the upstream is still holding the rest back
            assert b"message_start" in first and not staged.go.is_set()
            staged.go.set()
            rest = b"".join(chunks)
        assert b"message_stop" in rest
        wait_for(lambda: len(h.sink.calls) == 1, what="the call to be metered")
        [call] = h.sink.calls
        assert call.status == "ok" and call.usage is not None and call.usage.output_tokens == 2
        assert call.request_id == "req_1" and call.ttft_ms is not None
    finally:
        staged.go.set()
        gws.stop()
        up.stop()


def test_a_client_hanging_up_mid_stream_cancels_the_upstream_request() -> None:
    staged = Staged(hang=True)
    up, gws, h = _gateway_over(staged)
    try:
        with (
            httpx2.Client(base_url=gws.base_url, timeout=10) as http,
            http.stream(
                "POST", "/v1/messages", json={**REQUEST, "stream": True}, headers=HEADERS
            ) as r,
        ):
            assert b"message_start" in next(r.iter_raw())
        # the client closed the connection: the gateway must close its upstream request
        assert staged.disconnected.wait(10), "the upstream request was not cancelled"
        wait_for(lambda: len(h.sink.calls) == 1, what="the cancelled call to be recorded")
        [call] = h.sink.calls
        assert call.status == "cancelled" and call.usage is not None
        assert call.usage.input_tokens == 10  # what message_start said
        # still serving
        with httpx2.Client(base_url=gws.base_url) as http:
            assert http.get("/healthz").json()["status"] == "ok"
    finally:
        gws.stop()
        up.stop()


class Slow:
    """An upstream that never answers in time."""

    state = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                m = await receive()
                await send({"type": m["type"] + ".complete"})
                if m["type"] == "lifespan.shutdown":
                    return
        while (await receive())["type"] != "http.disconnect":  # until the gateway gives up
            pass


def _api_error(r: Any) -> dict[str, Any]:
    data: dict[str, Any] = r.json()
    assert data["type"] == "error" and data["request_id"].startswith("req_")
    return data["error"]  # type: ignore[no-any-return]


def test_a_slow_upstream_is_a_504_timeout_error_and_recorded() -> None:
    up, gws, h = _gateway_over(Slow(), upstream_timeout_s=0.3)
    try:
        with httpx2.Client(base_url=gws.base_url, timeout=10) as http:
            r = http.post("/v1/messages", json=REQUEST, headers=HEADERS)
        assert r.status_code == 504
        assert _api_error(r)["type"] == "timeout_error"
        assert r.headers["x-tokenomy-origin"] == "gateway"
        wait_for(lambda: len(h.sink.calls) == 1, what="the call to be recorded")
        [call] = h.sink.calls
        assert call.status == "error" and call.http_status == 504
        assert call.error_type == "timeout_error"
    finally:
        gws.stop()
        up.stop()


def test_an_unreachable_upstream_is_a_502_api_error_and_recorded() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    h = build_harness(upstream_url=f"http://127.0.0.1:{port}")
    gws = EmulatorServer(h.gateway).start()  # type: ignore[arg-type]
    try:
        client = anthropic.Anthropic(api_key=TEST_KEY, base_url=gws.base_url, max_retries=0)
        with pytest.raises(anthropic.InternalServerError) as exc:
            client.messages.create(**REQUEST)
        assert exc.value.status_code == 502
        wait_for(lambda: len(h.sink.calls) == 1, what="the call to be recorded")
        assert h.sink.calls[0].error_type == "api_error"
        assert "unreachable" in (h.sink.calls[0].error_message or "")
    finally:
        gws.stop()
        h.emulator.close()


def test_upstream_errors_reach_the_client_unchanged(serve_gateway: Callable[..., Served]) -> None:
    s = serve_gateway()
    s.emulator.admin().faults({"faults": [{"kind": "rate_limit", "nth": 1, "retry_after_s": 7}]})
    with httpx2.Client(base_url=s.url) as http:
        r = http.post("/v1/messages", json=REQUEST, headers=HEADERS)
    assert r.status_code == 429
    assert r.headers["retry-after"] == "7" and r.headers["request-id"].startswith("req_")
    assert "x-tokenomy-origin" not in r.headers
    assert _api_error(r)["type"] == "rate_limit_error"
    wait_for(lambda: len(s.sink.calls) == 1, what="the call to be recorded")
    assert s.sink.calls[0].error_type == "rate_limit_error"


@pytest.mark.parametrize("kind", ["drop_after_start", "stream_error"])
def test_a_broken_upstream_stream_is_mirrored_and_recorded(
    serve_gateway: Callable[..., Served], kind: str
) -> None:
    s = serve_gateway()
    s.emulator.admin().faults({"faults": [{"kind": kind, "nth": 1}]})
    client = anthropic.Anthropic(api_key=TEST_KEY, base_url=s.url, max_retries=0)
    with (
        pytest.raises((anthropic.APIError, httpx2.HTTPError)),
        client.messages.stream(**REQUEST) as stream,
    ):
        stream.get_final_message()
    wait_for(lambda: len(s.sink.calls) == 1, what="the call to be recorded")
    call: CallRecord = s.sink.calls[0]
    assert call.status == "error"
    # and the gateway is still serving
    msg = client.messages.create(**REQUEST)
    assert msg.content[0].type == "text"
