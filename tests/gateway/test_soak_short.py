"""A short soak (the 10-minute one is ``bench/soak.py``): faults upstream, none of our own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx2
import orjson
import pytest

from tests.emulator.harness import TEST_KEY
from tests.gateway.conftest import Served
from tokenomy.emulator import EmulatorConfig, parse_fault_plan

pytestmark = pytest.mark.slow
FAULTS = {
    "seed": 3,
    "faults": [
        {"kind": "rate_limit", "rate": 0.01},
        {"kind": "overloaded", "rate": 0.01},
        {"kind": "api_error", "rate": 0.01},
        {"kind": "stream_error", "rate": 0.02},
        {"kind": "drop_after_start", "rate": 0.02},
    ],
}


def test_two_hundred_calls_with_faults_no_gateway_5xx_and_every_call_recorded(
    serve_gateway: Callable[..., Served],
) -> None:
    s = serve_gateway(emulator_config=EmulatorConfig(faults=parse_fault_plan(FAULTS)))
    tally = {"cut": 0, "gateway_5xx": 0, "ok": 0, "upstream_error": 0}

    async def one(http: httpx2.AsyncClient, i: int) -> None:
        body = {
            "model": "claude-sonnet-4-6",
            "max_tokens": 32,
            "stream": i % 2 == 0,
            "messages": [{"role": "user", "content": f"conversation {i % 20} says {i}"}],
        }
        headers = {"x-api-key": TEST_KEY, "anthropic-version": "2023-06-01"}
        if i % 3 == 0:
            headers["x-claude-code-session-id"] = f"s{i % 7}"
        try:
            async with http.stream(
                "POST", "/v1/messages", content=orjson.dumps(body), headers=headers
            ) as r:
                data = b"".join([c async for c in r.aiter_raw()])
        except httpx2.HTTPError:
            tally["cut"] += 1
            return
        if r.status_code >= 500 and (
            r.headers.get("x-tokenomy-origin") == "gateway"
            or not data.startswith(b'{"type":"error"')
        ):
            tally["gateway_5xx"] += 1
        elif r.status_code >= 400 or b"event: error" in data:
            tally["upstream_error"] += 1
        else:
            tally["ok"] += 1

    async def drive() -> None:
        limits = httpx2.Limits(max_connections=16)
        async with httpx2.AsyncClient(base_url=s.url, limits=limits, timeout=30) as http:
            sem = asyncio.Semaphore(16)

            async def bounded(i: int) -> None:
                async with sem:
                    await one(http, i)

            await asyncio.gather(*(bounded(i) for i in range(200)))

    asyncio.run(drive())
    deadline = time.monotonic() + 10
    while len(s.sink.calls) < 200 and time.monotonic() < deadline:
        time.sleep(0.01)  # the last calls are metered after their response ends
    assert tally["gateway_5xx"] == 0, tally
    assert tally["cut"] + tally["upstream_error"] > 0, tally  # the faults did happen
    assert len(s.sink.calls) == 200  # every call recorded, faulted or not
    assert len({c.call_id for c in s.sink.calls}) == 200
