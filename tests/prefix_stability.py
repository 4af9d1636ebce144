"""A suite-wide check that multi-turn traffic only ever extends the cached prefix.

Every :class:`RecordingSink` created during a test is checked when the test ends: within a
run, each call must extend the previous call's prompt (no divergence of the prefix hash chain)
unless the test is marked ``@pytest.mark.prefix_break`` (a deliberate exception, e.g. a test
that injects a timestamp to see the doctor catch it).
"""

from __future__ import annotations

from collections import defaultdict

from tokenomy.core.records import CallRecord, RunRecord

_ACTIVE: list[RecordingSink] = []


class RecordingSink:
    """A UsageSink that keeps every record in memory, and takes part in the stability check."""

    def __init__(self) -> None:
        self.runs: dict[str, RunRecord] = {}
        self.calls: list[CallRecord] = []
        _ACTIVE.append(self)

    def record_run(self, run: RunRecord) -> None:
        self.runs[run.run_id] = run

    def record_call(self, call: CallRecord) -> None:
        self.calls.append(call)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def breaks(calls: list[CallRecord]) -> list[str]:
    """Every call whose prompt does not extend the previous call of its run."""
    by_run: dict[str, list[CallRecord]] = defaultdict(list)
    for c in calls:
        by_run[c.run_id].append(c)
    out: list[str] = []
    for run_id, run_calls in by_run.items():
        for c in run_calls[1:]:
            doctor = c.decisions.get("doctor") if isinstance(c.decisions, dict) else None
            div = doctor.get("divergence") if isinstance(doctor, dict) else None
            if div and div.get("rewrites_history", True):
                out.append(
                    f"run {run_id} call {c.seq}: {div['cause']} at {div['ref']}: {div['detail']}"
                )
    return out


def take_active() -> list[RecordingSink]:
    sinks = list(_ACTIVE)
    _ACTIVE.clear()
    return sinks
