"""The official ``anthropic`` SDK 2.x against the emulator, over real HTTP and in-process.

If the SDK cannot parse what the emulator sends, or raises the wrong class for an error, the
emulator is wrong: these tests use only the SDK's public API.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic import Omit

from tests.emulator.harness import TEST_KEY, Admin, EmulatorServer
from tokenomy.emulator import FaultPlan, FaultRule

MODEL = "claude-sonnet-4-6"
HI = [{"role": "user", "content": "hello there"}]
WEATHER_TOOL: dict[str, Any] = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["C", "F"]}},
        "required": ["city"],
    },
}


def test_create_returns_a_message(sdk: anthropic.Anthropic) -> None:
    m = sdk.messages.create(model=MODEL, max_tokens=64, messages=HI)
    assert m.id.startswith("msg_01")
    assert m.type == "message" and m.role == "assistant"
    assert m.model == MODEL
    assert m.stop_reason == "end_turn"
    assert m.content[0].type == "text" and m.content[0].text == "Echo: hello there"
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0
    assert m.usage.cache_creation is not None
    assert m.usage.service_tier == "standard"


def test_the_requested_model_string_is_echoed(sdk: anthropic.Anthropic) -> None:
    # Claude Code reuses the returned model on --resume: an alias must come back unchanged.
    m = sdk.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=HI)
    assert m.model == "claude-haiku-4-5"


def test_request_id_is_exposed(sdk: anthropic.Anthropic, admin: Admin) -> None:
    m = sdk.messages.create(model=MODEL, max_tokens=16, messages=HI)
    assert m._request_id is not None and m._request_id.startswith("req_")
    (entry,) = admin.requests()
    assert entry["request_id"] == m._request_id
    # the 2.x SDK authenticates with a Bearer token and the 2026-10-21 version
    assert (entry["auth"], entry["anthropic_version"]) == ("bearer", "2026-10-21")


def test_stream_helper_text_and_final_message(sdk: anthropic.Anthropic) -> None:
    with sdk.messages.stream(model=MODEL, max_tokens=64, messages=HI) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Echo: hello there"
    assert final.content[0].type == "text" and final.content[0].text == text
    plain = sdk.messages.create(model=MODEL, max_tokens=64, messages=HI)
    assert final.usage.output_tokens == plain.usage.output_tokens
    assert final.stop_reason == "end_turn"


def test_raw_stream_events(sdk: anthropic.Anthropic) -> None:
    events = list(sdk.messages.create(model=MODEL, max_tokens=64, messages=HI, stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert kinds[-2] == "message_delta"
    assert "content_block_delta" in kinds
    start = events[0]
    assert start.type == "message_start"
    assert start.message.usage.input_tokens > 0
    delta = events[-2]
    assert delta.type == "message_delta"
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens >= start.message.usage.output_tokens


def test_thinking_stream(sdk: anthropic.Anthropic) -> None:
    with sdk.messages.stream(
        model=MODEL,
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=HI,
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    thinking = final.content[0]
    assert thinking.type == "thinking" and thinking.thinking and thinking.signature
    details = final.usage.output_tokens_details
    assert details is not None and 0 < details.thinking_tokens < final.usage.output_tokens


@pytest.mark.anyio
async def test_async_client_create_and_stream(async_sdk: anthropic.AsyncAnthropic) -> None:
    m = await async_sdk.messages.create(model=MODEL, max_tokens=64, messages=HI)
    assert m.content[0].type == "text"
    async with async_sdk.messages.stream(model=MODEL, max_tokens=64, messages=HI) as stream:
        final = await stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text == "Echo: hello there"


@pytest.mark.anyio
async def test_async_client_over_real_http(server: EmulatorServer) -> None:
    async with anthropic.AsyncAnthropic(
        api_key=TEST_KEY, base_url=server.base_url, max_retries=0
    ) as sdk:
        m = await sdk.messages.create(model=MODEL, max_tokens=64, messages=HI)
        n = await sdk.messages.count_tokens(model=MODEL, messages=HI)
    assert m.content[0].type == "text"
    assert n.input_tokens > 0


def test_tools_round_trip(sdk: anthropic.Anthropic) -> None:
    first = sdk.messages.create(
        model=MODEL,
        max_tokens=256,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
    )
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather" and call.id.startswith("toolu_")
    assert isinstance(call.input, dict) and isinstance(call.input["city"], str)
    second = sdk.messages.create(
        model=MODEL,
        max_tokens=256,
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "sunny, 21 C"}
                ],
            },
        ],
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text" and "sunny, 21 C" in second.content[0].text


def test_streamed_tool_use_parses(sdk: anthropic.Anthropic) -> None:
    with sdk.messages.stream(
        model=MODEL,
        max_tokens=256,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
    ) as stream:
        final = stream.get_final_message()
    call = next(b for b in final.content if b.type == "tool_use")
    plain = sdk.messages.create(
        model=MODEL,
        max_tokens=256,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
    )
    plain_call = next(b for b in plain.content if b.type == "tool_use")
    assert call.input == plain_call.input


def test_count_tokens(sdk: anthropic.Anthropic) -> None:
    n = sdk.messages.count_tokens(model=MODEL, messages=HI, system="Be brief.")
    m = sdk.messages.create(model=MODEL, max_tokens=16, messages=HI, system="Be brief.")
    total = (
        m.usage.input_tokens
        + (m.usage.cache_creation_input_tokens or 0)
        + (m.usage.cache_read_input_tokens or 0)
    )
    assert n.input_tokens == total


def test_models_list_and_retrieve(sdk: anthropic.Anthropic) -> None:
    page = sdk.models.list(limit=2)
    assert len(page.data) == 2 and page.has_more
    every = list(sdk.models.list(limit=3))  # auto-pagination follows after_id
    ids = [m.id for m in every]
    assert len(ids) == len(set(ids)) > 2
    assert all(m.type == "model" and m.display_name for m in every)
    one = sdk.models.retrieve(ids[0])
    assert one.id == ids[0]
    with pytest.raises(anthropic.NotFoundError):
        sdk.models.retrieve("claude-nonexistent-9")


def test_json_output_for_a_title_request(sdk: anthropic.Anthropic) -> None:
    # Claude Code's session-title request: a JSON schema with a required title.
    m = sdk.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=[{"role": "user", "content": "please fix the failing login test"}],
        extra_body={
            "output_config": {
                "format": {
                    "type": "json_schema",
                    "schema": {
                        "type": "object",
                        "properties": {"title": {"type": "string"}},
                        "required": ["title"],
                        "additionalProperties": False,
                    },
                }
            }
        },
    )
    assert m.content[0].type == "text"
    title = json.loads(m.content[0].text)
    assert set(title) == {"title"} and title["title"]


# -- errors: each status becomes the SDK's own exception class -----------------------------


def test_bad_request(sdk: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as err:
        sdk.messages.create(model=MODEL, max_tokens=16, messages=[])
    assert err.value.status_code == 400
    body: Any = err.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert body["request_id"] == err.value.request_id


def test_unknown_model_is_not_found(sdk: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError):
        sdk.messages.create(model="claude-nonexistent-9", max_tokens=16, messages=HI)


def test_missing_key_is_an_authentication_error(server: EmulatorServer) -> None:
    with (
        anthropic.Anthropic(
            api_key=TEST_KEY,
            base_url=server.base_url,
            max_retries=0,
            default_headers={"Authorization": Omit()},
        ) as sdk,
        pytest.raises(anthropic.AuthenticationError) as err,
    ):
        sdk.messages.create(model=MODEL, max_tokens=16, messages=HI)
    assert err.value.status_code == 401


def test_oversize_body_is_request_too_large(make_app: Any) -> None:
    from tests.emulator.harness import serve_app

    app = make_app(max_body_bytes=2_000)
    with (
        serve_app(app) as srv,
        anthropic.Anthropic(api_key=TEST_KEY, base_url=srv.base_url, max_retries=0) as sdk,
        pytest.raises(anthropic.RequestTooLargeError) as err,
    ):
        sdk.messages.create(
            model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "x" * 5_000}]
        )
    assert err.value.status_code == 413
    assert err.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]


@pytest.mark.parametrize(
    ("kind", "exc", "status"),
    [
        ("rate_limit", anthropic.RateLimitError, 429),
        ("api_error", anthropic.InternalServerError, 500),
        ("overloaded", anthropic.OverloadedError, 529),
    ],
)
def test_fault_statuses_raise_the_sdk_classes(
    sdk: anthropic.Anthropic, admin: Admin, kind: str, exc: type[Exception], status: int
) -> None:
    admin.faults({"faults": [{"kind": kind, "nth": 1}]})
    with pytest.raises(exc) as err:
        sdk.messages.create(model=MODEL, max_tokens=16, messages=HI)
    assert isinstance(err.value, anthropic.APIStatusError)
    assert err.value.status_code == status
    sdk.messages.create(model=MODEL, max_tokens=16, messages=HI)  # the 2nd request is fine


def test_rate_limit_carries_retry_after(sdk: anthropic.Anthropic, admin: Admin) -> None:
    admin.faults([{"kind": "rate_limit", "nth": 1, "retry_after_s": 7}])
    with pytest.raises(anthropic.RateLimitError) as err:
        sdk.messages.create(model=MODEL, max_tokens=16, messages=HI)
    assert err.value.response.headers["retry-after"] == "7"
    assert err.value.response.headers["retry-after-ms"] == "7000"


def test_sdk_retries_a_rate_limit_honouring_retry_after(
    server: EmulatorServer, admin: Admin
) -> None:
    # retry-after-ms of 1 ms: the SDK waits what the server says (not its 0.5 s backoff).
    admin.faults([{"kind": "rate_limit", "nth": 1, "retry_after_s": 0.001}])
    with anthropic.Anthropic(api_key=TEST_KEY, base_url=server.base_url, max_retries=2) as sdk:
        raw = sdk.messages.with_raw_response.create(model=MODEL, max_tokens=16, messages=HI)
    assert raw.retries_taken == 1
    statuses = [r["status"] for r in admin.requests() if r["route"] == "messages"]
    assert statuses == [429, 200]


def test_error_event_inside_a_stream(sdk: anthropic.Anthropic, admin: Admin) -> None:
    admin.faults([{"kind": "stream_error", "nth": 1}])
    with (
        pytest.raises(anthropic.APIStatusError) as err,
        sdk.messages.stream(model=MODEL, max_tokens=64, messages=HI) as stream,
    ):
        for _ in stream:
            pass
    assert "overloaded_error" in str(err.value)


def test_dropped_connection_after_message_start(sdk: anthropic.Anthropic, admin: Admin) -> None:
    admin.faults([{"kind": "drop_after_start", "nth": 1}])
    seen: list[str] = []
    with pytest.raises((anthropic.APIConnectionError, httpx2.HTTPError)):  # noqa: PT012
        for event in sdk.messages.create(model=MODEL, max_tokens=64, messages=HI, stream=True):
            seen.append(event.type)
    assert seen == ["message_start"]


def test_fault_plan_from_config_applies(make_app: Any) -> None:
    from tests.emulator.harness import serve_app

    plan = FaultPlan(rules=(FaultRule(kind="overloaded", nth=(2,)),))
    with (
        serve_app(make_app(faults=plan)) as srv,
        anthropic.Anthropic(api_key=TEST_KEY, base_url=srv.base_url, max_retries=0) as sdk,
    ):
        sdk.messages.create(model=MODEL, max_tokens=16, messages=HI)
        with pytest.raises(anthropic.OverloadedError):
            sdk.messages.create(model=MODEL, max_tokens=16, messages=HI)
