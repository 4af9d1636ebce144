"""Random request shapes over real HTTP: the emulator answers 2xx/4xx, never 5xx (faults off)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.emulator.harness import TEST_KEY, EmulatorServer, serve_app
from tokenomy.data import builtin_table
from tokenomy.emulator import BatchTiming

MODELS = [m.id for m in builtin_table()] + ["claude-haiku-4-5", "claude-nonexistent", ""]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
cache_control = st.one_of(
    st.just({"type": "ephemeral"}),
    st.just({"type": "ephemeral", "ttl": "1h"}),
    st.dictionaries(st.sampled_from(["type", "ttl"]), json_scalars, max_size=2),
)
text_block = st.fixed_dictionaries(
    {"type": st.just("text"), "text": st.text(max_size=60)},
    optional={"cache_control": cache_control},
)
tool_use = st.fixed_dictionaries(
    {
        "type": st.just("tool_use"),
        "id": st.sampled_from(["toolu_1", "toolu_2", ""]),
        "name": st.sampled_from(["get_weather", "fetch_doc", "x y"]),
        "input": json_values,
    }
)
tool_result = st.fixed_dictionaries(
    {
        "type": st.just("tool_result"),
        "tool_use_id": st.sampled_from(["toolu_1", "toolu_2", "nope"]),
        "content": st.one_of(st.text(max_size=40), st.lists(text_block, max_size=2)),
    },
    optional={"is_error": st.booleans(), "cache_control": cache_control},
)
block = st.one_of(
    text_block, tool_use, tool_result, st.dictionaries(st.text(max_size=8), json_values, max_size=3)
)
message = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "assistant", "system", "tool", ""]),
        "content": st.one_of(st.text(max_size=60), st.lists(block, max_size=3), json_scalars),
    }
)
tool = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["get_weather", "fetch_doc", "bad name!"]),
        "input_schema": st.one_of(
            st.just({"type": "object", "properties": {"city": {"type": "string"}}}),
            json_values,
        ),
    },
    optional={"description": st.text(max_size=20), "cache_control": cache_control},
)
messages_body = st.fixed_dictionaries(
    {
        "model": st.sampled_from(MODELS),
        "max_tokens": st.one_of(st.integers(min_value=-5, max_value=200_000), json_scalars),
        "messages": st.one_of(st.lists(message, max_size=4), json_values),
    },
    optional={
        "stream": st.one_of(st.booleans(), json_scalars),
        "system": st.one_of(st.text(max_size=60), st.lists(text_block, max_size=3), json_values),
        "tools": st.one_of(st.lists(tool, max_size=3), json_values),
        "tool_choice": st.one_of(
            st.sampled_from([{"type": "auto"}, {"type": "any"}, {"type": "none"}]),
            st.fixed_dictionaries({"type": st.just("tool"), "name": st.text(max_size=12)}),
            json_values,
        ),
        "thinking": st.one_of(
            st.fixed_dictionaries(
                {"type": st.just("enabled"), "budget_tokens": st.integers(-10, 5000)}
            ),
            st.just({"type": "adaptive"}),
            json_values,
        ),
        "cache_control": cache_control,
        "stop_sequences": st.one_of(st.lists(st.text(max_size=5), max_size=3), json_values),
        "output_config": st.one_of(
            st.just({"format": {"type": "json_schema", "schema": {"type": "object"}}}),
            st.fixed_dictionaries(
                {
                    "format": st.fixed_dictionaries(
                        {"type": st.just("json_schema"), "schema": json_values}
                    )
                }
            ),
            json_values,
        ),
        "metadata": json_values,
        "temperature": json_scalars,
        "anything_else": json_values,
    },
)
ACTIVE = ["claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-8"]
plausible_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80)
turns = st.lists(st.tuples(plausible_text, plausible_text), max_size=3).map(
    lambda pairs: [
        m
        for q, a in pairs
        for m in ({"role": "user", "content": q or "q"}, {"role": "assistant", "content": a or "a"})
    ]
)
# Mostly valid requests with one random twist, so the generation paths run too.
plausible_body = st.builds(
    lambda history, last, max_tokens, stream, extra: {
        "model": extra.pop("model", "claude-sonnet-4-6"),
        "max_tokens": max_tokens,
        "messages": [*history, {"role": "user", "content": last or "hi"}],
        "stream": stream,
        **extra,
    },
    turns,
    plausible_text,
    st.integers(min_value=0, max_value=4096),
    st.booleans(),
    st.fixed_dictionaries(
        {},
        optional={
            "model": st.sampled_from(ACTIVE),
            "system": st.one_of(plausible_text, st.lists(text_block, min_size=1, max_size=2)),
            "tools": st.lists(tool, max_size=2, unique_by=lambda t: t["name"]),
            "tool_choice": st.sampled_from(
                [{"type": "auto"}, {"type": "any"}, {"type": "tool", "name": "get_weather"}]
            ),
            "stop_sequences": st.lists(st.text(min_size=1, max_size=3), max_size=2),
            "output_config": st.just(
                {
                    "format": {
                        "type": "json_schema",
                        "schema": {"type": "object", "properties": {"title": {"type": "string"}}},
                    }
                }
            ),
            "metadata": st.just({"user_id": "u"}),
            "temperature": st.floats(0, 1),
            "anything_else": json_values,
        },
    ),
)
batch_body = st.fixed_dictionaries(
    {
        "requests": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "custom_id": st.one_of(
                            st.from_regex(r"[a-z0-9_-]{1,8}", fullmatch=True), json_scalars
                        ),
                        "params": st.one_of(plausible_body, messages_body, json_values),
                    }
                ),
                max_size=3,
            ),
            json_values,
        )
    }
)
# printable, no surrounding spaces (the client itself refuses those)
header_text = st.from_regex(r"([!-~]([ -~]{0,18}[!-~])?)?", fullmatch=True)
auth_headers = st.one_of(
    st.just({"x-api-key": TEST_KEY}),
    st.just({"x-api-key": TEST_KEY}),
    st.just({"x-api-key": TEST_KEY}),
    st.just({"authorization": f"Bearer {TEST_KEY}"}),
    st.just({}),
    st.dictionaries(
        st.sampled_from(["x-api-key", "authorization"]),
        header_text,
        max_size=2,
    ),
)
version_headers = st.one_of(
    st.sampled_from([{"anthropic-version": "2023-06-01"}, {"anthropic-version": "2026-10-21"}]),
    st.sampled_from([{"anthropic-version": "2023-06-01"}, {"anthropic-version": "2026-10-21"}, {}]),
    st.fixed_dictionaries({"anthropic-version": header_text}),
)
extra_headers = st.dictionaries(
    st.sampled_from(
        ["anthropic-beta", "x-tokenomy-brain", "x-tokenomy-fetch-tool", "content-type"]
    ),
    st.one_of(
        st.sampled_from(["echo", "facts", "made-up-2099-01-01", "application/json"]),
        header_text,
    ),
    max_size=3,
)
routes = st.sampled_from(
    [
        ("POST", "/v1/messages"),
        ("POST", "/v1/messages"),
        ("POST", "/v1/messages"),
        ("POST", "/v1/messages/count_tokens"),
        ("POST", "/v1/messages?beta=true"),
        ("POST", "/v1/messages/count_tokens"),
        ("POST", "/v1/messages/batches"),
        ("GET", "/v1/messages/batches"),
        ("GET", "/v1/messages/batches/msgbatch_nope"),
        ("GET", "/v1/models"),
        ("GET", "/v1/models/claude-x"),
        ("POST", "/_emulator/clock"),
        ("POST", "/_emulator/faults"),
        ("GET", "/nothing"),
    ]
)


@pytest.fixture(scope="module")
def live() -> Iterator[EmulatorServer]:
    with serve_app(batch_timing=BatchTiming(seconds_per_request=1.0, min_seconds=1.0)) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(live: EmulatorServer) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=live.base_url, timeout=30) as c:
        yield c


def _send(
    http: httpx2.Client, method: str, path: str, payload: bytes, headers: dict[str, str]
) -> httpx2.Response:
    r = http.request(method, path, content=payload if method == "POST" else None, headers=headers)
    assert r.status_code < 500, f"{method} {path} -> {r.status_code}: {r.text[:500]}"
    assert "request-id" in r.headers
    return r


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    route=routes,
    shaped=st.one_of(plausible_body, plausible_body, messages_body, batch_body, json_values),
    raw=st.one_of(st.none(), st.none(), st.none(), st.binary(max_size=64)),
    auth=auth_headers,
    version=version_headers,
    extra=extra_headers,
)
def test_random_requests_never_get_5xx(
    http: httpx2.Client,
    route: tuple[str, str],
    shaped: Any,
    raw: bytes | None,
    auth: dict[str, str],
    version: dict[str, str],
    extra: dict[str, str],
) -> None:
    method, path = route
    if path in ("/_emulator/clock", "/_emulator/faults"):
        # admin input is random too, but faults must stay off and time must only move forward
        payload = orjson.dumps({"advance_s": 30}) if path.endswith("clock") else b"{bad"
    else:
        # stdlib json: it writes integers beyond 64 bits, which the server must refuse cleanly
        payload = raw if raw is not None else json.dumps(shaped).encode()
    _send(http, method, path, payload, {**auth, **version, **extra})


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    route=st.sampled_from(
        [
            ("POST", "/v1/messages"),
            ("POST", "/v1/messages"),
            ("POST", "/v1/messages/count_tokens"),
            ("POST", "/v1/messages/batches"),
        ]
    ),
    shaped=plausible_body,
    auth=st.sampled_from([{"x-api-key": TEST_KEY}, {"authorization": f"Bearer {TEST_KEY}"}]),
    brain=st.sampled_from([{}, {"x-tokenomy-brain": "facts"}, {"x-tokenomy-brain": "echo"}]),
)
def test_plausible_requests_never_get_5xx(
    http: httpx2.Client,
    route: tuple[str, str],
    shaped: dict[str, Any],
    auth: dict[str, str],
    brain: dict[str, str],
) -> None:
    method, path = route
    if path.endswith("batches"):
        shaped.pop("stream", None)
        payload = {"requests": [{"custom_id": "one", "params": shaped}]}
    else:
        payload = shaped
    headers = {**auth, **brain, "anthropic-version": "2023-06-01"}
    _send(http, method, path, json.dumps(payload).encode(), headers)


def test_random_batches_run_and_report_without_5xx(http: httpx2.Client) -> None:
    # After the random run, let every batch finish and read everything back.
    headers = {"x-api-key": TEST_KEY, "anthropic-version": "2023-06-01"}
    _send(http, "POST", "/_emulator/clock", orjson.dumps({"advance_s": 90_000}), {})
    stats = http.get("/_emulator/stats").json()["http"]
    # the random run reached the generation paths, not only validation
    assert stats.get("messages:200", 0) > 20 and stats.get("batches:200", 0) > 5, stats
    page = _send(http, "GET", "/v1/messages/batches?limit=1000", b"", headers).json()
    for batch in page["data"]:
        assert batch["processing_status"] == "ended"
        lines = _send(http, "GET", f"/v1/messages/batches/{batch['id']}/results", b"", headers)
        for line in lines.text.splitlines():
            assert orjson.loads(line)["result"]["type"] in ("succeeded", "errored")
