"""Caching inside a batch: the shared prefix gets a 1h breakpoint, each item's own part none."""

from __future__ import annotations

from typing import Any

from tests.batch.conftest import SHARED, request
from tokenomy.batch.planning import SharedPrefixes, common_depth, plan_request
from tokenomy.core.canonical import chain
from tokenomy.data import builtin_table

TABLE = builtin_table()


def _markers(params: dict[str, Any]) -> list[str]:
    out = []
    system = params.get("system")
    if isinstance(system, list):
        out += [f"system[{i}]" for i, b in enumerate(system) if "cache_control" in b]
    for m_i, m in enumerate(params["messages"]):
        content = m["content"]
        if isinstance(content, list):
            out += [
                f"messages[{m_i}].content[{j}]@{b['cache_control'].get('ttl', '5m')}"
                for j, b in enumerate(content)
                if "cache_control" in b
            ]
    return out


def test_a_shared_system_prompt_is_marked_1h_and_the_item_is_not() -> None:
    planned = plan_request(request(1), table=TABLE, shared_end=0, ttl="1h")
    system = planned.params["system"]
    assert system == [
        {"type": "text", "text": SHARED, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]
    assert _markers(planned.params) == ["system[0]"]  # no rolling breakpoint on the item
    assert planned.breakpoints == ("system[0]@1h",)
    assert planned.estimated.system > 3000 and planned.estimated.new > 0


def test_the_same_inputs_give_the_same_bytes() -> None:
    a = plan_request(request(5), table=TABLE, shared_end=0, ttl="1h")
    b = plan_request(request(5), table=TABLE, shared_end=0, ttl="1h")
    assert a.params == b.params and a.prefix_hash == b.prefix_hash


def test_a_system_block_that_differs_per_item_is_not_marked() -> None:
    def with_tail(i: int) -> dict[str, Any]:
        return request(
            i,
            system=[
                {"type": "text", "text": SHARED},
                {"type": "text", "text": f"Today's ticket number is {i}."},
            ],
        )

    shared = SharedPrefixes()
    assert shared.observe(chain(with_tail(1))) == -1
    depth = shared.observe(chain(with_tail(2)))
    assert depth == 0  # only system[0] is shared
    planned = plan_request(with_tail(2), table=TABLE, shared_end=depth, ttl="1h")
    assert _markers(planned.params) == ["system[0]"]


def test_a_shared_document_in_the_first_message_gets_an_anchor() -> None:
    def with_doc(i: int) -> dict[str, Any]:
        return request(
            i,
            system="You answer questions about the document.",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": SHARED},
                        {"type": "text", "text": f"Question {i}: what does clause {i} say?"},
                    ],
                }
            ],
        )

    depth = common_depth(chain(with_doc(1)), chain(with_doc(2)))
    assert depth == 1  # system[0], messages[0].content[0]
    planned = plan_request(with_doc(1), table=TABLE, shared_end=depth, ttl="1h")
    assert "messages[0].content[0]@1h" in _markers(planned.params)
    assert "messages[0].content[1]@1h" not in _markers(planned.params)


def test_nothing_shared_means_no_breakpoint_and_off_means_untouched() -> None:
    lone = plan_request(request(1, system="short"), table=TABLE, shared_end=-1, ttl="1h")
    assert _markers(lone.params) == [] and lone.params["system"] == "short"
    off = plan_request(request(1), table=TABLE, shared_end=0, ttl="off")
    assert off.params == request(1)
    assert off.breakpoints == ()
