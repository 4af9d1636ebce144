"""Client-side checks: what the API would refuse inside a batch, named by field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.batch.conftest import request
from tokenomy.batch.validate import KNOWN_PARAMS, check_custom_id, check_params
from tokenomy.data import builtin_table

TABLE = builtin_table()


@dataclass(frozen=True)
class Case:
    name: str
    params: Any
    expect: str | None  # a fragment of the reason; None: valid


CASES = [
    Case("valid", request(1), None),
    Case("not an object", ["model"], "must be a JSON object"),
    Case("stream", request(1, stream=True), "params.stream is not allowed inside a Message Batch"),
    Case("stream false is fine", request(1, stream=False), None),
    Case("fast mode", request(1, speed="fast"), "params.speed is not allowed"),
    Case("unknown key", request(1, temprature=0.5), "params.temprature: unknown"),
    Case("no model", {**request(1), "model": None}, "params.model is required"),
    Case("unknown model", request(1, model="claude-nope-9"), "'claude-nope-9' is not in the model"),
    Case("max_tokens missing", {k: v for k, v in request(1).items() if k != "max_tokens"},
         "params.max_tokens is required"),
    Case("max_tokens 0", request(1, max_tokens=0), "no max_tokens: 0 pre-warm"),
    Case("max_tokens bool", request(1, max_tokens=True), "params.max_tokens is required"),
    Case("no messages", request(1, messages=[]), "params.messages must be a non-empty list"),
    Case("bad role", request(1, messages=[{"role": "bot", "content": "x"}]), "role must be"),
    Case("bad block", request(1, messages=[{"role": "user", "content": [{"text": "x"}]}]),
         "content[0] must be an object with a 'type'"),
    Case("temperature", request(1, temperature=3), "params.temperature must be a number in [0, 1]"),
    Case("top_k", request(1, top_k=-1), "params.top_k must be an integer >= 0"),
    Case("tools", request(1, tools=[{"description": "x"}]), "params.tools[0] must be an object"),
    Case("stop sequences", request(1, stop_sequences="END"), "stop_sequences must be a list"),
    Case("thinking budget", request(1, max_tokens=2000,
         thinking={"type": "enabled", "budget_tokens": 500}), "budget_tokens must be an integer"),
    Case("thinking over max", request(1, max_tokens=2000,
         thinking={"type": "enabled", "budget_tokens": 4000}), "must be less than max_tokens"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_params(case: Case) -> None:
    reason = check_params(case.params, table=TABLE)
    if case.expect is None:
        assert reason is None
    else:
        assert reason is not None and case.expect in reason


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("q1", True),
        ("a" * 64, True),
        ("with_under-score", True),
        ("a" * 65, False),
        ("", False),
        ("has space", False),
        ("dot.ted", False),
        (17, False),
        (None, False),
    ],
)
def test_custom_id_follows_the_api_pattern(value: Any, ok: bool) -> None:
    problem = check_custom_id(value)
    assert (problem is None) is ok
    if not ok and value is not None:
        assert "^[a-zA-Z0-9_-]{1,64}$" in str(problem)


def test_the_known_parameters_cover_the_installed_sdk() -> None:
    from anthropic.types import message_create_params as stable
    from anthropic.types.beta import message_create_params as beta

    sdk = set(stable.MessageCreateParamsBase.__annotations__)
    sdk |= set(beta.MessageCreateParamsBase.__annotations__)
    assert sdk <= KNOWN_PARAMS, f"add {sorted(sdk - KNOWN_PARAMS)} to KNOWN_PARAMS"
