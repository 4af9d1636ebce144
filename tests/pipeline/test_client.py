"""The drop-in clients: the SDK's own types, every Messages call metered, nothing else touched."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import httpx2
import pytest

from tests.emulator.harness import EmulatorServer
from tests.pipeline.conftest import Harness, make_harness
from tests.pipeline.test_founding_example import preamble, prose
from tests.prefix_stability import RecordingSink
from tokenomy import Anthropic
from tokenomy.core.pricing import CostBreakdown
from tokenomy.data import builtin_table
from tokenomy.emulator import EmulatorConfig, create_app
from tokenomy.pipeline import FollowClock, Pipeline, PipelineConfig

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


@pytest.fixture
def served() -> Iterator[tuple[EmulatorServer, Pipeline, RecordingSink]]:
    app = create_app(EmulatorConfig())
    server = EmulatorServer(app).start()
    sink = RecordingSink()
    pipeline = Pipeline(
        table=builtin_table(), clock=FollowClock(app.state.emulator.clock.now_s), sink=sink
    )
    try:
        yield server, pipeline, sink
    finally:
        server.stop()
        app.state.emulator.close()


def test_sync_client_over_real_http_returns_sdk_types_and_meters(
    served: tuple[EmulatorServer, Pipeline, RecordingSink],
) -> None:
    server, pipeline, sink = served
    with Anthropic(
        api_key="sk-ant-test-0000", base_url=server.base_url, pipeline=pipeline, max_retries=0
    ) as client:
        msg = client.messages.create(**body([{"role": "user", "content": "hello"}]))
        assert isinstance(msg, anthropic.types.Message)
        with client.messages.stream(
            **body(
                [
                    {"role": "user", "content": "hello"},
                    {"role": "assistant", "content": msg.content[0].text},
                    {"role": "user", "content": "more"},
                ]
            )
        ) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert text
    assert [c.stream for c in sink.calls] == [False, True]
    first, second = sink.calls
    assert first.usage is not None and first.usage.output_tokens == msg.usage.output_tokens
    assert (
        second.usage is not None
        and second.usage.cache_read_tokens == final.usage.cache_read_input_tokens > 0
    )
    assert second.ttft_ms is not None and second.status == "ok"
    assert first.request_id and first.request_id.startswith("req_")
    assert first.message_id == msg.id
    assert isinstance(first.cost, CostBreakdown) and first.cost.total_usd > 0
    assert first.api_key_fingerprint and "sk-ant" not in first.api_key_fingerprint
    # one implicit run for calls outside a `with run`
    assert first.run_id == second.run_id


@pytest.mark.anyio
async def test_async_stream_is_metered_from_the_cumulative_usage() -> None:
    h = make_harness()
    client = h.client()
    async with client.messages.stream(**body([{"role": "user", "content": "hi"}])) as stream:
        final = await stream.get_final_message()
    [call] = h.sink.calls
    assert call.stream and call.usage is not None
    assert call.usage.output_tokens == final.usage.output_tokens
    assert call.usage.cache_write_5m_tokens == final.usage.cache_creation_input_tokens


@pytest.mark.anyio
async def test_raw_stream_true_and_beta_messages_go_through_the_pipeline() -> None:
    h = make_harness()
    client = h.client()
    events = [
        e
        async for e in await client.messages.create(
            stream=True, **body([{"role": "user", "content": "a"}])
        )
    ]
    assert events[0].type == "message_start"
    await client.beta.messages.create(**body([{"role": "user", "content": "b"}]))
    assert len(h.sink.calls) == 2


@pytest.mark.anyio
async def test_count_tokens_passes_through_unmetered() -> None:
    h = make_harness()
    client = h.client()
    count = await client.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "hi"}]
    )
    assert count.input_tokens > 0
    assert h.sink.calls == []


@pytest.mark.anyio
async def test_observe_mode_sends_the_callers_bytes() -> None:
    h = make_harness()
    seen: list[bytes] = []

    class Recorder(httpx2.AsyncBaseTransport):
        def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
            self.inner = inner

        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            seen.append(await request.aread())
            return await self.inner.handle_async_request(request)

    http = httpx2.AsyncClient(
        transport=Recorder(httpx2.ASGITransport(app=h.app)), base_url="http://e"
    )
    sent: list[bytes] = []

    async def capture(request: httpx2.Request) -> None:
        sent.append(request.content)

    http.event_hooks["request"] = [capture]
    from tokenomy import AsyncAnthropic

    client = AsyncAnthropic(
        api_key="k",
        base_url="http://e",
        http_client=http,
        pipeline=h.pipeline,
        optimize=False,
        max_retries=0,
    )
    await client.messages.create(**body([{"role": "user", "content": "hi"}]))
    assert seen == sent  # not a byte changed
    [call] = h.sink.calls
    assert call.breakpoints == () and call.decisions["cache_plan"]["changed"] is False


@pytest.mark.anyio
async def test_sub_agent_runs_roll_up_with_their_duplicated_context() -> None:
    h = make_harness()
    client = h.client()
    with h.pipeline.start_run("orchestrator") as parent:
        await client.messages.create(**body([{"role": "user", "content": "plan"}]))
        for i in range(2):
            with parent.child(f"researcher-{i}"):
                await client.messages.create(**body([{"role": "user", "content": f"research {i}"}]))
    summary = parent.summary()
    child_costs = sum((c.summary().cost_usd for c in parent.children), Decimal(0))
    assert summary.subagent_usd == child_costs > 0
    assert summary.total_usd == summary.cost_usd + child_costs
    child_calls = [c for c in h.sink.calls if c.run_id != parent.run_id]
    assert all(c.decisions["duplicated_context_tokens"] > 5000 for c in child_calls)
    assert {r.parent_run_id for r in h.sink.runs.values() if r.name.startswith("researcher")} == {
        parent.run_id
    }


@pytest.mark.anyio
async def test_an_upstream_error_is_raised_as_the_sdk_error_and_recorded() -> None:
    h = make_harness()
    client = h.client()
    await _post_faults(h, {"faults": [{"kind": "overloaded", "nth": 1}]})
    with pytest.raises(anthropic.APIStatusError) as exc:
        await client.messages.create(**body([{"role": "user", "content": "hi"}]))
    assert exc.value.status_code == 529
    [call] = h.sink.calls
    assert (
        call.status == "error" and call.http_status == 529 and call.error_type == "overloaded_error"
    )
    # the failed call wrote nothing: the retry reads nothing and writes again
    await client.messages.create(**body([{"role": "user", "content": "hi"}]))
    assert h.sink.calls[1].usage is not None and h.sink.calls[1].usage.cache_read_tokens == 0


async def _post_faults(h: Harness, plan: dict[str, Any]) -> None:
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=h.app), base_url="http://e"
    ) as admin:
        r = await admin.post("/_emulator/faults", json=plan)
        assert r.status_code == 200, r.text


@pytest.mark.anyio
async def test_shuffled_schema_keys_are_pinned_and_the_cache_still_hits() -> None:
    """Go and Swift clients shuffle map keys; the stabilizer restores the first-seen order."""
    h = make_harness()
    client = h.client()
    first = body([{"role": "user", "content": prose(900, seed=1)}])
    await client.messages.create(**first)
    shuffled = body(
        [
            {"role": "user", "content": prose(900, seed=1)},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "next"},
        ]
    )
    for t in shuffled["tools"]:
        t["input_schema"] = dict(reversed(list(t["input_schema"].items())))
    h.advance(5)
    await client.messages.create(**shuffled)
    second = h.sink.calls[1]
    assert "stabilize" in second.decisions and len(second.decisions["stabilize"]["key_order"]) == 8
    assert second.usage is not None and second.usage.cache_read_tokens > 6000


@pytest.mark.anyio
async def test_meter_only_pipeline_config() -> None:
    h = make_harness(config=PipelineConfig(optimize=False))
    client = h.client()
    await client.messages.create(**body([{"role": "user", "content": "hi"}]))
    [call] = h.sink.calls
    assert call.usage is not None and call.usage.cache_write_tokens == 0


@pytest.mark.anyio
async def test_cache_diagnostics_sends_the_previous_message_id_with_the_beta() -> None:
    h = make_harness(config=PipelineConfig(cache_diagnostics=True))
    seen: list[httpx2.Request] = []

    class Recorder(httpx2.AsyncBaseTransport):
        def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
            self.inner = inner

        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            await request.aread()
            seen.append(request)
            return await self.inner.handle_async_request(request)

    http = httpx2.AsyncClient(
        transport=Recorder(httpx2.ASGITransport(app=h.app)), base_url="http://e"
    )
    from tokenomy import AsyncAnthropic

    client = AsyncAnthropic(
        api_key="k",
        base_url="http://e",
        http_client=http,
        pipeline=h.pipeline,
        max_retries=0,
        default_headers={"anthropic-beta": "context-1m-2025-08-07"},
    )
    first = await client.messages.create(**body([{"role": "user", "content": "hi"}]))
    await client.messages.create(
        **body(
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "x"},
                {"role": "user", "content": "again"},
            ]
        )
    )
    import orjson

    assert "diagnostics" not in orjson.loads(seen[0].content)
    assert orjson.loads(seen[1].content)["diagnostics"] == {"previous_message_id": first.id}
    assert seen[1].headers["anthropic-beta"] == "context-1m-2025-08-07,cache-diagnosis-2026-04-07"


@pytest.mark.anyio
async def test_a_stream_cut_after_message_start_is_recorded_as_an_error() -> None:
    h = make_harness()
    await _post_faults(h, {"faults": [{"kind": "drop_after_start", "nth": 1}]})
    client = h.client()
    with pytest.raises(anthropic.APIError):  # the SDK's own error for a broken stream
        async with client.messages.stream(**body([{"role": "user", "content": "hi"}])) as stream:
            await stream.get_final_message()
    [call] = h.sink.calls
    assert call.status == "error" and call.stream and call.error_message
