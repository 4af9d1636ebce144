"""Brains: echo, script, facts — pure, then through the SDK with the ``x-tokenomy-brain`` header."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import pytest
from starlette.applications import Starlette

from tests.emulator.harness import TEST_KEY, serve_app
from tokenomy.emulator import (
    BrainRequest,
    EchoBrain,
    FactsBrain,
    TextOut,
    ThinkingOut,
    ToolUseOut,
    load_brain,
    load_script,
)
from tokenomy.emulator.brains import parse_script
from tokenomy.emulator.brains.facts import read_knowledge
from tokenomy.emulator.brains.schema import sample_from_schema
from tokenomy.errors import ConfigError

MODEL = "claude-sonnet-4-6"
SCENARIO = Path(__file__).parent.parent / "fixtures" / "emulator" / "weather_scenario.yaml"


def req(messages: list[dict[str, Any]], **extra: Any) -> BrainRequest:
    return BrainRequest(body={"model": MODEL, "messages": messages, **extra}, model_name=MODEL)


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def texts(reply: Any) -> str:
    return "\n".join(b.text for b in reply.blocks if isinstance(b, TextOut))


# -- echo --------------------------------------------------------------------------------------


def test_echo_replies_to_the_last_prompt_block() -> None:
    r = EchoBrain().reply(
        req(
            [
                user(
                    [
                        {"type": "text", "text": "<system-reminder>x</system-reminder>"},
                        {"type": "text", "text": "say   hi"},
                    ]
                )
            ]
        )
    )
    assert texts(r) == "Echo: say hi" and r.inferred_stop_reason == "end_turn"


def test_echo_truncates_long_prompts() -> None:
    r = EchoBrain().reply(req([user("word " * 500)]))
    assert len(texts(r)) <= len("Echo: ") + 200 and texts(r).endswith("…")


def test_echo_answers_json_when_asked() -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 20},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "score": {"type": "integer", "minimum": 3},
            "mode": {"enum": ["fast", "slow"]},
            "when": {"type": "string", "format": "date-time"},
            "note": {"anyOf": [{"type": "null"}, {"type": "string"}]},
        },
        "required": ["title", "tags"],
        "additionalProperties": False,
    }
    r = EchoBrain().reply(
        req(
            [user("please fix the failing login test quickly")],
            output_config={"format": {"type": "json_schema", "schema": schema}},
        )
    )
    value = json.loads(texts(r))
    assert value["title"] == "Please fix the failing login"[:20]
    assert len(value["tags"]) == 2 and value["score"] == 3 and value["mode"] == "fast"
    assert value["when"] == "2026-01-01T00:00:00Z" and isinstance(value["note"], str)


def test_echo_calls_a_forced_tool() -> None:
    tools = [
        {
            "name": "search",
            "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
        },
        {
            "name": "get_weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    ]
    any_tool = EchoBrain().reply(req([user("Paris?")], tools=tools, tool_choice={"type": "any"}))
    call = next(b for b in any_tool.blocks if isinstance(b, ToolUseOut))
    assert call.name == "search" and call.input == {"q": "Paris?"}
    assert any_tool.inferred_stop_reason == "tool_use"
    named = EchoBrain().reply(
        req([user("Paris?")], tools=tools, tool_choice={"type": "tool", "name": "get_weather"})
    )
    assert [b.name for b in named.blocks if isinstance(b, ToolUseOut)] == ["get_weather"]
    asked = EchoBrain().reply(req([user("please use get_weather for Paris")], tools=tools))
    assert [b.name for b in asked.blocks if isinstance(b, ToolUseOut)] == ["get_weather"]
    plain = EchoBrain().reply(req([user("weather in Paris")], tools=tools))
    assert not any(isinstance(b, ToolUseOut) for b in plain.blocks)
    none = EchoBrain().reply(
        req([user("use get_weather")], tools=tools, tool_choice={"type": "none"})
    )
    assert not any(isinstance(b, ToolUseOut) for b in none.blocks)


def test_echo_acknowledges_tool_results() -> None:
    r = EchoBrain().reply(
        req(
            [
                user("weather?"),
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "w", "input": {}}],
                },
                user(
                    [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t1",
                            "content": [{"type": "text", "text": "rain"}],
                        }
                    ]
                ),
            ]
        )
    )
    assert texts(r) == "Tool result received: rain"


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string"}, "hint"),
        ({"type": ["null", "integer"]}, 1),
        ({"type": "number", "maximum": 0.5}, 0.5),
        ({"type": "boolean"}, True),
        ({"const": 7}, 7),
        ({"type": "string", "minLength": 6}, "hintxx"),
        ({"$ref": "#/$defs/a", "$defs": {"a": {"type": "integer"}}}, 1),
        (
            {"allOf": [{"properties": {"a": {"type": "integer"}}}, {"required": ["b"]}]},
            {"a": 1, "b": "hint"},
        ),
        ({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]}, [1, "hint"]),
        ({"type": "object"}, {}),
        (True, "hint"),
    ],
)
def test_schema_sampler(schema: Any, expected: Any) -> None:
    assert sample_from_schema(schema, hint="hint") == expected


def test_schema_sampler_survives_recursive_refs() -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "child": {"$ref": "#"}}}
    value = sample_from_schema(schema)
    depth = 0
    while isinstance(value, dict) and "child" in value:
        value, depth = value["child"], depth + 1
    assert isinstance(value, dict) and 1 <= depth <= 4


# -- script ------------------------------------------------------------------------------------


def test_script_matches_rules_in_order() -> None:
    brain = load_script(SCENARIO)
    assert brain.name == "weather"
    first = brain.reply(req([user("What's the weather in Paris?")]))
    call = next(b for b in first.blocks if isinstance(b, ToolUseOut))
    assert (call.name, dict(call.input), call.id) == ("get_weather", {"city": "Paris"}, None)
    assert first.inferred_stop_reason == "tool_use"
    second = brain.reply(
        req(
            [
                user("What's the weather in Paris?"),
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "t", "name": "get_weather", "input": {}}
                    ],
                },
                user([{"type": "tool_result", "tool_use_id": "t", "content": "sunny"}]),
            ]
        )
    )
    assert texts(second) == "It is sunny in Paris."
    bye = brain.reply(req([user("x"), {"role": "assistant", "content": "y"}, user("bye now")]))
    assert texts(bye) == "Goodbye." and bye.stop_reason == "end_turn"
    other = brain.reply(req([user("x"), {"role": "assistant", "content": "y"}, user("hmm")]))
    assert texts(other) == "I have nothing scripted for this."


def test_script_thinking_and_stop_reasons() -> None:
    brain = parse_script(
        {
            "turns": [
                {
                    "content": [{"thinking": "hm"}, {"text": "partial"}],
                    "stop_reason": "stop_sequence",
                    "stop_sequence": "END",
                }
            ]
        }
    )
    r = brain.reply(req([user("x")]))
    assert isinstance(r.blocks[0], ThinkingOut)
    assert (r.stop_reason, r.stop_sequence) == ("stop_sequence", "END")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([], "mapping"),
        ({"turns": {}}, "list"),
        ({"turns": [{"match": {"turn": -1}, "say": "x"}]}, "turn"),
        ({"turns": [{"match": {"regex": "("}, "say": "x"}]}, "regex"),
        ({"turns": [{"match": {"colour": "red"}, "say": "x"}]}, "colour"),
        ({"turns": [{"say": 3}]}, "say"),
        ({"turns": [{}]}, "needs"),
        ({"turns": [{"say": "x", "stop_reason": "because"}]}, "stop_reason"),
        ({"turns": [{"content": [{"tool_use": {"input": {}}}]}]}, "name"),
        ({"turns": [{"content": [{"image": "x"}]}]}, "unknown item"),
        ({"turn": []}, "unknown keys"),
    ],
)
def test_script_errors_name_the_problem(data: Any, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_script(data, source="s.yaml")
    assert fragment in str(err.value) and "s.yaml" in str(err.value)


def test_load_brain_by_name_or_file(tmp_path: Path) -> None:
    assert load_brain("echo").name == "echo"
    assert load_brain("facts").name == "facts"
    assert load_brain(str(SCENARIO)).name == "weather"
    with pytest.raises(ConfigError, match="unknown brain"):
        load_brain("nobody")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match=r"bad\.json"):
        load_brain(str(bad))


# -- facts -------------------------------------------------------------------------------------


FETCH = {
    "name": "fetch_artifact",
    "description": "Fetch an artifact by id.",
    "input_schema": {
        "type": "object",
        "properties": {"artifact_id": {"type": "string"}, "reason": {"type": "string"}},
        "required": ["artifact_id"],
    },
}


def test_knowledge_reads_every_marker() -> None:
    k = read_knowledge(
        [
            "⟦fact:color=blue⟧ ⟦fact:size= large ⟧ ⟦ref:doc-1⟧ ⟦ref:doc-2|alpha, beta⟧",
            "⟦artifact:doc-3⟧ ⟦fact:color=red⟧ ⟦ref:doc-1|gamma⟧ ⟦ask:x⟧ ⟦ask:color,size⟧",
        ]
    )
    assert k.facts == {"color": "red", "size": "large"}
    assert k.refs == {"doc-1": ("gamma",), "doc-2": ("alpha", "beta")}
    assert k.artifacts == {"doc-3"}
    assert k.question == ("color", "size")


def test_facts_answers_from_context() -> None:
    r = FactsBrain().reply(
        req(
            [
                user(
                    "⟦fact:capital=Paris⟧ ⟦fact:river=Seine⟧ What do you know? "
                    "⟦ask:capital,river,mayor⟧"
                )
            ],
            system="Facts: ⟦fact:mayor=Hidalgo⟧",
        )
    )
    assert "⟦answer:capital=Paris⟧" in texts(r)
    assert "⟦answer:river=Seine⟧" in texts(r)
    assert "⟦answer:mayor=Hidalgo⟧" in texts(r)
    assert r.inferred_stop_reason == "end_turn"


def test_facts_says_unknown_without_a_way_to_learn() -> None:
    r = FactsBrain().reply(req([user("⟦ref:spec|budget⟧ ⟦ask:budget⟧")]))  # no fetch tool
    assert texts(r).splitlines()[-1] == "⟦answer:budget=unknown⟧"
    r = FactsBrain().reply(req([user("⟦ref:spec|other⟧ ⟦ask:budget⟧")], tools=[FETCH]))
    assert "⟦answer:budget=unknown⟧" in texts(r)  # no reference could hold it


def test_facts_fetches_a_referenced_artifact_it_lacks() -> None:
    r = FactsBrain().reply(
        req([user("See ⟦ref:spec-7|budget⟧ and ⟦ref:notes⟧. ⟦ask:budget,owner⟧")], tools=[FETCH])
    )
    calls = [b for b in r.blocks if isinstance(b, ToolUseOut)]
    # spec-7 lists budget; notes lists nothing and may hold owner, which no one claims
    assert [(c.name, c.input["artifact_id"]) for c in calls] == [
        ("fetch_artifact", "spec-7"),
        ("fetch_artifact", "notes"),
    ]
    assert r.inferred_stop_reason == "tool_use"
    one = FactsBrain().reply(
        req(
            [user("⟦ref:spec-7|budget⟧ ⟦ref:notes⟧ ⟦ask:budget,owner⟧")],
            tools=[FETCH],
            tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        )
    )
    assert len([b for b in one.blocks if isinstance(b, ToolUseOut)]) == 1


def test_facts_uses_a_fetched_artifact_and_never_refetches() -> None:
    ask = user("⟦ref:spec-7|budget⟧ ⟦ask:budget⟧")
    call = {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "fetch_artifact",
        "input": {"artifact_id": "spec-7"},
    }
    found = FactsBrain().reply(
        req(
            [
                ask,
                {"role": "assistant", "content": [call]},
                user(
                    [
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_1",
                            "content": "⟦artifact:spec-7⟧ ⟦fact:budget=$40k⟧",
                        }
                    ]
                ),
            ],
            tools=[FETCH],
        )
    )
    assert texts(found).splitlines()[-1] == "⟦answer:budget=$40k⟧"
    empty = FactsBrain().reply(
        req(
            [
                ask,
                {"role": "assistant", "content": [call]},
                user(
                    [
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_1",
                            "content": "not found",
                            "is_error": True,
                        }
                    ]
                ),
            ],
            tools=[FETCH],
        )
    )
    assert "⟦answer:budget=unknown⟧" in texts(empty)


def test_facts_refetches_when_the_result_was_trimmed_away() -> None:
    # A context trimmer dropped the fetch and its result: a careful model fetches again.
    r = FactsBrain().reply(req([user("⟦ref:spec-7|budget⟧ ⟦ask:budget⟧")], tools=[FETCH]))
    assert any(isinstance(b, ToolUseOut) for b in r.blocks)


def test_facts_fetch_tool_by_option_or_header() -> None:
    tools = [
        {
            "name": "load",
            "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
        }
    ]
    body = {"model": MODEL, "messages": [user("⟦ref:a.txt⟧ ⟦ask:k⟧")], "tools": tools}
    by_option = FactsBrain(fetch_tool="load").reply(BrainRequest(body=body, model_name=MODEL))
    by_header = FactsBrain().reply(
        BrainRequest(body=body, model_name=MODEL, headers={"x-tokenomy-fetch-tool": "load"})
    )
    for r in (by_option, by_header):
        (call,) = [b for b in r.blocks if isinstance(b, ToolUseOut)]
        assert call.input == {"path": "a.txt"}
    unnamed = FactsBrain().reply(BrainRequest(body=body, model_name=MODEL))
    assert not any(isinstance(b, ToolUseOut) for b in unnamed.blocks)


def test_facts_without_a_question() -> None:
    r = FactsBrain().reply(req([user("⟦fact:a=1⟧ hello")]))
    assert "1 facts" in texts(r) and "⟦ask:" in texts(r)


# -- through the SDK ---------------------------------------------------------------------------


def test_brains_over_http(make_app: Callable[..., Starlette]) -> None:
    app = make_app(brain=str(SCENARIO))
    with (
        serve_app(app) as srv,
        anthropic.Anthropic(api_key=TEST_KEY, base_url=srv.base_url, max_retries=0) as sdk,
    ):
        scripted = sdk.messages.create(
            model=MODEL, max_tokens=256, messages=[{"role": "user", "content": "Weather in Paris?"}]
        )
        assert scripted.stop_reason == "tool_use"
        echo = sdk.messages.create(
            model=MODEL,
            max_tokens=64,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-tokenomy-brain": "echo"},
        )
        assert echo.content[0].type == "text" and echo.content[0].text == "Echo: hi"
        by_name = sdk.messages.create(
            model=MODEL,
            max_tokens=64,
            messages=[{"role": "user", "content": "bye"}],
            extra_headers={"x-tokenomy-brain": "weather"},
        )
        assert by_name.content[0].type == "text"


def test_facts_loop_with_a_fetch_tool(make_app: Callable[..., Starlette]) -> None:
    """The loop a workload runs: ask, the brain fetches, the runner answers, the brain answers."""
    artifacts = {"design-doc": "⟦artifact:design-doc⟧ The budget is ⟦fact:budget=$40k⟧."}
    messages: list[Any] = [
        {
            "role": "user",
            "content": "Owner: ⟦fact:owner=Ada⟧. See ⟦ref:design-doc|budget⟧. ⟦ask:owner,budget⟧",
        }
    ]
    app = make_app(brain="facts")
    with (
        serve_app(app) as srv,
        anthropic.Anthropic(api_key=TEST_KEY, base_url=srv.base_url, max_retries=0) as sdk,
    ):
        for _ in range(3):
            m = sdk.messages.create(model=MODEL, max_tokens=512, tools=[FETCH], messages=messages)  # type: ignore[list-item]
            if m.stop_reason != "tool_use":
                break
            messages.append({"role": "assistant", "content": [b.model_dump() for b in m.content]})
            results = [
                {
                    "type": "tool_result",
                    "tool_use_id": b.id,
                    "content": artifacts[b.input["artifact_id"]],
                }  # type: ignore[index]
                for b in m.content
                if b.type == "tool_use"
            ]
            messages.append({"role": "user", "content": results})
    assert m.stop_reason == "end_turn"
    answer = m.content[0].text  # type: ignore[union-attr]
    assert "⟦answer:owner=Ada⟧" in answer and "⟦answer:budget=$40k⟧" in answer
    assert len(messages) == 3  # one fetch round trip
