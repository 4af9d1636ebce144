"""Errored and expired requests: retried in a new batch up to a limit, the reason kept."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from tests.batch.conftest import KEY, Rig, request, write_job
from tokenomy.batch import asubmit
from tokenomy.batch.results import decide

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_expired_requests_are_sent_again_and_keep_the_reason(
    make_env: Callable[..., Rig], tmp_path: Path
) -> None:
    # Each request takes 1 s and a batch expires after 30 s: 30 of 50 run, 20 expire.
    rig = make_env(seconds_per_request=1.0, min_seconds=1.0, expiry_s=30.0)
    job = await asubmit(write_job(tmp_path / "j.jsonl", 50), env=rig.env, api_key=KEY)
    status = await job.wait()

    assert status.state == "ended" and status.requests["succeeded"] == 50
    assert [c.kind for c in status.chunks] == ["bulk", "retry"]
    assert status.chunks[0].expired == 20 and status.chunks[0].retried == 20
    assert status.chunks[1].n_requests == 20 and status.chunks[1].succeeded == 20
    assert status.retried_requests == 20
    lines = list(job.results())
    assert len(lines) == 50 and len({x["custom_id"] for x in lines}) == 50
    again = [x for x in lines if x["tokenomy"]["attempt"] == 2]
    assert len(again) == 20
    assert all(x["tokenomy"]["earlier"] == ["expired"] for x in again)
    # The superseded lines are kept for the record, apart from the results.
    retried = Path(status.results_path) / "chunk-000001.retried.jsonl"
    assert len(retried.read_bytes().splitlines()) == 20


async def test_after_the_last_attempt_the_request_ends_expired(
    make_env: Callable[..., Rig], tmp_path: Path
) -> None:
    rig = make_env(seconds_per_request=1.0, min_seconds=1.0, expiry_s=0.5)  # nothing ever runs
    job = await asubmit(
        write_job(tmp_path / "j.jsonl", 4), env=rig.env, api_key=KEY, max_attempts=2
    )
    status = await job.wait()
    assert status.state == "ended"
    assert status.requests["expired"] == 4 and len(status.chunks) == 2
    lines = list(job.results())
    assert [x["result"]["type"] for x in lines] == ["expired"] * 4
    assert all(x["tokenomy"] == {**x["tokenomy"], "attempt": 2, "earlier": ["expired"]}
               for x in lines)  # fmt: skip
    assert status.cost_usd == 0  # expired requests are not billed


async def test_a_request_the_api_rejects_errors_once_and_is_not_retried(
    rig: Rig, tmp_path: Path
) -> None:
    src = write_job(tmp_path / "j.jsonl", 3)
    bad = request(9, messages=[{"role": "user", "content": [{"type": "mystery", "text": "x"}]}])
    with src.open("ab") as fh:
        fh.write(orjson.dumps({"custom_id": "odd", "params": bad}) + b"\n")
    job = await asubmit(src, env=rig.env, api_key=KEY)
    status = await job.wait()
    assert status.requests == {**status.requests, "succeeded": 3, "errored": 1}
    assert len(status.chunks) == 1  # no retry batch
    assert status.tally.errors == {"invalid_request_error": 1}
    odd = next(x for x in job.results() if x["custom_id"] == "odd")
    assert odd["result"]["error"]["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("kind", "error", "attempts_after", "expected"),
    [
        ("succeeded", None, 1, "succeeded"),
        ("expired", None, 1, "pending"),
        ("expired", None, 3, "expired"),
        ("errored", "overloaded_error", 1, "pending"),
        ("errored", "api_error", 2, "pending"),
        ("errored", "api_error", 3, "errored"),
        ("errored", "invalid_request_error", 1, "errored"),
        ("canceled", None, 1, "canceled"),
    ],
)
def test_what_is_retried(kind: str, error: str | None, attempts_after: int, expected: str) -> None:
    assert decide(kind, error, attempts_after=attempts_after, max_attempts=3) == expected


async def test_the_warm_up_writes_the_prefix_before_the_bulk(rig: Rig, tmp_path: Path) -> None:
    job = await asubmit(write_job(tmp_path / "j.jsonl", 20), env=rig.env, api_key=KEY, warmup=True)
    status = await job.wait()
    warm = job.row().warmup
    assert warm is not None and warm["status"] == 200 and warm["cache_write_tokens"] > 3000
    assert status.warmup_usd > 0
    # The bulk only reads the shared prefix: nothing written at batch time but the items.
    assert status.tally.cache_write_1h_tokens == 0
    assert status.cache_hit_rate is not None and status.cache_hit_rate > 0.99
    log = rig.emulator.recent()
    warm_at = next(i for i, r in enumerate(log) if r["route"] == "messages")
    create_at = next(i for i, r in enumerate(log) if "batch_id" in r)
    assert warm_at < create_at  # the warm-up is answered before the bulk is created
    assert status.total_usd == status.cost_usd + status.warmup_usd


async def test_cancel_stops_sending_and_collects_what_ran(
    make_env: Callable[..., Rig], tmp_path: Path
) -> None:
    rig = make_env(poll_advance_s=None)  # batches move only when the test moves the clock
    job = await asubmit(
        write_job(tmp_path / "j.jsonl", 30), env=rig.env, api_key=KEY, max_per_batch=10
    )
    assert len(rig.batches()) == 3  # all sent, none ended
    status = await job.cancel()
    assert status.state == "canceling"
    rig.emulator.clock.advance(60)  # the cancellations take effect
    status = await job.wait()
    assert status.state == "canceled"
    assert status.requests["canceled"] == 30
    assert {x["result"]["type"] for x in job.results()} == {"canceled"}
    assert status.cost_usd == 0
