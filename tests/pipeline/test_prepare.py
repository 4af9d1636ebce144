"""Pipeline.prepare: a body the transport has already decoded is planned exactly like its bytes."""

from __future__ import annotations

import itertools

import orjson

from tokenomy.data import builtin_table
from tokenomy.pipeline import CallContext, Pipeline, PipelineConfig
from tokenomy.pipeline.clock import FollowClock

SYSTEM = [{"type": "text", "text": "You are terse. " * 400}]
TURNS = [
    {"role": "user", "content": "first question " * 50},
    {"role": "assistant", "content": [{"type": "text", "text": "an answer " * 50}]},
    {"role": "user", "content": "and a second one"},
]


def _pipeline() -> Pipeline:
    ids = itertools.count()
    return Pipeline(
        table=builtin_table(),
        clock=FollowClock(lambda: 100.0),
        config=PipelineConfig(),
        new_id=lambda prefix: f"{prefix}_{next(ids)}",
    )


def test_a_decoded_body_is_planned_as_its_bytes_and_left_unchanged() -> None:
    outcomes = []
    for pass_decoded in (False, True):
        pipeline = _pipeline()
        run = pipeline.start_run("r")
        sent = []
        for n in (1, 3):
            request = {"model": "claude-sonnet-4-6", "max_tokens": 64, "system": SYSTEM}
            request["messages"] = TURNS[:n]
            body = orjson.dumps(request)
            before = orjson.dumps(request)
            p = pipeline.prepare(
                CallContext(
                    method="POST",
                    path="/v1/messages",
                    body=body,
                    request=request if pass_decoded else None,
                ),
                run=run,
            )
            assert orjson.dumps(request) == before  # the caller's object is never modified
            sent.append((p.body, p.decisions, p.body != body))
        outcomes.append(sent)
    assert outcomes[0] == outcomes[1]
    assert all(changed for _, _, changed in outcomes[0])  # the planner placed breakpoints
