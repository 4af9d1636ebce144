"""The job store on PostgreSQL: a whole job, recovery included, on the shared-ledger backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.batch.conftest import KEY, no_sleep, write_job
from tests.services import PG_UNREACHABLE, fresh_pg_database
from tokenomy.batch import BatchEnv, PollPolicy, asubmit
from tokenomy.config import load_settings
from tokenomy.emulator import BatchTiming, EmulatorConfig, create_app

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_pg_database("tokenomy_batch") as url:
        if url is None:
            pytest.skip(PG_UNREACHABLE)
        yield url


async def test_a_job_runs_and_recovers_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    app = create_app(EmulatorConfig(batch_timing=BatchTiming(poll_advance_s=600)))
    settings = load_settings(
        flags={"data_dir": str(tmp_path), "db_url": pg_url, "upstream_url": "http://emu.test"},
        environ={},
    )
    env = BatchEnv(
        settings,
        transport=httpx.ASGITransport(app=app),
        poll=PollPolicy(initial_s=0, max_s=0, reconcile_settle_s=0),
        sleep=no_sleep,
    )
    try:
        job = await asubmit(
            write_job(tmp_path / "j.jsonl", 30), env=env, api_key=KEY, max_per_batch=10,
            send=False,
        )  # fmt: skip
        # a create that never reached the API, left by a killed process
        runner = env.runner(job.row(), api_key=KEY)
        try:
            await runner._set_horizon(job.row())
            runner._plan(job.row())
        finally:
            await runner.api.aclose()
        env.store.set_chunk(job.job_id, 1, state="creating", creating_at=env.clock.now())
        status = await job.wait()
        assert env.ledger.backend == "postgresql"
        assert status.state == "ended" and status.requests["succeeded"] == 30
        assert status.saving_pct == 50.0
        assert sorted(x["custom_id"] for x in job.results()) == sorted(f"q{i}" for i in range(30))
    finally:
        env.close()
        app.state.emulator.close()
