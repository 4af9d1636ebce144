"""Gateway keys and budgets: mapped to the upstream key, enforced before sending, shared."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.emulator.harness import TEST_KEY
from tests.gateway.conftest import GatewayHarness
from tokenomy.core.keys import fingerprint
from tokenomy.gateway import KeyStore, RedisBudgets, SqlBudgets
from tokenomy.gateway.budgets import gateway_keys
from tokenomy.ledger import Ledger

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 1, tzinfo=UTC)
REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_SKIP = "Redis is not reachable at 127.0.0.1:6379; start it to run the shared-budget tests"
BODY = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "what does this cost"}],
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[KeyStore]:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        yield KeyStore(ledger.engine, where="test")
    finally:
        ledger.close()


def redis_or_skip() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(REDIS_SKIP)


async def post(gw: GatewayHarness, key: str, body: dict[str, Any] = BODY) -> Any:
    async with gw.http() as http:
        return await http.post(
            "/v1/messages", json=body, headers={"x-api-key": key, "anthropic-version": "2023-06-01"}
        )


async def test_a_gateway_key_maps_to_the_upstream_key_and_spend_is_counted(
    make_gateway: Callable[..., GatewayHarness], store: KeyStore
) -> None:
    key, secret = store.create("alice", budget_usd=Decimal(50), now=NOW)
    assert secret.startswith("tk-") and key.key_id.startswith("tkid_")
    gw = make_gateway(budgets=SqlBudgets(store), upstream_api_key=TEST_KEY)
    r = await post(gw, secret)
    assert r.status_code == 200, r.text
    await gw.gateway.drain()
    [call] = gw.sink.calls
    # the ledger row carries the gateway key's fingerprint; the upstream saw the real key
    assert call.api_key_fingerprint == fingerprint(secret)
    upstream = gw.emulator.recent()[-1]
    assert upstream["auth"] == "x-api-key" and upstream["status"] == 200
    spent = store.get(key.key_id).spent_usd
    assert call.cost is not None and spent >= call.cost.total_usd > 0
    assert call.decisions["gateway_key"]["key_id"] == key.key_id
    # the key itself is stored nowhere, only its hash
    with store._engine.connect() as conn:
        row = conn.execute(select(gateway_keys)).one()
    assert secret not in repr(tuple(row)) and row.key_hash != secret


async def test_unknown_revoked_and_required_keys(
    make_gateway: Callable[..., GatewayHarness], store: KeyStore
) -> None:
    key, secret = store.create("bob", budget_usd=None, now=NOW)
    gw = make_gateway(
        budgets=SqlBudgets(store), upstream_api_key=TEST_KEY, require_gateway_key=True
    )
    assert (await post(gw, "tk-not-a-real-key")).status_code == 401
    r = await post(gw, TEST_KEY)  # a raw Anthropic key is refused by a key-only gateway
    assert r.status_code == 401 and "gateway keys" in r.json()["error"]["message"]
    assert (await post(gw, secret)).status_code == 200
    store.revoke(key.key_id, now=NOW)
    r = await post(gw, secret)
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    assert r.json()["error"]["type"] == "authentication_error"


async def test_a_spent_budget_refuses_before_sending_and_the_overshoot_is_bounded(
    make_gateway: Callable[..., GatewayHarness], store: KeyStore
) -> None:
    key, secret = store.create("carol", budget_usd=Decimal("0.00001"), now=NOW)
    gw = make_gateway(budgets=SqlBudgets(store), upstream_api_key=TEST_KEY)
    # 8 requests at once: those admitted before the first one's spend lands overshoot the
    # budget — by no more than the max cost of the requests that were in flight. (How many get
    # in depends on scheduling; the rest are refused as a spent budget.)
    replies = await asyncio.gather(*(post(gw, secret) for _ in range(8)))
    statuses = [r.status_code for r in replies]
    assert statuses.count(200) >= 1 and set(statuses) <= {200, 400}, statuses
    await gw.gateway.drain()
    spent = store.get(key.key_id).spent_usd
    admitted = [c for c in gw.sink.calls if "gateway_key" in c.decisions]
    assert len(admitted) == statuses.count(200)
    bound = sum(Decimal(c.decisions["gateway_key"]["max_cost_usd"]) for c in admitted)
    assert key.budget_usd is not None
    assert key.budget_usd < spent <= key.budget_usd + bound
    sent = len(gw.emulator.recent())
    r = await post(gw, secret)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and "budget" in err["message"]
    assert len(gw.emulator.recent()) == sent  # refused before sending
    assert gw.sink.calls[-1].http_status == 400
    store.set_budget(key.key_id, Decimal(10))
    assert (await post(gw, secret)).status_code == 200


@pytest.mark.redis
async def test_budgets_in_redis_are_shared_by_two_gateways(
    make_gateway: Callable[..., GatewayHarness], store: KeyStore
) -> None:
    redis_or_skip()
    prefix = f"tokenomy-test-{secrets.token_hex(4)}:"
    key, secret = store.create("team", budget_usd=Decimal("0.00001"), now=NOW)
    a = make_gateway(
        budgets=RedisBudgets(store, REDIS_URL, prefix=prefix), upstream_api_key=TEST_KEY
    )
    b = make_gateway(
        budgets=RedisBudgets(store, REDIS_URL, prefix=prefix), upstream_api_key=TEST_KEY
    )
    try:
        assert (await post(a, secret)).status_code == 200
        await a.gateway.drain()
        # gateway b never served this key, yet sees what a spent
        r = await post(b, secret)
        assert r.status_code == 400 and "budget" in r.json()["error"]["message"]
        # the table has it too (durable across a Redis restart)
        assert store.get(key.key_id).spent_usd > key.budget_usd  # type: ignore[operator]
    finally:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for k in client.scan_iter(match=prefix + "*"):
            client.delete(k)
