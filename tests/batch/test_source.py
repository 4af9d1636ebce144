"""Reading job files by byte span, and filling templates."""

from __future__ import annotations

import io
from typing import Any

import pytest

from tokenomy.batch.source import (
    LineError,
    RawLine,
    check_template,
    iter_lines,
    parse_line,
    read_span,
    render_template,
)
from tokenomy.errors import InputError


def test_lines_come_with_numbers_and_offsets_that_read_them_back() -> None:
    data = b'{"a":1}\n\n  \r\n{"b":2}\r\n{"c":3}'
    lines = list(iter_lines(io.BytesIO(data)))
    assert [(r.line, r.data) for r in lines] == [(1, b'{"a":1}'), (4, b'{"b":2}'), (5, b'{"c":3}')]
    fh = io.BytesIO(data)
    for r in lines:
        assert read_span(fh, r.offset, len(r.data)) == r.data


def test_a_file_that_shrank_is_reported() -> None:
    with pytest.raises(InputError, match="changed since the job was submitted"):
        read_span(io.BytesIO(b"short"), 2, 10)


TEMPLATE: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "max_tokens": "{{budget}}",
    "system": "You grade essays. Rubric: {{rubric}}",
    "messages": [{"role": "user", "content": "{{essay}}"}],
}


def test_a_whole_string_placeholder_takes_the_json_value_and_others_take_text() -> None:
    out = render_template(TEMPLATE, {"budget": 64, "rubric": {"max": 5}, "essay": "Hello"})
    assert out["max_tokens"] == 64
    assert out["system"] == 'You grade essays. Rubric: {"max":5}'
    assert out["messages"][0]["content"] == "Hello"
    assert TEMPLATE["max_tokens"] == "{{budget}}"  # the template is not changed


def test_a_plain_value_fills_item_and_dotted_names_reach_into_objects() -> None:
    plain = {"messages": [{"role": "user", "content": "Summarise: {{item}}"}]}
    assert render_template(plain, "x")["messages"][0]["content"] == "Summarise: x"
    tpl = {"messages": [{"role": "user", "content": "{{item}} / {{ meta.lang }}"}]}
    out = render_template(tpl, {"item": "doc", "meta": {"lang": "fr"}})
    assert out["messages"][0]["content"] == "doc / fr"


def test_a_missing_field_names_the_placeholder() -> None:
    with pytest.raises(LineError, match=r"\{\{essay\}\} has no value"):
        render_template(TEMPLATE, {"budget": 1, "rubric": "r"})


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "each line must be an object"),
        (b'{"custom_id": "a", "params": {}, "extra": 1}', "unexpected field 'extra'"),
        (b'{"custom_id": "a"}', "no 'params'"),
    ],
)
def test_bad_lines_say_what_is_wrong(data: bytes, fragment: str) -> None:
    with pytest.raises(LineError, match=fragment):
        parse_line(RawLine(7, 0, data), template=None)


def test_items_with_a_template_take_their_custom_id_or_id_or_the_line_number() -> None:
    tpl = check_template({"custom_id": "x", "params": TEMPLATE})  # a whole batch line works too
    item = b'{"budget": 8, "rubric": "r", "essay": "e"}'
    assert parse_line(RawLine(3, 0, item), template=tpl).custom_id == "item-3"
    with_id = b'{"id": 42, "budget": 8, "rubric": "r", "essay": "e"}'
    assert parse_line(RawLine(3, 0, with_id), template=tpl).custom_id == "42"
    with_cid = b'{"custom_id": "e-1", "budget": 8, "rubric": "r", "essay": "e"}'
    assert parse_line(RawLine(3, 0, with_cid), template=tpl).custom_id == "e-1"


def test_a_template_must_be_a_whole_request() -> None:
    with pytest.raises(InputError, match="has no 'messages'"):
        check_template({"model": "m"})
