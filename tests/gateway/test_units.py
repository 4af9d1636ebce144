"""Small pieces of the gateway on their own: routes, results_url, line splitting, cost bound."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from tokenomy.core.usage import Usage
from tokenomy.data import builtin_table
from tokenomy.gateway.auth import client_key, hash_key, max_cost_usd, new_gateway_key
from tokenomy.gateway.batches import LineSplitter, own_results_url, parse_result_line
from tokenomy.gateway.routing import route_of
from tokenomy.gateway.runs import claude_code_session


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("POST", "/v1/messages", "messages"),
        ("POST", "/v1/messages/", "messages"),
        ("POST", "/v1/messages/count_tokens", "count_tokens"),
        ("POST", "/v1/messages/batches", "batches"),
        ("GET", "/v1/messages/batches/msgbatch_1/results", "batch_results"),
        ("POST", "/v1/messages/batches/msgbatch_1/cancel", "batches"),
        ("GET", "/v1/models/claude-sonnet-4-6", "models"),
        ("GET", "/healthz", "healthz"),
        ("GET", "/metrics", "metrics"),
        ("HEAD", "/", "other"),
        ("GET", "/v1/messages", "other"),
        ("POST", "/v1/files", "other"),
    ],
)
def test_routes(method: str, path: str, route: str) -> None:
    assert route_of(method, path) == route


def test_results_url_points_at_the_gateway_only_for_the_upstream() -> None:
    body = (
        b'{"data":[{"id":"a","results_url":"https://api.anthropic.com/v1/messages/batches/a/results"},'
        b'{"id":"b","results_url": null},{"id":"c","results_url":"https://elsewhere/x"}]}'
    )
    out = own_results_url(
        body, upstream_base="https://api.anthropic.com", own_base="http://127.0.0.1:8787"
    )
    data = orjson.loads(out)["data"]
    assert data[0]["results_url"] == "http://127.0.0.1:8787/v1/messages/batches/a/results"
    assert data[1]["results_url"] is None and data[2]["results_url"] == "https://elsewhere/x"


def test_line_splitter_across_chunk_boundaries() -> None:
    s = LineSplitter()
    for chunk in (b'{"a"', b':1}\n{"b":', b"2}\n\n", b'{"c":3}'):
        s.feed(chunk)
    assert s.close() == [b'{"a":1}', b'{"b":2}', b'{"c":3}']


def test_result_lines_succeeded_errored_and_canceled() -> None:
    usage = {"input_tokens": 10, "output_tokens": 5}
    ok = parse_result_line(
        orjson.dumps(
            {
                "custom_id": "r1",
                "result": {
                    "type": "succeeded",
                    "message": {"id": "msg_1", "model": "claude-sonnet-4-6", "usage": usage},
                },
            }
        )
    )
    assert ok is not None and ok.custom_id == "r1" and ok.model == "claude-sonnet-4-6"
    assert ok.facts.usage == Usage(input_tokens=10, output_tokens=5, service_tier="batch")
    bad = parse_result_line(
        orjson.dumps(
            {
                "custom_id": "r2",
                "result": {
                    "type": "errored",
                    "error": {
                        "type": "error",
                        "error": {"type": "invalid_request_error", "message": "no"},
                    },
                },
            }
        )
    )
    assert bad is not None and bad.facts.error_type == "invalid_request_error"
    assert parse_result_line(b'{"custom_id":"r3","result":{"type":"canceled"}}') is None
    assert parse_result_line(b"not json") is None


def test_keys_headers_and_hashes() -> None:
    assert client_key({"x-api-key": "k1", "authorization": "Bearer k2"}).value == "k1"  # type: ignore[union-attr]
    bearer = client_key({"authorization": "bearer  k2 "})
    assert bearer is not None and bearer.value == "k2" and bearer.header == "authorization"
    assert client_key({"authorization": "Basic xyz"}) is None
    assert "k2" not in repr(bearer)
    key_id, key = new_gateway_key()
    assert key.startswith("tk-") and key_id.startswith("tkid_") and len(key) > 40
    assert hash_key(key) != key and len(hash_key(key)) == 64


def test_max_cost_bounds_the_real_cost() -> None:
    table = builtin_table()
    model = table.find("claude-sonnet-4-6")
    bound = max_cost_usd(model, input_tokens_estimate=1000, request={"max_tokens": 500})
    assert bound is not None
    # the dearest real outcome: every input token written to a 1h cache, max_tokens of output
    assert model is not None and model.prices is not None
    worst = (model.prices.cache_write_1h * 1000 + model.prices.output * 500) / Decimal(10**6)
    assert bound > worst
    assert max_cost_usd(None, input_tokens_estimate=1, request=None) is None


def test_claude_code_session_from_metadata() -> None:
    uid = '{"device_id":"d","account_uuid":"","session_id":"s-1"}'
    assert claude_code_session({}, {"metadata": {"user_id": uid}}) == "s-1"
    assert claude_code_session({"x-claude-code-session-id": "h"}, None) == "h"
    assert claude_code_session({}, {"metadata": {"user_id": "plain-user"}}) is None
    assert claude_code_session({}, {"metadata": {"user_id": "{broken"}}) is None


def test_body_limits_follow_the_api_per_route() -> None:
    from tokenomy.gateway.routing import GatewayConfig

    c = GatewayConfig()
    assert c.body_limit("messages") == c.body_limit("count_tokens") == 32 * 1024 * 1024
    assert c.body_limit("batches") == 256 * 1024 * 1024
    assert c.body_limit("other") == 500 * 1024 * 1024
