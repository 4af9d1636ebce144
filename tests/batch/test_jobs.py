"""A whole job against the emulator: chunked, submitted, collected once, metered at half price."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select

from tests.batch.conftest import KEY, MODEL, Rig, request, write_job
from tokenomy.batch import asubmit, list_jobs, open_job
from tokenomy.batch.intake import InvalidJobError
from tokenomy.batch.jobs import parse_internal_id
from tokenomy.errors import BatchError, InputError
from tokenomy.ledger.queries import get_run
from tokenomy.ledger.schema import calls

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_job_completes_and_writes_every_result_exactly_once(
    rig: Rig, tmp_path: Path
) -> None:
    src = write_job(tmp_path / "job.jsonl", 120)
    job = await asubmit(src, env=rig.env, api_key=KEY, name="triage", max_per_batch=50)
    status = await job.wait()

    assert status.state == "ended"
    assert status.requests["succeeded"] == 120 and status.done == 120
    assert [c.n_requests for c in status.chunks] == [50, 50, 20]
    lines = list(job.results())
    assert Counter(line["custom_id"] for line in lines) == Counter(f"q{i}" for i in range(120))
    assert all(line["result"]["type"] == "succeeded" for line in lines)
    assert {line["tokenomy"]["batch_id"] for line in lines} == {c.batch_id for c in status.chunks}

    # The API saw internal ids: each chunk in exactly one batch, each request once.
    sent = rig.custom_ids()
    assert len(sent) == 3
    owners = [{parse_internal_id(cid)[:2] for cid in ids} for ids in sent]  # type: ignore[index]
    assert owners == [{(job.job_id, 1)}, {(job.job_id, 2)}, {(job.job_id, 3)}]
    assert sorted(parse_internal_id(c)[2] for ids in sent for c in ids) == list(range(120))  # type: ignore[index]


async def test_the_cost_report_shows_the_batch_discount_and_the_cache_hit_rate(
    rig: Rig, tmp_path: Path
) -> None:
    src = write_job(tmp_path / "job.jsonl", 60)
    job = await asubmit(src, env=rig.env, api_key=KEY, max_per_batch=30)
    status = await job.wait()

    assert status.cost_usd > 0
    assert status.interactive_usd == 2 * status.cost_usd  # every batch price is half
    assert status.saving_pct == 50.0
    assert status.cache_hit_rate is not None and status.cache_hit_rate > 0.9
    assert sum((c.cost_usd or Decimal(0)) for c in status.chunks) == status.cost_usd
    t = status.tally
    assert t.cache_write_1h_tokens > 0 and t.cache_write_5m_tokens == 0  # the 1h TTL

    # Every result is a call in the job's run, at batch prices; the sums agree to the digit.
    rig.env.sink.flush()  # type: ignore[union-attr]
    ledger = rig.env.ledger
    run = get_run(ledger, f"run_{job.job_id}")
    assert run is not None and run.source == "batch" and run.calls == 60
    assert run.cost_usd == status.cost_usd
    with ledger.read() as conn:
        modes = conn.execute(select(calls.c.mode, func.count()).group_by(calls.c.mode)).all()
    assert modes == [("batch", 60)]


async def test_chunks_respect_the_byte_limit(rig: Rig, tmp_path: Path) -> None:
    src = write_job(tmp_path / "job.jsonl", 40)
    one = len(orjson.dumps({"custom_id": "job000000000000-000001-00000000", "params": request(0)}))
    limit = 10 * one + 2000  # about ten requests per batch
    job = await asubmit(src, env=rig.env, api_key=KEY, max_batch_bytes=limit)
    status = await job.wait()
    assert len(status.chunks) >= 4
    assert all(c.body_bytes <= limit for c in status.chunks)
    assert status.requests["succeeded"] == 40


async def test_an_iterable_and_a_template_make_jobs_too(rig: Rig) -> None:
    template = {
        "model": MODEL,
        "max_tokens": 16,
        "system": "Label the sentiment of the review.",
        "messages": [{"role": "user", "content": "Review: {{text}}"}],
    }
    items = ({"id": f"r{i}", "text": f"review number {i}"} for i in range(7))
    job = await asubmit(items, env=rig.env, api_key=KEY, template=template)
    await job.wait()
    got = {line["custom_id"]: line["result"]["type"] for line in job.results()}
    assert got == {f"r{i}": "succeeded" for i in range(7)}
    assert job.row().source_owned  # spooled to the job's own file


async def test_an_invalid_file_is_refused_whole_naming_each_line(rig: Rig, tmp_path: Path) -> None:
    src = tmp_path / "bad.jsonl"
    good = orjson.dumps({"custom_id": "ok", "params": request(0)}).decode()
    src.write_text(
        "\n".join(
            [
                good,
                "{not json",
                good,  # duplicate custom_id
                orjson.dumps({"custom_id": "bad id!", "params": request(1)}).decode(),
                orjson.dumps({"custom_id": "s", "params": request(2, stream=True)}).decode(),
            ]
        )
    )
    with pytest.raises(InvalidJobError) as info:
        await asubmit(src, env=rig.env, api_key=KEY)
    msg = str(info.value)
    assert "4 invalid lines, nothing was submitted" in msg
    assert "line 2: not valid JSON" in msg
    assert "line 3 (custom_id 'ok'): custom_id 'ok' is also used on line 1" in msg
    assert "line 4: custom_id 'bad id!'" in msg
    assert "line 5 (custom_id 's'): params.stream is not allowed" in msg
    assert "--skip-invalid" in msg
    assert rig.batches() == []  # nothing sent
    assert list_jobs(env=rig.env) == []  # and no job left behind


async def test_skip_invalid_sends_the_rest_and_reports_what_was_skipped(
    rig: Rig, tmp_path: Path
) -> None:
    src = write_job(tmp_path / "job.jsonl", 5)
    with src.open("ab") as fh:
        fh.write(b'{"custom_id": "q9", "params": {"model": "claude-sonnet-4-6"}}\n')
    job = await asubmit(src, env=rig.env, api_key=KEY, skip_invalid=True)
    status = await job.wait()
    assert status.n_requests == 5 and status.n_skipped == 1
    assert status.skipped[0]["line"] == 6 and "max_tokens" in status.skipped[0]["reason"]
    assert len(list(job.results())) == 5


async def test_a_single_request_over_the_limit_is_invalid(rig: Rig, tmp_path: Path) -> None:
    src = write_job(tmp_path / "job.jsonl", 2)
    with pytest.raises(InvalidJobError, match=r"line 1 \(custom_id 'q0'\): the request is .* over"):
        await asubmit(src, env=rig.env, api_key=KEY, max_batch_bytes=4096)


async def test_unknown_job_ids_and_missing_files_say_what_to_do(rig: Rig, tmp_path: Path) -> None:
    with pytest.raises(BatchError, match=r"no batch job 'job404' in the ledger .*batch list"):
        open_job("job404", env=rig.env)
    with pytest.raises(InputError, match="does not exist"):
        await asubmit(tmp_path / "nope.jsonl", env=rig.env, api_key=KEY)
    with pytest.raises(BatchError, match="needs an API key"):
        await asubmit(write_job(tmp_path / "j.jsonl", 1), env=rig.env, api_key=None)


def test_the_sync_facade_works_from_plain_code(rig: Rig, tmp_path: Path) -> None:
    from tokenomy.batch import submit

    job = submit(write_job(tmp_path / "j.jsonl", 5), env=rig.env, api_key=KEY)
    status = job.wait_sync()
    assert status.state == "ended" and len(list(job.results())) == 5
    assert [s.job_id for s in list_jobs(env=rig.env)] == [job.job_id]
    job.close()  # the env is the caller's: still open
    assert open_job(job.job_id, env=rig.env).status().state == "ended"
