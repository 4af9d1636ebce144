"""Property tests: the server model never crashes on input, and usage is always additive.

Issue 3 "Bad input": random request shapes (random JSON, random nesting, wrong types) only ever
produce :class:`ApiError` with a 4xx status — never any other exception.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokenomy.emulator.server import Admission, ApiError, ServerModel

SETTINGS = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,  # deterministic: the same examples on every run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

MODEL = ServerModel()

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)

BLOCK_TYPES = [
    "text",
    "image",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "search_result",
    "server_tool_use",
    "web_search_tool_result",
    "tool_reference",
    "bogus",
]
FIELD_VALUES: dict[str, Any] = {
    "text": st.text(max_size=30) | json_values,
    "id": st.sampled_from(["toolu_1", "toolu_2"]) | json_values,
    "tool_use_id": st.sampled_from(["toolu_1", "toolu_2"]) | json_values,
    "name": st.sampled_from(["f", "g", "bad name"]) | json_values,
    "input": st.dictionaries(st.text(max_size=5), json_values, max_size=3) | json_values,
    "content": st.text(max_size=20)
    | st.lists(st.deferred(lambda: blocks), max_size=3)
    | json_values,
    "cache_control": st.sampled_from(
        [
            {"type": "ephemeral"},
            {"type": "ephemeral", "ttl": "1h"},
            {"type": "ephemeral", "ttl": "5m"},
            {},
            None,
        ]
    )
    | json_values,
    "source": st.fixed_dictionaries(
        {
            "type": st.sampled_from(["base64", "url", "text", "content", "file", "x"]),
            "media_type": st.sampled_from(["image/png", "application/pdf", "text/plain", "x"]),
            "data": st.text(max_size=30) | json_values,
        }
    )
    | json_values,
    "thinking": st.text(max_size=10) | json_values,
    "signature": st.text(max_size=10) | json_values,
    "is_error": json_values,
    "citations": json_values,
}
blocks = st.builds(
    lambda kind, fields: {"type": kind, **fields} if kind is not None else fields,
    st.sampled_from([*BLOCK_TYPES, None]),
    st.fixed_dictionaries({}, optional=FIELD_VALUES),
)
messages = st.lists(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(["user", "assistant", "user", "system"]),
            "content": st.text(min_size=1, max_size=30) | st.lists(blocks, min_size=1, max_size=4),
        }
    )
    | st.fixed_dictionaries(
        {},
        optional={
            "role": st.sampled_from(["user", "assistant", "system", "bot"]) | json_values,
            "content": st.text(max_size=30) | st.lists(blocks, max_size=4) | json_values,
        },
    ),
    min_size=1,
    max_size=5,
)
tools = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "name": st.sampled_from(["f", "g", "x y"]) | json_values,
            "input_schema": st.just({"type": "object"}) | json_values,
            "type": st.sampled_from(["custom", "web_search_20250305"]) | json_values,
            "cache_control": FIELD_VALUES["cache_control"],
            "defer_loading": st.booleans(),
        },
    ),
    max_size=3,
)
request_like = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["claude-opus-4-8", "claude-haiku-4-5", "claude-opus-5"]),
        "max_tokens": st.integers(min_value=0, max_value=4096),
        "messages": messages,
    },
    optional={
        "system": st.text(max_size=20) | st.lists(blocks, max_size=3) | json_values,
        "tools": tools | json_values,
        "tool_choice": st.sampled_from([{"type": "auto"}, {"type": "any"}, {"type": "tool"}])
        | json_values,
        "thinking": st.sampled_from(
            [{"type": "adaptive"}, {"type": "enabled", "budget_tokens": 2048}, {"type": "enabled"}]
        )
        | json_values,
        "cache_control": FIELD_VALUES["cache_control"],
        "output_config": json_values,
        "stream": st.booleans() | json_values,
        "speed": st.sampled_from(["fast", "standard"]) | json_values,
        "temperature": json_values,
        "metadata": json_values,
    },
)
# the required fields themselves, wrong: missing, other types, unknown models
loose_request = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["claude-opus-4-8", "nope"]) | json_values,
        "max_tokens": st.integers(min_value=-5, max_value=200_000) | json_values,
        "messages": messages | json_values,
    },
)


def _rejected(call: Callable[[], object]) -> ApiError | None:
    try:
        call()
    except ApiError as err:
        return err
    return None


def _admit(m: ServerModel, body: Any, *, now_s: float) -> Admission | ApiError:
    try:
        return m.admit(body, scope="prop", now_s=now_s)
    except ApiError as err:
        return err


def _exercise(body: object) -> None:
    for endpoint in ("messages", "count_tokens", "batch_item"):
        err = _rejected(lambda e=endpoint: MODEL.validate(body, endpoint=e))  # type: ignore[misc]
        assert err is None or 400 <= err.status < 500, err
    adm = _admit(MODEL, body, now_s=0.0)
    if isinstance(adm, ApiError):
        assert 400 <= adm.status < 500, adm
        return
    total = MODEL.count_tokens(body)  # type: ignore[arg-type]
    assert adm.total_input_tokens == total
    assert min(adm.input_tokens, adm.cache_read_tokens, adm.cache_creation_5m_tokens) >= 0
    adm.abort()


@SETTINGS
@given(json_values)
def test_random_json_only_ever_gets_a_4xx(body: object) -> None:
    _exercise(body)


@SETTINGS
@given(request_like | loose_request)
def test_random_request_shapes_only_ever_get_a_4xx(body: dict[str, Any]) -> None:
    _exercise(body)


# ---------------------------------------------------------------- additivity over conversations

valid_turn = st.tuples(
    st.integers(min_value=1, max_value=600),  # words in the user turn
    st.booleans(),  # a marker on it
    st.sampled_from(["5m", "1h", None]),  # ttl of that marker
    st.floats(min_value=0, max_value=400),  # seconds until the next request
)


@SETTINGS
@given(
    st.lists(valid_turn, min_size=1, max_size=8),
    st.sampled_from(["claude-opus-4-8", "claude-opus-5", "claude-haiku-4-5"]),
    st.booleans(),
)
def test_usage_is_additive_and_reads_never_exceed_a_previous_write(
    turns: list[tuple[int, bool, str | None, float]], model: str, automatic: bool
) -> None:
    """§1.9 "Total input = cache_read + cache_creation + input_tokens" on any conversation; a read
    is always the length of a prefix some earlier request wrote (§1.3)."""
    m = ServerModel()
    history: list[dict[str, Any]] = []
    written: set[int] = set()
    now = 0.0
    for i, (n, mark, ttl, gap) in enumerate(turns):
        block: dict[str, Any] = {"type": "text", "text": " ".join(f"w{i}x" for _ in range(n))}
        history = [*history, {"role": "user", "content": [block]}]
        body: dict[str, Any] = {"model": model, "max_tokens": 8, "messages": history}
        if mark:
            # a rolling breakpoint on the newest turn only (earlier markers dropped)
            cc = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
            body["messages"] = [
                *history[:-1],
                {"role": "user", "content": [{**block, "cache_control": cc}]},
            ]
        if automatic:
            body["cache_control"] = {"type": "ephemeral"}
        adm = _admit(m, body, now_s=now)
        if isinstance(adm, ApiError):  # the automatic 5m marker after an explicit 1h one
            assert adm.status == 400
            history = history[:-1]
            continue
        assert adm.total_input_tokens == m.count_tokens(body)
        if adm.cache_read_tokens:
            assert adm.cache_read_tokens in written
        adm.commit()
        written |= {e["prefix_tokens"] for e in m.entries(now_s=now)}
        history = [*history, {"role": "assistant", "content": f"ok {i}"}]
        now += gap
