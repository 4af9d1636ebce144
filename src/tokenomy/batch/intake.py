"""Reading a job: every line checked, planned for caching and measured, in one streaming pass.

For each line: parse it (or fill the template), check the custom_id and the params, learn how
much of its prefix the job shares, place the breakpoints, and measure the exact bytes it will
take in a batch body. What is stored per request is small (its byte span in the file, its size,
its planning hint and segment estimates), so a job of any size is read in bounded memory.

An invalid line stops the job before anything is sent — unless ``skip_invalid``, in which
case the job goes on without it and the report lists what was skipped and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final

import orjson

from tokenomy.core.canonical import Chain, chain
from tokenomy.data.table import ModelTable
from tokenomy.errors import BatchError, InputError

from .jobs import MAX_BATCH_BYTES, JobOptions, RequestRow, envelope_bytes, internal_id
from .planning import SharedPrefixes, common_depth, plan_request
from .source import ParsedLine, RawLine, iter_lines, parse_line, read_span
from .store import JobStore
from .validate import LineProblem, check_custom_id, check_params

__all__ = ["IntakeReport", "InvalidJobError", "read_job"]

_INSERT_ROWS: Final = 2000
_KEEP_PROBLEMS: Final = 1000
_SHOW_PROBLEMS: Final = 10
_MEMO_MAX: Final = 50_000
# Requests re-read from each end of a cut-short read to learn the shared prefixes again.
_RELEARN_ROWS: Final = 500


class InvalidJobError(BatchError):
    """A job file with invalid lines (nothing was sent); ``problems`` lists them."""

    def __init__(self, problems: tuple[LineProblem, ...], *, total: int, where: str) -> None:
        shown = "; ".join(p.describe() for p in problems[:_SHOW_PROBLEMS])
        more = f" (and {total - _SHOW_PROBLEMS} more)" if total > _SHOW_PROBLEMS else ""
        super().__init__(
            f"{where}: {total} invalid line{'s' if total != 1 else ''}, nothing was submitted: "
            f"{shown}{more}. Fix them, or pass --skip-invalid to send the valid lines only"
        )
        self.problems = problems
        self.total = total


@dataclass(frozen=True, slots=True)
class IntakeReport:
    """What reading a job found."""

    n_requests: int
    skipped: tuple[LineProblem, ...]
    n_skipped: int
    body_bytes: int
    models: Mapping[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Held:
    """The first request, planned once the second one shows what they share."""

    raw: RawLine
    parsed: ParsedLine
    ch: Chain


class _Reader:
    def __init__(
        self,
        *,
        store: JobStore,
        job_id: str,
        table: ModelTable,
        options: JobOptions,
        template: Any | None,
    ) -> None:
        self.store = store
        self.job_id = job_id
        self.table = table
        self.options = options
        self.template = template
        self.shared = SharedPrefixes()
        self.memo: dict[tuple[str, int], int] = {}
        self.seen_ids: dict[str, int] = {}
        self.problems: list[LineProblem] = []
        self.n_problems = 0
        self.rows: list[RequestRow] = []
        self.seq = 0
        self.added = 0
        self.bytes = 0
        self.models: dict[str, int] = {}
        self.held: _Held | None = None
        self.line = 0
        self.limit = min(options.max_batch_bytes, MAX_BATCH_BYTES)

    def problem(self, raw: RawLine, custom_id: Any, reason: str) -> None:
        self.n_problems += 1
        if len(self.problems) < _KEEP_PROBLEMS:
            cid = custom_id if isinstance(custom_id, str) else None
            self.problems.append(LineProblem(raw.line, cid, reason))

    @property
    def storing(self) -> bool:
        # An invalid file is refused whole: stop storing rows at its first problem.
        return self.options.skip_invalid or self.n_problems == 0

    def feed(self, raw: RawLine) -> None:
        try:
            parsed = parse_line(raw, template=self.template)
        except InputError as exc:
            self.problem(raw, None, str(exc))
            return
        cid_problem = check_custom_id(parsed.custom_id)
        if cid_problem is not None:
            self.problem(raw, None, cid_problem)
            return
        cid: str = parsed.custom_id
        first = self.seen_ids.get(cid)
        if first is not None:
            self.problem(
                raw, cid, f"custom_id {cid!r} is also used on line {first}; each must be unique"
            )
            return
        params_problem = check_params(parsed.params, table=self.table)
        if params_problem is not None:
            self.problem(raw, cid, params_problem)
            return
        self.seen_ids[cid] = raw.line
        ch = chain(parsed.params)
        shared = self.shared.observe(ch)
        if self.held is None and self.seq == 0:
            self.held = _Held(raw, parsed, ch)
            self.seq = 1  # the held request is seq 0
            return
        if self.held is not None:
            held, self.held = self.held, None
            self.add(held.raw, held.parsed, held.ch, common_depth(held.ch, ch), seq=0)
        self.add(raw, parsed, ch, shared, seq=self.seq)
        self.seq += 1

    def add(self, raw: RawLine, parsed: ParsedLine, ch: Chain, shared: int, *, seq: int) -> None:
        params = parsed.params
        planned = plan_request(
            params,
            table=self.table,
            shared_end=shared,
            ttl=self.options.cache_ttl,
            request_chain=ch,
            memo=self.memo,
        )
        item = orjson.dumps(
            {"custom_id": internal_id(self.job_id, 0, seq), "params": planned.params}
        )
        size = len(item)
        if envelope_bytes((size,)) > self.limit:
            limit_name = (
                "the API's 256 MB per batch"
                if self.limit == MAX_BATCH_BYTES
                else f"--max-batch-bytes {self.limit:,}"
            )
            self.problem(raw, parsed.custom_id, f"the request is {size:,} bytes, over {limit_name}")
            return
        if len(self.memo) > _MEMO_MAX:
            self.memo.clear()  # estimates of blocks seen once; the shared ones come back
        model = str(params["model"])
        self.models[model] = self.models.get(model, 0) + 1
        self.added += 1
        self.bytes += size
        if not self.storing:
            return
        est = planned.estimated
        self.rows.append(
            RequestRow(
                seq=seq,
                custom_id=parsed.custom_id,
                line=raw.line,
                byte_offset=raw.offset,
                byte_length=len(raw.data),
                body_bytes=size,
                model=model,
                shared_end=shared,
                est_tools=est.tools,
                est_system=est.system,
                est_history=est.history,
                est_new=est.new,
                prefix_hash=planned.prefix_hash,
                breakpoints=",".join(planned.breakpoints),
            )
        )
        if len(self.rows) >= _INSERT_ROWS:
            self.flush()

    def finish(self) -> None:
        if self.held is not None:
            held, self.held = self.held, None
            self.add(held.raw, held.parsed, held.ch, -1, seq=0)
        self.flush()

    def flush(self) -> None:
        if self.storing:
            # Rows go in by seq (the held first request may come after seq 1's row), with the
            # lines skipped so far: a resumed read goes on from the last stored row.
            self.store.insert_requests(
                self.job_id,
                sorted(self.rows, key=lambda r: r.seq),
                skipped=[p.to_json() for p in self.problems],
                n_skipped=self.n_problems,
            )
        self.rows = []

    def restore(self, fh: BinaryIO, skipped: Sequence[Mapping[str, Any]], n_skipped: int) -> int:
        """Pick up a read a crash cut short; returns the offset to go on from (0: the start).

        Costs the same however far the read got: the custom ids come back from one narrow
        query, and the shared prefixes are learnt again from the first and last stored
        requests only (a shared prefix shows in both; the stored rows keep their own hints).
        """
        for cid, line in self.store.custom_ids(self.job_id):
            self.seen_ids[cid] = line
            self.added += 1
        if not self.added:
            return 0
        edges = self.store.edge_requests(self.job_id, n=_RELEARN_ROWS)
        for r in edges:
            raw = RawLine(r.line, r.byte_offset, read_span(fh, r.byte_offset, r.byte_length))
            self.shared.observe(chain(parse_line(raw, template=self.template).params))
        last = edges[-1]
        self.seq = last.seq + 1
        self.line = last.line
        self.problems = [
            LineProblem(int(p["line"]), p.get("custom_id"), str(p["reason"])) for p in skipped
        ]
        self.n_problems = n_skipped
        fh.seek(last.byte_offset)
        fh.readline()  # the rest of the last stored line
        return fh.tell()


def read_job(
    path: Path,
    *,
    store: JobStore,
    job_id: str,
    table: ModelTable,
    options: JobOptions,
    template: Any | None,
    resume: bool = False,
) -> IntakeReport:
    """Check, plan and record every request of ``path``; raises :class:`InvalidJobError`.

    ``resume``: go on after the requests already stored (a read cut short by a crash).
    """
    reader = _Reader(store=store, job_id=job_id, table=table, options=options, template=template)
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read the job file {str(path)!r}: {exc.strerror}") from None
    with fh:
        start = 0
        if resume:
            job = store.get(job_id)
            start = reader.restore(fh, job.skipped, job.n_skipped)
        if start == 0:
            store.clear_requests(job_id)
        fh.seek(start)
        for raw in iter_lines(fh, offset=start, first_line=reader.line + 1):
            reader.feed(raw)
    reader.finish()
    problems = tuple(reader.problems)
    if reader.n_problems and not options.skip_invalid:
        raise InvalidJobError(problems, total=reader.n_problems, where=str(path))
    n_requests, body_bytes, models = store.intake_totals(job_id)
    if n_requests == 0:
        raise BatchError(
            f"{path}: no request to send"
            + (f" ({reader.n_problems} invalid lines skipped)" if reader.n_problems else "")
            + "; a job file has one JSON line per request"
        )
    return IntakeReport(
        n_requests=n_requests,
        skipped=problems,
        n_skipped=reader.n_problems,
        body_bytes=body_bytes,
        models=dict(sorted(models.items())),
    )
