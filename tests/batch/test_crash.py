"""SIGKILL the runner at 20 seeded random moments; the job still ends with every result once.

The runner is a real ``tokenomy batch`` subprocess talking HTTP to the emulator served from
this process; see ``crash_driver.py``. Timing decides which window each kill lands in (the
windows hit are printed); ``test_recovery.py`` builds each window deterministically.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.batch.conftest import write_job
from tests.batch.crash_driver import crash_job, summary
from tests.emulator.harness import serve_app
from tokenomy.emulator import BatchTiming


@pytest.mark.slow
def test_sigkill_at_20_random_points_loses_nothing_and_sends_no_chunk_twice(
    tmp_path: Path,
) -> None:
    source = write_job(tmp_path / "job.jsonl", 480)
    # 40 requests per batch, one batch in flight at a time, 1 s each, expiring after 38 s: 38
    # run and 2 expire, and are retried in a batch of their own. Each poll of a running batch
    # moves the emulated clock 2.5 s, and each restart 1 s (gap_s): the job needs ~30 s of
    # runner time, more than 20 runner processes killed within 1.5 s of starting get.
    timing = BatchTiming(
        seconds_per_request=1.0, min_seconds=20.0, expiry_s=38.0, poll_advance_s=2.5
    )
    with serve_app(batch_timing=timing) as server:
        out = crash_job(
            server=server,
            source=source,
            data_dir=tmp_path / "data",
            kills=20,
            seed=20261122,
            kill_window_s=(0.0, 1.5),
            submit_args=["--max-per-batch", "40", "--max-inflight", "40"],
            run_args=["--poll-interval", "0.05", "--poll-max", "0.1", "--reconcile-settle", "1"],
            gap_s=1.0,
        )
    report = summary(out)
    print(report)
    assert out.problems == []
    # Most rounds were cut short, not finished by themselves (a fast machine finishes more).
    assert report["kills"] >= 12
    assert out.status.requests["succeeded"] == 480
    assert report["retry_chunks"] > 0  # expired requests went through the retry path too
