"""The HTTP protocol: routes, auth, versions, envelopes, request ids, admin endpoints.

In-process (ASGI), with raw HTTP so that every header and byte is visible.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2
import orjson
import pytest
from starlette.applications import Starlette

from tests.emulator.harness import TEST_KEY, asgi_client
from tokenomy.emulator import Emulator, key_fingerprint

pytestmark = pytest.mark.anyio

MODEL = "claude-sonnet-4-6"
HEADERS = {"x-api-key": TEST_KEY, "anthropic-version": "2023-06-01"}


def body(text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def assert_envelope(r: httpx2.Response, status: int, error_type: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    payload: dict[str, Any] = r.json()
    assert payload["type"] == "error"
    assert payload["error"]["type"] == error_type
    assert isinstance(payload["error"]["message"], str) and payload["error"]["message"]
    assert payload["request_id"] == r.headers["request-id"]
    return payload


async def test_both_auth_styles_and_versions(client: httpx2.AsyncClient) -> None:
    styles = [
        {"x-api-key": TEST_KEY, "anthropic-version": "2023-06-01"},
        {"authorization": f"Bearer {TEST_KEY}", "anthropic-version": "2026-10-21"},
    ]
    for headers in styles:
        r = await client.post("/v1/messages", json=body(), headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["content"][0]["text"] == "Echo: hello"


@pytest.mark.parametrize(
    "headers",
    [
        {"anthropic-version": "2023-06-01"},
        {"x-api-key": "", "anthropic-version": "2023-06-01"},
        {"authorization": "Bearer ", "anthropic-version": "2023-06-01"},
        {"authorization": f"Basic {TEST_KEY}", "anthropic-version": "2023-06-01"},
    ],
)
async def test_missing_or_bad_auth_is_401(
    client: httpx2.AsyncClient, headers: dict[str, str]
) -> None:
    r = await client.post("/v1/messages", json=body(), headers=headers)
    assert_envelope(r, 401, "authentication_error")


@pytest.mark.parametrize("version", [None, "", "2024-01-01", "2023-01-01"])
async def test_missing_or_unknown_version_is_400(
    client: httpx2.AsyncClient, version: str | None
) -> None:
    headers = {"x-api-key": TEST_KEY}
    if version is not None:
        headers["anthropic-version"] = version
    r = await client.post("/v1/messages", json=body(), headers=headers)
    payload = assert_envelope(r, 400, "invalid_request_error")
    assert "anthropic-version" in payload["error"]["message"]


async def test_unknown_betas_and_fields_are_accepted(client: httpx2.AsyncClient) -> None:
    extra = {
        "context_management": {"edits": []},
        "output_config": {"effort": "high"},
        "metadata": {"user_id": '{"device_id":"d","account_uuid":"a","session_id":"s"}'},
        "some_future_field": {"x": 1},
    }
    r = await client.post(
        "/v1/messages?beta=true",
        json=body(**extra),
        headers={**HEADERS, "anthropic-beta": "made-up-2099-01-01,context-1m-2025-08-07"},
    )
    assert r.status_code == 200, r.text


async def test_a_trailing_system_message_is_fine(client: httpx2.AsyncClient) -> None:
    # Claude Code (beta mid-conversation-system): a first turn may end with a system message.
    msgs = [
        {"role": "user", "content": [{"type": "text", "text": "say hi"}]},
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
    ]
    b = {"model": "claude-opus-4-8", "max_tokens": 64, "messages": msgs}
    r = await client.post(
        "/v1/messages?beta=true",
        json=b,
        headers={**HEADERS, "anthropic-beta": "mid-conversation-system-2026-04-07"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["content"][0]["text"] == "Echo: say hi"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("HEAD", "/"),
        ("GET", "/"),
        ("GET", "/v1/messages"),
        ("POST", "/v1/complete"),
        ("GET", "/v1/nothing/here"),
        ("PUT", "/v1/messages/batches"),
    ],
)
async def test_unknown_routes_are_404(client: httpx2.AsyncClient, method: str, path: str) -> None:
    r = await client.request(method, path, headers=HEADERS)
    assert r.status_code == 404
    assert r.headers["request-id"].startswith("req_")
    if method != "HEAD":
        assert_envelope(r, 404, "not_found_error")


async def test_malformed_json_is_400(client: httpx2.AsyncClient) -> None:
    for raw in (b"{", b"", b"\xff\xfe", b'{"model": 1e999999}'):
        r = await client.post("/v1/messages", content=raw, headers=HEADERS)
        assert_envelope(r, 400, "invalid_request_error")


async def test_body_over_the_limit_is_413(make_app: Callable[..., Starlette]) -> None:
    app = make_app(max_body_bytes=1_000)
    async with asgi_client(app) as http:
        r = await http.post("/v1/messages", json=body("x" * 2_000), headers=HEADERS)
        assert_envelope(r, 413, "request_too_large")
        r = await http.post("/v1/messages/count_tokens", json=body("x" * 2_000), headers=HEADERS)
        assert_envelope(r, 413, "request_too_large")


async def test_every_response_has_a_request_id(client: httpx2.AsyncClient) -> None:
    responses = [
        await client.post("/v1/messages", json=body(), headers=HEADERS),
        await client.post("/v1/messages", json={}, headers=HEADERS),
        await client.get("/v1/models", headers=HEADERS),
        await client.get("/nope"),
        await client.get("/_emulator/stats"),
    ]
    ids = [r.headers["request-id"] for r in responses]
    assert all(i.startswith("req_01") for i in ids)
    assert len(set(ids)) == len(ids)


async def test_ids_repeat_with_the_seed(make_app: Callable[..., Starlette]) -> None:
    runs = []
    for _ in range(2):
        async with asgi_client(make_app(seed=42)) as http:
            r = await http.post("/v1/messages", json=body(), headers=HEADERS)
            runs.append((r.headers["request-id"], r.json()["id"]))
    assert runs[0] == runs[1]
    async with asgi_client(make_app(seed=43)) as http:
        r = await http.post("/v1/messages", json=body(), headers=HEADERS)
        assert r.json()["id"] != runs[0][1]


async def test_count_tokens(client: httpx2.AsyncClient) -> None:
    r = await client.post("/v1/messages/count_tokens?beta=true", json=body(), headers=HEADERS)
    assert r.status_code == 200
    assert set(r.json()) == {"input_tokens"} and r.json()["input_tokens"] > 0


async def test_models_pages(client: httpx2.AsyncClient, emulator: Emulator) -> None:
    r = await client.get("/v1/models?limit=1000", headers=HEADERS)
    listed = [m["id"] for m in r.json()["data"]]
    assert listed == [m.id for m in emulator.table if m.status != "retired"]
    first = (await client.get("/v1/models?limit=2", headers=HEADERS)).json()
    assert first["has_more"] and first["last_id"] == listed[1]
    nxt = (await client.get(f"/v1/models?limit=2&after_id={listed[1]}", headers=HEADERS)).json()
    assert [m["id"] for m in nxt["data"]] == listed[2:4]
    for bad in ("0", "1001", "x"):
        r = await client.get(f"/v1/models?limit={bad}", headers=HEADERS)
        assert_envelope(r, 400, "invalid_request_error")
    one = (await client.get("/v1/models/claude-haiku-4-5", headers=HEADERS)).json()
    assert one["id"] == "claude-haiku-4-5-20251001"
    assert one["created_at"] == "2025-10-01T00:00:00Z"


# -- generation details ----------------------------------------------------------------------


async def test_max_tokens_truncates(client: httpx2.AsyncClient) -> None:
    long_text = " ".join(f"word{i}" for i in range(200))
    r = await client.post("/v1/messages", json=body(long_text, max_tokens=5), headers=HEADERS)
    m = r.json()
    assert m["stop_reason"] == "max_tokens"
    assert 0 < m["usage"]["output_tokens"] <= 5
    assert long_text.startswith(m["content"][0]["text"].removeprefix("Echo: "))


async def test_max_tokens_zero_prewarms(client: httpx2.AsyncClient) -> None:
    r = await client.post("/v1/messages", json=body(max_tokens=0), headers=HEADERS)
    m = r.json()
    assert r.status_code == 200, r.text
    assert m["content"] == [] and m["stop_reason"] == "max_tokens"
    assert m["usage"]["output_tokens"] == 0


async def test_stop_sequences(client: httpx2.AsyncClient) -> None:
    r = await client.post(
        "/v1/messages", json=body("alpha STOP beta", stop_sequences=["STOP"]), headers=HEADERS
    )
    m = r.json()
    assert m["stop_reason"] == "stop_sequence" and m["stop_sequence"] == "STOP"
    assert m["content"][0]["text"] == "Echo: alpha "


async def test_thinking_blocks_only_when_enabled(client: httpx2.AsyncClient) -> None:
    on = body(max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024})
    m = (await client.post("/v1/messages", json=on, headers=HEADERS)).json()
    assert [b["type"] for b in m["content"]] == ["thinking", "text"]
    assert m["usage"]["output_tokens_details"]["thinking_tokens"] > 0
    off = (await client.post("/v1/messages", json=body(), headers=HEADERS)).json()
    assert [b["type"] for b in off["content"]] == ["text"]
    assert "output_tokens_details" not in off["usage"]


async def test_unknown_brain_header_is_400(client: httpx2.AsyncClient) -> None:
    r = await client.post(
        "/v1/messages", json=body(), headers={**HEADERS, "x-tokenomy-brain": "nobody"}
    )
    payload = assert_envelope(r, 400, "invalid_request_error")
    assert "nobody" in payload["error"]["message"]


# -- admin -------------------------------------------------------------------------------------


def _cached_body() -> dict[str, Any]:
    system = [
        {
            "type": "text",
            "text": "Manual. " + "Every rule here matters a great deal to the answer. " * 300,
            "cache_control": {"type": "ephemeral"},
        }
    ]
    return body(system=system)


async def test_clock_expires_a_cache_entry(client: httpx2.AsyncClient) -> None:
    first = (await client.post("/v1/messages", json=_cached_body(), headers=HEADERS)).json()
    written = first["usage"]["cache_creation_input_tokens"]
    assert written > 0
    entries = (await client.get("/_emulator/cache")).json()["entries"]
    assert len(entries) == 1 and entries[0]["ttl"] == "5m"
    assert entries[0]["scope"] == key_fingerprint(TEST_KEY)
    r = await client.post("/_emulator/clock", json={"advance_s": 299})
    assert r.json()["mode"] == "virtual"
    hit = (await client.post("/v1/messages", json=_cached_body(), headers=HEADERS)).json()
    assert hit["usage"]["cache_read_input_tokens"] == written
    await client.post("/_emulator/clock", json={"advance_s": 301})  # 5 min after the refresh
    miss = (await client.post("/v1/messages", json=_cached_body(), headers=HEADERS)).json()
    assert miss["usage"]["cache_read_input_tokens"] == 0
    assert miss["usage"]["cache_creation_input_tokens"] == written


async def test_caches_are_scoped_per_key(client: httpx2.AsyncClient) -> None:
    await client.post("/v1/messages", json=_cached_body(), headers=HEADERS)
    other = {**HEADERS, "x-api-key": "sk-ant-other"}
    r = (await client.post("/v1/messages", json=_cached_body(), headers=other)).json()
    assert r["usage"]["cache_read_input_tokens"] == 0


async def test_clock_endpoint(client: httpx2.AsyncClient, emulator: Emulator) -> None:
    start = (await client.get("/_emulator/clock")).json()
    assert start["now"] == "2026-01-01T00:00:00.000000Z"
    moved = (await client.post("/_emulator/clock", json={"advance_s": 90.5})).json()
    assert moved["now_s"] == start["now_s"] + 90.5 == emulator.now_s()
    for bad in ({"advance_s": -1}, {"advance_s": "x"}, {"advance": 1}, [1]):
        r = await client.post("/_emulator/clock", json=bad)
        assert_envelope(r, 400, "invalid_request_error")


async def test_reset_forgets_everything(client: httpx2.AsyncClient) -> None:
    first = (await client.post("/v1/messages", json=_cached_body(), headers=HEADERS)).json()
    await client.post("/_emulator/clock", json={"advance_s": 10})
    r = await client.post("/_emulator/reset")
    assert r.json()["reset"] is True
    assert (await client.get("/_emulator/cache")).json()["entries"] == []
    assert (await client.get("/_emulator/requests")).json()["requests"] == []
    again = (await client.post("/v1/messages", json=_cached_body(), headers=HEADERS)).json()
    assert again["id"] == first["id"]  # ids restart too
    assert again["usage"] == first["usage"]


async def test_stats_and_request_log(client: httpx2.AsyncClient) -> None:
    await client.post("/v1/messages", json=_cached_body(), headers=HEADERS)
    await client.post("/v1/messages", json={}, headers=HEADERS)
    stats = (await client.get("/_emulator/stats")).json()
    assert stats["http"] == {"messages:200": 1, "messages:400": 1}
    assert set(stats) >= {"server", "batches", "faults", "now_s"}
    log = (await client.get("/_emulator/requests")).json()["requests"]
    assert [e["status"] for e in log] == [200, 400]
    assert log[0]["usage"]["cache_creation_input_tokens"] > 0
    assert log[0]["model"] == MODEL and log[0]["brain"] == "echo"


async def test_the_api_key_is_never_exposed(client: httpx2.AsyncClient) -> None:
    await client.post("/v1/messages", json=_cached_body(), headers=HEADERS)
    for path in ("/_emulator/stats", "/_emulator/requests", "/_emulator/cache"):
        text = (await client.get(path)).text
        assert TEST_KEY not in text and "test-0000" not in text


async def test_faults_endpoint(client: httpx2.AsyncClient) -> None:
    plan = {"seed": 5, "faults": [{"kind": "overloaded", "nth": [2], "model": "claude-sonnet-*"}]}
    installed = (await client.post("/_emulator/faults", json=plan)).json()
    assert installed["seed"] == 5 and installed["faults"][0]["nth"] == [2]
    assert (await client.get("/_emulator/faults")).json() == installed
    statuses = [
        (await client.post("/v1/messages", json=body(), headers=HEADERS)).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 529, 200]
    other_model = body()
    other_model["model"] = "claude-haiku-4-5"
    await client.post("/_emulator/faults", json=plan)
    statuses = [
        (await client.post("/v1/messages", json=other_model, headers=HEADERS)).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 200]
    r = await client.post("/_emulator/faults", json={"faults": [{"kind": "meteor"}]})
    payload = assert_envelope(r, 400, "invalid_request_error")
    assert "meteor" in payload["error"]["message"]
    cleared = (await client.post("/_emulator/faults", json={"faults": []})).json()
    assert cleared["faults"] == []


async def test_a_fault_writes_nothing_to_the_cache(client: httpx2.AsyncClient) -> None:
    await client.post("/_emulator/faults", json=[{"kind": "api_error", "nth": 1}])
    r = await client.post("/v1/messages", json=_cached_body(), headers=HEADERS)
    assert_envelope(r, 500, "api_error")
    assert (await client.get("/_emulator/cache")).json()["entries"] == []


async def test_json_bodies_are_compact_utf8(client: httpx2.AsyncClient) -> None:
    r = await client.post("/v1/messages", json=body("héllo ⟦x⟧"), headers=HEADERS)
    assert r.headers["content-type"] == "application/json"
    assert orjson.loads(r.content)["content"][0]["text"] == "Echo: héllo ⟦x⟧"
