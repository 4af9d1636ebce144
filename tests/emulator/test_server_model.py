"""The seam API of ``tokenomy.emulator.server``: Admission.usage, stats, entries, reset,
output token counting, thread safety."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.emulator.test_caching import EPH, EPH_1H, req, text, user
from tokenomy.data import builtin_table
from tokenomy.emulator.server import Admission, ApiError, ServerModel
from tokenomy.errors import TokenomyError


def test_usage_is_the_wire_object() -> None:
    """§1.9: the fields and their nesting as the API sends them; no server_tool_use."""
    m = ServerModel()
    body = req([user(text(1200, EPH_1H), text(300, EPH)), user(text(9))])
    adm = m.admit(body, scope="k", now_s=0)
    u = adm.usage(output_tokens=42)
    assert u == {
        "input_tokens": adm.input_tokens,
        "cache_creation_input_tokens": adm.cache_creation_1h_tokens + adm.cache_creation_5m_tokens,
        "cache_read_input_tokens": 0,
        "cache_creation": {
            "ephemeral_5m_input_tokens": adm.cache_creation_5m_tokens,
            "ephemeral_1h_input_tokens": adm.cache_creation_1h_tokens,
        },
        "output_tokens": 42,
        "service_tier": "standard",
    }
    assert adm.cache_creation_1h_tokens > 0
    assert adm.cache_creation_5m_tokens > 0
    assert adm.uncached_input_tokens == adm.input_tokens + u["cache_creation_input_tokens"]
    thinking = adm.usage(output_tokens=50, thinking_tokens=30, service_tier="batch")
    assert thinking["output_tokens_details"] == {"thinking_tokens": 30}
    assert thinking["service_tier"] == "batch"
    with pytest.raises(ValueError, match="cannot exceed"):
        adm.usage(output_tokens=5, thinking_tokens=6)


def test_admission_carries_the_model_and_the_requested_name() -> None:
    m = ServerModel()
    adm = m.admit(req([user(text(5))], model="claude-opus-4-8[1m]"), scope="k", now_s=0)
    assert adm.model.id == "claude-opus-4-8"
    assert adm.model_name == "claude-opus-4-8[1m]"
    assert isinstance(adm, Admission)


def test_api_error_is_a_tokenomy_error_with_headers() -> None:
    err = ApiError(429, "slow down", headers={"retry-after": "3"})
    assert isinstance(err, TokenomyError)
    assert (err.status, err.error_type, err.message, err.headers) == (
        429,
        "rate_limit_error",
        "slow down",
        {"retry-after": "3"},
    )


def test_output_token_counting_for_brains() -> None:
    m = ServerModel()
    opus47, opus46 = builtin_table().get("claude-opus-4-7"), builtin_table().get("claude-opus-4-6")
    assert m.text_tokens("one two three four five six seven eight nine ten", model=opus46) == 10
    assert m.text_tokens("one two three four five six seven eight nine ten", model=opus47) == 13
    use = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}
    assert m.block_tokens(use, model=opus46) > m.block_tokens(
        {"type": "text", "text": "f"}, model=opus46
    )


def test_stats_entries_and_reset() -> None:
    m = ServerModel()
    body = req([user(text(1500, EPH))])
    a = m.admit(body, scope="key-1", now_s=0)
    a.commit()
    b = m.admit(body, scope="key-1", now_s=5)
    b.commit()
    m.admit(req([user(text(3))]), scope="key-1", now_s=6).commit()
    m.admit(body, scope="key-2", now_s=7).abort()
    m.count_tokens(body)
    s = m.stats()
    assert {
        k: s[k] for k in ("requests", "committed", "aborted", "hits", "misses", "uncacheable")
    } == {
        "requests": 4,
        "committed": 3,
        "aborted": 1,
        "hits": 1,
        "misses": 1,
        "uncacheable": 1,
    }
    assert s["cache_read_input_tokens"] == b.cache_read_tokens == a.cache_creation_5m_tokens
    assert s["count_tokens_requests"] == 1
    (entry,) = m.entries(now_s=10)
    assert entry == {
        "model": "claude-opus-4-8",
        "scope": "key-1",
        "prefix_tokens": a.cache_creation_5m_tokens,
        "ttl": "5m",
        "written_at_s": 0.0,
        "expires_at_s": 305.0,
        "readable": True,
        "hits": 1,
    }
    assert m.entries(now_s=305.0) == []  # expired entries are not listed
    m.reset()
    assert m.entries(now_s=0) == []
    assert m.stats()["requests"] == 0


def test_concurrent_admits_are_consistent() -> None:
    """admit() is thread-safe: many threads, one cache, consistent counters."""
    m = ServerModel()
    bodies = [req([user(text(1500, EPH))]) for _ in range(4)]
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for k in range(50):
                adm = m.admit(bodies[(i + k) % 4], scope="k", now_s=float(k))
                (adm.commit if k % 5 else adm.abort)()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    s: dict[str, Any] = m.stats()
    assert s["requests"] == 400
    assert s["committed"] + s["aborted"] == 400
    assert s["in_flight"] == 0
    assert len(m.entries(now_s=60)) == 4
