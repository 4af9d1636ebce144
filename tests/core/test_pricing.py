"""``rates`` and ``cost`` beyond the accuracy table: modifiers, unpriced states, exactness."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from tokenomy.core.pricing import CostBreakdown, Rates, Unpriced, cost, rates
from tokenomy.core.usage import Iteration, Usage
from tokenomy.data import builtin_table
from tokenomy.data.table import ModelTable, parse_table

M = D(1_000_000)
TABLE = builtin_table()


def _table(**row: Any) -> ModelTable:
    base = {"id": "test-model", "min_cacheable_tokens": 1024}
    return parse_table({"checked_on": "2026-08-21", "models": [{**base, **row}]}, source="t.toml")


def test_standard_rates_are_the_table_row() -> None:
    r = rates(TABLE.get("claude-sonnet-4-6"), table=TABLE)
    assert r == Rates(
        input=D("3"),
        cache_write_5m=D("3.75"),
        cache_write_1h=D("6"),
        cache_read=D("0.30"),
        output=D("15"),
    )


@pytest.mark.parametrize(
    ("model", "kwargs", "expected", "mods"),
    [
        # batch: the table's batch prices; cache prices scale alike (§3.5)
        (
            "claude-opus-4-6",
            {"batch": True},
            (D("2.50"), D("6.25") / 2, D("10") / 2, D("0.50") / 2, D("12.50")),
            ("batch",),
        ),
        # fast mode, Opus 4.6: $30/$150, i.e. 6x, cache prices scaled alike (§2.5)
        (
            "claude-opus-4-6",
            {"fast": True},
            (D("30"), D("6.25") * 6, D("10") * 6, D("0.50") * 6, D("150")),
            ("fast",),
        ),
        # fast mode, Opus 5: $10/$50, 2x
        (
            "claude-opus-5",
            {"fast": True},
            (D("10"), D("12.50"), D("20"), D("1.00"), D("50")),
            ("fast",),
        ),
        # US inference on 4.6+: every price x1.1 (§2.5)
        (
            "claude-sonnet-4-6",
            {"geo_us": True},
            (D("3.3"), D("4.125"), D("6.6"), D("0.33"), D("16.5")),
            ("geo_us",),
        ),
        # ...and ignored on a model older than 4.6
        (
            "claude-opus-4-5",
            {"geo_us": True},
            (D("5"), D("6.25"), D("10"), D("0.50"), D("25")),
            (),
        ),
        # long context, Sonnet 4.5 above 200k: $6/$22.50 for the whole request (§2.4)
        (
            "claude-sonnet-4-5",
            {"total_input_tokens": 200_001},
            (D("6"), D("7.50"), D("12"), D("0.60"), D("22.50")),
            ("long_context",),
        ),
        (
            "claude-sonnet-4-5",
            {"total_input_tokens": 200_000},
            (D("3"), D("3.75"), D("6"), D("0.30"), D("15")),
            (),
        ),
        # long context and batch stack: $3/$11.25
        (
            "claude-sonnet-4-0",
            {"total_input_tokens": 500_000, "batch": True},
            (D("3"), D("3.75"), D("6"), D("0.30"), D("11.25")),
            ("long_context", "batch"),
        ),
        # fast, batch and geo all at once multiply (the API forbids fast in batches, but the
        # arithmetic must still be order-free)
        (
            "claude-opus-5",
            {"fast": True, "batch": True, "geo_us": True},
            (
                D("5") * 2 * D("0.5") * D("1.1"),
                D("6.25") * 2 * D("0.5") * D("1.1"),
                D("10") * 2 * D("0.5") * D("1.1"),
                D("0.50") * 2 * D("0.5") * D("1.1"),
                D("25") * 2 * D("0.5") * D("1.1"),
            ),
            ("fast", "batch", "geo_us"),
        ),
    ],
    ids=[
        "batch",
        "fast-opus-4-6",
        "fast-opus-5",
        "geo-4-6",
        "geo-ignored-4-5",
        "long-context-above",
        "long-context-exactly-200k",
        "long-context-batch",
        "fast-batch-geo",
    ],
)
def test_rates_with_modifiers(
    model: str, kwargs: dict[str, Any], expected: tuple[D, ...], mods: tuple[str, ...]
) -> None:
    r = rates(TABLE.get(model), table=TABLE, **kwargs)
    assert isinstance(r, Rates)
    assert (r.input, r.cache_write_5m, r.cache_write_1h, r.cache_read, r.output) == expected
    assert r.modifiers == mods


def test_rates_stay_exact_when_a_ratio_does_not_terminate() -> None:
    """A user model whose batch price is a third of its list price: 3.75/3 = 1.25, exactly.

    Dividing first (1/3 = 0.333…) and multiplying after loses the last digit.
    """
    t = _table(
        input="3",
        output="15",
        cache_write_5m="3.75",
        cache_write_1h="6",
        cache_read="0.30",
        batch_input="1",
        batch_output="5",
    )
    r = rates(t.get("test-model"), table=t, batch=True)
    assert isinstance(r, Rates)
    assert (r.input, r.cache_write_5m, r.cache_write_1h, r.cache_read, r.output) == (
        D("1"),
        D("1.25"),
        D("2"),
        D("0.1"),
        D("5"),
    )
    c = cost(Usage(input_tokens=3_000_000, cache_read_tokens=1_000_000), "test-model", table=t)
    assert isinstance(c, CostBreakdown)
    assert c.total_usd == D("3") * 3 + D("0.30")


def test_a_free_model_prices_at_zero_in_every_mode() -> None:
    """A model priced at $0 by the user is priced (at $0), not unpriced, in batch too."""
    zero = dict.fromkeys(("input", "output", "cache_write_5m", "cache_write_1h"), "0")
    t = _table(**zero, cache_read="0", batch_input="0", batch_output="0")
    c = cost(Usage(input_tokens=5, output_tokens=5), "test-model", table=t, batch=True)
    assert isinstance(c, CostBreakdown)
    assert c.total_usd == 0


def test_unknown_model_is_unpriced_never_zero() -> None:
    c = cost(Usage(input_tokens=1000, output_tokens=10), "claude-opus-9", table=TABLE)
    assert isinstance(c, Unpriced)
    assert c.total_usd is None
    assert "'claude-opus-9'" in c.reason
    assert "tokenomy prices --path" in c.reason


def test_known_model_without_prices_is_unpriced() -> None:
    c = cost(Usage(input_tokens=1000), "claude-mythos-preview", table=TABLE)
    assert isinstance(c, Unpriced)
    assert c.model == "claude-mythos-preview"
    assert "no published price" in c.reason


def test_fast_mode_on_a_model_without_fast_prices_is_unpriced() -> None:
    c = cost(Usage(input_tokens=1, speed="fast"), "claude-sonnet-4-6", table=TABLE)
    assert isinstance(c, Unpriced)
    assert "fast-mode" in c.reason


def test_an_iteration_on_an_unknown_model_makes_the_call_unpriced() -> None:
    u = Usage(
        input_tokens=1,
        iterations=(
            Iteration("message", Usage(input_tokens=1)),
            Iteration("advisor_message", Usage(input_tokens=1), model="claude-advisor-x"),
        ),
    )
    c = cost(u, "claude-sonnet-4-6", table=TABLE)
    assert isinstance(c, Unpriced)
    assert "'claude-advisor-x'" in c.reason


def test_batch_and_geo_follow_the_usage_unless_told() -> None:
    u = Usage(input_tokens=1_000_000, service_tier="batch")
    assert cost(u, "claude-opus-4-6", table=TABLE).total_usd == D("2.50")  # type: ignore[union-attr]
    # A caller that knows better (a batch result whose message omits the tier) can force it.
    plain = Usage(input_tokens=1_000_000)
    assert cost(plain, "claude-opus-4-6", table=TABLE, batch=True).total_usd == D("2.50")
    assert cost(u, "claude-opus-4-6", table=TABLE, batch=False).total_usd == D("5")
    # inference_geo from the request applies when the response does not echo it.
    assert cost(plain, "claude-opus-4-6", table=TABLE, inference_geo="US").total_usd == D("5.5")
    echoed = Usage(input_tokens=1_000_000, inference_geo="global")
    assert cost(echoed, "claude-opus-4-6", table=TABLE, inference_geo="us").total_usd == D("5")


def test_cost_breakdown_arithmetic() -> None:
    a = CostBreakdown("m", D("1"), D("2"), D("3"), D("4"), D("5"), D("0.01"), ("batch",))
    b = CostBreakdown("m", D("0.1"), D("0.2"), D("0.3"), D("0.4"), D("0.5"), D("0"), ("geo_us",))
    s = a + b
    assert s == CostBreakdown(
        "m", D("1.1"), D("2.2"), D("3.3"), D("4.4"), D("5.5"), D("0.01"), ("batch", "geo_us")
    )
    assert s.cache_write_usd == D("5.5")
    assert s.total_usd == D("16.51")
    assert CostBreakdown.zero("m").total_usd == 0


def test_cost_is_decimal_all_the_way() -> None:
    c = cost(
        Usage(input_tokens=7, cache_write_1h_tokens=3, cache_read_tokens=11, output_tokens=13),
        "claude-haiku-4-5",
        table=TABLE,
    )
    assert isinstance(c, CostBreakdown)
    for v in (c.input_usd, c.cache_write_1h_usd, c.cache_read_usd, c.output_usd, c.total_usd):
        assert type(v) is D
    assert c.total_usd == (D(7) * 1 + D(3) * 2 + D(11) * D("0.10") + D(13) * 5) / M
