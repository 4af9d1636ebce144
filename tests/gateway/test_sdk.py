"""The official SDK (2.x) through the gateway to the emulator: every call the emulator supports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import pytest

from tests.emulator.harness import TEST_KEY
from tests.gateway.conftest import GatewayHarness, Served
from tests.pipeline.test_founding_example import preamble
from tokenomy.core.pricing import CostBreakdown

MODEL = "claude-sonnet-4-6"


def body(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    tools, system = preamble()
    return {
        "model": MODEL,
        "max_tokens": 64,
        "system": system,
        "tools": tools,
        "messages": messages,
        **extra,
    }


@pytest.mark.anyio
async def test_create_stream_raw_stream_and_beta_are_metered(gw: GatewayHarness) -> None:
    client = gw.sdk()
    msg = await client.messages.create(**body([{"role": "user", "content": "hello"}]))
    assert isinstance(msg, anthropic.types.Message)
    assert msg.content[0].type == "text" and msg.content[0].text == "Echo: hello"
    turn2 = [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": msg.content[0].text},
        {"role": "user", "content": "more"},
    ]
    async with client.messages.stream(**body(turn2)) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Echo: more"
    turn3 = [*turn2, {"role": "assistant", "content": text}, {"role": "user", "content": "x"}]
    events = [e.type async for e in await client.messages.create(stream=True, **body(turn3))]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    await client.beta.messages.create(**body([{"role": "user", "content": "beta"}]))
    calls = gw.sink.calls
    assert [c.stream for c in calls] == [False, True, True, False]
    assert all(c.status == "ok" and isinstance(c.cost, CostBreakdown) for c in calls)
    assert calls[1].usage is not None
    assert calls[1].usage.cache_read_tokens == final.usage.cache_read_input_tokens > 0
    assert calls[0].message_id == msg.id
    assert calls[0].request_id and calls[0].request_id.startswith("req_")
    assert calls[1].ttft_ms is not None
    # the API key is never kept, only its fingerprint
    assert all(c.api_key_fingerprint and "sk-ant" not in c.api_key_fingerprint for c in calls)
    # the first three extend one conversation: one run (prefix continuity)
    assert calls[0].run_id == calls[1].run_id == calls[2].run_id != calls[3].run_id


@pytest.mark.anyio
async def test_count_tokens_models_and_errors_pass_through(gw: GatewayHarness) -> None:
    client = gw.sdk()
    counted = await client.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "hello there"}]
    )
    assert counted.input_tokens > 0
    models = [m.id async for m in client.models.list(limit=3)]
    assert MODEL in models or len(models) == 3
    one = await client.models.retrieve(MODEL)
    assert one.id == MODEL
    with pytest.raises(anthropic.BadRequestError) as bad:
        await client.messages.create(model=MODEL, max_tokens=64, messages=[])
    assert bad.value.status_code == 400 and bad.value.request_id
    with pytest.raises(anthropic.NotFoundError):
        await client.messages.create(
            model="claude-nonexistent", max_tokens=64, messages=[{"role": "user", "content": "x"}]
        )
    # upstream errors are recorded with what the API said
    errors = [c for c in gw.sink.calls if c.status == "error"]
    assert [c.http_status for c in errors] == [400, 404]
    assert errors[0].error_type == "invalid_request_error"


@pytest.mark.anyio
async def test_batches_pass_through_and_results_are_metered_once_at_batch_prices(
    gw: GatewayHarness,
) -> None:
    client = gw.sdk()
    batch = await client.messages.batches.create(
        requests=[
            {
                "custom_id": f"r{i}",
                "params": {
                    "model": MODEL,
                    "max_tokens": 32,
                    "messages": [{"role": "user", "content": f"item {i}"}],
                },
            }
            for i in range(3)
        ]
    )
    assert batch.processing_status == "in_progress"
    gw.emulator.clock.advance(3600)
    done = await client.messages.batches.retrieve(batch.id)
    assert done.processing_status == "ended"
    listed = [b.id async for b in await client.messages.batches.list()]
    assert batch.id in listed
    results = [r async for r in await client.messages.batches.results(batch.id)]
    assert sorted(r.custom_id for r in results) == ["r0", "r1", "r2"]
    # fetched twice, metered once
    again = [r async for r in await client.messages.batches.results(batch.id)]
    assert len(again) == 3
    metered = [c for c in gw.sink.calls if c.mode == "batch"]
    assert len(metered) == 3
    assert {c.call_id for c in metered} == {f"call_{batch.id}_r{i}" for i in range(3)}
    for c, r in zip(
        sorted(metered, key=lambda c: c.call_id),
        sorted(results, key=lambda r: r.custom_id),
        strict=True,
    ):
        assert r.result.type == "succeeded"
        assert c.usage is not None and c.usage.is_batch
        assert c.usage.output_tokens == r.result.message.usage.output_tokens
        assert isinstance(c.cost, CostBreakdown)
    assert len({c.run_id for c in metered}) == 1
    deleted = await client.messages.batches.delete(batch.id)
    assert deleted.id == batch.id


@pytest.mark.anyio
async def test_bearer_auth_and_query_strings_are_accepted(gw: GatewayHarness) -> None:
    async with gw.http() as http:
        r = await http.post(
            "/v1/messages?beta=true",
            headers={"authorization": "Bearer sk-ant-test-0000", "anthropic-version": "2023-06-01"},
            json={"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "q"}]},
        )
        assert r.status_code == 200, r.text
        assert r.json()["content"][0]["text"] == "Echo: q"
        r = await http.post(
            "/v1/messages/count_tokens?beta=true",
            headers={"x-api-key": "sk-ant-test-0000", "anthropic-version": "2023-06-01"},
            json={"model": MODEL, "messages": [{"role": "user", "content": "q"}]},
        )
        assert r.status_code == 200 and r.json()["input_tokens"] > 0
    assert len(gw.sink.calls) == 1  # count_tokens is passed through, not billed


@pytest.mark.anyio
async def test_batch_cancel_and_beta_count_tokens(gw: GatewayHarness) -> None:
    client = gw.sdk()
    batch = await client.messages.batches.create(
        requests=[
            {
                "custom_id": "only",
                "params": {
                    "model": MODEL,
                    "max_tokens": 8,
                    "messages": [{"role": "user", "content": "x"}],
                },
            }
        ]
    )
    cancelled = await client.messages.batches.cancel(batch.id)
    assert cancelled.processing_status in ("canceling", "ended")
    counted = await client.beta.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "hello"}]
    )
    assert counted.input_tokens > 0


def test_the_sync_sdk_over_real_http_with_tools(serve_gateway: Callable[..., Served]) -> None:
    s = serve_gateway()
    tools = [
        {
            "name": "get_weather",
            "description": "Weather for a city.",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        }
    ]
    with anthropic.Anthropic(api_key=TEST_KEY, base_url=s.url, max_retries=0) as client:
        first = client.messages.create(
            model=MODEL,
            max_tokens=64,
            tools=tools,
            messages=[{"role": "user", "content": "use get_weather for Paris"}],
        )
        assert first.stop_reason == "tool_use"
        call = next(b for b in first.content if b.type == "tool_use")
        second = client.messages.create(
            model=MODEL,
            max_tokens=64,
            tools=tools,
            messages=[
                {"role": "user", "content": "use get_weather for Paris"},
                {"role": "assistant", "content": first.content},
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}
                    ],
                },
            ],
        )
        assert second.stop_reason == "end_turn"
    s.gateway.stop()
    assert [c.stop_reason for c in s.sink.calls] == ["tool_use", "end_turn"]
    assert len({c.run_id for c in s.sink.calls}) == 1  # the tool round trip is one run
