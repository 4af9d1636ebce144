"""The clock and the latency model: formula, modes, headers, and what they do to time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette

from tests.emulator.harness import TEST_KEY, asgi_client, emulator_of
from tokenomy.emulator import VIRTUAL_EPOCH_S, LatencyModel
from tokenomy.emulator.clock import RealClock, VirtualClock, make_clock, rfc3339
from tokenomy.errors import ConfigError

HEADERS = {"x-api-key": TEST_KEY, "anthropic-version": "2023-06-01"}


def body(**extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hello"}],
        **extra,
    }


def test_virtual_clock_moves_only_when_told() -> None:
    clock = VirtualClock()
    assert clock.now_s() == VIRTUAL_EPOCH_S == clock.now_s()
    assert clock.advance(1.5) == VIRTUAL_EPOCH_S + 1.5
    clock.reset()
    assert clock.now_s() == VIRTUAL_EPOCH_S
    for bad in (-1, float("nan"), float("inf"), "1", True):
        with pytest.raises(ConfigError):
            clock.advance(bad)  # type: ignore[arg-type]


def test_real_clock_adds_an_offset() -> None:
    clock = RealClock()
    before = time.time()
    clock.advance(3600)
    assert clock.now_s() >= before + 3600
    clock.reset()
    assert clock.now_s() < before + 3600
    assert make_clock("real").mode == "real"
    with pytest.raises(ConfigError):
        make_clock("sundial")  # type: ignore[arg-type]


def test_rfc3339() -> None:
    assert rfc3339(VIRTUAL_EPOCH_S + 0.25) == "2026-01-01T00:00:00.250000Z"


def test_latency_formula() -> None:
    model = LatencyModel(
        mode="virtual",
        base_ms=100,
        uncached_ms_per_token=0.5,
        cached_ms_per_token=0.1,
        output_tokens_per_s=50,
    )
    t = model.timing(uncached_input_tokens=1000, cache_read_tokens=2000, output_tokens=100)
    assert t.ttft_ms == 100 + 500 + 200
    assert t.output_ms == 2000
    assert t.duration_ms == 2800
    slow = model.timing(
        uncached_input_tokens=0, cache_read_tokens=0, output_tokens=0, extra_ttft_ms=40
    )
    assert slow.ttft_ms == 140


def test_defaults_follow_the_published_caching_latency() -> None:
    # Anthropic's launch figures: a 100k-token prompt, 11.5 s uncached vs 2.4 s cached.
    m = LatencyModel()
    uncached = m.ttft_ms(uncached_input_tokens=100_000, cache_read_tokens=0)
    cached = m.ttft_ms(uncached_input_tokens=0, cache_read_tokens=100_000)
    assert 10_000 < uncached < 13_000 and 2_000 < cached < 3_000


@pytest.mark.parametrize(
    "kwargs",
    [{"mode": "fast"}, {"base_ms": -1}, {"output_tokens_per_s": 0}, {"scale": -0.5}],
)
def test_latency_rejects_nonsense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        LatencyModel(**kwargs)


@pytest.mark.anyio
async def test_virtual_latency_advances_the_clock_and_reports(
    make_app: Callable[..., Starlette],
) -> None:
    latency = LatencyModel(mode="virtual", base_ms=200, uncached_ms_per_token=1.0)
    app = make_app(latency=latency)
    em = emulator_of(app)
    async with asgi_client(app) as http:
        start = em.now_s()
        r = await http.post("/v1/messages", json=body(), headers=HEADERS)
        usage = r.json()["usage"]
        ttft = 200 + usage["input_tokens"] * 1.0
        duration = ttft + usage["output_tokens"] / 60 * 1000
        assert float(r.headers["x-emulator-ttft-ms"]) == pytest.approx(ttft, abs=0.05)
        assert float(r.headers["x-emulator-duration-ms"]) == pytest.approx(duration, abs=0.05)
        assert em.now_s() - start == pytest.approx(duration / 1000)
        streamed = await http.post("/v1/messages", json=body(stream=True), headers=HEADERS)
        assert "x-emulator-ttft-ms" in streamed.headers


@pytest.mark.anyio
async def test_slow_first_token_in_virtual_mode(make_app: Callable[..., Starlette]) -> None:
    app = make_app(latency=LatencyModel(mode="virtual"))
    async with asgi_client(app) as http:
        plain = await http.post("/v1/messages", json=body(), headers=HEADERS)
        await http.post(
            "/_emulator/faults", json=[{"kind": "slow_first_token", "delay_ms": 5000, "nth": 1}]
        )
        slow = await http.post("/v1/messages", json=body(), headers=HEADERS)
    gap = float(slow.headers["x-emulator-ttft-ms"]) - float(plain.headers["x-emulator-ttft-ms"])
    assert gap == pytest.approx(5000, abs=0.2)


@pytest.mark.anyio
async def test_latency_off_leaves_time_alone(client: httpx2.AsyncClient, app: Starlette) -> None:
    before = emulator_of(app).now_s()
    r = await client.post("/v1/messages", json=body(), headers=HEADERS)
    assert "x-emulator-ttft-ms" not in r.headers
    assert emulator_of(app).now_s() == before


@pytest.mark.anyio
async def test_real_latency_runs(make_app: Callable[..., Starlette]) -> None:
    # Real mode sleeps (scaled to almost nothing here); only its wiring is checked, not time.
    app = make_app(latency=LatencyModel(mode="real", scale=1e-6), clock="real")
    async with asgi_client(app) as http:
        plain = await http.post("/v1/messages", json=body(), headers=HEADERS)
        streamed = await http.post("/v1/messages", json=body(stream=True), headers=HEADERS)
    assert plain.status_code == streamed.status_code == 200
    assert b"message_stop" in streamed.content
    assert float(plain.headers["x-emulator-ttft-ms"]) > 0
