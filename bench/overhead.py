"""Library overhead per call: stabilize + plan + predict + doctor + meter, no I/O.

An agent run grows one tool round trip per turn until its request holds 100 blocks (~100 KB);
every call goes through ``Pipeline.prepare`` / ``started`` / ``finish`` with the usage a
faithful server would bill. Reported: the median and p99 per call at 100 blocks, split into
prepare and finish, next to the floor any JSON-rewriting proxy pays (parse + serialise the
body), measured in the same run. Target: under 1 ms per call for a 100-block request.

    .venv/bin/python bench/overhead.py [--calls N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import orjson

from _report import markdown_table, print_table, publish
from tokenomy.core.records import CallRecord, RunRecord
from tokenomy.core.usage import Usage
from tokenomy.data import builtin_table
from tokenomy.pipeline import CallContext, ManualClock, Pipeline, ResponseFacts


class NullSink:
    def record_run(self, run: RunRecord) -> None: ...
    def record_call(self, call: CallRecord) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


def words(n: int, seed: int) -> str:
    vocab = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split(" ")
    return " ".join(vocab[(seed * 7 + i * 13) % len(vocab)] for i in range(n))


def base_request() -> dict[str, Any]:
    tools = [
        {
            "name": f"tool_{i}",
            "description": words(150, i),
            "input_schema": {
                "type": "object",
                "properties": {"q": {"type": "string"}},
                "required": ["q"],
            },
        }
        for i in range(10)
    ]
    system = [{"type": "text", "text": words(1500, 1)}, {"type": "text", "text": words(300, 2)}]
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 1024,
        "tools": tools,
        "system": system,
        "messages": [{"role": "user", "content": "Investigate."}],
    }


def grow(req: dict[str, Any], turn: int) -> dict[str, Any]:
    msgs = list(req["messages"])
    msgs.append(
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": f"toolu_{turn}",
                    "name": "tool_1",
                    "input": {"q": f"query {turn}"},
                }
            ],
        }
    )
    msgs.append(
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": f"toolu_{turn}", "content": words(160, turn)}
            ],
        }
    )
    return {**req, "messages": msgs}


def blocks(req: dict[str, Any]) -> int:
    n = len(req["tools"]) + len(req["system"])
    for m in req["messages"]:
        n += 1 if isinstance(m["content"], str) else len(m["content"])
    return n


def run(calls: int) -> dict[str, Any]:
    clock = ManualClock()
    pipeline = Pipeline(table=builtin_table(), clock=clock, sink=NullSink())
    prepare_us: list[float] = []
    finish_us: list[float] = []
    floor_us: list[float] = []
    sizes: list[int] = []
    req = base_request()
    turn = 0
    while blocks(req) < 100:
        turn += 1
        req = grow(req, turn)
    runs = 0
    while len(prepare_us) < calls:
        runs += 1
        with pipeline.start_run(f"bench-{runs}") as r:
            cur = base_request()
            for t in range(1, turn + 1):
                cur = grow(cur, t)
                body = orjson.dumps(cur)
                t0 = time.perf_counter_ns()
                p = pipeline.prepare(
                    CallContext("POST", "/v1/messages", body, api_key="sk-bench"), run=r
                )
                t1 = time.perf_counter_ns()
                pipeline.started(p)
                pred = p.prediction
                assert pred is not None
                usage = Usage(
                    input_tokens=pred.uncached_tokens,
                    cache_read_tokens=pred.read_tokens,
                    cache_write_5m_tokens=pred.write_5m_tokens,
                    cache_write_1h_tokens=pred.write_1h_tokens,
                    output_tokens=50,
                )
                facts = ResponseFacts(
                    usage=usage,
                    message_id="msg_x",
                    model="claude-sonnet-4-6",
                    stop_reason="tool_use",
                    complete=True,
                )
                t2 = time.perf_counter_ns()
                pipeline.finish(p, status=200, facts=facts)
                t3 = time.perf_counter_ns()
                orjson.dumps(orjson.loads(body))
                t4 = time.perf_counter_ns()
                clock.advance(15)
                if blocks(cur) >= 100:
                    prepare_us.append((t1 - t0) / 1000)
                    finish_us.append((t3 - t2) / 1000)
                    floor_us.append((t4 - t3) / 1000)
                    sizes.append(len(body))
    total = [a + b for a, b in zip(prepare_us, finish_us, strict=True)]

    def q(xs: list[float], p: float) -> float:
        return statistics.quantiles(xs, n=100)[int(p) - 1] if len(xs) > 1 else xs[0]

    return {
        "calls_measured": len(total),
        "blocks": 100,
        "body_bytes": int(statistics.median(sizes)),
        "prepare_us_p50": statistics.median(prepare_us),
        "finish_us_p50": statistics.median(finish_us),
        "total_us_p50": statistics.median(total),
        "total_us_p99": q(total, 99),
        "json_floor_us_p50": statistics.median(floor_us),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=300, help="calls measured at 100 blocks")
    args = ap.parse_args()
    r = run(args.calls)
    ratio = r["total_us_p50"] / r["json_floor_us_p50"]
    rows = [
        [
            "pipeline per call (prepare + finish)",
            f"{r['total_us_p50']:.0f} µs",
            f"{r['total_us_p99']:.0f} µs",
        ],
        ["  prepare (stabilize, plan)", f"{r['prepare_us_p50']:.0f} µs", ""],
        ["  finish (cost, segments, doctor, meter)", f"{r['finish_us_p50']:.0f} µs", ""],
        ["JSON parse + serialise of the body (floor)", f"{r['json_floor_us_p50']:.0f} µs", ""],
        ["pipeline / floor", f"{ratio:.1f}x", ""],
    ]
    cols = ["per call, 100 blocks", "p50", "p99"]
    print_table(
        f"Library overhead ({r['calls_measured']} calls at 100 blocks, {r['body_bytes']:,} B)",
        cols,
        rows,
    )
    verdict = "meets" if r["total_us_p50"] < 1000 else "MISSES"
    body = markdown_table(cols, rows) + (
        f"\n\n{r['calls_measured']} calls measured at 100 blocks "
        f"(~{r['body_bytes']:,} bytes each), "
        f"in runs that grow one tool round trip per turn. Target p50 < 1 ms: **{verdict}**."
    )
    publish(
        "overhead",
        title="Library overhead per call (bench/overhead.py)",
        command="make bench  # or: .venv/bin/python bench/overhead.py",
        body_md=body,
        data=r,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
