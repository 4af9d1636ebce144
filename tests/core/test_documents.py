"""``price_text``: whatever a user pastes, priced exactly (``tokenomy.core.documents``)."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from tokenomy.core.documents import PricedDocument, price_text
from tokenomy.core.pricing import CostBreakdown, Unpriced
from tokenomy.data import builtin_table
from tokenomy.errors import InputError

M = D(1_000_000)
TABLE = builtin_table()
FIXTURES = Path(__file__).parent.parent / "fixtures" / "usage"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text("utf-8")


def _price(text: str, **kwargs: Any) -> PricedDocument:
    return price_text(text, table=TABLE, **kwargs)


def _one(doc: PricedDocument) -> CostBreakdown:
    assert len(doc.items) == 1
    c = doc.items[0].cost
    assert isinstance(c, CostBreakdown)
    return c


# ---------------------------------------------------------------------- shapes


def test_a_bare_usage_object_needs_a_model() -> None:
    text = json.dumps({"input_tokens": 1000, "output_tokens": 100})
    doc = _price(text, model="claude-sonnet-5")
    assert doc.items[0].kind == "usage"
    assert doc.total_usd == (D(1000) * D("2") + D(100) * D("10")) / M
    with pytest.raises(InputError, match="pass --model"):
        _price(text)


def test_a_whole_response_names_its_model() -> None:
    doc = _price(fixture("response_opus5.json"))
    it = doc.items[0]
    assert (it.kind, it.model, it.line) == ("message", "claude-opus-5", None)
    c = _one(doc)
    # Opus 5: $5 in, $6.25 5m write, $25 out; one web search at $10 per 1,000
    assert c.input_usd == D(1500) * D("5") / M
    assert c.cache_write_5m_usd == D(2048) * D("6.25") / M
    assert c.output_usd == D(320) * D("25") / M
    assert c.server_tools_usd == D("0.01")
    assert doc.total_usd == D("0.0383")


def test_model_option_overrides_the_model_a_response_names() -> None:
    doc = _price(fixture("response_opus5.json"), model="claude-opus-4-1")
    assert doc.items[0].model == "claude-opus-4-1"
    assert _one(doc).input_usd == D(1500) * D("15") / M


def test_a_raw_sse_stream() -> None:
    doc = _price(fixture("stream_sonnet46.txt"))
    it = doc.items[0]
    assert (it.kind, it.model) == ("stream", "claude-sonnet-4-6")
    # the last cumulative message_delta wins: 510 output tokens, not 5 + 120 + 510
    assert it.usage.output_tokens == 510
    c = _one(doc)
    assert c.cache_read_usd == D(40000) * D("0.30") / M
    assert (
        doc.total_usd
        == (D(12) * D("3") + D(3000) * D("3.75") + D(40000) * D("0.30") + D(510) * D("15")) / M
    )
    assert doc.total_usd == D("0.030936")


def test_batch_results_jsonl_prices_what_succeeded_at_batch_rates() -> None:
    doc = _price(fixture("batch_results.jsonl"))
    assert [(it.line, it.kind, it.model) for it in doc.items] == [
        (1, "batch_result", "claude-haiku-4-5-20251001"),
        (3, "batch_result", "claude-opus-4-6"),
    ]
    haiku = (
        D(1000) * D("1") * D("0.5")
        + D(2000) * D("2") * D("0.5")
        + D(10000) * D("0.10") * D("0.5")
        + D(500) * D("5") * D("0.5")
    ) / M
    opus = (D(300) * D("5") * D("0.5") + D(40) * D("25") * D("0.5")) / M
    assert doc.items[0].cost.total_usd == haiku
    assert doc.items[1].cost.total_usd == opus
    assert doc.total_usd == D("0.0055")
    assert len(doc.skipped) == 3
    assert all("did not succeed" in why for why in doc.skipped)


def test_claude_code_transcript() -> None:
    doc = _price(fixture("claude_code_session.jsonl"))
    assert [it.kind for it in doc.items] == ["claude_code_line"] * len(doc.items)
    kinds = " | ".join(doc.skipped)
    assert "no usage" in kinds
    assert "<synthetic>" in kinds


def test_claude_code_streamed_copies_of_one_response_are_counted_once() -> None:
    """One API response can be written as several lines repeating its usage (reference §10.3).

    They share message.id and requestId; the copy with the largest token total is kept,
    because early copies carry partial output counts (output_tokens: 1).
    """
    doc = _price(fixture("claude_code_session.jsonl"))
    assert [(it.line, it.usage.output_tokens) for it in doc.items] == [(3, 245), (4, 80)]
    assert any("line 2" in why and "line 3" in why for why in doc.skipped)
    # Opus 4.5: $5 in, $10 1h write, $0.50 read, $25 out
    msg_a = D(2) * D("5") + D(10408) * D("10") + D(14265) * D("0.50") + D(245) * D("25")
    msg_b = D(5) * D("5") + D(24673) * D("0.50") + D(80) * D("25")
    assert doc.total_usd == (msg_a + msg_b) / M
    assert doc.total_usd == D("0.131709")


def test_claude_code_copies_keep_the_largest_whatever_the_order() -> None:
    lines = fixture("claude_code_session.jsonl").splitlines()
    swapped = "\n".join([lines[0], lines[2], lines[1], *lines[3:]])
    doc = _price(swapped)
    assert [(it.line, it.usage.output_tokens) for it in doc.items] == [(2, 245), (4, 80)]


def test_lines_without_request_id_are_not_merged() -> None:
    line = json.loads(fixture("claude_code_session.jsonl").splitlines()[3])
    del line["requestId"]
    text = "\n".join([json.dumps(line)] * 2)
    assert len(_price(text).items) == 2


def test_jsonl_mixing_shapes() -> None:
    text = "\n".join(
        [
            json.dumps(
                {"model": "claude-sonnet-4-6", "usage": {"input_tokens": 10, "output_tokens": 1}}
            ),
            "",
            json.loads(json.dumps(fixture("batch_results.jsonl").splitlines()[0])),
            json.dumps({"hello": "world"}),
        ]
    )
    doc = _price(text)
    assert [(it.line, it.kind) for it in doc.items] == [(1, "message"), (3, "batch_result")]
    assert doc.skipped == ("line 4: no usage in this line",)


def test_batch_option_prices_everything_at_batch_rates() -> None:
    doc = _price(
        json.dumps({"input_tokens": 1_000_000, "output_tokens": 0}),
        model="claude-opus-4-6",
        batch=True,
    )
    assert doc.total_usd == D("2.50")
    assert _one(doc).modifiers == ("batch",)


def test_unknown_model_is_unpriced_and_the_document_total_is_none() -> None:
    text = "\n".join(
        [
            json.dumps(
                {"model": "claude-sonnet-4-6", "usage": {"input_tokens": 10, "output_tokens": 1}}
            ),
            json.dumps(
                {"model": "claude-opus-9", "usage": {"input_tokens": 10, "output_tokens": 1}}
            ),
        ]
    )
    doc = _price(text)
    assert isinstance(doc.items[1].cost, Unpriced)
    assert doc.total_usd is None


def test_unknown_fields_are_rejected_unless_lenient() -> None:
    text = json.dumps({"input_tokens": 1, "output_token": 1, "cache_read_input_tokens": 5})
    with pytest.raises(InputError, match="did you mean 'output_tokens'"):
        _price(text, model="claude-sonnet-4-6")
    doc = _price(text, model="claude-sonnet-4-6", strict=False)
    assert doc.items[0].usage.unknown_fields == ("output_token",)


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the input is empty"),
        ("  \n\t ", "the input is empty"),
        ('{"input_tokens": 5,', "line 1: not valid JSON"),
        ('{"input_tokens": 5}\n{oops', "line 2: not valid JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('"text"', "expected a JSON object, got str"),
        ('{"hello": "world"}', "the JSON holds no usage"),
        ('{"input_tokens": -5, "output_tokens": 1}', "negative (-5)"),
        ('{"input_tokens": "5", "output_tokens": 1}', "input_tokens must be a whole number"),
        ('{"a": 1}\n{"b": 2}', "no line holds a usage object"),
        ("event: ping\ndata: {}\n\n", "no message_start"),
        ("event: message_start\ndata: {not json\n\n", "not JSON"),
    ],
)
def test_bad_input_is_one_clear_input_error(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _price(text, model="claude-sonnet-4-6")


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"custom_id": "r", "result": {"type": "errored", "error": {}}}, "did not succeed"),
        ({"custom_id": "r", "result": {"type": "expired"}}, "did not succeed"),
        (
            {
                "type": "assistant",
                "message": {
                    "model": "<synthetic>",
                    "usage": {"input_tokens": 0, "output_tokens": 0},
                },
            },
            "<synthetic>",
        ),
        ({"type": "assistant", "message": {"model": "claude-opus-4-5"}}, "without usage"),
    ],
    ids=["errored", "expired", "synthetic", "assistant-without-usage"],
)
def test_a_single_document_with_nothing_billed_is_an_input_error(
    obj: dict[str, Any], message: str
) -> None:
    """A one-line file of an errored batch row used to escape as an internal exception."""
    with pytest.raises(InputError, match="nothing to price") as info:
        _price(json.dumps(obj))
    assert message in str(info.value)


def test_stream_without_model_needs_one() -> None:
    text = fixture("stream_sonnet46.txt").replace('"model":"claude-sonnet-4-6",', "")
    with pytest.raises(InputError, match="pass --model"):
        _price(text)
    assert _price(text, model="claude-sonnet-4-6").total_usd == D("0.030936")


def test_stream_with_bad_usage_is_an_input_error() -> None:
    text = fixture("stream_sonnet46.txt").replace('"output_tokens":510', '"output_tokens":-1')
    with pytest.raises(InputError, match="negative"):
        _price(text)
