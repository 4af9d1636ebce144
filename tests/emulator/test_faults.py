"""Fault plans: parsing, deterministic triggers, filters; HTTP effects are in the SDK tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.emulator.harness import TEST_KEY
from tokenomy.emulator import FaultPlan, load_fault_plan, parse_fault_plan
from tokenomy.emulator.faults import FaultInjector, http_error_headers
from tokenomy.errors import ConfigError

HEADERS = {"x-api-key": TEST_KEY, "anthropic-version": "2023-06-01"}


def fired(injector: FaultInjector, n: int, **where: Any) -> list[bool]:
    args = {"route": "messages", "model": "claude-sonnet-4-6", "stream": False, **where}
    return [not injector.decide(**args).none for _ in range(n)]


def plan(*rules: dict[str, Any], seed: int = 0) -> FaultInjector:
    return FaultInjector(parse_fault_plan({"seed": seed, "faults": list(rules)}))


def test_nth_every_times() -> None:
    assert fired(plan({"kind": "api_error", "nth": [2, 4]}), 5) == [False, True, False, True, False]
    assert fired(plan({"kind": "api_error", "nth": 3}), 4) == [False, False, True, False]
    assert fired(plan({"kind": "api_error", "every": 2}), 4) == [False, True, False, True]
    assert fired(plan({"kind": "api_error", "times": 2}), 4) == [True, True, False, False]


def test_rate_is_seeded_and_roughly_right() -> None:
    a = fired(plan({"kind": "overloaded", "rate": 0.3}, seed=1), 2000)
    b = fired(plan({"kind": "overloaded", "rate": 0.3}, seed=1), 2000)
    c = fired(plan({"kind": "overloaded", "rate": 0.3}, seed=2), 2000)
    assert a == b and a != c
    assert 0.25 < sum(a) / len(a) < 0.35


def test_adding_a_rule_does_not_shift_another() -> None:
    alone = plan({"kind": "overloaded", "rate": 0.5}, seed=9)
    paired = plan({"kind": "overloaded", "rate": 0.5}, {"kind": "api_error", "rate": 0.5}, seed=9)
    first = [alone.decide(route="messages", model=None, stream=False) for _ in range(50)]
    both = [paired.decide(route="messages", model=None, stream=False) for _ in range(50)]
    assert ["overloaded" in d.fired for d in first] == ["overloaded" in d.fired for d in both]


def test_filters() -> None:
    inj = plan({"kind": "api_error", "model": "claude-haiku-*", "route": "any"})
    assert fired(inj, 1, model="claude-haiku-4-5") == [True]
    assert fired(inj, 1, model="claude-sonnet-4-6") == [False]
    assert fired(inj, 1, model=None) == [False]
    routed = plan({"kind": "api_error", "route": "count_tokens"})
    assert fired(routed, 1) == [False] and fired(routed, 1, route="count_tokens") == [True]
    streaming_only = plan({"kind": "drop_after_start"})
    assert fired(streaming_only, 1) == [False] and fired(streaming_only, 1, stream=True) == [True]
    by_flag = plan({"kind": "api_error", "stream": True})
    assert fired(by_flag, 1) == [False] and fired(by_flag, 1, stream=True) == [True]


def test_first_http_error_wins_and_delays_add_up() -> None:
    inj = plan(
        {"kind": "rate_limit"},
        {"kind": "overloaded"},
        {"kind": "slow_first_token", "delay_ms": 100},
        {"kind": "slow_first_token", "delay_ms": 50},
        {"kind": "stream_error"},
    )
    d = inj.decide(route="messages", model=None, stream=True)
    assert d.http_error is not None and d.http_error.kind == "rate_limit"
    assert d.stream_fault is not None and d.stream_fault.kind == "stream_error"
    assert d.extra_ttft_ms == 150
    counters = inj.counters()
    assert [c["fired"] for c in counters] == [1, 0, 1, 1, 1]
    assert all(c["matched"] == 1 for c in counters)


def test_retry_after_headers() -> None:
    rule = parse_fault_plan([{"kind": "rate_limit", "retry_after_s": 2.5}]).rules[0]
    assert http_error_headers(rule) == {"retry-after": "3", "retry-after-ms": "2500"}
    other = parse_fault_plan([{"kind": "overloaded"}]).rules[0]
    assert http_error_headers(other) == {}


def test_plans_round_trip_to_json() -> None:
    data = {
        "seed": 3,
        "faults": [
            {"kind": "rate_limit", "route": "any", "rate": 0.5, "retry_after_s": 2.0},
            {"kind": "slow_first_token", "route": "messages", "nth": [1, 2], "delay_ms": 10.0},
        ],
    }
    assert parse_fault_plan(data).to_json() == data
    assert parse_fault_plan(None) == FaultPlan()


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ("x", "mapping"),
        ({"faults": {}}, "list"),
        ({"seed": "x"}, "seed"),
        ({"fault": []}, "unknown keys"),
        ([{"kind": "meteor"}], "kind"),
        ([{"kind": "api_error", "rate": 2}], "rate"),
        ([{"kind": "api_error", "rate": True}], "rate"),
        ([{"kind": "api_error", "nth": 0}], "nth"),
        ([{"kind": "api_error", "nth": "1"}], "nth"),
        ([{"kind": "api_error", "every": 0}], "every"),
        ([{"kind": "api_error", "route": "web"}], "route"),
        ([{"kind": "api_error", "model": 5}], "model"),
        ([{"kind": "api_error", "stream": "yes"}], "stream"),
        ([{"kind": "rate_limit", "retry_after_s": -1}], "retry_after_s"),
        ([{"kind": "api_error", "colour": "red"}], "unknown keys"),
        ([{"kind": "stream_error", "error_type": ""}], "error_type"),
    ],
)
def test_bad_plans_name_the_problem(data: Any, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_fault_plan(data, source="plan.yaml")
    assert fragment in str(err.value) and "plan.yaml" in str(err.value)


def test_load_from_files(tmp_path: Path) -> None:
    yml = tmp_path / "faults.yaml"
    yml.write_text("seed: 4\nfaults:\n  - kind: overloaded\n    nth: [1]\n")
    js = tmp_path / "faults.json"
    js.write_text('{"seed": 4, "faults": [{"kind": "overloaded", "nth": [1]}]}')
    assert load_fault_plan(yml) == load_fault_plan(js)
    assert load_fault_plan(yml).rules[0].nth == (1,)
    with pytest.raises(ConfigError, match="cannot read"):
        load_fault_plan(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("faults: [\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml"):
        load_fault_plan(broken)


@pytest.mark.anyio
@pytest.mark.parametrize("route", ["count_tokens", "models", "batches"])
async def test_faults_on_other_routes(client: httpx2.AsyncClient, route: str) -> None:
    await client.post("/_emulator/faults", json=[{"kind": "overloaded", "route": route}])
    calls = {
        "count_tokens": client.post(
            "/v1/messages/count_tokens",
            json={"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "x"}]},
            headers=HEADERS,
        ),
        "models": client.get("/v1/models", headers=HEADERS),
        "batches": client.get("/v1/messages/batches", headers=HEADERS),
    }
    r = await calls.pop(route)
    assert r.status_code == 529 and r.json()["error"]["type"] == "overloaded_error"
    for other in calls.values():
        assert (await other).status_code == 200
    ok = await client.post(
        "/v1/messages",
        json={
            "model": "claude-sonnet-4-6",
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "x"}],
        },
        headers=HEADERS,
    )
    assert ok.status_code == 200
