"""A team deployment: two gateway processes sharing a PostgreSQL ledger and Redis budgets.

Each process is a real ``tokenomy gateway`` subprocess on its own loopback port, in front of
one emulator. Skipped with a message when PostgreSQL or Redis is not running here.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.emulator.harness import TEST_KEY, EmulatorServer
from tests.services import PG_UNREACHABLE, fresh_pg_database
from tokenomy.emulator import EmulatorConfig, create_app
from tokenomy.ledger import Ledger

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]
REDIS_URL = "redis://127.0.0.1:6379/0"
TOKENOMY = [str(Path(sys.executable).parent / "tokenomy")]
BODY = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 32,
    "messages": [{"role": "user", "content": "hi"}],
}


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with fresh_pg_database("tokenomy_gw") as url:
        if url is None:
            pytest.skip(PG_UNREACHABLE)
        yield url


def _redis_prefix_clear(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    for k in client.scan_iter(match=prefix + "*"):
        client.delete(k)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _env(tmp: Path, pg_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKENOMY_", "ANTHROPIC_"))}
    env.update(
        TOKENOMY_DB=pg_url,
        TOKENOMY_REDIS=REDIS_URL,
        TOKENOMY_OFFLINE="1",
        TOKENOMY_DATA_DIR=str(tmp / "data"),
        TOKENOMY_UPSTREAM_API_KEY=TEST_KEY,
        XDG_CONFIG_HOME=str(tmp / "config"),
    )
    return env


def _wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"gateway exited {proc.returncode}: {proc.stderr and proc.stderr.read()!r}"
            )
        try:
            if httpx2.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.05)  # waiting for a process to start, not a timing assertion
    raise AssertionError(f"gateway at {url} did not start")


def test_two_gateway_processes_share_the_ledger_and_the_budgets(
    pg_url: str, tmp_path: Path
) -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("Redis is not reachable at 127.0.0.1:6379")
    env = _env(tmp_path, pg_url)
    created = subprocess.run(
        [*TOKENOMY, "keys", "create", "--name", "team", "--budget-usd", "0.0005", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    key = json.loads(created.stdout)
    secret, key_id = key["key"], key["key_id"]
    app = create_app(EmulatorConfig())
    emu = EmulatorServer(app).start()
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for _ in range(2):
            port = _free_port()
            procs.append(
                subprocess.Popen(
                    [*TOKENOMY, "gateway", "--port", str(port), "--upstream", emu.base_url],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs, strict=True):
            _wait_healthy(url, proc)
        sent = 0
        # clients with their own key, spread over both gateways
        for i in range(6):
            r = httpx2.post(
                f"{urls[i % 2]}/v1/messages",
                json=BODY,
                headers={
                    "x-api-key": TEST_KEY,
                    "anthropic-version": "2023-06-01",
                    "x-tokenomy-run": "shared-run",
                },
                timeout=10,
            )
            assert r.status_code == 200, r.text
            sent += 1
        # a gateway key: spend on gateway 0 until its budget is gone ...
        gk_headers = {"x-api-key": secret, "anthropic-version": "2023-06-01"}
        statuses = []
        for _ in range(40):
            r = httpx2.post(f"{urls[0]}/v1/messages", json=BODY, headers=gk_headers, timeout=10)
            statuses.append(r.status_code)
            sent += 1
            if r.status_code == 400:
                break
        assert statuses[0] == 200 and statuses[-1] == 400, statuses
        # ... and gateway 1, which never served it, refuses it too (the spend is in Redis)
        r = httpx2.post(f"{urls[1]}/v1/messages", json=BODY, headers=gk_headers, timeout=10)
        sent += 1
        assert r.status_code == 400 and "budget" in r.json()["error"]["message"]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)  # graceful: the ledger is flushed on shutdown
        for proc in procs:
            proc.wait(timeout=30)
            if proc.stderr is not None:
                proc.stderr.close()
        emu.stop()
        app.state.emulator.close()
        _redis_prefix_clear(f"tokenomy:spend_pusd:{key_id}")
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught
    assert all(p.returncode in (0, -signal.SIGTERM) for p in procs)
    with Ledger.open(pg_url) as ledger:
        assert ledger.count("calls") == sent  # every call from both processes, none lost
        with ledger.read() as conn:
            rows = conn.exec_driver_sql(
                "SELECT r.external_id, count(*) FROM calls c JOIN runs r ON r.run_id = c.run_id "
                "WHERE r.external_id = 'shared-run' GROUP BY r.external_id"
            ).all()
    # each process has its own run object for the same name; both are in the shared ledger
    assert sum(n for _, n in rows) == 6
    listed = subprocess.run(
        [*TOKENOMY, "keys", "list", "--json"], env=env, capture_output=True, text=True, check=True
    )
    [row] = json.loads(listed.stdout)
    assert row["key_id"] == key_id and float(row["spent_usd"]) > 0.0005
