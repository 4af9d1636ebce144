"""Bad input: a clear API-shaped error with the status the API gives, and the call recorded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.emulator.harness import TEST_KEY
from tests.gateway.conftest import GatewayHarness

pytestmark = pytest.mark.anyio
HEADERS = {"x-api-key": TEST_KEY, "anthropic-version": "2023-06-01"}
GOOD = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 8,
    "messages": [{"role": "user", "content": "x"}],
}


def envelope(r: Any) -> dict[str, Any]:
    data: dict[str, Any] = r.json()
    assert data["type"] == "error" and data["request_id"].startswith("req_")
    assert set(data["error"]) == {"type", "message"}
    return data["error"]  # type: ignore[no-any-return]


async def test_malformed_json_is_400_and_recorded(gw: GatewayHarness) -> None:
    async with gw.http() as http:
        r = await http.post("/v1/messages", content=b'{"model": "claude-', headers=HEADERS)
    assert r.status_code == 400
    err = envelope(r)
    assert err["type"] == "invalid_request_error" and "not valid JSON" in err["message"]
    assert r.headers["x-tokenomy-origin"] == "gateway"
    [call] = gw.sink.calls
    assert call.status == "error" and call.http_status == 400
    assert call.error_type == "invalid_request_error"
    assert call.api_key_fingerprint and call.run_id


@pytest.mark.parametrize("declared", [True, False])
async def test_a_body_over_the_limit_is_413_request_too_large(
    make_gateway: Callable[..., GatewayHarness], declared: bool
) -> None:
    gw = make_gateway(max_body_bytes=1024)
    big = b'{"model": "claude-sonnet-4-6", "pad": "' + b"x" * 4096 + b'"}'

    async def chunks() -> Any:  # no content-length: the limit is found while reading
        for i in range(0, len(big), 512):
            yield big[i : i + 512]

    async with gw.http() as http:
        r = await http.post("/v1/messages", content=big if declared else chunks(), headers=HEADERS)
    assert r.status_code == 413
    err = envelope(r)
    assert err["type"] == "request_too_large"
    [call] = gw.sink.calls
    assert call.http_status == 413 and call.error_type == "request_too_large"


async def test_a_missing_key_is_401_and_recorded(gw: GatewayHarness) -> None:
    async with gw.http() as http:
        r = await http.post("/v1/messages", json=GOOD, headers={"anthropic-version": "2023-06-01"})
        assert r.status_code == 401
        assert envelope(r)["type"] == "authentication_error"
        r = await http.get("/v1/models")
        assert r.status_code == 401
    [call] = gw.sink.calls
    assert call.http_status == 401 and call.api_key_fingerprint is None


async def test_unknown_routes_pass_through_verbatim(gw: GatewayHarness) -> None:
    async with gw.http() as http:
        r = await http.get("/v1/no-such-thing", headers=HEADERS)
        assert r.status_code == 404
        assert envelope(r)["type"] == "not_found_error"
        assert "x-tokenomy-origin" not in r.headers  # the upstream's answer
        head = await http.head("/")
        assert head.status_code in (200, 404)
        # the emulator's own admin routes answer through the gateway too
        clock = await http.get("/_emulator/clock")
        assert clock.status_code == 200 and "now_s" in clock.text
    assert gw.sink.calls == []


async def test_health_and_metrics(gw: GatewayHarness) -> None:
    async with gw.http() as http:
        r = await http.post("/v1/messages", json=GOOD, headers=HEADERS)
        assert r.status_code == 200
        await http.post("/v1/messages", content=b"nope", headers=HEADERS)
        health = (await http.get("/healthz")).json()
        metrics = (await http.get("/metrics")).text
    assert health["status"] == "ok" and health["mode"] == "optimize" and health["runs"] >= 1
    assert 'tokenomy_gateway_requests_total{route="messages",status="200"} 1.0' in metrics
    assert (
        'tokenomy_gateway_errors_total{origin="gateway",type="invalid_request_error"} 1.0'
        in metrics
    )
    assert 'tokenomy_gateway_tokens_total{kind="output"}' in metrics
    assert "tokenomy_gateway_cost_usd_total" in metrics
    assert "tokenomy_gateway_cache_hit_rate" in metrics
    assert "tokenomy_gateway_upstream_latency_seconds_bucket" in metrics
