"""Money as integer pico-dollars: exact both ways, never a float."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenomy.errors import LedgerError
from tokenomy.ledger.codec import from_pusd, to_pusd


@pytest.mark.parametrize(
    ("usd", "pusd"),
    [
        ("0", 0),
        ("0.003702", 3_702_000_000),
        ("3.75", 3_750_000_000_000),
        ("0.000000000001", 1),
        ("0.0000000165", 16_500),  # one Haiku 3 batch+geo read token: 0.03 * 0.5 * 1.1 / 1e6
        ("1234567.89", 1_234_567_890_000_000_000),
        ("-0.5", -500_000_000_000),  # a credit
    ],
)
def test_known_amounts(usd: str, pusd: int) -> None:
    assert to_pusd(Decimal(usd)) == (pusd, None)
    assert from_pusd(pusd) == Decimal(usd)


def test_reads_back_in_the_shortest_form() -> None:
    assert str(from_pusd(3_702_000_000)) == "0.003702"
    assert str(from_pusd(5 * 10**12)) == "5"
    assert str(from_pusd(0)) == "0"


@given(
    st.decimals(
        min_value=Decimal("-1e6"),
        max_value=Decimal("1e6"),
        places=12,
        allow_nan=False,
        allow_infinity=False,
    )
)
def test_any_picodollar_amount_round_trips(usd: Decimal) -> None:
    pusd, exact = to_pusd(usd)
    assert exact is None
    assert from_pusd(pusd) == usd


@given(
    st.decimals(
        min_value=Decimal("-1e6"),
        max_value=Decimal("1e6"),
        allow_nan=False,
        allow_infinity=False,
        places=20,
    )
)
def test_finer_amounts_keep_their_exact_string(usd: Decimal) -> None:
    pusd, exact = to_pusd(usd)
    assert from_pusd(pusd, exact) == usd


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity"), 0.1])
def test_non_finite_or_float_money_is_refused(bad: object) -> None:
    with pytest.raises(LedgerError, match="finite Decimal"):
        to_pusd(bad)  # type: ignore[arg-type]


def test_amounts_beyond_bigint_are_refused_on_the_callers_thread() -> None:
    with pytest.raises(LedgerError, match="beyond what the ledger stores"):
        to_pusd(Decimal("1e7"))
